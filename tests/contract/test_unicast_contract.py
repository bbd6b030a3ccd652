"""The SessionEngine contract for IPv4/IPv6 unicast beside EVPN (issue #8), every engine kind.

Two engines back to back negotiate L2VPN EVPN, IPv4 and IPv6 unicast on one session and move unicast routes
with ORIGIN, AS_PATH, MED, LOCAL_PREF and communities; a raw peer (our codec on a plain socket) checks what
goes on the wire and sends unicast UPDATEs the engine must report exactly as ``RoutesReceived``.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from evpn.codec.attributes import AsPath, Origin, PathAttributes
from evpn.codec.families import Family
from evpn.codec.messages import Route, Update, end_of_rib
from evpn.codec.packer import UpdatePacker
from evpn.config import Neighbor, Underlay
from evpn.events import EndOfRib, PeerUp, RoutesReceived
from tests.contract.conftest import EngineFactory
from tests.contract.helpers import EventLog, RawPeer, evpn_attributes, free_port, imet
from tests.contract.test_engine_contract import A_ID, A_IP, B_ID, B_IP, FAST, make_pair

ALL = (Family.L2VPN_EVPN, Family.IPV4_UNICAST, Family.IPV6_UNICAST)
NO_EXPORT = 0xFFFFFF01
V4_HOP = ipaddress.IPv4Address("192.0.2.1")
V6_HOP = ipaddress.IPv6Address("fd00::1")
V4 = [ipaddress.IPv4Network(p) for p in ("10.1.0.0/24", "10.1.1.0/24", "10.1.2.128/25", "0.0.0.0/0")]
V6 = [ipaddress.IPv6Network(p) for p in ("2001:db8:1::/48", "2001:db8:2::/64", "2001:db8:3::1/128")]


def unicast_attributes(asn: int = 64512) -> PathAttributes:
    """What must survive an engine: ORIGIN, AS_PATH, MED, LOCAL_PREF (iBGP) and communities."""
    return PathAttributes(
        origin=Origin.INCOMPLETE,
        as_path=AsPath.sequence(asn + 100, asn + 200),
        med=50,
        local_pref=200,
        communities=((65000 << 16) | 1, NO_EXPORT),
    )


async def _collect(
    log: EventLog, want: set[object], start: int, *, withdrawn: bool = False
) -> list[RoutesReceived]:
    """The RoutesReceived events (from ``start``) until every route of ``want`` was announced / withdrawn."""
    got: list[RoutesReceived] = []

    def seen() -> set[object]:
        return {r for e in got for r in (e.withdrawn if withdrawn else e.announced)}

    while not want <= seen():
        got.append(
            await log.wait_for(
                RoutesReceived,
                lambda e: e not in got and bool(set(e.withdrawn if withdrawn else e.announced) & want),
                start=start,
            )
        )
    return got


async def test_unicast_beside_evpn_on_one_session(engine_factory: EngineFactory) -> None:
    p = await make_pair(engine_factory, families=ALL)
    try:
        up_a, up_b = await p.up()
        assert up_a.families == frozenset(ALL) and up_b.families == frozenset(ALL)
        attrs = unicast_attributes()
        a_peer = ipaddress.ip_address(A_IP)

        mark = len(p.b_log.events)
        await p.a.advertise(None, attrs, V4_HOP, V4)
        [v4] = await _collect(p.b_log, set(V4), mark)  # packed: one UPDATE for one attribute set
        assert v4.peer == a_peer and set(v4.announced) == set(V4) and not v4.withdrawn
        assert v4.next_hop == V4_HOP
        assert v4.attributes == dataclasses.replace(attrs, next_hop=V4_HOP)  # NEXT_HOP in the attributes

        mark = len(p.b_log.events)
        await p.a.advertise(None, attrs, V6_HOP, V6)
        [v6] = await _collect(p.b_log, set(V6), mark)
        assert set(v6.announced) == set(V6) and v6.next_hop == V6_HOP
        assert v6.attributes == attrs  # the next hop travels in MP_REACH_NLRI only

        vtep = ipaddress.ip_address("10.255.0.1")
        type3 = imet(A_ID, str(vtep))
        await p.a.advertise(None, evpn_attributes(64512, str(vtep), pmsi=True), vtep, [type3])
        ev = await p.b_log.wait_for(RoutesReceived, lambda e: type3 in e.announced)
        assert ev.next_hop == vtep

        # the other direction, one call with both unicast families
        mark = len(p.a_log.events)
        back = [ipaddress.ip_network("198.51.100.0/24"), ipaddress.ip_network("2001:db8:99::/48")]
        b_attrs = dataclasses.replace(attrs, med=None, communities=())
        await p.b.advertise(None, b_attrs, ipaddress.IPv4Address("192.0.2.2"), back[:1])
        await p.b.advertise(None, b_attrs, ipaddress.IPv6Address("fd00::2"), back[1:])
        got = await _collect(p.a_log, set(back), mark)
        by_route = {r: e for e in got for r in e.announced}
        assert by_route[back[0]].next_hop == ipaddress.ip_address("192.0.2.2")
        assert by_route[back[1]].next_hop == ipaddress.ip_address("fd00::2")
        assert by_route[back[1]].attributes == b_attrs

        # withdraw by prefix, per family
        mark = len(p.b_log.events)
        dropped: list[Route] = [*V4[:2], *V6[:1]]
        await p.a.withdraw(None, dropped)
        gone = await _collect(p.b_log, set(dropped), mark, withdrawn=True)
        assert {r for e in gone for r in e.withdrawn} == set(dropped)
        assert all(not e.announced for e in gone)
        line = {s.peer: s for s in p.b.peer_states()}[a_peer]
        assert line.prefixes_received == len(V4) - 2 + len(V6) - 1 + 1  # + the type-3
    finally:
        await p.a.stop()
        await p.b.stop()
        await p.a_log.close()
        await p.b_log.close()


def _one_kind(update: Update) -> None:
    """RFC 7606 §5.1: at most one of withdrawn routes, NLRI, MP_REACH_NLRI, MP_UNREACH_NLRI per UPDATE."""
    kinds = [
        bool(update.withdrawn),
        bool(update.nlri),
        update.mp_reach is not None,
        update.mp_unreach is not None,
    ]
    assert sum(kinds) == 1, update


async def _next_update(raw: RawPeer) -> Update:
    while True:
        update = await raw.expect(Update)
        if update.end_of_rib is None:
            _one_kind(update)
            return update


async def test_unicast_on_the_wire_both_ways(engine_factory: EngineFactory) -> None:
    """A raw peer: the UPDATEs the engine sends for unicast, and RoutesReceived for the raw peer's unicast."""
    port = free_port(A_IP)
    nb = Neighbor(
        ipaddress.ip_address(B_IP), asn=64512, port=free_port(B_IP), timers=FAST, passive=True, families=ALL
    )
    engine = engine_factory(
        Underlay(asn=64512, router_id=ipaddress.IPv4Address(A_ID), neighbors=(nb,)), A_IP, port
    )
    log = EventLog(engine)
    await engine.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID, families=ALL)
        up = await log.wait_for(PeerUp)
        assert up.families == frozenset(ALL)
        attrs = unicast_attributes()

        await engine.advertise(None, attrs, V4_HOP, V4)
        v4 = await _next_update(raw)
        assert set(v4.nlri) == set(V4) and v4.attributes == dataclasses.replace(attrs, next_hop=V4_HOP)

        await engine.advertise(None, attrs, V6_HOP, V6)
        v6 = await _next_update(raw)
        assert v6.mp_reach is not None and (v6.mp_reach.afi, v6.mp_reach.safi) == (2, 1)
        assert set(v6.mp_reach.routes) == set(V6) and v6.mp_reach.next_hops == (V6_HOP,)
        assert v6.attributes == attrs

        await engine.withdraw(None, V4[:1])
        gone4 = await _next_update(raw)
        assert gone4.withdrawn == (V4[0],) and gone4.attributes is None
        await engine.withdraw(None, V6[1:2])
        gone6 = await _next_update(raw)
        assert gone6.mp_unreach is not None and gone6.mp_unreach.routes == (V6[1],)

        # the raw peer's unicast, packed by our codec: reported as the native session machine reports it
        theirs = dataclasses.replace(attrs, local_pref=120, communities=(NO_EXPORT,))
        their_v4 = [ipaddress.IPv4Network("203.0.113.0/24"), ipaddress.IPv4Network("203.0.113.128/25")]
        their_v6 = [ipaddress.IPv6Network("2001:db8:77::/48")]
        hop4, hop6 = ipaddress.IPv4Address("192.0.2.2"), ipaddress.IPv6Address("fd00::2")
        packer = UpdatePacker()
        mark = len(log.events)
        for message in packer.announce(theirs, their_v4, hop4) + packer.announce(theirs, their_v6, hop6):
            await raw.send(message)
        r4 = await log.wait_for(RoutesReceived, lambda e: set(their_v4) <= set(e.announced), start=mark)
        assert r4.announced == tuple(their_v4) and r4.next_hop == hop4 and not r4.withdrawn
        assert r4.attributes == dataclasses.replace(theirs, next_hop=hop4)
        r6 = await log.wait_for(RoutesReceived, lambda e: their_v6[0] in e.announced, start=mark)
        assert r6.announced == tuple(their_v6) and r6.next_hop == hop6 and r6.attributes == theirs
        for message in packer.withdraw([*their_v4[:1], *their_v6]):
            await raw.send(message)
        w4 = await log.wait_for(RoutesReceived, lambda e: their_v4[0] in e.withdrawn, start=mark)
        w6 = await log.wait_for(RoutesReceived, lambda e: their_v6[0] in e.withdrawn, start=mark)
        assert w4.withdrawn == (their_v4[0],) and w6.withdrawn == tuple(their_v6)
        assert not w4.announced and not w6.announced and w4.attributes is None and w6.next_hop is None

        await raw.send(end_of_rib(Family.IPV4_UNICAST))
        await raw.send(end_of_rib(Family.IPV6_UNICAST))
        await log.wait_for(EndOfRib, lambda e: e.family is Family.IPV4_UNICAST, start=mark)
        await log.wait_for(EndOfRib, lambda e: e.family is Family.IPV6_UNICAST, start=mark)
    finally:
        await raw.close()
        await engine.stop()
        await log.close()


