"""``evpn-speaker run`` with an L3VNI (``vrf_backend: netns``): the VRF namespace, the L3 SVI with the
core's Router's MAC, the L2VNI's anycast gateway in the VRF; then ``--flush-on-exit``."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from evpn.core import EvpnCore
from speaker.config_file import load_config
from tests.daemon.harness import ASN, SPK_IP, VM1_IP, VM1_MAC, VM2_IP, VM2_MAC, build, run_cli, speaker_config
from tests.lab import Lab, run, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.root]


def l3_config(host_netns: str, vrf: str) -> str:
    text = speaker_config(host_netns)
    text = text.replace(
        "    host_bridge: {mode: managed}\n",
        f"    host_bridge: {{mode: managed}}\n    vrf: {vrf}\n    gateway_ips: [192.170.1.1/24]\n",
    )
    return text.replace("l2vnis:\n", f"l3vnis:\n  - name: {vrf}\n    vni: 100\n    vrf: {vrf}\nl2vnis:\n")


def link(ns: str, dev: str) -> dict[str, Any]:
    out = run(["ip", "-n", ns, "-j", "addr", "show", "dev", dev]).stdout
    data: list[dict[str, Any]] = json.loads(out)
    return data[0]


def test_l3vni_netns_plumbing_gateway_and_flush_on_exit(lab: Lab) -> None:
    topo = build(lab)
    # The VRF namespace exists before the daemon starts: one the daemon created under `ip netns exec` would
    # live in its private mount namespace only (the daemon warns about it, see check_vrf_namespaces).
    vrf = lab.namespace("red").name
    topo.write_config(l3_config(topo.hs.name, vrf))
    router_mac = EvpnCore(load_config(topo.config_path)).router_macs()[100]

    daemon = topo.start_daemon("--flush-on-exit")
    topo.wait_established()
    l3svi = link(vrf, "br-pe-100")
    assert l3svi["address"] == str(router_mac)
    assert link(vrf, "vni100")["master"] == "br-pe-100"
    l2svi = link(vrf, "br-pe-110")
    assert l2svi["address"] == "00:f3:00:00:00:6f"
    inet = [(a["local"], a["prefixlen"]) for a in l2svi["addr_info"] if a["family"] == "inet"]
    assert inet == [("192.170.1.1", 24)]
    assert link(vrf, "vni110")["master"] == "br-pe-110"

    # a host behind us pings its anycast gateway: FRR gets its MAC (and IP) as remote
    topo.attach_vm1()
    topo.wait_ping(topo.vm1, "192.170.1.1")
    macs = wait_for(
        lambda: (m := topo.frr.evpn_macs(110)).get(VM1_MAC, {}).get("type") == "remote" and m,
        20,
        what="our host MAC remote in FRR",
    )
    assert macs[VM1_MAC]["remoteVtep"] == "10.255.0.2"
    # ... and the other host behind FRR, across VXLAN
    topo.wait_ping(topo.vm1, VM2_IP)
    wait_for(
        lambda: VM2_MAC in run(["bridge", "-n", vrf, "fdb", "show", "dev", "vni110"]).stdout,
        15,
        what="vm2's MAC in our FDB",
    )

    # --flush-on-exit: Cease to FRR, our kernel entries removed, the devices stay
    assert daemon.stop(signal.SIGTERM) == 0
    state = topo.frr.vtysh_json(f"show bgp neighbors {SPK_IP} json")[SPK_IP]
    assert state["bgpState"] != "Established"
    assert "Cease" in json.dumps(state) or "Administrative" in json.dumps(state), state
    fdb = run(["bridge", "-n", vrf, "fdb", "show", "dev", "vni110"]).stdout
    assert VM2_MAC not in fdb and "extern_learn" not in fdb, fdb
    assert "flushed" in daemon.log()
    assert link(vrf, "br-pe-100")["address"] == str(router_mac)
    assert VM1_IP and ASN


def test_unusable_vrf_namespace_file_is_reported(lab: Lab) -> None:
    """A /run/netns entry left by a daemon that created it in its private mount namespace: exit 1, why."""
    topo = build(lab)
    vrf = f"ev{lab.id}-gone"
    stale = Path("/run/netns") / vrf
    stale.touch()
    lab.add_cleanup(lambda: stale.unlink(missing_ok=True), f"remove {stale}")
    topo.write_config(l3_config(topo.hs.name, vrf))
    result = run_cli("run", "--config", str(topo.config_path), "--socket", "", ns=topo.spk)
    assert result.returncode == 1, result
    assert f"{stale} exists but is not a network namespace here" in result.stderr, result.stderr
    assert f"ip netns add {vrf}" in result.stderr
    assert "br-pe-110" not in topo.spk.ip("link", "show")


def test_missing_host_namespace_is_reported(lab: Lab) -> None:
    topo = build(lab)
    result = run_cli(
        "run",
        "--config",
        str(topo.config_path),
        "--socket",
        "",
        "--host-netns",
        f"ev{lab.id}-nohs",
        ns=topo.spk,
    )
    assert result.returncode == 1, result
    assert f"host namespace ev{lab.id}-nohs does not exist" in result.stderr, result.stderr
    assert "br-pe-110" not in topo.spk.ip("link", "show")
