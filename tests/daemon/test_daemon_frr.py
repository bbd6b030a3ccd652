"""``evpn-speaker run`` as a real process in a namespace against FRR 8.4 (see ``harness``)."""

from __future__ import annotations

import json

import pytest

from tests.daemon.harness import VM1_IP, VM1_MAC, VM2_IP, VM2_MAC, build, frr_macs
from tests.lab import Lab, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.root]


def test_established_mac_and_ping(lab: Lab) -> None:
    topo = build(lab)
    daemon = topo.start_daemon("--metrics-address", "127.0.0.1:9464", "--log-format", "text")
    topo.wait_established()
    assert topo.frr_summary_peer()["state"] == "Established"
    topo.attach_vm1()
    topo.wait_ping(topo.vm1, VM2_IP)
    macs = wait_for(
        lambda: (m := frr_macs(topo)).get(VM1_MAC, {}).get("type") == "remote" and m,
        20,
        what="our host MAC remote in FRR",
    )
    assert macs[VM1_MAC]["remoteVtep"] == "10.255.0.2"
    assert macs[VM2_MAC]["type"] == "local"
    out = topo.ping(topo.vm1, VM2_IP, count=5)
    assert " 0% packet loss" in out, out
    out = topo.ping(topo.vm2, VM1_IP, count=5)
    assert " 0% packet loss" in out, out
    # the control socket (speaker.control) and the metrics endpoint (speaker.metrics) of the daemon
    shown = topo.control("show", "evpn", "mac", "vni", "110", "--json")
    assert shown.returncode == 0, shown
    ours = json.loads(shown.stdout)["macs"]
    assert ours[VM1_MAC]["type"] == "local" and ours[VM2_MAC]["type"] == "remote", ours
    summary = topo.control("show", "bgp", "summary")
    assert summary.returncode == 0 and "192.168.100.1" in summary.stdout, summary
    metrics = topo.spk.run(["curl", "-sf", "http://127.0.0.1:9464/metrics"]).stdout
    assert "evpn_bgp_session_state" in metrics and "evpn_speaker_up" in metrics, metrics[:2000]
    assert daemon.proc.poll() is None
    assert "Traceback" not in daemon.log()


def test_exabgp_engine_established_and_mac(lab: Lab) -> None:
    """``--engine exabgp``: the same daemon with ExaBGP 5.0.15 moving the session."""
    topo = build(lab)
    daemon = topo.start_daemon("--engine", "exabgp")
    topo.wait_established(timeout=40)
    topo.attach_vm1()
    topo.wait_ping(topo.vm1, VM2_IP)
    wait_for(
        lambda: frr_macs(topo).get(VM1_MAC, {}).get("type") == "remote",
        20,
        what="our host MAC remote in FRR (exabgp engine)",
    )
    assert "engine exabgp" in daemon.log()
    assert daemon.stop() == 0