async def test_peer_up_reports_our_address(engine_factory: EngineFactory) -> None:
    p = await make_pair(engine_factory, families=ALL)
    try:
        up_a, up_b = await p.up()
        assert up_a.local_address == ipaddress.ip_address(A_IP)
        assert up_b.local_address == ipaddress.ip_address(B_IP)
    finally:
        await p.a.stop()
        await p.b.stop()
        await p.a_log.close()
        await p.b_log.close()


async def test_local_asn_per_neighbor(engine_factory: EngineFactory) -> None:
    """A session with its own ASN (a host session's ``asn``): the peer sees it, eBGP from that ASN."""
    pa, pb = free_port(A_IP), free_port(B_IP)
    a_nb = Neighbor(
        ipaddress.ip_address(B_IP), asn=65002, port=pb, timers=FAST, local_asn=65001, families=ALL
    )
    b_nb = Neighbor(ipaddress.ip_address(A_IP), asn=65001, port=pa, timers=FAST, families=ALL)
    a = engine_factory(
        Underlay(asn=64512, router_id=ipaddress.IPv4Address(A_ID), neighbors=(a_nb,)), A_IP, pa
    )
    b = engine_factory(
        Underlay(asn=65002, router_id=ipaddress.IPv4Address(B_ID), neighbors=(b_nb,)), B_IP, pb
    )
    la, lb = EventLog(a), EventLog(b)
    try:
        await a.start()
        await b.start()
        up_b = await lb.wait_for(PeerUp)
        up_a = await la.wait_for(PeerUp)
        assert up_b.peer_asn == 65001 and not up_b.ibgp
        assert up_a.peer_asn == 65002 and not up_a.ibgp
        attrs = PathAttributes(origin=Origin.IGP, as_path=AsPath.sequence(65001))
        await a.advertise(None, attrs, V4_HOP, V4[:1])
        got = await lb.wait_for(RoutesReceived, lambda e: V4[0] in e.announced)
        assert got.attributes is not None and got.attributes.as_path == AsPath.sequence(65001)
    finally:
        await a.stop()
        await b.stop()
        await la.close()
        await lb.close()
