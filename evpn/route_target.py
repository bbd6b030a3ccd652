"""Route Target extended community (RFC 4360 §4, RFC 5668), with FRR's text forms and wildcard import."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from evpn.errors import InvalidValue


class RtFormat(enum.IntEnum):
    """The high type octet of a Route Target (the low subtype is always 0x02)."""

    AS2 = 0x00
    IPV4 = 0x01
    AS4 = 0x02


@dataclass(frozen=True, slots=True, order=True)
class RouteTarget:
    """A Route Target: ``format`` picks the layout, ``administrator`` is an ASN or an IPv4 address as int."""

    format: RtFormat
    administrator: int
    assigned: int

    def __post_init__(self) -> None:
        admin_bits, assigned_bits = _WIDTHS[self.format]
        if not 0 <= self.administrator < 1 << admin_bits:
            raise InvalidValue(f"route target administrator out of range for {self.format.name}")
        if not 0 <= self.assigned < 1 << assigned_bits:
            raise InvalidValue(f"route target assigned number out of range for {self.format.name}")

    @classmethod
    def from_text(cls, text: str) -> RouteTarget:
        """Parse ``64512:110`` (type 0x00, or 0x02 for a 4-octet ASN) or ``10.0.0.1:5`` (type 0x01)."""
        admin, sep, number = text.strip().rpartition(":")
        if not sep or not admin:
            raise InvalidValue(f"malformed route target {text!r}: expected ADMIN:NUMBER")
        try:
            assigned = int(number)
        except ValueError as exc:
            raise InvalidValue(f"malformed route target {text!r}: bad number") from exc
        if "." in admin:
            try:
                ip = ipaddress.IPv4Address(admin)
            except ValueError as exc:
                raise InvalidValue(f"malformed route target {text!r}: bad IPv4 administrator") from exc
            return cls(RtFormat.IPV4, int(ip), assigned)
        try:
            asn = int(admin)
        except ValueError as exc:
            raise InvalidValue(f"malformed route target {text!r}: bad administrator") from exc
        if asn < 1 << 16 and assigned < 1 << 32:
            return cls(RtFormat.AS2, asn, assigned)
        return cls(RtFormat.AS4, asn, assigned)

    @classmethod
    def from_packed(cls, packed: bytes) -> RouteTarget:
        """Decode the 8 bytes of an RT extended community (type 0x00/0x01/0x02, subtype 0x02)."""
        if len(packed) != 8 or packed[0] not in _FORMATS or packed[1] != 0x02:
            raise InvalidValue(f"not a route target extended community: {bytes(packed).hex()}")
        kind = RtFormat(packed[0])
        if kind == RtFormat.IPV4:
            return cls(kind, int.from_bytes(packed[2:6], "big"), int.from_bytes(packed[6:8], "big"))
        if kind == RtFormat.AS2:
            return cls(kind, int.from_bytes(packed[2:4], "big"), int.from_bytes(packed[4:8], "big"))
        return cls(kind, int.from_bytes(packed[2:6], "big"), int.from_bytes(packed[6:8], "big"))

    @property
    def packed(self) -> bytes:
        if self.format == RtFormat.AS2:
            return b"\x00\x02" + self.administrator.to_bytes(2, "big") + self.assigned.to_bytes(4, "big")
        return (
            bytes((self.format, 0x02))
            + self.administrator.to_bytes(4, "big")
            + self.assigned.to_bytes(2, "big")
        )

    def __str__(self) -> str:
        if self.format == RtFormat.IPV4:
            return f"{ipaddress.IPv4Address(self.administrator)}:{self.assigned}"
        return f"{self.administrator}:{self.assigned}"


_WIDTHS = {RtFormat.AS2: (16, 32), RtFormat.IPV4: (32, 16), RtFormat.AS4: (32, 16)}
_FORMATS = frozenset(int(f) for f in RtFormat)


@dataclass(frozen=True, slots=True)
class RouteTargetMatcher:
    """An import rule: an exact RT, or FRR's wildcard ``*:N`` matching only the local-admin part."""

    assigned: int
    route_target: RouteTarget | None = None

    def __post_init__(self) -> None:
        # The local-admin part is at most 32 bits (AS2 format), 16 for the others (RFC 4360 §3).
        if not 0 <= self.assigned < 1 << 32:
            raise InvalidValue(f"route target assigned number out of range: {self.assigned}")

    @classmethod
    def from_text(cls, text: str) -> RouteTargetMatcher:
        text = text.strip()
        if text.startswith("*:"):
            try:
                return cls(int(text[2:]))
            except ValueError as exc:
                raise InvalidValue(f"malformed wildcard route target {text!r}") from exc
        rt = RouteTarget.from_text(text)
        return cls(rt.assigned, rt)

    def matches(self, rt: RouteTarget) -> bool:
        if self.route_target is not None:
            return self.route_target == rt
        return rt.assigned == self.assigned

    def __str__(self) -> str:
        return str(self.route_target) if self.route_target is not None else f"*:{self.assigned}"
