"""Sans-IO BGP session finite state machine (RFC 4271 §8), one instance per peer connection lineage.

The machine never touches sockets or clocks: the owner feeds it events (``ManualStart``, ``TcpConnected``,
``BytesReceived``, ``TimerExpired`` ... each with an injected ``now``) and carries out the actions it returns
(``SendBytes``, ``CloseConnection``, ``InitiateConnection``, ``StartTimer``/``StopTimer``, ``Emit`` of a
core event). What it implements:

- the six states and their transitions (RFC 4271 §8.2.2), with an automatic restart after an error behind
  a jittered exponential backoff (RFC 4271 §8.1.1 IdleHoldTimer / DampPeerOscillations);
- OPEN checks and capability negotiation (RFC 5492): multiprotocol (RFC 4760, L2VPN EVPN required),
  4-octet AS (RFC 6793), route refresh (RFC 2918), graceful restart (RFC 4724), extended message (RFC 8654);
  hold time is the smaller of both, keepalive a third of it (RFC 4271 §4.2, §10);
- received UPDATEs decoded by ``MessageDecoder`` with RFC 7606 outcomes applied (treat-as-withdraw and
  attribute discard keep the session; session reset sends the NOTIFICATION);
- a per-peer maximum-prefix limit (RFC 4486 §4, Cease / Maximum Number of Prefixes Reached);
- outgoing UPDATEs packed by ``UpdatePacker`` (attributes as the core gives them, see ``evpn.export``).

Connection collisions (RFC 4271 §6.8) involve two machines for one peer: on entering OpenConfirm a machine
stops processing received bytes, so the owner can ask :func:`collision_winner` which connection stays, feed
``CollisionLost`` to the other one, and resume the survivor with ``BytesReceived(b"")``.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evpn.codec.attributes import PathAttributes
from evpn.codec.capabilities import (
    Capability,
    ExtendedMessage,
    FourOctetAs,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
    encode_capability,
)
from evpn.codec.evpn_nlri import IPAddress
from evpn.codec.families import Family
from evpn.codec.messages import (
    MAX_EXTENDED_MESSAGE,
    MAX_MESSAGE,
    DecodeOptions,
    Keepalive,
    Message,
    MessageDecoder,
    NotificationMessage,
    Open,
    Route,
    RouteRefreshMessage,
    Update,
    end_of_rib,
    family_of,
)
from evpn.codec.packer import UpdatePacker
from evpn.config import GracefulRestartConfig, Neighbor, PeerType, Underlay
from evpn.errors import (
    CeaseSubcode,
    MessageError,
    Notification,
    NotificationCode,
    OpenSubcode,
    Rfc7606Action,
    describe_notification,
)
from evpn.events import EndOfRib, PeerDown, PeerUp, RoutesReceived

log = logging.getLogger(__name__)

AS_TRANS = 23456  # RFC 6793 §9
OPEN_HOLD_TIME = 240.0  # RFC 4271 §8.2.2: "a large value" for the hold timer in OpenSent (4 minutes)


class State(enum.Enum):
    """Session states (RFC 4271 §8.2.2); the value is the name FRR shows."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


class Timer(enum.Enum):
    """Timers (RFC 4271 §10); IDLE_HOLD delays the automatic restart after an error (RFC 4271 §8.1.1)."""

    CONNECT_RETRY = "connect-retry"
    HOLD = "hold"
    KEEPALIVE = "keepalive"
    IDLE_HOLD = "idle-hold"


class FsmSubcode(enum.IntEnum):
    """Finite State Machine Error subcodes (RFC 6608 §3)."""

    UNSPECIFIED = 0
    UNEXPECTED_IN_OPEN_SENT = 1
    UNEXPECTED_IN_OPEN_CONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


