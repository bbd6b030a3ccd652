"""IPv4/IPv6 unicast beside EVPN (issue #8): VTEP announcement, underlay routes, next-hop tracking, host
sessions exporting type-5 routes and receiving imported ones (RFC 4271, RFC 4760, RFC 9136)."""

from __future__ import annotations

import dataclasses
import ipaddress

from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.evpn_nlri import IpPrefixRoute
from evpn.codec.families import Family
from evpn.config import HostSession, L3Vni, Neighbor, SpeakerConfig, Underlay
from evpn.core import CoreOutput, EvpnCore
from evpn.dataplane_state import FdbEntry, RouteEntry, UnicastRouteEntry
from evpn.events import EndOfRib, KernelRoutes, PeerDown, PeerUp, RoutesReceived
from evpn.mac import MacAddress
from evpn.notices import NextHopChanged, RejectReason, RouteRejected
from tests.unit.core_helpers import VTEP_B, Applied, announce, config, mac, t2, t2_attrs, t5, withdraw

V4 = ipaddress.IPv4Address
N4 = ipaddress.IPv4Network
UNDERLAY = V4("192.168.11.2")
LOCAL = V4("192.168.11.1")
HOST_CIDR = N4("192.169.10.0/24")
ROUTER_SIDE = V4("192.169.10.1")
HOST = V4("192.169.10.3")  # node index 1
RMAC_B = MacAddress.from_text("02:00:00:00:00:0b")
BOTH = (Family.IPV4_UNICAST, Family.L2VPN_EVPN)


def _config(*, nht: bool = True, host: bool = True, ebgp_underlay: bool = False) -> SpeakerConfig:
    base = config()
    hs = HostSession(asn=64514, host_asn=64600, local_cidr_ipv4=HOST_CIDR, node_index=1)
    l3 = L3Vni("red", "red", 100, host_session=hs if host else None)
    underlay = Underlay(
        asn=64514,
        router_id=V4("10.0.0.1"),
        vtep_ipv4=base.underlay.vtep_ipv4,
        neighbors=(Neighbor(UNDERLAY, asn=64999 if ebgp_underlay else 64514, families=BOTH),),
        nexthop_tracking=nht,
    )
    return dataclasses.replace(base, underlay=underlay, l3vnis=(l3,))


def _underlay_up(ibgp: bool = True, gr: bool = False) -> PeerUp:
    return PeerUp(
        UNDERLAY,
        64514 if ibgp else 64999,
        UNDERLAY,
        ibgp,
        frozenset(BOTH),
        graceful_restart=gr,
        local_address=LOCAL,
    )


def _host_up() -> PeerUp:
    return PeerUp(HOST, 64600, HOST, False, frozenset({Family.IPV4_UNICAST}), local_address=ROUTER_SIDE)


def _unicast(peer: V4, nh: V4, *prefixes: str, as_path: tuple[int, ...] = ()) -> RoutesReceived:
    attrs = PathAttributes(as_path=AsPath.sequence(*as_path))
    return RoutesReceived(peer, tuple(ipaddress.ip_network(p) for p in prefixes), attrs, nh)


def _start(cfg: SpeakerConfig, *ups: PeerUp) -> tuple[EvpnCore, Applied, list[CoreOutput]]:
    core = EvpnCore(cfg)
    applied = Applied()
    outs = [applied.apply(core.start(0))]
    outs.extend(applied.apply(core.handle(up, 0)) for up in ups)
    return core, applied, outs


def _sent(out: CoreOutput, peer: V4) -> dict[object, tuple[PathAttributes, object]]:
    return {r: (a.attributes, a.next_hop) for a in out.advertise if a.peer == peer for r in a.routes}


def _gone(out: CoreOutput, peer: V4) -> set[object]:
    return {r for w in out.withdraw if w.peer == peer for r in w.routes}


