"""Reload (SIGHUP) of ``evpn-speaker run``: add and remove an L2VNI under a running ping, a bad file."""

from __future__ import annotations

import signal

import pytest

from tests.daemon.harness import (
    FRR_VTEP,
    SPK_VTEP,
    VM2_IP,
    Topology,
    build,
    neighbor_counters,
    ping_loss,
    speaker_config,
    start_ping,
)
from tests.lab import Lab, create_l2vni, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.root]

VM3_MAC = "02:00:00:00:03:30"


def remote_vteps(topo: Topology, vni: int) -> list[str]:
    """zebra's remote VTEPs of ``vni`` (FRR 8.4 names the list ``numRemoteVteps``)."""
    data = topo.frr.vtysh_json(f"show evpn vni {vni}")
    vteps = data.get("numRemoteVteps", []) if isinstance(data, dict) else []
    return [str(v) for v in vteps] if isinstance(vteps, list) else []


def test_reload_adds_and_removes_l2vni_without_loss(lab: Lab) -> None:
    topo = build(lab)
    create_l2vni(topo.frr_ns, 120, FRR_VTEP, add_vtep_address=False)
    daemon = topo.start_daemon()
    topo.wait_established()
    topo.attach_vm1()
    topo.wait_ping(topo.vm1, VM2_IP)
    counters = neighbor_counters(topo)
    proc, out_path = start_ping(topo, topo.vm1, VM2_IP, 8.0, "ping-reload")

    topo.write_config(speaker_config(topo.hs.name, (110, 120)))
    mark = len(daemon.log())
    daemon.send(signal.SIGHUP)
    daemon.wait_log(r"reload: applied \(VNIs added \[120\], removed \[\]\)", start=mark)
    assert "vni120" in topo.spk.ip("link", "show")
    assert "br-hs-120" in topo.hs.ip("link", "show")
    wait_for(lambda: SPK_VTEP in remote_vteps(topo, 120), 15, what="our VTEP in FRR's VNI 120")
    wait_for(
        lambda: f"00:00:00:00:00:00 dst {FRR_VTEP}" in topo.spk.bridge("fdb", "show", "dev", "vni120"),
        15,
        what="FRR's flood entry on our vni120",
    )
    # local learning follows the new VNI: a host on br-hs-120 becomes a remote MAC in FRR's VNI 120
    vm3 = lab.namespace("vm3")
    vm3.disable_ipv6()
    lab.veth(vm3, topo.hs, "192.170.2.10/24", None)
    vm3.ip("link", "set", "to-hs", "address", VM3_MAC)
    topo.hs.ip("link", "set", "to-vm3", "master", "br-hs-120", "up")
    vm3.run(["ping", "-c", "1", "-W", "1", "192.170.2.1"], check=False)  # any frame: the bridge learns
    wait_for(
        lambda: topo.frr.evpn_macs(120).get(VM3_MAC, {}).get("type") == "remote",
        15,
        what="the VNI 120 host as remote in FRR",
    )

    topo.write_config(speaker_config(topo.hs.name, (110,)))
    mark = len(daemon.log())
    daemon.send(signal.SIGHUP)
    daemon.wait_log(r"reload: applied \(VNIs added \[\], removed \[120\]\)", start=mark)
    assert "vni120" not in topo.spk.ip("link", "show")
    assert "br-hs-120" not in topo.hs.ip("link", "show")
    wait_for(lambda: SPK_VTEP not in remote_vteps(topo, 120), 15, what="our VTEP gone from FRR's VNI 120")
    wait_for(lambda: VM3_MAC not in topo.frr.evpn_macs(120), 15, what="the VNI 120 host withdrawn")

    sent, received, out = ping_loss(proc, out_path)
    assert sent > 100 and received == sent, out
    assert neighbor_counters(topo) == counters, "the FRR session was reset by a reload"
    assert topo.frr_summary_peer()["state"] == "Established"
    assert "Traceback" not in daemon.log()


def test_bad_reload_keeps_running_state(lab: Lab) -> None:
    topo = build(lab)
    daemon = topo.start_daemon()
    topo.wait_established()
    topo.attach_vm1()
    topo.wait_ping(topo.vm1, VM2_IP)
    topo.wait_remote_mac()
    counters = neighbor_counters(topo)
    links = sorted(topo.spk.ip("-br", "link", "show").split("\n"))
    fdb = topo.kernel_entries()

    bad = speaker_config(topo.hs.name, (110, 120)).replace("vni: 120", "vni: 0")
    topo.write_config(bad)
    line = bad.splitlines().index("    vni: 0") + 1
    mark = len(daemon.log())
    daemon.send(signal.SIGHUP)
    match = daemon.wait_log(r"reload rejected, running configuration kept: (.*)", start=mark)
    assert match.group(1).startswith(f"{topo.config_path}:{line}: "), match.group(1)
    assert "l2vnis[1].vni: must be 1..16777215, got 0" in match.group(1)

    # a change only a restart can make is rejected too; here through the control socket's reload
    topo.write_config(
        speaker_config(topo.hs.name).replace("asn: 64512\n  router_id", "asn: 64513\n  router_id")
    )
    result = topo.control("reload")
    assert result.returncode == 1, result
    assert "underlay" in result.stderr and "restart" in result.stderr, result
    daemon.wait_log(r"reload rejected, running configuration kept: underlay")
    # a good file through the control socket: no change
    topo.write_config(speaker_config(topo.hs.name))
    result = topo.control("reload")
    assert result.returncode == 0 and "no change" in result.stdout, result

    assert daemon.proc.poll() is None
    assert sorted(topo.spk.ip("-br", "link", "show").split("\n")) == links
    assert topo.kernel_entries() == fdb
    out = topo.ping(topo.vm1, VM2_IP, count=5)
    assert " 0% packet loss" in out, out
    assert neighbor_counters(topo) == counters
