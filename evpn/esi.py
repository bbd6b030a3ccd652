"""Ethernet Segment Identifier (RFC 7432 §5): 10 bytes, type byte first, six types."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from evpn.errors import InvalidValue
from evpn.mac import MacAddress


class EsiType(enum.IntEnum):
    ARBITRARY = 0
    LACP = 1
    BRIDGE_PROTOCOL = 2
    MAC_BASED = 3
    ROUTER_ID = 4
    AS_BASED = 5


@dataclass(frozen=True, slots=True, order=True)
class Esi:
    """An ESI held as its 10 wire bytes; text is colon-separated hex as FRR prints it."""

    packed: bytes

    def __post_init__(self) -> None:
        if type(self.packed) is not bytes or len(self.packed) != 10:
            raise InvalidValue(f"ESI needs 10 bytes, got {self.packed!r}")

    @classmethod
    def from_text(cls, text: str) -> Esi:
        digits = text.strip().replace(":", "").replace(".", "")
        try:
            packed = bytes.fromhex(digits)
        except ValueError as exc:
            raise InvalidValue(f"malformed ESI {text!r}") from exc
        if len(packed) != 10:
            raise InvalidValue(f"malformed ESI {text!r}: needs 10 bytes")
        return cls(packed)

    @classmethod
    def arbitrary(cls, value: bytes) -> Esi:
        """Type 0: 9 operator-chosen bytes."""
        if len(value) != 9:
            raise InvalidValue("type-0 ESI value needs 9 bytes")
        return cls(b"\x00" + value)

    @classmethod
    def lacp(cls, system_mac: MacAddress, port_key: int) -> Esi:
        """Type 1: CE LACP system MAC and port key (RFC 7432 §5)."""
        _check(port_key, 16, "LACP port key")
        return cls(b"\x01" + system_mac.packed + port_key.to_bytes(2, "big") + b"\x00")

    @classmethod
    def bridge_protocol(cls, root_bridge_mac: MacAddress, priority: int) -> Esi:
        """Type 2: root bridge MAC and priority."""
        _check(priority, 16, "root bridge priority")
        return cls(b"\x02" + root_bridge_mac.packed + priority.to_bytes(2, "big") + b"\x00")

    @classmethod
    def mac_based(cls, system_mac: MacAddress, discriminator: int) -> Esi:
        """Type 3: system MAC and a 3-byte local discriminator."""
        _check(discriminator, 24, "local discriminator")
        return cls(b"\x03" + system_mac.packed + discriminator.to_bytes(3, "big"))

    @classmethod
    def router_id(cls, router_id: str | ipaddress.IPv4Address, discriminator: int) -> Esi:
        """Type 4: router id and a 4-byte local discriminator."""
        _check(discriminator, 32, "local discriminator")
        return cls(
            b"\x04" + ipaddress.IPv4Address(router_id).packed + discriminator.to_bytes(4, "big") + b"\x00"
        )

    @classmethod
    def as_based(cls, asn: int, discriminator: int) -> Esi:
        """Type 5: AS number and a 4-byte local discriminator."""
        _check(asn, 32, "AS number")
        _check(discriminator, 32, "local discriminator")
        return cls(b"\x05" + asn.to_bytes(4, "big") + discriminator.to_bytes(4, "big") + b"\x00")

    @property
    def type(self) -> int:
        return self.packed[0]

    @property
    def is_zero(self) -> bool:
        return self.packed == _ZERO

    def __str__(self) -> str:
        return self.packed.hex(":")


def _check(value: int, bits: int, what: str) -> None:
    if not 0 <= value < 1 << bits:
        raise InvalidValue(f"{what} out of range: {value}")


_ZERO = b"\x00" * 10
ZERO_ESI = Esi(_ZERO)
