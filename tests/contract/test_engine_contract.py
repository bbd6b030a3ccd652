"""The SessionEngine contract: two engines of one kind back to back over loopback (127.0.0.x, distinct ports).

Every engine implementation must pass this suite unchanged (``engine_factory`` is parametrised per kind).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.families import Family
from evpn.codec.messages import HEADER_LEN, MARKER, MessageType, end_of_rib
from evpn.config import Neighbor, Timers, Underlay
from evpn.events import EndOfRib, PeerDown, PeerUp, RoutesReceived
from speaker.engine import SessionEngine
from tests.contract.conftest import EngineFactory
from tests.contract.helpers import EventLog, RawPeer, evpn_attributes, free_port, imet, mac_ip

A_IP, B_IP = "127.0.0.1", "127.0.0.2"
A_ID, B_ID = "10.0.0.1", "10.0.0.2"
FAST = Timers(keepalive=1, hold_time=3, connect_retry=2)


@dataclass
class Pair:
    a: SessionEngine
    b: SessionEngine
    a_log: EventLog
    b_log: EventLog
    a_asn: int
    b_asn: int

    async def up(self) -> tuple[PeerUp, PeerUp]:
        return (
            await self.a_log.wait_for(PeerUp, lambda e: e.peer == ipaddress.ip_address(B_IP)),
            await self.b_log.wait_for(PeerUp, lambda e: e.peer == ipaddress.ip_address(A_IP)),
        )


def _underlay(asn: int, router_id: str, peer: str, peer_asn: int, port: int, **neighbor: object) -> Underlay:
    nb = Neighbor(ipaddress.ip_address(peer), asn=peer_asn, port=port, timers=FAST, **neighbor)  # type: ignore[arg-type]
    return Underlay(asn=asn, router_id=ipaddress.IPv4Address(router_id), neighbors=(nb,))


async def make_pair(
    factory: EngineFactory, a_asn: int = 64512, b_asn: int = 64512, *, start: bool = True, **neighbor: object
) -> Pair:
    pa, pb = free_port(A_IP), free_port(B_IP)
    a = factory(_underlay(a_asn, A_ID, B_IP, b_asn, pb, **neighbor), A_IP, pa)
    b = factory(_underlay(b_asn, B_ID, A_IP, a_asn, pa, **neighbor), B_IP, pb)
    pair = Pair(a, b, EventLog(a), EventLog(b), a_asn, b_asn)
    if start:
        await a.start()
        await b.start()
    return pair


@pytest.fixture
async def pair(engine_factory: EngineFactory) -> AsyncIterator[Pair]:
    p = await make_pair(engine_factory)
    yield p
    await p.a.stop()
    await p.b.stop()
    await p.a_log.close()
    await p.b_log.close()


async def test_sessions_establish(pair: Pair) -> None:
    up_a, up_b = await pair.up()
    assert up_a.ibgp and up_b.ibgp
    assert up_a.peer_asn == 64512 and str(up_a.peer_router_id) == B_ID and str(up_b.peer_router_id) == A_ID
    assert Family.L2VPN_EVPN in up_a.families
    states = {s.peer: s for s in pair.a.peer_states()}
    line = states[ipaddress.ip_address(B_IP)]
    assert line.state == "Established" and line.messages_in >= 2 and line.messages_out >= 2
    assert line.uptime is not None and line.uptime >= 0


async def test_ebgp_session_establishes(engine_factory: EngineFactory) -> None:
    p = await make_pair(engine_factory, 64512, 4200000001)
    try:
        up_a, up_b = await p.up()
        assert not up_a.ibgp and up_a.peer_asn == 4200000001 and up_b.peer_asn == 64512
        vtep = ipaddress.ip_address("10.255.0.1")
        attrs = dataclasses.replace(evpn_attributes(64512, str(vtep)), as_path=AsPath.sequence(64512))
        await p.a.advertise(None, attrs, vtep, [imet(A_ID, str(vtep))])
        got = await p.b_log.wait_for(RoutesReceived, lambda e: bool(e.announced))
        assert got.attributes == attrs  # the engine moves attributes unchanged (the core rewrites them)
    finally:
        await p.a.stop()
        await p.b.stop()


async def test_advertise_and_withdraw_arrive(pair: Pair) -> None:
    await pair.up()
    vtep = ipaddress.ip_address("10.255.0.1")
    attrs = evpn_attributes(64512, str(vtep), router_mac="02:00:00:00:00:01")
    routes = [mac_ip(A_ID, f"02:aa:00:00:00:{i:02x}", f"192.0.2.{i}", l3vni=100) for i in range(1, 51)]
    start = len(pair.b_log.events)
    await pair.a.advertise(ipaddress.ip_address(B_IP), attrs, vtep, routes)
    got: list[RoutesReceived] = []
    while sum(len(e.announced) for e in got) < len(routes):
        got.append(
            await pair.b_log.wait_for(
                RoutesReceived, lambda e: bool(e.announced) and e not in got, start=start
            )
        )
    assert sorted(r.key for e in got for r in e.announced) == sorted(r.key for r in routes)
    assert {r for e in got for r in e.announced} == set(routes)  # labels, second label, MAC and IP intact
    for event in got:
        assert event.next_hop == vtep and event.attributes is not None
        assert event.attributes.ext_communities == attrs.ext_communities
        assert event.attributes.router_mac is not None
    assert len(got) == 1  # packed: identical attributes travel in one UPDATE

    type3 = imet(A_ID, str(vtep))
    pmsi_attrs = evpn_attributes(64512, str(vtep), pmsi=True)
    await pair.a.advertise(None, pmsi_attrs, vtep, [type3])
    ev3 = await pair.b_log.wait_for(RoutesReceived, lambda e: type3 in e.announced)
    assert ev3.attributes is not None and ev3.attributes.pmsi == pmsi_attrs.pmsi

    await pair.a.withdraw(None, routes[:10])
    gone = await pair.b_log.wait_for(RoutesReceived, lambda e: bool(e.withdrawn))
    assert {r.key for r in gone.withdrawn} == {r.key for r in routes[:10]}
    assert not gone.announced
    states = {s.peer: s for s in pair.b.peer_states()}
    assert states[ipaddress.ip_address(A_IP)].prefixes_received == 41


async def test_end_of_rib_follows_initial_table(engine_factory: EngineFactory) -> None:
    p = await make_pair(engine_factory, start=False)
    vtep = ipaddress.ip_address("10.255.0.1")
    initial = [imet(A_ID, str(vtep)), mac_ip(A_ID, "02:bb:00:00:00:01")]
    try:
        await p.a.advertise(None, evpn_attributes(64512, str(vtep), pmsi=True), vtep, initial[:1])
        await p.a.advertise(None, evpn_attributes(64512, str(vtep)), vtep, initial[1:])
        await p.a.start()
        await p.b.start()
        await p.up()
        eor = await p.b_log.wait_for(EndOfRib)
        assert eor.family is Family.L2VPN_EVPN and eor.peer == ipaddress.ip_address(A_IP)
        index = p.b_log.events.index(eor)
        before = [r for e in p.b_log.events[:index] if isinstance(e, RoutesReceived) for r in e.announced]
        assert set(before) == set(initial)
        # the other direction gets its End-of-RIB too (an empty initial table)
        await p.a_log.wait_for(EndOfRib)
    finally:
        await p.a.stop()
        await p.b.stop()


async def test_stop_sends_cease_and_peer_sees_peer_down(pair: Pair) -> None:
    await pair.up()
    # count from here: this test is about the stop, not about how the session came up
    flaps_before = {s.peer: s for s in pair.b.peer_states()}[ipaddress.ip_address(A_IP)].flaps
    a_mark, b_mark = len(pair.a_log.events), len(pair.b_log.events)
    await pair.a.stop()
    down = await pair.b_log.wait_for(PeerDown, start=b_mark)
    assert down.peer == ipaddress.ip_address(A_IP)
    assert "Cease" in down.reason and not down.graceful
    await pair.a_log.wait_for(PeerDown, start=a_mark)  # the stopping side reports it too
    await asyncio.wait_for(pair.a_log._task, 5.0)  # and its event stream ends
    # One session end on each side: the stopping engine must not let a new session come up (and be
    # closed silently) between the Cease and its end.
    a_after = [type(e).__name__ for e in pair.a_log.events[a_mark:] if isinstance(e, PeerUp | PeerDown)]
    assert a_after == ["PeerDown"]
    b_after = [type(e).__name__ for e in pair.b_log.events[b_mark:] if isinstance(e, PeerUp | PeerDown)]
    assert b_after == ["PeerDown"]
    line = {s.peer: s for s in pair.b.peer_states()}[ipaddress.ip_address(A_IP)]
    assert line.state != "Established" and line.flaps == flaps_before + 1 and "Cease" in line.last_error


async def test_graceful_stop_keeps_routes_stale(pair: Pair) -> None:
    await pair.up()
    await pair.a.stop(graceful=True)
    down = await pair.b_log.wait_for(PeerDown)
    assert down.graceful


async def test_treat_as_withdraw_keeps_the_session(engine_factory: EngineFactory) -> None:
    """A raw peer sends a valid route, then the same NLRI with EXTENDED_COMMUNITIES of length 7."""
    port = free_port(A_IP)
    underlay = _underlay(64512, A_ID, B_IP, 64512, free_port(B_IP), passive=True)
    engine = engine_factory(underlay, A_IP, port)
    log = EventLog(engine)
    await engine.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID)
        await log.wait_for(PeerUp)
        vtep = ipaddress.ip_address("10.255.0.2")
        route = mac_ip(B_ID, "02:cc:00:00:00:01")
        good = _mp_update(route, vtep, evpn_attributes(64512, str(vtep)).encode())
        await raw.send(good)
        await log.wait_for(RoutesReceived, lambda e: route in e.announced)
        bad = _mp_update(
            route, vtep, PathAttributes().encode() + b"\xc0\x10\x07" + bytes.fromhex("0002fc00000000")
        )
        assert bad[HEADER_LEN:] != good[HEADER_LEN:]
        await raw.send(bad)
        gone = await log.wait_for(RoutesReceived, lambda e: route in e.withdrawn)
        assert not gone.announced
        await raw.send(end_of_rib(Family.L2VPN_EVPN))
        await log.wait_for(EndOfRib)  # the session still works
        assert not log.of(PeerDown)
        await raw.send(MARKER + b"\x00\x13\x04")  # keepalive
        await asyncio.sleep(0.2)
        assert {s.state for s in engine.peer_states()} == {"Established"}
    finally:
        await raw.close()
        await engine.stop()
        await log.close()


def _mp_update(route: object, next_hop: ipaddress.IPv4Address | ipaddress.IPv6Address, attrs: bytes) -> bytes:
    """An UPDATE whose MP_REACH_NLRI comes first, then the given encoded attributes."""
    from evpn.codec.messages import encode_mp_reach, encode_route, frame

    block = encode_mp_reach(Family.L2VPN_EVPN, next_hop.packed, encode_route(route)) + attrs  # type: ignore[arg-type]
    return frame(MessageType.UPDATE, b"\x00\x00" + len(block).to_bytes(2, "big") + block)


async def test_ipv6_peers(engine_factory: EngineFactory) -> None:
    pa, pb = free_port("::1"), free_port("::1")
    a = engine_factory(_underlay(64512, A_ID, "::1", 64513, pb), "::1", pa)
    b = engine_factory(_underlay(64513, B_ID, "::1", 64512, pa), "::1", pb)
    la, lb = EventLog(a), EventLog(b)
    await a.start()
    await b.start()
    try:
        await la.wait_for(PeerUp)
        await lb.wait_for(PeerUp)
        vtep = ipaddress.ip_address("fd00::1")
        await a.advertise(None, evpn_attributes(64512, str(vtep), pmsi=True), vtep, [imet(A_ID, str(vtep))])
        got = await lb.wait_for(RoutesReceived, lambda e: bool(e.announced))
        assert got.next_hop == vtep
    finally:
        await a.stop()
        await b.stop()
