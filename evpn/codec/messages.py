"""Whole BGP messages (RFC 4271 §4): header framing, OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH.

Decoding never raises anything but ``MessageError`` (evpn.errors), which carries the RFC 7606 outcome.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import cast

from evpn.codec.attributes import (
    AttrFlag,
    AttributeProblem,
    AttrType,
    PathAttributes,
    decode_path_attributes,
    encode_attribute,
)
from evpn.codec.capabilities import Capability, decode_capability, encode_capability
from evpn.codec.evpn_nlri import (
    EvpnNlriDecoder,
    EvpnRoute,
    IPAddress,
    IPNetwork,
    NlriError,
    encode_evpn_route,
)
from evpn.codec.families import Afi, Family, Safi
from evpn.codec.prefixes import decode_prefixes, encode_prefix
from evpn.errors import (
    HeaderSubcode,
    InvalidValue,
    MessageError,
    NotificationCode,
    OpenSubcode,
    Rfc7606Action,
    RouteRefreshSubcode,
    UpdateSubcode,
    session_reset,
    update_error,
)

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE = 4096
MAX_EXTENDED_MESSAGE = 65535  # RFC 8654

Route = EvpnRoute | IPNetwork


class MessageType(enum.IntEnum):
    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


@dataclass(frozen=True, slots=True)
class Open:
    """OPEN (RFC 4271 §4.2); ``my_as`` is the 2-octet field (AS_TRANS for 4-octet ASNs, RFC 6793)."""

    my_as: int
    hold_time: int
    bgp_id: ipaddress.IPv4Address
    capabilities: tuple[Capability, ...] = ()
    version: int = 4

    def encode(self) -> bytes:
        caps = b"".join(encode_capability(c) for c in self.capabilities)
        if not caps:
            body_params = b"\x00"
        elif len(caps) + 2 <= 255:
            body_params = bytes((len(caps) + 2, 2, len(caps))) + caps
        else:  # RFC 9072 extended optional parameters
            param = b"\x02" + len(caps).to_bytes(2, "big") + caps
            body_params = b"\xff\xff" + len(param).to_bytes(2, "big") + param
        body = (
            bytes((self.version,))
            + self.my_as.to_bytes(2, "big")
            + self.hold_time.to_bytes(2, "big")
            + self.bgp_id.packed
            + body_params
        )
        return frame(MessageType.OPEN, body)


@dataclass(frozen=True, slots=True)
class Keepalive:
    def encode(self) -> bytes:
        return frame(MessageType.KEEPALIVE, b"")


@dataclass(frozen=True, slots=True)
class NotificationMessage:
    code: int
    subcode: int
    data: bytes = b""

    def encode(self) -> bytes:
        return frame(MessageType.NOTIFICATION, bytes((self.code, self.subcode)) + self.data)


@dataclass(frozen=True, slots=True)
class RouteRefreshMessage:
    """ROUTE-REFRESH (RFC 2918); subtype 1/2 are BoRR/EoRR of enhanced route refresh (RFC 7313)."""

    afi: int
    safi: int
    subtype: int = 0

    def encode(self) -> bytes:
        return frame(
            MessageType.ROUTE_REFRESH, self.afi.to_bytes(2, "big") + bytes((self.subtype, self.safi))
        )


@dataclass(frozen=True, slots=True)
class MpReach:
    """MP_REACH_NLRI (RFC 4760 §3); ``routes`` is empty and ``raw_nlri`` set for an unknown family."""

    afi: int
    safi: int
    next_hops: tuple[IPAddress, ...]
    routes: tuple[Route, ...]
    raw_nlri: bytes = b""

    @property
    def next_hop(self) -> IPAddress | None:
        return self.next_hops[0] if self.next_hops else None


@dataclass(frozen=True, slots=True)
class MpUnreach:
    """MP_UNREACH_NLRI (RFC 4760 §4); empty routes make an End-of-RIB (RFC 4724 §2)."""

    afi: int
    safi: int
    routes: tuple[Route, ...]
    raw_nlri: bytes = b""


@dataclass(frozen=True, slots=True)
class Update:
    """UPDATE (RFC 4271 §4.3). ``attributes`` is None when the message carries no path attributes."""

    withdrawn: tuple[ipaddress.IPv4Network, ...] = ()
    attributes: PathAttributes | None = None
    nlri: tuple[ipaddress.IPv4Network, ...] = ()
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    discarded: tuple[int, ...] = field(default=(), compare=False)

    @property
    def end_of_rib(self) -> Family | None:
        """The family this UPDATE marks End-of-RIB for, if it is one (RFC 4724 §2)."""
        if self.withdrawn or self.nlri or self.mp_reach is not None:
            return None
        if self.mp_unreach is None:
            return Family.IPV4_UNICAST if self.attributes is None else None
        if self.mp_unreach.routes or self.mp_unreach.raw_nlri:
            return None
        return Family.lookup(self.mp_unreach.afi, self.mp_unreach.safi)

    @property
    def announced_routes(self) -> tuple[Route, ...]:
        reach = self.mp_reach.routes if self.mp_reach is not None else ()
        return self.nlri + reach if self.nlri else reach

    @property
    def withdrawn_routes(self) -> tuple[Route, ...]:
        unreach = self.mp_unreach.routes if self.mp_unreach is not None else ()
        return self.withdrawn + unreach if self.withdrawn else unreach


Message = Open | Update | NotificationMessage | Keepalive | RouteRefreshMessage


def frame(kind: int, body: bytes) -> bytes:
    return MARKER + (HEADER_LEN + len(body)).to_bytes(2, "big") + bytes((kind,)) + body


def encode_mp_reach(family: Family, next_hop: bytes, nlri: bytes) -> bytes:
    value = family.afi.to_bytes(2, "big") + bytes((family.safi, len(next_hop))) + next_hop + b"\x00" + nlri
    return encode_attribute(AttrFlag.OPTIONAL, AttrType.MP_REACH_NLRI, value)


def encode_mp_unreach(family: Family, nlri: bytes) -> bytes:
    value = family.afi.to_bytes(2, "big") + bytes((family.safi,)) + nlri
    return encode_attribute(AttrFlag.OPTIONAL, AttrType.MP_UNREACH_NLRI, value)


def encode_route(route: Route) -> bytes:
    if isinstance(route, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return encode_prefix(route)
    return encode_evpn_route(route)


def family_of(route: Route) -> Family:
    if isinstance(route, ipaddress.IPv4Network):
        return Family.IPV4_UNICAST
    if isinstance(route, ipaddress.IPv6Network):
        return Family.IPV6_UNICAST
    return Family.L2VPN_EVPN


def end_of_rib(family: Family) -> bytes:
    """End-of-RIB marker (RFC 4724 §2)."""
    if family is Family.IPV4_UNICAST:
        return frame(MessageType.UPDATE, b"\x00\x00\x00\x00")
    attrs = encode_mp_unreach(family, b"")
    return frame(MessageType.UPDATE, b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs)


def encode_update(update: Update, four_octet_as: bool = True) -> bytes:
    """Encode an UPDATE as given (the packer builds size-bounded ones for bulk work)."""
    attrs = b""
    if update.mp_reach is not None:
        reach = update.mp_reach
        fam = Family.lookup(reach.afi, reach.safi)
        if fam is None:
            raise InvalidValue(f"cannot encode MP_REACH for AFI {reach.afi} SAFI {reach.safi}")
        nh = b"".join(h.packed for h in reach.next_hops)
        attrs += encode_mp_reach(fam, nh, b"".join(encode_route(r) for r in reach.routes))
    if update.mp_unreach is not None:
        unreach = update.mp_unreach
        fam = Family.lookup(unreach.afi, unreach.safi)
        if fam is None:
            raise InvalidValue(f"cannot encode MP_UNREACH for AFI {unreach.afi} SAFI {unreach.safi}")
        attrs += encode_mp_unreach(fam, b"".join(encode_route(r) for r in unreach.routes))
    if update.attributes is not None:
        attrs += update.attributes.encode(four_octet_as)
    withdrawn = b"".join(encode_prefix(p) for p in update.withdrawn)
    nlri = b"".join(encode_prefix(p) for p in update.nlri)
    body = len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big") + attrs + nlri
    return frame(MessageType.UPDATE, body)


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What the session negotiated that changes how bytes are read."""

    four_octet_as: bool = True
    ebgp: bool = False
    max_message: int = MAX_EXTENDED_MESSAGE


