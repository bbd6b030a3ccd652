"""RIB: Adj-RIB-In, best path, route reflection, Adj-RIB-Out, graceful restart
(RFC 4271 §9, RFC 4456, RFC 4724, RFC 7432 §15)."""

from __future__ import annotations

import dataclasses
import ipaddress

from evpn.codec.attributes import AsPath, Origin, PathAttributes
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.families import Family
from evpn.config import Neighbor
from evpn.core import EvpnCore
from evpn.dataplane_state import FdbEntry, FloodEntry
from evpn.events import EndOfRib, LocalMacLearned, PeerDown
from evpn.notices import RejectReason, RouteRejected, StaleRoutesSwept
from evpn.rib import LocRib, Path, path_rank
from tests.unit.core_helpers import (
    PEER,
    PEER2,
    VTEP_A,
    VTEP_B,
    VTEP_C,
    Applied,
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

V4 = ipaddress.IPv4Address
CLIENT = V4("10.0.0.11")
CLIENT2 = V4("10.0.0.12")
EBGP = V4("10.0.1.1")


def _rank(attrs: PathAttributes, peer: str = "10.0.0.2", ebgp: bool = False, rid: str | None = None):  # type: ignore[no-untyped-def]
    return path_rank(attrs, V4(peer), ebgp, V4(rid or peer))


def test_rfc4271_s9_1_2_2_decision_order() -> None:
    base = PathAttributes()
    worse_to_better = [
        (dataclasses.replace(base, local_pref=50), base),
        (
            dataclasses.replace(base, as_path=AsPath.sequence(1, 2)),
            dataclasses.replace(base, as_path=AsPath.sequence(1)),
        ),
        (dataclasses.replace(base, origin=Origin.INCOMPLETE), base),
        (dataclasses.replace(base, med=10), dataclasses.replace(base, med=5)),
        (
            dataclasses.replace(base, cluster_list=(V4("1.1.1.1"), V4("2.2.2.2"))),
            dataclasses.replace(base, cluster_list=(V4("1.1.1.1"),)),
        ),
        (
            dataclasses.replace(base, originator_id=V4("9.9.9.9")),
            dataclasses.replace(base, originator_id=V4("1.1.1.1")),
        ),
    ]
    for worse, better in worse_to_better:
        assert _rank(better) < _rank(worse)
    assert _rank(base, ebgp=True) < _rank(base, ebgp=False)
    assert _rank(base, peer="10.0.0.1", rid="5.5.5.5") < _rank(base, peer="10.0.0.2", rid="5.5.5.5")


def test_rfc7432_s15_sticky_then_sequence_before_bgp_decision() -> None:
    sticky = t2_attrs(sticky=True, local_pref=10)
    high_seq = t2_attrs(seq=9, local_pref=10)
    plain = t2_attrs(local_pref=500)
    assert _rank(sticky) < _rank(high_seq) < _rank(plain)


def test_locrib_best_is_independent_of_arrival_order() -> None:
    """RFC 4271 §9.1.2: the decision is a total order, arrival order does not matter."""
    r = t2(VTEP_B, mac(1))
    paths = [
        Path(
            V4(f"10.0.0.{i}"),
            r,
            PathAttributes(local_pref=lp),
            VTEP_B,
            _rank(PathAttributes(local_pref=lp), f"10.0.0.{i}"),
            (),
            (),
        )
        for i, lp in ((1, 100), (2, 200), (3, 200))
    ]
    bests = set()
    for order in (paths, paths[::-1], paths[1:] + paths[:1]):
        rib = LocRib()
        for p in order:
            rib.put(("k",), p, None)
        bests.add(rib.best(("k",)))
    assert bests == {paths[1]}
    before, after = rib.drop(("k",), paths[1])
    assert before is paths[1] and after is paths[2]


def test_rfc4271_same_route_from_two_peers_one_fdb_entry_and_failover() -> None:
    cfg = config(neighbors=(Neighbor(PEER, asn=64514), Neighbor(PEER2, asn=64514)))
    core, ap = started(cfg)
    ap.apply(core.handle(peer_up(PEER2), 0))
    route = t2(VTEP_B, mac(1))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(local_pref=100), route), 0))
    out = ap.apply(core.handle(announce(PEER2, VTEP_B, t2_attrs(local_pref=200), route), 0))
    assert not out.dataplane  # same VTEP: nothing changes in the kernel
    out = ap.apply(core.handle(PeerDown(PEER2), 1))
    assert not out.dataplane
    out = ap.apply(core.handle(PeerDown(PEER), 2))
    assert out.dataplane.remove == (FdbEntry(110, mac(1), VTEP_B),)


def test_peer_down_withdraws_everything_in_one_delta() -> None:
    """RFC 4271 §8.2.2 (session loss): all routes of the peer go, in one delta."""
    core, ap = started(config())
    routes = [t2(VTEP_B, mac(i)) for i in range(50)]
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), *routes), 0))
    r3, a3 = t3(VTEP_B)
    ap.apply(core.handle(announce(PEER, VTEP_B, a3, r3), 0))
    out = ap.apply(core.handle(PeerDown(PEER, "hold timer expired"), 1))
    assert len(out.dataplane.remove) == 51 and FloodEntry(110, VTEP_B) in out.dataplane.remove
    assert not ap.entries


