"""BGP path attributes (RFC 4271 §4.3, §5) other than MP_REACH/MP_UNREACH, with RFC 7606 error outcomes."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

from evpn.codec.extcommunity import (
    DefaultGateway,
    Encapsulation,
    ExtCommunity,
    MacMobility,
    RouterMac,
    decode_ext_community,
)
from evpn.codec.pmsi import PmsiTunnel
from evpn.errors import InvalidValue, Rfc7606Action, UpdateSubcode
from evpn.mac import MacAddress
from evpn.route_target import RouteTarget


class AttrType(enum.IntEnum):
    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    PMSI_TUNNEL = 22


class AttrFlag(enum.IntFlag):
    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


_OPT = AttrFlag.OPTIONAL
_TRANS = AttrFlag.TRANSITIVE
# Expected optional/transitive bits per attribute (RFC 4271 §5, RFC 4456, RFC 4360, RFC 6514, RFC 4760).
EXPECTED_FLAGS: dict[int, int] = {
    AttrType.ORIGIN: _TRANS,
    AttrType.AS_PATH: _TRANS,
    AttrType.NEXT_HOP: _TRANS,
    AttrType.MULTI_EXIT_DISC: _OPT,
    AttrType.LOCAL_PREF: _TRANS,
    AttrType.ATOMIC_AGGREGATE: _TRANS,
    AttrType.AGGREGATOR: _OPT | _TRANS,
    AttrType.COMMUNITIES: _OPT | _TRANS,
    AttrType.ORIGINATOR_ID: _OPT,
    AttrType.CLUSTER_LIST: _OPT,
    AttrType.MP_REACH_NLRI: _OPT,
    AttrType.MP_UNREACH_NLRI: _OPT,
    AttrType.EXTENDED_COMMUNITIES: _OPT | _TRANS,
    AttrType.AS4_PATH: _OPT | _TRANS,
    AttrType.AS4_AGGREGATOR: _OPT | _TRANS,
    AttrType.PMSI_TUNNEL: _OPT | _TRANS,
}


_DISCARD_ON_BAD_FLAGS = frozenset(
    (AttrType.ATOMIC_AGGREGATE, AttrType.AGGREGATOR, AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR)
)


class Origin(enum.IntEnum):
    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class SegmentType(enum.IntEnum):
    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


@dataclass(frozen=True, slots=True)
class AsPathSegment:
    type: SegmentType
    asns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AsPath:
    """AS_PATH with 4-octet AS numbers (RFC 6793)."""

    segments: tuple[AsPathSegment, ...] = ()

    @classmethod
    def sequence(cls, *asns: int) -> AsPath:
        return cls((AsPathSegment(SegmentType.AS_SEQUENCE, tuple(asns)),)) if asns else cls()

    @property
    def length(self) -> int:
        """Path length for best path: a set counts one, confederation segments nothing (RFC 4271 §9.1.2.2)."""
        total = 0
        for seg in self.segments:
            if seg.type == SegmentType.AS_SEQUENCE:
                total += len(seg.asns)
            elif seg.type == SegmentType.AS_SET:
                total += 1
        return total

    @property
    def first_asn(self) -> int | None:
        for seg in self.segments:
            if seg.type == SegmentType.AS_SEQUENCE and seg.asns:
                return seg.asns[0]
            if seg.type in (SegmentType.AS_SET, SegmentType.AS_SEQUENCE):
                return None
        return None

    def contains(self, asn: int) -> bool:
        return any(asn in seg.asns for seg in self.segments)

    def prepend(self, asn: int) -> AsPath:
        """Prepend for an eBGP advertisement (RFC 4271 §5.1.2)."""
        if (
            self.segments
            and self.segments[0].type == SegmentType.AS_SEQUENCE
            and len(self.segments[0].asns) < 255
        ):
            first = AsPathSegment(SegmentType.AS_SEQUENCE, (asn, *self.segments[0].asns))
            return AsPath((first, *self.segments[1:]))
        return AsPath((AsPathSegment(SegmentType.AS_SEQUENCE, (asn,)), *self.segments))

    def encode(self, four_octet: bool = True) -> bytes:
        width = 4 if four_octet else 2
        out = bytearray()
        for seg in self.segments:
            if not seg.asns:  # a zero-length segment is malformed (RFC 7606 §7.2): leave it out
                continue
            for i in range(0, len(seg.asns), 255):
                chunk = seg.asns[i : i + 255]
                out += bytes((seg.type, len(chunk)))
                for asn in chunk:
                    out += (asn if width == 4 or asn < 65536 else 23456).to_bytes(width, "big")
        return bytes(out)

    def __str__(self) -> str:
        parts = []
        for seg in self.segments:
            text = " ".join(str(a) for a in seg.asns)
            if seg.type == SegmentType.AS_SET:
                text = "{" + text.replace(" ", ",") + "}"
            elif seg.type in (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET):
                text = "(" + text + ")"
            parts.append(text)
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class UnknownAttribute:
    """An attribute this speaker does not interpret; optional transitive ones are passed on (RFC 4271 §5)."""

    flags: int
    type_code: int
    value: bytes


@dataclass(frozen=True, slots=True)
class PathAttributes:
    """The attributes of a path, shared by every NLRI of an UPDATE (MP_REACH/MP_UNREACH excluded)."""

    origin: Origin = Origin.IGP
    as_path: AsPath = field(default_factory=AsPath)
    next_hop: ipaddress.IPv4Address | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: tuple[int, ipaddress.IPv4Address] | None = None
    communities: tuple[int, ...] = ()
    originator_id: ipaddress.IPv4Address | None = None
    cluster_list: tuple[ipaddress.IPv4Address, ...] = ()
    ext_communities: tuple[ExtCommunity, ...] = ()
    pmsi: PmsiTunnel | None = None
    unknown: tuple[UnknownAttribute, ...] = ()

    @property
    def route_targets(self) -> tuple[RouteTarget, ...]:
        return tuple(c for c in self.ext_communities if isinstance(c, RouteTarget))

    @property
    def router_mac(self) -> MacAddress | None:
        for c in self.ext_communities:
            if isinstance(c, RouterMac):
                return c.mac
        return None

    @property
    def mac_mobility(self) -> MacMobility | None:
        for c in self.ext_communities:
            if isinstance(c, MacMobility):
                return c
        return None

    @property
    def default_gateway(self) -> bool:
        return any(isinstance(c, DefaultGateway) for c in self.ext_communities)

    @property
    def encapsulation(self) -> int | None:
        for c in self.ext_communities:
            if isinstance(c, Encapsulation):
                return c.tunnel_type
        return None

    def encode(self, four_octet_as: bool = True) -> bytes:
        """Encode in type-code order (RFC 4271 §5: any order is valid; ascending is conventional)."""
        out: list[bytes] = [
            encode_attribute(_TRANS, AttrType.ORIGIN, bytes((self.origin,))),
            encode_attribute(_TRANS, AttrType.AS_PATH, self.as_path.encode(four_octet_as)),
        ]
        if self.next_hop is not None:
            out.append(encode_attribute(_TRANS, AttrType.NEXT_HOP, self.next_hop.packed))
        if self.med is not None:
            out.append(encode_attribute(_OPT, AttrType.MULTI_EXIT_DISC, self.med.to_bytes(4, "big")))
        if self.local_pref is not None:
            out.append(encode_attribute(_TRANS, AttrType.LOCAL_PREF, self.local_pref.to_bytes(4, "big")))
        if self.atomic_aggregate:
            out.append(encode_attribute(_TRANS, AttrType.ATOMIC_AGGREGATE, b""))
        if self.aggregator is not None:
            asn, ip = self.aggregator
            # 2-octet AS between old speakers, AS_TRANS for a 4-octet ASN (RFC 4271 §5.1.7, RFC 6793 §4.2.2).
            if four_octet_as:
                agg_as = asn.to_bytes(4, "big")
            else:
                agg_as = (asn if asn < 65536 else 23456).to_bytes(2, "big")
            out.append(encode_attribute(_OPT | _TRANS, AttrType.AGGREGATOR, agg_as + ip.packed))
        if self.communities:
            value = b"".join(c.to_bytes(4, "big") for c in self.communities)
            out.append(encode_attribute(_OPT | _TRANS, AttrType.COMMUNITIES, value))
        if self.originator_id is not None:
            out.append(encode_attribute(_OPT, AttrType.ORIGINATOR_ID, self.originator_id.packed))
        if self.cluster_list:
            out.append(
                encode_attribute(_OPT, AttrType.CLUSTER_LIST, b"".join(c.packed for c in self.cluster_list))
            )
        if self.ext_communities:
            value = b"".join(c.packed for c in self.ext_communities)
            out.append(encode_attribute(_OPT | _TRANS, AttrType.EXTENDED_COMMUNITIES, value))
        if self.pmsi is not None:
            out.append(encode_attribute(_OPT | _TRANS, AttrType.PMSI_TUNNEL, self.pmsi.encode()))
        for attr in self.unknown:
            flags = attr.flags | AttrFlag.PARTIAL if attr.flags & _OPT and attr.flags & _TRANS else attr.flags
            out.append(encode_attribute(flags & ~AttrFlag.EXTENDED_LENGTH, attr.type_code, attr.value))
        return b"".join(out)


def encode_attribute(flags: int, type_code: int, value: bytes) -> bytes:
    """One attribute TLV, with the extended-length flag when the value exceeds 255 bytes (RFC 4271 §4.3)."""
    if len(value) > 255:
        if len(value) > 65535:
            raise InvalidValue(f"attribute {type_code} longer than 65535 bytes")
        return bytes((flags | AttrFlag.EXTENDED_LENGTH, type_code)) + len(value).to_bytes(2, "big") + value
    return bytes((flags & ~AttrFlag.EXTENDED_LENGTH, type_code, len(value))) + value


class AttributeProblem(Exception):
    """One attribute is malformed; ``action`` is its RFC 7606 outcome (raised and caught inside the codec)."""

    def __init__(
        self,
        type_code: int,
        reason: str,
        action: Rfc7606Action,
        subcode: int = UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
        data: bytes = b"",
    ) -> None:
        super().__init__(reason)
        self.type_code = type_code
        self.reason = reason
        self.action = action
        # for a session reset: the UPDATE Message Error subcode and data to send (RFC 4271 §6.3)
        self.subcode = subcode
        self.data = data


def _taw(type_code: int, reason: str) -> AttributeProblem:
    return AttributeProblem(type_code, reason, Rfc7606Action.TREAT_AS_WITHDRAW)


def _discard(type_code: int, reason: str) -> AttributeProblem:
    return AttributeProblem(type_code, reason, Rfc7606Action.ATTRIBUTE_DISCARD)


def decode_as_path(value: bytes, width: int, type_code: int = AttrType.AS_PATH) -> AsPath:
    """Decode AS_PATH; malformed is treat-as-withdraw (RFC 7606 §7.2)."""
    segments = []
    pos = 0
    end = len(value)
    while pos < end:
        if pos + 2 > end:
            raise _taw(type_code, "AS_PATH segment header truncated")
        seg_type, count = value[pos], value[pos + 1]
        if seg_type not in (1, 2, 3, 4):
            raise _taw(type_code, f"AS_PATH segment type {seg_type} unknown")
        if count == 0:
            raise _taw(type_code, "AS_PATH segment of zero length")
        start = pos + 2
        pos = start + count * width
        if pos > end:
            raise _taw(type_code, "AS_PATH segment overruns the attribute")
        asns = tuple(int.from_bytes(value[i : i + width], "big") for i in range(start, pos, width))
        segments.append(AsPathSegment(SegmentType(seg_type), asns))
    return AsPath(tuple(segments))


def _ipv4_list(type_code: int, value: bytes, what: str) -> tuple[ipaddress.IPv4Address, ...]:
    if not value or len(value) % 4:
        raise _taw(type_code, f"{what} length {len(value)} is not a positive multiple of 4")
    return tuple(ipaddress.IPv4Address(value[i : i + 4]) for i in range(0, len(value), 4))


def decode_path_attributes(
    raw: list[tuple[int, int, bytes]], *, four_octet_as: bool = True, ebgp: bool = False
) -> tuple[PathAttributes, list[AttributeProblem]]:
    """Interpret attribute TLVs (flags, type, value), MP attributes already removed.

    Returns the attributes kept and every problem found; the caller picks the strongest RFC 7606 outcome.
    """
    problems: list[AttributeProblem] = []
    kw: dict[str, object] = {}
    unknown: list[UnknownAttribute] = []
    width = 4 if four_octet_as else 2
    for flags, code, value in raw:
        try:
            expected = EXPECTED_FLAGS.get(code)
            if expected is None:
                if not flags & _OPT:
                    # RFC 4271 §6.3: Unrecognized Well-known Attribute, data is the attribute: session reset.
                    raise AttributeProblem(
                        code,
                        f"unrecognized well-known attribute {code}",
                        Rfc7606Action.SESSION_RESET,
                        UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                        encode_attribute(flags, code, bytes(value)),
                    )
                if flags & _TRANS:
                    # The Extended Length bit only frames this copy (RFC 4271 §4.3); encode sets it again.
                    unknown.append(
                        UnknownAttribute(int(flags & ~AttrFlag.EXTENDED_LENGTH), code, bytes(value))
                    )
                continue
            if (flags & (_OPT | _TRANS)) != expected:
                # RFC 7606 §7.6-7.7 and RFC 6793 §6 mandate attribute discard for these, flags included
                if code in _DISCARD_ON_BAD_FLAGS:
                    raise _discard(code, f"attribute {code} flags 0x{flags:02x} wrong")
                raise _taw(code, f"attribute {AttrType(code).name} flags 0x{flags:02x} wrong (RFC 7606 §3.c)")
            _decode_known(code, value, kw, width, ebgp)
        except AttributeProblem as problem:
            problems.append(problem)
    if unknown:
        kw["unknown"] = tuple(unknown)
    return PathAttributes(**kw), problems  # type: ignore[arg-type]


def _decode_known(code: int, value: bytes, kw: dict[str, object], width: int, ebgp: bool) -> None:
    n = len(value)
    if code == AttrType.ORIGIN:
        if n != 1 or value[0] > 2:
            raise _taw(code, "ORIGIN malformed (RFC 7606 §7.1)")
        kw["origin"] = Origin(value[0])
    elif code == AttrType.AS_PATH:
        kw["as_path"] = decode_as_path(value, width)
    elif code == AttrType.NEXT_HOP:
        if n != 4:
            raise _taw(code, f"NEXT_HOP length {n} (RFC 7606 §7.3)")
        kw["next_hop"] = ipaddress.IPv4Address(value)
    elif code == AttrType.MULTI_EXIT_DISC:
        if n != 4:
            raise _taw(code, f"MULTI_EXIT_DISC length {n} (RFC 7606 §7.4)")
        kw["med"] = int.from_bytes(value, "big")
    elif code == AttrType.LOCAL_PREF:
        if ebgp:
            raise _discard(code, "LOCAL_PREF from an external peer (RFC 7606 §7.5)")
        if n != 4:
            raise _taw(code, f"LOCAL_PREF length {n} (RFC 7606 §7.5)")
        kw["local_pref"] = int.from_bytes(value, "big")
    elif code == AttrType.ATOMIC_AGGREGATE:
        if n != 0:
            raise _discard(code, "ATOMIC_AGGREGATE length not 0 (RFC 7606 §7.6)")
        kw["atomic_aggregate"] = True
    elif code == AttrType.AGGREGATOR:
        if n != width + 4:
            raise _discard(code, f"AGGREGATOR length {n} (RFC 7606 §7.7)")
        kw["aggregator"] = (int.from_bytes(value[:width], "big"), ipaddress.IPv4Address(value[width:]))
    elif code == AttrType.COMMUNITIES:
        if not n or n % 4:
            raise _taw(code, f"COMMUNITIES length {n} (RFC 7606 §7.8)")
        kw["communities"] = tuple(int.from_bytes(value[i : i + 4], "big") for i in range(0, n, 4))
    elif code == AttrType.ORIGINATOR_ID:
        if n != 4:
            raise _taw(code, f"ORIGINATOR_ID length {n} (RFC 7606 §7.9)")
        kw["originator_id"] = ipaddress.IPv4Address(value)
    elif code == AttrType.CLUSTER_LIST:
        kw["cluster_list"] = _ipv4_list(code, value, "CLUSTER_LIST (RFC 7606 §7.10)")
    elif code == AttrType.EXTENDED_COMMUNITIES:
        if not n or n % 8:
            raise _taw(code, f"EXTENDED_COMMUNITIES length {n} (RFC 7606 §7.14)")
        kw["ext_communities"] = tuple(decode_ext_community(value[i : i + 8]) for i in range(0, n, 8))
    elif code == AttrType.PMSI_TUNNEL:
        try:
            kw["pmsi"] = PmsiTunnel.decode(value)
        except InvalidValue as exc:
            raise _taw(code, f"PMSI_TUNNEL: {exc}") from exc
    elif code in (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR) and width == 4:
        # Between two 4-octet speakers these are discarded (RFC 6793 §4.1).
        raise _discard(code, f"{AttrType(code).name} from a 4-octet AS speaker (RFC 6793 §4.1)")
