"""IP-VRF per L3VNI: type-5 origination and import, IP-bearing type-2 host routes (RFC 9136, RFC 9135)."""

from __future__ import annotations

import ipaddress

from evpn.codec.evpn_nlri import IpPrefixRoute
from evpn.dataplane_state import FdbEntry, NeighEntry, RouteEntry
from evpn.events import LocalMacLearned, LocalNeighLearned, LocalPrefixAdded, LocalPrefixRemoved
from evpn.mac import MacAddress
from evpn.notices import RejectReason, RouteRejected
from tests.unit.core_helpers import (
    PEER,
    VTEP_B,
    VTEP_C,
    Applied,
    advertised,
    announce,
    config,
    mac,
    started,
    t2,
    t2_attrs,
    t5,
    withdraw,
    withdrawn,
)

RMAC_B = MacAddress.from_text("02:00:00:00:00:0b")
RMAC_C = MacAddress.from_text("02:00:00:00:00:0c")
NET = ipaddress.ip_network("10.20.0.0/16")


def _l3_entries(prefix: ipaddress.IPv4Network, vtep: ipaddress.IPv4Address, rmac: MacAddress) -> set[object]:
    return {RouteEntry("red", 100, prefix, vtep), FdbEntry(100, rmac, vtep), NeighEntry(100, vtep, rmac)}


def test_rfc9136_s4_4_1_gateway_subnet_originated_with_rmac_and_l3vni_label() -> None:
    core, _ap = started(config())
    routes = [r for r in core.rib_by_rd() for p in r.paths if isinstance(p.route, IpPrefixRoute)]
    assert routes
    path = next(p for r in routes for p in r.paths if isinstance(p.route, IpPrefixRoute))
    assert path.route.prefix == ipaddress.ip_network("192.170.1.0/24")
    assert path.route.label == 100 and path.route.gateway is None and path.peer is None
    assert any(c.startswith("Rmac:") for c in path.ext_communities)


def test_rfc9136_handed_in_prefix_is_originated_and_withdrawn() -> None:
    core, ap = started(config())
    out = ap.apply(core.handle(LocalPrefixAdded("red", NET), 0))
    [(route, attrs, _)] = advertised(out)
    assert isinstance(route, IpPrefixRoute) and route.prefix == NET and attrs.router_mac is not None
    out = ap.apply(core.handle(LocalPrefixRemoved("red", NET), 1))
    assert withdrawn(out) == [route]
    assert not core.handle(LocalPrefixAdded("nope", NET), 2)


def test_rfc9135_remote_type5_installs_route_rmac_fdb_and_vtep_neighbour() -> None:
    core, ap = started(config())
    route, attrs = t5(VTEP_B, "10.30.0.0/16", rmac=RMAC_B)
    out = ap.apply(core.handle(announce(PEER, VTEP_B, attrs, route), 0))
    assert set(out.dataplane.add) == _l3_entries(route.prefix, VTEP_B, RMAC_B)
    out = ap.apply(core.handle(withdraw(PEER, route), 1))
    assert set(out.dataplane.remove) == _l3_entries(route.prefix, VTEP_B, RMAC_B)


def test_rmac_entries_shared_by_prefixes_of_one_vtep() -> None:
    """RFC 9135 §4: one RMAC FDB entry and VTEP neighbour per VTEP, shared by its prefixes."""
    core, ap = started(config())
    r1, attrs = t5(VTEP_B, "10.30.0.0/16", rmac=RMAC_B)
    r2, _ = t5(VTEP_B, "10.31.0.0/16", rmac=RMAC_B)
    ap.apply(core.handle(announce(PEER, VTEP_B, attrs, r1, r2), 0))
    out = ap.apply(core.handle(withdraw(PEER, r1), 1))
    assert out.dataplane.remove == (RouteEntry("red", 100, r1.prefix, VTEP_B),)
    out = ap.apply(core.handle(withdraw(PEER, r2), 2))
    assert FdbEntry(100, RMAC_B, VTEP_B) in out.dataplane.remove


def test_rfc9136_s3_2_label_zero_without_gateway_is_treat_as_withdraw() -> None:
    core, ap = started(config())
    good, attrs = t5(VTEP_B, "10.30.0.0/16", rmac=RMAC_B)
    ap.apply(core.handle(announce(PEER, VTEP_B, attrs, good), 0))
    bad = IpPrefixRoute(good.rd, good.prefix, 0, None)
    out = ap.apply(core.handle(announce(PEER, VTEP_B, attrs, bad), 1))
    assert RouteRejected(PEER, bad, RejectReason.TREAT_AS_WITHDRAW) in out.notices
    assert set(out.dataplane.remove) == _l3_entries(good.prefix, VTEP_B, RMAC_B)