class Side(enum.Enum):
    """Who initiated a TCP connection."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


# -- input events -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManualStart:
    """ManualStart / ManualStart_with_PassiveTcpEstablishment (RFC 4271 §8.1.2); None uses the config."""

    passive: bool | None = None


@dataclass(frozen=True, slots=True)
class ManualStop:
    """ManualStop (RFC 4271 §8.1.2). ``notify`` False closes without a NOTIFICATION (RFC 4724 restart)."""

    notify: bool = True
    reason: str = "administrative shutdown"


@dataclass(frozen=True, slots=True)
class TcpConnected:
    """Tcp_CR_Acked / TcpConnectionConfirmed (RFC 4271 §8.1.3): ``outbound`` when we initiated it."""

    outbound: bool


@dataclass(frozen=True, slots=True)
class TcpFailed:
    """TcpConnectionFails (RFC 4271 §8.1.3): the attempt failed or the connection closed."""

    reason: str = "connection closed"


@dataclass(frozen=True, slots=True)
class BytesReceived:
    data: bytes


@dataclass(frozen=True, slots=True)
class TimerExpired:
    timer: Timer


@dataclass(frozen=True, slots=True)
class CollisionLost:
    """This connection lost the collision resolution (RFC 4271 §6.8): Cease / Connection Collision."""


FsmEvent = ManualStart | ManualStop | TcpConnected | TcpFailed | BytesReceived | TimerExpired | CollisionLost

# -- output actions ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendBytes:
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close the TCP connection of this machine (after writing what was sent before)."""


@dataclass(frozen=True, slots=True)
class InitiateConnection:
    """Open a TCP connection to the peer; report TcpConnected(outbound=True) or TcpFailed."""


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer: Timer
    deadline: float


@dataclass(frozen=True, slots=True)
class StopTimer:
    timer: Timer


SessionEvent = PeerUp | PeerDown | RoutesReceived | EndOfRib


@dataclass(frozen=True, slots=True)
class Emit:
    """Hand a core event to the owner."""

    event: SessionEvent


@dataclass(frozen=True, slots=True)
class ResendRoutes:
    """The peer asked for a ROUTE-REFRESH of ``family`` (RFC 2918 §4): send it the Adj-RIB-Out again."""

    family: Family


FsmAction = SendBytes | CloseConnection | InitiateConnection | StartTimer | StopTimer | Emit | ResendRoutes

# -- configuration and negotiated values ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Everything one session needs to know about both ends.

    ``peer_asn`` None with ``peer_type`` accepts any internal / external AS (FRR ``remote-as internal``).
    ``connect_retry`` caps the reconnect backoff, which starts at ``initial_backoff`` and doubles, each delay
    reduced by up to ``jitter`` (RFC 4271 §10 suggests 0.75-1.0 of the value).
    """

    local_asn: int
    router_id: ipaddress.IPv4Address
    peer_address: IPAddress
    peer_asn: int | None = None
    peer_type: PeerType | None = None
    hold_time: int = 180
    connect_retry: float = 120.0
    initial_backoff: float = 1.0
    jitter: float = 0.25
    connect_timeout: float = 30.0
    passive: bool = False
    families: tuple[Family, ...] = (Family.L2VPN_EVPN,)
    required_families: tuple[Family, ...] = (Family.L2VPN_EVPN,)
    route_reflector_client: bool = False
    graceful_restart: GracefulRestartConfig | None = None
    restarting: bool = False
    forwarding_preserved: bool = False
    max_prefixes: int | None = None
    extended_message: bool = True
    route_refresh: bool = True

    @classmethod
    def from_neighbor(
        cls,
        underlay: Underlay,
        neighbor: Neighbor,
        graceful_restart: GracefulRestartConfig | None = None,
        **overrides: object,
    ) -> SessionConfig:
        """The session towards ``neighbor`` of ``underlay`` (timers, families, limits from the neighbor)."""
        values: dict[str, object] = {
            "local_asn": neighbor.local_asn if neighbor.local_asn is not None else underlay.asn,
            "router_id": underlay.router_id,
            "peer_address": neighbor.address,
            "peer_asn": neighbor.asn,
            "peer_type": neighbor.peer_type,
            "hold_time": neighbor.timers.hold_time,
            "connect_retry": float(neighbor.timers.connect_retry),
            "passive": neighbor.passive,
            "families": neighbor.families,
            "required_families": tuple(f for f in neighbor.families if f is Family.L2VPN_EVPN),
            "route_reflector_client": neighbor.route_reflector_client,
            "graceful_restart": graceful_restart
            if graceful_restart is not None and graceful_restart.enabled
            else None,
            "max_prefixes": neighbor.max_prefixes,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def capabilities(self) -> tuple[Capability, ...]:
        """What we advertise in OPEN (RFC 5492)."""
        caps: list[Capability] = [Multiprotocol(f.afi, f.safi) for f in self.families]
        if self.route_refresh:
            caps.append(RouteRefresh())
        caps.append(FourOctetAs(self.local_asn))
        if self.extended_message:
            caps.append(ExtendedMessage())
        if self.graceful_restart is not None:
            caps.append(
                GracefulRestart(
                    min(self.graceful_restart.restart_time, 4095),
                    restarting=self.restarting,
                    families=tuple(
                        GracefulRestartFamily(f.afi, f.safi, self.forwarding_preserved) for f in self.families
                    ),
                )
            )
        return tuple(caps)

    def open_message(self) -> Open:
        """Our OPEN (RFC 4271 §4.2); a 4-octet ASN travels as AS_TRANS in the 2-octet field (RFC 6793 §4.1)."""
        my_as = self.local_asn if self.local_asn < 65536 else AS_TRANS
        return Open(my_as, self.hold_time, self.router_id, self.capabilities())


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The outcome of the OPEN exchange."""

    peer_asn: int
    peer_id: ipaddress.IPv4Address
    hold_time: int
    keepalive: int
    families: frozenset[Family]
    four_octet_as: bool
    extended_message: bool
    route_refresh: bool
    peer_graceful_restart: GracefulRestart | None
    ibgp: bool

    @property
    def max_message(self) -> int:
        return MAX_EXTENDED_MESSAGE if self.extended_message else MAX_MESSAGE


