"""KernelRoutes: the router namespace's own routes for next-hop tracking (pure rules, then a real kernel)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable

from dataplane import netns, rtnl
from dataplane.interface import LocalEvent
from dataplane.kernel_routes import kernel_prefix, relevant
from dataplane.monitor import Monitor
from dataplane.plumbing import Plumbing
from dataplane.reconciler import RTPROT_EVPN_SPEAKER, KernelDataplane
from evpn.codec.evpn_nlri import IPNetwork
from evpn.dataplane_state import DataplaneDelta, UnicastRouteEntry
from evpn.events import KernelRoutes
from tests.dataplane.conftest import PASSTHROUGH, Leaf, LeafFactory, leaf_config

net = ipaddress.ip_network
CONNECTED = frozenset({net("192.168.9.0/24"), net("2001:db8:9::/64")})  # of pt-ns, the passthrough veth
STATIC = net("10.40.0.0/16")
STATIC6 = net("2001:db8:40::/48")


def route(prefix: str, **changes: object) -> rtnl.Route:
    network = net(prefix)
    fields: dict[str, object] = {
        "deleted": False,
        "family": socket.AF_INET if network.version == 4 else socket.AF_INET6,
        "dst_len": network.prefixlen,
        "table": rtnl.RT_TABLE_MAIN,
        "protocol": 4,  # static
        "dst": network.network_address if network.prefixlen else None,
        "gateway": None,
        "oif": 3,
    }
    fields.update(changes)
    return rtnl.Route(**fields)  # type: ignore[arg-type]


# -- the rules, without a kernel ----------------------------------------------------------------------------


def test_which_routes_count() -> None:
    assert kernel_prefix(route("10.1.0.0/16"), 201) == net("10.1.0.0/16")
    assert kernel_prefix(route("0.0.0.0/0"), 201) == net("0.0.0.0/0")  # a default route has no RTA_DST
    assert kernel_prefix(route("::/0"), 201) == net("::/0")
    assert kernel_prefix(route("2001:db8::/32"), 201) == net("2001:db8::/32")
    left_out = {
        "ours": route("10.1.0.0/16", protocol=201),
        "local table": route("10.1.0.1/32", table=255),
        "another table": route("10.1.0.0/16", table=100),
        "blackhole": route("10.1.0.0/16", kind=6),
        "unreachable": route("10.1.0.0/16", kind=7),
        "local route": route("10.1.0.1/32", kind=2),
        "link-local": route("fe80::/64"),
        "multicast": route("ff00::/8"),
        "ipv4 multicast": route("224.0.0.0/4"),
        "deleted": route("10.1.0.0/16", deleted=True),
        "no carrier": route("10.1.0.0/16", flags=rtnl.RTNH_F_LINKDOWN),
        "dead": route("10.1.0.0/16", flags=rtnl.RTNH_F_DEAD),
        "every next hop down": route("10.1.0.0/16", nexthop_flags=(rtnl.RTNH_F_LINKDOWN, rtnl.RTNH_F_DEAD)),
    }
    assert {name: kernel_prefix(r, 201) for name, r in left_out.items()} == dict.fromkeys(left_out)
    one_up = route("10.1.0.0/16", nexthop_flags=(rtnl.RTNH_F_LINKDOWN, 0))
    assert kernel_prefix(one_up, 201) == net("10.1.0.0/16")


def test_our_route_notifications_do_not_wake_the_watch() -> None:
    ours = rtnl.unicast_route_message(
        rtnl.RTM_NEWROUTE, 0, STATIC, ipaddress.ip_address("10.0.0.1"), 254, 201
    )
    theirs = rtnl.unicast_route_message(
        rtnl.RTM_NEWROUTE, 0, STATIC, ipaddress.ip_address("10.0.0.1"), 254, 4
    )
    other_table = rtnl.unicast_route_message(
        rtnl.RTM_NEWROUTE, 0, STATIC, ipaddress.ip_address("10.0.0.1"), 100, 4
    )
    assert not relevant(ours, 201) and not relevant(other_table, 201)
    assert relevant(theirs, 201) and relevant(ours + theirs, 201)


# -- a real kernel ----------------------------------------------------------------------------------------


class RouteEvents:
    """Runs a monitor in the background and keeps its KernelRoutes events (and the first event of all)."""

    def __init__(self, monitor: Monitor) -> None:
        self.first: LocalEvent | None = None
        self.seen: list[frozenset[IPNetwork]] = []
        self._stream: AsyncIterator[LocalEvent] = monitor.events()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self._stream:
            if self.first is None:
                self.first = event
            if isinstance(event, KernelRoutes):
                self.seen.append(event.prefixes)

    async def wait_for(self, check: Callable[[frozenset[IPNetwork]], bool], timeout: float = 3.0) -> int:
        """Index of the first event, from the latest on, whose set passes ``check``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seen and check(self.seen[-1]):
                return len(self.seen) - 1
            await asyncio.sleep(0.005)
        raise AssertionError(f"no matching KernelRoutes within {timeout}s; got {self.seen}")

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._stream.aclose()  # type: ignore[attr-defined]


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)


