"""``examples/two-leaf`` end to end, its pieces against FRR's own view, and the packaging files."""

from __future__ import annotations

import configparser
import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from examples import two_leaf
from tests.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "two-leaf"

STEPS = (
    "==> build: spine (FRR route reflector), leaf1 (evpn-speaker)",
    "==> BGP sessions to the spine",
    "[ok] leaf1 <-> spine Established, leaf2 <-> spine Established",
    "[ok] 192.170.1.3 -> 192.170.1.30: 3 packets transmitted, 3 received, 0% packet loss",
    "[ok] 192.170.1.30 -> 192.170.1.3: 3 packets transmitted, 3 received, 0% packet loss",
    "[ok] 192.170.1.3 -> gateway 192.170.1.1 (leaf1)",
    "[ok] 192.170.1.30 -> gateway 192.170.1.1 (leaf2)",
    "show evpn mac vni 110",
    "show bgp summary",
    "==> move host 192.170.1.30 from leaf2 to leaf1",
    "02:00:c0:aa:01:1e: local on leaf1 with sequence 1, remote on leaf2 via 100.65.0.1 with sequence 1",
    "[ok] 192.170.1.30 -> gateway 192.170.1.1 (now leaf1)",
    "==> all checks passed",
    "[ok] nothing left",
    "PASS",
)


def lab_id(output: str) -> str:
    match = re.search(r"namespaces: ev([0-9a-f]{6})-spine", output)
    assert match, output[-4000:]
    return match.group(1)


def leftovers(lab_id: str) -> list[str]:
    """Namespaces ``ev<id>-*`` and processes started from ``/tmp/evlab-<id>-*`` that still exist."""
    left = [p.name for p in Path("/run/netns").glob(f"ev{lab_id}-*")]
    marker = f"/tmp/evlab-{lab_id}-".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes():
                    left.append(f"pid {proc.name}")
            except OSError:
                continue
    left += [str(p) for p in Path("/tmp").glob(f"evlab-{lab_id}-*")]
    return left


@pytest.mark.interop
@pytest.mark.root
@pytest.mark.parametrize("peer", ["frr", "evpn-speaker"])
def test_two_leaf_end_to_end(peer: str, requires_root: None) -> None:
    args = [str(SCRIPT)] if peer == "frr" else [str(SCRIPT), "--peer", peer]
    start = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    elapsed = time.monotonic() - start
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-8000:]
    for line in STEPS:
        assert line in out, f"missing {line!r} in:\n{out[-8000:]}"
    assert f"leaf2 ({peer})" in out
    assert elapsed < 60, elapsed
    assert leftovers(lab_id(out)) == []


