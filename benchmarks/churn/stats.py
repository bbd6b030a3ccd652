"""From samples to the summary: medians and min-max over repeats, ratios to FRR, and the goals of DESIGN §8.

Every summary row names its scenario, target (and size), and for each figure a ``{"median", "min", "max",
"n"}``; ``x_frr`` holds median(target) / median(FRR) for the same scenario and size (< 1: better than FRR
for times and memory, > 1 better for rates).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Sample = dict[str, Any]
Row = dict[str, Any]


def spread(values: Iterable[float | None]) -> dict[str, float | int] | None:
    got = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not got:
        return None
    return {
        "median": round(statistics.median(got), 4),
        "min": round(min(got), 4),
        "max": round(max(got), 4),
        "n": len(got),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (``numpy.percentile``'s default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ok(samples: Iterable[Sample], scenario: str) -> list[Sample]:
    return [s for s in samples if s.get("scenario") == scenario and "error" not in s]


def _targets(samples: Sequence[Sample]) -> list[str]:
    order = ("native", "exabgp", "frr")
    found = {s["target"] for s in samples}
    return [t for t in order if t in found] + sorted(found - set(order))


def _ratios(rows: list[Row], key: Callable[[Row], Any], figures: Sequence[str]) -> None:
    """``x_frr[figure]`` = median / FRR's median, for rows with the same ``key``."""
    frr = {key(r): r for r in rows if r["target"] == "frr"}
    for row in rows:
        ref = frr.get(key(row))
        if ref is None or row["target"] == "frr":
            continue
        ratios = {}
        for fig in figures:
            mine, theirs = row.get(fig), ref.get(fig)
            if mine is not None and theirs is not None and theirs["median"]:
                ratios[fig] = round(mine["median"] / theirs["median"], 3)
        row["x_frr"] = ratios


BULK_FIGURES = ("rib_s", "fdb_s", "withdraw_s", "rss_loaded_mb", "bytes_per_route")


def bulk_rows(samples: Sequence[Sample]) -> list[Row]:
    got = ok(samples, "bulk")
    rows: list[Row] = []
    for n in sorted({s["routes"] for s in got}):
        for target in _targets(got):
            rs = [s for s in got if s["routes"] == n and s["target"] == target]
            if not rs:
                continue
            rows.append({
                "target": target,
                "routes": n,
                "rib_s": spread(s["rib_s"] for s in rs),
                "fdb_s": spread(s["fdb_s"] for s in rs),
                "withdraw_s": spread(s["withdraw_s"] for s in rs),
                "withdraw_incomplete": sum(1 for s in rs if s["withdraw_s"] is None),
                "rss_idle_mb": spread(s["rss_total_mb"]["idle"] for s in rs),
                "rss_loaded_mb": spread(s["rss_total_mb"]["loaded"] for s in rs),
                "rss_withdrawn_mb": spread(s["rss_total_mb"]["withdrawn"] for s in rs),
                "bytes_per_route": spread(s["bytes_per_route"] for s in rs),
            })  # fmt: skip
    _ratios(rows, lambda r: r["routes"], BULK_FIGURES)
    return rows


def moves_rows(samples: Sequence[Sample]) -> list[Row]:
    got = ok(samples, "moves")
    rows: list[Row] = []
    for target in _targets(got):
        rs = [s for s in got if s["target"] == target]
        pooled = [x for s in rs for x in s["latency_ms"]]
        rows.append({
            "target": target,
            "moves": sum(s["moves"] for s in rs),
            "missed": sum(s["missed"] for s in rs),
            "p50_ms": round(percentile(pooled, 0.5), 2) if pooled else None,
            "p90_ms": round(percentile(pooled, 0.9), 2) if pooled else None,
            "p99_ms": round(percentile(pooled, 0.99), 2) if pooled else None,
            "repeat_p50_ms": spread(percentile(s["latency_ms"], 0.5) for s in rs if s["latency_ms"]),
            "lost_pings": spread(s["ping"]["lost"] for s in rs),
            "sent_pings": sum(s["ping"]["sent"] for s in rs),
        })  # fmt: skip
    frr = next((r for r in rows if r["target"] == "frr"), None)
    for row in rows:
        if frr is not None and row["target"] != "frr":
            row["x_frr"] = {
                k: round(row[k] / frr[k], 3) for k in ("p50_ms", "p90_ms", "p99_ms") if row[k] and frr[k]
            }
    return rows


