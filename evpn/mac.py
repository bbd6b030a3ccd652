"""MAC address value (IEEE 802), canonical text lower-case colon form as FRR prints it."""

from __future__ import annotations

from dataclasses import dataclass

from evpn.errors import InvalidValue

_HEX = set("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True, order=True)
class MacAddress:
    """A 48-bit MAC address held as its 6 wire bytes."""

    packed: bytes

    def __post_init__(self) -> None:
        if type(self.packed) is not bytes or len(self.packed) != 6:
            raise InvalidValue(f"MAC address needs 6 bytes, got {self.packed!r}")

    @classmethod
    def from_text(cls, text: str) -> MacAddress:
        """Parse ``aa:bb:cc:dd:ee:ff``, ``aa-bb-...`` or ``aabb.ccdd.eeff``."""
        digits = text.strip().replace(":", "").replace("-", "").replace(".", "")
        if len(digits) != 12 or not set(digits) <= _HEX:
            raise InvalidValue(f"malformed MAC address {text!r}")
        return cls(bytes.fromhex(digits))

    @classmethod
    def from_int(cls, value: int) -> MacAddress:
        if not 0 <= value < 1 << 48:
            raise InvalidValue(f"MAC address integer out of range: {value}")
        return cls(value.to_bytes(6, "big"))

    def __int__(self) -> int:
        return int.from_bytes(self.packed, "big")

    def __str__(self) -> str:
        return self.packed.hex(":")

    @property
    def is_multicast(self) -> bool:
        return bool(self.packed[0] & 1)

    @property
    def is_zero(self) -> bool:
        return self.packed == b"\x00" * 6


ZERO_MAC = MacAddress(b"\x00" * 6)
