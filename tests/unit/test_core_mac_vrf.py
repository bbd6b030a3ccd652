"""MAC-VRF per L2VNI: our type-2/type-3 originations and remote routes as dataplane entries
(RFC 7432 §7, RFC 8365 §5.1.3 and §9, RFC 9135 symmetric IRB)."""

from __future__ import annotations

import ipaddress

from evpn.codec.evpn_nlri import InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION
from evpn.codec.pmsi import PmsiTunnelType
from evpn.core import EvpnCore
from evpn.dataplane_state import FdbEntry, FloodEntry, NeighEntry
from evpn.events import LocalMacAged, LocalMacLearned, LocalNeighLearned, LocalNeighRemoved
from evpn.route_target import RouteTarget
from tests.unit.core_helpers import (
    PEER,
    VTEP_A,
    VTEP_B,
    advertised,
    announce,
    config,
    mac,
    peer_up,
    started,
    t2,
    t2_attrs,
    t3,
    withdraw,
    withdrawn,
)

IP1 = ipaddress.IPv4Address("192.170.1.3")
RT110 = RouteTarget.from_text("64514:110")
RT100 = RouteTarget.from_text("64514:100")


def test_rfc8365_s9_start_originates_imet_with_ingress_replication() -> None:
    core, _ = started(config())
    assert not core.start(0)  # idempotent
    c = EvpnCore(config())
    c.handle(peer_up(), 0)
    out = c.start(0)
    imets = [(r, a, nh) for r, a, nh in advertised(out) if isinstance(r, InclusiveMulticastRoute)]
    assert len(imets) == 1
    route, attrs, nh = imets[0]
    assert route.originator == VTEP_A and nh == VTEP_A and route.ethernet_tag == 0
    assert attrs.pmsi is not None and attrs.pmsi.tunnel_type == PmsiTunnelType.INGRESS_REPLICATION
    assert attrs.pmsi.label == 110 and attrs.pmsi.tunnel_id == VTEP_A
    assert RT110 in attrs.route_targets and VXLAN_ENCAPSULATION in attrs.ext_communities
    assert attrs.local_pref == 100  # iBGP
    # the gateway subnet goes out as type-5
    assert [r for r, _, _ in advertised(out) if isinstance(r, IpPrefixRoute)]


def test_rfc9135_mac_ip_route_carries_label2_rmac_and_both_rts() -> None:
    core, ap = started(config())
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    out = ap.apply(core.handle(LocalNeighLearned(110, IP1, mac(1)), 0))
    [(route, attrs, nh)] = advertised(out)
    assert isinstance(route, MacIpRoute)
    assert route.ip == IP1 and route.label1 == 110 and route.label2 == 100 and nh == VTEP_A
    assert RT110 in attrs.route_targets and RT100 in attrs.route_targets
    assert attrs.router_mac is not None and VXLAN_ENCAPSULATION in attrs.ext_communities
    # removing the neighbour withdraws only the MAC+IP route
    out = ap.apply(core.handle(LocalNeighRemoved(110, IP1), 1))
    assert withdrawn(out) == [route]


def test_rfc7432_mac_only_route_of_pure_l2vni_has_one_label_and_no_rmac() -> None:
    core, ap = started(config(l3=False))
    out = ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    [(route, attrs, _)] = advertised(out)
    assert isinstance(route, MacIpRoute) and route.label2 is None and route.ip is None
    assert attrs.router_mac is None and attrs.route_targets == (RT110,)


def test_rfc7432_s7_8_default_gateway_advertisement_option() -> None:
    c = EvpnCore(config(advertise_gateway=True))
    c.handle(peer_up(), 0)
    out = c.start(0)
    gws = [(r, a) for r, a, _ in advertised(out) if isinstance(r, MacIpRoute)]
    assert len(gws) == 1
    route, attrs = gws[0]
    assert str(route.mac) == "00:f3:00:00:00:6f" and route.ip == ipaddress.IPv4Address("192.170.1.1")
    assert attrs.default_gateway


def test_remote_gateway_mac_is_not_installed() -> None:
    """Every node owns the anycast gateway MAC: a remote route for it must not point it at a VTEP."""
    from evpn.mac import MacAddress

    core, ap = started(config())
    gw = MacAddress.from_text("00:f3:00:00:00:6f")
    out = ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, gw)), 0))
    assert not out.dataplane
    # nor is it a local host to advertise when the bridge reports it
    assert not core.handle(LocalMacLearned(110, gw), 1).advertise


def test_rfc8365_s9_remote_imet_gives_one_flood_entry_per_vtep() -> None:
    core, ap = started(config())
    route, attrs = t3(VTEP_B)
    out = ap.apply(core.handle(announce(PEER, VTEP_B, attrs, route), 0))
    assert out.dataplane.add == (FloodEntry(110, VTEP_B),)
    out = ap.apply(core.handle(withdraw(PEER, route), 1))
    assert out.dataplane.remove == (FloodEntry(110, VTEP_B),)


