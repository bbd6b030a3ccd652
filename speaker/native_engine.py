"""The native session engine: our own asyncio BGP-4 sessions driving the sans-IO ``SessionFsm`` (DESIGN.md §2).

Per configured neighbor the engine runs one primary state machine that connects (unless passive) and
accepts; connections from addresses that are not neighbors are refused. A second connection from a peer
whose session is opening gets its own machine and the collision is resolved when both have the peer's OPEN
(RFC 4271 §6.8: keep the connection initiated by the higher BGP Identifier). A new connection from a peer
whose established session negotiated graceful restart means the peer restarted (RFC 4724 §4.2): the old
session ends gracefully and the new one proceeds.

Sockets: TCP MD5 signatures (RFC 2385, Linux ``TCP_MD5SIG``) on the listening socket per peer and on the
connecting socket when the neighbor has a password; the connecting socket is bound to ``local_address``.

Routes: ``advertise``/``withdraw`` update a per-peer Adj-RIB-Out and, when the session is Established, go
out at once as UPDATEs packed by ``UpdatePacker`` (many NLRIs per UPDATE), written with backpressure
(``await writer.drain()``). When a session comes up, ``EndOfRibMode`` decides (RFC 4724 §2): ``AUTO``
replays the Adj-RIB-Out then sends End-of-RIB; ``MANUAL`` leaves both to the owner. Attributes go out as
given: eBGP AS_PATH prepend, LOCAL_PREF and reflection are the core's (``evpn.export``).

No global state: every engine owns its sockets, tasks and timers, so several run in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import random
import socket
import struct
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress
from evpn.codec.families import Family
from evpn.codec.messages import Route, family_of
from evpn.config import GracefulRestartConfig, Neighbor, Underlay
from evpn.events import PeerDown, PeerUp
from evpn.session_fsm import (
    BytesReceived,
    CloseConnection,
    CollisionLost,
    Emit,
    FsmAction,
    FsmEvent,
    InitiateConnection,
    ManualStart,
    ManualStop,
    ResendRoutes,
    SendBytes,
    SessionConfig,
    SessionFsm,
    SessionStats,
    StartTimer,
    State,
    StopTimer,
    TcpConnected,
    TcpFailed,
    Timer,
    TimerExpired,
    collision_winner,
)
from speaker.engine import EndOfRibMode, EngineEvent, PeerState, SessionEngine, select_peers

log = logging.getLogger(__name__)

TCP_MD5SIG = 14  # linux/tcp.h
TCP_MD5SIG_MAXKEYLEN = 80
_SOCKADDR_STORAGE = 128
_BATCH = 2000  # routes handed to the packer between two drains


def md5sig(address: IPAddress, password: str, family: int) -> bytes:
    """``struct tcp_md5sig`` for ``setsockopt(IPPROTO_TCP, TCP_MD5SIG)`` (RFC 2385; linux/tcp.h).

    On an AF_INET6 socket an IPv4 peer is keyed by its IPv4-mapped address.
    """
    key = password.encode()
    if len(key) > TCP_MD5SIG_MAXKEYLEN:
        raise ValueError(f"TCP MD5 key longer than {TCP_MD5SIG_MAXKEYLEN} bytes")
    if family == socket.AF_INET6:
        ip6 = address if address.version == 6 else ipaddress.IPv6Address(f"::ffff:{address}")
        addr = struct.pack("=H", socket.AF_INET6) + b"\x00\x00" + b"\x00" * 4 + ip6.packed + b"\x00" * 4
    else:
        if address.version != 4:
            raise ValueError("an IPv6 peer cannot be keyed on an AF_INET socket")
        addr = struct.pack("=H", socket.AF_INET) + b"\x00\x00" + address.packed
    addr = addr.ljust(_SOCKADDR_STORAGE, b"\x00")
    return addr + struct.pack("=BBHI", 0, 0, len(key), 0) + key.ljust(TCP_MD5SIG_MAXKEYLEN, b"\x00")


def set_md5(sock: socket.socket, address: IPAddress, password: str) -> None:
    """Install (or with an empty password remove) the TCP MD5 key for ``address`` on ``sock``."""
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig(address, password, sock.family))


def _normalize(host: str) -> IPAddress:
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


async def _wait_closed(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def _route_key(route: Route) -> object:
    if isinstance(route, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return route
    return route.key


@dataclass(eq=False, slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    task: asyncio.Task[None] | None = None


@dataclass(eq=False, slots=True)
class _Peer:
    neighbor: Neighbor
    config: SessionConfig
    stats: SessionStats
    fsm: SessionFsm
    others: list[SessionFsm] = field(default_factory=list)
    conns: dict[SessionFsm, _Conn] = field(default_factory=dict)
    timers: dict[tuple[SessionFsm, Timer], asyncio.TimerHandle] = field(default_factory=dict)
    connect_task: asyncio.Task[None] | None = None
    adj_out: dict[object, tuple[Route, PathAttributes, IPAddress]] = field(default_factory=dict)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    eor_sent: SessionFsm | None = None

    @property
    def machines(self) -> list[SessionFsm]:
        return [self.fsm, *self.others]


_STOP = object()


class NativeEngine:
    """Native asyncio BGP engine for the neighbors of ``underlay`` (implements ``SessionEngine``).

    ``listen_address`` None listens on every address (dual stack, IPv4 only when IPv6 is off);
    ``listen_port`` 0 picks a free port (read ``listen_port`` after ``start``); ``listen`` False never
    accepts. ``local_address`` is the source of outgoing connections (default: a specific listen address).
    When ``max_queued_events`` events wait unread in ``events()``, sockets are no longer read until half
    of them are consumed, so a slow owner slows peers down through TCP instead of growing memory.
    An engine is started once; after ``stop`` build a new one.
    """

    def __init__(
        self,
        underlay: Underlay,
        *,
        listen_address: str | IPAddress | None = None,
        listen_port: int = 179,
        listen: bool = True,
        local_address: str | IPAddress | None = None,
        graceful_restart: GracefulRestartConfig | None = None,
        restarting: bool = False,
        forwarding_preserved: bool = False,
        end_of_rib_mode: EndOfRibMode = EndOfRibMode.AUTO,
        initial_backoff: float = 1.0,
        connect_timeout: float = 10.0,
        rng: random.Random | None = None,
        max_queued_events: int = 10_000,
        vrf_socket: Callable[[str | None, int], socket.socket] | None = None,
    ) -> None:
        self.underlay = underlay
        self._vrf_socket = vrf_socket
        self.listen_address = ipaddress.ip_address(listen_address) if listen_address is not None else None
        self.listen_port = listen_port
        self._listen = listen
        if local_address is not None:
            self.local_address: IPAddress | None = ipaddress.ip_address(local_address)
        else:
            self.local_address = self.listen_address
        self.end_of_rib_mode = end_of_rib_mode
        self._rng = rng or random.Random()
        gr = graceful_restart if graceful_restart is not None else GracefulRestartConfig()
        self._peers: dict[IPAddress, _Peer] = {}
        for neighbor in underlay.neighbors:
            config = SessionConfig.from_neighbor(
                underlay,
                neighbor,
                gr,
                restarting=restarting,
                forwarding_preserved=forwarding_preserved,
                initial_backoff=initial_backoff,
                connect_timeout=connect_timeout,
            )
            stats = SessionStats()
            self._peers[neighbor.address] = _Peer(neighbor, config, stats, self._new_fsm(config, stats))
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._max_queued = max_queued_events
        self._room = asyncio.Event()  # set while the event queue has room: reading sockets pauses otherwise
        self._room.set()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stopping = False

    def _new_fsm(self, config: SessionConfig, stats: SessionStats) -> SessionFsm:
        return SessionFsm(config, stats, self._rng.random)

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen, then start every session (active ones connect at once)."""
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        if self._listen:
            sock = self._listening_socket()
            server = await asyncio.start_server(self._on_accept, sock=sock)
            self._servers.append(server)
            self.listen_port = sock.getsockname()[1]
            log.info("listening on %s port %d", sock.getsockname()[0], self.listen_port)
            for vrf in sorted({p.neighbor.vrf for p in self._peers.values() if p.neighbor.vrf is not None}):
                vsock = self._listening_socket(vrf)
                self._servers.append(await asyncio.start_server(self._on_accept, sock=vsock))
                log.info("listening in VRF %s on port %d", vrf, vsock.getsockname()[1])
        for peer in self._peers.values():
            self._feed(peer, peer.fsm, ManualStart())

    def _socket(self, vrf: str | None, family: int) -> socket.socket:
        """A TCP socket in ``vrf`` (a host session's VRF) through the owner's factory, else a plain one."""
        if self._vrf_socket is not None:
            return self._vrf_socket(vrf, family)
        return socket.socket(family, socket.SOCK_STREAM)

    def _listening_socket(self, vrf: str | None = None) -> socket.socket:
        """The listener of the default VRF (``vrf`` None, bound to ``listen_address``) or of a VRF (every
        address); TCP MD5 keys of that VRF's neighbors are set on it (RFC 2385)."""
        host = str(self.listen_address) if self.listen_address is not None and vrf is None else None
        families = (
            [socket.AF_INET6 if self.listen_address.version == 6 else socket.AF_INET]
            if self.listen_address is not None and vrf is None
            else [socket.AF_INET6, socket.AF_INET]
        )
        last: OSError | None = None
        for fam in families:
            sock = socket.socket(fam, socket.SOCK_STREAM) if vrf is None else self._socket(vrf, fam)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6 and host is None:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                for peer in self._peers.values():
                    if peer.neighbor.vrf != vrf:
                        continue
                    pw = peer.neighbor.password
                    if pw and (fam == socket.AF_INET6 or peer.neighbor.address.version == 4):
                        set_md5(sock, peer.neighbor.address, pw)
                bind_host = host if host is not None else ("::" if fam == socket.AF_INET6 else "0.0.0.0")
                sock.bind((bind_host, self.listen_port))
                sock.listen(128)
                sock.setblocking(False)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        assert last is not None
        raise last

    async def stop(self, graceful: bool = False) -> None:
        """End every session (Cease / Administrative Shutdown, or silently with ``graceful``), stop listening."""
        if self._stopping:
            return
        self._stopping = True
        for server in self._servers:
            server.close()
        reason = "engine stopped (graceful restart)" if graceful else "administrative shutdown"
        for peer in self._peers.values():
            if peer.connect_task is not None:
                peer.connect_task.cancel()
            for fsm in list(peer.machines):
                self._feed(peer, fsm, ManualStop(notify=not graceful, reason=reason))
            for handle in peer.timers.values():
                handle.cancel()
            peer.timers.clear()
        closers = [t for t in self._tasks if t.get_name() == "bgp-close" and not t.done()]
        if closers:
            await asyncio.wait(closers, timeout=5.0)
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5.0)
        self._room.set()
        self._queue.put_nowait(_STOP)

    async def events(self) -> AsyncIterator[EngineEvent]:
        """Session events in order; the iteration ends once ``stop`` has run."""
        while True:
            item = await self._queue.get()
            if not self._room.is_set() and self._queue.qsize() <= self._max_queued // 2:
                self._room.set()
            if item is _STOP:
                self._queue.put_nowait(_STOP)
                return
            yield cast(EngineEvent, item)

    def peer_states(self) -> list[PeerState]:
        """``show bgp summary`` lines, one per configured neighbor."""
        now = self._loop.time() if self._loop is not None else 0.0
        order = list(State)
        out = []
        for address, peer in self._peers.items():
            fsm = max(peer.machines, key=lambda m: order.index(m.state))
            neg = fsm.negotiated
            since = peer.stats.established_at
            out.append(
                PeerState(
                    peer=address,
                    asn=neg.peer_asn if neg is not None else peer.neighbor.asn,
                    state=fsm.state.value,
                    uptime=now - since if since is not None and fsm.established else None,
                    messages_in=peer.stats.messages_in,
                    messages_out=peer.stats.messages_out,
                    prefixes_received=fsm.prefixes_received,
                    flaps=peer.stats.flaps,
                    last_error=peer.stats.last_error,
                    description=peer.neighbor.description,
                    router_id=str(neg.peer_id) if neg is not None else None,
                )
            )
        return out

    def session(self, peer: IPAddress) -> SessionFsm:
        """The primary state machine of ``peer`` (read-only use: state, negotiated values)."""
        return self._peers[peer].fsm

    # -- routes -------------------------------------------------------------------------------------------
    def _select(self, peer: IPAddress | None) -> list[_Peer]:
        return select_peers(self._peers, peer)

    async def advertise(
        self,
        peer: IPAddress | None,
        attributes: PathAttributes,
        next_hop: IPAddress,
        routes: Sequence[Route],
    ) -> None:
        """Announce ``routes`` to ``peer`` (None: every neighbor); kept in the Adj-RIB-Out for replays."""
        for p in self._select(peer):
            for route in routes:
                p.adj_out[_route_key(route)] = (route, attributes, next_hop)
            if p.fsm.established:
                async with p.send_lock:
                    fsm = p.fsm
                    for i in range(0, len(routes), _BATCH):
                        await self._send(p, fsm, fsm.announce(attributes, next_hop, routes[i : i + _BATCH]))

    async def withdraw(self, peer: IPAddress | None, routes: Sequence[Route]) -> None:
        """Withdraw ``routes`` from ``peer`` (None: every neighbor) and from its Adj-RIB-Out."""
        for p in self._select(peer):
            for route in routes:
                p.adj_out.pop(_route_key(route), None)
            if p.fsm.established:
                async with p.send_lock:
                    fsm = p.fsm
                    for i in range(0, len(routes), _BATCH):
                        await self._send(p, fsm, fsm.withdraw(routes[i : i + _BATCH]))

    async def end_of_rib(self, peer: IPAddress | None = None) -> None:
        """In ``EndOfRibMode.MANUAL`` send End-of-RIB for every negotiated family, once per session."""
        if self.end_of_rib_mode is not EndOfRibMode.MANUAL:
            return
        for p in self._select(peer):
            async with p.send_lock:
                await self._send_eor(p, p.fsm)

    async def send_raw(self, peer: IPAddress, data: bytes) -> None:
        """Write raw bytes on an Established session (fault injection for tests and tools)."""
        p = self._peers[peer]
        async with p.send_lock:
            await self._send(p, p.fsm, p.fsm.send_raw(data))

    async def route_refresh(self, peer: IPAddress, family: Family = Family.L2VPN_EVPN) -> None:
        """Ask ``peer`` to send ``family`` again (RFC 2918)."""
        p = self._peers[peer]
        async with p.send_lock:
            await self._send(p, p.fsm, p.fsm.route_refresh(family))

    async def _send(self, peer: _Peer, fsm: SessionFsm, actions: list[FsmAction]) -> None:
        if not actions:
            return
        self._run(peer, fsm, actions)
        conn = peer.conns.get(fsm)
        if conn is not None and not conn.writer.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                await conn.writer.drain()

    async def _send_eor(self, peer: _Peer, fsm: SessionFsm) -> None:
        if peer.eor_sent is fsm or not fsm.established or fsm.negotiated is None:
            return
        peer.eor_sent = fsm
        for family in sorted(fsm.negotiated.families, key=lambda f: f.value):
            await self._send(peer, fsm, fsm.end_of_rib(family))

    async def _replay(self, peer: _Peer, fsm: SessionFsm, family: Family | None = None) -> None:
        """Send the Adj-RIB-Out (of one family, or all) on ``fsm``'s session, grouped by attributes."""
        groups: dict[tuple[PathAttributes, IPAddress], list[Route]] = {}
        for route, attributes, next_hop in list(peer.adj_out.values()):
            if family is None or family_of(route) is family:
                groups.setdefault((attributes, next_hop), []).append(route)
        for (attributes, next_hop), routes in groups.items():
            for i in range(0, len(routes), _BATCH):
                if peer.fsm is not fsm or not fsm.established:
                    return
                await self._send(peer, fsm, fsm.announce(attributes, next_hop, routes[i : i + _BATCH]))

    async def _on_established(self, peer: _Peer, fsm: SessionFsm) -> None:
        """A new session: End-of-RIB is owed again (RFC 4724 §4), whatever state machine carries it.

        In ``AUTO`` mode the engine replays its Adj-RIB-Out then sends End-of-RIB; in ``MANUAL`` mode the
        owner sends the whole table on PeerUp, so a replay here would send everything twice.
        """
        async with peer.send_lock:
            if peer.fsm is not fsm or not fsm.established:
                return
            peer.eor_sent = None
            if self.end_of_rib_mode is EndOfRibMode.AUTO:
                await self._replay(peer, fsm)
                await self._send_eor(peer, fsm)

    async def _on_refresh(self, peer: _Peer, fsm: SessionFsm, family: Family) -> None:
        async with peer.send_lock:
            await self._replay(peer, fsm, family)

    # -- driving the state machines -----------------------------------------------------------------------
    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _feed(self, peer: _Peer, fsm: SessionFsm, event: FsmEvent, now: float | None = None) -> None:
        self._run(peer, fsm, fsm.handle(event, self._now() if now is None else now))

    def _run(self, peer: _Peer, fsm: SessionFsm, actions: list[FsmAction]) -> None:
        """Carry out a machine's actions in order, then resolve collisions and promotions."""
        assert self._loop is not None
        for action in actions:
            if isinstance(action, SendBytes):
                conn = peer.conns.get(fsm)
                if conn is not None and not conn.writer.is_closing():
                    conn.writer.write(action.data)
            elif isinstance(action, CloseConnection):
                conn = peer.conns.pop(fsm, None)
                if conn is not None:
                    self._close(conn)
                elif fsm is peer.fsm and peer.connect_task is not None:
                    peer.connect_task.cancel()
                    peer.connect_task = None
            elif isinstance(action, InitiateConnection):
                if not self._stopping:
                    if peer.connect_task is not None:
                        peer.connect_task.cancel()
                    peer.connect_task = self._spawn(
                        self._connect(peer), f"bgp-connect-{peer.config.peer_address}"
                    )
            elif isinstance(action, StartTimer):
                old = peer.timers.pop((fsm, action.timer), None)
                if old is not None:
                    old.cancel()
                if not self._stopping:
                    peer.timers[(fsm, action.timer)] = self._loop.call_at(
                        action.deadline, self._on_timer, peer, fsm, action.timer, action.deadline
                    )
            elif isinstance(action, StopTimer):
                old = peer.timers.pop((fsm, action.timer), None)
                if old is not None:
                    old.cancel()
            elif isinstance(action, Emit):
                event = action.event
                if isinstance(event, PeerUp):
                    conn = peer.conns.get(fsm)
                    sockname = conn.writer.get_extra_info("sockname") if conn is not None else None
                    if sockname:  # our address on the session: the core's next-hop-self for unicast
                        event = dataclasses.replace(event, local_address=_normalize(sockname[0]))
                    self._spawn(self._on_established(peer, fsm), f"bgp-initial-{peer.config.peer_address}")
                elif isinstance(event, PeerDown) and self.end_of_rib_mode is EndOfRibMode.MANUAL:
                    # The owner sends the whole table on the next PeerUp: what it withdraws meanwhile must
                    # not linger here to be replayed by a route refresh.
                    peer.adj_out.clear()
                self._queue.put_nowait(event)
                if self._queue.qsize() >= self._max_queued:
                    self._room.clear()
            elif isinstance(action, ResendRoutes):
                self._spawn(
                    self._on_refresh(peer, fsm, action.family), f"bgp-refresh-{peer.config.peer_address}"
                )
        self._after(peer, fsm)

    def _after(self, peer: _Peer, fsm: SessionFsm) -> None:
        """Collision resolution (RFC 4271 §6.8) and housekeeping of secondary machines."""
        if fsm.state is State.OPEN_CONFIRM and fsm.negotiated is not None:
            for other in peer.machines:
                if other is fsm or other.state not in (State.OPEN_CONFIRM, State.ESTABLISHED):
                    continue
                if other.state is State.ESTABLISHED:
                    loser = fsm
                else:
                    keep = collision_winner(self.underlay.router_id, fsm.negotiated.peer_id)
                    loser = other if fsm.side is keep else fsm
                log.info(
                    "%s: connection collision, closing the %s connection",
                    peer.config.peer_address,
                    loser.side.value if loser.side else "?",
                )
                self._feed(peer, loser, CollisionLost())
                break
            if fsm.state is State.OPEN_CONFIRM and fsm.buffered:
                self._feed(peer, fsm, BytesReceived(b""))  # resume what arrived with the OPEN
            return
        if fsm.state is State.ESTABLISHED and fsm is not peer.fsm:
            # A second connection got there first: it is the session now; the old primary either loses the
            # collision when it reaches OpenConfirm or, without a connection, is dropped.
            old = peer.fsm
            peer.others.remove(fsm)
            peer.fsm = fsm
            if old.state in (State.IDLE, State.CONNECT, State.ACTIVE):
                old.handle(ManualStop(notify=False), self._now())
                self._forget(peer, old)
                if peer.connect_task is not None:
                    peer.connect_task.cancel()
                    peer.connect_task = None
            else:
                peer.others.append(old)
            return
        if fsm.state is not State.IDLE:
            return
        if fsm is not peer.fsm:
            self._forget(peer, fsm)
            return
        live = [m for m in peer.others if m.state is not State.IDLE]
        if live and not self._stopping:
            # The primary lost a collision or failed while another connection is opening: promote it.
            self._forget(peer, fsm)
            peer.fsm = live[0]
            peer.others.remove(live[0])

    def _forget(self, peer: _Peer, fsm: SessionFsm) -> None:
        if fsm in peer.others:
            peer.others.remove(fsm)
        for key in [k for k in peer.timers if k[0] is fsm]:
            peer.timers.pop(key).cancel()
        conn = peer.conns.pop(fsm, None)
        if conn is not None:
            self._close(conn)

    def _on_timer(self, peer: _Peer, fsm: SessionFsm, timer: Timer, deadline: float) -> None:
        peer.timers.pop((fsm, timer), None)
        if self._stopping:
            return
        self._feed(peer, fsm, TimerExpired(timer), max(self._now(), deadline))

    def _close(self, conn: _Conn) -> None:
        writer = conn.writer
        if not writer.is_closing():
            writer.close()
        self._spawn(_wait_closed(writer), "bgp-close")

    def _attach(
        self, peer: _Peer, fsm: SessionFsm, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = _Conn(reader, writer)
        peer.conns[fsm] = conn
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.task = self._spawn(self._read_loop(peer, fsm, conn), f"bgp-read-{peer.config.peer_address}")

    def _new_connection(
        self, peer: _Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, outbound: bool
    ) -> None:
        """Hand a TCP connection to the primary machine, or to a new one for collision resolution."""
        fsm = peer.fsm
        if self._stopping:
            writer.close()
            return
        neg = fsm.negotiated
        if fsm.established and not outbound and neg is not None and neg.peer_graceful_restart is not None:
            # RFC 4724 §4.2: a new connection from an established peer that can restart gracefully.
            self._feed(peer, fsm, TcpFailed("peer reconnected (graceful restart)"))
            fsm = peer.fsm
        if fsm.state in (State.IDLE, State.CONNECT, State.ACTIVE):
            if peer.connect_task is not None and not outbound:
                peer.connect_task.cancel()
                peer.connect_task = None
            self._attach(peer, fsm, reader, writer)
            self._feed(peer, fsm, TcpConnected(outbound))
            return
        second = self._new_fsm(peer.config, peer.stats)
        peer.others.append(second)
        second.handle(ManualStart(passive=True), self._now())
        self._attach(peer, second, reader, writer)
        self._feed(peer, second, TcpConnected(outbound))

    async def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("peername")[0]
        address = _normalize(host)
        peer = self._peers.get(address)
        if peer is None or self._stopping:
            log.warning(
                "refusing BGP connection from %s: %s",
                address,
                "not a configured neighbor" if peer is None else "stopping",
            )
            writer.close()
            return
        log.info("%s: accepted connection", address)
        self._new_connection(peer, reader, writer, outbound=False)

    async def _connect(self, peer: _Peer) -> None:
        """One outgoing attempt (RFC 4271 §8.2.2 Connect); the result goes to the primary machine."""
        address = peer.config.peer_address
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        vrf = peer.neighbor.vrf
        try:
            sock = self._socket(vrf, family)
        except OSError as exc:
            log.warning("%s: no socket in VRF %s: %s", address, vrf, exc)
            if peer.connect_task is asyncio.current_task():
                peer.connect_task = None
                if peer.fsm.state is State.CONNECT:
                    self._feed(peer, peer.fsm, TcpFailed(str(exc)))
            return
        try:
            sock.setblocking(False)
            if peer.neighbor.password:
                set_md5(sock, address, peer.neighbor.password)
            if (
                vrf is None
                and self.local_address is not None
                and self.local_address.version == address.version
            ):
                sock.bind((str(self.local_address), 0))
            assert self._loop is not None
            await asyncio.wait_for(
                self._loop.sock_connect(sock, (str(address), peer.neighbor.port)), peer.config.connect_timeout
            )
            reader, writer = await asyncio.open_connection(sock=sock)
        except asyncio.CancelledError:
            sock.close()
            raise
        except (OSError, TimeoutError) as exc:
            sock.close()
            if peer.connect_task is asyncio.current_task():
                peer.connect_task = None
                if peer.fsm.state is State.CONNECT:
                    self._feed(peer, peer.fsm, TcpFailed(str(exc) or type(exc).__name__))
            return
        if peer.connect_task is asyncio.current_task():
            peer.connect_task = None
        log.info("%s: connected", address)
        self._new_connection(peer, reader, writer, outbound=True)

    async def _read_loop(self, peer: _Peer, fsm: SessionFsm, conn: _Conn) -> None:
        reason = "connection closed by peer"
        try:
            while True:
                if not self._room.is_set():
                    await self._room.wait()  # the owner is behind on events(): let TCP push back
                data = await conn.reader.read(65536)
                if peer.conns.get(fsm) is not conn:
                    return
                if not data:
                    break
                self._feed(peer, fsm, BytesReceived(data))
        except (ConnectionError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
        if peer.conns.get(fsm) is conn:
            self._feed(peer, fsm, TcpFailed(reason))
            if peer.conns.get(fsm) is conn:  # the machine did not close it: do it now
                peer.conns.pop(fsm)
                self._close(conn)


def _conforms(engine: NativeEngine) -> SessionEngine:
    """Static check (mypy) that NativeEngine implements the SessionEngine protocol."""
    return engine


__all__ = ["NativeEngine", "md5sig", "set_md5"]
