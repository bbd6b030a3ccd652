"""EVPN NLRI, route types 1-5 (RFC 7432 §7, RFC 9136 §3.1), VXLAN labels as raw 24-bit VNIs (RFC 8365 §5.1.3).

Every route is a frozen value. ``key`` gives the RFC route key the RIB indexes on (RFC 7432 §7: ESI and labels
are not part of a type-2 key; RFC 9136 §3.1: a type-5 key is RD, Ethernet Tag, prefix length and prefix).
Unknown route types are kept as opaque bytes and re-encoded unchanged (RFC 7432 §7).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from evpn.errors import InvalidValue
from evpn.esi import ZERO_ESI, Esi
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = ipaddress.IPv4Address
_V6 = ipaddress.IPv6Address


class EvpnRouteType(enum.IntEnum):
    ETHERNET_AD = 1
    MAC_IP = 2
    INCLUSIVE_MULTICAST = 3
    ETHERNET_SEGMENT = 4
    IP_PREFIX = 5


class NlriError(Exception):
    """An EVPN NLRI cannot be parsed (the caller turns it into an RFC 7606 outcome)."""


def _label(value: int) -> bytes:
    if not 0 <= value < 1 << 24:
        raise InvalidValue(f"label/VNI must fit 24 bits, got {value}")
    return value.to_bytes(3, "big")


def _ip_field(ip: IPAddress | None) -> bytes:
    """IP length in bits then the address (RFC 7432 §7.2, §7.3)."""
    if ip is None:
        return b"\x00"
    return bytes((ip.max_prefixlen,)) + ip.packed


@dataclass(frozen=True, slots=True)
class EthernetAdRoute:
    """Type 1, Ethernet Auto-Discovery (RFC 7432 §7.1)."""

    rd: RouteDistinguisher
    esi: Esi
    ethernet_tag: int
    label: int
    route_type: ClassVar[int] = EvpnRouteType.ETHERNET_AD

    @property
    def key(self) -> tuple[object, ...]:
        return (1, self.rd.packed, self.esi.packed, self.ethernet_tag)

    def encode_value(self) -> bytes:
        return self.rd.packed + self.esi.packed + self.ethernet_tag.to_bytes(4, "big") + _label(self.label)


@dataclass(frozen=True, slots=True)
class MacIpRoute:
    """Type 2, MAC/IP Advertisement (RFC 7432 §7.2); ``label2`` is the L3VNI of symmetric IRB (RFC 9135)."""

    rd: RouteDistinguisher
    mac: MacAddress
    ip: IPAddress | None = None
    label1: int = 0
    label2: int | None = None
    esi: Esi = ZERO_ESI
    ethernet_tag: int = 0
    route_type: ClassVar[int] = EvpnRouteType.MAC_IP

    @property
    def key(self) -> tuple[object, ...]:
        return (2, self.rd.packed, self.ethernet_tag, self.mac.packed, self.ip)

    def encode_value(self) -> bytes:
        labels = _label(self.label1) if self.label2 is None else _label(self.label1) + _label(self.label2)
        return (
            self.rd.packed
            + self.esi.packed
            + self.ethernet_tag.to_bytes(4, "big")
            + b"\x30"
            + self.mac.packed
            + _ip_field(self.ip)
            + labels
        )


@dataclass(frozen=True, slots=True)
class InclusiveMulticastRoute:
    """Type 3, Inclusive Multicast Ethernet Tag (RFC 7432 §7.3)."""

    rd: RouteDistinguisher
    originator: IPAddress
    ethernet_tag: int = 0
    route_type: ClassVar[int] = EvpnRouteType.INCLUSIVE_MULTICAST

    @property
    def key(self) -> tuple[object, ...]:
        return (3, self.rd.packed, self.ethernet_tag, self.originator)

    def encode_value(self) -> bytes:
        return self.rd.packed + self.ethernet_tag.to_bytes(4, "big") + _ip_field(self.originator)


@dataclass(frozen=True, slots=True)
class EthernetSegmentRoute:
    """Type 4, Ethernet Segment (RFC 7432 §7.4)."""

    rd: RouteDistinguisher
    esi: Esi
    originator: IPAddress
    route_type: ClassVar[int] = EvpnRouteType.ETHERNET_SEGMENT

    @property
    def key(self) -> tuple[object, ...]:
        return (4, self.rd.packed, self.esi.packed, self.originator)

    def encode_value(self) -> bytes:
        return self.rd.packed + self.esi.packed + _ip_field(self.originator)


@dataclass(frozen=True, slots=True)
class IpPrefixRoute:
    """Type 5, IP Prefix (RFC 9136 §3.1); prefix and gateway are of one family, gateway 0 when unused."""

    rd: RouteDistinguisher
    prefix: IPNetwork
    label: int = 0
    gateway: IPAddress | None = None
    esi: Esi = ZERO_ESI
    ethernet_tag: int = 0
    route_type: ClassVar[int] = EvpnRouteType.IP_PREFIX

    def __post_init__(self) -> None:
        if self.gateway is not None and self.gateway.version != self.prefix.version:
            raise InvalidValue("type-5 gateway IP must be of the prefix's address family")

    @property
    def gateway_ip(self) -> IPAddress:
        """The gateway as on the wire (all zeros when there is none)."""
        if self.gateway is not None:
            return self.gateway
        return _V4(0) if self.prefix.version == 4 else _V6(0)

    @property
    def key(self) -> tuple[object, ...]:
        return (5, self.rd.packed, self.ethernet_tag, self.prefix.prefixlen, self.prefix.network_address)

    def encode_value(self) -> bytes:
        return (
            self.rd.packed
            + self.esi.packed
            + self.ethernet_tag.to_bytes(4, "big")
            + bytes((self.prefix.prefixlen,))
            + self.prefix.network_address.packed
            + self.gateway_ip.packed
            + _label(self.label)
        )


@dataclass(frozen=True, slots=True)
class UnknownEvpnRoute:
    """A route type this speaker does not know: kept whole and re-encoded unchanged (RFC 7432 §7)."""

    type_code: int
    value: bytes

    @property
    def route_type(self) -> int:
        return self.type_code

    @property
    def key(self) -> tuple[object, ...]:
        return (self.type_code, self.value)

    def encode_value(self) -> bytes:
        return self.value


EvpnRoute = (
    EthernetAdRoute
    | MacIpRoute
    | InclusiveMulticastRoute
    | EthernetSegmentRoute
    | IpPrefixRoute
    | UnknownEvpnRoute
)


def encode_evpn_route(route: EvpnRoute) -> bytes:
    """Route type, length, value (RFC 7432 §7)."""
    value = route.encode_value()
    if len(value) > 255:
        raise InvalidValue("EVPN NLRI value longer than 255 bytes")
    return bytes((route.route_type, len(value))) + value


def _ip_from(raw: bytes, what: str) -> IPAddress:
    if len(raw) == 4:
        return _V4(raw)
    if len(raw) == 16:
        return _V6(raw)
    raise NlriError(f"{what}: bad IP length {len(raw)}")


class EvpnNlriDecoder:
    """Decodes EVPN NLRI lists; caches RDs and ESIs, which repeat across the routes of one peer."""

    __slots__ = ("_esis", "_rds")

    def __init__(self) -> None:
        self._rds: dict[bytes, RouteDistinguisher] = {}
        self._esis: dict[bytes, Esi] = {ZERO_ESI.packed: ZERO_ESI}

    def _rd(self, raw: bytes) -> RouteDistinguisher:
        rd = self._rds.get(raw)
        if rd is None:
            if len(self._rds) > 65536:
                self._rds.clear()
            rd = self._rds[raw] = RouteDistinguisher(raw)
        return rd

    def _esi(self, raw: bytes) -> Esi:
        esi = self._esis.get(raw)
        if esi is None:
            if len(self._esis) > 65536:
                self._esis.clear()
            esi = self._esis[raw] = Esi(raw)
        return esi

    def decode_all(self, data: bytes) -> list[EvpnRoute]:
        """Decode a concatenation of EVPN NLRIs; raise NlriError on any framing or field error."""
        routes: list[EvpnRoute] = []
        append = routes.append
        pos = 0
        end = len(data)
        mv = data
        while pos < end:
            if pos + 2 > end:
                raise NlriError("truncated EVPN NLRI header")
            kind = mv[pos]
            length = mv[pos + 1]
            start = pos + 2
            pos = start + length
            if pos > end:
                raise NlriError(f"EVPN NLRI type {kind} length {length} overruns the attribute")
            append(self.decode_value(kind, mv[start:pos]))
        return routes

    def decode_value(self, kind: int, value: bytes) -> EvpnRoute:
        n = len(value)
        if kind == 2:
            # RD 8, ESI 10, tag 4, maclen 1, mac 6, iplen 1, ip 0/4/16, label1 3, [label2 3]
            if n not in (33, 36, 37, 40, 49, 52):
                raise NlriError(f"type-2 route: bad length {n}")
            if value[22] != 48:
                raise NlriError(f"type-2 route: MAC length {value[22]} is not 48")
            iplen = value[29]
            if iplen == 0:
                ip: IPAddress | None = None
                lpos = 30
            elif iplen == 32:
                ip = _V4(value[30:34])
                lpos = 34
            elif iplen == 128:
                ip = _V6(value[30:46])
                lpos = 46
            else:
                raise NlriError(f"type-2 route: bad IP length {iplen}")
            rest = n - lpos
            if rest == 3:
                label2 = None
            elif rest == 6:
                label2 = int.from_bytes(value[lpos + 3 : lpos + 6], "big")
            else:
                raise NlriError(f"type-2 route: length {n} does not match IP length {iplen}")
            return MacIpRoute(
                self._rd(value[:8]),
                MacAddress(value[23:29]),
                ip,
                int.from_bytes(value[lpos : lpos + 3], "big"),
                label2,
                self._esi(value[8:18]),
                int.from_bytes(value[18:22], "big"),
            )
        if kind == 3:
            if n not in (17, 29):
                raise NlriError(f"type-3 route: bad length {n}")
            iplen = value[12]
            if iplen != (n - 13) * 8:
                raise NlriError(f"type-3 route: IP length {iplen} does not match route length {n}")
            return InclusiveMulticastRoute(
                self._rd(value[:8]), _ip_from(value[13:], "type-3 route"), int.from_bytes(value[8:12], "big")
            )
        if kind == 5:
            if n == 34:
                width = 4
            elif n == 58:
                width = 16
            else:
                raise NlriError(f"type-5 route: bad length {n}")
            plen = value[22]
            if plen > width * 8:
                raise NlriError(f"type-5 route: prefix length {plen} too long")
            addr = value[23 : 23 + width]
            gw_raw = value[23 + width : 23 + 2 * width]
            try:  # host bits beyond the length are cleared: the key is the network (RFC 9136 §3.1)
                prefix: IPNetwork = (
                    ipaddress.IPv4Network((addr, plen), strict=False)
                    if width == 4
                    else ipaddress.IPv6Network((addr, plen), strict=False)
                )
            except ValueError as exc:
                raise NlriError(f"type-5 route: {exc}") from exc
            gateway = None if gw_raw == b"\x00" * width else _ip_from(gw_raw, "type-5 route")
            return IpPrefixRoute(
                self._rd(value[:8]),
                prefix,
                int.from_bytes(value[23 + 2 * width :], "big"),
                gateway,
                self._esi(value[8:18]),
                int.from_bytes(value[18:22], "big"),
            )
        if kind == 1:
            if n != 25:
                raise NlriError(f"type-1 route: bad length {n}")
            return EthernetAdRoute(
                self._rd(value[:8]),
                self._esi(value[8:18]),
                int.from_bytes(value[18:22], "big"),
                int.from_bytes(value[22:25], "big"),
            )
        if kind == 4:
            if n not in (23, 35):
                raise NlriError(f"type-4 route: bad length {n}")
            iplen = value[18]
            if iplen != (n - 19) * 8:
                raise NlriError(f"type-4 route: IP length {iplen} does not match route length {n}")
            return EthernetSegmentRoute(
                self._rd(value[:8]), self._esi(value[8:18]), _ip_from(value[19:], "type-4 route")
            )
        return UnknownEvpnRoute(kind, bytes(value))


def decode_evpn_nlri(data: bytes) -> list[EvpnRoute]:
    """Decode a concatenation of EVPN NLRIs with a fresh decoder."""
    return EvpnNlriDecoder().decode_all(data)
