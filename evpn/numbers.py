"""Bounded integers of the protocol: VNI, Ethernet Tag, AS number, labels."""

from __future__ import annotations

from evpn.errors import InvalidValue


class Vni(int):
    """A 24-bit VXLAN Network Identifier (RFC 7348 §5); carried as is in EVPN label fields (RFC 8365 §5.1.3)."""

    __slots__ = ()

    def __new__(cls, value: int) -> Vni:
        if not 0 <= int(value) < 1 << 24:
            raise InvalidValue(f"VNI must be 0..16777215, got {value}")
        return super().__new__(cls, value)


class EthernetTag(int):
    """A 32-bit Ethernet Tag ID (RFC 7432 §7)."""

    __slots__ = ()

    def __new__(cls, value: int) -> EthernetTag:
        if not 0 <= int(value) < 1 << 32:
            raise InvalidValue(f"Ethernet Tag must be 0..4294967295, got {value}")
        return super().__new__(cls, value)


class Asn(int):
    """A 4-octet AS number (RFC 6793)."""

    __slots__ = ()

    def __new__(cls, value: int) -> Asn:
        if not 0 <= int(value) < 1 << 32:
            raise InvalidValue(f"AS number must be 0..4294967295, got {value}")
        return super().__new__(cls, value)

    @classmethod
    def from_text(cls, text: str) -> Asn:
        """Parse ``65000`` or asdot ``1.10`` (RFC 5396)."""
        text = text.strip()
        try:
            if "." in text:
                high, low = text.split(".", 1)
                hi, lo = int(high), int(low)
                if not (0 <= hi < 65536 and 0 <= lo < 65536):
                    raise ValueError
                return cls((hi << 16) | lo)
            return cls(int(text))
        except ValueError as exc:
            raise InvalidValue(f"malformed AS number {text!r}") from exc


AS_TRANS = 23456
"""The 2-octet placeholder for a 4-octet AS (RFC 6793 §9)."""

MAX_LABEL = (1 << 24) - 1
