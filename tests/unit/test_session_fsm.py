"""The sans-IO session state machine (RFC 4271 §8): driven by hand with fake bytes and an injected clock."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.capabilities import (
    Capability,
    ExtendedMessage,
    FourOctetAs,
    GracefulRestart,
    Multiprotocol,
    RouteRefresh,
)
from evpn.codec.evpn_nlri import InclusiveMulticastRoute, MacIpRoute
from evpn.codec.extcommunity import Encapsulation
from evpn.codec.families import Family
from evpn.codec.messages import (
    MARKER,
    Keepalive,
    Message,
    MessageType,
    NotificationMessage,
    Open,
    RouteRefreshMessage,
    Update,
    decode_message,
    encode_mp_reach,
    encode_route,
    end_of_rib,
    frame,
)
from evpn.codec.packer import UpdatePacker
from evpn.config import GracefulRestartConfig, Neighbor, PeerType, Timers, Underlay
from evpn.errors import CeaseSubcode, NotificationCode, OpenSubcode
from evpn.events import EndOfRib, PeerDown, PeerUp, RoutesReceived
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from evpn.session_fsm import (
    OPEN_HOLD_TIME,
    BytesReceived,
    CloseConnection,
    CollisionLost,
    Emit,
    FsmAction,
    InitiateConnection,
    ManualStart,
    ManualStop,
    ResendRoutes,
    SendBytes,
    SessionConfig,
    SessionFsm,
    Side,
    StartTimer,
    State,
    StopTimer,
    TcpConnected,
    TcpFailed,
    Timer,
    TimerExpired,
    collision_winner,
)

PEER = ipaddress.ip_address("192.0.2.2")
LOCAL_ID = ipaddress.IPv4Address("10.0.0.1")
PEER_ID = ipaddress.IPv4Address("10.0.0.2")
VTEP = ipaddress.IPv4Address("10.255.0.2")
EVPN = Multiprotocol(Family.L2VPN_EVPN.afi, Family.L2VPN_EVPN.safi)
CFG = SessionConfig(
    local_asn=64512,
    router_id=LOCAL_ID,
    peer_address=PEER,
    peer_asn=64512,
    hold_time=90,
    connect_retry=60.0,
    initial_backoff=1.0,
    jitter=0.0,
    connect_timeout=5.0,
    graceful_restart=GracefulRestartConfig(restart_time=120),
)
ATTRS = PathAttributes(ext_communities=(RouteTarget.from_text("64512:110"), Encapsulation(8)))


def route(i: int = 1) -> MacIpRoute:
    return MacIpRoute(
        RouteDistinguisher.from_text("10.0.0.2:110"), MacAddress.from_int(0x020000000000 + i), label1=110
    )


def peer_open(
    asn: int = 64512,
    hold: int = 90,
    bgp_id: ipaddress.IPv4Address = PEER_ID,
    caps: tuple[Capability, ...] | None = None,
) -> bytes:
    if caps is None:
        caps = (EVPN, RouteRefresh(), FourOctetAs(asn), GracefulRestart(120))
    return Open(asn if asn < 65536 else 23456, hold, bgp_id, caps).encode()


def sent(actions: list[FsmAction]) -> list[Message]:
    return [decode_message(a.data) for a in actions if isinstance(a, SendBytes)]


def emitted(actions: list[FsmAction]) -> list[object]:
    return [a.event for a in actions if isinstance(a, Emit)]


def timers(actions: list[FsmAction]) -> dict[Timer, float]:
    return {a.timer: a.deadline for a in actions if isinstance(a, StartTimer)}


def notification(actions: list[FsmAction]) -> NotificationMessage:
    (note,) = [m for m in sent(actions) if isinstance(m, NotificationMessage)]
    return note


def open_sent(cfg: SessionConfig = CFG, now: float = 0.0) -> SessionFsm:
    fsm = SessionFsm(cfg, rng=lambda: 0.5)
    fsm.handle(ManualStart(), now)
    fsm.handle(TcpConnected(outbound=True), now)
    assert fsm.state is State.OPEN_SENT
    return fsm


def established(cfg: SessionConfig = CFG, now: float = 0.0, **open_args: object) -> SessionFsm:
    fsm = open_sent(cfg, now)
    fsm.handle(BytesReceived(peer_open(**open_args)), now)  # type: ignore[arg-type]
    actions = fsm.handle(BytesReceived(Keepalive().encode()), now)
    assert fsm.state is State.ESTABLISHED, actions
    return fsm


def mp_update(routes: list[MacIpRoute], attrs: bytes | None = None) -> bytes:
    attrs = ATTRS.encode() if attrs is None else attrs
    block = encode_mp_reach(Family.L2VPN_EVPN, VTEP.packed, b"".join(encode_route(r) for r in routes)) + attrs
    return frame(MessageType.UPDATE, b"\x00\x00" + len(block).to_bytes(2, "big") + block)


# -- Idle, Connect, Active ------------------------------------------------------------------------------


def test_starts_idle_and_manual_start_connects() -> None:
    fsm = SessionFsm(CFG)
    assert fsm.state is State.IDLE
    actions = fsm.handle(ManualStart(), 10.0)
    assert fsm.state is State.CONNECT
    assert InitiateConnection() in actions
    assert timers(actions) == {Timer.CONNECT_RETRY: 15.0}
    assert fsm.handle(ManualStart(), 11.0) == []  # ignored outside Idle


def test_passive_start_waits_in_active() -> None:
    fsm = SessionFsm(dataclasses.replace(CFG, passive=True))
    assert fsm.handle(ManualStart(), 0.0) == []
    assert fsm.state is State.ACTIVE
    assert fsm.handle(TcpFailed(), 1.0) == [] and fsm.state is State.ACTIVE
    actions = fsm.handle(TcpConnected(outbound=False), 2.0)
    assert fsm.state is State.OPEN_SENT and fsm.side is Side.INBOUND
    assert isinstance(sent(actions)[0], Open)


def test_connect_failure_backs_off_exponentially_to_active_then_retries() -> None:
    fsm = SessionFsm(dataclasses.replace(CFG, jitter=0.25), rng=lambda: 1.0)
    fsm.handle(ManualStart(), 0.0)
    actions = fsm.handle(TcpFailed("refused"), 1.0)
    assert fsm.state is State.ACTIVE
    assert timers(actions) == {Timer.CONNECT_RETRY: 1.0 + 0.75}  # 1 s, minus the full 25 % jitter
    assert fsm.handle(TimerExpired(Timer.CONNECT_RETRY), 1.5) == []  # early: ignored
    actions = fsm.handle(TimerExpired(Timer.CONNECT_RETRY), 1.75)
    assert fsm.state is State.CONNECT and InitiateConnection() in actions
    actions = fsm.handle(TcpFailed("refused"), 2.0)
    assert timers(actions) == {Timer.CONNECT_RETRY: 2.0 + 1.5}  # doubled
    delays = []
    for _ in range(10):
        fsm.handle(TimerExpired(Timer.CONNECT_RETRY), 1e9)
        delays.append(timers(fsm.handle(TcpFailed(), 0.0))[Timer.CONNECT_RETRY])
    assert max(delays) == 60.0 * 0.75  # capped by connect_retry


def test_connect_timer_expiry_in_connect_restarts_the_attempt() -> None:
    fsm = SessionFsm(CFG)
    fsm.handle(ManualStart(), 0.0)
    actions = fsm.handle(TimerExpired(Timer.CONNECT_RETRY), 5.0)
    assert fsm.state is State.CONNECT
    assert actions == [CloseConnection(), InitiateConnection(), StartTimer(Timer.CONNECT_RETRY, 10.0)]


def test_tcp_connected_sends_open_with_our_capabilities() -> None:
    fsm = SessionFsm(dataclasses.replace(CFG, local_asn=4200000001, peer_asn=4200000001))
    fsm.handle(ManualStart(), 0.0)
    actions = fsm.handle(TcpConnected(outbound=True), 1.0)
    assert fsm.state is State.OPEN_SENT and fsm.side is Side.OUTBOUND
    assert StopTimer(Timer.CONNECT_RETRY) in actions
    assert timers(actions) == {Timer.HOLD: 1.0 + OPEN_HOLD_TIME}
    (message,) = sent(actions)
    assert isinstance(message, Open)
    assert message.my_as == 23456 and message.hold_time == 90 and message.bgp_id == LOCAL_ID
    kinds = {type(c) for c in message.capabilities}
    assert {Multiprotocol, RouteRefresh, FourOctetAs, ExtendedMessage, GracefulRestart} <= kinds
    (four,) = [c for c in message.capabilities if isinstance(c, FourOctetAs)]
    assert four.asn == 4200000001
    (gr,) = [c for c in message.capabilities if isinstance(c, GracefulRestart)]
    assert gr.restart_time == 120 and [(f.afi, f.safi) for f in gr.families] == [(25, 70)]


def test_restarting_speaker_sets_r_and_f_bits() -> None:
    cfg = dataclasses.replace(CFG, restarting=True, forwarding_preserved=True)
    (gr,) = [c for c in cfg.open_message().capabilities if isinstance(c, GracefulRestart)]
    assert gr.restarting and gr.families[0].forwarding_preserved


def test_config_from_neighbor() -> None:
    nb = Neighbor(PEER, asn=65001, timers=Timers(10, 30, 5), max_prefixes=7, route_reflector_client=True)
    underlay = Underlay(asn=64512, router_id=LOCAL_ID, neighbors=(nb,))
    cfg = SessionConfig.from_neighbor(underlay, nb, GracefulRestartConfig(), initial_backoff=0.1)
    assert (cfg.peer_asn, cfg.hold_time, cfg.connect_retry, cfg.max_prefixes) == (65001, 30, 5.0, 7)
    assert cfg.route_reflector_client and cfg.initial_backoff == 0.1
    assert cfg.graceful_restart is not None
    off = SessionConfig.from_neighbor(underlay, nb, GracefulRestartConfig(enabled=False))
    assert off.graceful_restart is None


# -- OpenSent, OpenConfirm, Established -----------------------------------------------------------------


def test_open_exchange_to_established() -> None:
    fsm = open_sent()
    actions = fsm.handle(BytesReceived(peer_open(hold=30)), 2.0)
    assert fsm.state is State.OPEN_CONFIRM
    assert [type(m) for m in sent(actions)] == [Keepalive]
    assert timers(actions) == {Timer.HOLD: 32.0, Timer.KEEPALIVE: 12.0}  # min(90, 30), keepalive hold/3
    neg = fsm.negotiated
    assert neg is not None and neg.hold_time == 30 and neg.keepalive == 10 and neg.ibgp
    assert neg.families == frozenset({Family.L2VPN_EVPN}) and neg.four_octet_as and neg.route_refresh
    assert not neg.extended_message and neg.max_message == 4096
    actions = fsm.handle(BytesReceived(Keepalive().encode()), 3.0)
    assert fsm.state is State.ESTABLISHED
    (up,) = emitted(actions)
    assert up == PeerUp(PEER, 64512, PEER_ID, True, frozenset({Family.L2VPN_EVPN}), False, True)
    assert fsm.stats.established_at == 3.0


def test_extended_message_raises_the_limit() -> None:
    fsm = established(caps=(EVPN, FourOctetAs(64512), ExtendedMessage()))
    assert fsm.negotiated is not None and fsm.negotiated.max_message == 65535
    routes = [route(i) for i in range(400)]
    messages = [a.data for a in fsm.announce(ATTRS, VTEP, routes) if isinstance(a, SendBytes)]
    assert len(messages) == 1 and len(messages[0]) > 4096


def test_open_split_over_segments_and_with_keepalive_in_one_read() -> None:
    fsm = open_sent()
    data = peer_open() + Keepalive().encode()
    assert fsm.handle(BytesReceived(data[:7]), 0.0) == []
    actions = fsm.handle(BytesReceived(data[7:]), 0.0)
    # processing pauses in OpenConfirm so the owner can resolve collisions (RFC 4271 §6.8)
    assert fsm.state is State.OPEN_CONFIRM and fsm.buffered == 19 and emitted(actions) == []
    actions = fsm.handle(BytesReceived(b""), 0.0)
    assert fsm.state is State.ESTABLISHED and any(isinstance(e, PeerUp) for e in emitted(actions))


def test_bad_peer_as() -> None:
    fsm = open_sent()
    actions = fsm.handle(BytesReceived(peer_open(asn=65001)), 0.0)
    note = notification(actions)
    assert (note.code, note.subcode) == (NotificationCode.OPEN_MESSAGE_ERROR, OpenSubcode.BAD_PEER_AS)
    assert CloseConnection() in actions and fsm.state is State.IDLE
    assert "65001" in fsm.stats.last_error
    assert Timer.IDLE_HOLD in timers(actions)  # automatic restart after the backoff


@pytest.mark.parametrize(
    ("peer_type", "asn", "ok"),
    [
        (PeerType.INTERNAL, 64512, True),
        (PeerType.INTERNAL, 65001, False),
        (PeerType.EXTERNAL, 64512, False),
        (PeerType.EXTERNAL, 65001, True),
    ],
)
def test_peer_type_internal_external(peer_type: PeerType, asn: int, ok: bool) -> None:
    fsm = open_sent(dataclasses.replace(CFG, peer_asn=None, peer_type=peer_type))
    fsm.handle(BytesReceived(peer_open(asn=asn)), 0.0)
    assert (fsm.state is State.OPEN_CONFIRM) is ok


def test_missing_evpn_family_is_unsupported_capability() -> None:
    fsm = open_sent()
    caps = (Multiprotocol(1, 1), FourOctetAs(64512))
    actions = fsm.handle(BytesReceived(peer_open(caps=caps)), 0.0)
    note = notification(actions)
    assert (note.code, note.subcode) == (
        NotificationCode.OPEN_MESSAGE_ERROR,
        OpenSubcode.UNSUPPORTED_CAPABILITY,
    )
    assert note.data == bytes((1, 4, 0, 25, 0, 70))  # the multiprotocol capability we need


def test_no_multiprotocol_at_all_means_ipv4_only() -> None:
    fsm = open_sent()
    note = notification(fsm.handle(BytesReceived(peer_open(caps=(FourOctetAs(64512),))), 0.0))
    assert note.subcode == OpenSubcode.UNSUPPORTED_CAPABILITY


def test_optional_unicast_families_are_intersected() -> None:
    cfg = dataclasses.replace(CFG, families=(Family.L2VPN_EVPN, Family.IPV4_UNICAST, Family.IPV6_UNICAST))
    fsm = established(cfg, caps=(EVPN, Multiprotocol(1, 1), FourOctetAs(64512)))
    assert fsm.negotiated is not None
    assert fsm.negotiated.families == frozenset({Family.L2VPN_EVPN, Family.IPV4_UNICAST})
    required = dataclasses.replace(cfg, required_families=(Family.L2VPN_EVPN, Family.IPV6_UNICAST))
    fsm = open_sent(required)
    fsm.handle(BytesReceived(peer_open(caps=(EVPN, Multiprotocol(1, 1), FourOctetAs(64512)))), 0.0)
    assert fsm.state is State.IDLE


def test_two_octet_peer_without_four_octet_capability() -> None:
    fsm = established(caps=(EVPN,))
    assert fsm.negotiated is not None and not fsm.negotiated.four_octet_as


def test_same_router_id_on_ibgp_is_bad_bgp_identifier() -> None:
    fsm = open_sent()
    note = notification(fsm.handle(BytesReceived(peer_open(bgp_id=LOCAL_ID)), 0.0))
    assert note.subcode == OpenSubcode.BAD_BGP_IDENTIFIER


def test_bad_version_and_hold_time_from_codec() -> None:
    fsm = open_sent()
    raw = bytearray(peer_open())
    raw[19] = 3
    note = notification(fsm.handle(BytesReceived(bytes(raw)), 0.0))
    assert (note.code, note.subcode) == (2, 1)
    fsm = open_sent()
    note = notification(fsm.handle(BytesReceived(peer_open(hold=2)), 0.0))
    assert (note.code, note.subcode) == (2, 6)


def test_hold_time_zero_means_no_keepalives() -> None:
    fsm = open_sent()
    actions = fsm.handle(BytesReceived(peer_open(hold=0)), 0.0)
    assert timers(actions) == {} and StopTimer(Timer.HOLD) in actions
    fsm.handle(BytesReceived(Keepalive().encode()), 0.0)
    assert fsm.established and fsm.deadlines == {}


def test_unexpected_messages_are_fsm_errors() -> None:
    fsm = open_sent()
    note = notification(fsm.handle(BytesReceived(Keepalive().encode()), 0.0))
    assert (note.code, note.subcode) == (5, 1)
    fsm = open_sent()
    fsm.handle(BytesReceived(peer_open()), 0.0)
    note = notification(fsm.handle(BytesReceived(mp_update([route()])), 0.0))
    assert (note.code, note.subcode) == (5, 2)
    fsm = established()
    actions = fsm.handle(BytesReceived(peer_open()), 0.0)
    note = notification(actions)
    assert (note.code, note.subcode) == (5, 3)
    assert isinstance(emitted(actions)[-1], PeerDown)


def test_notification_received_in_each_state() -> None:
    cease = NotificationMessage(6, 2).encode()
    for fsm in (open_sent(), established()):
        was_up = fsm.established
        actions = fsm.handle(BytesReceived(cease), 5.0)
        assert fsm.state is State.IDLE and CloseConnection() in actions
        assert sent(actions) == []  # never answer a NOTIFICATION with one
        assert "Cease / Administrative Shutdown" in fsm.stats.last_error
        downs = [e for e in emitted(actions) if isinstance(e, PeerDown)]
        assert len(downs) == was_up
        if was_up:
            assert "Cease" in downs[0].reason and not downs[0].graceful and fsm.stats.flaps == 1


def test_tcp_failure_in_established_is_graceful_with_restart_capability() -> None:
    fsm = established()
    actions = fsm.handle(TcpFailed("reset by peer"), 1.0)
    (down,) = emitted(actions)
    assert down == PeerDown(PEER, "reset by peer", graceful=True)
    fsm = established(caps=(EVPN, FourOctetAs(64512)))  # no graceful restart capability
    (down,) = emitted(fsm.handle(TcpFailed("reset by peer"), 1.0))
    assert isinstance(down, PeerDown) and not down.graceful


def test_tcp_failure_in_open_sent_goes_idle_and_restarts() -> None:
    fsm = open_sent()
    actions = fsm.handle(TcpFailed(), 3.0)
    assert fsm.state is State.IDLE and emitted(actions) == []
    assert timers(actions) == {Timer.IDLE_HOLD: 3.0 + 1.0}
    actions = fsm.handle(TimerExpired(Timer.IDLE_HOLD), 4.0)
    assert fsm.state is State.CONNECT and InitiateConnection() in actions


def test_peer_connecting_while_idle_hold_runs_is_accepted() -> None:
    fsm = open_sent()
    fsm.handle(TcpFailed(), 3.0)
    actions = fsm.handle(TcpConnected(outbound=False), 3.5)
    assert fsm.state is State.OPEN_SENT and StopTimer(Timer.IDLE_HOLD) in actions


def test_manual_stop_sends_cease_and_stays_idle() -> None:
    fsm = established()
    actions = fsm.handle(ManualStop(), 9.0)
    note = notification(actions)
    assert (note.code, note.subcode) == (NotificationCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
    assert actions.index(CloseConnection()) > 0  # after the NOTIFICATION
    assert fsm.state is State.IDLE and fsm.deadlines == {}
    assert isinstance(emitted(actions)[-1], PeerDown)
    assert fsm.handle(TcpConnected(outbound=False), 10.0) == [CloseConnection()]  # refused while stopped


def test_manual_stop_without_notification_for_graceful_restart() -> None:
    fsm = established()
    actions = fsm.handle(ManualStop(notify=False), 1.0)
    assert sent(actions) == [] and CloseConnection() in actions


def test_manual_stop_in_connect_and_idle() -> None:
    fsm = SessionFsm(CFG)
    fsm.handle(ManualStart(), 0.0)
    actions = fsm.handle(ManualStop(), 1.0)
    assert fsm.state is State.IDLE and sent(actions) == [] and StopTimer(Timer.CONNECT_RETRY) in actions
    assert fsm.handle(ManualStop(), 1.0) == []


# -- timers ----------------------------------------------------------------------------------------------


def test_keepalives_are_sent_every_third_of_the_hold_time() -> None:
    fsm = established()
    assert fsm.deadlines[Timer.KEEPALIVE] == 30.0
    for n in range(1, 4):
        actions = fsm.handle(TimerExpired(Timer.KEEPALIVE), 30.0 * n)
        assert [type(m) for m in sent(actions)] == [Keepalive]
        assert timers(actions) == {Timer.KEEPALIVE: 30.0 * (n + 1)}
    assert fsm.stats.messages_out == 1 + 1 + 3  # OPEN, KEEPALIVE, three periodic ones


def test_received_messages_restart_the_hold_timer() -> None:
    fsm = established()
    actions = fsm.handle(BytesReceived(Keepalive().encode()), 50.0)
    assert timers(actions) == {Timer.HOLD: 140.0}
    assert fsm.handle(TimerExpired(Timer.HOLD), 90.0) == []  # the old deadline is stale
    actions = fsm.handle(BytesReceived(mp_update([route()])), 100.0)
    assert timers(actions) == {Timer.HOLD: 190.0}


def test_hold_timer_expiry_sends_4_0() -> None:
    fsm = established()
    actions = fsm.handle(TimerExpired(Timer.HOLD), 90.0)
    note = notification(actions)
    assert (note.code, note.subcode) == (NotificationCode.HOLD_TIMER_EXPIRED, 0)
    (down,) = emitted(actions)
    assert isinstance(down, PeerDown) and down.reason == "hold timer expired" and not down.graceful
    assert fsm.state is State.IDLE


def test_hold_timer_in_open_sent_and_open_confirm() -> None:
    fsm = open_sent()
    note = notification(fsm.handle(TimerExpired(Timer.HOLD), OPEN_HOLD_TIME))
    assert note.code == NotificationCode.HOLD_TIMER_EXPIRED
    fsm = open_sent()
    fsm.handle(BytesReceived(peer_open()), 0.0)
    assert fsm.state is State.OPEN_CONFIRM
    assert [type(m) for m in sent(fsm.handle(TimerExpired(Timer.KEEPALIVE), 30.0))] == [Keepalive]
    note = notification(fsm.handle(TimerExpired(Timer.HOLD), 90.0))
    assert note.code == NotificationCode.HOLD_TIMER_EXPIRED


def test_due_timers_and_next_deadline() -> None:
    fsm = established()
    assert fsm.next_deadline() == 30.0
    assert fsm.due_timers(29.0) == [] and fsm.due_timers(95.0) == [Timer.KEEPALIVE, Timer.HOLD]


# -- collisions (RFC 4271 §6.8) -------------------------------------------------------------------------


def test_collision_winner_keeps_connection_of_higher_id() -> None:
    assert (
        collision_winner(ipaddress.IPv4Address("10.0.0.2"), ipaddress.IPv4Address("10.0.0.1"))
        is Side.OUTBOUND
    )
    assert (
        collision_winner(ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv4Address("10.0.0.2")) is Side.INBOUND
    )


def test_collision_between_two_machines() -> None:
    outbound = open_sent()
    inbound = SessionFsm(CFG)
    inbound.handle(ManualStart(passive=True), 0.0)
    inbound.handle(TcpConnected(outbound=False), 0.0)
    for fsm in (outbound, inbound):
        fsm.handle(BytesReceived(peer_open()), 0.0)
        assert fsm.state is State.OPEN_CONFIRM
    assert outbound.negotiated is not None
    keep = collision_winner(LOCAL_ID, outbound.negotiated.peer_id)
    assert keep is Side.INBOUND  # the peer (10.0.0.2) has the higher id: its connection stays
    loser = outbound if outbound.side is not keep else inbound
    actions = loser.handle(CollisionLost(), 0.0)
    note = notification(actions)
    assert (note.code, note.subcode) == (NotificationCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
    assert loser.state is State.IDLE and emitted(actions) == [] and Timer.IDLE_HOLD not in timers(actions)
    inbound.handle(BytesReceived(Keepalive().encode()), 0.0)
    assert inbound.established


# -- UPDATEs ---------------------------------------------------------------------------------------------


def test_update_becomes_routes_received() -> None:
    fsm = established()
    routes = [route(i) for i in range(3)]
    actions = fsm.handle(BytesReceived(mp_update(routes)), 1.0)
    (event,) = emitted(actions)
    assert event == RoutesReceived(PEER, tuple(routes), ATTRS, VTEP, ())
    assert fsm.prefixes_received == 3 and fsm.stats.updates_in == 1
    withdraw = UpdatePacker().withdraw(routes[:1])[0]
    (event,) = emitted(fsm.handle(BytesReceived(withdraw), 2.0))
    assert isinstance(event, RoutesReceived) and event.withdrawn == (routes[0],) and not event.announced
    assert fsm.prefixes_received == 2


def test_end_of_rib_is_reported() -> None:
    fsm = established()
    (event,) = emitted(fsm.handle(BytesReceived(end_of_rib(Family.L2VPN_EVPN)), 1.0))
    assert event == EndOfRib(PEER, Family.L2VPN_EVPN)


def test_routes_of_families_not_negotiated_are_ignored() -> None:
    fsm = established()
    v4 = UpdatePacker().announce(
        PathAttributes(), [ipaddress.IPv4Network("10.1.0.0/16")], ipaddress.IPv4Address("192.0.2.9")
    )
    assert emitted(fsm.handle(BytesReceived(v4[0]), 1.0)) == []
    assert fsm.established


def test_ipv4_unicast_routes_use_the_next_hop_attribute() -> None:
    cfg = dataclasses.replace(CFG, families=(Family.L2VPN_EVPN, Family.IPV4_UNICAST))
    fsm = established(cfg, caps=(EVPN, Multiprotocol(1, 1), FourOctetAs(64512)))
    nh = ipaddress.IPv4Address("192.0.2.9")
    (msg,) = UpdatePacker().announce(PathAttributes(), [ipaddress.IPv4Network("10.1.0.0/16")], nh)
    (event,) = emitted(fsm.handle(BytesReceived(msg), 1.0))
    assert isinstance(event, RoutesReceived) and event.next_hop == nh


def test_treat_as_withdraw_does_not_reset() -> None:
    fsm = established()
    fsm.handle(BytesReceived(mp_update([route(1)])), 1.0)
    bad = mp_update([route(1)], PathAttributes().encode() + b"\xc0\x10\x07" + bytes(7))
    actions = fsm.handle(BytesReceived(bad), 2.0)
    (event,) = emitted(actions)
    assert event == RoutesReceived(PEER, withdrawn=(route(1),))
    assert sent(actions) == [] and fsm.established and fsm.prefixes_received == 0
    assert "treat-as-withdraw" in fsm.stats.last_error


def test_attribute_discard_keeps_the_update() -> None:
    fsm = established()
    atomic_with_value = (
        b"\x40\x06\x01\x00"  # ATOMIC_AGGREGATE must be empty: attribute discard (RFC 7606 §7.6)
    )
    actions = fsm.handle(BytesReceived(mp_update([route(1)], ATTRS.encode() + atomic_with_value)), 1.0)
    (event,) = emitted(actions)
    assert isinstance(event, RoutesReceived) and event.announced == (route(1),)
    assert fsm.established


def test_session_reset_update_error_sends_notification() -> None:
    fsm = established()
    block = b"\x40\x01\x01\x00" + b"\x80\x0e\x03\x00\x19\x46"  # MP_REACH_NLRI too short (RFC 7606 §7.11)
    raw = frame(MessageType.UPDATE, b"\x00\x00" + len(block).to_bytes(2, "big") + block)
    actions = fsm.handle(BytesReceived(raw), 1.0)
    note = notification(actions)
    assert note.code == NotificationCode.UPDATE_MESSAGE_ERROR
    assert fsm.state is State.IDLE and isinstance(emitted(actions)[-1], PeerDown)


@pytest.mark.parametrize(
    ("raw", "code", "subcode"),
    [
        (b"\x00" * 16 + b"\x00\x13\x04", 1, 1),  # marker not all ones
        (MARKER + b"\x00\x12\x04", 1, 2),  # length below 19
        (MARKER + b"\x00\x14\x04\x00", 1, 2),  # KEEPALIVE with a body
        (MARKER + b"\x00\x13\x09", 1, 3),  # unknown type
        (MARKER + b"\x13\x00\x02" + bytes(4864 - 19), 1, 2),  # longer than 4096 without extended message
    ],
)
def test_malformed_input_resets_with_header_errors(raw: bytes, code: int, subcode: int) -> None:
    fsm = established()
    actions = fsm.handle(BytesReceived(raw), 1.0)
    note = notification(actions)
    assert (note.code, note.subcode) == (code, subcode)
    assert fsm.state is State.IDLE


def test_garbage_before_open_resets() -> None:
    fsm = open_sent()
    note = notification(fsm.handle(BytesReceived(b"GET / HTTP/1.1\r\n\r\n..."), 0.0))
    assert note.code == NotificationCode.MESSAGE_HEADER_ERROR


def test_bytes_after_reset_are_ignored() -> None:
    fsm = established()
    fsm.handle(BytesReceived(NotificationMessage(6, 4).encode() + Keepalive().encode()), 0.0)
    assert fsm.state is State.IDLE
    assert fsm.handle(BytesReceived(Keepalive().encode()), 1.0) == []


def test_maximum_prefix_limit_sends_cease_6_1() -> None:
    fsm = established(dataclasses.replace(CFG, max_prefixes=5))
    assert len(emitted(fsm.handle(BytesReceived(mp_update([route(i) for i in range(5)])), 1.0))) == 1
    actions = fsm.handle(BytesReceived(mp_update([route(9)])), 2.0)
    note = notification(actions)
    assert (note.code, note.subcode) == (NotificationCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED)
    assert note.data == b"\x00\x19\x46" + (5).to_bytes(4, "big")
    assert [type(e) for e in emitted(actions)] == [PeerDown]  # the excess routes are not handed on
    assert timers(actions)[Timer.IDLE_HOLD] == 2.0 + 60.0  # retried only after connect_retry
    assert fsm.stats.notifications[-1].startswith("sent NOTIFICATION 6/1")


def test_route_refresh_request_asks_for_a_resend() -> None:
    fsm = established()
    actions = fsm.handle(BytesReceived(RouteRefreshMessage(25, 70).encode()), 1.0)
    assert ResendRoutes(Family.L2VPN_EVPN) in actions
    assert ResendRoutes(Family.IPV4_UNICAST) not in fsm.handle(
        BytesReceived(RouteRefreshMessage(1, 1).encode()), 1.0
    )
    (msg,) = sent(fsm.route_refresh(Family.L2VPN_EVPN))
    assert msg == RouteRefreshMessage(25, 70)


# -- sending ---------------------------------------------------------------------------------------------


def test_announce_withdraw_and_end_of_rib_only_when_established() -> None:
    fsm = open_sent()
    assert fsm.announce(ATTRS, VTEP, [route()]) == [] and fsm.withdraw([route()]) == []
    assert fsm.end_of_rib(Family.L2VPN_EVPN) == []
    fsm = established()
    (update,) = sent(fsm.announce(ATTRS, VTEP, [route(i) for i in range(20)]))
    assert isinstance(update, Update) and update.mp_reach is not None and len(update.mp_reach.routes) == 20
    assert update.attributes == ATTRS  # as given: session attribute rules are the core's (evpn.export)
    (withdraw,) = sent(fsm.withdraw([route(1)]))
    assert isinstance(withdraw, Update) and withdraw.withdrawn_routes == (route(1),)
    (eor,) = sent(fsm.end_of_rib(Family.L2VPN_EVPN))
    assert isinstance(eor, Update) and eor.end_of_rib is Family.L2VPN_EVPN
    assert fsm.end_of_rib(Family.IPV4_UNICAST) == []  # not negotiated
    assert fsm.stats.updates_out == 3


def test_attributes_go_out_unchanged_on_ebgp() -> None:
    cfg = dataclasses.replace(CFG, peer_asn=65001)
    fsm = established(cfg, asn=65001)
    attrs = dataclasses.replace(ATTRS, as_path=AsPath.sequence(64512, 65002))
    (update,) = sent(fsm.announce(attrs, VTEP, [route()]))
    assert isinstance(update, Update) and update.attributes == attrs


def test_received_ebgp_local_pref_is_discarded() -> None:
    fsm = established(dataclasses.replace(CFG, peer_asn=65001), asn=65001)
    attrs = dataclasses.replace(ATTRS, as_path=AsPath.sequence(65001), local_pref=300)
    (event,) = emitted(fsm.handle(BytesReceived(mp_update([route()], attrs.encode())), 1.0))
    assert isinstance(event, RoutesReceived) and event.attributes is not None
    assert event.attributes.local_pref is None


def test_counters() -> None:
    fsm = established()
    fsm.handle(BytesReceived(Keepalive().encode() * 3), 1.0)
    assert fsm.stats.messages_in == 2 + 3
    assert fsm.stats.messages_out == 2


def test_v4_inclusive_multicast_route_roundtrip_via_fsm() -> None:
    fsm = established()
    r3 = InclusiveMulticastRoute(RouteDistinguisher.from_text("10.0.0.2:110"), VTEP)
    (raw,) = [a.data for a in fsm.announce(ATTRS, VTEP, [r3]) if isinstance(a, SendBytes)]
    other = established()
    (event,) = emitted(other.handle(BytesReceived(raw), 1.0))
    assert isinstance(event, RoutesReceived) and event.announced == (r3,) and event.next_hop == VTEP