async def passthrough_leaf(make_leaf: LeafFactory, role: str) -> Leaf:
    leaf = make_leaf(role, leaf_config(1, l2=(), passthrough=PASSTHROUGH))
    await Plumbing(leaf.layout).apply_async()
    return leaf


async def test_kernel_routes_follow_the_main_table_but_not_our_routes(make_leaf: LeafFactory) -> None:
    leaf = await passthrough_leaf(make_leaf, "kr")
    events = RouteEvents(Monitor(leaf.layout))
    dp = KernelDataplane(leaf.layout)
    try:
        await events.wait_for(lambda s: s == CONNECTED)
        assert events.first == KernelRoutes(CONNECTED)  # before any local-learning event
        ip(leaf.router, "route", "add", str(STATIC), "via", "192.168.9.5")
        ip(leaf.router, "-6", "route", "add", str(STATIC6), "via", "2001:db8:9::5")
        ip(leaf.router, "route", "add", "blackhole", "10.41.0.0/16")
        await events.wait_for(lambda s: s == CONNECTED | {STATIC, STATIC6})

        count = len(events.seen)
        ours = UnicastRouteEntry("", net("10.42.0.0/16"), ipaddress.ip_address("192.168.9.5"))
        assert (await dp.apply(DataplaneDelta(add=(ours,)))).ok
        await asyncio.sleep(0.3)
        assert len(events.seen) == count  # our own route is no news

        ip(leaf.router, "route", "del", str(STATIC))
        await events.wait_for(lambda s: s == CONNECTED | {STATIC6})
        assert all(net("10.41.0.0/16") not in s and net("10.42.0.0/16") not in s for s in events.seen)
    finally:
        await dp.close()
        await events.close()


async def test_routes_through_a_link_without_carrier_or_down_are_gone(make_leaf: LeafFactory) -> None:
    """The kernel does not notify IPv4 routes it flushes with their device: the link events must do."""
    leaf = await passthrough_leaf(make_leaf, "krl")
    ip(leaf.router, "route", "add", str(STATIC), "via", "192.168.9.5")
    events = RouteEvents(Monitor(leaf.layout))
    try:
        await events.wait_for(lambda s: s == CONNECTED | {STATIC})
        ip(leaf.host, "link", "set", "pt-host", "down")  # pt-ns loses its carrier: routes stay, linkdown
        await events.wait_for(lambda s: s == frozenset())
        ip(leaf.host, "link", "set", "pt-host", "up")
        await events.wait_for(lambda s: s == CONNECTED | {STATIC})
        ip(leaf.router, "link", "set", "pt-ns", "down")  # the routes are flushed
        await events.wait_for(lambda s: s == frozenset())
        routes = subprocess.run(
            ["ip", "-n", leaf.router, "route"], capture_output=True, text=True, check=True
        ).stdout
        assert str(STATIC) not in routes
    finally:
        await events.close()


async def test_a_burst_of_changes_is_one_or_two_events(make_leaf: LeafFactory) -> None:
    leaf = await passthrough_leaf(make_leaf, "krb")
    events = RouteEvents(Monitor(leaf.layout, route_coalesce=0.05))
    try:
        await events.wait_for(lambda s: s == CONNECTED)
        before = len(events.seen)
        batch = "".join(f"route add 10.43.{i}.0/24 via 192.168.9.5\n" for i in range(100))
        subprocess.run(["ip", "-n", leaf.router, "-batch", "-"], input=batch, text=True, check=True)
        burst = {net(f"10.43.{i}.0/24") for i in range(100)}
        at = await events.wait_for(lambda s: burst <= s)
        assert at - before <= 2, [len(s) for s in events.seen[before:]]
    finally:
        await events.close()


def test_route_filter_drops_only_our_protocol(make_leaf: LeafFactory) -> None:
    leaf = make_leaf("krf", leaf_config(1, l2=(), passthrough=PASSTHROUGH))
    Plumbing(leaf.layout).apply()
    with netns.entered(leaf.router):
        sock = rtnl.open_socket(rtnl.RTMGRP_IPV4_ROUTE)
    try:
        rtnl.drop_route_notifications_of(sock, RTPROT_EVPN_SPEAKER)
        ip(leaf.router, "route", "add", "10.44.0.0/16", "via", "192.168.9.5", "proto", "201")
        ip(leaf.router, "route", "add", "10.45.0.0/16", "via", "192.168.9.5", "proto", "static")
        sock.settimeout(0.5)
        seen: list[rtnl.Route] = []
        with contextlib.suppress(TimeoutError):
            while True:
                seen.extend(m for m in rtnl.decode(sock.recv(65536)) if isinstance(m, rtnl.Route))
        assert [(m.dst, m.protocol) for m in seen] == [(ipaddress.ip_address("10.45.0.0"), 4)]
    finally:
        sock.close()
