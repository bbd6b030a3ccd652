"""Native-engine specifics over loopback: TCP MD5, refused strangers, collisions, reconnect backoff, graceful
restart, hold timer, End-of-RIB modes, route refresh, bulk advertisement with backpressure."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest

from evpn.codec.families import Family
from evpn.codec.messages import Keepalive, RouteRefreshMessage, Update
from evpn.config import GracefulRestartConfig, Neighbor, Timers, Underlay
from evpn.events import EndOfRib, PeerDown, PeerUp, RoutesReceived
from speaker.engine import EndOfRibMode, SessionEngine
from speaker.native_engine import NativeEngine, md5sig
from tests.contract.helpers import EventLog, RawPeer, evpn_attributes, free_port, imet, mac_ip
from tests.contract.test_engine_contract import _mp_update

A_IP, B_IP, STRANGER = "127.0.0.1", "127.0.0.2", "127.0.0.3"
A_ID, B_ID = "10.0.0.1", "10.0.0.2"
FAST = Timers(keepalive=1, hold_time=3, connect_retry=2)
VTEP = ipaddress.ip_address("10.255.0.1")


def engine(
    router_id: str,
    address: str,
    port: int,
    peer: str,
    peer_port: int,
    *,
    password: str | None = None,
    passive: bool = False,
    **options: object,
) -> NativeEngine:
    nb = Neighbor(
        ipaddress.ip_address(peer), asn=64512, port=peer_port, timers=FAST, password=password, passive=passive
    )
    underlay = Underlay(asn=64512, router_id=ipaddress.IPv4Address(router_id), neighbors=(nb,))
    return NativeEngine(underlay, listen_address=address, listen_port=port, initial_backoff=0.2, **options)  # type: ignore[arg-type]


async def stop_all(*engines: SessionEngine) -> None:
    for e in engines:
        await e.stop()


async def test_md5_matching_passwords_establish_and_mismatch_does_not() -> None:
    pa, pb = free_port(A_IP), free_port(B_IP)
    a = engine(A_ID, A_IP, pa, B_IP, pb, password="s3cret")
    b = engine(B_ID, B_IP, pb, A_IP, pa, password="s3cret")
    la, lb = EventLog(a), EventLog(b)
    try:
        await a.start()
        await b.start()
        await la.wait_for(PeerUp)
        await lb.wait_for(PeerUp)
    finally:
        await stop_all(a, b)
    pa, pb = free_port(A_IP), free_port(B_IP)
    a = engine(A_ID, A_IP, pa, B_IP, pb, password="s3cret")
    b = engine(B_ID, B_IP, pb, A_IP, pa, password="other")
    la = EventLog(a)
    try:
        await a.start()
        await b.start()
        await asyncio.sleep(2.0)
        assert not la.of(PeerUp)
        assert {s.state for s in a.peer_states()} <= {"Connect", "Active", "Idle"}
    finally:
        await stop_all(a, b)


def test_md5sig_layout() -> None:
    v4 = md5sig(ipaddress.ip_address("192.0.2.1"), "key", 2)
    assert len(v4) == 216 and v4[4:8] == bytes([192, 0, 2, 1]) and v4[130:132] == (3).to_bytes(2, "little")
    mapped = md5sig(ipaddress.ip_address("192.0.2.1"), "key", 10)
    assert mapped[8:24] == ipaddress.IPv6Address("::ffff:192.0.2.1").packed
    with pytest.raises(ValueError):
        md5sig(ipaddress.ip_address("192.0.2.1"), "x" * 81, 2)


async def test_connection_from_unknown_address_is_refused() -> None:
    port = free_port(A_IP)
    a = engine(A_ID, A_IP, port, B_IP, free_port(B_IP), passive=True)
    await a.start()
    try:
        raw = await RawPeer.connect(A_IP, port, local=STRANGER)
        data = await asyncio.wait_for(raw.reader.read(100), 5.0)
        assert data == b""  # closed without an OPEN
        await raw.close()
    finally:
        await a.stop()


async def test_collision_leaves_one_session_without_flaps() -> None:
    pa, pb = free_port(A_IP), free_port(B_IP)
    a = engine(A_ID, A_IP, pa, B_IP, pb)
    b = engine(B_ID, B_IP, pb, A_IP, pa)
    la, lb = EventLog(a), EventLog(b)
    try:
        await asyncio.gather(a.start(), b.start())  # both connect at once
        await la.wait_for(PeerUp)
        await lb.wait_for(PeerUp)
        await asyncio.sleep(1.0)
        assert len(la.of(PeerUp)) == 1 and len(lb.of(PeerUp)) == 1
        assert not la.of(PeerDown) and not lb.of(PeerDown)
        assert [s.flaps for s in a.peer_states()] == [0]
        await a.advertise(None, evpn_attributes(64512, str(VTEP)), VTEP, [mac_ip(A_ID, "02:00:00:00:00:01")])
        await lb.wait_for(RoutesReceived)
    finally:
        await stop_all(a, b)


async def test_reconnects_with_backoff_when_the_peer_appears_later() -> None:
    pa, pb = free_port(A_IP), free_port(B_IP)
    a = engine(A_ID, A_IP, pa, B_IP, pb, listen=False)
    la = EventLog(a)
    await a.start()
    b = engine(B_ID, B_IP, pb, A_IP, pa, passive=True)
    lb = EventLog(b)
    try:
        await asyncio.sleep(1.0)
        (line,) = a.peer_states()
        assert line.state in ("Connect", "Active") and "connect failed" in line.last_error
        await b.start()
        await la.wait_for(PeerUp, timeout=10.0)
        await lb.wait_for(PeerUp)
    finally:
        await stop_all(a, b)


async def test_restarting_peer_reconnecting_ends_the_old_session_gracefully() -> None:
    port = free_port(A_IP)
    a = engine(A_ID, A_IP, port, B_IP, free_port(B_IP), passive=True)
    log = EventLog(a)
    await a.start()
    first = await RawPeer.connect(A_IP, port, local=B_IP)
    second: RawPeer | None = None
    try:
        await first.handshake(64512, B_ID)
        await log.wait_for(PeerUp)
        second = await RawPeer.connect(A_IP, port, local=B_IP)  # the peer restarted (RFC 4724 §4.2)
        await second.handshake(64512, B_ID)
        down = await log.wait_for(PeerDown)
        assert down.graceful
        await log.wait_for(PeerUp, start=log.events.index(down))  # the new session comes up
    finally:
        await first.close()
        if second is not None:
            await second.close()
        await a.stop()


async def test_hold_timer_expiry_sends_notification_and_reports_peer_down() -> None:
    port = free_port(A_IP)
    a = engine(A_ID, A_IP, port, B_IP, free_port(B_IP), passive=True)
    log = EventLog(a)
    await a.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID, hold=3)
        await log.wait_for(PeerUp)
        started = time.monotonic()
        # stay silent: no keepalives
        down = await log.wait_for(PeerDown, timeout=10.0)
        assert down.reason == "hold timer expired" and 2.0 < time.monotonic() - started < 5.0
        note = await raw.next_message_of_type_notification()
        assert (note.code, note.subcode) == (4, 0)
    finally:
        await raw.close()
        await a.stop()


async def test_keepalives_keep_a_quiet_session_up() -> None:
    port = free_port(A_IP)
    a = engine(A_ID, A_IP, port, B_IP, free_port(B_IP), passive=True)
    log = EventLog(a)
    await a.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID, hold=3)
        await log.wait_for(PeerUp)
        deadline = time.monotonic() + 3.0
        got = 0
        while time.monotonic() < deadline:
            message = await raw.next_message(timeout=2.0)
            if isinstance(message, Keepalive):
                got += 1
                await raw.send(Keepalive().encode())
        assert got >= 2 and not log.of(PeerDown)  # one per second (hold 3 / 3)
    finally:
        await raw.close()
        await a.stop()


async def test_manual_end_of_rib_mode() -> None:
    port = free_port(A_IP)
    a = engine(A_ID, A_IP, port, B_IP, free_port(B_IP), passive=True, end_of_rib_mode=EndOfRibMode.MANUAL)
    log = EventLog(a)
    await a.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID)
        await log.wait_for(PeerUp)
        route = imet(A_ID, str(VTEP))
        await a.advertise(None, evpn_attributes(64512, str(VTEP), pmsi=True), VTEP, [route])
        update = await raw.expect(Update)
        assert update.announced_routes == (route,)
        await a.end_of_rib(None)
        eor = await raw.expect(Update)
        assert eor.end_of_rib is Family.L2VPN_EVPN
        await a.end_of_rib(None)  # once per session
        await raw.send(Keepalive().encode())
        with pytest.raises(asyncio.TimeoutError):
            await raw.expect(Update, timeout=0.5)
    finally:
        await raw.close()
        await a.stop()


async def test_route_refresh_resends_the_adj_rib_out() -> None:
    port = free_port(A_IP)
    a = engine(A_ID, A_IP, port, B_IP, free_port(B_IP), passive=True)
    log = EventLog(a)
    routes = [mac_ip(A_ID, f"02:00:00:00:01:{i:02x}") for i in range(5)]
    await a.advertise(None, evpn_attributes(64512, str(VTEP)), VTEP, routes)
    await a.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID)
        await log.wait_for(PeerUp)
        first = await raw.expect(Update)
        assert set(first.announced_routes) == set(routes)
        assert (await raw.expect(Update)).end_of_rib is Family.L2VPN_EVPN
        await raw.send(RouteRefreshMessage(25, 70).encode())
        again = await raw.expect(Update)
        assert set(again.announced_routes) == set(routes)
    finally:
        await raw.close()
        await a.stop()


async def test_bulk_advertisement_arrives_whole() -> None:
    pa, pb = free_port(A_IP), free_port(B_IP)
    a = engine(A_ID, A_IP, pa, B_IP, pb, graceful_restart=GracefulRestartConfig())
    b = engine(B_ID, B_IP, pb, A_IP, pa)
    la, lb = EventLog(a), EventLog(b)
    try:
        await a.start()
        await b.start()
        await la.wait_for(PeerUp)
        await lb.wait_for(PeerUp)
        routes = [
            mac_ip(
                A_ID,
                f"02:01:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00",
                f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            )
            for i in range(20000)
        ]
        started = time.monotonic()
        await a.advertise(None, evpn_attributes(64512, str(VTEP)), VTEP, routes)
        deadline = time.monotonic() + 30.0
        while sum(len(e.announced) for e in lb.of(RoutesReceived)) < len(routes):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        assert elapsed < 30.0
        line = {s.peer: s for s in b.peer_states()}[ipaddress.ip_address(A_IP)]
        assert line.prefixes_received == len(routes)
        assert a.peer_states()[0].messages_out < 20000 // 50  # many NLRIs per UPDATE
    finally:
        await stop_all(a, b)


async def test_end_of_rib_event_from_peer() -> None:
    port = free_port(A_IP)
    a = engine(A_ID, A_IP, port, B_IP, free_port(B_IP), passive=True)
    log = EventLog(a)
    await a.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID)
        from evpn.codec.messages import end_of_rib

        await raw.send(end_of_rib(Family.L2VPN_EVPN))
        eor = await log.wait_for(EndOfRib)
        assert eor.peer == ipaddress.ip_address(B_IP)
    finally:
        await raw.close()
        await a.stop()


@pytest.mark.parametrize("higher", ["a", "b"])
async def test_simultaneous_starts_never_leave_two_sessions(higher: str) -> None:
    """Both sides connect at once, repeatedly: collisions are resolved (RFC 4271 §6.8), one PeerUp each."""
    for _ in range(6):
        pa, pb = free_port(A_IP), free_port(B_IP)
        a = engine(A_ID, A_IP, pa, B_IP, pb)
        b = engine("10.0.0.2" if higher == "b" else "10.0.0.0", B_IP, pb, A_IP, pa)
        la, lb = EventLog(a), EventLog(b)
        try:
            await asyncio.gather(a.start(), b.start())
            await la.wait_for(PeerUp)
            await lb.wait_for(PeerUp)
            await a.advertise(None, evpn_attributes(64512, str(VTEP)), VTEP, [imet(A_ID, str(VTEP))])
            await lb.wait_for(RoutesReceived)
            await asyncio.sleep(0.2)
            assert (len(la.of(PeerUp)), len(lb.of(PeerUp))) == (1, 1)
            assert not la.of(PeerDown) and not lb.of(PeerDown)
        finally:
            await stop_all(a, b)
            await la.close()
            await lb.close()


async def test_slow_event_consumer_pushes_back_without_losing_events() -> None:
    port = free_port(A_IP)
    a = engine(A_ID, A_IP, port, B_IP, free_port(B_IP), passive=True, max_queued_events=4)
    await a.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID)
        routes = [mac_ip(B_ID, f"02:00:00:00:02:{i:02x}") for i in range(40)]
        for route in routes:  # one UPDATE each: 40 events for a queue of 4
            await raw.send(_mp_update(route, VTEP, evpn_attributes(64512, str(VTEP)).encode()))
        await asyncio.sleep(0.5)
        log = EventLog(a)  # start consuming only now
        deadline = time.monotonic() + 10.0
        while sum(len(e.announced) for e in log.of(RoutesReceived)) < len(routes):
            assert time.monotonic() < deadline, log.events
            await asyncio.sleep(0.05)
        assert [r for e in log.of(RoutesReceived) for r in e.announced] == routes
        assert {s.state for s in a.peer_states()} == {"Established"}
    finally:
        await raw.close()
        await a.stop()
