"""The router namespace's own routes (connected, static, other daemons) as :class:`KernelRoutes` events.

The core's next-hop tracking needs to know which remote VTEPs the kernel can reach without BGP. Here the
router namespace's main table (IPv4 and IPv6) is followed and reported as the full set of prefixes, never
as a diff: first at start, then after every change. Routes we installed (our protocol number), routes the
kernel cannot forward with (not unicast: local, broadcast, blackhole, unreachable, multicast; every next
hop dead or without carrier), link-local and multicast prefixes are left out.

Notifications only say "something changed": the table is then read again after a short quiet period, so a
burst (a link going down takes its routes along, and the kernel does not even notify IPv4 routes flushed
that way, hence the link and address subscriptions) costs one read. Our own route notifications are
dropped in the kernel by a socket filter and never wake us up.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable

from dataplane import netns, rtnl
from dataplane.layout import MAIN_TABLE
from evpn.codec.evpn_nlri import IPNetwork
from evpn.events import KernelRoutes

GROUPS = (
    rtnl.RTMGRP_IPV4_ROUTE
    | rtnl.RTMGRP_IPV6_ROUTE
    | rtnl.RTMGRP_LINK
    | rtnl.RTMGRP_IPV4_IFADDR
    | rtnl.RTMGRP_IPV6_IFADDR
)
_ALWAYS_RELEVANT = frozenset({rtnl.RTM_NEWLINK, rtnl.RTM_DELLINK, rtnl.RTM_NEWADDR, rtnl.RTM_DELADDR})


def kernel_prefix(route: rtnl.Route, protocol: int) -> IPNetwork | None:
    """The prefix ``route`` makes reachable for next-hop tracking, or None when it does not count."""
    if (
        route.deleted
        or route.table != MAIN_TABLE
        or route.protocol == protocol
        or route.kind != rtnl.RTN_UNICAST
        or route.family not in (socket.AF_INET, socket.AF_INET6)
        or not route.usable
    ):
        return None
    prefix = route.prefix
    if prefix.is_link_local or prefix.is_multicast:
        return None
    return prefix


def relevant(data: bytes | memoryview, protocol: int) -> bool:
    """Whether one notification datagram may change the set (a link or address change, a route of another
    protocol in the main table)."""
    if any(t in _ALWAYS_RELEVANT for t in rtnl.message_types(data)):
        return True
    return any(
        isinstance(msg, rtnl.Route) and msg.table == MAIN_TABLE and msg.protocol != protocol
        for msg in rtnl.decode(data)
    )


def read_kernel_routes(ns: str | None, protocol: int) -> frozenset[IPNetwork]:
    """Dump the main table of ``ns`` (blocking: run it in a worker thread)."""
    with netns.entered(ns):
        transport = rtnl.BatchTransport(rtnl.open_socket())
    try:
        prefixes: set[IPNetwork] = set()
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in transport.dump(rtnl.dump_request(rtnl.RTM_GETROUTE, family)):
                if isinstance(msg, rtnl.Route) and (prefix := kernel_prefix(msg, protocol)) is not None:
                    prefixes.add(prefix)
        return frozenset(prefixes)
    finally:
        transport.close()


class KernelRouteWatch:
    """Follows the main table of namespace ``ns``: :meth:`start`, then :meth:`follow` until cancelled."""

    RETRY_DELAY = 1.0

    def __init__(self, ns: str | None, protocol: int, *, coalesce: float = 0.005) -> None:
        self._ns = ns
        self._protocol = protocol
        self._coalesce = coalesce
        self._sock: socket.socket | None = None
        self._reader = rtnl.DatagramReader(1 << 16)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty = asyncio.Event()
        self._last: frozenset[IPNetwork] | None = None
        self.resyncs = 0
        """How often notifications were lost (ENOBUFS): each time the table is read again anyway."""

    async def start(self) -> KernelRoutes:
        """Subscribe, then read the table: the first event (a change in between is read again later)."""
        with netns.entered(self._ns):
            sock = rtnl.open_socket(GROUPS, rcvbuf=4 << 20)
        try:
            rtnl.drop_route_notifications_of(sock, self._protocol)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            loop.add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self._sock, self._loop = sock, loop
        self._last = await asyncio.to_thread(read_kernel_routes, self._ns, self._protocol)
        return KernelRoutes(self._last)

    async def follow(self, emit: Callable[[KernelRoutes], None]) -> None:
        """Call ``emit`` with the whole set after every change (bursts coalesced), forever."""
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self._coalesce)
            self._dirty.clear()
            try:
                current = await asyncio.to_thread(read_kernel_routes, self._ns, self._protocol)
            except OSError:  # the namespace is being replaced, the kernel is short of memory: try again
                self.resyncs += 1
                self._dirty.set()
                await asyncio.sleep(self.RETRY_DELAY)
                continue
            if current != self._last:
                self._last = current
                emit(KernelRoutes(current))

    def close(self) -> None:
        """Unsubscribe (idempotent)."""
        if self._sock is not None and self._loop is not None:
            if not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        self._sock = self._loop = None

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = self._reader.read(sock)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # notifications lost: read the table again
                    self.resyncs += 1
                    self._dirty.set()
                    continue
                raise
            if not self._dirty.is_set() and relevant(data, self._protocol):
                self._dirty.set()
