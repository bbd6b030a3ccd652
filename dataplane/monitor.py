"""Kernel events -> local-learning events: bridge FDB and SVI neighbour notifications, link state, and the
router namespace's own routes (:class:`evpn.events.KernelRoutes`, see :mod:`dataplane.kernel_routes`).

One netlink socket per namespace that holds L2VNI devices, subscribed to link and neighbour groups and
read from the event loop as soon as the kernel writes (a migrated VM's GARP or unsolicited NA becomes an
event within milliseconds). Local means: not ``extern_learn`` (ours) and not on a VXLAN port. The current
state is reported first (a dump right after subscribing), then changes. STALE neighbours are re-probed
every ``probe_interval`` seconds so silent hosts stay REACHABLE and their routes are not withdrawn.
The first event is always the router's ``KernelRoutes``, then the local state, then changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dataplane import netns, rtnl
from dataplane.interface import LocalEvent
from dataplane.kernel_routes import KernelRouteWatch
from dataplane.layout import Layout, router_veth_name
from dataplane.reconciler import RTPROT_EVPN_SPEAKER
from dataplane.translate import EventTranslator


@dataclass(slots=True)
class _Watch:
    """One namespace: its subscribed socket, its receive buffer and the translator holding what was reported
    so far."""

    name: str | None
    sock: socket.socket
    translator: EventTranslator
    reader: rtnl.DatagramReader


class Monitor:
    """``async for event in Monitor(layout).events()`` yields :data:`dataplane.interface.LocalEvent` values."""

    def __init__(
        self,
        layout: Layout,
        *,
        probe_interval: float = 30.0,
        protocol: int = RTPROT_EVPN_SPEAKER,
        route_coalesce: float = 0.005,
    ) -> None:
        """``protocol``: the routes the reconciler installs, left out of ``KernelRoutes``;
        ``route_coalesce``: how long a burst of route changes may last before the table is read again."""
        self._layout = layout
        self._probe_interval = probe_interval
        self._protocol = protocol
        self._route_coalesce = route_coalesce
        self.resyncs = 0
        """How often notifications were lost (ENOBUFS) and the state was read again."""
        vnis = {l2.vni: layout.l2_netns(l2) for l2 in layout.config.l2vnis}
        self._svi_vni: dict[str | None, dict[str, int]] = {}
        self._watched: dict[str | None, dict[str, int]] = {}
        for vni, ns in vnis.items():
            self._svi_vni.setdefault(ns, {})[f"br-pe-{vni}"] = vni
            watched = self._watched.setdefault(ns, {})
            for name in (f"br-pe-{vni}", f"vni{vni}", router_veth_name(vni)):
                watched[name] = vni

    async def events(self) -> AsyncIterator[LocalEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[LocalEvent] = asyncio.Queue()
        states: list[_Watch] = []
        probe: asyncio.Task[None] | None = None
        routes = KernelRouteWatch(
            self._layout.namespaces.router, self._protocol, coalesce=self._route_coalesce
        )
        follow: asyncio.Task[None] | None = None
        try:
            queue.put_nowait(await routes.start())
            follow = asyncio.create_task(routes.follow(queue.put_nowait), name="kernel-routes")
            for ns in self._svi_vni:
                with netns.entered(ns):
                    sock = rtnl.open_socket(rtnl.RTMGRP_LINK | rtnl.RTMGRP_NEIGH, rcvbuf=32 << 20)
                rtnl.drop_vxlan_self_notifications(sock)
                sock.setblocking(False)
                translator = EventTranslator(self._svi_vni[ns], self._watched.get(ns, {}))
                state = _Watch(ns, sock, translator, rtnl.DatagramReader())
                states.append(state)
                loop.add_reader(sock.fileno(), self._readable, state, queue)
                self._resync(state, queue)
            probe = asyncio.create_task(self._probe_loop(states))
            while True:
                yield await queue.get()
        finally:
            for task in (probe, follow):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            routes.close()
            for state in states:
                loop.remove_reader(state.sock.fileno())
                state.sock.close()

    # -- input ----------------------------------------------------------------------------------------------

    def _readable(self, state: _Watch, queue: asyncio.Queue[LocalEvent]) -> None:
        while True:
            try:
                data = state.reader.read(state.sock)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # we fell behind: the kernel dropped events, read it all again
                    self.resyncs += 1
                    self._resync(state, queue)
                    continue
                raise
            mac = rtnl.ext_learned_fdb_mac(data)
            if mac is not None and not state.translator.concerns(mac):
                continue  # our own entry for a remote MAC: one per route of a burst, nothing to report
            for msg in rtnl.decode(data):
                for event in state.translator.feed(msg):
                    queue.put_nowait(event)

    def _resync(self, state: _Watch, queue: asyncio.Queue[LocalEvent]) -> None:
        with netns.entered(state.name):
            transport = rtnl.BatchTransport(rtnl.open_socket())
        state.translator.begin_sync()
        try:
            for msg in transport.dump(rtnl.dump_request(rtnl.RTM_GETLINK, socket.AF_UNSPEC)):
                for event in state.translator.feed(msg):
                    queue.put_nowait(event)
            for family in (rtnl.AF_BRIDGE, socket.AF_INET, socket.AF_INET6):
                for msg in transport.dump(rtnl.dump_request(rtnl.RTM_GETNEIGH, family)):
                    for event in state.translator.feed(msg):
                        queue.put_nowait(event)
            for event in state.translator.end_sync():
                queue.put_nowait(event)
        finally:
            transport.close()

    # -- silent hosts -----------------------------------------------------------------------------------------

    async def _probe_loop(self, states: list[_Watch]) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            for state in states:
                self.probe_stale(state)

    def probe_stale(self, state: _Watch) -> int:
        """Ask the kernel to re-probe every STALE local neighbour (``ip neigh change IP dev SVI nud probe``)."""
        messages = [
            rtnl.neigh_message(rtnl.RTM_NEWNEIGH, rtnl.NLM_F_REPLACE, ifindex, ip, None, 0, rtnl.NUD_PROBE)
            for ifindex, ip in state.translator.stale()
        ]
        if not messages:
            return 0
        with netns.entered(state.name):
            transport = rtnl.BatchTransport(rtnl.open_socket())
        try:
            return sum(1 for o in transport.transact(messages) if not o.error)
        finally:
            transport.close()
