"""The reconciler against a real kernel: what `bridge fdb`, `ip neigh` and `ip route` show, and restarts."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import subprocess

from dataplane import netns, rtnl
from dataplane.plumbing import Plumbing
from dataplane.reconciler import RTPROT_EVPN_SPEAKER, KernelDataplane
from evpn.dataplane_state import DataplaneDelta, DataplaneEntry, FdbEntry, FloodEntry, NeighEntry, RouteEntry
from evpn.mac import MacAddress
from tests.dataplane.conftest import Leaf, LeafFactory, leaf_config, red

MAC1 = MacAddress.from_text("aa:bb:cc:00:00:01")
MAC2 = MacAddress.from_text("aa:bb:cc:00:00:02")
RMAC2 = MacAddress.from_text("02:00:00:00:00:02")
VTEP2 = ipaddress.ip_address("100.65.0.2")
VTEP3 = ipaddress.ip_address("100.65.0.3")
PREFIX = ipaddress.ip_network("192.171.1.0/24")
PREFIX6 = ipaddress.ip_network("2001:db8:171:1::/64")


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def fdb_lines(ns: str, dev: str) -> set[str]:
    lines = sh("bridge", "-n", ns, "fdb", "show", "dev", dev).splitlines()
    return {" ".join(line.split()) for line in lines if "permanent" not in line or "dst" in line}


def entries(leaf: Leaf) -> tuple[DataplaneEntry, ...]:
    return (
        FdbEntry(110, MAC1, VTEP2),
        FloodEntry(110, VTEP2),
        FloodEntry(110, VTEP3),
        NeighEntry(110, ipaddress.ip_address("192.170.1.30"), MAC1),
        FdbEntry(100, RMAC2, VTEP2),
        NeighEntry(100, VTEP2, RMAC2),
        RouteEntry("red", 100, PREFIX, VTEP2),
        RouteEntry("red", 100, PREFIX6, VTEP2),
    )


async def l3_leaf(make_leaf: LeafFactory, role: str) -> Leaf:
    from evpn.config import HostBridge, L2Vni

    l2 = (
        L2Vni(
            name="l2",
            vni=110,
            vrf="red",
            host_bridge=HostBridge(),
            gateway_ips=(ipaddress.ip_interface("192.170.1.1/24"),),
        ),
    )
    leaf = make_leaf(role, leaf_config(1, l2=l2, l3=(red(1),)))
    await Plumbing(leaf.layout).apply_async()
    return leaf


async def test_delta_shows_up_exactly_in_the_kernel(make_leaf: LeafFactory) -> None:
    leaf = await l3_leaf(make_leaf, "rc")
    ns = leaf.layout.namespaces.vrf("red")
    dp = KernelDataplane(leaf.layout)
    try:
        result = await dp.apply(DataplaneDelta(add=entries(leaf)))
        assert result.ok, result.failures
        assert await dp.installed() == set(entries(leaf))
        assert fdb_lines(ns, "vni110") == {
            "aa:bb:cc:00:00:01 extern_learn master br-pe-110",
            "aa:bb:cc:00:00:01 dst 100.65.0.2 link-netnsid 0 self extern_learn",
            "00:00:00:00:00:00 dst 100.65.0.2 link-netnsid 0 self extern_learn permanent",
            "00:00:00:00:00:00 dst 100.65.0.3 link-netnsid 0 self extern_learn permanent",
        }
        assert "02:00:00:00:00:02 dst 100.65.0.2 link-netnsid 0 self extern_learn" in fdb_lines(ns, "vni100")
        neigh = sh("ip", "-n", ns, "-4", "neigh", "show", "nud", "noarp")
        assert "192.170.1.30 dev br-pe-110 lladdr aa:bb:cc:00:00:01 extern_learn NOARP" in neigh
        assert "100.65.0.2 dev br-pe-100 lladdr 02:00:00:00:00:02 extern_learn NOARP" in neigh
        route = sh("ip", "-n", ns, "route", "show", "proto", str(RTPROT_EVPN_SPEAKER)).strip()
        assert route == "192.171.1.0/24 via 100.65.0.2 dev br-pe-100 onlink"
        # IPv6 through an IPv4 VTEP: IPv4-mapped next hop and its neighbour, as zebra installs them
        route6 = sh("ip", "-n", ns, "-6", "route", "show", "proto", str(RTPROT_EVPN_SPEAKER)).strip()
        assert (
            route6 == "2001:db8:171:1::/64 via ::ffff:100.65.0.2 dev br-pe-100 metric 1024 onlink pref medium"
        )
        neigh6 = sh("ip", "-n", ns, "-6", "neigh", "show", "nud", "noarp")
        assert "::ffff:100.65.0.2 dev br-pe-100 lladdr 02:00:00:00:00:02 extern_learn NOARP" in neigh6
        # a move is a replace; removals leave nothing behind
        moved = await dp.apply(
            DataplaneDelta(add=(FdbEntry(110, MAC1, VTEP3),), remove=(FdbEntry(110, MAC1, VTEP2),))
        )
        assert moved.ok
        assert "aa:bb:cc:00:00:01 dst 100.65.0.3 link-netnsid 0 self extern_learn" in fdb_lines(ns, "vni110")
        remaining = (
            *tuple(e for e in entries(leaf) if e != FdbEntry(110, MAC1, VTEP2)),
            FdbEntry(110, MAC1, VTEP3),
        )
        assert (await dp.apply(DataplaneDelta(remove=remaining))).ok
        assert await dp.installed() == frozenset()
        assert fdb_lines(ns, "vni110") == set()
        assert sh("ip", "-n", ns, "route", "show", "proto", str(RTPROT_EVPN_SPEAKER)) == ""
        assert sh("ip", "-n", ns, "-6", "route", "show", "proto", str(RTPROT_EVPN_SPEAKER)) == ""
        assert "::ffff:" not in sh("ip", "-n", ns, "-6", "neigh")
    finally:
        await dp.close()


async def test_errors_are_per_entry_and_the_batch_goes_on(make_leaf: LeafFactory) -> None:
    leaf = await l3_leaf(make_leaf, "er")
    dp = KernelDataplane(leaf.layout)
    try:
        bad_vni = FdbEntry(4242, MAC1, VTEP2)
        bad_route = RouteEntry(
            "red", 100, PREFIX, ipaddress.ip_address("224.0.0.1")
        )  # kernel: invalid gateway
        good = FdbEntry(110, MAC2, VTEP2)
        result = await dp.apply(DataplaneDelta(add=(bad_vni, bad_route, good)))
        assert {f.entry for f in result.failures} == {bad_vni, bad_route}
        assert result.added == 1
        assert good in await dp.installed()
    finally:
        await dp.close()


async def test_remote_mac_removed_even_when_its_bridge_entry_is_already_gone(make_leaf: LeafFactory) -> None:
    """One ``master self`` message does both halves; when the bridge half fails (its entry was removed,
    or moved to a local port), the VXLAN half is still removed on its own."""
    leaf = await l3_leaf(make_leaf, "fb")
    ns = leaf.layout.namespaces.vrf("red")
    dp = KernelDataplane(leaf.layout)
    try:
        remote = (FdbEntry(110, MAC1, VTEP2), FdbEntry(110, MAC2, VTEP3))
        assert (await dp.apply(DataplaneDelta(add=remote))).added == 2
        sh("bridge", "-n", ns, "fdb", "del", str(MAC1), "dev", "vni110", "master")
        assert fdb_lines(ns, "vni110") == {
            "aa:bb:cc:00:00:01 dst 100.65.0.2 link-netnsid 0 self extern_learn",
            "aa:bb:cc:00:00:02 extern_learn master br-pe-110",
            "aa:bb:cc:00:00:02 dst 100.65.0.3 link-netnsid 0 self extern_learn",
        }
        result = await dp.apply(DataplaneDelta(remove=remote))
        assert result.ok, result.failures
        assert result.removed == 2
        assert fdb_lines(ns, "vni110") == set()
    finally:
        await dp.close()


async def test_restart_keeps_desired_removes_stale_and_never_touches_foreign(make_leaf: LeafFactory) -> None:
    leaf = await l3_leaf(make_leaf, "rs")
    ns = leaf.layout.namespaces.vrf("red")
    first = KernelDataplane(leaf.layout)
    assert (await first.apply(DataplaneDelta(add=entries(leaf)))).ok
    await first.close()
    # a user's static FDB entry, another daemon's route, a plain neighbour
    sh(
        "bridge",
        "-n",
        ns,
        "fdb",
        "add",
        "aa:bb:cc:00:00:99",
        "dev",
        "vni110",
        "dst",
        "100.65.0.9",
        "self",
        "static",
    )
    sh(
        "ip",
        "-n",
        ns,
        "route",
        "add",
        "192.172.0.0/24",
        "via",
        "100.65.0.2",
        "dev",
        "br-pe-100",
        "onlink",
        "proto",
        "bgp",
    )
    sh("ip", "-n", ns, "neigh", "add", "192.170.1.77", "lladdr", "aa:bb:cc:00:00:77", "dev", "br-pe-110")

    desired = set(entries(leaf)) - {FloodEntry(110, VTEP3), RouteEntry("red", 100, PREFIX, VTEP2)}
    desired |= {
        FdbEntry(110, MAC2, VTEP3),
        RouteEntry("red", 100, ipaddress.ip_network("192.171.2.0/24"), VTEP2),
    }
    second = KernelDataplane(leaf.layout)
    try:
        result = await second.reconcile(desired)
        assert result.ok, result.failures
        assert await second.installed() == desired
        assert (await second.reconcile(desired)).added == 0  # nothing left to do
        assert "aa:bb:cc:00:00:99 dst 100.65.0.9 link-netnsid 0 self static" in fdb_lines(ns, "vni110")
        assert "192.172.0.0/24 via 100.65.0.2 dev br-pe-100 proto bgp onlink" in sh("ip", "-n", ns, "route")
        assert "192.170.1.77 dev br-pe-110 lladdr aa:bb:cc:00:00:77 PERMANENT" in sh("ip", "-n", ns, "neigh")
        assert "00:00:00:00:00:00 dst 100.65.0.3" not in "\n".join(fdb_lines(ns, "vni110"))
        routes = sh("ip", "-n", ns, "route", "show", "proto", str(RTPROT_EVPN_SPEAKER)).strip()
        assert routes == "192.171.2.0/24 via 100.65.0.2 dev br-pe-100 onlink"
    finally:
        await second.close()


async def test_monitor_filter_drops_only_the_vxlan_self_notifications(make_leaf: LeafFactory) -> None:
    leaf = await l3_leaf(make_leaf, "bp")
    ns = leaf.layout.namespaces.vrf("red")
    with netns.entered(ns):
        sock = rtnl.open_socket(rtnl.RTMGRP_NEIGH)
    rtnl.drop_vxlan_self_notifications(sock)
    dp = KernelDataplane(leaf.layout)
    try:
        neigh = NeighEntry(110, ipaddress.ip_address("192.170.1.30"), MAC1)
        assert (await dp.apply(DataplaneDelta(add=(FdbEntry(110, MAC1, VTEP2), neigh)))).ok
        sock.settimeout(0.5)
        seen: list[rtnl.Neigh] = []
        with contextlib.suppress(TimeoutError):
            while True:
                seen.extend(m for m in rtnl.decode(sock.recv(65536)) if isinstance(m, rtnl.Neigh))
        bridge = [m for m in seen if m.family == rtnl.AF_BRIDGE]
        assert bridge and not [m for m in bridge if m.flags & rtnl.NTF_SELF]
        assert any(m.master is not None and m.flags & rtnl.NTF_EXT_LEARNED for m in bridge)
        assert any(m.family == socket.AF_INET and m.dst == neigh.ip for m in seen)
    finally:
        sock.close()
        await dp.close()