def test_vtep_slash32_announced_to_underlay_with_next_hop_self() -> None:
    _core, _ap, outs = _start(_config(), _underlay_up(ibgp=False))
    sent = _sent(outs[-1], UNDERLAY)
    vtep_route = N4(f"{_config().underlay.vtep_ipv4}/32")
    assert vtep_route in sent
    attrs, nh = sent[vtep_route]
    assert nh == LOCAL
    assert attrs.as_path == AsPath.sequence(64514)  # eBGP: our AS prepended (RFC 4271 §5.1.2)
    assert HOST_CIDR not in sent  # the host-session subnet lives in the VRF, not the default instance


def test_vtep_not_announced_to_a_peer_without_ipv4_unicast() -> None:
    up = dataclasses.replace(_underlay_up(), families=frozenset({Family.L2VPN_EVPN}))
    _core, _ap, outs = _start(_config(), up)
    assert not any(isinstance(r, N4) for a in outs[-1].advertise for r in a.routes)


def test_underlay_routes_go_to_the_main_table_and_leave_it() -> None:
    core, ap, _ = _start(_config(), _underlay_up())
    ap.apply(core.handle(_unicast(UNDERLAY, UNDERLAY, "100.65.0.2/32", "10.99.0.0/16"), 1))
    assert UnicastRouteEntry("", N4("100.65.0.2/32"), UNDERLAY) in ap.entries
    assert UnicastRouteEntry("", N4("10.99.0.0/16"), UNDERLAY) in ap.entries
    assert ap.entries == set(core.desired_dataplane())
    ap.apply(core.handle(withdraw(UNDERLAY, N4("10.99.0.0/16")), 2))
    assert UnicastRouteEntry("", N4("10.99.0.0/16"), UNDERLAY) not in ap.entries
    ap.apply(core.handle(PeerDown(UNDERLAY, "gone"), 3))
    assert not any(isinstance(e, UnicastRouteEntry) for e in ap.entries)