def test_remote_mac_ip_gives_fdb_and_suppression_neighbour() -> None:
    """RFC 7432 §10 ARP/ND proxy: remote MAC+IP gives FDB and neighbour; withdrawal removes both."""
    core, ap = started(config(l3=False))
    out = ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(2), IP1)), 0))
    assert set(out.dataplane.add) == {FdbEntry(110, mac(2), VTEP_B), NeighEntry(110, IP1, mac(2))}
    out = ap.apply(core.handle(withdraw(PEER, t2(VTEP_B, mac(2), IP1)), 1))
    assert set(out.dataplane.remove) == {FdbEntry(110, mac(2), VTEP_B), NeighEntry(110, IP1, mac(2))}
    assert not ap.entries - {FloodEntry(110, VTEP_B)}


def test_local_ip_suppresses_the_remote_neighbour() -> None:
    """RFC 7432 §10: a local binding wins over a remote one for ARP suppression."""
    core, ap = started(config(l3=False))
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    ap.apply(core.handle(LocalNeighLearned(110, IP1, mac(1)), 0))
    out = ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(2), IP1)), 1))
    assert NeighEntry(110, IP1, mac(2)) not in out.dataplane.add
    out = ap.apply(core.handle(LocalNeighRemoved(110, IP1), 2))
    assert NeighEntry(110, IP1, mac(2)) in out.dataplane.add


def test_route_without_matching_rt_is_not_imported() -> None:
    """RFC 7432 §9.2.2 (RFC 4364 §4.3.1 import by RT): no matching RT, no import."""
    core, ap = started(config())
    attrs = t2_attrs(vni=999)
    out = ap.apply(core.handle(announce(PEER, VTEP_B, attrs, t2(VTEP_B, mac(3))), 0))
    assert not out.dataplane
    assert core.rib_by_rd()  # kept in the RIB all the same


def test_route_with_our_own_next_hop_is_not_imported() -> None:
    """RFC 8365 §5.1.3: a route back to our own VTEP is never installed."""
    core, ap = started(config())
    out = ap.apply(core.handle(announce(PEER, VTEP_A, t2_attrs(), t2(VTEP_A, mac(3))), 0))
    assert not out.dataplane


def test_same_mac_in_two_vnis_is_independent() -> None:
    """RFC 7432 §6: MAC-VRFs are independent (one per EVI)."""
    core, ap = started(config(l2=(110, 120), l3=False))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(vni=120), t2(VTEP_B, mac(1), vni=120)), 0))
    out = ap.apply(core.handle(LocalMacLearned(110, mac(1)), 1))
    assert not out.dataplane.remove
    assert FdbEntry(120, mac(1), VTEP_B) in ap.entries


def test_local_events_for_unknown_vni_are_ignored() -> None:
    """RFC 7432 §6: events for an EVI we do not have change nothing."""
    core, _ap = started(config())
    assert not core.handle(LocalMacLearned(999, mac(1)), 0)
    assert not core.handle(LocalMacAged(999, mac(1)), 0)


def test_show_mac_table_lists_local_and_remote() -> None:
    """RFC 7432 §15: read models show location, sequence and flags."""
    core, ap = started(config())
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    ap.apply(core.handle(LocalNeighLearned(110, IP1, mac(1)), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=3), t2(VTEP_B, mac(2))), 0))
    rows = {r.mac: r for r in core.mac_table(110).rows}
    assert rows[mac(1)].kind == "local" and rows[mac(1)].ips == (IP1,) and rows[mac(1)].vtep is None
    assert rows[mac(2)].kind == "remote" and rows[mac(2)].vtep == VTEP_B and rows[mac(2)].remote_seq == 3
    vnis = {r.vni: r for r in core.vni_table()}
    assert vnis[110].kind == "L2" and vnis[110].rd == "10.0.0.1:110" and vnis[110].import_rts == ("*:110",)
    assert vnis[110].remote_vteps == (VTEP_B,)
    assert vnis[100].kind == "L3" and vnis[100].vrf == "red"
    assert any(row.vtep == VTEP_B for row in core.next_hops())


def test_desired_dataplane_is_the_full_state_for_a_reconcile() -> None:
    """RFC 7432 §9.2.2 / RFC 8365 §9: the full desired state equals the sum of deltas."""
    core, ap = started(config())
    r3, a3 = t3(VTEP_B)
    ap.apply(core.handle(announce(PEER, VTEP_B, a3, r3), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(2), IP1)), 0))
    assert core.desired_dataplane() == frozenset(ap.entries)
    assert {type(e) for e in core.desired_dataplane()} == {FdbEntry, FloodEntry, NeighEntry}
