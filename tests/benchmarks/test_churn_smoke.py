"""``python -m benchmarks.churn --quick``, for real: every scenario on every target, then its outputs checked.

Runs as a child process (root, network namespaces, FRR, both evpn-speaker engines), as a user would run it;
it must finish in under two minutes on the project's 2-vCPU machine.
"""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab import reap_stale_namespaces
from tests.lab.netns import REGISTRY_DIR

pytestmark = [pytest.mark.root, pytest.mark.interop, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("native", "exabgp", "frr")
SCENARIOS = ("bulk", "moves", "churn", "restart")
BUDGET = 120.0
PNG = b"\x89PNG\r\n\x1a\n"


def registered_by(pid: int) -> list[str]:
    """Lab namespaces registered to ``pid`` that still exist (none once its labs closed)."""
    if not REGISTRY_DIR.is_dir():
        return []
    return [
        e.name
        for e in REGISTRY_DIR.iterdir()
        if e.read_text().split()[:1] == [str(pid)] and Path("/run/netns", e.name).exists()
    ]


def run_quick(out: Path) -> tuple[subprocess.CompletedProcess[str], float, list[str]]:
    """The quick run; its result, how long it took, the namespaces it left behind (then removed)."""
    cmd = [sys.executable, "-m", "benchmarks.churn", "--quick", "--out", str(out)]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: its labs clean up
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        pytest.fail(f"the quick run did not finish in 300 s\n{stderr[-5000:]}")
    finally:
        left = registered_by(proc.pid)
        reap_stale_namespaces()  # whatever a run that died left behind
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), time.monotonic() - started, left


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG), f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def by(samples: list[dict[str, Any]], scenario: str, target: str) -> list[dict[str, Any]]:
    return [s for s in samples if s["scenario"] == scenario and s["target"] == target]


def test_quick_run_writes_complete_consistent_results(requires_root: None, tmp_path: Path) -> None:
    done, elapsed, left = run_quick(tmp_path)
    assert done.returncode == 0, f"rc={done.returncode}\n{done.stderr[-5000:]}"
    assert not left, f"namespaces left behind: {left}"
    assert elapsed < BUDGET, f"the quick run took {elapsed:.0f} s (budget {BUDGET:.0f} s)"

    result = json.loads((tmp_path / "results.json").read_text())
    assert result["schema"] == "evpn-speaker/churn-benchmark/1"
    assert result["machine"]["cpus"] >= 1 and result["machine"]["frr"].startswith("FRR 8.4")
    samples = result["samples"]
    assert not [s for s in samples if "error" in s]
    for scenario in SCENARIOS:
        for target in TARGETS:
            assert by(samples, scenario, target), f"no {scenario} sample for {target}"

    for s in (x for x in samples if x["scenario"] == "bulk"):
        assert s["routes"] == 1000
        assert 0 < s["fdb_s"] < 60 and 0 < s["rib_s"] <= s["fdb_polled_s"] < 60, s
        assert s["rib_bound"] in ("poll", "fdb")
        if s["target"] != "frr":  # FRR 8.4's zebra may leave entries behind on bulk withdrawals
            assert s["withdraw_s"] is not None and s["withdraw_s"] > 0 and s["left_after_withdraw"] == 0, s
        totals = s["rss_total_mb"]
        assert all(totals[k] > 5 for k in ("idle", "loaded", "withdrawn")), s
        expected = {"frr": {"bgpd", "zebra"}, "native": {"evpn-speaker"}}.get(s["target"])
        if expected is not None:
            assert set(s["rss_mb"]["loaded"]) == expected
        else:  # the exabgp engine: the daemon, ExaBGP and its API relay
            assert {"evpn-speaker", "exabgp", "exabgp-relay"} <= set(s["rss_mb"]["loaded"])

    for s in (x for x in samples if x["scenario"] == "moves"):
        assert s["missed"] == 0 and len(s["latency_ms"]) == s["moves"] == 4, s
        assert all(0 < x < 5000 for x in s["latency_ms"]), s
        ping = s["ping"]
        assert ping["sent"] > 50 and 0 <= ping["lost"] <= ping["sent"]
        assert sum(ping["lost_per_move"]) <= ping["lost"] and len(ping["lost_per_move"]) == 4

    for s in (x for x in samples if x["scenario"] == "churn"):
        assert s["steps"], s
        first = s["steps"][0]
        assert first["rate"] == 500 and first["ops"] == 1000
        assert sum(first["ops_by_kind"].values()) == first["ops"]
        assert all(first["ops_by_kind"][k] > 0 for k in ("announce", "withdraw", "move"))
        assert 0 < first["latency_ms"]["p50"] <= first["latency_ms"]["p99"] <= first["latency_ms"]["max"]
        assert first["series"] and all(row[1] >= 0 and row[2] > 0 for row in first["series"])
        assert s["sustained_rate"] in {0} | {st["rate"] for st in s["steps"] if st["sustained"]}

    for s in (x for x in samples if x["scenario"] == "restart"):
        assert s["changed"] == {"withdrawn": 10, "moved": 10, "added": 10}
        assert s["unchanged"] == 980
        for key in ("unchanged_removed", "unchanged_readded", "unchanged_rewritten", "stale_left"):
            assert isinstance(s[key], int) and s[key] >= 0, (key, s)
        assert s["unchanged_readded"] <= s["unchanged_removed"]
        assert 0 < s["startup_s"] <= s["session_s"] <= s["new_table_s"], s
        if s["reconciled_s"] is not None:
            assert s["reconciled_s"] >= s["new_table_s"] and s["stale_left"] == 0 and s["final_ok"], s
        if s["target"] != "frr":  # the goal: a restart touches nothing that did not change
            assert s["reconciled_s"] is not None, s
            assert s["unchanged_removed"] == s["unchanged_rewritten"] == 0, s

    summary = result["summary"]
    for scenario in SCENARIOS:
        assert [r["target"] for r in summary[scenario]] == list(TARGETS), scenario
    native_bulk = summary["bulk"][0]
    assert native_bulk["fdb_s"]["n"] == 1 and native_bulk["fdb_s"]["median"] > 0
    assert set(native_bulk["x_frr"]) >= {"fdb_s", "bytes_per_route"}
    goals = result["goals"]
    assert {(g["target"], g["figure"]) for g in goals} >= {
        (t, f) for t in ("native", "exabgp") for f in ("p50_ms", "p90_ms", "bytes_per_route")
    }
    assert all(g["met"] == (g["ratio"] <= 1.0) for g in goals if g["ratio"] is not None)

    assert sorted(result["plots"]) == [
        "bulk_fdb_time.png",
        "bulk_memory.png",
        "churn.png",
        "moves_latency.png",
    ]
    for name in result["plots"]:
        width, height = png_size(tmp_path / name)
        assert width > 300 and height > 200, name
    text = (tmp_path / "summary.md").read_text()
    assert text in done.stdout
    assert "| routes | target | in RIB s | in FDB s |" in text and "### Goals (DESIGN §8)" in text
