"""Prometheus metrics of one speaker: text exposition format 0.0.4, written here (no client library, no global
registry: each ``Metrics`` belongs to one speaker, so several speakers can share a process).

- ``Metrics(speaker)``: counters fed with the speaker's changes (:meth:`Metrics.observe_change`), gauges read
  from its read models at scrape time (:meth:`Metrics.render`).
- ``MetricsCollector(speaker, metrics)``: a task consuming ``speaker.subscribe()`` into ``metrics``; it also
  times the core's event handling (see below).
- ``MetricsServer(metrics_or_speaker, host, port)``: an asyncio HTTP server answering ``GET /metrics`` (404
  for any other path). Given a speaker (or a daemon) instead of a ``Metrics``, it builds both and runs the
  collector itself.

Latency: the speaker does not stamp its changes with the time of the engine event behind them, so the
collector wraps the core's ``handle`` (an instance attribute on that one core, removed at ``stop``) and
measures (a) ``evpn_core_handle_seconds{event=...}``: the core's handling time per event (``RoutesReceived``
is one UPDATE) and (b) ``evpn_event_to_dataplane_seconds``: from the start of that handling to the collector
seeing the ``DataplaneApplied`` that carried its delta.

Metric names (all prefixed ``evpn_``)::

    bgp_session_state{peer,state}               gauge, 1 for the peer's current state, 0 for the others
    bgp_session_uptime_seconds{peer}            gauge
    bgp_messages_received_total{peer}           counter
    bgp_messages_sent_total{peer}               counter
    bgp_session_flaps_total{peer}               counter
    bgp_prefixes_received{peer}                 gauge
    routes{type,vni,origin}                     gauge, RIB paths by route type, VNI and local/remote
    macs{vni,kind}                              gauge, MACs by kind (local, remote, none)
    mac_duplicates{vni}                         gauge, MACs now duplicate-detected
    remote_vteps                                gauge
    mac_moves_total{vni}                        counter (MacMoved)
    mac_duplicate_detections_total{vni}         counter (MacDuplicate)
    routes_rejected_total{reason}               counter (RouteRejected)
    stale_routes_swept_total                    counter (StaleRoutesSwept)
    dataplane_applies_total{kind}               counter, kind delta or reconcile (DataplaneApplied)
    dataplane_entries_total{op}                 counter, op add or remove (entries applied)
    dataplane_errors_total                      counter, entries that failed
    dataplane_failed_applies_total              counter, applies with at least one failure
    changes_dropped_total                       counter, changes the collector fell behind on
    core_handle_seconds{event}                  histogram
    event_to_dataplane_seconds                  histogram
    speaker_up                                  gauge, 0 when the read models cannot be read
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dataplane.interface import ApplyResult
from evpn.codec.evpn_nlri import EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute
from evpn.dataplane_state import DataplaneDelta, DataplaneEntry
from evpn.notices import MacDuplicate, MacMoved, RouteRejected, StaleRoutesSwept
from evpn.show import MacTable, NextHopRow, RibByRd, VniRow
from speaker.engine import PeerState
from speaker.show import frr_ext_community
from speaker.speaker import ChangesDropped, DataplaneApplied

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
SESSION_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")
ROUTE_TYPE_NAMES = {1: "ead", 2: "macip", 3: "multicast", 4: "es", 5: "prefix"}
_MAX_PENDING = 10_000
_PENDING_AGE = 60.0

Labels = Mapping[str, str]


class MetricsSource(Protocol):
    """The read models the gauges come from (``speaker.speaker.Speaker`` and the daemon satisfy it)."""

    def mac_table(self, vni: int) -> MacTable: ...

    def vni_table(self) -> tuple[VniRow, ...]: ...

    def rib_by_rd(self) -> tuple[RibByRd, ...]: ...

    def next_hops(self) -> tuple[NextHopRow, ...]: ...

    def peer_states(self) -> list[PeerState]: ...


# ---- exposition format -----------------------------------------------------------------------------------


def escape_label_value(value: str) -> str:
    """A label value as the exposition format quotes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


