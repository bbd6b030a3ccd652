"""Property tests of the core (RFC 7432 §15, RFC 4271 §9): random learn / age / move / receive / withdraw /
peer-down sequences keep the invariants, and the result equals a from-scratch recomputation."""

from __future__ import annotations

import ipaddress
import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.families import Family
from evpn.config import DuplicateDetection, Neighbor
from evpn.core import EvpnCore
from evpn.dataplane_state import FdbEntry, FloodEntry, NeighEntry, RouteEntry
from evpn.events import (
    CoreEvent,
    EndOfRib,
    LocalMacAged,
    LocalMacLearned,
    LocalNeighLearned,
    LocalNeighRemoved,
    LocalPrefixAdded,
    LocalPrefixRemoved,
    PeerDown,
    RoutesReceived,
)
from evpn.mac import MacAddress
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
    t3,
    t5,
)

PEERS = (PEER, PEER2)
VTEPS = (VTEP_B, VTEP_C)
RMACS = {VTEP_B: MacAddress.from_text("02:00:00:00:00:0b"), VTEP_C: MacAddress.from_text("02:00:00:00:00:0c")}
IPS = tuple(ipaddress.IPv4Address(f"192.170.1.{10 + i}") for i in range(3))
PREFIXES = ("10.30.0.0/16", "10.31.0.0/16", "192.170.1.11/32")
VNIS = (110, 120)


def _config(dad: bool = True):  # type: ignore[no-untyped-def]
    return config(
        l2=VNIS,
        neighbors=(Neighbor(PEER, asn=64514), Neighbor(PEER2, asn=64514)),
        dad=DuplicateDetection(enabled=dad),
    )


def _t2_update(peer, vtep, vni, m, ip, seq, sticky):  # type: ignore[no-untyped-def]
    l3 = 100 if (ip is not None and vni == 110) else None
    attrs = t2_attrs(vni=vni, seq=seq, sticky=sticky, l3vni=l3, rmac=RMACS[vtep] if l3 else None)
    return RoutesReceived(peer, (t2(vtep, m, ip, vni, l3),), attrs, vtep)


def check_invariants(core: EvpnCore, applied: Applied) -> None:
    desired = core.desired_dataplane()
    # the sum of all deltas applied to an empty set is the desired state
    assert applied.entries == desired
    # show bgp summary's count is the paths of the RIB view
    assert core.rib_path_count() == sum(len(r.paths) for r in core.rib_by_rd())
    for vni in VNIS:
        local = {r.mac for r in core.mac_table(vni).rows if r.kind == "local"}
        remote = {e.mac for e in desired if isinstance(e, FdbEntry) and e.vni == vni}
        # no MAC is both local and installed as remote
        assert not local & remote
    # nothing is left behind: every entry is backed by a live received path
    live = [p for peer in core._peers.values() for p in peer.adj_in.values()]
    t2s = {(p.route.mac, p.next_hop) for p in live if isinstance(p.route, MacIpRoute)}
    t2ips = {(p.route.ip, p.route.mac) for p in live if isinstance(p.route, MacIpRoute)}
    hops = {p.next_hop for p in live}
    for e in desired:
        if isinstance(e, FdbEntry) and e.vni in VNIS:
            assert (e.mac, e.vtep) in t2s
        elif isinstance(e, NeighEntry) and e.vni in VNIS:
            assert (e.ip, e.mac) in t2ips
        elif isinstance(e, FloodEntry | RouteEntry):
            assert e.vtep in hops


