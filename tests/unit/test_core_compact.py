"""Compact VRF entries (a MAC, IP or prefix known from remote routes only, held as its candidates, the routes'
Paths): whatever the history of announcements and withdrawals, the state equals a fresh core's fed only the
routes still live (RFC 7432 §15 decisions, RFC 9135 host routes), and every state object left is one that
has no compact form."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from evpn.codec.attributes import PathAttributes
from evpn.codec.messages import Route
from evpn.config import DuplicateDetection, Neighbor
from evpn.core import EvpnCore
from evpn.events import RoutesReceived
from evpn.ip_vrf import PrefixState
from evpn.mac import MacAddress
from evpn.mac_vrf import IpState, MacState
from evpn.rib import route_key
from tests.unit.core_helpers import (
    PEER,
    PEER2,
    VTEP_B,
    VTEP_C,
    Applied,
    config,
    mac,
    peer_up,
    t2,
    t2_attrs,
    t5,
)

VTEP_D = ipaddress.IPv4Address("100.65.0.4")
VTEPS = (VTEP_B, VTEP_C, VTEP_D)
RMACS = {v: MacAddress.from_int(0x020000000000 + i) for i, v in enumerate(VTEPS)}
IPS = tuple(ipaddress.IPv4Address(f"192.170.1.{10 + i}") for i in range(3))
PREFIXES = ("10.30.0.0/16", "192.170.1.11/32")
VNIS = (110, 120)

# (announce, peer, next hop, kind, vni, mac, ip index, seq, sticky, prefix index, rmac, RD's VTEP)
_op = st.tuples(
    st.booleans(),
    st.sampled_from((PEER, PEER2)),
    st.sampled_from(VTEPS),
    st.sampled_from(("t2", "t2", "t5")),
    st.sampled_from(VNIS),
    st.integers(0, 1),
    st.none() | st.integers(0, 1),
    st.integers(0, 2),
    st.booleans(),
    st.integers(0, 1),
    st.booleans(),
    st.sampled_from(VTEPS[:2]),
)


def _core() -> EvpnCore:
    cfg = config(
        l2=VNIS,
        neighbors=(Neighbor(PEER, asn=64514), Neighbor(PEER2, asn=64514)),
        dad=DuplicateDetection(enabled=False),
    )
    core = EvpnCore(cfg)
    core.start(0.0)
    for p in (PEER, PEER2):
        core.handle(peer_up(p), 0.0)
    return core


def _route(op: tuple[object, ...]) -> tuple[Route, PathAttributes]:
    _, _, nh, kind, vni, m, i, seq, sticky, p, rmac, vtep = op
    assert isinstance(nh, ipaddress.IPv4Address) and isinstance(vtep, ipaddress.IPv4Address)
    assert isinstance(vni, int) and isinstance(m, int)
    assert isinstance(seq, int) and isinstance(p, int)
    if kind == "t5":
        return t5(vtep, PREFIXES[p], rmac=RMACS[nh] if rmac else None)
    assert i is None or isinstance(i, int)
    ip = None if i is None else IPS[i]
    l3 = 100 if ip is not None and vni == 110 else None
    attrs = t2_attrs(vni, seq=seq, sticky=bool(sticky) and seq == 0, l3vni=l3, rmac=RMACS[nh] if l3 else None)
    return t2(vtep, mac(m), ip, vni, l3), attrs


def _view(core: EvpnCore) -> object:
    return (
        core.desired_dataplane(),
        [core.mac_table(v) for v in VNIS],
        core.next_hops(),
        core.vni_table(),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, min_size=1, max_size=40))
def test_state_depends_only_on_live_routes(ops: list[tuple[object, ...]]) -> None:
    core = _core()
    applied = Applied()
    live: dict[tuple[object, ...], RoutesReceived] = {}
    shared: dict[PathAttributes, PathAttributes] = {}  # equal attributes as one object, as a decoder may
    for op in ops:
        announce, peer, nh = op[0], op[1], op[2]
        assert isinstance(peer, ipaddress.IPv4Address) and isinstance(nh, ipaddress.IPv4Address)
        route, attrs = _route(op)
        attrs = shared.setdefault(attrs, attrs)
        key = (peer, route_key(route))  # type: ignore[arg-type]
        if announce:
            ev = RoutesReceived(peer, (route,), attrs, nh)
            live[key] = ev
        else:
            ev = RoutesReceived(peer, withdrawn=(route,))
            live.pop(key, None)
        applied.apply(core.handle(ev, 1.0))
    assert applied.entries == core.desired_dataplane()
    fresh = _core()
    for ev in live.values():
        fresh.handle(ev, 1.0)
    assert _view(core) == _view(fresh)
    # nothing is kept expanded that has a compact form (the candidates alone)
    for vrf in core.mac_vrfs.values():
        for held in vrf.macs.values():
            assert not isinstance(held, MacState) or held.as_pathset() is None
        for iheld in vrf.ips.values():
            assert not isinstance(iheld, IpState) or iheld.local_mac is not None
    for ivrf in core.ip_vrfs.values():
        for pheld in ivrf.prefixes.values():
            assert not isinstance(pheld, PrefixState) or pheld.local != 0


def test_vtep_entries_of_routes_sharing_one_update() -> None:
    """The Router's MAC FDB entry and VTEP neighbour (RFC 9135 §4) stay while any host route of the UPDATE
    that brought them stays, and go with the last one, whatever the withdrawal order."""
    for order in ((0, 1, 2), (2, 1, 0), (1, 0, 2)):
        core = _core()
        applied = Applied()
        attrs = t2_attrs(110, l3vni=100, rmac=RMACS[VTEP_B])
        routes = [t2(VTEP_B, mac(i), IPS[i], 110, 100) for i in range(3)]
        applied.apply(core.handle(RoutesReceived(PEER, tuple(routes), attrs, VTEP_B), 1.0))
        vtep_entries = {e for e in applied.entries if getattr(e, "vni", None) == 100}
        assert len(vtep_entries) == 2
        for n, i in enumerate(order):
            applied.apply(core.handle(RoutesReceived(PEER, withdrawn=(routes[i],)), 2.0))
            assert applied.entries == core.desired_dataplane()
            assert (vtep_entries <= applied.entries) == (n < 2)
        assert not applied.entries