class MessageDecoder:
    """Decodes BGP messages for one session; caches shared attribute sets across UPDATEs."""

    def __init__(self, options: DecodeOptions | None = None) -> None:
        self.options = options or DecodeOptions()
        self._evpn = EvpnNlriDecoder()
        self._attr_cache: dict[bytes, tuple[PathAttributes, list[AttributeProblem]]] = {}

    # -- framing ---------------------------------------------------------------------------------------
    def split(self, buffer: bytes | bytearray) -> tuple[list[bytes], int]:
        """Cut complete messages off a stream buffer; returns them and the bytes consumed (RFC 4271 §4.1)."""
        out: list[bytes] = []
        pos = 0
        end = len(buffer)
        while end - pos >= HEADER_LEN:
            length = int.from_bytes(buffer[pos + 16 : pos + 18], "big")
            if buffer[pos : pos + 16] != MARKER:
                raise session_reset(
                    "message marker is not all ones",
                    NotificationCode.MESSAGE_HEADER_ERROR,
                    HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
                )
            if length < HEADER_LEN or length > self.options.max_message:
                raise session_reset(
                    f"message length {length} out of range",
                    NotificationCode.MESSAGE_HEADER_ERROR,
                    HeaderSubcode.BAD_MESSAGE_LENGTH,
                    length.to_bytes(2, "big"),
                )
            if end - pos < length:
                break
            out.append(bytes(buffer[pos : pos + length]))
            pos += length
        return out, pos

    def decode(self, data: bytes) -> Message:
        """Decode one whole message (header included)."""
        if type(data) is not bytes:  # bytearray/memoryview: values keep immutable bytes
            data = bytes(data)
        if len(data) < HEADER_LEN:
            raise session_reset(
                "message shorter than the header",
                NotificationCode.MESSAGE_HEADER_ERROR,
                HeaderSubcode.BAD_MESSAGE_LENGTH,
                len(data).to_bytes(2, "big") if len(data) < 65536 else b"",
            )
        if data[:16] != MARKER:
            raise session_reset(
                "message marker is not all ones",
                NotificationCode.MESSAGE_HEADER_ERROR,
                HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
            )
        length = int.from_bytes(data[16:18], "big")
        kind = data[18]
        if length != len(data) or length > self.options.max_message:
            raise session_reset(
                f"message length field {length} does not match {len(data)} bytes",
                NotificationCode.MESSAGE_HEADER_ERROR,
                HeaderSubcode.BAD_MESSAGE_LENGTH,
                data[16:18],
            )
        body = data[HEADER_LEN:]
        if kind == MessageType.UPDATE:
            if len(body) < 4:  # RFC 4271 §6.1: below the minimum length of its type
                raise _bad_length(length)
            return self.decode_update(body)
        if kind == MessageType.KEEPALIVE:
            if body:
                raise _bad_length(length)
            return Keepalive()
        if kind == MessageType.OPEN:
            if length > MAX_MESSAGE:  # RFC 8654 §4: extended messages never apply to OPEN
                raise _bad_length(length)
            return decode_open(body, length)
        if kind == MessageType.NOTIFICATION:
            if len(body) < 2:
                raise _bad_length(length)
            return NotificationMessage(body[0], body[1], bytes(body[2:]))
        if kind == MessageType.ROUTE_REFRESH:
            if len(body) != 4:
                if len(body) >= 3 and body[2] in (1, 2):
                    # RFC 7313 §5: a BoRR/EoRR not 4 bytes long: ROUTE-REFRESH Message Error, whole message
                    raise session_reset(
                        f"enhanced route refresh subtype {body[2]} with length {length}",
                        NotificationCode.ROUTE_REFRESH_MESSAGE_ERROR,
                        RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
                        bytes(data),
                    )
                raise _bad_length(length)
            return RouteRefreshMessage(int.from_bytes(body[:2], "big"), body[3], body[2])
        raise session_reset(
            f"unknown message type {kind}",
            NotificationCode.MESSAGE_HEADER_ERROR,
            HeaderSubcode.BAD_MESSAGE_TYPE,
            bytes((kind,)),
        )

    # -- UPDATE ----------------------------------------------------------------------------------------
    def decode_update(self, body: bytes) -> Update:
        """Decode an UPDATE body, applying RFC 7606; see MessageError for the outcomes."""
        n = len(body)
        if n < 4:
            raise update_error(
                "UPDATE shorter than its length fields", UpdateSubcode.MALFORMED_ATTRIBUTE_LIST
            )
        wlen = int.from_bytes(body[:2], "big")
        if 2 + wlen + 2 > n:
            raise update_error(
                "withdrawn routes length overruns the UPDATE", UpdateSubcode.MALFORMED_ATTRIBUTE_LIST
            )
        alen_pos = 2 + wlen
        alen = int.from_bytes(body[alen_pos : alen_pos + 2], "big")
        astart = alen_pos + 2
        aend = astart + alen
        if aend > n:
            raise update_error(
                "total path attribute length overruns the UPDATE", UpdateSubcode.MALFORMED_ATTRIBUTE_LIST
            )
        try:
            withdrawn = cast(
                list[ipaddress.IPv4Network], decode_prefixes(body[2:alen_pos], 4) if wlen else []
            )
            nlri = cast(list[ipaddress.IPv4Network], decode_prefixes(body[aend:], 4) if aend < n else [])
        except NlriError as exc:  # RFC 7606 §5.3: NLRI that cannot be parsed: session reset
            raise update_error(f"IPv4 NLRI: {exc}", UpdateSubcode.INVALID_NETWORK_FIELD) from exc

        raw_attrs, framing_error = _split_attributes(body, astart, aend)
        reach: MpReach | None = None
        unreach: MpUnreach | None = None
        others: list[tuple[int, int, bytes]] = []
        seen: set[int] = set()
        problems: list[AttributeProblem] = []
        for flags, code, value in raw_attrs:
            if code in seen:
                if code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
                    raise update_error(
                        f"attribute {code} appears twice (RFC 7606 §3.g)",
                        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    )
                problems.append(
                    AttributeProblem(code, f"duplicate attribute {code}", Rfc7606Action.ATTRIBUTE_DISCARD)
                )
                continue
            seen.add(code)
            if code == AttrType.MP_REACH_NLRI:
                reach, problem = self._decode_mp_reach(flags, value)
                if problem is not None:
                    problems.append(problem)
            elif code == AttrType.MP_UNREACH_NLRI:
                unreach = self._decode_mp_unreach(flags, value)
            else:
                others.append((flags, code, value))

        if others:
            key = b"".join(bytes((f, c)) + len(v).to_bytes(2, "big") + v for f, c, v in others)
            cached = self._attr_cache.get(key)
            if cached is None:
                cached = decode_path_attributes(
                    others, four_octet_as=self.options.four_octet_as, ebgp=self.options.ebgp
                )
                if len(self._attr_cache) > 4096:
                    self._attr_cache.clear()
                self._attr_cache[key] = cached
            attributes: PathAttributes | None = cached[0]
            if nlri:
                problems.extend(cached[1])
            else:
                # RFC 4760 §3: without body NLRI a NEXT_HOP attribute is ignored, a malformed one included
                problems.extend(p for p in cached[1] if p.type_code != AttrType.NEXT_HOP)
        else:
            attributes = None

        update = Update(
            tuple(withdrawn),
            attributes,
            tuple(nlri),
            reach,
            unreach,
        )
        announcing = bool(nlri) or (reach is not None and bool(reach.routes))
        if framing_error is not None:
            # RFC 7606 §4 and §5.3: treat-as-withdraw needs every NLRI located; an MP_REACH_NLRI may lie past
            # the break unless one was already found, so without one the session is reset.
            if reach is None:
                raise update_error(framing_error, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST)
            problems.append(AttributeProblem(0, framing_error, Rfc7606Action.TREAT_AS_WITHDRAW))
        if announcing and attributes is not None:
            missing = [
                name
                for code, name in ((AttrType.ORIGIN, "ORIGIN"), (AttrType.AS_PATH, "AS_PATH"))
                if code not in seen
            ]
            if nlri and AttrType.NEXT_HOP not in seen:
                missing.append("NEXT_HOP")
            if missing:
                problems.append(
                    AttributeProblem(
                        0,
                        f"missing mandatory {', '.join(missing)} (RFC 7606 §3.d)",
                        Rfc7606Action.TREAT_AS_WITHDRAW,
                    )
                )
        elif announcing:
            problems.append(
                AttributeProblem(
                    0, "NLRI without path attributes (RFC 7606 §3.d)", Rfc7606Action.TREAT_AS_WITHDRAW
                )
            )
        if not problems:
            return update
        return _apply_problems(update, problems)

    def _decode_mp_reach(self, flags: int, value: bytes) -> tuple[MpReach, AttributeProblem | None]:
        n = len(value)
        if n < 5:
            raise update_error(
                "MP_REACH_NLRI too short (RFC 7606 §7.11)", UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR
            )
        afi = int.from_bytes(value[:2], "big")
        safi = value[2]
        nhlen = value[3]
        nh_end = 4 + nhlen
        if nh_end + 1 > n:
            raise update_error(
                "MP_REACH_NLRI next hop overruns (RFC 7606 §7.11)", UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR
            )
        nlri_raw = value[nh_end + 1 :]
        problem: AttributeProblem | None = None
        if (flags & (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)) != AttrFlag.OPTIONAL:
            problem = AttributeProblem(
                14, "MP_REACH_NLRI flags wrong (RFC 7606 §3.c)", Rfc7606Action.TREAT_AS_WITHDRAW
            )
        routes = self._decode_family_nlri(afi, safi, nlri_raw)
        family = Family.lookup(afi, safi)
        next_hops: tuple[IPAddress, ...] = ()
        nh_raw = value[4:nh_end]
        if family is not None:
            if nhlen in (4, 16):
                next_hops = (ipaddress.ip_address(bytes(nh_raw)),)
            elif nhlen == 32:
                next_hops = (
                    ipaddress.IPv6Address(bytes(nh_raw[:16])),
                    ipaddress.IPv6Address(bytes(nh_raw[16:])),
                )
            else:
                # RFC 7606 §7.11: a next hop length inconsistent with the family is treat-as-withdraw.
                problem = AttributeProblem(
                    14, f"MP_REACH_NLRI next hop length {nhlen}", Rfc7606Action.TREAT_AS_WITHDRAW
                )
            if family is Family.IPV4_UNICAST and nhlen != 4:
                problem = AttributeProblem(
                    14, f"IPv4 next hop length {nhlen}", Rfc7606Action.TREAT_AS_WITHDRAW
                )
        raw = b"" if family is not None else bytes(nlri_raw)
        return MpReach(afi, safi, next_hops, tuple(routes), raw), problem

    def _decode_mp_unreach(self, flags: int, value: bytes) -> MpUnreach:
        if len(value) < 3:
            raise update_error(
                "MP_UNREACH_NLRI too short (RFC 7606 §7.12)", UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR
            )
        afi = int.from_bytes(value[:2], "big")
        safi = value[2]
        routes = self._decode_family_nlri(afi, safi, value[3:])
        raw = b"" if Family.lookup(afi, safi) is not None else bytes(value[3:])
        return MpUnreach(afi, safi, tuple(routes), raw)

    def _decode_family_nlri(self, afi: int, safi: int, data: bytes) -> list[Route]:
        """RFC 7606 §5.3: NLRI inside MP attributes that cannot be parsed resets the session."""
        try:
            if afi == Afi.L2VPN and safi == Safi.EVPN:
                return list(self._evpn.decode_all(data))
            if safi == Safi.UNICAST and afi in (Afi.IPV4, Afi.IPV6):
                return list(decode_prefixes(data, 4 if afi == Afi.IPV4 else 6))
        except (NlriError, ValueError) as exc:  # ValueError: a field the NLRI decoder failed to check
            raise update_error(
                f"AFI {afi}/SAFI {safi} NLRI: {exc}", UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR
            ) from exc
        return []