@dataclass
class Family:
    """One metric family: ``# HELP``, ``# TYPE`` and its samples (``suffix`` for ``_bucket``/``_sum``/...)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, labels: Labels | None = None, suffix: str = "") -> None:
        self.samples.append((suffix, dict(labels or {}), value))

    def render(self, const: Labels) -> str:
        lines = [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for suffix, labels, value in self.samples:
            lines.append(f"{self.name}{suffix}{format_labels({**const, **labels})} {format_value(value)}")
        return "\n".join(lines) + "\n"


class Histogram:
    """Cumulative buckets, sum and count, for one label set."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1

    def add_to(self, family: Family, labels: Labels | None = None) -> None:
        base = dict(labels or {})
        for bound, count in zip(self.bounds, self.counts, strict=True):
            family.add(count, {**base, "le": format_value(bound)}, "_bucket")
        family.add(self.count, {**base, "le": "+Inf"}, "_bucket")
        family.add(self.sum, base, "_sum")
        family.add(self.count, base, "_count")


# ---- the metrics of one speaker --------------------------------------------------------------------------


def _route_vni(
    route: EvpnRoute, ext: Iterable[str], rd_vni: Mapping[str, int], rt_vni: Mapping[str, int]
) -> str:
    rd = str(getattr(route, "rd", ""))
    if rd in rd_vni:
        return str(rd_vni[rd])
    if isinstance(route, MacIpRoute):
        return str(route.label1)
    if isinstance(route, IpPrefixRoute):
        return str(route.label)
    if isinstance(route, InclusiveMulticastRoute):  # by route target: exact, or ``*:N`` import wildcards
        for community in ext:
            text = frr_ext_community(community)
            if not text.startswith("RT:"):
                continue
            vni = rt_vni.get(text[3:])
            if vni is None:
                vni = rt_vni.get("*:" + text.rsplit(":", 1)[1])
            if vni is not None:
                return str(vni)
    return "none"


