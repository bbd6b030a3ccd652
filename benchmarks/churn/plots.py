"""PNG plots of a run (matplotlib, Agg backend: no display needed).

- ``bulk_fdb_time.png``: time until all N routes are in the kernel FDB, and until the FDB is clean after
  the withdrawal, against N (medians, bars from min to max over the repeats), log-log;
- ``bulk_memory.png``: RSS of all the router's processes with N routes loaded, and per route, against N;
- ``moves_latency.png``: the distribution (CDF) of MAC-move convergence, every move of every repeat;
- ``churn.png``: p99 op latency and CPU against the offered rate (medians over repeats).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

COLORS = {"native": "tab:blue", "exabgp": "tab:orange", "frr": "tab:green"}
LABELS = {"native": "evpn-speaker (native)", "exabgp": "evpn-speaker (exabgp)", "frr": "FRR 8.4 zebra+bgpd"}
Row = dict[str, Any]


def _series(
    ax: Axes, rows: Sequence[Row], x: str, figure: str, *, style: str = "-o", label: str = ""
) -> None:
    for target in dict.fromkeys(r["target"] for r in rows):
        pts = [(r[x], r[figure]) for r in rows if r["target"] == target and r.get(figure)]
        if not pts:
            continue
        xs = [p[0] for p in pts]
        med = [p[1]["median"] for p in pts]
        err = [[m - p[1]["min"] for m, p in zip(med, pts, strict=True)],
               [p[1]["max"] - m for m, p in zip(med, pts, strict=True)]]  # fmt: skip
        ax.errorbar(xs, med, yerr=err, fmt=style, capsize=3, color=COLORS.get(target),
                    label=f"{LABELS.get(target, target)}{label}")  # fmt: skip


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path.name


def bulk_fdb(rows: Sequence[Row], out: Path) -> str | None:
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _series(ax, rows, "routes", "fdb_s")
    _series(ax, rows, "routes", "withdraw_s", style="--s", label=", withdrawn")
    ax.set(xscale="log", yscale="log", xlabel="type-2 routes (N)", ylabel="seconds",
           title="Bulk: until all N are in the kernel FDB (solid), until it is clean (dashed)")  # fmt: skip
    ax.title.set_fontsize(9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out / "bulk_fdb_time.png")


def bulk_memory(rows: Sequence[Row], out: Path) -> str | None:
    if not rows:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    _series(left, rows, "routes", "rss_loaded_mb")
    left.set(xscale="log", xlabel="type-2 routes (N)", ylabel="MB", title="RSS, all processes, N loaded")
    _series(right, rows, "routes", "bytes_per_route")
    right.set(xscale="log", xlabel="type-2 routes (N)", ylabel="bytes", title="(loaded - idle RSS) / N")
    for ax in (left, right):
        ax.title.set_fontsize(9)
        ax.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    return _save(fig, out / "bulk_memory.png")


def moves_latency(samples: Sequence[Row], out: Path) -> str | None:
    by_target: dict[str, list[float]] = {}
    for s in samples:
        by_target.setdefault(s["target"], []).extend(s["latency_ms"])
    if not any(by_target.values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for target, values in by_target.items():
        ordered = sorted(values)
        if ordered:
            ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
            ax.step(ordered, ys, where="post", color=COLORS.get(target), label=LABELS.get(target, target))
    ax.set(xlabel="ms from the GARP to the old leaf's FDB pointing to the new leaf", ylabel="fraction of moves",
           title="MAC moves: leaf -> FRR spine -> leaf (CDF)", ylim=(0, 1.02))  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out / "moves_latency.png")


def churn(rows: Sequence[Row], out: Path) -> str | None:
    steps = [dict(step, target=r["target"]) for r in rows for step in r["steps"]]
    if not steps:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    _series(left, steps, "rate", "p99_ms")
    left.set(xscale="log", yscale="log", xlabel="offered updates/s", ylabel="ms", title="p99 op latency")
    _series(right, steps, "rate", "cpu_mean_pct")
    right.set(xscale="log", xlabel="offered updates/s", ylabel="% of one core", title="CPU, all processes")
    for ax in (left, right):
        ax.title.set_fontsize(9)
        ax.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    return _save(fig, out / "churn.png")


def all_plots(result: dict[str, Any], out: Path) -> list[str]:
    summary = result["summary"]
    moves = [s for s in result["samples"] if s.get("scenario") == "moves" and "error" not in s]
    made = [
        bulk_fdb(summary["bulk"], out),
        bulk_memory(summary["bulk"], out),
        moves_latency(moves, out),
        churn(summary["churn"], out),
    ]
    return [m for m in made if m is not None]
