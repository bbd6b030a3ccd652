"""Two cores wired to each other in memory over eBGP (AS 64514 and AS 64518, as OpenPERouter's two
clusters): each one's RoutesToAdvertise is fed to the other as RoutesReceived (RFC 7432 §15 end to end)."""

from __future__ import annotations

import ipaddress

from evpn.codec.families import Family
from evpn.config import Neighbor
from evpn.core import CoreOutput, EvpnCore
from evpn.dataplane_state import FdbEntry, FloodEntry, NeighEntry, RouteEntry
from evpn.events import CoreEvent, LocalMacLearned, LocalNeighLearned, PeerDown, PeerUp, RoutesReceived
from evpn.notices import MacMoved
from tests.unit.core_helpers import VTEP_A, VTEP_B, Applied, config, mac

V4 = ipaddress.IPv4Address
ADDR_A = V4("10.0.0.1")
ADDR_B = V4("10.0.0.2")


class Fabric:
    """Core A and core B, an eBGP session between them, each with its own applied dataplane."""

    def __init__(self) -> None:
        self.a = EvpnCore(
            config(asn=64514, router_id="10.0.0.1", vtep=VTEP_A, neighbors=(Neighbor(ADDR_B, asn=64518),))
        )
        self.b = EvpnCore(
            config(asn=64518, router_id="10.0.0.2", vtep=VTEP_B, neighbors=(Neighbor(ADDR_A, asn=64514),))
        )
        self.dp = {"a": Applied(), "b": Applied()}
        self.notices: list[object] = []
        self.now = 0.0
        self.dp["a"].apply(self.a.start(0))
        self.dp["b"].apply(self.b.start(0))
        # the session comes up on both ends before any UPDATE flows
        up_a = self.a.handle(PeerUp(ADDR_B, 64518, ADDR_B, False, frozenset({Family.L2VPN_EVPN})), 0)
        up_b = self.b.handle(PeerUp(ADDR_A, 64514, ADDR_A, False, frozenset({Family.L2VPN_EVPN})), 0)
        self.send("a", up_a)
        self.send("b", up_b)

    def send(self, side: str, out: CoreOutput) -> None:
        """Apply ``out`` on ``side`` and deliver its UPDATEs to the other side, until quiet."""
        queue = [(side, out)]
        while queue:
            side, out = queue.pop(0)
            self.dp[side].apply(out)
            self.notices.extend((side, n) for n in out.notices)
            other, core, me = ("b", self.b, ADDR_A) if side == "a" else ("a", self.a, ADDR_B)
            for w in out.withdraw:
                queue.append((other, core.handle(RoutesReceived(me, withdrawn=w.routes), self.now)))
            for adv in out.advertise:
                ev = RoutesReceived(me, adv.routes, adv.attributes, adv.next_hop)
                queue.append((other, core.handle(ev, self.now)))

    def event(self, side: str, ev: CoreEvent) -> None:
        self.now += 1
        core = self.a if side == "a" else self.b
        self.send(side, core.handle(ev, self.now))


def test_flood_lists_and_l3_routes_exchanged() -> None:
    """RFC 8365 §9: each side floods BUM to the other after type-3 exchange."""
    f = Fabric()
    assert FloodEntry(110, VTEP_B) in f.dp["a"].entries and FloodEntry(110, VTEP_A) in f.dp["b"].entries
    # both originate 192.170.1.0/24: the connected route wins, nothing installed
    assert not [e for e in f.dp["a"].entries if isinstance(e, RouteEntry)]


def test_mac_learned_on_one_appears_remote_on_the_other() -> None:
    """RFC 7432 §9.2: a locally learned MAC becomes a remote FDB entry on the peer."""
    f = Fabric()
    f.event("a", LocalMacLearned(110, mac(1)))
    assert FdbEntry(110, mac(1), VTEP_A) in f.dp["b"].entries
    assert f.b.mac_table(110).rows[0].kind == "remote"


def test_mac_moves_back_and_forth_with_increasing_sequence_numbers() -> None:
    """RFC 7432 §15.1: each move raises the sequence; the old location follows."""
    f = Fabric()
    f.event("a", LocalMacLearned(110, mac(1)))
    seqs = []
    for i in range(4):
        side, other, vtep = ("b", "a", VTEP_B) if i % 2 == 0 else ("a", "b", VTEP_A)
        f.event(side, LocalMacLearned(110, mac(1)))
        # the other side now points the MAC at the new location, and no longer has it local
        assert FdbEntry(110, mac(1), vtep) in f.dp[other].entries
        assert not [e for e in f.dp[side].entries if isinstance(e, FdbEntry) and e.mac == mac(1)]
        row = (f.a if side == "a" else f.b).mac_table(110).rows[0]
        assert row.kind == "local"
        seqs.append(row.local_seq)
    assert seqs == [1, 2, 3, 4]
    moved = [n for _, n in f.notices if isinstance(n, MacMoved)]
    assert [n.sequence for n in moved] == sorted(n.sequence for n in moved)


def test_symmetric_irb_host_route_and_arp_suppression_across_clusters() -> None:
    """RFC 9135 §5 symmetric IRB across AS 64514 / AS 64518."""
    f = Fabric()
    ip = V4("192.170.1.3")
    f.event("a", LocalMacLearned(110, mac(3)))
    f.event("a", LocalNeighLearned(110, ip, mac(3)))
    b = f.dp["b"].entries
    assert NeighEntry(110, ip, mac(3)) in b
    assert RouteEntry("red", 100, ipaddress.ip_network("192.170.1.3/32"), VTEP_A) in b
    rmac_a = next(e.mac for e in b if isinstance(e, FdbEntry) and e.vni == 100)
    assert NeighEntry(100, VTEP_A, rmac_a) in b


def test_session_loss_cleans_the_other_side() -> None:
    """RFC 4271 §8.2.2: losing the session removes everything learned over it."""
    f = Fabric()
    f.event("a", LocalMacLearned(110, mac(1)))
    f.send("b", f.b.handle(PeerDown(ADDR_A), 10))
    assert not f.dp["b"].entries
    assert f.b.desired_dataplane() == frozenset()
