"""Host-session veths in real namespaces: names, places, derived addresses, reachability, removal."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import subprocess
from typing import Any

from dataplane.layout import OWNER_ALIAS
from dataplane.plumbing import Plumbing
from tests.dataplane.conftest import PASSTHROUGH, Leaf, LeafFactory, leaf_config, red, red_with_session
from tests.dataplane.test_plumbing import links


def addresses(ns: str, dev: str) -> set[str]:
    """Global addresses of ``dev`` as ``ADDR/LEN`` (link-local ones left out)."""
    out = subprocess.run(
        ["ip", "-n", ns, "-j", "addr", "show", "dev", dev], capture_output=True, text=True, check=True
    )
    info: list[dict[str, Any]] = json.loads(out.stdout)
    return {f"{a['local']}/{a['prefixlen']}" for a in info[0]["addr_info"] if a.get("scope") != "link"} - {""}


def tentative(ns: str, dev: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-n", ns, "-6", "addr", "show", "dev", dev, "tentative"],
        check=False,
        capture_output=True,
        text=True,
    )
    return [line for line in out.stdout.splitlines() if "inet6" in line]


def ping(ns: str, address: str) -> bool:
    result = subprocess.run(
        ["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", address],
        check=False,
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


def session_leaf(make_leaf: LeafFactory, role: str) -> Leaf:
    return make_leaf(role, leaf_config(1, l2=(), l3=(red_with_session(1),), passthrough=PASSTHROUGH))


def test_host_session_and_passthrough_veths_with_derived_addresses(make_leaf: LeafFactory) -> None:
    leaf = session_leaf(make_leaf, "hs")
    first = Plumbing(leaf.layout).apply()
    assert "created veth pe-100 <-> host-100" in " ".join(first.changes)
    assert Plumbing(leaf.layout).apply().changes == ()  # idempotent: the pairs are adopted

    vrf_ns = leaf.layout.namespaces.vrf("red")
    router, host, vrf = links(leaf.router), links(leaf.host), links(vrf_ns)
    assert set(router) == {"lo", "pt-ns"}
    assert set(host) == {"lo", "pt-host", "host-100"}
    assert {"br-pe-100", "vni100", "pe-100"} <= set(vrf)
    for table, name in ((router, "pt-ns"), (host, "pt-host"), (host, "host-100"), (vrf, "pe-100")):
        assert table[name]["ifalias"] == OWNER_ALIAS
        assert "UP" in table[name]["flags"] and "LOWER_UP" in table[name]["flags"]
    assert vrf["pe-100"]["mtu"] == host["host-100"]["mtu"] == 1450  # traffic to the VRF goes into VXLAN
    assert router["pt-ns"]["mtu"] == 1500

    assert addresses(vrf_ns, "pe-100") == {"192.169.10.1/24", "2001:db8:10::1/64"}
    assert addresses(leaf.host, "host-100") == {"192.169.10.2/24", "2001:db8:10::2/64"}
    assert addresses(leaf.router, "pt-ns") == {"192.168.9.1/24", "2001:db8:9::1/64"}
    assert addresses(leaf.host, "pt-host") == {"192.168.9.5/24", "2001:db8:9::5/64"}  # node index 3
    # usable at once: no address waits for duplicate address detection, the host reaches the router side
    assert tentative(vrf_ns, "pe-100") == [] and tentative(leaf.host, "pt-host") == []
    for address in ("192.169.10.1", "2001:db8:10::1", "192.168.9.1", "2001:db8:9::1"):
        assert ping(leaf.host, address), address
    assert not ping(leaf.router, "192.169.10.2")  # the VRF's veth is not reachable from the default VRF


def test_addresses_follow_the_configuration(make_leaf: LeafFactory) -> None:
    leaf = session_leaf(make_leaf, "hsa")
    Plumbing(leaf.layout).apply()
    moved = dataclasses.replace(PASSTHROUGH, local_cidr_ipv4=ipaddress.IPv4Network("192.168.8.0/24"))
    changed = leaf.with_config(dataclasses.replace(leaf.layout.config, passthrough=moved))
    report = Plumbing(changed.layout, previous=leaf.layout).apply()
    assert not any("created veth" in line for line in report.changes)  # same pair, new addresses
    assert addresses(leaf.router, "pt-ns") == {"192.168.8.1/24", "2001:db8:9::1/64"}
    assert addresses(leaf.host, "pt-host") == {"192.168.8.5/24", "2001:db8:9::5/64"}


def test_host_sessions_removed_when_they_leave_the_configuration(make_leaf: LeafFactory) -> None:
    leaf = session_leaf(make_leaf, "hsr")
    Plumbing(leaf.layout).apply()
    subprocess.run(["ip", "-n", leaf.host, "link", "add", "user-veth", "type", "veth"], check=True)
    without = leaf.with_config(leaf_config(1, l2=(), l3=(red(1),)))
    report = Plumbing(without.layout, previous=leaf.layout).apply()
    removed = {line.split(": ", 1)[1] for line in report.changes}
    assert removed & {"removed pe-100", "removed host-100"} and removed & {"removed pt-ns", "removed pt-host"}
    vrf_ns = leaf.layout.namespaces.vrf("red")
    assert set(links(leaf.router)) == {"lo"}
    assert set(links(leaf.host)) == {"lo", "user-veth", "veth0"}  # the user's pair stays
    assert {"br-pe-100", "vni100"} == set(links(vrf_ns)) - {"lo"}  # the L3VNI itself stays
    assert Plumbing(without.layout, previous=leaf.layout).apply().changes == ()