def churn_rows(samples: Sequence[Sample]) -> list[Row]:
    got = ok(samples, "churn")
    rows: list[Row] = []
    for target in _targets(got):
        rs = [s for s in got if s["target"] == target]
        by_rate: dict[int, list[Sample]] = {}
        for s in rs:
            for step in s["steps"]:
                by_rate.setdefault(step["rate"], []).append(step)
        rows.append({
            "target": target,
            "sustained_rate": spread(s["sustained_rate"] for s in rs),
            "steps": [
                {
                    "rate": rate,
                    "sustained": sum(1 for st in steps if st["sustained"]),
                    "runs": len(steps),
                    "p99_ms": spread(st["latency_ms"]["p99"] for st in steps),
                    "cpu_mean_pct": spread(st["cpu_mean_pct"] for st in steps),
                    "rss_max_mb": spread(max((row[2] for row in st["series"]), default=None) for st in steps),
                }
                for rate, steps in sorted(by_rate.items())
            ],
        })  # fmt: skip
    _ratios(rows, lambda r: 0, ("sustained_rate",))
    return rows


RESTART_FIGURES = ("startup_s", "new_table_s", "reconciled_s")


def restart_rows(samples: Sequence[Sample]) -> list[Row]:
    got = ok(samples, "restart")
    rows: list[Row] = []
    for n in sorted({s["routes"] for s in got}):
        for target in _targets(got):
            rs = [s for s in got if s["routes"] == n and s["target"] == target]
            if not rs:
                continue
            rows.append({
                "target": target,
                "routes": n,
                "startup_s": spread(s["startup_s"] for s in rs),
                "session_s": spread(s["session_s"] for s in rs),
                "new_table_s": spread(s["new_table_s"] for s in rs),
                "reconciled_s": spread(s["reconciled_s"] for s in rs),
                "not_reconciled": sum(1 for s in rs if s["reconciled_s"] is None),
                "stale_left": spread(s["stale_left"] for s in rs),
                "unchanged_removed": spread(s["unchanged_removed"] for s in rs),
                "unchanged_readded": spread(s["unchanged_readded"] for s in rs),
                "unchanged_rewritten": spread(s["unchanged_rewritten"] for s in rs),
            })  # fmt: skip
    _ratios(rows, lambda r: r["routes"], RESTART_FIGURES)
    return rows


def summarize(samples: Sequence[Sample]) -> dict[str, list[Row]]:
    return {
        "bulk": bulk_rows(samples),
        "moves": moves_rows(samples),
        "churn": churn_rows(samples),
        "restart": restart_rows(samples),
    }


def goals(summary: dict[str, list[Row]]) -> list[dict[str, Any]]:
    """DESIGN §8's goals for each evpn-speaker engine against FRR in the same run (``met``: ratio <= 1)."""
    out: list[dict[str, Any]] = []

    def add(goal: str, row: Row, figure: str, ratio: float | None, value: Any, frr: Any) -> None:
        out.append({
            "goal": goal, "target": row["target"], "figure": figure, "value": value, "frr": frr,
            "ratio": ratio, "met": None if ratio is None else ratio <= 1.0,
        })  # fmt: skip

    bulk = summary["bulk"]
    frr_bulk = {r["routes"]: r for r in bulk if r["target"] == "frr"}
    for row in bulk:
        ref = frr_bulk.get(row["routes"])
        if row["target"] == "frr" or ref is None:
            continue
        n = row["routes"]
        for figure, goal in (
            ("fdb_s", f"{n:,} routes into the FDB <= 1.0x FRR"),
            ("withdraw_s", f"{n:,} routes withdrawn, FDB clean <= 1.0x FRR"),
            ("bytes_per_route", f"memory per route at {n:,} <= FRR"),
        ):
            if figure != "bytes_per_route" and n not in (10_000, 50_000):
                continue
            mine, theirs = row.get(figure), ref.get(figure)
            add(goal, row, figure, row.get("x_frr", {}).get(figure),
                mine and mine["median"], theirs and theirs["median"])  # fmt: skip
    moves = summary["moves"]
    frr_moves = next((r for r in moves if r["target"] == "frr"), None)
    for row in moves:
        if row["target"] == "frr" or frr_moves is None:
            continue
        for figure in ("p50_ms", "p90_ms"):
            add(f"MAC-move convergence {figure[:3]} <= FRR", row, figure, row.get("x_frr", {}).get(figure),
                row[figure], frr_moves[figure])  # fmt: skip
    return out