class CoreMachine(RuleBasedStateMachine):
    """Drives one core; at every step the invariants hold; at the end a replay equals the live state."""

    def __init__(self) -> None:
        super().__init__()
        self.core = EvpnCore(_config())
        self.applied = Applied()
        self.events: list[tuple[CoreEvent | None, float]] = []
        self.now = 0.0
        self.up = set()
        self._do(None)
        for p in PEERS:
            self._do(peer_up(p, gr=True))
            self.up.add(p)

    def _do(self, ev: CoreEvent | None) -> None:
        self.now += 1.0
        self.events.append((ev, self.now))
        out = self.core.start(self.now) if ev is None else self.core.handle(ev, self.now)
        self.applied.apply(out)

    @rule(vni=st.sampled_from(VNIS), m=st.integers(0, 4), sticky=st.booleans())
    def learn(self, vni: int, m: int, sticky: bool) -> None:
        self._do(LocalMacLearned(vni, mac(m), sticky))

    @rule(vni=st.sampled_from(VNIS), m=st.integers(0, 4))
    def age(self, vni: int, m: int) -> None:
        self._do(LocalMacAged(vni, mac(m)))

    @rule(vni=st.sampled_from(VNIS), i=st.integers(0, 2), m=st.integers(0, 4))
    def neigh(self, vni: int, i: int, m: int) -> None:
        self._do(LocalNeighLearned(vni, IPS[i], mac(m)))

    @rule(vni=st.sampled_from(VNIS), i=st.integers(0, 2))
    def neigh_gone(self, vni: int, i: int) -> None:
        self._do(LocalNeighRemoved(vni, IPS[i]))

    @rule(
        peer=st.sampled_from(PEERS),
        vtep=st.sampled_from(VTEPS),
        vni=st.sampled_from(VNIS),
        m=st.integers(0, 4),
        i=st.none() | st.integers(0, 2),
        seq=st.integers(0, 6),
        sticky=st.booleans(),
    )
    def receive_t2(self, peer, vtep, vni, m, i, seq, sticky) -> None:  # type: ignore[no-untyped-def]
        ip = None if i is None else IPS[i]
        self._do(_t2_update(peer, vtep, vni, mac(m), ip, seq, sticky and seq == 0))

    @rule(
        peer=st.sampled_from(PEERS),
        vtep=st.sampled_from(VTEPS),
        vni=st.sampled_from(VNIS),
        m=st.integers(0, 4),
        i=st.none() | st.integers(0, 2),
    )
    def withdraw_t2(self, peer, vtep, vni, m, i) -> None:  # type: ignore[no-untyped-def]
        ip = None if i is None else IPS[i]
        l3 = 100 if (ip is not None and vni == 110) else None
        self._do(RoutesReceived(peer, withdrawn=(t2(vtep, mac(m), ip, vni, l3),)))

    @rule(
        peer=st.sampled_from(PEERS),
        vtep=st.sampled_from(VTEPS),
        vni=st.sampled_from(VNIS),
        gone=st.booleans(),
    )
    def imet(self, peer, vtep, vni, gone) -> None:  # type: ignore[no-untyped-def]
        route, attrs = t3(vtep, vni)
        ev = RoutesReceived(peer, withdrawn=(route,)) if gone else RoutesReceived(peer, (route,), attrs, vtep)
        self._do(ev)

    @rule(
        peer=st.sampled_from(PEERS),
        vtep=st.sampled_from(VTEPS),
        p=st.sampled_from(PREFIXES),
        gone=st.booleans(),
        rmac=st.booleans(),
    )
    def prefix(self, peer, vtep, p, gone, rmac) -> None:  # type: ignore[no-untyped-def]
        route, attrs = t5(vtep, p, rmac=RMACS[vtep] if rmac else None)
        ev = RoutesReceived(peer, withdrawn=(route,)) if gone else RoutesReceived(peer, (route,), attrs, vtep)
        self._do(ev)

    @rule(p=st.sampled_from(PREFIXES), add=st.booleans())
    def local_prefix(self, p: str, add: bool) -> None:
        net = ipaddress.ip_network(p)
        self._do(LocalPrefixAdded("red", net) if add else LocalPrefixRemoved("red", net))

    @precondition(lambda self: bool(self.up))
    @rule(data=st.data())
    def peer_down(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from(sorted(self.up)))
        self.up.discard(peer)
        self._do(PeerDown(peer, graceful=data.draw(st.booleans())))

    @precondition(lambda self: len(self.up) < len(PEERS))
    @rule(data=st.data())
    def peer_back(self, data: st.DataObject) -> None:
        peer = data.draw(st.sampled_from(sorted(set(PEERS) - self.up)))
        self.up.add(peer)
        self._do(peer_up(peer, gr=data.draw(st.booleans())))

    @rule(peer=st.sampled_from(PEERS))
    def end_of_rib(self, peer: ipaddress.IPv4Address) -> None:
        self._do(EndOfRib(peer, Family.L2VPN_EVPN))

    @rule(dt=st.sampled_from((1.0, 100.0, 400.0)))
    def tick(self, dt: float) -> None:
        self.now += dt
        self.events.append((_TICK, self.now))
        self.applied.apply(self.core.tick(self.now))

    @rule()
    def reconfigure_same(self) -> None:
        """Re-applying the same configuration changes nothing."""
        self.events.append((_RECONF, self.now))
        out = self.applied.apply(self.core.reconfigure(_config(), self.now))
        assert not out.advertise and not out.withdraw and not out.dataplane

    @invariant()
    def invariants(self) -> None:
        check_invariants(self.core, self.applied)

    def teardown(self) -> None:
        # a fresh core fed the same events ends in the same state (from-scratch recomputation)
        fresh = EvpnCore(_config())
        applied = Applied()
        for ev, now in self.events:
            if ev is None:
                applied.apply(fresh.start(now))
            elif ev is _TICK:
                applied.apply(fresh.tick(now))
            elif ev is _RECONF:
                applied.apply(fresh.reconfigure(_config(), now))
            else:
                applied.apply(fresh.handle(ev, now))
        assert fresh.desired_dataplane() == self.core.desired_dataplane()
        assert applied.entries == self.applied.entries
        for vni in VNIS:
            assert fresh.mac_table(vni) == self.core.mac_table(vni)
        # every session lost for good: nothing received is left in the dataplane
        for peer in PEERS:
            self.applied.apply(self.core.handle(PeerDown(peer), self.now))
        assert self.core.desired_dataplane() == frozenset() == frozenset(self.applied.entries)


