"""UpdatePacker: size-bounded, order-preserving, greedy-minimal UPDATEs (RFC 4271 §4.3, RFC 8654, RFC 7606 §5.1)."""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from evpn.codec.attributes import AsPath, AttrType, PathAttributes, UnknownAttribute
from evpn.codec.evpn_nlri import IPAddress, MacIpRoute
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION
from evpn.codec.families import Family
from evpn.codec.messages import (
    HEADER_LEN,
    DecodeOptions,
    MpReach,
    MpUnreach,
    Route,
    Update,
    _split_attributes,
    decode_message,
    encode_update,
    family_of,
)
from evpn.codec.packer import UpdatePacker
from evpn.errors import InvalidValue
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from tests.unit import strategies as s

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
PACK = settings(max_examples=60, deadline=None, suppress_health_check=_HEALTH)
# 65535-byte messages (RFC 8654) hold thousands of routes each: fewer, bigger examples
PACK_BIG = settings(max_examples=15, deadline=None, suppress_health_check=_HEALTH)


def _count(max_size: int, per_route: int) -> int:
    """Enough routes for about 4 full messages."""
    return 4 * max_size // per_route


VTEP = ipaddress.IPv4Address("10.0.0.1")
VTEP6 = ipaddress.IPv6Address("2001:db8::1")
RD = RouteDistinguisher.from_text("10.0.0.1:3")


# -- a reference model of one packed UPDATE -------------------------------------------------------------
def _model(
    family: Family, attrs: PathAttributes | None, routes: Sequence[Route], nh: IPAddress | None
) -> Update:
    """The Update a packer message for these routes must be (announce when attrs is given, else withdraw)."""
    if attrs is None:
        if family is Family.IPV4_UNICAST:
            return Update(withdrawn=tuple(routes))  # type: ignore[arg-type]
        return Update(mp_unreach=MpUnreach(family.afi, family.safi, tuple(routes)))
    if family is Family.IPV4_UNICAST:
        return Update(attributes=dataclasses.replace(attrs, next_hop=nh), nlri=tuple(routes))  # type: ignore[arg-type]
    assert nh is not None
    reach = MpReach(family.afi, family.safi, (nh,), tuple(routes))
    return Update(attributes=dataclasses.replace(attrs, next_hop=None), mp_reach=reach)


def check_packed(
    messages: list[bytes],
    routes: Sequence[Route],
    max_size: int,
    attrs: PathAttributes | None = None,
    nh: IPAddress | None = None,
) -> None:
    """Size bound, exact round trip in order per family, layout, and greedy minimality."""
    options = DecodeOptions(max_message=max_size)
    per_message: list[tuple[Family, tuple[Route, ...]]] = []
    for wire in messages:
        assert len(wire) <= max_size
        decoded = decode_message(wire, options)
        assert isinstance(decoded, Update)
        if attrs is None:
            got = decoded.withdrawn_routes
            assert decoded.announced_routes == ()
        else:
            got = decoded.announced_routes
            assert decoded.withdrawn_routes == ()
        assert got, "an UPDATE without routes"
        fam = family_of(got[0])
        assert all(family_of(r) is fam for r in got)
        # exact bytes: the packer's message is the plain encoding of the model Update
        model = _model(fam, attrs, got, nh)
        assert decoded == model
        assert wire == encode_update(model)
        body = wire[HEADER_LEN:]
        wlen = int.from_bytes(body[:2], "big")
        alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
        raw, err = _split_attributes(body, 4 + wlen, 4 + wlen + alen)
        assert err is None
        codes = [c for _f, c, _v in raw]
        if fam is Family.IPV4_UNICAST:
            assert AttrType.MP_REACH_NLRI not in codes
            assert AttrType.MP_UNREACH_NLRI not in codes
            if attrs is not None:
                assert AttrType.NEXT_HOP in codes
                assert decoded.attributes is not None
                assert decoded.attributes.next_hop == nh
        else:
            assert AttrType.NEXT_HOP not in codes
            # RFC 7606 §5.1: MP_REACH_NLRI / MP_UNREACH_NLRI first so the NLRI can always be located
            assert codes[0] == (AttrType.MP_UNREACH_NLRI if attrs is None else AttrType.MP_REACH_NLRI)
            if attrs is not None:
                assert decoded.mp_reach is not None
                assert decoded.mp_reach.next_hops == (nh,)
        per_message.append((fam, got))

    # order: each family's routes come back in input order, each family's messages are consecutive
    for fam in Family:
        want = [r for r in routes if family_of(r) is fam]
        got_fam = [r for f, got in per_message for r in got if f is fam]
        assert got_fam == want
    fams = [f for f, _ in per_message]
    assert all(fams.index(f) == i or fams[i - 1] is f for i, f in enumerate(fams))

    # greedy minimality: a message plus the next message's first route would have been too big
    for (fam_a, a), (fam_b, b) in itertools.pairwise(per_message):
        if fam_a is not fam_b:
            continue
        try:
            merged = len(encode_update(_model(fam_a, attrs, (*a, b[0]), nh)))
        except (OverflowError, InvalidValue):  # over 65535 bytes: cannot even be framed
            merged = 1 << 16
        assert merged > max_size, f"{len(a)} + 1 routes fit in {merged} <= {max_size} bytes"