@dataclass(slots=True)
class SessionStats:
    """Counters for ``show bgp summary``; owned by the caller so they survive reconnects and collisions."""

    messages_in: int = 0
    messages_out: int = 0
    updates_in: int = 0
    updates_out: int = 0
    flaps: int = 0
    established_at: float | None = None
    last_error: str = ""
    notifications: list[str] = field(default_factory=list)

    def note(self, text: str, keep: int = 20) -> None:
        """Remember a NOTIFICATION sent or received (the last ``keep`` ones)."""
        self.notifications.append(text)
        del self.notifications[:-keep]


def collision_winner(local_id: ipaddress.IPv4Address, remote_id: ipaddress.IPv4Address) -> Side:
    """RFC 4271 §6.8: keep the connection initiated by the speaker with the higher BGP Identifier."""
    return Side.OUTBOUND if int(local_id) > int(remote_id) else Side.INBOUND


def _route_key(route: Route) -> object:
    if isinstance(route, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return route
    return route.key


class _OpenRejected(Exception):
    def __init__(self, reason: str, notification: Notification) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notification = notification


class SessionFsm:
    """One BGP session (RFC 4271 §8). Feed :meth:`handle`; carry out the returned actions in order.

    ``rng`` returns floats in [0, 1) for the backoff jitter (inject a seeded one in tests).
    """

    def __init__(
        self,
        config: SessionConfig,
        stats: SessionStats | None = None,
        rng: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.stats = stats if stats is not None else SessionStats()
        self._rng = rng if rng is not None else random.Random().random
        self.state = State.IDLE
        self.negotiated: Negotiated | None = None
        self.remote_open: Open | None = None
        self.side: Side | None = None
        self._timers: dict[Timer, float] = {}
        self._buffer = bytearray()
        self._decoder = MessageDecoder(DecodeOptions(max_message=MAX_MESSAGE))
        self._packer = UpdatePacker()
        self._received: set[object] = set()
        self._attempts = 0
        self._stopped = True  # until a ManualStart: no automatic restart

    # -- queries ------------------------------------------------------------------------------------------
    @property
    def peer(self) -> IPAddress:
        return self.config.peer_address

    @property
    def established(self) -> bool:
        return self.state is State.ESTABLISHED

    @property
    def prefixes_received(self) -> int:
        return len(self._received)

    @property
    def deadlines(self) -> dict[Timer, float]:
        """Armed timers and their deadlines (same clock as ``now``)."""
        return dict(self._timers)

    def next_deadline(self) -> float | None:
        return min(self._timers.values(), default=None)

    def due_timers(self, now: float) -> list[Timer]:
        """Timers whose deadline has passed, earliest first (feed each as TimerExpired)."""
        return [t for t, d in sorted(self._timers.items(), key=lambda kv: kv[1]) if d <= now]

    # -- events -------------------------------------------------------------------------------------------
    def handle(self, event: FsmEvent, now: float) -> list[FsmAction]:
        """Process one event at time ``now``; returns the actions to carry out, in order."""
        if isinstance(event, BytesReceived):
            return self._on_bytes(event.data, now)
        if isinstance(event, TimerExpired):
            return self._on_timer(event.timer, now)
        if isinstance(event, ManualStart):
            return self._on_manual_start(event, now)
        if isinstance(event, ManualStop):
            return self._on_manual_stop(event)
        if isinstance(event, TcpConnected):
            return self._on_tcp_connected(event, now)
        if isinstance(event, TcpFailed):
            return self._on_tcp_failed(event, now)
        return self._on_collision_lost()

    def _on_manual_start(self, event: ManualStart, now: float) -> list[FsmAction]:
        if self.state is not State.IDLE:
            return []  # RFC 4271 §8.2.2: ignored outside Idle
        self._stopped = False
        self._attempts = 0
        actions = self._stop_timer(Timer.IDLE_HOLD)
        passive = self.config.passive if event.passive is None else event.passive
        return actions + self._start(now, passive)

    def _start(self, now: float, passive: bool) -> list[FsmAction]:
        if passive:
            self.state = State.ACTIVE
            return []
        self.state = State.CONNECT
        return [
            InitiateConnection(),
            self._start_timer(Timer.CONNECT_RETRY, now + self.config.connect_timeout),
        ]

    def _on_manual_stop(self, event: ManualStop) -> list[FsmAction]:
        self._stopped = True
        if self.state is State.IDLE:
            return self._stop_all_timers()
        note = None
        if event.notify and self.state in (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED):
            note = Notification(NotificationCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
        return self._reset(0.0, event.reason, note, graceful=False, restart=False)

    def _on_collision_lost(self) -> list[FsmAction]:
        self._stopped = True
        if self.state is State.IDLE:
            return []
        note = Notification(NotificationCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
        return self._reset(0.0, "connection collision resolution", note, graceful=False, restart=False)

    def _on_tcp_connected(self, event: TcpConnected, now: float) -> list[FsmAction]:
        actions: list[FsmAction] = []
        if self.state is State.IDLE:
            if self._stopped:
                return [CloseConnection()]
            # An automatic restart is pending: accept the peer's connection now rather than refuse it.
            actions += self._stop_timer(Timer.IDLE_HOLD)
        elif self.state not in (State.CONNECT, State.ACTIVE):
            log.warning("%s: TCP connection reported in state %s ignored", self.peer, self.state.value)
            return []
        self.side = Side.OUTBOUND if event.outbound else Side.INBOUND
        self._buffer.clear()
        self._decoder = MessageDecoder(DecodeOptions(max_message=MAX_MESSAGE))
        self.negotiated = None
        self.remote_open = None
        actions += self._stop_timer(Timer.CONNECT_RETRY)
        actions.append(self._send(self.config.open_message().encode()))
        actions.append(self._start_timer(Timer.HOLD, now + OPEN_HOLD_TIME))
        self.state = State.OPEN_SENT
        return actions

    def _on_tcp_failed(self, event: TcpFailed, now: float) -> list[FsmAction]:
        if self.state is State.IDLE:
            return []
        if self.state is State.ACTIVE:
            return []  # a failed attempt of a passive or backing-off session: keep waiting
        if self.state is State.CONNECT:
            self.state = State.ACTIVE
            log.info("%s: connect failed: %s", self.peer, event.reason)
            self.stats.last_error = f"connect failed: {event.reason}"
            return [self._start_timer(Timer.CONNECT_RETRY, now + self._backoff())]
        graceful = self.state is State.ESTABLISHED
        return self._reset(now, event.reason, None, graceful=graceful, restart=True)

    def _on_timer(self, timer: Timer, now: float) -> list[FsmAction]:
        deadline = self._timers.get(timer)
        if deadline is None or deadline > now:
            return []  # stale or early
        del self._timers[timer]
        if timer is Timer.IDLE_HOLD:
            if self.state is not State.IDLE or self._stopped:
                return []
            return self._start(now, self.config.passive)
        if timer is Timer.CONNECT_RETRY:
            if self.state is State.CONNECT:
                # RFC 4271 §8.2.2 Connect: drop the attempt, restart the timer, try again.
                return [
                    CloseConnection(),
                    InitiateConnection(),
                    self._start_timer(Timer.CONNECT_RETRY, now + self.config.connect_timeout),
                ]
            if self.state is State.ACTIVE:
                return self._start(now, False)
            return []
        if timer is Timer.HOLD:
            if self.state in (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED):
                note = Notification(NotificationCode.HOLD_TIMER_EXPIRED, 0)
                return self._reset(now, "hold timer expired", note, graceful=False, restart=True)
            return []
        # KEEPALIVE
        if self.state in (State.OPEN_CONFIRM, State.ESTABLISHED) and self.negotiated is not None:
            return [
                self._send(Keepalive().encode()),
                self._start_timer(Timer.KEEPALIVE, now + self.negotiated.keepalive),
            ]
        return []

    # -- received bytes -----------------------------------------------------------------------------------
    def _on_bytes(self, data: bytes, now: float) -> list[FsmAction]:
        if self.state not in (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED):
            return []
        self._buffer += data
        actions: list[FsmAction] = []
        try:
            raws, used = self._decoder.split(self._buffer)
        except MessageError as exc:
            return self._decode_failed(exc, now)
        del self._buffer[:used]
        for index, raw in enumerate(raws):
            if self.state not in (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED):
                break  # a reset earlier in this batch
            self.stats.messages_in += 1
            if raw[18] == 2 and self.state is State.ESTABLISHED:
                actions += self._on_update_bytes(raw, now)
                continue
            try:
                message = self._decoder.decode(raw)
            except MessageError as exc:
                actions += self._decode_failed(exc, now)
                break
            before = self.state
            actions += self._on_message(message, now)
            if before is State.OPEN_SENT and self.state is State.OPEN_CONFIRM:
                # RFC 4271 §6.8: the owner resolves collisions on receipt of an OPEN; pause here and keep
                # what follows until it feeds BytesReceived(b"") again.
                self._buffer[0:0] = b"".join(raws[index + 1 :])
                break
        return actions

    @property
    def buffered(self) -> int:
        """Bytes received but not processed yet (after the pause on entering OpenConfirm)."""
        return len(self._buffer)

    def _decode_failed(self, exc: MessageError, now: float) -> list[FsmAction]:
        note = exc.notification or Notification(NotificationCode.UPDATE_MESSAGE_ERROR, 1)
        return self._reset(now, exc.reason, note, graceful=False, restart=True)

    def _on_message(self, message: Message, now: float) -> list[FsmAction]:
        if isinstance(message, NotificationMessage):
            text = describe_notification(message.code, message.subcode)
            reason = f"received NOTIFICATION {message.code}/{message.subcode} ({text})"
            if message.data:
                reason += f" data {message.data.hex()}"
            log.warning("%s: %s", self.peer, reason)
            self.stats.note(reason)
            return self._reset(now, reason, None, graceful=False, restart=True, error=reason)
        if self.state is State.OPEN_SENT:
            if isinstance(message, Open):
                return self._on_open(message, now)
            return self._fsm_error(FsmSubcode.UNEXPECTED_IN_OPEN_SENT, message, now)
        if self.state is State.OPEN_CONFIRM:
            if isinstance(message, Keepalive):
                return self._on_established(now)
            return self._fsm_error(FsmSubcode.UNEXPECTED_IN_OPEN_CONFIRM, message, now)
        # Established
        if isinstance(message, Keepalive):
            return self._restart_hold(now)
        if isinstance(message, RouteRefreshMessage):
            actions = self._restart_hold(now)
            family = Family.lookup(message.afi, message.safi)
            if self.negotiated is not None and family in self.negotiated.families and family is not None:
                actions.append(ResendRoutes(family))
            return actions
        if isinstance(message, Update):  # only when the raw path was bypassed
            return self._restart_hold(now) + self._on_update(message, now)
        return self._fsm_error(FsmSubcode.UNEXPECTED_IN_ESTABLISHED, message, now)

    def _fsm_error(self, subcode: FsmSubcode, message: Message, now: float) -> list[FsmAction]:
        reason = f"unexpected {type(message).__name__} in {self.state.value}"
        note = Notification(NotificationCode.FSM_ERROR, subcode)
        return self._reset(now, reason, note, graceful=False, restart=True)

    def _on_open(self, message: Open, now: float) -> list[FsmAction]:
        try:
            negotiated = self._negotiate(message)
        except _OpenRejected as exc:
            return self._reset(now, exc.reason, exc.notification, graceful=False, restart=True)
        self.remote_open = message
        self.negotiated = negotiated
        self._decoder = MessageDecoder(
            DecodeOptions(
                four_octet_as=negotiated.four_octet_as,
                ebgp=not negotiated.ibgp,
                max_message=negotiated.max_message,
            )
        )
        self._packer = UpdatePacker(negotiated.max_message, negotiated.four_octet_as)
        actions = self._stop_timer(Timer.HOLD)
        actions.append(self._send(Keepalive().encode()))
        if negotiated.hold_time:
            actions.append(self._start_timer(Timer.HOLD, now + negotiated.hold_time))
            actions.append(self._start_timer(Timer.KEEPALIVE, now + negotiated.keepalive))
        self.state = State.OPEN_CONFIRM
        return actions

    def _negotiate(self, message: Open) -> Negotiated:
        """OPEN checks (RFC 4271 §6.2, RFC 5492 §5, RFC 6793, RFC 6286) and capability intersection."""
        cfg = self.config
        four = next((c for c in message.capabilities if isinstance(c, FourOctetAs)), None)
        peer_asn = four.asn if four is not None else message.my_as
        bad_as = Notification(
            NotificationCode.OPEN_MESSAGE_ERROR, OpenSubcode.BAD_PEER_AS, message.my_as.to_bytes(2, "big")
        )
        if cfg.peer_asn is not None and peer_asn != cfg.peer_asn:
            raise _OpenRejected(f"peer AS {peer_asn}, expected {cfg.peer_asn}", bad_as)
        if cfg.peer_asn is None and cfg.peer_type is PeerType.INTERNAL and peer_asn != cfg.local_asn:
            raise _OpenRejected(f"peer AS {peer_asn} is not internal ({cfg.local_asn})", bad_as)
        if cfg.peer_asn is None and cfg.peer_type is PeerType.EXTERNAL and peer_asn == cfg.local_asn:
            raise _OpenRejected(f"peer AS {peer_asn} is not external", bad_as)
        ibgp = peer_asn == cfg.local_asn
        if ibgp and message.bgp_id == cfg.router_id:  # RFC 6286 §2.2
            raise _OpenRejected(
                f"peer BGP identifier {message.bgp_id} equals ours",
                Notification(NotificationCode.OPEN_MESSAGE_ERROR, OpenSubcode.BAD_BGP_IDENTIFIER),
            )
        mp = {Family.lookup(c.afi, c.safi) for c in message.capabilities if isinstance(c, Multiprotocol)}
        offered = {f for f in mp if f is not None}
        if not any(isinstance(c, Multiprotocol) for c in message.capabilities):
            offered = {Family.IPV4_UNICAST}  # RFC 4760 §8: no MP capability means IPv4 unicast only
        missing = [f for f in cfg.required_families if f not in offered]
        if missing:
            data = b"".join(encode_capability(Multiprotocol(f.afi, f.safi)) for f in missing)
            raise _OpenRejected(
                f"peer lacks required families: {', '.join(str(f) for f in missing)}",
                Notification(NotificationCode.OPEN_MESSAGE_ERROR, OpenSubcode.UNSUPPORTED_CAPABILITY, data),
            )
        families = frozenset(f for f in cfg.families if f in offered)
        hold = min(cfg.hold_time, message.hold_time)
        gr = next((c for c in message.capabilities if isinstance(c, GracefulRestart)), None)
        return Negotiated(
            peer_asn=peer_asn,
            peer_id=message.bgp_id,
            hold_time=hold,
            keepalive=max(1, hold // 3) if hold else 0,
            families=families,
            four_octet_as=four is not None,
            extended_message=cfg.extended_message
            and any(isinstance(c, ExtendedMessage) for c in message.capabilities),
            route_refresh=any(isinstance(c, RouteRefresh) for c in message.capabilities),
            peer_graceful_restart=gr,
            ibgp=ibgp,
        )

    def _on_established(self, now: float) -> list[FsmAction]:
        assert self.negotiated is not None
        neg = self.negotiated
        self.state = State.ESTABLISHED
        self._attempts = 0
        self._received.clear()
        self.stats.established_at = now
        log.info(
            "%s: session established (AS %d, id %s, hold %ds, families %s)",
            self.peer,
            neg.peer_asn,
            neg.peer_id,
            neg.hold_time,
            ", ".join(sorted(str(f) for f in neg.families)),
        )
        up = PeerUp(
            peer=self.peer,
            peer_asn=neg.peer_asn,
            peer_router_id=neg.peer_id,
            ibgp=neg.ibgp,
            families=neg.families,
            route_reflector_client=self.config.route_reflector_client,
            graceful_restart=neg.peer_graceful_restart is not None,
        )
        return [*self._restart_hold(now), Emit(up)]

    def _restart_hold(self, now: float) -> list[FsmAction]:
        if self.negotiated is None or not self.negotiated.hold_time:
            return []
        return [self._start_timer(Timer.HOLD, now + self.negotiated.hold_time)]

    # -- UPDATE -------------------------------------------------------------------------------------------
    def _on_update_bytes(self, raw: bytes, now: float) -> list[FsmAction]:
        actions = self._restart_hold(now)
        self.stats.updates_in += 1
        try:
            message = self._decoder.decode(raw)
        except MessageError as exc:
            if exc.action is Rfc7606Action.TREAT_AS_WITHDRAW:
                log.warning("%s: malformed UPDATE treated as withdraw (RFC 7606): %s", self.peer, exc.reason)
                self.stats.last_error = f"treat-as-withdraw: {exc.reason}"
                routes = tuple(r for r in exc.withdrawn if self._family_ok(r))
                return actions + self._deliver((), None, None, routes)
            if exc.action is Rfc7606Action.ATTRIBUTE_DISCARD and isinstance(exc.update, Update):
                log.warning(
                    "%s: UPDATE attributes %s discarded (RFC 7606): %s", self.peer, exc.discarded, exc.reason
                )
                message = exc.update
            else:
                return actions + self._decode_failed(exc, now)
        if not isinstance(message, Update):
            return actions + self._decode_failed(
                MessageError("UPDATE did not decode as UPDATE", Rfc7606Action.SESSION_RESET), now
            )
        return actions + self._on_update(message, now)

    def _family_ok(self, route: Route) -> bool:
        return self.negotiated is not None and family_of(route) in self.negotiated.families

    def _on_update(self, update: Update, now: float) -> list[FsmAction]:
        eor = update.end_of_rib
        if eor is not None:
            return [Emit(EndOfRib(self.peer, eor))]
        withdrawn = tuple(r for r in update.withdrawn_routes if self._family_ok(r))
        actions: list[FsmAction] = []
        if update.nlri:
            nlri = tuple(r for r in update.nlri if self._family_ok(r))
            v4_hop = update.attributes.next_hop if update.attributes is not None else None
            actions += self._deliver(nlri, update.attributes, v4_hop, withdrawn)
            withdrawn = ()
        reach = update.mp_reach
        mp_routes = tuple(r for r in reach.routes if self._family_ok(r)) if reach is not None else ()
        if mp_routes or withdrawn:
            nh = reach.next_hop if reach is not None and mp_routes else None
            actions += self._deliver(mp_routes, update.attributes if mp_routes else None, nh, withdrawn)
        if self.state is not State.ESTABLISHED:
            return actions
        limit = self.config.max_prefixes
        if limit is not None and len(self._received) > limit:
            reason = f"maximum prefixes {limit} exceeded ({len(self._received)})"
            fam = (
                next(iter(sorted(self.negotiated.families, key=str)))
                if self.negotiated
                else Family.L2VPN_EVPN
            )
            data = fam.afi.to_bytes(2, "big") + bytes((fam.safi,)) + limit.to_bytes(4, "big")
            note = Notification(NotificationCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, data)
            # Like FRR's ``maximum-prefix N restart``: try again only after the longest backoff.
            return self._reset(
                now, reason, note, graceful=False, restart=True, delay=self.config.connect_retry
            )
        return actions

    def _deliver(
        self,
        announced: tuple[Route, ...],
        attributes: PathAttributes | None,
        next_hop: IPAddress | None,
        withdrawn: tuple[Route, ...],
    ) -> list[FsmAction]:
        if not announced and not withdrawn:
            return []
        for route in withdrawn:
            self._received.discard(_route_key(route))
        for route in announced:
            self._received.add(_route_key(route))
        limit = self.config.max_prefixes
        if limit is not None and len(self._received) > limit:
            return []  # the caller resets the session; the routes are not handed on
        return [Emit(RoutesReceived(self.peer, announced, attributes, next_hop, withdrawn))]

    # -- sending ------------------------------------------------------------------------------------------
    def announce(
        self, attributes: PathAttributes, next_hop: IPAddress, routes: Sequence[Route]
    ) -> list[FsmAction]:
        """UPDATEs announcing ``routes`` (families not negotiated are skipped); nothing unless Established.

        ``attributes`` go out as given: the per-session rules of RFC 4271 §5.1 (eBGP AS_PATH prepend,
        LOCAL_PREF) and reflection (RFC 4456) are the core's (``evpn.export``).
        """
        if self.state is not State.ESTABLISHED or not routes:
            return []
        wanted = [r for r in routes if self._family_ok(r)]
        if not wanted:
            return []
        messages = self._packer.announce(attributes, wanted, next_hop)
        return [self._send_update(m) for m in messages]

    def withdraw(self, routes: Sequence[Route]) -> list[FsmAction]:
        """UPDATEs withdrawing ``routes``; nothing unless Established."""
        if self.state is not State.ESTABLISHED:
            return []
        wanted = [r for r in routes if self._family_ok(r)]
        return [self._send_update(m) for m in self._packer.withdraw(wanted)] if wanted else []

    def end_of_rib(self, family: Family) -> list[FsmAction]:
        """The End-of-RIB marker for ``family`` (RFC 4724 §2) when negotiated and Established."""
        if (
            self.state is not State.ESTABLISHED
            or self.negotiated is None
            or family not in self.negotiated.families
        ):
            return []
        return [self._send_update(end_of_rib(family))]

    def route_refresh(self, family: Family) -> list[FsmAction]:
        """Ask the peer to send ``family`` again (RFC 2918 §3), when it supports route refresh."""
        neg = self.negotiated
        if (
            self.state is not State.ESTABLISHED
            or neg is None
            or not neg.route_refresh
            or family not in neg.families
        ):
            return []
        return [self._send(RouteRefreshMessage(family.afi, family.safi).encode())]

    def send_raw(self, data: bytes) -> list[FsmAction]:
        """Raw bytes on the session (fault injection in tests; nothing unless Established)."""
        return [self._send(data)] if self.state is State.ESTABLISHED else []

    def _send(self, data: bytes) -> SendBytes:
        self.stats.messages_out += 1
        return SendBytes(data)

    def _send_update(self, data: bytes) -> SendBytes:
        self.stats.updates_out += 1
        return self._send(data)

    # -- timers and teardown ------------------------------------------------------------------------------
    def _start_timer(self, timer: Timer, deadline: float) -> StartTimer:
        self._timers[timer] = deadline
        return StartTimer(timer, deadline)

    def _stop_timer(self, timer: Timer) -> list[FsmAction]:
        if self._timers.pop(timer, None) is None:
            return []
        return [StopTimer(timer)]

    def _stop_all_timers(self) -> list[FsmAction]:
        actions: list[FsmAction] = [StopTimer(t) for t in self._timers]
        self._timers.clear()
        return actions

    def _backoff(self) -> float:
        """Jittered exponential backoff (RFC 4271 §8.1.1 DampPeerOscillations, §10 jitter)."""
        cfg = self.config
        base = min(cfg.connect_retry, cfg.initial_backoff * (2 ** min(self._attempts, 30)))
        self._attempts += 1
        return float(max(0.0, base * (1.0 - cfg.jitter * self._rng())))

    def _reset(
        self,
        now: float,
        reason: str,
        notification: Notification | None,
        *,
        graceful: bool,
        restart: bool,
        error: str | None = None,
        delay: float | None = None,
    ) -> list[FsmAction]:
        """Leave the session: NOTIFICATION (if any), close, timers off, PeerDown when it was Established."""
        actions: list[FsmAction] = []
        if notification is not None:
            text = describe_notification(notification.code, notification.subcode)
            sent = f"sent NOTIFICATION {notification.code}/{notification.subcode} ({text})"
            log.warning("%s: %s: %s", self.peer, sent, reason)
            self.stats.note(f"{sent}: {reason}")
            actions.append(
                self._send(
                    NotificationMessage(notification.code, notification.subcode, notification.data).encode()
                )
            )
            error = error or f"{sent}: {reason}"
        actions.append(CloseConnection())
        actions += self._stop_all_timers()
        was_established = self.state is State.ESTABLISHED
        self.stats.last_error = error or reason
        if was_established:
            self.stats.flaps += 1
            self.stats.established_at = None
            gr = self.negotiated is not None and self.negotiated.peer_graceful_restart is not None
            actions.append(Emit(PeerDown(self.peer, reason, graceful=graceful and gr)))
            log.info("%s: session down: %s", self.peer, reason)
        self.state = State.IDLE
        self._buffer.clear()
        self._received.clear()
        self.side = None
        if restart and not self._stopped:
            wait = self._backoff() if delay is None else delay
            actions.append(self._start_timer(Timer.IDLE_HOLD, now + wait))
        return actions