_TICK: CoreEvent = LocalMacAged(0, mac(0))  # markers in the event log (VNI 0 does not exist)
_RECONF: CoreEvent = LocalMacAged(0, mac(1))

TestCoreMachine = CoreMachine.TestCase
TestCoreMachine.settings = settings(
    max_examples=int(os.environ.get("CORE_EXAMPLES", "60")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


_route = st.tuples(
    st.sampled_from(PEERS),
    st.sampled_from(VTEPS),
    st.sampled_from(VNIS),
    st.integers(0, 4),
    st.none() | st.integers(0, 2),
    st.integers(0, 4),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(
    routes=st.lists(_route, max_size=25, unique_by=lambda r: (r[0], r[1], r[2], r[3], r[4])), data=st.data()
)
def test_rfc7432_s15_result_does_not_depend_on_route_arrival_order(routes, data) -> None:  # type: ignore[no-untyped-def]
    """Same received routes, two arrival orders: the same dataplane and MAC tables."""
    updates = [
        _t2_update(p, v, vni, mac(m), None if i is None else IPS[i], seq, sticky and seq == 0)
        for p, v, vni, m, i, seq, sticky in routes
    ]
    extra = [
        RoutesReceived(p, (r,), a, v) for p, v in itertools.product(PEERS, VTEPS) for r, a in [t3(v, 110)]
    ]
    updates += extra
    shuffled = data.draw(st.permutations(updates))
    results = []
    for order in (updates, shuffled):
        core = EvpnCore(_config(dad=False))
        applied = Applied()
        applied.apply(core.start(0))
        for p in PEERS:
            applied.apply(core.handle(peer_up(p), 0))
        applied.apply(core.handle(LocalMacLearned(110, mac(0)), 0))
        for ev in order:
            applied.apply(core.handle(ev, 1))
        check_invariants(core, applied)
        results.append((core.desired_dataplane(), [core.mac_table(v).rows for v in VNIS]))
    assert results[0] == results[1]