def test_type5_without_router_mac_is_rejected() -> None:
    """RFC 9135 §8.1 / RFC 9136 §4.4.1: interface-less type-5 needs the Router's MAC."""
    core, ap = started(config())
    route, attrs = t5(VTEP_B, "10.30.0.0/16")
    out = ap.apply(core.handle(announce(PEER, VTEP_B, attrs, route), 0))
    assert not out.dataplane
    assert [n for n in out.notices if isinstance(n, RouteRejected) and n.reason is RejectReason.NO_ROUTER_MAC]


def test_rfc9135_remote_mac_ip_with_l3_rt_gives_host_route() -> None:
    core, ap = started(config())
    ip = ipaddress.IPv4Address("192.170.1.30")
    attrs = t2_attrs(l3vni=100, rmac=RMAC_B)
    out = ap.apply(core.handle(announce(PEER, VTEP_B, attrs, t2(VTEP_B, mac(5), ip, l3vni=100)), 0))
    host = ipaddress.ip_network("192.170.1.30/32")
    assert _l3_entries(host, VTEP_B, RMAC_B) <= set(out.dataplane.add)
    assert FdbEntry(110, mac(5), VTEP_B) in out.dataplane.add
    assert NeighEntry(110, ip, mac(5)) in out.dataplane.add


def test_host_moving_to_us_removes_the_remote_host_route() -> None:
    """RFC 9135 §5 + RFC 7432 §15: a host moving here loses its remote /32."""
    core, ap = started(config())
    ip = ipaddress.IPv4Address("192.170.1.30")
    attrs = t2_attrs(l3vni=100, rmac=RMAC_B)
    ap.apply(core.handle(announce(PEER, VTEP_B, attrs, t2(VTEP_B, mac(5), ip, l3vni=100)), 0))
    ap.apply(core.handle(LocalMacLearned(110, mac(5)), 1))
    out = ap.apply(core.handle(LocalNeighLearned(110, ip, mac(5)), 1))
    host = ipaddress.ip_network("192.170.1.30/32")
    assert RouteEntry("red", 100, host, VTEP_B) in out.dataplane.remove
    assert not [e for e in ap.entries if isinstance(e, RouteEntry) and e.prefix == host]


def test_remote_prefix_equal_to_our_gateway_subnet_is_not_installed() -> None:
    """Every node originates the anycast gateway subnet: the connected route wins (FRR)."""
    core, _ap = started(config())
    route, attrs = t5(VTEP_B, "192.170.1.0/24", rmac=RMAC_B)
    assert not core.handle(announce(PEER, VTEP_B, attrs, route), 0).dataplane


def test_best_of_two_vteps_for_one_prefix_is_lowest_vtep_and_order_free() -> None:
    """RFC 9136 §3: one best path per prefix, independent of arrival order."""
    r_c, a_c = t5(VTEP_C, "10.30.0.0/16", rmac=RMAC_C)
    r_b, a_b = t5(VTEP_B, "10.30.0.0/16", rmac=RMAC_B)
    results = []
    for order in ((r_c, a_c, VTEP_C), (r_b, a_b, VTEP_B)), ((r_b, a_b, VTEP_B), (r_c, a_c, VTEP_C)):
        core, ap = started(config())
        for r, a, v in order:
            ap.apply(core.handle(announce(PEER, v, a, r), 0))
        results.append(core.desired_dataplane())
        assert RouteEntry("red", 100, r_b.prefix, VTEP_B) in ap.entries
    assert results[0] == results[1]
    assert isinstance(Applied(), Applied)


def test_rfc9135_ipv6_host_route_is_a_128() -> None:
    """RFC 9135 §5 with IPv6 hosts: a MAC+IPv6 route gives a /128 in the VRF and an ND neighbour."""
    core, ap = started(config())
    ip6 = ipaddress.IPv6Address("2001:db8::30")
    attrs = t2_attrs(l3vni=100, rmac=RMAC_B)
    out = ap.apply(core.handle(announce(PEER, VTEP_B, attrs, t2(VTEP_B, mac(6), ip6, l3vni=100)), 0))
    assert RouteEntry("red", 100, ipaddress.ip_network("2001:db8::30/128"), VTEP_B) in out.dataplane.add
    assert NeighEntry(110, ip6, mac(6)) in out.dataplane.add
    out = ap.apply(core.handle(withdraw(PEER, t2(VTEP_B, mac(6), ip6, l3vni=100)), 1))
    assert not [e for e in ap.entries if isinstance(e, RouteEntry | NeighEntry | FdbEntry)]
