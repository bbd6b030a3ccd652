"""The ``exabgp`` session engine: ExaBGP 5.0.15 as a subprocess we start, configure, watch and stop (DESIGN.md §2, §7).

Processes (one set per engine; no global state)::

    engine (asyncio) ── starts ──► python -m speaker.exabgp_launcher CONFIG   (ExaBGP + our API commands)
        ▲  unix socket                         │ runs (ExaBGP "process")
        └──────────────────────────  python -m speaker.exabgp_launcher --relay SOCKET

One such set per network namespace: the engine's own (or ``netns``) for the default VRF's neighbors, and one
per namespace of ``vrf_namespaces`` holding neighbors of those VRFs (host sessions); their events are merged
into one stream. Everything lives in a private temporary directory (configurations, sockets), removed on
``stop``. ExaBGP's own log lines (its stdout/stderr) go to the ``speaker.exabgp`` logger.

Sending: the engine keeps a per-peer Adj-RIB-Out of *our encoded bytes* (NLRI and attributes) and writes
``evpn-announce``/``evpn-withdraw`` (EVPN) and ``ipv4-``/``ipv6-announce``/``-withdraw`` (unicast)
commands carrying them; the launcher turns them into ExaBGP EVPN / INET NLRI objects and ``GenericAttribute``
objects, so every byte (both labels, ESI, Router's MAC, Default Gateway, ESI Label, PMSI; ORIGIN, AS_PATH,
NEXT_HOP, MED, LOCAL_PREF, communities) is what our codec built, and a withdraw repeats exactly the NLRI bytes
that were announced,
whatever happened in between (session resets, ExaBGP restarts). ExaBGP keys its RIB on our route key and keeps
it across session resets (``adj-rib-out true``, which ExaBGP forces with route refresh anyway), so it sends the
table itself when a session comes up; the engine replays its own table into every new ExaBGP process (and a
respawned API process) before reading anything from it. End-of-RIB is ours (``manual-eor``): in
``EndOfRibMode.AUTO`` the engine sends it on PeerUp, after everything ExaBGP already holds.

Receiving: ExaBGP reports every received message as raw bytes (``api { receive { packets; ... } }``); the
engine decodes them with our ``MessageDecoder`` (RFC 7606 included), so nothing ExaBGP's own parser drops is
lost. OPENs give PeerUp's details (our address on the session from ExaBGP's ``local-address``),
NOTIFICATIONs the PeerDown reason.

If ExaBGP dies the engine reports its sessions down and starts it again (backoff ``initial_backoff`` doubling
to 30 s). Limitations against the native engine: ``speaker/EXABGP.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from evpn.codec.attributes import PathAttributes
from evpn.codec.capabilities import FourOctetAs, GracefulRestart, Multiprotocol
from evpn.codec.evpn_nlri import IPAddress
from evpn.codec.families import Family
from evpn.codec.messages import (
    DecodeOptions,
    MessageDecoder,
    NotificationMessage,
    Open,
    Route,
    Update,
    decode_message,
    encode_route,
    family_of,
)
from evpn.config import GracefulRestartConfig, Neighbor, PeerType, Underlay
from evpn.errors import MessageError, Rfc7606Action, describe_notification
from evpn.events import EndOfRib, PeerDown, PeerUp, RoutesReceived
from speaker.engine import EndOfRibMode, EngineEvent, PeerState, SessionEngine, select_peers
from speaker.exabgp_launcher import format_command

log = logging.getLogger(__name__)
exabgp_log = logging.getLogger("speaker.exabgp")

PROCESS_NAME = "evpn-speaker"
_CHUNK = 1000  # routes per command line
_LINE_LIMIT = 1 << 20  # bytes per line read from ExaBGP or its API process
_MAX_BACKOFF = 30.0
_STOP = object()
_FAMILY_CONFIG = {
    Family.L2VPN_EVPN: "l2vpn evpn",
    Family.IPV4_UNICAST: "ipv4 unicast",
    Family.IPV6_UNICAST: "ipv6 unicast",
}
_CATEGORIES = {1: "open", 2: "update", 3: "notification", 4: "keepalive", 5: "refresh"}


_VERB = {Family.L2VPN_EVPN: "evpn", Family.IPV4_UNICAST: "ipv4", Family.IPV6_UNICAST: "ipv6"}


class VrfNamespaceError(ValueError):
    """A neighbor lives in a VRF to which ``vrf_namespaces`` gives no network namespace (raised by ``start``).

    The exabgp engine runs one ExaBGP per network namespace (the ``netns`` VRF backend); it cannot serve a
    VRF *device*, because ExaBGP 5.0.15 cannot bind its sockets to one (speaker/EXABGP.md).
    """


def route_token(route: Route) -> str:
    """A stable opaque token for a route key (ExaBGP's RIB index of the route; labels and ESI excluded)."""
    key = route if isinstance(route, ipaddress.IPv4Network | ipaddress.IPv6Network) else route.key
    return hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest()


def _route_key(route: Route) -> object:
    if isinstance(route, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return route
    return route.key


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _local_asn(underlay: Underlay, neighbor: Neighbor) -> int:
    """Our ASN on the session with ``neighbor`` (a host session has its own)."""
    return neighbor.local_asn if neighbor.local_asn is not None else underlay.asn


def _peer_as(underlay: Underlay, neighbor: Neighbor) -> str:
    if neighbor.asn is not None:
        return str(neighbor.asn)
    if neighbor.peer_type is PeerType.INTERNAL:
        return str(_local_asn(underlay, neighbor))
    return "auto"


def generate_config(
    underlay: Underlay,
    *,
    relay_command: str,
    local_address: IPAddress | None,
    graceful_restart: GracefulRestartConfig,
    neighbors: Sequence[Neighbor] | None = None,
    local_addresses: Mapping[IPAddress, IPAddress] | None = None,
) -> str:
    """ExaBGP 5 configuration for ``neighbors`` (default: every neighbor of ``underlay``): API process,
    families, timers, MD5, GR, per-neighbor ``local-as``.

    ``local-address`` is ``local_address`` where its IP version fits the neighbor, else the neighbor's entry in
    ``local_addresses`` (ExaBGP 5.0.15 accepts a neighbor's connection only when it has a local-address).
    """
    lines = [
        f"process {PROCESS_NAME} {{",
        f"    run {relay_command};",
        "    encoder json;",
        "}",
        "",
    ]
    for nb in underlay.neighbors if neighbors is None else neighbors:
        families = [f for f in nb.families if f in _FAMILY_CONFIG]
        hold = nb.timers.hold_time
        lines += [
            f"neighbor {nb.address} {{",
            f"    router-id {underlay.router_id};",
            f"    local-as {_local_asn(underlay, nb)};",
            f"    peer-as {_peer_as(underlay, nb)};",
            f"    hold-time {hold};",
            f"    passive {'true' if nb.passive else 'false'};",
            f"    connect {nb.port};",
            "    group-updates true;",
            "    adj-rib-out true;",
            "    manual-eor true;",
        ]
        if local_address is not None and local_address.version == nb.address.version:
            lines.append(f"    local-address {local_address};")
        elif local_addresses and nb.address in local_addresses:
            lines.append(f"    local-address {local_addresses[nb.address]};")
        if nb.description:
            lines.append(f"    description {_quote(nb.description)};")
        if nb.password:
            lines.append(f"    md5-password {_quote(nb.password)};")
        if nb.ebgp_multihop is not None:
            lines.append(f"    outgoing-ttl {nb.ebgp_multihop};")
        lines += ["    capability {", "        asn4 enable;", "        route-refresh enable;"]
        if graceful_restart.enabled:
            lines.append(f"        graceful-restart {graceful_restart.restart_time};")
        lines += ["    }", "    family {"]
        lines += [f"        {_FAMILY_CONFIG[f]};" for f in families]
        lines += [
            "    }",
            "    api {",
            f"        processes [ {PROCESS_NAME} ];",
            "        neighbor-changes;",
            "        receive { packets; open; update; notification; keepalive; refresh; }",
            "        send { packets; open; update; notification; keepalive; refresh; }",
            "    }",
            "}",
            "",
        ]
    return "\n".join(lines)


def exabgp_environment(
    *, listen: bool, listen_address: IPAddress | None, listen_port: int, project_root: str
) -> dict[str, str]:
    """Environment of the ExaBGP process (ExaBGP 5 reads ``exabgp.<section>.<option>``)."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = project_root + (os.pathsep + path if path else "")
    env.update(
        {
            "exabgp.api.ack": "false",
            "exabgp.api.encoder": "json",
            "exabgp.api.cli": "false",
            "exabgp.api.respawn": "true",
            "exabgp.daemon.daemonize": "false",
            "exabgp.daemon.drop": "false",
            "exabgp.daemon.pid": "",
            "exabgp.daemon.user": "root" if os.geteuid() == 0 else (os.environ.get("USER") or "nobody"),
            "exabgp.log.destination": "stdout",
            "exabgp.log.level": "INFO",
            "exabgp.log.short": "true",
            "exabgp.tcp.port": str(listen_port),
            "exabgp.tcp.bind": (str(listen_address) if listen_address is not None else "0.0.0.0 ::")
            if listen
            else "",
            "exabgp.tcp.attempts": "0",
            "exabgp.cache.attributes": "false",
        }
    )
    return env


async def route_source(address: IPAddress, netns: str | None = None) -> IPAddress | None:
    """The kernel's preferred source address towards ``address`` in ``netns`` (None: ours), or None.

    In our own namespace a connected UDP socket asks the kernel (no packet is sent); in another one
    ``ip -n NETNS route get`` does.
    """
    if netns is None:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((str(address), 179))
                return _normalize(str(sock.getsockname()[0]))
        except OSError:
            return None
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip",
            "-n",
            netns,
            "-j",
            "route",
            "get",
            str(address),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 5.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return None
    if proc.returncode != 0:
        return None
    try:
        return _normalize(str(json.loads(out)[0]["prefsrc"]))
    except (ValueError, LookupError, TypeError):
        return None


def _normalize(text: str) -> IPAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(eq=False, slots=True)
class _Batch:
    """Announcements for one peer of one family with one next hop and attribute set, not yet written.

    The owner hands routes over one ``advertise`` call at a time (the speaker: one call per learned MAC); one
    ExaBGP command per call costs ExaBGP a reactor turn each (and a 10 ms sleep whenever its API pipe is
    drained with commands still queued). Consecutive calls that share peer, family, next hop and attributes
    therefore become one ``evpn-announce`` (``ipv4-announce``, ``ipv6-announce``) of up to ``_CHUNK`` routes, written when the
    batch is full, before any other command (order is kept), or once the caller yields to the event loop.
    """

    peer: _Peer
    head: tuple[IPAddress, Family, str, bytes]  # peer, family, next hop, encoded attributes
    routes: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Instance:
    """One ExaBGP process with its API relay: the neighbors of one network namespace."""

    number: int
    netns: str | None
    main: bool  # the engine's own namespace (``netns``): ``listen_address`` and ``local_address`` apply
    peers: dict[IPAddress, _Peer] = field(default_factory=dict)
    server: asyncio.AbstractServer | None = None
    relay: asyncio.StreamWriter | None = None
    relay_ready: asyncio.Event = field(default_factory=asyncio.Event)
    proc: asyncio.subprocess.Process | None = None
    listening: bool = False
    restarts: int = 0

    @property
    def name(self) -> str:
        return "ExaBGP" if self.netns is None else f"ExaBGP (netns {self.netns})"


@dataclass(eq=False, slots=True)
class _Peer:
    neighbor: Neighbor
    instance: _Instance | None = None
    local_address: IPAddress | None = None  # configured, or the kernel's source towards the peer
    adj_out: dict[object, tuple[Route, PathAttributes, IPAddress, str, bytes]] = field(default_factory=dict)
    established: bool = False
    connected: bool = False
    remote_open: Open | None = None
    families: frozenset[Family] = frozenset()
    ibgp: bool = True
    decoder: MessageDecoder = field(default_factory=MessageDecoder)
    received: set[object] = field(default_factory=set)
    messages_in: int = 0
    messages_out: int = 0
    flaps: int = 0
    last_error: str = ""
    up_since: float | None = None
    notification: str | None = None
    eor_sent: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ExaBgpEngine:
    """ExaBGP-backed engine for the neighbors of ``underlay`` (implements ``SessionEngine``).

    Same constructor as ``NativeEngine``. ``listen_port`` 0 picks a free port before ExaBGP starts (ExaBGP
    cannot report one it picked). ``python`` is the interpreter that runs the launcher (ExaBGP 5.0.15 must
    be importable there; default: ours). ``netns`` runs ExaBGP in that network namespace (``ip netns exec``);
    the API socket is a filesystem Unix socket, so the engine itself may stay where it is.

    Neighbors with a ``vrf`` (host sessions) get their own ExaBGP, one per network namespace that
    ``vrf_namespaces`` (VRF name → namespace name, the netns VRF backend) gives their VRF; it listens on
    ``listen_port`` on every address of that namespace. ``start`` raises ``VrfNamespaceError`` for a neighbor
    whose VRF has no namespace there.
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
        python: str | None = None,
        group_updates: bool = True,
        start_timeout: float = 15.0,
        netns: str | None = None,
        vrf_namespaces: Mapping[str, str] | None = None,
    ) -> None:
        self.underlay = underlay
        self.listen_address = ipaddress.ip_address(listen_address) if listen_address is not None else None
        self.listen_port = listen_port
        self._listen = listen
        self.local_address = (
            ipaddress.ip_address(local_address) if local_address is not None else self.listen_address
        )
        self.graceful_restart = graceful_restart if graceful_restart is not None else GracefulRestartConfig()
        # ExaBGP 5 sets neither the Restart State nor the Forwarding State bit from configuration: see EXABGP.md.
        self.restarting = restarting
        self.forwarding_preserved = forwarding_preserved
        self.end_of_rib_mode = end_of_rib_mode
        self.initial_backoff = initial_backoff
        self.connect_timeout = connect_timeout
        self.python = python or sys.executable
        self.group_updates = group_updates
        self.start_timeout = start_timeout
        self.netns = netns
        self.vrf_namespaces: dict[str, str] = dict(vrf_namespaces or {})
        self._peers: dict[IPAddress, _Peer] = {nb.address: _Peer(nb) for nb in underlay.neighbors}
        main = _Instance(0, netns, main=True)
        self._instances: list[_Instance] = [main]
        by_netns: dict[str | None, _Instance] = {netns: main}
        self._unmapped: list[_Peer] = []
        for p in self._peers.values():
            vrf = p.neighbor.vrf
            if vrf is not None and vrf not in self.vrf_namespaces:
                self._unmapped.append(p)
                continue
            ns = netns if vrf is None else self.vrf_namespaces[vrf]
            inst = by_netns.get(ns)
            if inst is None:
                inst = by_netns[ns] = _Instance(len(self._instances), ns, main=False)
                self._instances.append(inst)
            inst.peers[p.neighbor.address] = p
            p.instance = inst
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._tmp: Path | None = None
        self._batch: _Batch | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._encoded: dict[tuple[PathAttributes, IPAddress | None], bytes] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stopping = False
        self._stopped = False

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Write the configurations, open the API sockets, start ExaBGP (one per namespace; kept running).

        Raises ``VrfNamespaceError`` (nothing started) when a neighbor's VRF has no network namespace.
        """
        if self._started:
            return
        if self._unmapped:
            nb = self._unmapped[0].neighbor
            raise VrfNamespaceError(
                f"neighbor {nb.address} is in VRF {nb.vrf!r}, which has no network namespace in "
                f"vrf_namespaces {sorted(self.vrf_namespaces)}: the exabgp engine runs ExaBGP inside each "
                "VRF's namespace (netns VRF backend); ExaBGP cannot bind to a VRF device (speaker/EXABGP.md)"
            )
        self._started = True
        self._loop = asyncio.get_running_loop()
        if self._listen and self.listen_port == 0:
            self.listen_port = _free_port(self.listen_address)
        self._tmp = Path(tempfile.mkdtemp(prefix="evpn-exabgp-"))
        for inst in self._instances:
            sock = self._tmp / f"api-{inst.number}.sock"
            # One JSON line carries a whole message in hex: up to ~131 kB with extended messages (RFC 8654).
            inst.server = await asyncio.start_unix_server(
                functools.partial(self._on_relay, inst), path=str(sock), limit=_LINE_LIMIT
            )
            await self._spawn_exabgp(inst)
            self._spawn(self._supervise(inst), f"exabgp-supervise-{inst.number}")
        # Return once every ExaBGP accepts connections (and its API process is attached), as NativeEngine does.
        waits: list[Awaitable[object]] = [inst.relay_ready.wait() for inst in self._instances]
        waits += [self._wait_listening(inst) for inst in self._instances if inst.listening]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self.start_timeout)
        except TimeoutError:
            log.error("ExaBGP not ready after %.0f s (see the speaker.exabgp log)", self.start_timeout)

    async def _local_addresses(self, inst: _Instance) -> dict[IPAddress, IPAddress]:
        """Our address towards each neighbor of ``inst`` that ``local_address`` does not fit (other IP
        version, a VRF namespace): the kernel's preferred source there, looked up at each ExaBGP start."""
        out: dict[IPAddress, IPAddress] = {}
        fixed = self.local_address if inst.main else None
        for p in inst.peers.values():
            address = p.neighbor.address
            if fixed is not None and fixed.version == address.version:
                p.local_address = fixed
                continue
            source = await route_source(address, inst.netns)
            p.local_address = source
            if source is None:
                log.warning(
                    "%s: no route to the neighbor in %s: ExaBGP gets no local-address, so it connects but "
                    "cannot accept the neighbor's connections until its own connection succeeded once",
                    address,
                    "our namespace" if inst.netns is None else f"namespace {inst.netns}",
                )
            else:
                out[address] = source
        return out

    async def _spawn_exabgp(self, inst: _Instance) -> None:
        assert self._tmp is not None
        sock = self._tmp / f"api-{inst.number}.sock"
        config = generate_config(
            self.underlay,
            relay_command=f"{self.python} -m speaker.exabgp_launcher --relay {sock}",
            local_address=self.local_address if inst.main else None,
            graceful_restart=self.graceful_restart,
            neighbors=[p.neighbor for p in inst.peers.values()],
            local_addresses=await self._local_addresses(inst),
        )
        path = self._tmp / f"exabgp-{inst.number}.conf"
        path.write_text(config)
        env = exabgp_environment(
            listen=self._listen,
            listen_address=self.listen_address if inst.main else None,
            listen_port=self.listen_port,
            project_root=str(Path(__file__).resolve().parent.parent),
        )
        if not inst.main and self._listen:
            # every address of the VRF's namespace, of the IP versions its neighbors use
            versions = {p.neighbor.address.version for p in inst.peers.values()}
            env["exabgp.tcp.bind"] = " ".join(w for v, w in ((4, "0.0.0.0"), (6, "::")) if v in versions)
        inst.listening = bool(env["exabgp.tcp.bind"])
        env["EVPN_SPEAKER_EXABGP_GROUP"] = "1" if self.group_updates else "0"
        prefix = ["ip", "netns", "exec", inst.netns] if inst.netns else []  # ``ip netns exec`` execs
        inst.proc = await asyncio.create_subprocess_exec(
            *prefix,
            self.python,
            "-m",
            "speaker.exabgp_launcher",
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=str(self._tmp),
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        log.info("started %s (pid %d) for %d neighbor(s)", inst.name, inst.proc.pid, len(inst.peers))
        assert inst.proc.stdout is not None
        self._spawn(self._pump_log(inst.proc.stdout), f"exabgp-log-{inst.number}")

    async def _pump_log(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the limit: keep draining, or ExaBGP blocks on a full pipe
                line = await stream.read(_LINE_LIMIT)
            if not line:
                return
            exabgp_log.info("%s", line.decode(errors="replace").rstrip()[:4000])

    async def _supervise(self, inst: _Instance) -> None:
        """Restart ``inst``'s ExaBGP whenever it exits while the engine runs."""
        backoff = self.initial_backoff
        while not self._stopping:
            proc = inst.proc
            assert proc is not None
            rc = await proc.wait()
            if self._stopping:
                return
            log.error("%s exited (code %s); restarting in %.1f s", inst.name, rc, backoff)
            inst.relay_ready.clear()
            inst.relay = None
            for peer in inst.peers.values():
                self._session_down(peer, f"ExaBGP exited with code {rc}", graceful=False)
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            backoff = min(backoff * 2, _MAX_BACKOFF)
            inst.restarts += 1
            await self._spawn_exabgp(inst)

    async def stop(self, graceful: bool = False) -> None:
        """Cease every session (or close silently with ``graceful``), stop ExaBGP, end ``events()``."""
        if self._stopping:
            return
        self._stopping = True
        running = [i for i in self._instances if i.proc is not None and i.proc.returncode is None]
        if not graceful:
            # Every neighbor, not only the sessions up: ``evpn-cease`` also keeps ExaBGP from connecting (or
            # accepting a connection) again until SIGTERM, which would close such a session silently.
            ceased = [p for inst in running if inst.relay is not None for p in inst.peers.values()]
            up = [p for p in ceased if p.connected or p.established]
            if up:
                log.info("administrative shutdown of %d session(s)", len(up))
            for peer in ceased:
                await self._command(peer, f"neighbor {peer.neighbor.address} evpn-cease")
            if up:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._all_down(up), 3.0)
        for inst in running:
            assert inst.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(inst.proc.pid, signal.SIGTERM)
        for inst in running:
            assert inst.proc is not None
            try:
                await asyncio.wait_for(inst.proc.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(inst.proc.pid, signal.SIGKILL)
                await inst.proc.wait()
        for inst in self._instances:
            if inst.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(inst.proc.pid, signal.SIGKILL)  # the relay and anything else in its group
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._batch = None
        reason = "engine stopped (graceful restart)" if graceful else "administrative shutdown"
        for peer in self._peers.values():
            self._session_down(peer, reason, graceful=graceful)
        for inst in self._instances:
            if inst.relay is not None:
                inst.relay.close()
            if inst.server is not None:
                inst.server.close()
        tasks = [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._stopped = True
        self._queue.put_nowait(_STOP)

    async def _wait_listening(self, inst: _Instance) -> None:
        """Until a socket listens on our port in ``inst``'s namespace (ExaBGP logs it only at debug level)."""
        while inst.proc is not None and not _listening(self.listen_port, inst.proc.pid):
            if inst.proc.returncode is not None:
                return
            await asyncio.sleep(0.02)

    async def _all_down(self, peers: list[_Peer]) -> None:
        while any(p.established or p.connected for p in peers):
            await asyncio.sleep(0.02)

    async def events(self) -> AsyncIterator[EngineEvent]:
        """Session events in order (of every ExaBGP process); the iteration ends once ``stop`` has run."""
        while True:
            item = await self._queue.get()
            if item is _STOP:
                self._queue.put_nowait(_STOP)
                return
            yield cast(EngineEvent, item)

    def peer_states(self) -> list[PeerState]:
        """``show bgp summary`` lines, one per configured neighbor."""
        now = self._now()
        out = []
        for address, peer in self._peers.items():
            if peer.established:
                state = "Established"
            elif peer.connected:
                state = "OpenSent"
            elif self._stopped or not self._started:
                state = "Idle"
            else:
                state = "Active"
            remote = peer.remote_open
            out.append(
                PeerState(
                    peer=address,
                    asn=_open_asn(remote) if remote is not None else peer.neighbor.asn,
                    state=state,
                    uptime=now - peer.up_since if peer.established and peer.up_since is not None else None,
                    messages_in=peer.messages_in,
                    messages_out=peer.messages_out,
                    prefixes_received=len(peer.received),
                    flaps=peer.flaps,
                    last_error=peer.last_error,
                    description=peer.neighbor.description,
                    router_id=str(remote.bgp_id) if remote is not None else None,
                )
            )
        return out

    @property
    def pid(self) -> int | None:
        """The process id of the ExaBGP of the engine's own namespace (None before ``start``)."""
        proc = self._instances[0].proc
        return proc.pid if proc is not None else None

    @property
    def pids(self) -> dict[str | None, int]:
        """Every running ExaBGP's process id, by network namespace (None: ours)."""
        return {i.netns: i.proc.pid for i in self._instances if i.proc is not None}

    @property
    def restarts(self) -> int:
        """How many times an ExaBGP process was started again after it exited."""
        return sum(i.restarts for i in self._instances)

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
        """Announce EVPN, IPv4 and IPv6 unicast ``routes`` (our bytes); kept for replays and withdraws.

        As in ``NativeEngine``: IPv4 unicast takes ``next_hop`` as its NEXT_HOP attribute (an IPv4 address),
        the other families carry it in MP_REACH_NLRI; routes of families a session did not negotiate stay in
        the Adj-RIB-Out without being sent.
        """
        by_family: dict[Family, list[Route]] = {}
        for route in routes:
            by_family.setdefault(family_of(route), []).append(route)
        if Family.IPV4_UNICAST in by_family and not isinstance(next_hop, ipaddress.IPv4Address):
            raise ValueError("IPv4 unicast needs an IPv4 next hop")
        targets = self._select(peer)
        for family, members in by_family.items():
            entries = [(r, attributes, next_hop, route_token(r), encode_route(r)) for r in members]
            for p in targets:
                async with p.lock:
                    for entry in entries:
                        p.adj_out[_route_key(entry[0])] = entry
                    await self._announce(p, family, attributes, next_hop, [(e[3], e[4]) for e in entries])

    async def withdraw(self, peer: IPAddress | None, routes: Sequence[Route]) -> None:
        """Withdraw ``routes`` by key, repeating the exact NLRI bytes that were announced."""
        for p in self._select(peer):
            async with p.lock:
                by_family: dict[Family, list[tuple[str, bytes]]] = {}
                for route in routes:
                    entry = p.adj_out.pop(_route_key(route), None)
                    if entry is not None:
                        by_family.setdefault(family_of(entry[0]), []).append((entry[3], entry[4]))
                for family, sent in by_family.items():
                    verb = f"{_VERB[family]}-withdraw"
                    for i in range(0, len(sent), _CHUNK):
                        line = format_command(verb, str(p.neighbor.address), routes=sent[i : i + _CHUNK])
                        await self._command(p, line)

    async def end_of_rib(self, peer: IPAddress | None = None) -> None:
        """In ``EndOfRibMode.MANUAL`` send End-of-RIB for every negotiated family once per session."""
        if self.end_of_rib_mode is not EndOfRibMode.MANUAL:
            return
        for p in self._select(peer):
            async with p.lock:
                await self._send_eor(p)

    def _encoded_attributes(self, attributes: PathAttributes, v4_next_hop: IPAddress | None) -> bytes:
        """Our attribute bytes: with NEXT_HOP for IPv4 unicast only (RFC 4760 §3), as ``UpdatePacker``."""
        key = (attributes, v4_next_hop)
        raw = self._encoded.get(key)
        if raw is None:
            if len(self._encoded) >= 256:
                self._encoded.clear()
            if attributes.next_hop != v4_next_hop:
                assert v4_next_hop is None or isinstance(v4_next_hop, ipaddress.IPv4Address)
                attributes = dataclasses.replace(attributes, next_hop=v4_next_hop)
            # AS_PATH with 4-octet ASNs: peers must support RFC 6793 (EXABGP.md)
            raw = self._encoded[key] = attributes.encode(True)
        return raw

    async def _announce(
        self,
        p: _Peer,
        family: Family,
        attributes: PathAttributes,
        next_hop: IPAddress,
        routes: list[tuple[str, bytes]],
    ) -> None:
        """Queue ``routes`` for one announce command (see ``_Batch``); full commands leave now."""
        raw = self._encoded_attributes(attributes, next_hop if family is Family.IPV4_UNICAST else None)
        head = (p.neighbor.address, family, str(next_hop), raw)
        batch = self._batch
        if batch is not None and batch.head != head:
            self._flush_batch()
            batch = None
        if batch is None:
            batch = self._batch = _Batch(p, head)
        wrote = False
        for entry in routes:
            batch.routes.append(entry)
            if len(batch.routes) >= _CHUNK:
                self._flush_batch()
                batch = self._batch = _Batch(p, head)
                wrote = True
        if not batch.routes:
            self._batch = None
        elif self._flush_handle is None:
            # the rest leaves once the caller yields to the loop (after its run of advertise calls)
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_batch)
        if wrote:
            await self._drain(p.instance)

    def _flush_batch(self) -> None:
        """Write the queued announcements (always before any other command: order is kept)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._batch = self._batch, None
        if batch is None or not batch.routes:
            return
        peer, family, next_hop, raw = batch.head
        line = format_command(
            f"{_VERB[family]}-announce", str(peer), next_hop=next_hop, attributes=raw, routes=batch.routes
        )
        self._write(batch.peer.instance, line)

    async def _send_eor(self, p: _Peer) -> None:
        if p.eor_sent or not p.established:
            return
        p.eor_sent = True
        for family in sorted(p.families, key=lambda f: f.value):
            name = _FAMILY_CONFIG.get(family)
            if name is not None:
                await self._command(p, f"neighbor {p.neighbor.address} announce eor {name}")

    async def _replay(self, p: _Peer) -> None:
        """Give a (new) ExaBGP process the whole Adj-RIB-Out of ``p``, grouped by attributes and next hop."""
        async with p.lock:
            groups: dict[tuple[Family, PathAttributes, IPAddress], list[tuple[str, bytes]]] = {}
            for route, attributes, next_hop, token, nlri in p.adj_out.values():
                groups.setdefault((family_of(route), attributes, next_hop), []).append((token, nlri))
            for (family, attributes, next_hop), entries in groups.items():
                await self._announce(p, family, attributes, next_hop, entries)

    async def _on_up(self, p: _Peer) -> None:
        """ExaBGP sends its Adj-RIB-Out by itself when a session comes up; End-of-RIB follows in AUTO mode."""
        if self.end_of_rib_mode is EndOfRibMode.AUTO:
            async with p.lock:
                await self._send_eor(p)

    async def _command(self, p: _Peer, line: str) -> None:
        self._flush_batch()
        self._write(p.instance, line)
        await self._drain(p.instance)

    def _write(self, inst: _Instance | None, line: str) -> None:
        writer = inst.relay if inst is not None else None
        if writer is None or writer.is_closing():
            log.debug("ExaBGP API not connected; dropped: %s", line[:80])
            return
        writer.write(line.encode() + b"\n")

    async def _drain(self, inst: _Instance | None) -> None:
        writer = inst.relay if inst is not None else None
        if writer is None or writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()

    # -- the API relay ------------------------------------------------------------------------------------
    async def _on_relay(
        self, inst: _Instance, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._stopping:
            writer.close()
            return
        hello = await reader.readline()
        log.info("%s API process connected (%s)", inst.name, hello.decode(errors="replace").strip())
        old = inst.relay
        inst.relay = writer
        if old is not None:
            old.close()
        # A new ExaBGP (or a respawned API process that may have lost commands): hand it the whole table
        # before reading anything, so it is in ExaBGP's RIB before any End-of-RIB we send on PeerUp.
        for p in inst.peers.values():
            await self._replay(p)
        inst.relay_ready.set()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    self._on_json(inst, json.loads(line))
                except Exception as exc:  # one bad line must not end the API connection
                    log.warning("unreadable ExaBGP API line (%r): %s", exc, line[:600])
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if inst.relay is writer:
                inst.relay = None
                inst.relay_ready.clear()
            writer.close()

    def _on_json(self, inst: _Instance, message: dict[str, Any]) -> None:
        kind = message.get("type")
        neighbor = message.get("neighbor")
        if not isinstance(neighbor, dict):
            return
        peer = inst.peers.get(_normalize(str(neighbor["address"]["peer"])))
        if peer is None:
            return
        if kind == "state":
            local = _address_or_none(neighbor["address"].get("local"))
            self._on_state(peer, str(neighbor.get("state", "")), str(neighbor.get("reason", "")), local)
            return
        body = neighbor.get("message")
        if not isinstance(body, dict) or "header" not in body:
            return
        raw = _unhex(str(body["header"])) + _unhex(str(body.get("body", "")))
        if neighbor.get("direction") == "send":
            peer.messages_out += 1
            if int(body.get("category", 0)) == 3:
                note = decode_message(raw)
                if isinstance(note, NotificationMessage):
                    text = describe_notification(note.code, note.subcode)
                    peer.notification = f"sent NOTIFICATION {note.code}/{note.subcode} ({text})"
            return
        peer.messages_in += 1
        self._on_received(peer, int(body.get("category", 0)), raw)

    def _on_state(self, peer: _Peer, state: str, reason: str, local: IPAddress | None) -> None:
        if state == "connected":
            peer.connected = True
            peer.notification = None
        elif state == "up":
            self._session_up(peer, local)
        elif state == "down":
            self._session_down(peer, peer.notification or reason or "session closed", graceful=True)

    def _session_up(self, peer: _Peer, local: IPAddress | None) -> None:
        if self._stopping:
            # stop() has begun (it ceased this neighbor): a session ExaBGP reports up now is about to be
            # closed with ExaBGP, so it is neither reported nor counted (no PeerUp after stop's PeerDown).
            log.info("%s: session up while stopping; not reported", peer.neighbor.address)
            return
        if peer.established:
            # ExaBGP replaced the connection without reporting the old one down: same owner-visible session.
            log.warning(
                "%s: ExaBGP reports the session up again; End-of-RIB is sent again", peer.neighbor.address
            )
            peer.eor_sent = False
            peer.up_since = self._now()
            self._spawn(self._on_up(peer), f"exabgp-initial-{peer.neighbor.address}")
            return
        remote = peer.remote_open
        if remote is None:
            log.warning("%s: ExaBGP reports the session up without the peer's OPEN", peer.neighbor.address)
            return
        peer_asn = _open_asn(remote)
        remote_families = {
            fam
            for cap in remote.capabilities
            if isinstance(cap, Multiprotocol)
            for fam in [Family.lookup(cap.afi, cap.safi)]
            if fam is not None
        }
        if not any(isinstance(c, Multiprotocol) for c in remote.capabilities):
            remote_families = {Family.IPV4_UNICAST}
        peer.families = frozenset(remote_families & set(peer.neighbor.families))
        peer.ibgp = peer_asn == _local_asn(self.underlay, peer.neighbor)
        four_octet_as = any(isinstance(c, FourOctetAs) for c in remote.capabilities)
        peer.decoder = MessageDecoder(DecodeOptions(four_octet_as=four_octet_as, ebgp=not peer.ibgp))
        peer.received.clear()
        peer.established = True
        peer.connected = True
        peer.eor_sent = False
        peer.up_since = self._now()
        if local is not None and local.version == peer.neighbor.address.version:
            peer.local_address = local
        gr = any(isinstance(c, GracefulRestart) for c in remote.capabilities)
        log.info("%s: session established (AS %d, id %s)", peer.neighbor.address, peer_asn, remote.bgp_id)
        self._queue.put_nowait(
            PeerUp(
                peer=peer.neighbor.address,
                peer_asn=peer_asn,
                peer_router_id=remote.bgp_id,
                ibgp=peer.ibgp,
                families=peer.families,
                route_reflector_client=peer.neighbor.route_reflector_client,
                graceful_restart=gr,
                local_address=peer.local_address,
            )
        )
        self._spawn(self._on_up(peer), f"exabgp-initial-{peer.neighbor.address}")

    def _session_down(self, peer: _Peer, reason: str, *, graceful: bool) -> None:
        was_up = peer.established
        peer.connected = False
        peer.established = False
        peer.received.clear()
        if not was_up:
            if not peer.last_error and reason and not self._stopping:
                peer.last_error = reason
            return
        peer.flaps += 1
        peer.up_since = None
        peer.last_error = reason
        notified = peer.notification is not None or "NOTIFICATION" in reason
        gr_both = (
            self.graceful_restart.enabled
            and peer.remote_open is not None
            and any(isinstance(c, GracefulRestart) for c in peer.remote_open.capabilities)
        )
        peer.notification = None
        log.info("%s: session down: %s", peer.neighbor.address, reason)
        self._queue.put_nowait(
            PeerDown(peer.neighbor.address, reason, graceful=graceful and gr_both and not notified)
        )

    def _on_received(self, peer: _Peer, category: int, raw: bytes) -> None:
        if category == 1:
            message = decode_message(raw)
            if isinstance(message, Open):
                peer.remote_open = message
            return
        if category == 3:
            note = decode_message(raw)
            if isinstance(note, NotificationMessage):
                text = describe_notification(note.code, note.subcode)
                peer.notification = f"received NOTIFICATION {note.code}/{note.subcode} ({text})"
            return
        if category != 2 or not peer.established:
            return
        try:
            update = peer.decoder.decode(raw)
        except MessageError as exc:
            if exc.action is Rfc7606Action.TREAT_AS_WITHDRAW:
                log.warning(
                    "%s: malformed UPDATE treated as withdraw (RFC 7606): %s",
                    peer.neighbor.address,
                    exc.reason,
                )
                peer.last_error = f"treat-as-withdraw: {exc.reason}"
                self._deliver(
                    peer, (), None, None, tuple(r for r in exc.withdrawn if self._family_ok(peer, r))
                )
                return
            if exc.action is Rfc7606Action.ATTRIBUTE_DISCARD and isinstance(exc.update, Update):
                update = exc.update
            else:
                # ExaBGP parsed (and kept) what our decoder refuses: report it, the session stays ExaBGP's call.
                log.warning("%s: UPDATE our codec refuses: %s", peer.neighbor.address, exc.reason)
                peer.last_error = exc.reason
                return
        if not isinstance(update, Update):
            return
        eor = update.end_of_rib
        if eor is not None:
            self._queue.put_nowait(EndOfRib(peer.neighbor.address, eor))
            return
        withdrawn = tuple(r for r in update.withdrawn_routes if self._family_ok(peer, r))
        if update.nlri:
            nlri = tuple(r for r in update.nlri if self._family_ok(peer, r))
            v4_hop = update.attributes.next_hop if update.attributes is not None else None
            self._deliver(peer, nlri, update.attributes, v4_hop, withdrawn)
            withdrawn = ()
        reach = update.mp_reach
        mp_routes = tuple(r for r in reach.routes if self._family_ok(peer, r)) if reach is not None else ()
        if mp_routes or withdrawn:
            nh = reach.next_hop if reach is not None and mp_routes else None
            self._deliver(peer, mp_routes, update.attributes if mp_routes else None, nh, withdrawn)

    @staticmethod
    def _family_ok(peer: _Peer, route: Route) -> bool:
        return family_of(route) in peer.families

    def _deliver(
        self,
        peer: _Peer,
        announced: tuple[Route, ...],
        attributes: PathAttributes | None,
        next_hop: IPAddress | None,
        withdrawn: tuple[Route, ...],
    ) -> None:
        if not announced and not withdrawn:
            return
        for route in withdrawn:
            peer.received.discard(_route_key(route))
        for route in announced:
            peer.received.add(_route_key(route))
        self._queue.put_nowait(
            RoutesReceived(peer.neighbor.address, announced, attributes, next_hop, withdrawn)
        )

    # -- helpers ------------------------------------------------------------------------------------------
    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _unhex(text: str) -> bytes:
    """ExaBGP writes raw bytes as ``0x`` + upper-case hex."""
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def _address_or_none(value: object) -> IPAddress | None:
    """An address from ExaBGP's JSON (``"None"`` until ExaBGP knows it)."""
    try:
        return _normalize(str(value))
    except ValueError:
        return None


def _open_asn(message: Open) -> int:
    for cap in message.capabilities:
        if isinstance(cap, FourOctetAs):
            return cap.asn
    return message.my_as


def _listening(port: int, pid: int) -> bool:
    """Whether a TCP socket in the network namespace of ``pid`` listens on ``port`` (Linux /proc/PID/net)."""
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle, None)
                for row in handle:
                    fields = row.split()
                    if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            continue
    return False


def _free_port(address: IPAddress | None) -> int:
    family = socket.AF_INET6 if address is not None and address.version == 6 else socket.AF_INET
    host = str(address) if address is not None else "0.0.0.0"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _conforms(engine: ExaBgpEngine) -> SessionEngine:
    """Static check (mypy) that ExaBgpEngine implements the SessionEngine protocol."""
    return engine


__all__ = [
    "ExaBgpEngine",
    "VrfNamespaceError",
    "exabgp_environment",
    "generate_config",
    "route_source",
    "route_token",
]