def _apply_problems(update: Update, problems: list[AttributeProblem]) -> Update:
    """Raise the strongest RFC 7606 outcome among the problems found (RFC 7606 §2 order)."""
    reason = "; ".join(p.reason for p in problems)
    for p in problems:
        if p.action is Rfc7606Action.SESSION_RESET:
            raise update_error(p.reason, UpdateSubcode(p.subcode), p.data)
    if any(p.action is Rfc7606Action.TREAT_AS_WITHDRAW for p in problems):
        gone = update.withdrawn_routes + update.announced_routes
        raise MessageError(reason, Rfc7606Action.TREAT_AS_WITHDRAW, withdrawn=gone, update=update)
    discarded = tuple(sorted({p.type_code for p in problems}))
    kept = Update(
        update.withdrawn, update.attributes, update.nlri, update.mp_reach, update.mp_unreach, discarded
    )
    raise MessageError(reason, Rfc7606Action.ATTRIBUTE_DISCARD, discarded=discarded, update=kept)


def _split_attributes(body: bytes, start: int, end: int) -> tuple[list[tuple[int, int, bytes]], str | None]:
    """Cut the attribute block into (flags, type, value); stops at the first framing error (RFC 7606 §4)."""
    out: list[tuple[int, int, bytes]] = []
    pos = start
    while pos < end:
        if pos + 3 > end:
            return out, "attribute header truncated"
        flags = body[pos]
        code = body[pos + 1]
        if flags & AttrFlag.EXTENDED_LENGTH:
            if pos + 4 > end:
                return out, "attribute header truncated"
            alen = int.from_bytes(body[pos + 2 : pos + 4], "big")
            vstart = pos + 4
        else:
            alen = body[pos + 2]
            vstart = pos + 3
        pos = vstart + alen
        if pos > end:
            return out, f"attribute {code} length {alen} overruns the attribute block"
        out.append((flags, code, body[vstart:pos]))
    return out, None


