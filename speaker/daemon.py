"""The ``evpn-speaker run`` daemon: configuration file -> plumbing -> Speaker with the kernel dataplane.

One :class:`Daemon` per process, run inside the router's network namespace. It stays thin: every decision
is in ``evpn/`` (the core) and ``dataplane/`` (plumbing, reconciler, monitor); the daemon only wires them::

    config = Daemon.load(options)                      # ConfigFileError: file, line, field, reason
    daemon = Daemon(options, config)
    await daemon.run()                                 # until SIGTERM/SIGINT; SIGHUP reloads

Start: the plumbing creates the devices of the configuration (L3 SVIs get the core's Router's MAC), then a
:class:`speaker.speaker.Speaker` runs with a :class:`dataplane.reconciler.KernelDataplane` and a
:class:`dataplane.monitor.Monitor` as its local-learning source. When the kernel still holds entries we
installed (a previous run stopped gracefully, or was killed) and graceful restart is configured, the speaker
starts as *restarting* (RFC 4724 §4.1): the entries stay, and the full reconcile (which removes whatever no
peer re-advertised) runs after End-of-RIB from every neighbor. Otherwise the kernel is reconciled at once.

The control socket (``speaker.control.ControlServer``: ``evpn-speaker show ...``, ``reload``) serves this
object; ``--metrics-address`` starts a ``speaker.metrics.MetricsServer`` (Prometheus ``GET /metrics``).

Stop (SIGTERM/SIGINT): the sessions end with a Cease NOTIFICATION (Administrative Shutdown) and the kernel
entries stay, so this node keeps forwarding while a restarted daemon comes back (it then starts as a
graceful restart and reconciles after End-of-RIB); with ``flush_on_exit`` every kernel entry the speaker
installed is removed too.

Reload (SIGHUP, or ``reload()`` from the control socket): the file is read again; a file that fails
validation, or that changes what only a restart can change (the underlay, the engine, the VRF backend,
graceful restart, the host namespace), is rejected and logged, and the running state is kept. Otherwise the
plumbing converges (it only touches the differences), the dataplane and the monitor follow the new device
layout, and the core's ``reconfigure`` yields only the differences in routes and kernel entries: adding or
removing an L2VNI resets no session and touches no other VNI.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataplane.errors import DataplaneError
from dataplane.interface import ApplyResult, LocalEvent
from dataplane.layout import Layout, Namespaces
from dataplane.monitor import Monitor
from dataplane.netns import NETNS_DIR
from dataplane.plumbing import Plumbing
from dataplane.reconciler import KernelDataplane
from dataplane.vrf_socket import vrf_socket_factory
from evpn.config import SpeakerConfig, VrfBackend
from evpn.core import EvpnCore
from evpn.dataplane_state import DataplaneDelta, DataplaneEntry, RouteEntry, UnicastRouteEntry
from evpn.errors import ConfigError
from evpn.mac import MacAddress
from evpn.show import MacTable, NextHopRow, RibByRd, VniRow
from speaker.config_file import ConfigFileError, load_config
from speaker.control import ControlServer
from speaker.engine import PeerState
from speaker.metrics import MetricsServer
from speaker.speaker import Speaker, Subscription

log = logging.getLogger(__name__)

ENGINES = ("native", "exabgp")


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """What ``evpn-speaker run`` was given (``None``: take it from the configuration file)."""

    config_path: Path
    node_index: int | None = None
    host_netns: str | None = None
    engine: str | None = None
    socket_path: str | None = None
    metrics_address: tuple[str, int] | None = None
    flush_on_exit: bool = False
    listen_port: int = 179
    probe_interval: float = 30.0


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """The outcome of a reload: ``ok`` False means rejected and nothing changed; ``message`` says why/what."""

    ok: bool
    message: str
    changes: tuple[str, ...] = ()


def plumbing_config(config: SpeakerConfig) -> SpeakerConfig:
    """The configuration the plumbing builds from: each L3VNI's SVI gets the core's Router's MAC."""
    macs = EvpnCore(config).router_macs()
    l3vnis = tuple(
        dataclasses.replace(l3, router_mac=macs.get(l3.vni, l3.router_mac)) if l3.router_mac is None else l3
        for l3 in config.l3vnis
    )
    return dataclasses.replace(config, l3vnis=l3vnis)