def test_nht_holds_evpn_routes_until_the_vtep_resolves_through_bgp() -> None:
    core, ap, _ = _start(_config(), _underlay_up())
    fdb = FdbEntry(110, mac(1), VTEP_B)
    out = ap.apply(core.handle(announce(UNDERLAY, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 1))
    assert fdb not in ap.entries
    assert NextHopChanged(VTEP_B, False, None, 0) in out.notices
    row = next(r for r in core.next_hops() if r.vtep == VTEP_B)
    assert row.reachable is False and row.held == 1
    out = ap.apply(core.handle(_unicast(UNDERLAY, UNDERLAY, f"{VTEP_B}/32"), 2))
    assert fdb in ap.entries
    assert NextHopChanged(VTEP_B, True, N4(f"{VTEP_B}/32"), 1) in out.notices
    row = next(r for r in core.next_hops() if r.vtep == VTEP_B)
    assert row.reachable is True and row.via == N4(f"{VTEP_B}/32") and row.held == 0
    ap.apply(core.handle(withdraw(UNDERLAY, N4(f"{VTEP_B}/32")), 3))
    assert fdb not in ap.entries
    assert ap.entries == set(core.desired_dataplane())


def test_nht_kernel_routes_and_resolve_via_default() -> None:
    core, ap, _ = _start(_config(), _underlay_up())
    fdb = FdbEntry(110, mac(1), VTEP_B)
    ap.apply(core.handle(announce(UNDERLAY, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 1))
    assert fdb not in ap.entries
    ap.apply(core.handle(KernelRoutes(frozenset({N4("100.65.0.0/24")})), 2))
    assert fdb in ap.entries
    ap.apply(core.handle(KernelRoutes(frozenset({N4("0.0.0.0/0")})), 3))
    assert fdb in ap.entries  # OpenPERouter: ip nht resolve-via-default
    cfg = _config()
    cfg = dataclasses.replace(
        cfg, underlay=dataclasses.replace(cfg.underlay, nexthop_resolve_via_default=False)
    )
    ap.apply(core.reconfigure(cfg, 4))
    assert fdb not in ap.entries
    ap.apply(core.handle(KernelRoutes(frozenset()), 5))
    assert fdb not in ap.entries


def test_nht_off_installs_whatever_the_next_hop() -> None:
    core, ap, _ = _start(_config(nht=False), _underlay_up())
    ap.apply(core.handle(announce(UNDERLAY, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 1))
    assert FdbEntry(110, mac(1), VTEP_B) in ap.entries
    assert all(r.reachable is None for r in core.next_hops())


def test_host_route_becomes_type5_and_a_vrf_route() -> None:
    core, ap, _ = _start(_config(nht=False), _underlay_up(), _host_up())
    out = ap.apply(core.handle(_unicast(HOST, HOST, "10.10.10.0/24", as_path=(64600,)), 1))
    assert UnicastRouteEntry("red", N4("10.10.10.0/24"), HOST) in ap.entries
    t5s = {r: v for r, v in _sent(out, UNDERLAY).items() if isinstance(r, IpPrefixRoute)}
    route = next(r for r in t5s if r.prefix == N4("10.10.10.0/24"))
    attrs, nh = t5s[route]
    assert route.label == 100 and nh == core.config.underlay.vtep_ipv4
    assert attrs.router_mac == core.router_macs()[100]
    assert {str(rt) for rt in attrs.route_targets} == {"64514:100"}
    assert attrs.as_path == AsPath.sequence(64600)
    assert not _sent(out, HOST)  # split horizon: not back to the host
    out = ap.apply(core.handle(withdraw(HOST, N4("10.10.10.0/24")), 2))
    assert route in _gone(out, UNDERLAY)
    assert UnicastRouteEntry("red", N4("10.10.10.0/24"), HOST) not in ap.entries


def test_imported_type5_goes_to_the_host_with_next_hop_self() -> None:
    core, ap, outs = _start(_config(nht=False), _underlay_up(), _host_up())
    assert N4("192.169.10.0/24") in _sent(outs[-1], HOST)  # our veth subnet (network statement)
    route, attrs = t5(VTEP_B, "10.20.0.0/16", rmac=RMAC_B)
    out = ap.apply(core.handle(announce(UNDERLAY, VTEP_B, attrs, route), 1))
    assert RouteEntry("red", 100, N4("10.20.0.0/16"), VTEP_B) in ap.entries
    sent = _sent(out, HOST)
    host_attrs, nh = sent[N4("10.20.0.0/16")]
    assert nh == ROUTER_SIDE
    assert host_attrs.as_path == AsPath.sequence(64514)
    assert host_attrs.ext_communities == ()
    out = ap.apply(core.handle(withdraw(UNDERLAY, route), 2))
    assert N4("10.20.0.0/16") in _gone(out, HOST)


def test_imported_routes_present_at_host_session_start_are_sent() -> None:
    core, ap, _ = _start(_config(nht=False), _underlay_up())
    route, attrs = t5(VTEP_B, "10.20.0.0/16", rmac=RMAC_B)
    ap.apply(core.handle(announce(UNDERLAY, VTEP_B, attrs, route), 1))
    out = ap.apply(core.handle(_host_up(), 2))
    assert N4("10.20.0.0/16") in _sent(out, HOST)


def test_allowas_in_origin_on_host_sessions() -> None:
    core, ap, _ = _start(_config(nht=False), _underlay_up(), _host_up())
    ap.apply(core.handle(_unicast(HOST, HOST, "10.10.10.0/24", as_path=(64600, 64514)), 1))
    assert UnicastRouteEntry("red", N4("10.10.10.0/24"), HOST) in ap.entries  # our AS as origin only
    out = ap.apply(core.handle(_unicast(HOST, HOST, "10.11.0.0/24", as_path=(64514, 64600)), 2))
    assert any(isinstance(n, RouteRejected) and n.reason is RejectReason.AS_PATH_LOOP for n in out.notices)
    assert not any(e.prefix == N4("10.11.0.0/24") for e in ap.entries if isinstance(e, UnicastRouteEntry))


def test_graceful_restart_keeps_unicast_until_its_end_of_rib() -> None:
    core, ap, _ = _start(_config(nht=True), _underlay_up(gr=True))
    ap.apply(core.handle(_unicast(UNDERLAY, UNDERLAY, f"{VTEP_B}/32", "10.99.0.0/16"), 1))
    ap.apply(core.handle(announce(UNDERLAY, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 1))
    fdb = FdbEntry(110, mac(1), VTEP_B)
    assert fdb in ap.entries
    ap.apply(core.handle(PeerDown(UNDERLAY, "restart", graceful=True), 2))
    assert fdb in ap.entries and UnicastRouteEntry("", N4("10.99.0.0/16"), UNDERLAY) in ap.entries
    ap.apply(core.handle(_underlay_up(gr=True), 3))
    ap.apply(core.handle(_unicast(UNDERLAY, UNDERLAY, f"{VTEP_B}/32"), 4))
    ap.apply(core.handle(EndOfRib(UNDERLAY, Family.IPV4_UNICAST), 5))
    assert UnicastRouteEntry("", N4("10.99.0.0/16"), UNDERLAY) not in ap.entries  # not refreshed: swept
    assert fdb in ap.entries  # EVPN is still waiting for its own End-of-RIB
    ap.apply(core.handle(EndOfRib(UNDERLAY, Family.L2VPN_EVPN), 6))
    assert fdb not in ap.entries


def test_reconfigure_keeps_unicast_state_without_churn() -> None:
    core, ap, _ = _start(_config(), _underlay_up(), _host_up())
    ap.apply(core.handle(KernelRoutes(frozenset({N4("100.65.0.0/24")})), 1))
    ap.apply(core.handle(_unicast(UNDERLAY, UNDERLAY, "10.99.0.0/16"), 1))
    ap.apply(core.handle(_unicast(HOST, HOST, "10.10.10.0/24", as_path=(64600,)), 1))
    ap.apply(core.handle(announce(UNDERLAY, VTEP_B, t2_attrs(), t2(VTEP_B, mac(1))), 1))
    before = set(ap.entries)
    out = ap.apply(core.reconfigure(_config(), 2))
    assert not out.dataplane and not out.advertise and not out.withdraw
    assert ap.entries == before == set(core.desired_dataplane())


def test_host_session_removed_by_reconfigure_withdraws_its_routes() -> None:
    core, ap, _ = _start(_config(nht=False), _underlay_up(), _host_up())
    out = ap.apply(core.handle(_unicast(HOST, HOST, "10.10.10.0/24", as_path=(64600,)), 1))
    t5 = next(r for r in _sent(out, UNDERLAY) if isinstance(r, IpPrefixRoute))
    out = ap.apply(core.reconfigure(_config(nht=False, host=False), 2))
    assert t5 in _gone(out, UNDERLAY)
    assert not any(isinstance(e, UnicastRouteEntry) and e.prefix == N4("10.10.10.0/24") for e in ap.entries)


def test_host_echo_of_an_imported_route_does_not_win() -> None:
    """The host sends an EVPN route we gave it back (AS path 64600 64514, accepted by allowas-in origin):
    in the VRF's one best-path selection the imported route (shorter AS path) stays best, as in FRR."""
    core, ap, _ = _start(_config(nht=False), _underlay_up(), _host_up())
    route, attrs = t5(VTEP_B, "10.30.0.0/24", rmac=RMAC_B)
    ap.apply(core.handle(announce(UNDERLAY, VTEP_B, attrs, route), 1))
    installed = RouteEntry("red", 100, N4("10.30.0.0/24"), VTEP_B)
    assert installed in ap.entries
    out = ap.apply(core.handle(_unicast(HOST, HOST, "10.30.0.0/24", as_path=(64600, 64514)), 2))
    assert not out.advertise and not out.withdraw and not out.dataplane
    assert installed in ap.entries
    assert UnicastRouteEntry("red", N4("10.30.0.0/24"), HOST) not in ap.entries
    # the EVPN route goes: the echo is all that is left, and it is used (FRR would do the same)
    out = ap.apply(core.handle(withdraw(UNDERLAY, route), 3))
    assert UnicastRouteEntry("red", N4("10.30.0.0/24"), HOST) in ap.entries and installed not in ap.entries
    assert ap.entries == set(core.desired_dataplane())


def test_host_route_beats_an_equal_evpn_route_as_ebgp() -> None:
    core, ap, _ = _start(_config(nht=False), _underlay_up(), _host_up())
    route, attrs = t5(VTEP_B, "10.10.10.0/24", rmac=RMAC_B)
    attrs = dataclasses.replace(attrs, as_path=AsPath.sequence(64600))
    ap.apply(core.handle(announce(UNDERLAY, VTEP_B, attrs, route), 1))
    assert RouteEntry("red", 100, N4("10.10.10.0/24"), VTEP_B) in ap.entries
    out = ap.apply(core.handle(_unicast(HOST, HOST, "10.10.10.0/24", as_path=(64600,)), 2))
    assert UnicastRouteEntry("red", N4("10.10.10.0/24"), HOST) in ap.entries
    assert RouteEntry("red", 100, N4("10.10.10.0/24"), VTEP_B) not in ap.entries
    assert any(isinstance(r, IpPrefixRoute) and r.prefix == N4("10.10.10.0/24") for r in _sent(out, UNDERLAY))
    assert N4("10.10.10.0/24") in _gone(out, HOST)  # split horizon: the host's own route is not sent back
    assert ap.entries == set(core.desired_dataplane())


PT_CIDR = N4("192.169.20.0/24")
PT_HOST = V4("192.169.20.3")
PT_ROUTER = V4("192.169.20.1")


def test_passthrough_exchanges_unicast_with_the_underlay_without_evpn() -> None:
    """L3Passthrough: a host session in the default VRF; its routes go to the main table and the underlay,
    the underlay's routes go to the host (next hop ours), the veth subnet is announced to both."""
    cfg = dataclasses.replace(
        _config(nht=False, host=False),
        passthrough=HostSession(asn=64514, host_asn=64600, local_cidr_ipv4=PT_CIDR, node_index=1),
    )
    host_up = PeerUp(
        PT_HOST, 64600, PT_HOST, False, frozenset({Family.IPV4_UNICAST}), local_address=PT_ROUTER
    )
    core, ap, outs = _start(cfg, _underlay_up(), host_up)
    assert PT_CIDR in _sent(outs[-2], UNDERLAY) and PT_CIDR in _sent(outs[-1], PT_HOST)
    out = ap.apply(core.handle(_unicast(PT_HOST, PT_HOST, "10.40.0.0/16", as_path=(64600,)), 1))
    assert UnicastRouteEntry("", N4("10.40.0.0/16"), PT_HOST) in ap.entries
    attrs, nh = _sent(out, UNDERLAY)[N4("10.40.0.0/16")]
    # next-hop-self: every node's veth subnet is the same, so the host's own address would not lead here
    assert nh == LOCAL and attrs.as_path == AsPath.sequence(64600)
    assert not any(isinstance(r, IpPrefixRoute) for a in out.advertise for r in a.routes)  # no EVPN
    out = ap.apply(core.handle(_unicast(UNDERLAY, UNDERLAY, "10.50.0.0/16"), 2))
    attrs, nh = _sent(out, PT_HOST)[N4("10.50.0.0/16")]
    assert nh == PT_ROUTER and attrs.as_path == AsPath.sequence(64514)