class Metrics:
    """Counters and histograms of one speaker, and gauges read from ``speaker`` (if given) at each render.

    ``labels`` are added to every sample (e.g. ``{"speaker": "leaf1"}`` when several share one endpoint).
    """

    def __init__(self, speaker: MetricsSource | None = None, *, labels: Labels | None = None) -> None:
        self.speaker = speaker
        self.labels = dict(labels or {})
        self.mac_moves: dict[int, int] = {}
        self.mac_duplicates: dict[int, int] = {}
        self.routes_rejected: dict[str, int] = {}
        self.stale_swept = 0
        self.dataplane_applies = {"delta": 0, "reconcile": 0}
        self.dataplane_entries = {"add": 0, "remove": 0}
        self.dataplane_errors = 0
        self.dataplane_failed_applies = 0
        self.changes_dropped = 0
        self.core_handle: dict[str, Histogram] = {}
        self.event_to_dataplane = Histogram()

    # -- feeding --

    def observe_change(self, change: object) -> None:
        """Count one ``SpeakerChange`` (others are ignored)."""
        if isinstance(change, MacMoved):
            self.mac_moves[change.vni] = self.mac_moves.get(change.vni, 0) + 1
        elif isinstance(change, MacDuplicate):
            self.mac_duplicates[change.vni] = self.mac_duplicates.get(change.vni, 0) + 1
        elif isinstance(change, DataplaneApplied):
            self.observe_apply(change.delta, change.result, change.reconcile)
        elif isinstance(change, RouteRejected):
            reason = change.reason.name.lower()
            self.routes_rejected[reason] = self.routes_rejected.get(reason, 0) + 1
        elif isinstance(change, StaleRoutesSwept):
            self.stale_swept += change.count
        elif isinstance(change, ChangesDropped):
            self.changes_dropped += change.count

    def observe_apply(self, delta: DataplaneDelta, result: ApplyResult, reconcile: bool = False) -> None:
        self.dataplane_applies["reconcile" if reconcile else "delta"] += 1
        self.dataplane_entries["add"] += result.added
        self.dataplane_entries["remove"] += result.removed
        self.dataplane_errors += len(result.failures)
        if result.failures:
            self.dataplane_failed_applies += 1

    def observe_core_handle(self, event: str, seconds: float) -> None:
        hist = self.core_handle.get(event)
        if hist is None:
            hist = self.core_handle[event] = Histogram()
        hist.observe(seconds)

    # -- exposition --

    def families(self) -> list[Family]:
        """Every metric family, gauges read from the speaker now."""
        fams: list[Family] = []
        up = Family("evpn_speaker_up", "gauge", "1 when the speaker's read models could be read")
        fams.append(up)
        if self.speaker is not None:
            try:
                fams.extend(self._gauges(self.speaker))
                up.add(1)
            except Exception as exc:  # not started, or stopping: the counters are still worth serving
                log.debug("metrics: read models unavailable: %s", exc)
                up.add(0)
        fams.extend(self._counters())
        return fams

    def render(self) -> str:
        """The exposition text (format 0.0.4)."""
        return "".join(f.render(self.labels) for f in self.families())

    def _gauges(self, spk: MetricsSource) -> list[Family]:
        peers = spk.peer_states()
        state = Family("evpn_bgp_session_state", "gauge", "BGP session state: 1 for the current state")
        uptime = Family("evpn_bgp_session_uptime_seconds", "gauge", "Seconds since the session came up")
        msg_in = Family("evpn_bgp_messages_received_total", "counter", "BGP messages received")
        msg_out = Family("evpn_bgp_messages_sent_total", "counter", "BGP messages sent")
        flaps = Family("evpn_bgp_session_flaps_total", "counter", "Times the session went down")
        pfx = Family("evpn_bgp_prefixes_received", "gauge", "Prefixes received from the peer")
        for p in peers:
            lab = {"peer": str(p.peer)}
            states = SESSION_STATES if p.state in SESSION_STATES else (*SESSION_STATES, p.state)
            for s in states:
                state.add(1 if s == p.state else 0, {**lab, "state": s})
            uptime.add(p.uptime if p.state == "Established" and p.uptime is not None else 0, lab)
            msg_in.add(p.messages_in, lab)
            msg_out.add(p.messages_out, lab)
            flaps.add(p.flaps, lab)
            pfx.add(p.prefixes_received, lab)

        vnis = spk.vni_table()
        rd_vni = {r.rd: r.vni for r in vnis}
        rt_vni: dict[str, int] = {}
        for r in vnis:
            if r.kind == "L2":
                for rt in r.import_rts:
                    rt_vni.setdefault(rt, r.vni)
        routes = Family("evpn_routes", "gauge", "RIB paths by route type, VNI and origin (local or remote)")
        counts: dict[tuple[str, str, str], int] = {}
        for group in spk.rib_by_rd():
            for path in group.paths:
                rtype = ROUTE_TYPE_NAMES.get(int(path.route.route_type), "unknown")
                vni = _route_vni(path.route, path.ext_communities, rd_vni, rt_vni)
                key = (rtype, vni, "local" if path.peer is None else "remote")
                counts[key] = counts.get(key, 0) + 1
        for (rtype, vni, origin), n in sorted(counts.items()):
            routes.add(n, {"type": rtype, "vni": vni, "origin": origin})

        macs = Family("evpn_macs", "gauge", "MACs of an L2VNI by kind (local, remote, none)")
        dups = Family("evpn_mac_duplicates", "gauge", "MACs of an L2VNI now duplicate-detected")
        for r in vnis:
            if r.kind != "L2":
                continue
            table = spk.mac_table(r.vni)
            kinds = {"local": 0, "remote": 0, "none": 0}
            for row in table.rows:
                kinds[row.kind] = kinds.get(row.kind, 0) + 1
            for kind, n in kinds.items():
                macs.add(n, {"vni": str(r.vni), "kind": kind})
            dups.add(sum(1 for row in table.rows if row.duplicate), {"vni": str(r.vni)})
        vteps = Family("evpn_remote_vteps", "gauge", "Remote VTEPs with dataplane entries")
        vteps.add(len(spk.next_hops()))
        return [state, uptime, msg_in, msg_out, flaps, pfx, routes, macs, dups, vteps]

    def _counters(self) -> list[Family]:
        moves = Family("evpn_mac_moves_total", "counter", "MAC moves (RFC 7432 section 15)")
        for vni, n in sorted(self.mac_moves.items()):
            moves.add(n, {"vni": str(vni)})
        dup = Family("evpn_mac_duplicate_detections_total", "counter", "MACs detected as duplicate")
        for vni, n in sorted(self.mac_duplicates.items()):
            dup.add(n, {"vni": str(vni)})
        rejected = Family("evpn_routes_rejected_total", "counter", "Received routes not accepted, by reason")
        for reason, n in sorted(self.routes_rejected.items()):
            rejected.add(n, {"reason": reason})
        swept = Family(
            "evpn_stale_routes_swept_total", "counter", "Stale routes removed after graceful restart"
        )
        swept.add(self.stale_swept)
        applies = Family("evpn_dataplane_applies_total", "counter", "Dataplane applies (delta or reconcile)")
        for kind, n in self.dataplane_applies.items():
            applies.add(n, {"kind": kind})
        entries = Family("evpn_dataplane_entries_total", "counter", "Dataplane entries applied (add, remove)")
        for op, n in self.dataplane_entries.items():
            entries.add(n, {"op": op})
        errors = Family("evpn_dataplane_errors_total", "counter", "Dataplane entries that failed to apply")
        errors.add(self.dataplane_errors)
        failed = Family("evpn_dataplane_failed_applies_total", "counter", "Dataplane applies with a failure")
        failed.add(self.dataplane_failed_applies)
        dropped = Family("evpn_changes_dropped_total", "counter", "Speaker changes the collector missed")
        dropped.add(self.changes_dropped)
        handle = Family(
            "evpn_core_handle_seconds",
            "histogram",
            "Core handling time per event (RoutesReceived: one UPDATE)",
        )
        for event, hist in sorted(self.core_handle.items()):
            hist.add_to(handle, {"event": event})
        e2d = Family(
            "evpn_event_to_dataplane_seconds",
            "histogram",
            "From the core handling an event to its dataplane delta applied",
        )
        self.event_to_dataplane.add_to(e2d)
        return [moves, dup, rejected, swept, applies, entries, errors, failed, dropped, handle, e2d]