def _rr(clients: tuple[ipaddress.IPv4Address, ...] = (CLIENT, CLIENT2)) -> tuple[EvpnCore, Applied]:
    neighbors = (
        Neighbor(PEER, asn=64514),
        *(Neighbor(c, asn=64514, route_reflector_client=True) for c in clients),
        Neighbor(EBGP, asn=65099),
    )
    core, ap = started(config(neighbors=neighbors))
    for c in clients:
        ap.apply(core.handle(peer_up(c), 0))
    ap.apply(core.handle(peer_up(EBGP, ibgp=False, asn=65099), 0))
    return core, ap


def _to(out, peer):  # type: ignore[no-untyped-def]
    return [(r, a.attributes, a.next_hop) for a in out.advertise if a.peer == peer for r in a.routes]


def test_rfc4456_s8_client_routes_reflected_to_all_with_originator_and_cluster_list() -> None:
    core, _ap = _rr()
    route = t2(VTEP_B, mac(1))
    out = core.handle(announce(CLIENT, VTEP_B, t2_attrs(), route), 0)
    assert not _to(out, CLIENT)  # never back to the sender
    for peer in (CLIENT2, PEER):
        [(r, attrs, nh)] = _to(out, peer)
        assert r == route and nh == VTEP_B
        assert attrs.originator_id == CLIENT and attrs.cluster_list == (V4("10.0.0.1"),)
    [(_, eattrs, enh)] = _to(out, EBGP)
    assert eattrs.as_path.first_asn == 64514 and eattrs.local_pref is None and eattrs.originator_id is None
    assert enh == VTEP_B


def test_rfc4456_s8_non_client_routes_reflected_to_clients_only() -> None:
    core, _ap = _rr()
    out = core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 0)
    assert _to(out, CLIENT) and _to(out, CLIENT2) and _to(out, EBGP) and not _to(out, PEER)


def test_rfc4456_s8_loop_checks() -> None:
    core, _ap = _rr()
    looped = dataclasses.replace(t2_attrs(), originator_id=V4("10.0.0.1"))
    out = core.handle(announce(CLIENT, VTEP_B, looped, t2(VTEP_B, mac(1))), 0)
    assert [n.reason for n in out.notices] == [RejectReason.ORIGINATOR_ID_LOOP]
    looped = dataclasses.replace(t2_attrs(), cluster_list=(V4("10.0.0.1"),))
    out = core.handle(announce(CLIENT, VTEP_B, looped, t2(VTEP_B, mac(1))), 0)
    assert [n.reason for n in out.notices] == [RejectReason.CLUSTER_LIST_LOOP]
    looped = dataclasses.replace(t2_attrs(), as_path=AsPath.sequence(65099, 64514))
    out = core.handle(announce(EBGP, VTEP_B, looped, t2(VTEP_B, mac(1))), 0)
    assert [n.reason for n in out.notices] == [RejectReason.AS_PATH_LOOP]
    assert not out.dataplane


def test_rfc4271_ibgp_split_horizon_without_rr_clients() -> None:
    cfg = config(neighbors=(Neighbor(PEER, asn=64514), Neighbor(PEER2, asn=64514)))
    core, ap = started(cfg)
    ap.apply(core.handle(peer_up(PEER2), 0))
    out = core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 0)
    assert not out.advertise
    out = core.handle(withdraw(PEER, t2(VTEP_B, mac(1))), 1)
    assert not out.withdraw and out.dataplane.remove  # nothing was sent, so nothing to withdraw


def test_local_routes_go_to_every_peer_ebgp_with_our_asn_prepended() -> None:
    """RFC 4271 §5.1.2: eBGP prepends our AS; iBGP carries LOCAL_PREF."""
    core, _ap = _rr()
    out = core.handle(LocalMacLearned(110, mac(1)), 0)
    for peer in (PEER, CLIENT, CLIENT2):
        [(_, attrs, nh)] = _to(out, peer)
        assert nh == VTEP_A and attrs.local_pref == 100 and attrs.as_path.length == 0
    [(_, attrs, nh)] = _to(out, EBGP)
    assert attrs.as_path == AsPath.sequence(64514) and nh == VTEP_A


def test_routes_of_one_update_share_one_advertisement() -> None:
    """RFC 4271 §4.3: routes with identical attributes share an UPDATE."""
    core, _ap = _rr()
    routes = [t2(VTEP_B, mac(i)) for i in range(20)]
    out = core.handle(announce(PEER, VTEP_B, t2_attrs(), *routes), 0)
    groups = [a for a in out.advertise if a.peer == CLIENT]
    assert len(groups) == 1 and len(groups[0].routes) == 20