def restart_only_changes(old: SpeakerConfig, new: SpeakerConfig) -> list[str]:
    """Fields a reload cannot change (the sessions or the device layout of every VNI depend on them)."""
    fields = ("underlay", "engine", "vrf_backend", "graceful_restart", "host_netns", "passthrough")
    changed = [name for name in fields if getattr(old, name) != getattr(new, name)]
    if not changed and old.neighbors() != new.neighbors():
        changed.append("l3vnis[].host_session")
    return changed


def _private_netns_mounts() -> bool:
    """True when /run/netns does not propagate to the rest of the system from here (``ip netns exec`` makes
    the mounts of its command a slave: namespaces it creates are visible to itself only)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) > 6 and fields[4] == str(NETNS_DIR):
            optional = fields[6 : fields.index("-")]
            return not any(f.startswith("shared:") for f in optional)
    return False


def check_namespaces(layout: Layout) -> None:
    """The host namespace must exist; the VRF namespaces of the ``netns`` backend must be real namespaces
    visible beyond this process.

    A name under /run/netns that is not a mount point was created inside another private mount namespace
    (an earlier daemon under ``ip netns exec``) and is unusable: a ``DataplaneError`` says what to do.
    """
    host = layout.namespaces.host
    if host is not None and not os.path.ismount(NETNS_DIR / host):
        raise DataplaneError(
            f"host namespace {host} does not exist ({NETNS_DIR / host}): create it (ip netns add {host}) "
            "or fix --host-netns / host_netns"
        )
    if layout.config.vrf_backend is not VrfBackend.NETNS:
        return
    private = _private_netns_mounts()
    for l3 in layout.config.l3vnis:
        name = layout.vrf_netns(l3)
        if name is None:
            continue
        path = NETNS_DIR / name
        if path.exists() and not os.path.ismount(path):
            raise DataplaneError(
                f"{path} exists but is not a network namespace here (created inside another private mount "
                f"namespace, e.g. by a daemon started with `ip netns exec`): remove it and create the VRF "
                f"namespace with `ip netns add {name}` before starting the daemon"
            )
        if not path.exists() and private:
            log.warning(
                "VRF namespace %s is created inside this daemon's private mount namespace (ip netns exec): "
                "nothing outside the daemon will see it, and a restarted daemon cannot use it; create it "
                "beforehand with `ip netns add %s`, or start the daemon with `nsenter --net=...`",
                name,
                name,
            )


class _KnownEntries:
    """Which VNIs and VRFs a layout has devices for (entries of others are dropped, not failed)."""

    def __init__(self, layout: Layout) -> None:
        self.vnis = frozenset(layout.vnis())
        self.vrfs = frozenset(layout.vrfs())

    def __call__(self, entry: DataplaneEntry) -> bool:
        if isinstance(entry, RouteEntry):
            return entry.vrf in self.vrfs
        if isinstance(entry, UnicastRouteEntry):
            return not entry.vrf or entry.vrf in self.vrfs
        return entry.vni in self.vnis


class SwitchableDataplane:
    """A ``KernelDataplane`` for the current layout, replaced (between two applies) when a reload changes it.

    Entries of VNIs or VRFs the current layout does not have are skipped: after a reload removed a VNI, the
    plumbing already deleted its devices and with them their kernel entries.
    """

    def __init__(self, layout: Layout) -> None:
        self._dataplane = KernelDataplane(layout)
        self._known = _KnownEntries(layout)
        self._lock = asyncio.Lock()

    async def apply(self, delta: DataplaneDelta) -> ApplyResult:
        async with self._lock:
            known = self._known
            add = tuple(e for e in delta.add if known(e))
            remove = tuple(e for e in delta.remove if known(e))
            if len(add) != len(delta.add) or len(remove) != len(delta.remove):
                delta = DataplaneDelta(add, remove)
            return await self._dataplane.apply(delta)

    async def reconcile(self, desired: Iterable[DataplaneEntry]) -> ApplyResult:
        async with self._lock:
            known = self._known
            return await self._dataplane.reconcile([e for e in desired if known(e)])

    async def installed(self) -> frozenset[DataplaneEntry]:
        async with self._lock:
            return await self._dataplane.installed()

    async def close(self) -> None:
        async with self._lock:
            await self._dataplane.close()

    async def switch(self, layout: Layout) -> None:
        async with self._lock:
            old = self._dataplane
            self._dataplane = KernelDataplane(layout)
            self._known = _KnownEntries(layout)
            await old.close()


class SwitchableMonitor:
    """The speaker's local-learning source: a ``Monitor`` of the current layout, replaced on reload.

    The new monitor starts (and reports the current state) before the old one stops, so nothing learned in
    between is lost; the core takes a repeated ``LocalMacLearned`` as a no-op.
    """

    def __init__(self, layout: Layout, probe_interval: float = 30.0) -> None:
        self._layout = layout
        self._probe_interval = probe_interval
        self._queue: asyncio.Queue[LocalEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def events(self) -> AsyncIterator[LocalEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LocalEvent]:
        self._start(self._layout)
        try:
            while True:
                yield await self._queue.get()
        finally:
            await self._cancel(self._task)
            self._task = None

    def _start(self, layout: Layout) -> None:
        self._layout = layout
        monitor = Monitor(layout, probe_interval=self._probe_interval)
        self._task = asyncio.create_task(self._pump(monitor), name="daemon-monitor")

    async def _pump(self, monitor: Monitor) -> None:
        try:
            async for event in monitor.events():
                self._queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("local learning (kernel monitor) failed; local MACs are no longer followed")

    async def switch(self, layout: Layout) -> None:
        if self._task is None:  # not iterated yet: the speaker is not running
            self._layout = layout
            return
        old = self._task
        self._start(layout)
        await asyncio.sleep(0.1)  # the new monitor subscribes and dumps before the old one lets go
        await self._cancel(old)

    @staticmethod
    async def _cancel(task: asyncio.Task[None] | None) -> None:
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _SignalWatcher:
    """SIGTERM, SIGINT and SIGHUP taken by a thread with ``sigwaitinfo`` (so the log names the sender's pid),
    handed to the event loop. The signals stay blocked in every thread of the process from ``start`` on."""

    SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[int, int], None]) -> None:
        self._loop = loop
        self._callback = callback

    def start(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        threading.Thread(target=self._wait, name="daemon-signals", daemon=True).start()

    def _wait(self) -> None:
        while True:
            info = signal.sigwaitinfo(self.SIGNALS)
            try:
                self._loop.call_soon_threadsafe(self._callback, info.si_signo, info.si_pid)
            except RuntimeError:  # the loop is closed: the process is exiting
                return


class Daemon:
    """One speaker daemon (``evpn-speaker run``): owns the plumbing, the speaker and the signal handling.

    It is also the object the control socket serves (``speaker_like``): the read models of the speaker, and
    ``reload()``.
    """

    def __init__(self, options: DaemonOptions, config: SpeakerConfig) -> None:
        self.options = options
        self.engine_name = options.engine or config.engine
        if self.engine_name not in ENGINES:
            raise ValueError(f"unknown engine {self.engine_name!r} (one of {', '.join(ENGINES)})")
        self.config = dataclasses.replace(config, engine=self.engine_name)  # --engine overrides the file
        self.layout = self._layout(self.config)
        self._dataplane: SwitchableDataplane | None = None
        self._monitor: SwitchableMonitor | None = None
        self._speaker: Speaker | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[ReloadResult]] = set()
        self._servers: list[ControlServer | MetricsServer] = []
        self.restarting = False

    # ---- configuration --------------------------------------------------------------------------------

    @staticmethod
    def load(options: DaemonOptions) -> SpeakerConfig:
        """Read and validate the configuration file (``ConfigFileError`` when it is not valid)."""
        config = load_config(
            options.config_path, node_index=options.node_index, host_netns=options.host_netns
        )
        try:
            EvpnCore(config)
        except ConfigError as exc:  # the loader validates too; this only keeps the daemon's promise
            raise ConfigFileError(str(options.config_path), str(exc)) from exc
        return config

    def _layout(self, config: SpeakerConfig) -> Layout:
        return Layout(plumbing_config(config), Namespaces(router=None, host=config.host_netns))

    # ---- the speaker_like face (control socket, tests) ------------------------------------------------

    @property
    def speaker(self) -> Speaker:
        if self._speaker is None:
            raise RuntimeError("the daemon is not started")
        return self._speaker

    @property
    def name(self) -> str:
        return self.speaker.name

    @property
    def core(self) -> EvpnCore:
        return self.speaker.core

    @property
    def running(self) -> bool:
        return self._speaker is not None and self._speaker.running

    def mac_table(self, vni: int) -> MacTable:
        return self.speaker.mac_table(vni)

    def vni_table(self) -> tuple[VniRow, ...]:
        return self.speaker.vni_table()

    def rib_by_rd(self) -> tuple[RibByRd, ...]:
        return self.speaker.rib_by_rd()

    def rib_path_count(self) -> int:
        return self.speaker.rib_path_count()

    def next_hops(self) -> tuple[NextHopRow, ...]:
        return self.speaker.next_hops()

    def peer_states(self) -> list[PeerState]:
        return self.speaker.peer_states()

    async def installed(self) -> frozenset[DataplaneEntry]:
        return await self.speaker.installed()

    def clear_duplicate(self, vni: int, mac: MacAddress) -> None:
        self.speaker.clear_duplicate(vni, mac)

    def subscribe(self, maxsize: int = 0) -> Subscription:
        return self.speaker.subscribe(maxsize)

    # ---- lifecycle ------------------------------------------------------------------------------------

    def _engine_options(self) -> dict[str, Any]:
        """Host sessions live in their VRF: the native engine gets sockets there (a VRF namespace or
        SO_BINDTODEVICE); ExaBGP runs one process per VRF namespace."""
        if not any(n.vrf is not None for n in self.config.neighbors()):
            return {}
        if self.config.engine == "exabgp":
            spaces = {
                l3.vrf: ns for l3 in self.config.l3vnis if (ns := self.layout.vrf_netns(l3)) is not None
            }
            return {"vrf_namespaces": spaces}
        return {"vrf_socket": vrf_socket_factory(self.layout)}

    async def start(self) -> None:
        """Plumbing, then the speaker (kernel reconciled or, after a restart, kept until End-of-RIB)."""
        await self._start_control()
        check_namespaces(self.layout)
        report = await Plumbing(self.layout).apply_async()
        for change in report.changes:
            log.info("plumbing: %s", change)
        dataplane = SwitchableDataplane(self.layout)
        left = await dataplane.installed()
        self.restarting = bool(left) and self.config.graceful_restart.enabled
        if left:
            log.info(
                "%d kernel entries from a previous run: %s",
                len(left),
                "graceful restart, kept until End-of-RIB" if self.restarting else "reconciled now",
            )
        self._dataplane = dataplane
        self._monitor = SwitchableMonitor(self.layout, self.options.probe_interval)
        self._speaker = Speaker(
            self.config,  # the Speaker builds the engine it names, with the restart flags
            dataplane=dataplane,
            event_source=self._monitor,
            restarting=self.restarting,
            listen_port=self.options.listen_port,
            engine_options=self._engine_options(),
        )
        await self._speaker.start()
        await self._start_metrics()
        log.info(
            "evpn-speaker running: router id %s, AS %s, VTEP %s, engine %s, %d L2VNI(s), %d L3VNI(s)",
            self.config.underlay.router_id,
            self.config.underlay.asn,
            self.config.underlay.vtep,
            self.engine_name,
            len(self.config.l2vnis),
            len(self.config.l3vnis),
        )

    async def stop(self) -> None:
        """Stop the servers and the speaker; keep the kernel entries unless ``flush_on_exit``."""
        for task in list(self._reloads):
            task.cancel()
        await self._stop_servers()
        speaker, dataplane = self._speaker, self._dataplane
        if speaker is not None:
            # Cease either way (RFC 4486 §4); the kernel keeps forwarding unless --flush-on-exit
            await speaker.stop(keep_dataplane=not self.options.flush_on_exit)
        if dataplane is not None:
            if self.options.flush_on_exit:
                result = await dataplane.reconcile(())
                log.info("flushed %d kernel entries", result.removed)
            await dataplane.close()
        log.info("evpn-speaker stopped")

    def request_stop(self, why: str = "requested") -> None:
        if not self._stop.is_set():
            log.info("stop: %s", why)
        self._stop.set()

    def request_reload(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="daemon-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT (SIGHUP reloads), stop; the exit code."""
        signals = _SignalWatcher(asyncio.get_running_loop(), self._on_signal)
        signals.start()
        try:
            try:
                await self.start()
            except Exception as exc:  # plumbing, kernel or socket: say why, exit 1
                known = isinstance(exc, DataplaneError | OSError)
                log.error("cannot start: %s", exc or type(exc).__name__, exc_info=not known)
                return 1
            await self._stop.wait()
            log.info("stopping (%s)", "flush" if self.options.flush_on_exit else "kernel entries kept")
            return 0
        finally:
            await self.stop()

    def _on_signal(self, signum: int, sender: int) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            log.info("%s from pid %d: reloading the configuration", name, sender)
            self.request_reload()
        else:
            self.request_stop(f"{name} from pid {sender}")

    # ---- reload ---------------------------------------------------------------------------------------

    async def reload(self) -> ReloadResult:
        """Read the file again and apply only the differences; a bad file changes nothing."""
        async with self._reload_lock:
            result = await self._reload()
        if result.ok:
            log.info("reload: %s", result.message)
        else:
            log.error("reload rejected, running configuration kept: %s", result.message)
        return result

    async def _reload(self) -> ReloadResult:
        try:
            new = await asyncio.to_thread(Daemon.load, self.options)
        except ConfigFileError as exc:
            return ReloadResult(False, str(exc))
        if self.options.engine:  # --engine overrides the file, at reload as at start
            new = dataclasses.replace(new, engine=self.options.engine)
        old = self.config
        fixed = restart_only_changes(old, new)
        if fixed:
            return ReloadResult(False, f"{', '.join(fixed)}: changing this needs a restart of the daemon")
        if new == old:
            return ReloadResult(True, "no change")
        speaker, dataplane, monitor = self._speaker, self._dataplane, self._monitor
        if speaker is None or dataplane is None or monitor is None:
            return ReloadResult(False, "the daemon is not running")
        layout = self._layout(new)
        try:
            check_namespaces(layout)
            report = await Plumbing(layout, previous=self.layout).apply_async()
        except Exception as exc:  # a foreign device in the way, a missing external bridge, netlink errors
            with contextlib.suppress(Exception):  # back to the running configuration's devices
                await Plumbing(self.layout, previous=layout).apply_async()
            return ReloadResult(False, f"plumbing failed: {exc}")
        for change in report.changes:
            log.info("plumbing: %s", change)
        await dataplane.switch(layout)
        try:
            await self._reconfigure(speaker, new)
        except Exception as exc:  # validated before, so a bug: keep the old devices and dataplane
            log.exception("reload: the core rejected the configuration")
            await dataplane.switch(self.layout)
            with contextlib.suppress(Exception):
                await Plumbing(self.layout, previous=layout).apply_async()
            return ReloadResult(False, f"the core rejected the configuration: {exc}")
        self.config, self.layout = new, layout
        await speaker.flush()
        await monitor.switch(layout)
        before = {v.vni for v in old.l2vnis} | {v.vni for v in old.l3vnis}
        after = {v.vni for v in new.l2vnis} | {v.vni for v in new.l3vnis}
        summary = f"applied (VNIs added {sorted(after - before)}, removed {sorted(before - after)})"
        return ReloadResult(True, summary, report.changes)

    @staticmethod
    async def _reconfigure(speaker: Speaker, config: SpeakerConfig) -> None:
        speaker.reconfigure(config)

    # ---- control socket and metrics --------------------------------------------------------------------

    async def _start_control(self) -> None:
        """The control socket first: a second daemon on the same socket fails before touching the kernel."""
        if self.options.socket_path:
            server = ControlServer(self, self.options.socket_path)
            await server.start()
            self._servers.append(server)
            log.info("control socket on %s", self.options.socket_path)

    async def _start_metrics(self) -> None:
        if self.options.metrics_address is not None:
            host, port = self.options.metrics_address
            server = MetricsServer(self, host, port)
            await server.start()
            self._servers.append(server)
            log.info("metrics on http://%s:%d/metrics", host, server.port)

    async def _stop_servers(self) -> None:
        while self._servers:
            server = self._servers.pop()
            try:
                await server.stop()
            except Exception:
                log.exception("stopping %r failed", server)


__all__ = [
    "ENGINES",
    "Daemon",
    "DaemonOptions",
    "ReloadResult",
    "SwitchableDataplane",
    "SwitchableMonitor",
    "plumbing_config",
    "restart_only_changes",
]
