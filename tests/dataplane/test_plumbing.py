"""Plumbing in real namespaces: exactly the expected devices and flags, idempotent, owner-aware."""

from __future__ import annotations

import contextlib
import json
import subprocess
from typing import Any

import pytest
from pyroute2 import IPRoute

from dataplane import netns, rtnl
from dataplane.errors import PlumbingError, VrfUnsupportedError
from dataplane.layout import OWNER_ALIAS
from dataplane.plumbing import Plumbing
from evpn.config import HostBridge, HostBridgeMode, L2Vni, VrfBackend
from tests.dataplane.conftest import LeafFactory, leaf_config, red

RTMGRP_IPV4_IFADDR = 0x10


def links(ns: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ip", "-n", ns, "-d", "-j", "link", "show"], capture_output=True, text=True, check=True
    )
    return {link["ifname"]: link for link in json.loads(out.stdout)}


def test_l2vni_devices_and_flags_then_nothing_to_do(make_leaf: LeafFactory) -> None:
    leaf = make_leaf("pl", leaf_config(1, mtu=9000))
    first = Plumbing(leaf.layout).apply()
    assert first.changes
    second = Plumbing(leaf.layout).apply()
    assert second.changes == ()

    router, host = links(leaf.router), links(leaf.host)
    assert set(router) == {"lo", "br-pe-110", "vni110", "pe-e-110"}
    assert set(host) == {"lo", "br-hs-110", "host-e-110"}
    vxlan = router["vni110"]
    data = vxlan["linkinfo"]["info_data"]
    assert (data["id"], data["port"], data["local"], data["learning"]) == (110, 4789, "100.65.0.1", False)
    assert vxlan["inet6_addr_gen_mode"] == "none"
    port = vxlan["linkinfo"]["info_slave_data"]
    assert (port["neigh_suppress"], port["learning"]) == (True, False)
    assert vxlan["master"] == "br-pe-110" and router["pe-e-110"]["master"] == "br-pe-110"
    assert host["host-e-110"]["master"] == "br-hs-110"
    for name in ("host-e-110", "br-hs-110"):  # pure layer 2: no link-local address, no ND chatter
        assert host[name]["inet6_addr_gen_mode"] == "none"
    assert router["pe-e-110"]["inet6_addr_gen_mode"] == "none"
    bridge = router["br-pe-110"]
    assert bridge["address"] == "00:f3:00:00:00:6f"
    for name in ("br-pe-110", "vni110", "pe-e-110"):
        assert router[name]["mtu"] == 8950 and router[name]["ifalias"] == OWNER_ALIAS
        assert "UP" in router[name]["flags"]
    with IPRoute(netns=leaf.router, flags=0) as ipr:
        (svi,) = ipr.link_lookup(ifname="br-pe-110")
        addrs = {(a.get("address"), a["prefixlen"]) for a in ipr.addr("dump", index=svi, family=2)}
        assert addrs == {("192.170.1.1", 24)}
        assert ("100.65.0.1", 32) in {(a.get("address"), a["prefixlen"]) for a in ipr.addr("dump", index=1)}
    sysctl = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            leaf.router,
            "sysctl",
            "-n",
            "net.ipv4.ip_forward",
            "net.ipv4.conf.br-pe-110.arp_accept",
            "net.ipv6.conf.br-pe-110.accept_untracked_na",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sysctl.stdout.split() == ["1", "1", "1"]


def test_removed_vni_is_removed_and_foreign_devices_are_left_alone(make_leaf: LeafFactory) -> None:
    leaf = make_leaf("rm", leaf_config(1))
    Plumbing(leaf.layout).apply()
    subprocess.run(["ip", "-n", leaf.router, "link", "add", "user-br", "type", "bridge"], check=True)
    empty = leaf.with_config(leaf_config(1, l2=()))
    report = Plumbing(empty.layout).apply()
    assert any("removed" in line for line in report.changes)
    assert set(links(leaf.router)) == {"lo", "user-br"}
    assert set(links(leaf.host)) == {"lo"}


def test_device_backend_fails_with_a_typed_error_on_this_kernel(make_leaf: LeafFactory) -> None:
    leaf = make_leaf("dv", leaf_config(1, l3=(red(1),), backend=VrfBackend.DEVICE))
    with pytest.raises(VrfUnsupportedError, match=r"use vrf_backend: netns"):
        Plumbing(leaf.layout).apply()
    assert set(links(leaf.router)) == {"lo"}  # failed before touching anything