# ---- the collector ---------------------------------------------------------------------------------------


def _resolve(source: object, name: str) -> Any:
    """``source.name``, or ``source.speaker.name`` for a daemon wrapping a speaker; None when neither."""
    value = getattr(source, name, None)
    if value is None:
        inner = getattr(source, "speaker", None)
        value = getattr(inner, name, None) if inner is not None else None
    return value


class MetricsCollector:
    """Feeds ``metrics`` from ``speaker.subscribe()`` in a task; with ``instrument_core``, times the core.

    ``speaker`` is a ``Speaker`` (or an object with a ``speaker`` attribute, such as the daemon); the
    subscription is taken in :meth:`start`, so start the collector once the speaker exists.
    """

    def __init__(
        self,
        speaker: object,
        metrics: Metrics | None = None,
        *,
        instrument_core: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.speaker = speaker
        self.metrics = metrics if metrics is not None else Metrics(speaker)  # type: ignore[arg-type]
        self.instrument_core = instrument_core
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self._core: Any = None
        self._wrapper: Callable[..., Any] | None = None
        self._pending: list[tuple[float, DataplaneDelta]] = []

    async def start(self) -> None:
        if self._task is not None:
            return
        subscribe = _resolve(self.speaker, "subscribe")
        if subscribe is None:
            log.warning("metrics: %r has no subscribe(): change counters stay at 0", self.speaker)
            return
        if self.instrument_core:
            self._instrument()
        self._subscription = subscribe()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-collector")

    async def stop(self) -> None:
        self._uninstrument()
        task, self._task = self._task, None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> MetricsCollector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        async for change in self._subscription:
            self.metrics.observe_change(change)
            if isinstance(change, DataplaneApplied) and not change.reconcile:
                self._applied(change.delta)

    # -- latency --

    def _instrument(self) -> None:
        core = _resolve(self.speaker, "core")
        if core is None or not hasattr(core, "handle"):
            return
        original = core.handle
        metrics, clock, pending = self.metrics, self._clock, self._pending

        def timed_handle(event: object, now: float) -> Any:
            start = clock()
            out = original(event, now)
            metrics.observe_core_handle(type(event).__name__, clock() - start)
            if getattr(out, "dataplane", None):
                if len(pending) >= _MAX_PENDING:
                    del pending[: _MAX_PENDING // 2]
                pending.append((start, out.dataplane))
            return out

        setattr(core, "handle", timed_handle)  # noqa: B010 (an instance attribute on this core only)
        self._core, self._wrapper = core, timed_handle

    def _uninstrument(self) -> None:
        core, wrapper = self._core, self._wrapper
        self._core = self._wrapper = None
        if core is not None and vars(core).get("handle") is wrapper:
            delattr(core, "handle")

    def _applied(self, delta: DataplaneDelta) -> None:
        """Deltas are applied in order (consecutive ones merged): the apply covers the pending deltas up to
        the last one that is this delta or shares an entry with it."""
        pending = self._pending
        if not pending:
            return
        entries: set[DataplaneEntry] = {*delta.add, *delta.remove}
        last = -1
        for i, (_, d) in enumerate(pending):
            if d is delta or any(e in entries for e in (*d.add, *d.remove)):
                last = i
        now = self._clock()
        for start, _ in pending[: last + 1]:
            self.metrics.event_to_dataplane.observe(now - start)
        del pending[: last + 1]
        while pending and now - pending[0][0] > _PENDING_AGE:  # never applied (e.g. cancelled out)
            pending.pop(0)


# ---- the HTTP endpoint -----------------------------------------------------------------------------------


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (``port`` 0: any free port, see :attr:`port`); 404 otherwise.

    ``source`` is a ``Metrics``, or a speaker (or daemon): then the server builds a ``Metrics`` and runs a
    ``MetricsCollector`` for it between ``start`` and ``stop``.
    """

    def __init__(self, source: Metrics | object, host: str = "127.0.0.1", port: int = 9464) -> None:
        self.host = host
        self._port = port
        self.collector: MetricsCollector | None = None
        if isinstance(source, Metrics):
            self.metrics = source
        else:
            self.metrics = Metrics(source)  # type: ignore[arg-type]
            self.collector = MetricsCollector(source, self.metrics)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when started with 0)."""
        if self._server is not None and self._server.sockets:
            port: int = self._server.sockets[0].getsockname()[1]
            return port
        return self._port

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        if self.collector is not None:
            await self.collector.start()

    async def stop(self) -> None:
        if self.collector is not None:
            await self.collector.stop()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 10)
            while True:  # headers, up to the blank line
                line = await asyncio.wait_for(reader.readline(), 10)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request_line.decode("latin-1").split()
            if len(parts) < 2:
                status, body, ctype = "400 Bad Request", b"bad request\n", "text/plain"
            elif parts[0] not in ("GET", "HEAD"):
                status, body, ctype = "405 Method Not Allowed", b"method not allowed\n", "text/plain"
            elif parts[1].split("?", 1)[0] != "/metrics":
                status, body, ctype = "404 Not Found", b"not found: try /metrics\n", "text/plain"
            else:
                status, body, ctype = "200 OK", self.metrics.render().encode(), CONTENT_TYPE
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if parts[:1] != ["HEAD"] else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