def test_peer_up_carries_the_full_adj_rib_out() -> None:
    """RFC 4271 §9.4: a new session gets the whole Adj-RIB-Out."""
    core, ap = started(
        config(
            neighbors=(Neighbor(PEER, asn=64514), Neighbor(CLIENT, asn=64514, route_reflector_client=True))
        )
    )
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(2))), 0))
    out = core.handle(peer_up(CLIENT, rr_client=True), 1)
    routes = {r for a in out.advertise for r in a.routes}
    assert t2(VTEP_B, mac(2)) in routes
    assert {r.mac for r in routes if isinstance(r, MacIpRoute)} == {mac(1), mac(2)}
    assert all(a.peer == CLIENT for a in out.advertise)


def test_withdraw_reaches_peers_that_had_the_route() -> None:
    """RFC 4271 §9.2: withdrawals go to every peer that had the route."""
    core, _ap = _rr()
    route = t2(VTEP_B, mac(1))
    core.handle(announce(PEER, VTEP_B, t2_attrs(), route), 0)
    out = core.handle(withdraw(PEER, route), 1)
    assert {w.peer for w in out.withdraw} == {CLIENT, CLIENT2, EBGP}
    assert withdrawn(out) == [route] * 3


def test_rfc4724_graceful_restart_keeps_stale_routes_until_end_of_rib() -> None:
    core = EvpnCore(config())
    ap = Applied()
    ap.apply(core.start(0))
    ap.apply(core.handle(peer_up(gr=True), 0))
    keep, gone = t2(VTEP_B, mac(1)), t2(VTEP_B, mac(2))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), keep, gone), 0))
    out = ap.apply(core.handle(PeerDown(PEER, graceful=True), 1))
    assert not out.dataplane  # forwarding continues (RFC 4724 §4.2)
    assert any(p.stale for r in core.rib_by_rd() for p in r.paths)
    ap.apply(core.handle(peer_up(gr=True), 5))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), keep), 6))
    out = ap.apply(core.handle(EndOfRib(PEER, Family.L2VPN_EVPN), 7))
    assert out.dataplane.remove == (FdbEntry(110, mac(2), VTEP_B),)
    assert StaleRoutesSwept(PEER, 1) in out.notices
    assert FdbEntry(110, mac(1), VTEP_B) in ap.entries


def test_rfc4724_stale_routes_swept_by_timer_when_peer_does_not_return() -> None:
    core = EvpnCore(config())
    ap = Applied()
    ap.apply(core.start(0))
    ap.apply(core.handle(peer_up(gr=True), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 0))
    ap.apply(core.handle(PeerDown(PEER, graceful=True), 10))
    assert not core.tick(10 + 119).dataplane
    out = ap.apply(core.tick(10 + 120))
    assert out.dataplane.remove == (FdbEntry(110, mac(1), VTEP_B),)


def test_non_graceful_down_of_gr_peer_flushes() -> None:
    """RFC 4724 §4.2: without a graceful restart, routes go at once."""
    core = EvpnCore(config())
    ap = Applied()
    ap.apply(core.handle(peer_up(gr=True), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 0))
    out = ap.apply(core.handle(PeerDown(PEER), 1))
    assert out.dataplane.remove


def test_routes_from_a_peer_that_is_not_up_are_rejected() -> None:
    """RFC 4271 §8: UPDATEs count only in Established."""
    core = EvpnCore(config())
    out = core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 0)
    assert [n.reason for n in out.notices if isinstance(n, RouteRejected)] == [RejectReason.UNKNOWN_PEER]
    assert not out.dataplane


def test_rib_by_rd_groups_paths() -> None:
    """RFC 7432 §7: show RIB grouped by RD (FRR's show bgp l2vpn evpn)."""
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 0))
    ap.apply(core.handle(announce(PEER, VTEP_C, t2_attrs(), t2(VTEP_C, mac(2))), 0))
    rds = {str(r.rd): r for r in core.rib_by_rd()}
    assert {"100.65.0.2:110", "100.65.0.3:110", "10.0.0.1:110", "10.0.0.1:100"} <= set(rds)
    assert all(p.best for p in rds["100.65.0.2:110"].paths)
    assert core.rib_path_count() == sum(len(r.paths) for r in rds.values())


def test_rfc4724_s4_2_peer_back_without_graceful_restart_flushes_stale_routes() -> None:
    core = EvpnCore(config())
    ap = Applied()
    ap.apply(core.handle(peer_up(gr=True), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 0))
    ap.apply(core.handle(PeerDown(PEER, graceful=True), 1))
    out = ap.apply(core.handle(peer_up(gr=False), 2))
    assert out.dataplane.remove == (FdbEntry(110, mac(1), VTEP_B),)
    assert StaleRoutesSwept(PEER, 1) in out.notices


def test_router_macs_for_the_dataplane() -> None:
    """RFC 9135 §8.1: the Router's MAC the dataplane gives the L3 SVI."""
    core = EvpnCore(config())
    [(vni, rmac)] = core.router_macs().items()
    assert vni == 100 and str(rmac) == "02:0a:00:00:01:00"
