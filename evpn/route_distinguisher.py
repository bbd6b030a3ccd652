"""Route Distinguisher (RFC 4364 §4.2), with FRR's text forms ``ASN:N`` and ``IP:N``."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from evpn.errors import InvalidValue


class RdType(enum.IntEnum):
    AS2 = 0
    IPV4 = 1
    AS4 = 2


@dataclass(frozen=True, slots=True, order=True)
class RouteDistinguisher:
    """An 8-byte RD held as its wire bytes; type, administrator and assigned number are derived."""

    packed: bytes

    def __post_init__(self) -> None:
        if type(self.packed) is not bytes or len(self.packed) != 8:
            raise InvalidValue(f"route distinguisher needs 8 bytes, got {self.packed!r}")

    @classmethod
    def as2(cls, asn: int, assigned: int) -> RouteDistinguisher:
        if not (0 <= asn < 1 << 16 and 0 <= assigned < 1 << 32):
            raise InvalidValue(f"type-0 RD out of range: {asn}:{assigned}")
        return cls(b"\x00\x00" + asn.to_bytes(2, "big") + assigned.to_bytes(4, "big"))

    @classmethod
    def ipv4(cls, address: str | ipaddress.IPv4Address, assigned: int) -> RouteDistinguisher:
        if not 0 <= assigned < 1 << 16:
            raise InvalidValue(f"type-1 RD assigned number out of range: {assigned}")
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError as exc:
            raise InvalidValue(f"type-1 RD needs an IPv4 administrator, got {address!r}") from exc
        return cls(b"\x00\x01" + ip.packed + assigned.to_bytes(2, "big"))

    @classmethod
    def as4(cls, asn: int, assigned: int) -> RouteDistinguisher:
        if not (0 <= asn < 1 << 32 and 0 <= assigned < 1 << 16):
            raise InvalidValue(f"type-2 RD out of range: {asn}:{assigned}")
        return cls(b"\x00\x02" + asn.to_bytes(4, "big") + assigned.to_bytes(2, "big"))

    @classmethod
    def from_text(cls, text: str) -> RouteDistinguisher:
        """Parse ``65000:10``, ``4200000000:10`` or ``10.0.0.1:3`` (RFC 4364 §4.2 types 0, 2, 1)."""
        admin, sep, number = text.strip().rpartition(":")
        if not sep or not admin:
            raise InvalidValue(f"malformed route distinguisher {text!r}: expected ADMIN:NUMBER")
        try:
            assigned = int(number)
        except ValueError as exc:
            raise InvalidValue(f"malformed route distinguisher {text!r}: bad number") from exc
        if "." in admin:
            return cls.ipv4(admin, assigned)
        try:
            asn = int(admin)
        except ValueError as exc:
            raise InvalidValue(f"malformed route distinguisher {text!r}: bad administrator") from exc
        if asn < 1 << 16 and assigned < 1 << 32:
            return cls.as2(asn, assigned)
        return cls.as4(asn, assigned)

    @property
    def type(self) -> int:
        return int.from_bytes(self.packed[:2], "big")

    @property
    def administrator(self) -> str:
        kind = self.type
        if kind == RdType.AS2:
            return str(int.from_bytes(self.packed[2:4], "big"))
        if kind == RdType.IPV4:
            return str(ipaddress.IPv4Address(self.packed[2:6]))
        if kind == RdType.AS4:
            return str(int.from_bytes(self.packed[2:6], "big"))
        return self.packed[2:].hex()

    @property
    def assigned(self) -> int:
        kind = self.type
        if kind == RdType.AS2:
            return int.from_bytes(self.packed[4:8], "big")
        return int.from_bytes(self.packed[6:8], "big")

    def __str__(self) -> str:
        if self.type > RdType.AS4:
            return f"unknown-type-{self.type}:{self.packed[2:].hex()}"
        return f"{self.administrator}:{self.assigned}"
