"""EVPN NLRI route types 1-5 and unknown types (RFC 7432 §7, RFC 9136 §3.1, RFC 8365 §5.1.3)."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evpn.codec.evpn_nlri import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnNlriDecoder,
    EvpnRoute,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    MacIpRoute,
    NlriError,
    UnknownEvpnRoute,
    decode_evpn_nlri,
    encode_evpn_route,
)
from evpn.errors import InvalidValue
from evpn.esi import ZERO_ESI, Esi
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from tests.unit import strategies as s

FAST = settings(max_examples=250, deadline=None)
RD = RouteDistinguisher.from_text("10.0.0.1:3")
MAC = MacAddress.from_text("00:11:22:33:44:55")
V4 = ipaddress.IPv4Address("10.1.1.1")
V6 = ipaddress.IPv6Address("2001:db8::1")


def _round_trip(route: EvpnRoute) -> None:
    wire = encode_evpn_route(route)
    assert wire[0] == route.route_type
    assert wire[1] == len(wire) - 2
    assert decode_evpn_nlri(wire) == [route]


@FAST
@given(s.ethernet_ad_routes)
def test_type1_round_trip(route: EthernetAdRoute) -> None:
    _round_trip(route)
    assert len(encode_evpn_route(route)) == 2 + 25


@FAST
@given(s.mac_ip_routes)
def test_type2_round_trip(route: MacIpRoute) -> None:
    _round_trip(route)
    iplen = 0 if route.ip is None else len(route.ip.packed)
    assert len(encode_evpn_route(route)) == 2 + 30 + iplen + (3 if route.label2 is None else 6)


@FAST
@given(s.inclusive_multicast_routes)
def test_type3_round_trip(route: InclusiveMulticastRoute) -> None:
    _round_trip(route)


@FAST
@given(s.ethernet_segment_routes)
def test_type4_round_trip(route: EthernetSegmentRoute) -> None:
    _round_trip(route)


@FAST
@given(s.ip_prefix_routes())
def test_type5_round_trip(route: IpPrefixRoute) -> None:
    _round_trip(route)
    assert len(encode_evpn_route(route)) == 2 + (34 if route.prefix.version == 4 else 58)


@FAST
@given(s.unknown_evpn_routes)
def test_unknown_route_type_is_opaque_and_reencoded_unchanged(route: UnknownEvpnRoute) -> None:
    """RFC 7432 §7: an unknown route type is kept and re-encoded byte for byte."""
    wire = encode_evpn_route(route)
    (decoded,) = decode_evpn_nlri(wire)
    assert isinstance(decoded, UnknownEvpnRoute)
    assert encode_evpn_route(decoded) == wire


@FAST
@given(st.lists(s.evpn_routes, max_size=12))
def test_route_list_round_trip(routes: list[EvpnRoute]) -> None:
    wire = b"".join(encode_evpn_route(r) for r in routes)
    assert decode_evpn_nlri(wire) == routes


# -- exact wire layouts (DESIGN §3 table) -------------------------------------------------------------
def test_type2_vni_carried_as_is() -> None:
    """RFC 8365 §5.1.3: VNI 110 is 00 00 6e (no 4-bit MPLS shift)."""
    route = MacIpRoute(RD, MAC, V4, 110, 4001)
    wire = encode_evpn_route(route)
    assert wire[:2] == bytes((2, 40))
    assert wire[-6:] == bytes.fromhex("00006e000fa1")
    assert wire[2:10] == RD.packed
    assert wire[10:20] == ZERO_ESI.packed
    assert wire[24] == 48
    assert wire[25:31] == MAC.packed
    assert wire[31] == 32
    assert wire[32:36] == V4.packed


@pytest.mark.parametrize(
    ("ip", "label2", "length"),
    [(None, None, 33), (None, 7, 36), (V4, None, 37), (V4, 7, 40), (V6, None, 49), (V6, 7, 52)],
)
def test_type2_lengths(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, label2: int | None, length: int
) -> None:
    wire = encode_evpn_route(MacIpRoute(RD, MAC, ip, 1, label2))
    assert wire[1] == length


def test_type3_layout() -> None:
    wire = encode_evpn_route(InclusiveMulticastRoute(RD, V4, 5))
    assert wire.hex() == "0311" + RD.packed.hex() + "00000005" + "20" + "0a010101"
    assert encode_evpn_route(InclusiveMulticastRoute(RD, V6))[1] == 29


def test_type4_layout() -> None:
    esi = Esi.lacp(MAC, 1)
    assert encode_evpn_route(EthernetSegmentRoute(RD, esi, V4))[1] == 23
    assert encode_evpn_route(EthernetSegmentRoute(RD, esi, V6))[1] == 35


def test_type5_layout_and_zero_gateway() -> None:
    route = IpPrefixRoute(RD, ipaddress.IPv4Network("10.2.0.0/16"), 4001)
    wire = encode_evpn_route(route)
    assert wire[1] == 34
    assert wire[24] == 16
    assert wire[25:29] == bytes((10, 2, 0, 0))
    assert wire[29:33] == b"\x00" * 4  # no gateway
    assert wire[33:36] == bytes.fromhex("000fa1")


def test_type5_host_bits_cleared_on_decode() -> None:
    """RFC 9136 §3.1: the key is the prefix; host bits past the length do not make a different route."""
    wire = bytearray(encode_evpn_route(IpPrefixRoute(RD, ipaddress.IPv4Network("10.2.0.0/16"), 1)))
    wire[27] = 0xFF  # a host bit in 10.2.255.0
    (route,) = decode_evpn_nlri(bytes(wire))
    assert isinstance(route, IpPrefixRoute)
    assert route.prefix == ipaddress.IPv4Network("10.2.0.0/16")


def test_type5_gateway_family_must_match() -> None:
    with pytest.raises(InvalidValue):
        IpPrefixRoute(RD, ipaddress.IPv4Network("10.0.0.0/8"), 1, V6)


def test_route_keys() -> None:
    """RFC 7432 §7.2: ESI and labels are not part of the type-2 key; RFC 9136: type-5 key excludes GW/label."""
    a = MacIpRoute(RD, MAC, V4, 1, None, ZERO_ESI, 0)
    b = MacIpRoute(RD, MAC, V4, 2, 3, Esi.lacp(MAC, 1), 0)
    assert a.key == b.key
    assert a.key != MacIpRoute(RD, MAC, None, 1).key
    p = ipaddress.IPv4Network("10.0.0.0/8")
    assert IpPrefixRoute(RD, p, 1).key == IpPrefixRoute(RD, p, 2, ipaddress.IPv4Address("1.1.1.1")).key
    assert IpPrefixRoute(RD, p, 1).key != IpPrefixRoute(RD, ipaddress.IPv4Network("10.0.0.0/9"), 1).key


def test_label_range_checked() -> None:
    with pytest.raises(InvalidValue):
        encode_evpn_route(MacIpRoute(RD, MAC, None, 1 << 24))
    with pytest.raises(InvalidValue):
        encode_evpn_route(EthernetAdRoute(RD, ZERO_ESI, 0, -1))
    with pytest.raises(InvalidValue):
        encode_evpn_route(UnknownEvpnRoute(9, b"\x00" * 256))


# -- malformed NLRI -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "wire",
    [
        b"\x02",  # truncated header
        b"\x02\x05abc",  # overrun
        bytes((1, 24)) + b"\x00" * 24,  # type-1 bad length
        bytes((2, 34)) + b"\x00" * 34,  # type-2 bad length
        bytes((3, 18)) + b"\x00" * 18,  # type-3 bad length
        bytes((4, 24)) + b"\x00" * 24,  # type-4 bad length
        bytes((5, 35)) + b"\x00" * 35,  # type-5 bad length
    ],
)
def test_malformed_nlri_raises_nlri_error(wire: bytes) -> None:
    with pytest.raises(NlriError):
        decode_evpn_nlri(wire)


def _type2_with_iplen(total: int, iplen: int) -> bytes:
    value = bytearray(total)
    value[22] = 48
    value[29] = iplen
    return bytes((2, total)) + bytes(value)


@pytest.mark.parametrize(
    ("total", "iplen"),
    # every legal type-2 length paired with an IP length whose address would not fit in it
    [(33, 32), (33, 128), (36, 128), (37, 128), (40, 128)],
)
def test_type2_ip_length_inconsistent_with_route_length_is_nlri_error(total: int, iplen: int) -> None:
    """RFC 7432 §7.2: a type-2 whose IP Address Length does not fit the route length is a malformed NLRI.

    The decoder must raise NlriError (which the UPDATE decoder turns into an RFC 7606 outcome), not leak
    ipaddress.AddressValueError from slicing fewer than 4/16 bytes.
    """
    with pytest.raises(NlriError):
        decode_evpn_nlri(_type2_with_iplen(total, iplen))


@pytest.mark.parametrize("mac_len", [0, 47, 49, 255])
def test_type2_mac_length_not_48(mac_len: int) -> None:
    wire = bytearray(encode_evpn_route(MacIpRoute(RD, MAC)))
    wire[2 + 22] = mac_len
    with pytest.raises(NlriError):
        decode_evpn_nlri(bytes(wire))


def test_type3_ip_length_mismatch() -> None:
    wire = bytearray(encode_evpn_route(InclusiveMulticastRoute(RD, V4)))
    wire[2 + 12] = 128
    with pytest.raises(NlriError):
        decode_evpn_nlri(bytes(wire))


def test_type5_prefix_length_too_long() -> None:
    wire = bytearray(encode_evpn_route(IpPrefixRoute(RD, ipaddress.IPv4Network("10.0.0.0/8"), 1)))
    wire[2 + 22] = 33
    with pytest.raises(NlriError):
        decode_evpn_nlri(bytes(wire))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_raise_only_nlri_error(data: bytes) -> None:
    with contextlib.suppress(NlriError):
        decode_evpn_nlri(data)


@pytest.mark.parametrize(("total", "iplen"), [(33, 32), (33, 128), (36, 128), (37, 128), (40, 128)])
def test_type2_decode_value_ip_length_inconsistent_is_nlri_error(total: int, iplen: int) -> None:
    """RFC 7432 §7.2, checked on ``EvpnNlriDecoder.decode_value`` (the path used without the type-2 fast path).

    An IP Address Length of 32/128 in a route too short to hold the address must raise NlriError, not
    ipaddress.AddressValueError from building an address out of 3..10 bytes.
    """
    value = _type2_with_iplen(total, iplen)[2:]
    with pytest.raises(NlriError):
        EvpnNlriDecoder().decode_value(2, value)


@FAST
@given(s.mac_ip_routes)
def test_type2_bulk_and_single_decoders_agree(route: MacIpRoute) -> None:
    """decode_all (with its type-2 fast path) and decode_value build indistinguishable values."""
    value = route.encode_value()
    (bulk,) = EvpnNlriDecoder().decode_all(bytes((2, len(value))) + value)
    single = EvpnNlriDecoder().decode_value(2, value)
    assert bulk == single == route
    assert hash(bulk) == hash(single) == hash(route)
    assert repr(bulk) == repr(route)
    assert type(bulk.mac) is MacAddress
    assert bulk.key == route.key
    assert hash(bulk.key) == hash(route.key)


@FAST
@given(st.lists(s.mac_ip_routes, min_size=1, max_size=5))
def test_type2_decode_from_bytearray(routes: list[MacIpRoute]) -> None:
    wire = b"".join(encode_evpn_route(r) for r in routes)
    assert EvpnNlriDecoder().decode_all(bytearray(wire)) == routes  # type: ignore[arg-type]


@st.composite
def _type2_values(draw: st.DrawFn) -> bytes:
    """Type-2 values of every legal length with random MAC/IP length octets and random fields."""
    n = draw(st.sampled_from([33, 36, 37, 40, 49, 52]))
    value = bytearray(draw(st.binary(min_size=n, max_size=n)))
    value[22] = draw(st.sampled_from([48, 48, 48, 0, 47, 255]))
    value[29] = draw(st.sampled_from([0, 32, 128, 0, 32, 128, 8, 255]))
    return bytes(value)


@settings(max_examples=300, deadline=None)
@given(_type2_values())
def test_type2_bulk_and_single_decoders_agree_on_any_value(value: bytes) -> None:
    """Differential: decode_all's type-2 path and decode_value accept and reject the same bytes."""

    def run(call: object) -> object:
        try:
            return call()  # type: ignore[operator]
        except NlriError:
            return "NlriError"

    bulk = run(lambda: EvpnNlriDecoder().decode_all(bytes((2, len(value))) + value))
    single = run(lambda: [EvpnNlriDecoder().decode_value(2, value)])
    assert bulk == single
    if bulk != "NlriError":
        (route,) = bulk  # type: ignore[misc]
        assert encode_evpn_route(route) == bytes((2, len(value))) + value
