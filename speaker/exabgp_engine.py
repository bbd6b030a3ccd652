"""The ``exabgp`` session engine: ExaBGP 5.0.15 as a subprocess we start, configure, watch and stop (DESIGN.md §2, §7).

Processes (one set per engine; no global state)::

    engine (asyncio) ── starts ──► python -m speaker.exabgp_launcher CONFIG   (ExaBGP + our API commands)
        ▲  unix socket                         │ runs (ExaBGP "process")
        └──────────────────────────  python -m speaker.exabgp_launcher --relay SOCKET

Everything lives in a private temporary directory (configuration, socket), removed on ``stop``. ExaBGP's own
log lines (its stdout/stderr) go to the ``speaker.exabgp`` logger.

Sending: the engine keeps a per-peer Adj-RIB-Out of *our encoded bytes* (NLRI and attributes) and writes
``evpn-announce``/``evpn-withdraw`` commands carrying them; the launcher turns them into ExaBGP EVPN NLRI
objects and ``GenericAttribute`` objects, so every byte (both labels, ESI, Router's MAC, Default Gateway, ESI
Label, PMSI) is what our codec built, and a withdraw repeats exactly the NLRI bytes that were announced,
whatever happened in between (session resets, ExaBGP restarts). ExaBGP keys its RIB on our route key and keeps
it across session resets (``adj-rib-out true``, which ExaBGP forces with route refresh anyway), so it sends the
table itself when a session comes up; the engine replays its own table into every new ExaBGP process (and a
respawned API process) before reading anything from it. End-of-RIB is ours (``manual-eor``): in
``EndOfRibMode.AUTO`` the engine sends it on PeerUp, after everything ExaBGP already holds.

Receiving: ExaBGP reports every received message as raw bytes (``api { receive { packets; ... } }``); the
engine decodes them with our ``MessageDecoder`` (RFC 7606 included), so nothing ExaBGP's own parser drops is
lost. OPENs give PeerUp's details, NOTIFICATIONs the PeerDown reason.

If ExaBGP dies the engine reports its sessions down and starts it again (backoff ``initial_backoff`` doubling
to 30 s). Limitations against the native engine: ``speaker/EXABGP.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from collections.abc import AsyncIterator, Sequence
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


def _peer_as(underlay: Underlay, neighbor: Neighbor) -> str:
    if neighbor.asn is not None:
        return str(neighbor.asn)
    if neighbor.peer_type is PeerType.INTERNAL:
        return str(underlay.asn)
    return "auto"


def generate_config(
    underlay: Underlay,
    *,
    relay_command: str,
    local_address: IPAddress | None,
    graceful_restart: GracefulRestartConfig,
) -> str:
    """ExaBGP 5 configuration for every neighbor of ``underlay`` (API process, families, timers, MD5, GR)."""
    lines = [
        f"process {PROCESS_NAME} {{",
        f"    run {relay_command};",
        "    encoder json;",
        "}",
        "",
    ]
    for nb in underlay.neighbors:
        families = [f for f in nb.families if f in _FAMILY_CONFIG]
        hold = nb.timers.hold_time
        lines += [
            f"neighbor {nb.address} {{",
            f"    router-id {underlay.router_id};",
            f"    local-as {underlay.asn};",
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


@dataclass(eq=False, slots=True)
class _Batch:
    """Announcements for one peer with one next hop and attribute set, not yet written as a command.

    The owner hands routes over one ``advertise`` call at a time (the speaker: one call per learned MAC); one
    ExaBGP command per call costs ExaBGP a reactor turn each (and a 10 ms sleep whenever its API pipe is
    drained with commands still queued). Consecutive calls that share peer, next hop and attributes therefore
    become one ``evpn-announce`` of up to ``_CHUNK`` routes, written when the batch is full, before any other
    command (order is kept), or once the caller yields to the event loop.
    """

    head: tuple[str, str, bytes]  # peer, next hop, encoded attributes
    routes: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Peer:
    neighbor: Neighbor
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
        self._peers: dict[IPAddress, _Peer] = {nb.address: _Peer(nb) for nb in underlay.neighbors}
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._tmp: Path | None = None
        self._server: asyncio.AbstractServer | None = None
        self._relay: asyncio.StreamWriter | None = None
        self._batch: _Batch | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._encoded: dict[PathAttributes, bytes] = {}
        self._relay_ready = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stopping = False
        self._stopped = False
        self.restarts = 0

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Write the configuration, open the API socket, start ExaBGP (and keep it running)."""
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        if self._listen and self.listen_port == 0:
            self.listen_port = _free_port(self.listen_address)
        self._tmp = Path(tempfile.mkdtemp(prefix="evpn-exabgp-"))
        sock = self._tmp / "api.sock"
        # One JSON line carries a whole message in hex: up to ~131 kB with extended messages (RFC 8654).
        self._server = await asyncio.start_unix_server(self._on_relay, path=str(sock), limit=_LINE_LIMIT)
        relay = f"{self.python} -m speaker.exabgp_launcher --relay {sock}"
        config = generate_config(
            self.underlay,
            relay_command=relay,
            local_address=self.local_address,
            graceful_restart=self.graceful_restart,
        )
        (self._tmp / "exabgp.conf").write_text(config)
        await self._spawn_exabgp()
        self._spawn(self._supervise(), "exabgp-supervise")
        # Return once ExaBGP accepts connections (and its API process is attached), as NativeEngine does.
        waits = [self._relay_ready.wait()] + ([self._wait_listening()] if self._listen else [])
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self.start_timeout)
        except TimeoutError:
            log.error("ExaBGP not ready after %.0f s (see the speaker.exabgp log)", self.start_timeout)

    async def _spawn_exabgp(self) -> None:
        assert self._tmp is not None
        env = exabgp_environment(
            listen=self._listen,
            listen_address=self.listen_address,
            listen_port=self.listen_port,
            project_root=str(Path(__file__).resolve().parent.parent),
        )
        env["EVPN_SPEAKER_EXABGP_GROUP"] = "1" if self.group_updates else "0"
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []  # ``ip netns exec`` execs
        self._proc = await asyncio.create_subprocess_exec(
            *prefix,
            self.python,
            "-m",
            "speaker.exabgp_launcher",
            str(self._tmp / "exabgp.conf"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=str(self._tmp),
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        log.info("started ExaBGP (pid %d) for %d neighbor(s)", self._proc.pid, len(self._peers))
        assert self._proc.stdout is not None
        self._spawn(self._pump_log(self._proc.stdout), "exabgp-log")

    async def _pump_log(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the limit: keep draining, or ExaBGP blocks on a full pipe
                line = await stream.read(_LINE_LIMIT)
            if not line:
                return
            exabgp_log.info("%s", line.decode(errors="replace").rstrip()[:4000])

    async def _supervise(self) -> None:
        """Restart ExaBGP whenever it exits while the engine runs."""
        backoff = self.initial_backoff
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            rc = await proc.wait()
            if self._stopping:
                return
            log.error("ExaBGP exited (code %s); restarting in %.1f s", rc, backoff)
            self._relay_ready.clear()
            self._relay = None
            for peer in self._peers.values():
                self._session_down(peer, f"ExaBGP exited with code {rc}", graceful=False)
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            backoff = min(backoff * 2, _MAX_BACKOFF)
            self.restarts += 1
            await self._spawn_exabgp()

    async def stop(self, graceful: bool = False) -> None:
        """Cease every session (or close silently with ``graceful``), stop ExaBGP, end ``events()``."""
        if self._stopping:
            return
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if not graceful and self._relay is not None:
                up = [p for p in self._peers.values() if p.connected or p.established]
                log.info("administrative shutdown of %d session(s)", len(up))
                for peer in up:
                    await self._command(f"neighbor {peer.neighbor.address} evpn-cease")
                if up:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._all_down(up), 3.0)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the relay and anything else in its process group
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._batch = None
        reason = "engine stopped (graceful restart)" if graceful else "administrative shutdown"
        for peer in self._peers.values():
            self._session_down(peer, reason, graceful=graceful)
        if self._relay is not None:
            self._relay.close()
        if self._server is not None:
            self._server.close()
        tasks = [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._stopped = True
        self._queue.put_nowait(_STOP)

    async def _wait_listening(self) -> None:
        """Until a socket listens on our port (ExaBGP logs it only at debug level)."""
        while self._proc is not None and not _listening(self.listen_port, self._proc.pid):
            if self._proc.returncode is not None:
                return
            await asyncio.sleep(0.02)

    async def _all_down(self, peers: list[_Peer]) -> None:
        while any(p.established or p.connected for p in peers):
            await asyncio.sleep(0.02)

    async def events(self) -> AsyncIterator[EngineEvent]:
        """Session events in order; the iteration ends once ``stop`` has run."""
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
        """The ExaBGP process id (None before ``start``)."""
        return self._proc.pid if self._proc is not None else None

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
        """Announce ``routes`` (EVPN only: ExaBGP carries our NLRI bytes); kept for replays and withdraws."""
        evpn = [r for r in routes if family_of(r) is Family.L2VPN_EVPN]
        if len(evpn) != len(routes):
            raise ValueError("the exabgp engine announces EVPN routes only (see speaker/EXABGP.md)")
        entries = [(r, attributes, next_hop, route_token(r), encode_route(r)) for r in evpn]
        for p in self._select(peer):
            async with p.lock:
                for entry in entries:
                    p.adj_out[_route_key(entry[0])] = entry
                await self._announce(p, attributes, next_hop, [(e[3], e[4]) for e in entries])

    async def withdraw(self, peer: IPAddress | None, routes: Sequence[Route]) -> None:
        """Withdraw ``routes`` by key, repeating the exact NLRI bytes that were announced."""
        for p in self._select(peer):
            async with p.lock:
                gone = [p.adj_out.pop(_route_key(r), None) for r in routes]
                sent = [(e[3], e[4]) for e in gone if e is not None]
                if sent:
                    for i in range(0, len(sent), _CHUNK):
                        await self._command(
                            format_command(
                                "evpn-withdraw", str(p.neighbor.address), routes=sent[i : i + _CHUNK]
                            )
                        )

    async def end_of_rib(self, peer: IPAddress | None = None) -> None:
        """In ``EndOfRibMode.MANUAL`` send End-of-RIB for every negotiated family once per session."""
        if self.end_of_rib_mode is not EndOfRibMode.MANUAL:
            return
        for p in self._select(peer):
            async with p.lock:
                await self._send_eor(p)

    async def _announce(
        self, p: _Peer, attributes: PathAttributes, next_hop: IPAddress, routes: list[tuple[str, bytes]]
    ) -> None:
        """Queue ``routes`` for one ``evpn-announce`` command (see ``_Batch``); full commands leave now."""
        raw = self._encoded.get(attributes)
        if raw is None:
            if len(self._encoded) >= 256:
                self._encoded.clear()
            # AS_PATH with 4-octet ASNs: peers must support RFC 6793 (EXABGP.md)
            raw = self._encoded[attributes] = attributes.encode(True)
        head = (str(p.neighbor.address), str(next_hop), raw)
        batch = self._batch
        if batch is not None and batch.head != head:
            self._flush_batch()
            batch = None
        if batch is None:
            batch = self._batch = _Batch(head)
        wrote = False
        for entry in routes:
            batch.routes.append(entry)
            if len(batch.routes) >= _CHUNK:
                self._flush_batch()
                batch = self._batch = _Batch(head)
                wrote = True
        if not batch.routes:
            self._batch = None
        elif self._flush_handle is None:
            # the rest leaves once the caller yields to the loop (after its run of advertise calls)
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_batch)
        if wrote:
            await self._drain()

    def _flush_batch(self) -> None:
        """Write the queued announcements (always before any other command: order is kept)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._batch = self._batch, None
        if batch is None or not batch.routes:
            return
        peer, next_hop, raw = batch.head
        self._write(
            format_command("evpn-announce", peer, next_hop=next_hop, attributes=raw, routes=batch.routes)
        )

    async def _send_eor(self, p: _Peer) -> None:
        if p.eor_sent or not p.established:
            return
        p.eor_sent = True
        for family in sorted(p.families, key=lambda f: f.value):
            name = _FAMILY_CONFIG.get(family)
            if name is not None:
                await self._command(f"neighbor {p.neighbor.address} announce eor {name}")

    async def _replay(self, p: _Peer) -> None:
        """Give a (new) ExaBGP process the whole Adj-RIB-Out of ``p``, grouped by attributes and next hop."""
        async with p.lock:
            groups: dict[tuple[PathAttributes, IPAddress], list[tuple[str, bytes]]] = {}
            for _route, attributes, next_hop, token, nlri in p.adj_out.values():
                groups.setdefault((attributes, next_hop), []).append((token, nlri))
            for (attributes, next_hop), entries in groups.items():
                await self._announce(p, attributes, next_hop, entries)

    async def _on_up(self, p: _Peer) -> None:
        """ExaBGP sends its Adj-RIB-Out by itself when a session comes up; End-of-RIB follows in AUTO mode."""
        if self.end_of_rib_mode is EndOfRibMode.AUTO:
            async with p.lock:
                await self._send_eor(p)

    async def _command(self, line: str) -> None:
        self._flush_batch()
        self._write(line)
        await self._drain()

    def _write(self, line: str) -> None:
        writer = self._relay
        if writer is None or writer.is_closing():
            log.debug("ExaBGP API not connected; dropped: %s", line[:80])
            return
        writer.write(line.encode() + b"\n")

    async def _drain(self) -> None:
        writer = self._relay
        if writer is None or writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()

    # -- the API relay ------------------------------------------------------------------------------------
    async def _on_relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            writer.close()
            return
        hello = await reader.readline()
        log.info("ExaBGP API process connected (%s)", hello.decode(errors="replace").strip())
        old = self._relay
        self._relay = writer
        if old is not None:
            old.close()
        # A new ExaBGP (or a respawned API process that may have lost commands): hand it the whole table
        # before reading anything, so it is in ExaBGP's RIB before any End-of-RIB we send on PeerUp.
        for p in self._peers.values():
            await self._replay(p)
        self._relay_ready.set()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    self._on_json(json.loads(line))
                except Exception as exc:  # one bad line must not end the API connection
                    log.warning("unreadable ExaBGP API line (%r): %s", exc, line[:600])
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if self._relay is writer:
                self._relay = None
                self._relay_ready.clear()
            writer.close()

    def _on_json(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        neighbor = message.get("neighbor")
        if not isinstance(neighbor, dict):
            return
        address = ipaddress.ip_address(str(neighbor["address"]["peer"]))
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        peer = self._peers.get(address)
        if peer is None:
            return
        if kind == "state":
            self._on_state(peer, str(neighbor.get("state", "")), str(neighbor.get("reason", "")))
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

    def _on_state(self, peer: _Peer, state: str, reason: str) -> None:
        if state == "connected":
            peer.connected = True
            peer.notification = None
        elif state == "up":
            self._session_up(peer)
        elif state == "down":
            self._session_down(peer, peer.notification or reason or "session closed", graceful=True)

    def _session_up(self, peer: _Peer) -> None:
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
        peer.ibgp = peer_asn == self.underlay.asn
        four_octet_as = any(isinstance(c, FourOctetAs) for c in remote.capabilities)
        peer.decoder = MessageDecoder(DecodeOptions(four_octet_as=four_octet_as, ebgp=not peer.ibgp))
        peer.received.clear()
        peer.established = True
        peer.connected = True
        peer.eor_sent = False
        peer.up_since = self._now()
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


__all__ = ["ExaBgpEngine", "exabgp_environment", "generate_config", "route_token"]
