"""EVPN NLRI, route types 1-5 (RFC 7432 §7, RFC 9136 §3.1), VXLAN labels as raw 24-bit VNIs (RFC 8365 §5.1.3).

Every route is a frozen value. ``key`` gives the RFC route key the RIB indexes on (RFC 7432 §7: ESI and labels
are not part of a type-2 key; RFC 9136 §3.1: a type-5 key is RD, Ethernet Tag, prefix length and prefix).
Unknown route types are kept as opaque bytes and re-encoded unchanged (RFC 7432 §7).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

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
        return self._encode_nlri()[2:]

    def _encode_nlri(self) -> bytes:
        """Route type, length and value in one struct.pack (type-2 is the bulk of what a speaker sends)."""
        label1 = self.label1
        label2 = self.label2
        ip = self.ip
        if not 0 <= label1 < 1 << 24:
            raise InvalidValue(f"label/VNI must fit 24 bits, got {label1}")
        if label2 is None:
            la, lb = label1 >> 8, label1 & 0xFF
        elif 0 <= label2 < 1 << 24:
            la, lb = label1 << 8 | label2 >> 16, label2 & 0xFFFF
        else:
            raise InvalidValue(f"label/VNI must fit 24 bits, got {label2}")
        if ip is None:
            pack, length, iplen = _TYPE2_PACK[(0, label2 is not None)]
            ip_packed = b""
        else:
            pack, length, iplen = _TYPE2_PACK[(ip.version, label2 is not None)]
            ip_packed = ip.packed
        try:
            return pack(
                2,
                length,
                self.rd.packed,
                self.esi.packed,
                self.ethernet_tag,
                48,
                self.mac.packed,
                iplen,
                ip_packed,
                la,
                lb,
            )
        except struct.error as exc:  # an Ethernet Tag beyond 32 bits
            raise InvalidValue(f"type-2 route: {exc}") from exc


def _type2_pack(ip_bits: int, two_labels: bool) -> tuple[Callable[..., bytes], int, int]:
    """Whole type-2 NLRI (RFC 7432 §7.2): type, length, RD, ESI, tag, MAC length, MAC, IP length, IP, labels.

    One label packs as H B, two as I H (label1 << 8 | label2 >> 16, label2 & 0xFFFF).
    """
    labels = "IH" if two_labels else "HB"
    length = 30 + ip_bits // 8 + (6 if two_labels else 3)
    return struct.Struct(f"!BB8s10sIB6sB{ip_bits // 8}s{labels}").pack, length, ip_bits


# by (IP version, 0 for none; two labels)
_TYPE2_PACK = {
    (version, two): _type2_pack(bits, two)
    for version, bits in ((0, 0), (4, 32), (6, 128))
    for two in (False, True)
}


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
    if type(route) is MacIpRoute:
        return route._encode_nlri()
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


# -- fast construction of decoded type-2 routes --------------------------------------------------------------
# The values are frozen dataclasses whose __init__ sets every field through object.__setattr__ and then runs
# the __post_init__ validation; for fields the parser has already cut to the right type and length (a struct
# "6s" field is 6 bytes) both are pure overhead. The parser instead fills a plain twin class with the very same
# __slots__ using ordinary slot stores, then retypes it (__class__ assignment between classes with identical
# slots, allowed by CPython and PyPy). IP addresses are made as ipaddress's own __init__ makes them from
# bytes, by setting _ip (and _scope_id for IPv6). User-built values still go through the checked
# constructors. ``_fast_path_works`` verifies at import that the results are indistinguishable from
# constructed values, and the decoder falls back to the constructors (decode_value) if they are not.


class _MacIpRouteSlots:
    __slots__ = MacIpRoute.__slots__


class _MacSlots:
    __slots__ = MacAddress.__slots__


# type-2 value layouts by value length (RFC 7432 §7.2): RD+ESI+tag as one 22-byte key, MAC length, MAC,
# IP length, IP (0s: none, I: IPv4 as an int, 16s: IPv6), then one label (H B) or two (I H).
_Type2Layout = tuple[Callable[[bytes, int], tuple[Any, ...]], int, bool]
_TYPE2_LAYOUTS: dict[int, _Type2Layout] = {
    33: (struct.Struct("!22sB6sB0sHB").unpack_from, 0, False),
    36: (struct.Struct("!22sB6sB0sIH").unpack_from, 0, True),
    37: (struct.Struct("!22sB6sBIHB").unpack_from, 32, False),
    40: (struct.Struct("!22sB6sBIIH").unpack_from, 32, True),
    49: (struct.Struct("!22sB6sB16sHB").unpack_from, 128, False),
    52: (struct.Struct("!22sB6sB16sIH").unpack_from, 128, True),
}


def _all_slots(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in klass.__dict__.get("__slots__", ())}


def _fast_path_works() -> bool:
    """The slot-twin construction yields values equal to checked ones, or the decoder does not use it."""
    # IP addresses are made as ipaddress's own __init__ makes them from bytes: _ip (and _scope_id for IPv6)
    if _all_slots(_V4) != {"_ip", "__weakref__"} or _all_slots(_V6) != {"_ip", "_scope_id", "__weakref__"}:
        return False
    try:
        rd = RouteDistinguisher(bytes(range(8)))
        esi = Esi(bytes(range(10, 20)))
        for ip, l2 in ((_V4(b"\x0a\x00\x00\x01"), 4001), (_V6(bytes(range(16))), None), (None, 7)):
            want = MacIpRoute(rd, MacAddress(b"\x02\x00\x00\x00\x00\x01"), ip, 110, l2, esi, 5)
            wire = bytes((2, len(want.encode_value()))) + want.encode_value()
            (got,) = EvpnNlriDecoder().decode_all(wire)
            if not (
                type(got) is MacIpRoute
                and type(got.mac) is MacAddress
                and type(got.ip) is type(ip)
                and got == want
                and hash(got) == hash(want)
                and repr(got) == repr(want)
                and str(got.ip) == str(ip)
                and got.ip == ip
                and hash(got.ip) == hash(ip)
            ):
                return False
    except Exception:  # any incompatibility of this interpreter: use the constructors
        return False
    return True


class EvpnNlriDecoder:
    """Decodes EVPN NLRI lists; caches RDs and ESIs, which repeat across the routes of one peer."""

    __slots__ = ("_esis", "_heads", "_rds")

    def __init__(self) -> None:
        self._rds: dict[bytes, RouteDistinguisher] = {}
        self._esis: dict[bytes, Esi] = {ZERO_ESI.packed: ZERO_ESI}
        # type-2 RD + ESI + Ethernet Tag (the first 22 bytes), which repeat for every route of a MAC-VRF
        self._heads: dict[bytes, tuple[RouteDistinguisher, Esi, int]] = {}

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

    def _head(self, raw: bytes) -> tuple[RouteDistinguisher, Esi, int]:
        if len(self._heads) > 65536:
            self._heads.clear()
        head = self._heads[raw] = (self._rd(raw[:8]), self._esi(raw[8:18]), int.from_bytes(raw[18:22], "big"))
        return head

    def decode_all(self, data: bytes) -> list[EvpnRoute]:
        """Decode a concatenation of EVPN NLRIs; raise NlriError on any framing or field error."""
        routes: list[EvpnRoute] = []
        append = routes.append
        pos = 0
        end = len(data)
        layouts = _TYPE2_LAYOUTS if _FAST else _NO_LAYOUTS
        heads = self._heads
        # Any: the twins are filled through attributes only their retyped selves declare
        route_slots: Any = _MacIpRouteSlots
        mac_slots: Any = _MacSlots
        new: Any = object.__new__
        v4 = _V4
        v6 = _V6
        from_bytes = int.from_bytes
        while pos < end:
            if pos + 2 > end:
                raise NlriError("truncated EVPN NLRI header")
            kind = data[pos]
            length = data[pos + 1]
            start = pos + 2
            pos = start + length
            if pos > end:
                raise NlriError(f"EVPN NLRI type {kind} length {length} overruns the attribute")
            layout = layouts.get(length) if kind == 2 else None
            if layout is None:
                append(self.decode_value(kind, data[start:pos]))
                continue
            # type 2, the bulk of any EVPN table: unpacked in one call, built without re-validation
            unpack, want_iplen, two_labels = layout
            head_raw, maclen, mac_raw, iplen, ip_raw, la, lb = unpack(data, start)
            if maclen != 48:
                raise NlriError(f"type-2 route: MAC length {maclen} is not 48")
            if iplen != want_iplen:
                if iplen in (0, 32, 128):
                    raise NlriError(f"type-2 route: length {length} does not match IP length {iplen}")
                raise NlriError(f"type-2 route: bad IP length {iplen}")
            head = heads.get(head_raw)
            if head is None:
                head = self._head(head_raw)
            mac = mac_slots()
            mac.packed = mac_raw
            mac.__class__ = MacAddress
            if iplen == 32:
                ip = new(v4)
                ip._ip = ip_raw
            elif iplen == 128:
                ip = new(v6)
                ip._ip = from_bytes(ip_raw, "big")
                ip._scope_id = None
            else:
                ip = None
            route = route_slots()
            route.rd, route.esi, route.ethernet_tag = head
            route.mac = mac
            route.ip = ip
            if two_labels:
                route.label1 = la >> 8
                route.label2 = (la & 0xFF) << 16 | lb
            else:
                route.label1 = la << 8 | lb
                route.label2 = None
            route.__class__ = MacIpRoute
            append(route)
        return routes

    def decode_value(self, kind: int, value: bytes) -> EvpnRoute:
        n = len(value)
        if kind == 2:
            # RD 8, ESI 10, tag 4, maclen 1, mac 6, iplen 1, ip 0/4/16, label1 3, [label2 3]
            layout = _TYPE2_LAYOUTS.get(n)
            if layout is None:
                raise NlriError(f"type-2 route: bad length {n}")
            if value[22] != 48:
                raise NlriError(f"type-2 route: MAC length {value[22]} is not 48")
            iplen = value[29]
            if iplen != layout[1]:  # the IP length must be the one the route length leaves room for
                if iplen in (0, 32, 128):
                    raise NlriError(f"type-2 route: length {n} does not match IP length {iplen}")
                raise NlriError(f"type-2 route: bad IP length {iplen}")
            lpos = 30 + iplen // 8
            ip: IPAddress | None = None if iplen == 0 else _ip_from(value[30:lpos], "type-2 route")
            label2 = int.from_bytes(value[lpos + 3 : lpos + 6], "big") if layout[2] else None
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


_NO_LAYOUTS: dict[int, _Type2Layout] = {}
_FAST = True  # for the check itself
_FAST = _fast_path_works()