def _bad_length(length: int) -> MessageError:
    return session_reset(
        f"bad message length {length} for its type",
        NotificationCode.MESSAGE_HEADER_ERROR,
        HeaderSubcode.BAD_MESSAGE_LENGTH,
        length.to_bytes(2, "big"),
    )


def _open_error(reason: str, subcode: OpenSubcode, data: bytes = b"") -> MessageError:
    return session_reset(reason, NotificationCode.OPEN_MESSAGE_ERROR, subcode, data)


def decode_open(body: bytes, length: int) -> Open:
    """Decode an OPEN body (RFC 4271 §4.2, RFC 5492, RFC 9072 extended optional parameters)."""
    if len(body) < 10:
        raise _bad_length(length)
    version = body[0]
    if version != 4:
        raise _open_error(
            f"unsupported BGP version {version}", OpenSubcode.UNSUPPORTED_VERSION_NUMBER, b"\x00\x04"
        )
    my_as = int.from_bytes(body[1:3], "big")
    hold = int.from_bytes(body[3:5], "big")
    if hold in (1, 2):
        raise _open_error(f"unacceptable hold time {hold}", OpenSubcode.UNACCEPTABLE_HOLD_TIME)
    bgp_id = ipaddress.IPv4Address(body[5:9])
    if int(bgp_id) == 0:
        raise _open_error("BGP identifier 0.0.0.0", OpenSubcode.BAD_BGP_IDENTIFIER)
    plen = body[9]
    pos = 10
    extended = False
    if plen == 255 and len(body) >= 13 and body[10] == 255:
        extended = True
        plen = int.from_bytes(body[11:13], "big")
        pos = 13
    if pos + plen != len(body):
        raise _open_error(
            "optional parameters length does not match the OPEN", OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER
        )
    caps: list[Capability] = []
    end = pos + plen
    while pos < end:
        head = 3 if extended else 2
        if pos + head > end:
            raise _open_error("optional parameter truncated", OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER)
        ptype = body[pos]
        vlen = int.from_bytes(body[pos + 1 : pos + 3], "big") if extended else body[pos + 1]
        vstart = pos + head
        pos = vstart + vlen
        if pos > end:
            raise _open_error("optional parameter overruns", OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER)
        if ptype != 2:
            raise _open_error(
                f"unsupported optional parameter {ptype}", OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER
            )
        cpos = vstart
        while cpos < pos:
            if cpos + 2 > pos:
                raise _open_error("capability truncated", OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER)
            code, clen = body[cpos], body[cpos + 1]
            cstart = cpos + 2
            cpos = cstart + clen
            if cpos > pos:
                raise _open_error(
                    "capability overruns its parameter", OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER
                )
            try:
                caps.append(decode_capability(code, bytes(body[cstart:cpos])))
            except InvalidValue as exc:
                raise _open_error(
                    str(exc), OpenSubcode.UNSUPPORTED_CAPABILITY, bytes(body[cstart - 2 : cpos])
                ) from exc
    return Open(my_as, hold, bgp_id, tuple(caps), version)


def decode_message(data: bytes, options: DecodeOptions | None = None) -> Message:
    """Decode one message with a fresh decoder (tests and tools; sessions keep a MessageDecoder)."""
    return MessageDecoder(options).decode(data)