# -- strategies -----------------------------------------------------------------------------------------
@st.composite
def route_runs(draw: st.DrawFn, base: st.SearchStrategy[Route], max_count: int) -> list[Route]:
    """Many routes cheaply: a few drawn templates cycled to ``count`` entries."""
    templates = draw(st.lists(base, min_size=1, max_size=8))
    count = draw(st.one_of(st.integers(1, 50), st.integers(max_count // 2, max_count)))
    return [templates[i % len(templates)] for i in range(count)]


@st.composite
def packer_attributes(draw: st.DrawFn, limit: int) -> PathAttributes:
    attrs = draw(s.path_attributes)
    assume(len(attrs.encode()) < limit)
    return attrs


any_route: st.SearchStrategy[Route] = st.one_of(s.evpn_routes, s.ipv4_networks(), s.ipv6_networks())


def _announce_evpn(max_size: int, data: st.DataObject) -> None:
    routes = data.draw(route_runs(s.evpn_routes, _count(max_size, 40)))
    attrs = data.draw(packer_attributes(2000))
    nh = data.draw(st.sampled_from([VTEP, VTEP6]))
    messages = UpdatePacker(max_size).announce(attrs, routes, nh)
    event(f"{min(len(messages), 4)} messages")
    check_packed(messages, routes, max_size, attrs, nh)


def _announce_ipv4(max_size: int, data: st.DataObject) -> None:
    """IPv4 unicast goes in the UPDATE body with NEXT_HOP (RFC 4271 §4.3)."""
    routes = data.draw(route_runs(s.ipv4_networks(), _count(max_size, 4)))
    attrs = data.draw(packer_attributes(2000))
    messages = UpdatePacker(max_size).announce(attrs, routes, VTEP)
    check_packed(messages, routes, max_size, attrs, VTEP)


def _announce_ipv6(max_size: int, data: st.DataObject) -> None:
    """IPv6 unicast goes in MP_REACH_NLRI (RFC 4760, RFC 2545)."""
    routes = data.draw(route_runs(s.ipv6_networks(), _count(max_size, 10)))
    attrs = data.draw(packer_attributes(2000))
    messages = UpdatePacker(max_size).announce(attrs, routes, VTEP6)
    check_packed(messages, routes, max_size, attrs, VTEP6)


def _withdraw(max_size: int, data: st.DataObject) -> None:
    routes = data.draw(route_runs(any_route, _count(max_size, 20)))
    messages = UpdatePacker(max_size).withdraw(routes)
    event(f"{min(len(messages), 4)} messages")
    check_packed(messages, routes, max_size)


def _announce_mixed(max_size: int, data: st.DataObject) -> None:
    routes = data.draw(route_runs(st.one_of(s.evpn_routes, s.ipv6_networks()), _count(max_size, 30)))
    attrs = data.draw(packer_attributes(1000))
    messages = UpdatePacker(max_size).announce(attrs, routes, VTEP6)
    check_packed(messages, routes, max_size, attrs, VTEP6)


PROPERTIES = {
    "announce_evpn": _announce_evpn,
    "announce_ipv4_in_body_with_next_hop": _announce_ipv4,
    "announce_ipv6_in_mp_reach": _announce_ipv6,
    "withdraw_every_family": _withdraw,
    "announce_mixed_families": _announce_mixed,
}


@pytest.mark.parametrize("name", list(PROPERTIES))
@PACK
@given(data=st.data())
def test_packer_4096(name: str, data: st.DataObject) -> None:
    PROPERTIES[name](4096, data)


@pytest.mark.parametrize("name", list(PROPERTIES))
@PACK_BIG
@given(data=st.data())
def test_packer_65535_extended_message(name: str, data: st.DataObject) -> None:
    """RFC 8654 extended messages."""
    PROPERTIES[name](65535, data)


@PACK
@given(data=st.data(), pad=st.integers(0, 4000))
def test_announce_evpn_with_large_attributes(data: st.DataObject, pad: int) -> None:
    """Near the limit the MP_REACH_NLRI header is 3 bytes (value <= 255) or 4 (extended length)."""
    attrs = PathAttributes(as_path=AsPath.sequence(65001), communities=tuple(range(pad // 4)))
    assume(len(attrs.encode()) < 4096 - 100)
    routes = data.draw(route_runs(s.evpn_routes, 400))
    assume(all(len(r.encode_value()) + 2 <= 4096 - 19 - 4 - len(attrs.encode()) - 4 - 5 - 4 for r in routes))
    check_packed(UpdatePacker(4096).announce(attrs, routes, VTEP), routes, 4096, attrs, VTEP)


@pytest.mark.parametrize("max_size", [4096, 65535])
def test_boundary_greedy_fill_small_mp_value(max_size: int) -> None:
    """A short MP_REACH_NLRI (value <= 255) has a 3-byte attribute header; the packer must not reserve 4.

    Attributes are padded so exactly 6 type-2 routes (42 bytes each) fit only with the 3-byte header.
    """
    route = MacIpRoute(RD, MacAddress.from_text("00:11:22:33:44:55"), ipaddress.IPv4Address("10.1.1.1"), 110)
    per = len(route.encode_value()) + 2
    base = PathAttributes(as_path=AsPath.sequence(65001), ext_communities=(VXLAN_ENCAPSULATION,))
    # overhead with a 3-byte MP header: header 19 + lengths 4 + MP hdr 3 + afi/safi/nhlen/reserved 5 + nh 4
    target_attrs = max_size - (19 + 4 + 3 + 5 + 4) - 6 * per
    pad = target_attrs - len(base.encode()) - 4  # an unknown attribute, extended length header
    attrs = dataclasses.replace(base, unknown=(UnknownAttribute(0xE0, 99, bytes(pad)),))
    assert len(attrs.encode()) == target_attrs
    routes = [route] * 12
    messages = UpdatePacker(max_size).announce(attrs, routes, VTEP)
    assert [len(m) for m in messages] == [max_size, max_size]
    check_packed(messages, routes, max_size, attrs, VTEP)


def test_packer_rejects_impossible() -> None:
    route = MacIpRoute(RD, MacAddress.from_text("00:11:22:33:44:55"))
    huge = PathAttributes(communities=tuple(range(1100)))
    with pytest.raises(InvalidValue):
        UpdatePacker(4096).announce(huge, [route], VTEP)
    with pytest.raises(InvalidValue):
        UpdatePacker(4096).announce(PathAttributes(), [ipaddress.IPv4Network("10.0.0.0/8")], VTEP6)


def test_packer_empty_input() -> None:
    assert UpdatePacker().announce(PathAttributes(), [], VTEP) == []
    assert UpdatePacker().withdraw([]) == []


def test_packer_route_targets_carried() -> None:
    rt = RouteTarget.from_text("64512:110")
    attrs = PathAttributes(as_path=AsPath.sequence(65001), ext_communities=(rt, VXLAN_ENCAPSULATION))
    route = MacIpRoute(RD, MacAddress.from_text("00:11:22:33:44:55"), None, 110)
    (wire,) = UpdatePacker().announce(attrs, [route], VTEP)
    decoded = decode_message(wire)
    assert isinstance(decoded, Update)
    assert decoded.attributes is not None
    assert decoded.attributes.route_targets == (rt,)
    assert decoded.announced_routes == (route,)
