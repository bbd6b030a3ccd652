"""Reusable lab for tests, benchmarks and examples: network namespaces with real FRR, GoBGP and captures.

Typical use (or take the ``lab`` pytest fixture from ``tests/conftest.py``)::

    with Lab("demo") as lab:
        a, b = lab.namespace("frr"), lab.namespace("gobgp")
        link = lab.veth(a, b, "192.168.0.1/30", "192.168.0.2/30")
        cap = lab.capture(b, link.b.ifname)
        frr = lab.frr(a, "router bgp 64512\\n ...")
        gobgp = lab.gobgp(b, 64512, "10.0.0.2", [GobgpNeighbor("192.168.0.1", 64512)])
        frr.wait_established("192.168.0.2")
        messages = cap.bgp_messages()

Everything is removed on exit, even when the body raised. Needs root.
"""

from __future__ import annotations

import os
import shutil

from tests.lab.capture import (
    Capture,
    as_list,
    bgp_messages,
    evpn_labels,
    evpn_nlris,
    evpn_nlris_raw,
    ext_communities,
    ext_community_kind,
    find_values,
    path_attribute,
    path_attributes,
    raw_bytes,
    rd_bytes_to_str,
    tshark_available,
    tshark_bgp_json,
    tshark_decode_bytes,
    write_bgp_pcap,
)
from tests.lab.frr import (
    FrrRouter,
    L2Vni,
    L3VniNetns,
    anycast_mac,
    create_l2vni,
    create_l3vni_netns,
    frr_available,
    netns_vrf_wrapper,
)
from tests.lab.gobgp import (
    GobgpNeighbor,
    GobgpRouter,
    gobgp_available,
    path_attr,
    path_route_targets,
    rd_string,
    render_config,
)
from tests.lab.netns import (
    CommandError,
    Lab,
    LabError,
    Link,
    Namespace,
    VethPair,
    create_veth,
    kill_pid,
    pid_alive,
    pid_comm,
    reap_stale_namespaces,
    run,
    wait_for,
)

__all__ = [
    "Capture",
    "CommandError",
    "FrrRouter",
    "GobgpNeighbor",
    "GobgpRouter",
    "L2Vni",
    "L3VniNetns",
    "Lab",
    "LabError",
    "Link",
    "Namespace",
    "VethPair",
    "anycast_mac",
    "as_list",
    "bgp_messages",
    "create_l2vni",
    "create_l3vni_netns",
    "create_veth",
    "evpn_labels",
    "evpn_nlris",
    "evpn_nlris_raw",
    "ext_communities",
    "ext_community_kind",
    "find_values",
    "frr_available",
    "gobgp_available",
    "in_ci",
    "kill_pid",
    "missing_tools",
    "netns_vrf_wrapper",
    "path_attr",
    "path_attribute",
    "path_attributes",
    "path_route_targets",
    "pid_alive",
    "pid_comm",
    "raw_bytes",
    "rd_bytes_to_str",
    "rd_string",
    "reap_stale_namespaces",
    "render_config",
    "require_root",
    "run",
    "tshark_available",
    "tshark_bgp_json",
    "tshark_decode_bytes",
    "wait_for",
    "write_bgp_pcap",
]

LAB_TOOLS = ("ip", "bridge", "vtysh", "gobgpd", "gobgp", "dumpcap", "tshark")


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to something other than empty/0/false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tools(tools: tuple[str, ...] = LAB_TOOLS) -> list[str]:
    """The lab tools (and FRR daemons) that are not installed."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not frr_available():
        missing.append("frr (/usr/lib/frr/zebra, bgpd)")
    return missing


def require_root() -> None:
    """Skip the current test when not root (or tools are missing); fail instead when running in CI."""
    import pytest

    problems = []
    if os.geteuid() != 0:
        problems.append("needs root (network namespaces)")
    if missing := missing_tools():
        problems.append(f"missing tools: {', '.join(missing)}")
    if problems:
        reason = "; ".join(problems)
        if in_ci():
            pytest.fail(f"lab test cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
