"""MemoryDataplane with unicast routes: one route per (vrf, prefix), VRF checks, reconcile."""

from __future__ import annotations

import errno
import ipaddress

from dataplane.memory import MemoryDataplane
from evpn.dataplane_state import DataplaneDelta, RouteEntry, UnicastRouteEntry

net = ipaddress.ip_network
ip = ipaddress.ip_address
PREFIX = net("10.10.0.0/16")
R1 = UnicastRouteEntry("", PREFIX, ip("192.168.9.5"))
R2 = UnicastRouteEntry("", PREFIX, ip("192.168.9.7"))
R6 = UnicastRouteEntry("", net("2001:db8:100::/48"), ip("2001:db8:9::5"))
RED = UnicastRouteEntry("red", PREFIX, ip("192.169.10.2"))


async def test_a_unicast_route_per_vrf_and_prefix_replaces() -> None:
    dp = MemoryDataplane()
    result = await dp.apply(DataplaneDelta(add=(R1, R6, RED)))
    assert (result.added, result.failures) == (3, ())
    assert await dp.installed() == {R1, R6, RED}  # the same prefix in two VRFs: two routes
    await dp.apply(DataplaneDelta(add=(R2,)))  # a new next hop replaces the route
    assert await dp.installed() == {R2, R6, RED}
    await dp.apply(DataplaneDelta(remove=(R1,)))  # not the installed route: nothing removed
    assert await dp.installed() == {R2, R6, RED}
    await dp.apply(DataplaneDelta(remove=(R2, RED)))
    assert dp.entries() == {R6}


async def test_unicast_and_evpn_routes_of_a_prefix_do_not_collide() -> None:
    dp = MemoryDataplane(vnis={100})
    evpn = RouteEntry("red", 100, PREFIX, ip("100.65.0.2"))
    assert (await dp.apply(DataplaneDelta(add=(evpn, RED)))).ok
    assert len(dp) == 2


async def test_unknown_vrf_fails_but_the_default_vrf_always_exists() -> None:
    dp = MemoryDataplane(vnis=(), vrfs={"red"})
    blue = UnicastRouteEntry("blue", PREFIX, ip("192.169.11.2"))
    result = await dp.apply(DataplaneDelta(add=(R1, RED, blue)))
    assert [(f.entry, f.errno) for f in result.failures] == [(blue, errno.ENODEV)]
    assert await dp.installed() == {R1, RED}


async def test_reconcile_keeps_adds_and_removes() -> None:
    dp = MemoryDataplane()
    await dp.apply(DataplaneDelta(add=(R1, RED)))
    result = await dp.reconcile({R1, R6})
    assert (result.added, result.removed) == (1, 1)
    assert await dp.installed() == {R1, R6}
    assert (await dp.reconcile({R1, R6})).added == 0