def test_netns_backend_l3vni(make_leaf: LeafFactory) -> None:
    leaf = make_leaf("l3", leaf_config(1, l3=(red(1),)))
    Plumbing(leaf.layout).apply()
    assert Plumbing(leaf.layout).apply().changes == ()
    vrf_ns = leaf.layout.namespaces.vrf("red")
    vrf = links(vrf_ns)
    assert {"br-pe-100", "vni100"} <= set(vrf)
    assert vrf["br-pe-100"]["address"] == "02:00:00:00:00:01"
    assert vrf["vni100"]["master"] == "br-pe-100"
    assert vrf["vni100"]["linkinfo"]["info_data"]["id"] == 100
    assert "vni100" not in links(leaf.router)


def test_removed_l3vni_leaves_none_of_our_devices_in_its_vrf_namespace(make_leaf: LeafFactory) -> None:
    leaf = make_leaf("l3rm", leaf_config(1, l3=(red(1),)))
    Plumbing(leaf.layout).apply()
    vrf_ns = leaf.layout.namespaces.vrf("red")
    assert {"br-pe-100", "vni100"} <= set(links(vrf_ns))
    without = leaf.with_config(leaf_config(1, l2=()))
    report = Plumbing(without.layout, previous=leaf.layout).apply()
    assert "removed vni100" in " ".join(report.changes)
    assert set(links(vrf_ns)) == {"lo"}  # the namespace stays (it may be the operator's), empty of ours
    assert Plumbing(without.layout, previous=leaf.layout).apply().changes == ()


def test_second_run_sends_no_change_to_the_kernel(make_leaf: LeafFactory) -> None:
    """Link/address notifications during the second run would mean a request that changed something."""
    leaf = make_leaf("id", leaf_config(1))
    Plumbing(leaf.layout).apply()
    socks = []
    for ns in (leaf.router, leaf.host):
        with netns.entered(ns):
            sock = rtnl.open_socket(rtnl.RTMGRP_LINK | RTMGRP_IPV4_IFADDR)
        socks.append(sock)
    try:
        # the kernel still reports the first run's effects for a while (linkwatch batches carrier changes
        # up to 1 s; IPv6 link-local addresses after DAD are not subscribed): wait for a quiet second
        for sock in socks:
            sock.settimeout(1.2)
            with contextlib.suppress(TimeoutError):
                while True:
                    sock.recv(65536)
            sock.setblocking(False)
        assert Plumbing(leaf.layout).apply().changes == ()
        for sock in socks:
            with pytest.raises(BlockingIOError):
                sock.recv(65536)
    finally:
        for sock in socks:
            sock.close()


def test_external_host_bridge_is_used_not_owned(make_leaf: LeafFactory) -> None:
    config = leaf_config(
        1,
        l2=(L2Vni(name="l2", vni=110, host_bridge=HostBridge(HostBridgeMode.EXTERNAL, "vmbr0")),),
    )
    leaf = make_leaf("ex", config)
    with pytest.raises(PlumbingError, match="vmbr0"):
        Plumbing(leaf.layout).apply()
    subprocess.run(["ip", "-n", leaf.host, "link", "add", "vmbr0", "type", "bridge"], check=True)
    Plumbing(leaf.layout).apply()
    host = links(leaf.host)
    assert host["host-e-110"]["master"] == "vmbr0"
    assert "ifalias" not in host["vmbr0"] and "br-hs-110" not in host
    Plumbing(leaf.with_config(leaf_config(1, l2=())).layout).apply()
    assert set(links(leaf.host)) == {"lo", "vmbr0"}


def test_foreign_device_with_our_name_is_a_conflict(make_leaf: LeafFactory) -> None:
    leaf = make_leaf("cf", leaf_config(1))
    subprocess.run(["ip", "-n", leaf.router, "link", "add", "br-pe-110", "type", "bridge"], check=True)
    with pytest.raises(PlumbingError, match="not created by us"):
        Plumbing(leaf.layout).apply()
    assert "ifalias" not in links(leaf.router)["br-pe-110"]
