"""``benchmarks.bench_core`` at a small size: every workload runs and reports plausible figures (the
benchmark itself asserts that the withdrawal leaves no dataplane entry behind)."""

from __future__ import annotations

import gc

from benchmarks import bench_core


def test_bench_core_small_run_reports_every_workload() -> None:
    saved = gc.get_threshold()
    result = bench_core.run(1_000, 200, repeats=1, gc_threshold=bench_core.GC_THRESHOLD)
    assert gc.get_threshold() == saved  # the run restores the collector's settings
    assert result["gc_threshold"] == [bench_core.GC_THRESHOLD, 20, 100]
    for name in ("mac_only", "mac_ip_irb"):
        figures = result[name]
        assert isinstance(figures, dict)
        assert 0 < figures["announce_us_per_route"] < 1_000
        assert 0 < figures["withdraw_us_per_route"] < 1_000
        assert 0 < figures["peak_bytes_per_route"] < 10_000
    moves = result["moves_irb"]
    assert isinstance(moves, dict) and moves["move_to_local_us"] > 0 and moves["move_to_remote_us"] > 0
