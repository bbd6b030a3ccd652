"""ExaBGP-engine specifics with a real ExaBGP 5.0.15 subprocess: exact withdraws after a reset, restarts, stop.

Every engine is stopped in ``finally`` (its stop kills ExaBGP's whole process group).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import signal

import pytest

from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.messages import Keepalive, Update
from evpn.config import GracefulRestartConfig, Neighbor, Timers, Underlay
from evpn.esi import Esi
from evpn.events import PeerDown, PeerUp, RoutesReceived
from speaker.exabgp_engine import ExaBgpEngine, VrfNamespaceError
from speaker.native_engine import NativeEngine
from tests.contract.helpers import EventLog, RawPeer, evpn_attributes, free_port, imet, mac_ip

A_IP, B_IP = "127.0.0.1", "127.0.0.2"
A_ID, B_ID = "10.0.0.1", "10.0.0.2"
FAST = Timers(keepalive=1, hold_time=3, connect_retry=2)
VTEP = ipaddress.ip_address("10.255.0.1")


def _engine(
    peer: str, peer_port: int, port: int, *, passive: bool = False, local: str = A_IP
) -> ExaBgpEngine:
    nb = Neighbor(ipaddress.ip_address(peer), asn=64512, port=peer_port, timers=FAST, passive=passive)
    underlay = Underlay(asn=64512, router_id=ipaddress.IPv4Address(A_ID), neighbors=(nb,))
    return ExaBgpEngine(
        underlay,
        listen_address=local,
        listen_port=port,
        initial_backoff=0.2,
        graceful_restart=GracefulRestartConfig(restart_time=120),
    )


async def _next_update(raw: RawPeer) -> Update:
    while True:
        update = await raw.expect(Update)
        if update.end_of_rib is None:
            return update


async def test_withdraw_repeats_the_announced_bytes_after_a_session_reset() -> None:
    port = free_port(A_IP)
    engine = _engine(B_IP, free_port(B_IP), port, passive=True)
    log = EventLog(engine)
    await engine.start()
    announced = dataclasses.replace(
        mac_ip(A_ID, "02:dd:00:00:00:01", "192.0.2.9", l3vni=100), esi=Esi(bytes(range(10)))
    )
    raw: RawPeer | None = None
    try:
        await engine.advertise(
            None, evpn_attributes(64512, str(VTEP), router_mac="02:00:00:00:00:01"), VTEP, [announced]
        )
        raw = await RawPeer.connect(A_IP, port, local=B_IP)
        await raw.handshake(64512, B_ID)
        first = await _next_update(raw)
        assert first.mp_reach is not None and first.mp_reach.routes == (announced,)
        await raw.close()  # session reset
        await log.wait_for(PeerDown)
        raw = await RawPeer.connect(A_IP, port, local=B_IP)
        await raw.handshake(64512, B_ID)
        replay = await _next_update(raw)
        assert replay.mp_reach is not None and replay.mp_reach.routes == (announced,)
        # the owner withdraws by key, with other labels and no ESI: the wire repeats what was announced
        by_key = MacIpRoute(announced.rd, announced.mac, announced.ip, label1=1)
        await engine.withdraw(None, [by_key])
        gone = await _next_update(raw)
        assert gone.mp_unreach is not None and gone.mp_unreach.routes == (announced,)
        assert gone.mp_unreach.routes[0].label2 == 100 and gone.mp_unreach.routes[0].esi == announced.esi
    finally:
        if raw is not None:
            await raw.close()
        await engine.stop()
        await log.close()


async def test_readvertising_a_key_replaces_it() -> None:
    port = free_port(A_IP)
    engine = _engine(B_IP, free_port(B_IP), port, passive=True)
    await engine.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    try:
        await raw.handshake(64512, B_ID)
        old = mac_ip(A_ID, "02:dd:00:00:00:02", "192.0.2.10", l3vni=100)
        new = dataclasses.replace(old, label2=200)
        attrs = evpn_attributes(64512, str(VTEP), router_mac="02:00:00:00:00:01")
        await engine.advertise(None, attrs, VTEP, [old])
        assert (await _next_update(raw)).announced_routes == (old,)
        await engine.advertise(None, attrs, VTEP, [new])
        assert (await _next_update(raw)).announced_routes == (new,)
        await engine.withdraw(None, [old])
        gone = await _next_update(raw)
        assert gone.mp_unreach is not None and gone.mp_unreach.routes == (new,)  # the bytes last announced
    finally:
        await raw.close()
        await engine.stop()


async def test_exabgp_is_restarted_when_it_dies() -> None:
    pa, pb = free_port(A_IP), free_port(B_IP)
    a = _engine(B_IP, pb, pa)
    b_nb = Neighbor(ipaddress.ip_address(A_IP), asn=64512, port=pa, timers=FAST)
    b = ExaBgpEngine(
        Underlay(asn=64512, router_id=ipaddress.IPv4Address(B_ID), neighbors=(b_nb,)),
        listen_address=B_IP,
        listen_port=pb,
        initial_backoff=0.2,
    )
    la, lb = EventLog(a), EventLog(b)
    try:
        await a.start()
        await b.start()
        await la.wait_for(PeerUp)
        await lb.wait_for(PeerUp)
        route = imet(A_ID, str(VTEP))
        await a.advertise(None, evpn_attributes(64512, str(VTEP), pmsi=True), VTEP, [route])
        await lb.wait_for(RoutesReceived, lambda e: route in e.announced)
        pid = a.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await la.wait_for(PeerDown, lambda e: "ExaBGP exited" in e.reason)
        mark = len(lb.events)
        await la.wait_for(PeerUp, start=len(la.events) - 1, timeout=20)
        assert a.restarts == 1 and a.pid != pid
        got = await lb.wait_for(RoutesReceived, lambda e: route in e.announced, start=mark, timeout=20)
        assert got.attributes is not None and got.attributes.pmsi is not None
    finally:
        await a.stop()
        await b.stop()
        await la.close()
        await lb.close()


async def test_stop_leaves_no_process() -> None:
    engine = _engine(B_IP, free_port(B_IP), free_port(A_IP))
    await engine.start()
    pid = engine.pid
    assert pid is not None
    await engine.stop()
    await asyncio.sleep(0.05)
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        pass
    else:  # pragma: no cover - the failure branch
        os.killpg(pid, signal.SIGKILL)
        raise AssertionError("ExaBGP's process group survived stop()")


async def test_stop_cease_reaches_a_peer_that_is_still_writing() -> None:
    """The Cease of stop() is followed by an orderly close: a peer writing meanwhile gets no TCP reset.

    ExaBGP closed its socket right after the NOTIFICATION; a KEEPALIVE crossing it made the kernel send a
    reset, and a peer that wrote before reading (ExaBGP itself) lost the Cease ("closing connection").
    """
    port = free_port(A_IP)
    engine = _engine(B_IP, free_port(B_IP), port, passive=True)
    log = EventLog(engine)
    await engine.start()
    raw = await RawPeer.connect(A_IP, port, local=B_IP)
    write_errors: list[BaseException] = []

    async def keep_writing() -> None:
        try:
            while True:
                await raw.send(Keepalive().encode())
                await asyncio.sleep(0.005)
        except (ConnectionError, OSError) as exc:
            write_errors.append(exc)

    writer: asyncio.Future[None] | None = None
    stopping: asyncio.Future[None] | None = None
    try:
        await raw.handshake(64512, B_ID)
        await log.wait_for(PeerUp)
        writer = asyncio.ensure_future(keep_writing())
        await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(engine.stop())
        note = await raw.next_message_of_type_notification()
        assert (note.code, note.subcode) == (6, 2)  # Cease / Administrative Shutdown
        await asyncio.sleep(0.1)  # still writing after the Cease: ExaBGP's end must not reset
        assert not write_errors
        with pytest.raises(ConnectionError, match="connection closed"):  # then an orderly end (FIN)
            await raw.next_message(timeout=5.0)
    finally:
        if writer is not None:
            writer.cancel()
        await raw.close()
        await (stopping if stopping is not None else engine.stop())
        await log.close()


async def test_native_and_exabgp_engines_talk_with_md5() -> None:
    """The two engines back to back, TCP MD5 on both sides (RFC 2385), routes both ways."""
    pa, pb = free_port(A_IP), free_port(B_IP)
    password = "evpn-secret"
    # the native side only listens: with both sides connecting, a connection collision against ExaBGP once
    # left the native engine reporting PeerUp twice (see the report of this change)
    a_nb = Neighbor(
        ipaddress.ip_address(B_IP), asn=64512, port=pb, timers=FAST, password=password, passive=True
    )
    b_nb = Neighbor(ipaddress.ip_address(A_IP), asn=64512, port=pa, timers=FAST, password=password)
    native = NativeEngine(
        Underlay(asn=64512, router_id=ipaddress.IPv4Address(A_ID), neighbors=(a_nb,)),
        listen_address=A_IP,
        listen_port=pa,
        initial_backoff=0.2,
    )
    exa = ExaBgpEngine(
        Underlay(asn=64512, router_id=ipaddress.IPv4Address(B_ID), neighbors=(b_nb,)),
        listen_address=B_IP,
        listen_port=pb,
        initial_backoff=0.2,
    )
    ln, le = EventLog(native), EventLog(exa)
    try:
        await native.start()
        await exa.start()
        await ln.wait_for(PeerUp, timeout=20)
        await le.wait_for(PeerUp, timeout=20)
        vtep_b = ipaddress.ip_address("10.255.0.2")
        t2 = mac_ip(B_ID, "02:ee:00:00:00:01", "192.0.2.77", l3vni=100)
        attrs = evpn_attributes(64512, str(vtep_b), router_mac="02:00:00:00:00:0b")
        await exa.advertise(None, attrs, vtep_b, [t2])
        got = await ln.wait_for(RoutesReceived, lambda e: t2 in e.announced)
        assert got.attributes is not None and got.attributes.ext_communities == attrs.ext_communities
        t3 = imet(A_ID, str(VTEP))
        await native.advertise(None, evpn_attributes(64512, str(VTEP), pmsi=True), VTEP, [t3])
        back = await le.wait_for(RoutesReceived, lambda e: t3 in e.announced)
        assert back.attributes is not None and back.attributes.pmsi is not None
        # the native engine packs ~1000 routes in one extended-length UPDATE: one long API line each
        bulk = [mac_ip(A_ID, f"02:aa:00:00:{i >> 8:02x}:{i & 255:02x}", None, l3vni=100) for i in range(3000)]
        mark = len(le.events)
        await native.advertise(
            None, evpn_attributes(64512, str(VTEP), router_mac="02:00:00:00:00:0a"), VTEP, bulk
        )
        for _ in range(200):
            got_bulk = {r for e in le.events[mark:] if isinstance(e, RoutesReceived) for r in e.announced}
            if len(got_bulk) >= len(bulk):
                break
            await asyncio.sleep(0.05)
        assert got_bulk == set(bulk)
        assert len([e for e in le.events[mark:] if isinstance(e, RoutesReceived)]) < 10
    finally:
        await exa.stop()
        await native.stop()
        await ln.close()
        await le.close()


async def test_a_vrf_without_a_namespace_is_refused_at_start() -> None:
    """The VRF device backend cannot serve ExaBGP: a host session whose VRF has no namespace stops ``start``."""
    default = Neighbor(ipaddress.ip_address(B_IP), asn=64512, port=free_port(B_IP), timers=FAST)
    host = Neighbor(ipaddress.ip_address("192.168.9.2"), asn=64600, vrf="blue", local_asn=64700)
    underlay = Underlay(asn=64512, router_id=ipaddress.IPv4Address(A_ID), neighbors=(default, host))
    engine = ExaBgpEngine(
        underlay, listen_address=A_IP, listen_port=free_port(A_IP), vrf_namespaces={"red": "some-netns"}
    )
    try:
        with pytest.raises(VrfNamespaceError, match="VRF 'blue'") as info:
            await engine.start()
        assert isinstance(info.value, ValueError) and "192.168.9.2" in str(info.value)
        assert engine.pid is None and engine.pids == {}  # nothing was started
        assert {s.state for s in engine.peer_states()} == {"Idle"}
    finally:
        await engine.stop()
