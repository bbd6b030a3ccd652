"""``Speaker``: one EVPN speaker as a Python object (configuration, core, session engine, dataplane).

Embedding API
=============

A ``Speaker`` owns an :class:`evpn.core.EvpnCore` built from a :class:`evpn.config.SpeakerConfig`, a session
engine (the one ``config.engine`` names: :class:`speaker.native_engine.NativeEngine` by default,
:class:`speaker.exabgp_engine.ExaBgpEngine` for ``"exabgp"``) and a dataplane
(:class:`dataplane.memory.MemoryDataplane` by default). There is no global state: a test or an application
runs two or three speakers in one event loop (or one per thread)::

    async with Speaker(config, listen_address="127.0.0.1", listen_port=17901) as spk:
        await spk.inject(LocalMacLearned(110, MacAddress.from_text("02:00:00:00:00:01")))
        async with spk.subscribe() as changes:
            async for change in changes:          # RoutesToAdvertise, DataplaneApplied, MacMoved, PeerUp ...
                ...
        spk.mac_table(110)                        # ``show evpn mac vni 110``
        spk.vni_table(); spk.rib_by_rd(); spk.next_hops(); spk.peer_states()
        await spk.installed()                     # what the dataplane holds (read back)

A runnable example: ``examples/embed.py``; a process wrapper with a JSON control protocol (for namespaces):
``speaker.tools.speaker_runner``.

- ``Speaker(config, *, engine=None, dataplane=None, event_source=None, clock=time.monotonic,
  listen_address=None, listen_port=179, restarting=False, tick_interval=1.0, select_defer_time=None,
  engine_options=None, name=None)``: ``listen_address``/``listen_port``/``engine_options`` (extra
  keyword arguments of the engine class, e.g. ``initial_backoff``) shape the default engine; the neighbors and
  their ports come from ``config.underlay.neighbors``.
- ``start()`` / ``stop(graceful=False)`` (or ``async with``). ``start`` originates the configured routes,
  reconciles the dataplane to the core's desired state, then starts the engine and the local-learning
  source. ``stop`` ends every session with a Cease NOTIFICATION and withdraws what peers gave us from the
  dataplane; ``stop(graceful=True)`` closes sessions without NOTIFICATION and leaves the dataplane as it
  is, so peers keep our routes as stale and traffic keeps flowing while we restart (RFC 4724 §4).
- ``inject(event)``: a local event (``LocalMacLearned``, ``LocalMacAged``, ``LocalNeighLearned``,
  ``LocalNeighRemoved``, ``LocalPrefixAdded``, ``LocalPrefixRemoved`` from :mod:`evpn.events`); returns once
  its routes were handed to the engine and its dataplane delta applied. Events from ``event_source``
  (``dataplane.monitor.Monitor`` for the kernel; with the default in-memory dataplane,
  ``speaker.dataplane.inject(...)``) go the same way without waiting.
- ``subscribe()``: a :class:`Subscription` (async iterator and async context manager) of
  :data:`SpeakerChange` values in order: ``PeerUp`` / ``PeerDown`` / ``EndOfRib`` (session events),
  ``RoutesToAdvertise`` / ``RoutesToWithdraw`` (after the engine took them), ``DataplaneApplied`` (a delta or
  a reconcile and its ``ApplyResult``), the core's notices (``MacMoved``, ``MacDuplicate``,
  ``StaleRoutesSwept``, ...) and ``LinkChanged``. It starts receiving when ``subscribe()`` is called.
- read models: ``mac_table``, ``vni_table``, ``rib_by_rd``, ``next_hops`` (the core's frozen show values),
  ``peer_states`` (the engine's ``show bgp summary``), ``installed()``; ``core`` for anything else.
- ``flush()`` waits until everything already decided was sent to the engine and applied to the dataplane.

Wiring (all decisions stay in the core): engine events and local events go to ``core.handle`` with
``clock()``; a timer task calls ``core.tick`` every ``tick_interval`` seconds (graceful-restart sweeps,
duplicate-detection expiry). Each ``CoreOutput`` is dispatched in order: routes to the engine (one task,
in order), the dataplane delta to ``dataplane.apply`` (one task, in order; deltas that queued up while an
apply was running are merged into one), notices to logging and subscribers. The engine runs in
``EndOfRibMode.MANUAL``: on ``PeerUp`` the core's output is the peer's whole Adj-RIB-Out, then End-of-RIB.

Graceful restart (RFC 4724):

- helper (a peer restarts): the core keeps the peer's routes as stale, and the dataplane keeps their
  entries, until the peer's End-of-RIB or the restart timer (``config.graceful_restart``); then the core
  sweeps what was not refreshed and the speaker applies the removals.
- restarting (``Speaker(..., restarting=True)``, typically after ``stop(graceful=True)`` with a dataplane
  that kept its entries, such as the kernel): the engine advertises the Restart State and Forwarding State
  bits; at start the dataplane only receives additions, and the full reconcile (which removes entries
  nobody re-advertised) waits for End-of-RIB from every configured neighbor or ``select_defer_time``
  (default: ``stalepath_time``).

Engines run in ``EndOfRibMode.MANUAL``: on ``PeerUp`` the speaker sends the core's whole Adj-RIB-Out for
that peer, then End-of-RIB (RFC 4724 §2); the engine itself replays nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from dataplane.interface import ApplyResult, Dataplane, EventSource, LinkChanged
from dataplane.memory import MemoryDataplane
from evpn.codec.evpn_nlri import IPAddress
from evpn.codec.families import Family
from evpn.config import SpeakerConfig
from evpn.core import EvpnCore
from evpn.dataplane_state import DataplaneDelta, DataplaneEntry
from evpn.events import (
    CoreEvent,
    EndOfRib,
    LocalMacAged,
    LocalMacLearned,
    LocalNeighLearned,
    LocalNeighRemoved,
    LocalPrefixAdded,
    LocalPrefixRemoved,
    PeerDown,
    PeerUp,
)
from evpn.mac import MacAddress
from evpn.notices import (
    Notice,
    RouteRejected,
)
from evpn.outputs import CoreOutput, RoutesToAdvertise, RoutesToWithdraw
from evpn.show import MacTable, NextHopRow, RibByRd, VniRow
from speaker.engine import EndOfRibMode, EngineEvent, PeerState, SessionEngine
from speaker.native_engine import NativeEngine

log = logging.getLogger(__name__)

LocalInput = (
    LocalMacLearned
    | LocalMacAged
    | LocalNeighLearned
    | LocalNeighRemoved
    | LocalPrefixAdded
    | LocalPrefixRemoved
)
_LOCAL_TYPES = (
    LocalMacLearned,
    LocalMacAged,
    LocalNeighLearned,
    LocalNeighRemoved,
    LocalPrefixAdded,
    LocalPrefixRemoved,
)


@dataclass(frozen=True, slots=True)
class DataplaneApplied:
    """A delta (or, with ``reconcile``, a full reconcile to ``delta.add``) given to the dataplane."""

    delta: DataplaneDelta
    result: ApplyResult
    reconcile: bool = False


@dataclass(frozen=True, slots=True)
class ChangesDropped:
    """This subscriber fell ``count`` changes behind its ``maxsize`` and they were dropped."""

    count: int


SpeakerChange = (
    PeerUp
    | PeerDown
    | EndOfRib
    | RoutesToAdvertise
    | RoutesToWithdraw
    | DataplaneApplied
    | Notice
    | LinkChanged
    | ChangesDropped
)


class Subscription:
    """Changes of one speaker from the moment it was created; ``async for`` over it, close it when done
    (``async with speaker.subscribe() as changes``). Iteration ends when the speaker stops."""

    def __init__(self, owner: Speaker, maxsize: int) -> None:
        self._owner = owner
        self._maxsize = maxsize
        self._items: deque[SpeakerChange | None] = deque()
        self._ready = asyncio.Event()
        self._dropped = 0
        self._closed = False

    def _put(self, change: SpeakerChange | None) -> None:
        if self._closed:
            return
        if change is not None and self._maxsize and len(self._items) >= self._maxsize:
            self._dropped += 1
            return
        if self._dropped and change is not None:
            self._items.append(ChangesDropped(self._dropped))
            self._dropped = 0
        self._items.append(change)
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> SpeakerChange:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if item is None:
            self._closed = True
            raise StopAsyncIteration
        return item

    async def get(self, timeout: float | None = None) -> SpeakerChange:
        """The next change (``TimeoutError`` after ``timeout`` s; ``StopAsyncIteration`` once stopped)."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    def drain(self) -> list[SpeakerChange]:
        """The changes already queued, without waiting."""
        out: list[SpeakerChange] = []
        while self._items and self._items[0] is not None:
            item = self._items.popleft()
            assert item is not None
            out.append(item)
        return out

    def close(self) -> None:
        self._closed = True
        self._owner._subscribers.discard(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


@dataclass(slots=True)
class _Reconcile:
    desired: frozenset[DataplaneEntry]


@dataclass(slots=True)
class _Barrier:
    future: asyncio.Future[None]


@dataclass(slots=True)
class _EndOfRib:
    peer: IPAddress
    families: frozenset[Family]


_RouteOp = RoutesToAdvertise | RoutesToWithdraw | _EndOfRib | _Barrier
_AdvertOrWithdraw = RoutesToAdvertise | RoutesToWithdraw
_DataplaneOp = DataplaneDelta | _Reconcile | _Barrier


class Speaker:
    """One EVPN speaker: configuration, core, session engine and dataplane, driven in asyncio.

    ``engine`` defaults to the engine named by ``config.engine`` (``"native"``: ``NativeEngine``,
    ``"exabgp"``: ``ExaBgpEngine``; anything else: ``ValueError``) for ``config.underlay`` listening on
    ``listen_address`` (default: every address) and ``listen_port``; a given engine must use ``EndOfRibMode.MANUAL``.
    ``dataplane`` defaults to a ``MemoryDataplane``; a ``MemoryDataplane`` is also the default
    ``event_source`` (feed it with ``speaker.dataplane.inject``). A given engine is started and stopped with the
    speaker; a given dataplane or event source is not closed by ``stop``.
    ``clock`` gives ``now`` for the core (monotonic seconds). ``restarting`` starts as a graceful restart.
    """

    def __init__(
        self,
        config: SpeakerConfig,
        *,
        engine: SessionEngine | None = None,
        dataplane: Dataplane | None = None,
        event_source: EventSource | None = None,
        clock: Callable[[], float] = time.monotonic,
        listen_address: str | IPAddress | None = None,
        listen_port: int = 179,
        restarting: bool = False,
        tick_interval: float = 1.0,
        select_defer_time: float | None = None,
        engine_options: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.config = config
        self.name = name or str(config.underlay.router_id)
        self._core = EvpnCore(config)
        self._clock = clock
        self._owns_engine = engine is None
        if engine is None:
            options: dict[str, Any] = {
                "listen_address": listen_address,
                "listen_port": listen_port,
                "graceful_restart": config.graceful_restart,
                "restarting": restarting,
                "forwarding_preserved": restarting,
                "end_of_rib_mode": EndOfRibMode.MANUAL,
            }
            options.update(engine_options or {})
            engine = _default_engine(config, options)
        elif getattr(engine, "end_of_rib_mode", EndOfRibMode.MANUAL) is not EndOfRibMode.MANUAL:
            raise ValueError(
                "the speaker's engine must use EndOfRibMode.MANUAL (End-of-RIB after the core's table)"
            )
        self.engine: SessionEngine = engine
        self._owns_dataplane = dataplane is None
        self.dataplane: Dataplane = dataplane if dataplane is not None else MemoryDataplane()
        if event_source is None and isinstance(self.dataplane, MemoryDataplane):
            event_source = self.dataplane
        self.event_source = event_source
        self.restarting = restarting
        self._tick_interval = tick_interval
        self._select_defer_time = (
            select_defer_time
            if select_defer_time is not None
            else float(config.graceful_restart.stalepath_time)
        )
        self._awaiting_eor: set[IPAddress] = set()
        self._defer_deadline: float | None = None
        self._subscribers: set[Subscription] = set()
        self._route_ops: deque[_RouteOp] = deque()
        self._route_wake = asyncio.Event()
        self._dp_ops: deque[_DataplaneOp] = deque()
        self._dp_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._stopped = False
        self.errors: list[BaseException] = []

    # ---- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Originate, reconcile the dataplane (deferred while restarting), start the engine and sources."""
        if self._started:
            return
        self._started = True
        out = self._core.start(self._clock())
        self._dispatch_routes(out)
        self._notify(out.notices)
        self._awaiting_eor = {n.address for n in self.config.underlay.neighbors} if self.restarting else set()
        if self._awaiting_eor:
            # RFC 4724 §4.1: keep the forwarding state; add what we know, remove only after End-of-RIB.
            self._defer_deadline = self._clock() + self._select_defer_time
            self._dp_ops.append(DataplaneDelta(add=tuple(self._core.desired_dataplane())))
        else:
            self._dp_ops.append(_Reconcile(self._core.desired_dataplane()))
        self._dp_wake.set()
        self._spawn(self._route_worker(), "routes")
        self._spawn(self._dataplane_worker(), "dataplane")
        try:
            await self.flush()
            await self.engine.start()
        except BaseException:  # e.g. the port is taken: leave nothing running
            await self.stop()
            raise
        self._spawn(self._engine_pump(), "engine-events")
        if self.event_source is not None:
            self._spawn(self._source_pump(self.event_source), "local-events")
        self._spawn(self._ticker(), "ticker")
        log.info("%s: started", self.name)

    async def stop(self, graceful: bool = False, *, keep_dataplane: bool | None = None) -> None:
        """Stop the sessions (Cease, or silently with ``graceful``) and the tasks; idempotent.

        ``keep_dataplane`` (default: ``graceful``) leaves every installed entry in place, so forwarding goes
        on while the process restarts; with a Cease (``graceful`` False) the peers still drop our routes.
        """
        keep = graceful if keep_dataplane is None else keep_dataplane
        if self._stopped:
            return
        self._stopped = True
        if not self._started:
            return
        pump = next((t for t in self._tasks if t.get_name().endswith("engine-events")), None)
        for task in self._tasks:
            if task is not pump and not task.get_name().endswith(("routes", "dataplane")):
                task.cancel()
        if keep:
            # Forwarding state stays: nothing the sessions' end implies reaches the core or the dataplane.
            if pump is not None:
                pump.cancel()
            await self.engine.stop(graceful=graceful)
        else:
            await self.engine.stop(graceful=graceful)
            # the engine's last PeerDown events withdraw the peers' routes from the dataplane
            if pump is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pump), 5.0)
                pump.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush(), 10.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._owns_dataplane:
            await self.dataplane.close()
        for sub in list(self._subscribers):
            sub._put(None)
        self._subscribers.clear()
        log.info("%s: stopped%s", self.name, " (graceful)" if graceful else "")

    async def __aenter__(self) -> Speaker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._started and not self._stopped

    # ---- inputs ---------------------------------------------------------------------------------------

    async def inject(self, event: LocalInput) -> None:
        """Apply a local event and wait until its routes and dataplane delta were carried out."""
        if not isinstance(event, _LOCAL_TYPES):
            raise TypeError(f"not a local event: {event!r}")
        if self._stopped:
            raise RuntimeError(f"speaker {self.name} is stopped")
        self._handle(event)
        if self._started:
            await self.flush()

    async def inject_many(self, events: Iterable[LocalInput]) -> None:
        """Several local events, then one ``flush``."""
        if self._stopped:
            raise RuntimeError(f"speaker {self.name} is stopped")
        for event in events:
            if not isinstance(event, _LOCAL_TYPES):
                raise TypeError(f"not a local event: {event!r}")
            self._handle(event)
        if self._started:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every output decided so far was given to the engine and applied to the dataplane."""
        if self._stopped and not self._tasks:
            return
        loop = asyncio.get_running_loop()
        routes: asyncio.Future[None] = loop.create_future()
        dp: asyncio.Future[None] = loop.create_future()
        self._route_ops.append(_Barrier(routes))
        self._route_wake.set()
        self._dp_ops.append(_Barrier(dp))
        self._dp_wake.set()
        await asyncio.gather(routes, dp)

    def subscribe(self, maxsize: int = 0) -> Subscription:
        """A new subscription to this speaker's changes (``maxsize`` 0: unbounded)."""
        sub = Subscription(self, maxsize)
        if self._stopped:
            sub._put(None)
        else:
            self._subscribers.add(sub)
        return sub

    # ---- read models ----------------------------------------------------------------------------------

    @property
    def core(self) -> EvpnCore:
        return self._core

    def mac_table(self, vni: int) -> MacTable:
        return self._core.mac_table(vni)

    def vni_table(self) -> tuple[VniRow, ...]:
        return self._core.vni_table()

    def rib_by_rd(self) -> tuple[RibByRd, ...]:
        return self._core.rib_by_rd()

    def rib_path_count(self) -> int:
        return self._core.rib_path_count()

    def next_hops(self) -> tuple[NextHopRow, ...]:
        return self._core.next_hops()

    def peer_states(self) -> list[PeerState]:
        return self.engine.peer_states()

    async def installed(self) -> frozenset[DataplaneEntry]:
        return await self.dataplane.installed()

    def reconfigure(self, config: SpeakerConfig) -> None:
        """Apply a new configuration: only the differences reach the peers and the dataplane (``reload``).

        The configuration must be valid (``evpn.config_validation.validate``); ``flush()`` waits for the result.
        """
        out = self._core.reconfigure(config, self._clock())
        self.config = config
        self._dispatch(out)

    def clear_duplicate(self, vni: int, mac: MacAddress) -> None:
        """``clear evpn dup-addr vni VNI mac MAC``."""
        self._dispatch(self._core.clear_duplicate(vni, mac, self._clock()))

    # ---- the loop -------------------------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(f"speaker-{self.name}-{name}")
        self._tasks.append(task)

    def _handle(self, event: CoreEvent) -> None:
        try:
            out = self._core.handle(event, self._clock())
        except Exception as exc:  # a bug in the core must not take every session down with it
            log.exception("%s: core failed on %r", self.name, event)
            self.errors.append(exc)
            return
        if isinstance(event, PeerUp | PeerDown | EndOfRib):
            self._publish(event)
        self._dispatch(out)
        if isinstance(event, PeerUp):
            self._route_ops.append(_EndOfRib(event.peer, event.families))
            self._route_wake.set()
        elif isinstance(event, EndOfRib) and self._awaiting_eor and event.family is Family.L2VPN_EVPN:
            self._awaiting_eor.discard(event.peer)
            if not self._awaiting_eor:
                self._end_deferral("End-of-RIB from every neighbor")

    def _end_deferral(self, why: str) -> None:
        log.info("%s: graceful restart complete (%s): reconciling the dataplane", self.name, why)
        self._awaiting_eor.clear()
        self._defer_deadline = None
        self._dp_ops.append(_Reconcile(self._core.desired_dataplane()))
        self._dp_wake.set()

    def _dispatch(self, out: CoreOutput) -> None:
        if not out:
            return
        self._dispatch_routes(out)
        if out.dataplane:
            self._dp_ops.append(out.dataplane)
            self._dp_wake.set()
        self._notify(out.notices)

    def _dispatch_routes(self, out: CoreOutput) -> None:
        if out.withdraw or out.advertise:
            self._route_ops.extend(out.withdraw)
            self._route_ops.extend(out.advertise)
            self._route_wake.set()

    def _notify(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            if isinstance(notice, RouteRejected):
                log.debug("%s: %s", self.name, notice)
            else:
                log.info("%s: %s", self.name, notice)
            self._publish(notice)

    def _publish(self, change: SpeakerChange) -> None:
        for sub in self._subscribers:
            sub._put(change)

    async def _engine_pump(self) -> None:
        events: AsyncIterator[EngineEvent] = self.engine.events()
        async for event in events:
            self._handle(event)
            await asyncio.sleep(0)  # let the workers and the engine's readers run between UPDATEs

    async def _source_pump(self, source: EventSource) -> None:
        async for event in source.events():
            if isinstance(event, LinkChanged):
                log.info(
                    "%s: link %s (VNI %s) %s",
                    self.name,
                    event.ifname,
                    event.vni,
                    "up" if event.up else "down",
                )
                self._publish(event)
                continue
            self._handle(event)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            now = self._clock()
            try:
                out = self._core.tick(now)
            except Exception as exc:
                log.exception("%s: core tick failed", self.name)
                self.errors.append(exc)
                continue
            self._dispatch(out)
            if self._defer_deadline is not None and now >= self._defer_deadline:
                self._end_deferral("selection deferral timer")

    async def _route_worker(self) -> None:
        ops = self._route_ops
        engine = self.engine
        while True:
            if not ops:
                self._route_wake.clear()
                await self._route_wake.wait()
                continue
            op = ops.popleft()
            try:
                if isinstance(op, RoutesToAdvertise):
                    batch = _take_alike(ops, op)
                    routes = op.routes if len(batch) == 1 else tuple(r for o in batch for r in o.routes)
                    await engine.advertise(op.peer, op.attributes, op.next_hop, routes)
                    for done in batch:
                        self._publish(done)
                elif isinstance(op, RoutesToWithdraw):
                    batch = _take_alike(ops, op)
                    routes = op.routes if len(batch) == 1 else tuple(r for o in batch for r in o.routes)
                    await engine.withdraw(op.peer, routes)
                    for done in batch:
                        self._publish(done)
                elif isinstance(op, _EndOfRib):
                    await self._end_of_rib(op)
                elif not op.future.done():
                    op.future.set_result(None)
            except Exception as exc:
                log.exception("%s: engine failed on %r", self.name, type(op).__name__)
                self.errors.append(exc)

    async def _end_of_rib(self, op: _EndOfRib) -> None:
        await self.engine.end_of_rib(op.peer)

    async def _dataplane_worker(self) -> None:
        ops = self._dp_ops
        while True:
            if not ops:
                self._dp_wake.clear()
                await self._dp_wake.wait()
                continue
            op = ops.popleft()
            if isinstance(op, _Barrier):
                if not op.future.done():
                    op.future.set_result(None)
                continue
            try:
                if isinstance(op, _Reconcile):
                    result = await self.dataplane.reconcile(op.desired)
                    self._publish(DataplaneApplied(DataplaneDelta(add=tuple(op.desired)), result, True))
                    continue
                deltas = [op]
                while ops and isinstance(ops[0], DataplaneDelta):
                    nxt = ops.popleft()
                    assert isinstance(nxt, DataplaneDelta)
                    deltas.append(nxt)
                delta = merge_deltas(deltas)
                if not delta:
                    continue
                result = await self.dataplane.apply(delta)
                if result.failures:
                    log.warning(
                        "%s: dataplane: %d entries failed: %s",
                        self.name,
                        len(result.failures),
                        result.failures[:3],
                    )
                self._publish(DataplaneApplied(delta, result))
            except Exception as exc:
                log.exception("%s: dataplane failed", self.name)
                self.errors.append(exc)


_MAX_BATCH = 4096
"""Routes handed to the engine in one call at most (it packs them into as few UPDATEs as fit)."""


def _take_alike(ops: deque[_RouteOp], first: _AdvertOrWithdraw) -> list[_AdvertOrWithdraw]:
    """``first`` and the queued operations right after it that the engine can send with it: advertisements
    to the same peer with equal attributes and next hop (or withdrawals from the same peer). Local MACs are
    learned one by one; without this each would go out in an UPDATE of its own."""
    batch = [first]
    size = len(first.routes)
    while ops and size < _MAX_BATCH:
        nxt = ops[0]
        if type(nxt) is not type(first) or nxt.peer != first.peer:
            break
        if isinstance(nxt, RoutesToAdvertise):
            assert isinstance(first, RoutesToAdvertise)
            if nxt.next_hop != first.next_hop or not (
                nxt.attributes is first.attributes or nxt.attributes == first.attributes
            ):
                break
        batch.append(nxt)
        size += len(nxt.routes)
        ops.popleft()
    return batch


def _default_engine(config: SpeakerConfig, options: dict[str, Any]) -> SessionEngine:
    """The engine named by ``config.engine`` ("native" or "exabgp"), built with ``options``."""
    underlay = dataclasses.replace(config.underlay, neighbors=config.neighbors())  # with host sessions
    if config.engine == "native":
        return NativeEngine(underlay, **options)
    if config.engine == "exabgp":
        from speaker.exabgp_engine import ExaBgpEngine  # imported only when chosen

        return ExaBgpEngine(underlay, **options)
    raise ValueError(f"unknown engine {config.engine!r} in the configuration (expected 'native' or 'exabgp')")


def merge_deltas(deltas: Sequence[DataplaneDelta]) -> DataplaneDelta:
    """Deltas in order as one (an add then a remove of the same entry cancels out)."""
    if len(deltas) == 1:
        return deltas[0]
    adds: dict[DataplaneEntry, None] = {}
    removes: dict[DataplaneEntry, None] = {}
    for delta in deltas:
        for entry in delta.remove:
            if entry in adds:
                del adds[entry]
            else:
                removes[entry] = None
        for entry in delta.add:
            if entry in removes:
                del removes[entry]
            else:
                adds[entry] = None
    return DataplaneDelta(tuple(adds), tuple(removes))


__all__ = [
    "ChangesDropped",
    "DataplaneApplied",
    "LocalInput",
    "Speaker",
    "SpeakerChange",
    "Subscription",
    "merge_deltas",
]