@pytest.mark.interop
@pytest.mark.root
def test_two_leaf_interrupted_cleans_up(requires_root: None) -> None:
    """Ctrl-C in the middle: exit 130, nothing left."""
    proc = subprocess.Popen([str(SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "==> ping across" in line:
                proc.send_signal(signal.SIGINT)
                break
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out[-6000:]
    assert "interrupted: cleaned up" in out and "[ok] nothing left" in out, out[-6000:]
    assert leftovers(lab_id(out)) == []


def frr_peer_state(data: dict[str, Any], peer: str) -> str:
    return str(data["l2VpnEvpn"]["peers"][peer]["state"])


@pytest.mark.interop
@pytest.mark.root
def test_our_show_agrees_with_frr(lab: Lab) -> None:
    """Our ``show evpn mac vni 110 --json`` and FRR's ``show evpn mac vni 110 json``: same MACs, mirrored."""
    topo = two_leaf.build(lab, "frr")
    two_leaf.wait_established(topo)
    two_leaf.ping(topo.h3, two_leaf.HOST30.ip)
    ours_leaf, frr_leaf = topo.leaf1, topo.leaf2
    assert frr_leaf.frr is not None
    h3, h30 = two_leaf.HOST3.mac, two_leaf.HOST30.mac
    two_leaf.wait_mac(ours_leaf, h30, "remote", vtep=two_leaf.LEAF2.vtep)
    two_leaf.wait_mac(frr_leaf, h3, "remote", vtep=two_leaf.LEAF1.vtep)

    def compare(moved: bool) -> None:
        ours = json.loads(ours_leaf.control("show", "evpn", "mac", "vni", "110", "--json"))["macs"]
        frr = frr_leaf.frr.vtysh_json("show evpn mac vni 110 json")["macs"]  # type: ignore[union-attr]
        # each host MAC: local on the leaf it is behind, remote (from that leaf's VTEP) on the other one
        assert ours[h3]["type"] == "local" and frr[h3]["type"] == "remote", (ours[h3], frr[h3])
        assert frr[h3]["remoteVtep"] == two_leaf.LEAF1.vtep
        assert int(ours[h3]["localSequence"]) == int(frr[h3]["remoteSequence"]) == 0
        if not moved:
            assert ours[h30]["type"] == "remote" and frr[h30]["type"] == "local", (ours[h30], frr[h30])
            assert ours[h30]["remoteVtep"] == two_leaf.LEAF2.vtep
            assert int(frr[h30]["localSequence"]) == int(ours[h30]["remoteSequence"]) == 0
        else:
            assert ours[h30]["type"] == "local" and frr[h30]["type"] == "remote", (ours[h30], frr[h30])
            assert frr[h30]["remoteVtep"] == two_leaf.LEAF1.vtep
            assert int(ours[h30]["localSequence"]) == int(frr[h30]["remoteSequence"]) == 1
        # every MAC FRR learned locally (its bridge's own and host MACs) is remote on our side, same VTEP
        for mac, entry in frr.items():
            if entry["type"] == "local":
                assert ours.get(mac, {}).get("type") == "remote", (mac, ours.get(mac))
                assert ours[mac]["remoteVtep"] == two_leaf.LEAF2.vtep
        # and the mirror image, for the MACs we advertise
        for mac, entry in ours.items():
            if entry["type"] == "local" and mac in frr:
                assert frr[mac]["type"] == "remote" and frr[mac]["remoteVtep"] == two_leaf.LEAF1.vtep

    compare(moved=False)

    # BGP summary: both leaves see the spine Established, and the spine (FRR) sees both leaves Established
    summary = json.loads(ours_leaf.control("show", "bgp", "summary", "--json"))
    ours_peers = summary.get("l2VpnEvpn", summary)["peers"]
    assert ours_peers[two_leaf.LEAF1.spine_ip]["state"] == "Established"
    assert (
        frr_peer_state(frr_leaf.frr.vtysh_json("show bgp summary"), two_leaf.LEAF2.spine_ip) == "Established"
    )
    spine = topo.spine.vtysh_json("show bgp summary")
    assert frr_peer_state(spine, two_leaf.LEAF1.ip) == "Established"
    assert frr_peer_state(spine, two_leaf.LEAF2.ip) == "Established"
    assert spine["l2VpnEvpn"]["peers"][two_leaf.LEAF1.ip]["pfxRcd"] >= 2

    two_leaf.move_host30(topo)
    two_leaf.wait_mac(ours_leaf, h30, "local", seq=1)
    two_leaf.wait_mac(frr_leaf, h30, "remote", vtep=two_leaf.LEAF1.vtep, seq=1)
    compare(moved=True)


def test_systemd_unit_parses() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((ROOT / "examples" / "systemd" / "evpn-speaker.service").read_text())
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    exec_start = service["ExecStart"]
    assert "evpn-speaker run" in exec_start and "--config" in exec_start, exec_start
    assert "ip netns exec" in exec_start or "NetworkNamespacePath" in service
    assert "kill -HUP" in service["ExecReload"] or "SIGHUP" in service["ExecReload"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "on-failure"
    caps = {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"}
    assert caps <= set(service["AmbientCapabilities"].split()), service["AmbientCapabilities"]
    assert caps <= set(service["CapabilityBoundingSet"].split()), service["CapabilityBoundingSet"]


def test_containerfile_and_deploy_doc() -> None:
    text = (ROOT / "examples" / "container" / "Containerfile").read_text()
    assert "FROM debian:bookworm-slim" in text or "FROM docker.io/library/debian:bookworm-slim" in text
    assert "pip install" in text and '"evpn-speaker", "run"' in text
    doc = (ROOT / "examples" / "DEPLOY.md").read_text()
    for cap in ("CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"):
        assert cap in doc
