"""Unicast routes (UnicastRouteEntry) in a real kernel: the router's main table and a VRF namespace's."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import subprocess
from typing import Any

from dataplane import netns, rtnl
from dataplane.plumbing import Plumbing
from dataplane.reconciler import RTPROT_EVPN_SPEAKER, UNICAST_METRIC, KernelDataplane
from evpn.dataplane_state import DataplaneDelta, RouteEntry, UnicastRouteEntry
from tests.dataplane.conftest import PASSTHROUGH, Leaf, LeafFactory, leaf_config, red_with_session

net = ipaddress.ip_network
ip = ipaddress.ip_address
HOST_PT = ip("192.168.9.5")  # the passthrough host (next hop of routes it announces)
HOST_PT6 = ip("2001:db8:9::5")
HOST_RED = ip("192.169.10.2")  # the host session in VRF red
HOST_RED6 = ip("2001:db8:10::2")
ROUTES = (
    UnicastRouteEntry("", net("10.10.0.0/16"), HOST_PT),
    UnicastRouteEntry("", net("0.0.0.0/0"), HOST_PT),
    UnicastRouteEntry("", net("2001:db8:100::/48"), HOST_PT6),
    UnicastRouteEntry("", net("10.11.0.0/16"), HOST_PT6),  # an IPv4 prefix via an IPv6 next hop (RFC 8950)
    UnicastRouteEntry("red", net("10.20.0.0/16"), HOST_RED),
    UnicastRouteEntry("red", net("2001:db8:200::/48"), HOST_RED6),
)


def our_routes(ns: str, family: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ip", "-n", ns, "-j", family, "route", "show", "proto", str(RTPROT_EVPN_SPEAKER)],
        capture_output=True,
        text=True,
        check=True,
    )
    routes: list[dict[str, Any]] = json.loads(out.stdout)
    return routes


def summary(ns: str) -> set[tuple[str, str, str, int, bool]]:
    """(dst, gateway, dev, metric, onlink) of each of our routes in the main table of ``ns``."""
    return {
        (
            r["dst"],
            r["gateway"] if "gateway" in r else r["via"]["host"],
            r["dev"],
            r.get("metric", 0),
            "onlink" in r.get("flags", []),
        )
        for family in ("-4", "-6")
        for r in our_routes(ns, family)
    }


async def session_leaf(make_leaf: LeafFactory, role: str) -> Leaf:
    leaf = make_leaf(role, leaf_config(1, l2=(), l3=(red_with_session(1),), passthrough=PASSTHROUGH))
    await Plumbing(leaf.layout).apply_async()
    return leaf


async def test_unicast_routes_in_the_router_and_in_a_vrf_then_adopted(make_leaf: LeafFactory) -> None:
    leaf = await session_leaf(make_leaf, "ur")
    vrf_ns = leaf.layout.namespaces.vrf("red")
    evpn = RouteEntry("red", 100, net("10.30.0.0/16"), ip("100.65.0.2"))  # an EVPN route beside them
    dp = KernelDataplane(leaf.layout)
    try:
        result = await dp.apply(DataplaneDelta(add=(*ROUTES, evpn)))
        assert result.ok, result.failures
        assert result.added == len(ROUTES) + 1
        m = UNICAST_METRIC
        assert summary(leaf.router) == {
            ("10.10.0.0/16", "192.168.9.5", "pt-ns", m, False),
            ("default", "192.168.9.5", "pt-ns", m, False),
            ("2001:db8:100::/48", "2001:db8:9::5", "pt-ns", m, False),
            ("10.11.0.0/16", "2001:db8:9::5", "pt-ns", m, False),
        }
        assert summary(vrf_ns) == {
            ("10.20.0.0/16", "192.169.10.2", "pe-100", m, False),
            ("2001:db8:200::/48", "2001:db8:10::2", "pe-100", m, False),
            ("10.30.0.0/16", "100.65.0.2", "br-pe-100", 0, True),
        }
        assert await dp.installed() == {*ROUTES, evpn}
    finally:
        await dp.close()

    # a restart: the same entries are adopted as they are, no route is deleted or written again
    with netns.entered(leaf.router):
        watch = rtnl.open_socket(rtnl.RTMGRP_IPV4_ROUTE | rtnl.RTMGRP_IPV6_ROUTE)
    again = KernelDataplane(leaf.layout)
    try:
        result = await again.reconcile({*ROUTES, evpn})
        assert (result.added, result.removed, result.failures) == (0, 0, ())
        watch.setblocking(False)
        notified: list[rtnl.Route] = []
        with contextlib.suppress(BlockingIOError):
            while True:
                notified.extend(m for m in rtnl.decode(watch.recv(65536)) if isinstance(m, rtnl.Route))
        assert notified == []

        # a next hop change replaces the route; a removed entry leaves nothing behind
        moved = UnicastRouteEntry("", net("10.10.0.0/16"), ip("192.168.9.7"))
        gone = (ROUTES[0], ROUTES[4])
        result = await again.apply(DataplaneDelta(add=(moved,), remove=gone))
        assert result.ok and (result.added, result.removed) == (1, 2)
        assert ("10.10.0.0/16", "192.168.9.7", "pt-ns", UNICAST_METRIC, False) in summary(leaf.router)
        assert "10.20.0.0/16" not in {r[0] for r in summary(vrf_ns)}
        left = {*ROUTES, evpn, moved} - set(gone)
        assert await again.installed() == left
        assert (await again.reconcile(())).removed == len(left)
        assert summary(leaf.router) == summary(vrf_ns) == set()
    finally:
        watch.close()
        await again.close()


async def test_foreign_routes_with_the_same_prefix_are_never_touched(make_leaf: LeafFactory) -> None:
    leaf = await session_leaf(make_leaf, "uf")
    subprocess.run(
        ["ip", "-n", leaf.router, "route", "add", "10.10.0.0/16", "via", "192.168.9.9", "proto", "static"],
        check=True,
    )
    subprocess.run(
        ["ip", "-n", leaf.router, "route", "add", "2001:db8:100::/48", "via", "2001:db8:9::9"], check=True
    )
    dp = KernelDataplane(leaf.layout)
    try:
        mine = (ROUTES[0], ROUTES[2])
        assert (await dp.apply(DataplaneDelta(add=mine))).ok
        assert await dp.installed() == set(mine)
        assert (await dp.reconcile(())).removed == 2
        routes = subprocess.run(
            ["ip", "-n", leaf.router, "route"], capture_output=True, text=True, check=True
        ).stdout
        routes6 = subprocess.run(
            ["ip", "-n", leaf.router, "-6", "route"], capture_output=True, text=True, check=True
        ).stdout
        assert "10.10.0.0/16 via 192.168.9.9 dev pt-ns proto static" in routes
        assert "2001:db8:100::/48 via 2001:db8:9::9 dev pt-ns metric 1024" in routes6
    finally:
        await dp.close()


async def test_unreachable_next_hop_and_unknown_vrf_fail_alone(make_leaf: LeafFactory) -> None:
    leaf = await session_leaf(make_leaf, "ue")
    dp = KernelDataplane(leaf.layout)
    try:
        unreachable = UnicastRouteEntry("", net("10.50.0.0/16"), ip("172.31.0.1"))  # on no connected subnet
        unreachable6 = UnicastRouteEntry("", net("2001:db8:500::/48"), ip("2001:db8:ffff::1"))
        wrong_vrf = UnicastRouteEntry("blue", net("10.60.0.0/16"), HOST_RED)
        result = await dp.apply(DataplaneDelta(add=(unreachable, unreachable6, wrong_vrf, ROUTES[0])))
        failed = {f.entry: f.errno for f in result.failures}
        assert failed.keys() == {unreachable, unreachable6, wrong_vrf}
        assert failed[unreachable] == errno.ENETUNREACH
        assert failed[wrong_vrf] == errno.ENODEV
        assert result.added == 1 and await dp.installed() == {ROUTES[0]}
    finally:
        await dp.close()
