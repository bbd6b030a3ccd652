"""``python -m benchmarks.churn``: run route-churn scenarios on every target, write JSON, Markdown and PNGs.

See ``benchmarks/churn/__init__.py`` for the scenarios, the options and the output files.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.churn import bulk, churn, machine, moves, plots, report, restart, stats
from benchmarks.churn.targets import TARGETS
from tests.lab import frr_available

SCENARIOS = ("bulk", "moves", "churn", "restart")
RESULTS = Path(__file__).resolve().parents[1] / "results"
SCHEMA = "evpn-speaker/churn-benchmark/1"

FULL = {
    "sizes": [1_000, 10_000, 50_000, 100_000],
    "repeats": 3,
    "moves": 20,
    "move_rate": 2.0,
    "rates": [250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000],
    "duration": 5.0,
    "preload": 10_000,
    "restart_routes": 50_000,
}
QUICK = {
    "sizes": [1_000],
    "repeats": 1,
    "moves": 4,
    "move_rate": 4.0,
    "rates": [500, 2_000],
    "duration": 2.0,
    "preload": 1_000,
    "restart_routes": 1_000,
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.churn",
        description="Route-churn benchmark: evpn-speaker (native and ExaBGP engines) and FRR 8.4 on the same "
        "namespace topology, the same injector, in the same run. Needs root.",
    )
    p.add_argument("scenarios", nargs="*", default=["all"], metavar="SCENARIO",
                   help=f"{', '.join(SCENARIOS)} or all (default)")  # fmt: skip
    p.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: native,exabgp,frr")
    p.add_argument("--quick", action="store_true",
                   help="CI smoke: 1,000 routes, 1 repeat, 4 moves, 2 churn rates of 2 s (under 2 minutes)")  # fmt: skip
    p.add_argument("--sizes", type=int, nargs="+", help=f"bulk: route counts (default {FULL['sizes']})")
    p.add_argument("--repeats", type=int, help="repeats of every measurement (default 3)")
    p.add_argument("--moves", type=int, help="moves: moves per run (default 20)")
    p.add_argument("--move-rate", type=float, help="moves: moves per second (default 2)")
    p.add_argument("--ping-interval", type=float, default=0.01, help="moves: ping flow interval (s)")
    p.add_argument(
        "--rates", type=int, nargs="+", help=f"churn: offered updates/s, a ladder (default {FULL['rates']})"
    )
    p.add_argument("--duration", type=float, help="churn: seconds per rate (default 5)")
    p.add_argument("--preload", type=int, help="churn: routes loaded before the churn (default 10,000)")
    p.add_argument(
        "--max-lag", type=float, default=1.0, help="churn: p99 latency bound of a sustained rate (s)"
    )
    p.add_argument("--restart-routes", type=int, help="restart: routes present (default 50,000)")
    p.add_argument("--restart-changes", type=float, default=0.01,
                   help="restart: share of the table withdrawn, moved and added while down (each)")  # fmt: skip
    p.add_argument("--out", type=Path, help="output directory (default benchmarks/results/churn-<time>)")
    p.add_argument("--report", type=Path, metavar="RESULTS_JSON",
                   help="only summarize and plot an earlier results.json again (into --out or its directory)")  # fmt: skip
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    wanted = SCENARIOS if "all" in args.scenarios else tuple(args.scenarios)
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    args.scenarios = [s for s in SCENARIOS if s in wanted]
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if set(args.targets) - set(TARGETS):
        p.error(f"targets must be among {', '.join(TARGETS)}")
    return args


Job = tuple[str, str, dict[str, Any], Callable[[], dict[str, Any]]]


def jobs(args: argparse.Namespace) -> list[Job]:
    """Every measurement in run order: scenario, repeat, size, then target (the targets alternate, so that
    noise on the machine spreads over all of them)."""
    cache: bulk.Payloads = {}
    out: list[Job] = []
    for scenario in args.scenarios:
        for rep in range(args.repeats):
            sizes = (
                args.sizes if scenario == "bulk" else [args.restart_routes] if scenario == "restart" else [0]
            )
            for n in sizes:
                for kind in args.targets:
                    params: dict[str, Any] = {"repeat": rep} | ({"routes": n} if n else {})
                    out.append((scenario, kind, params, _runner(args, scenario, kind, n, rep, cache)))
    return out


def _runner(
    args: argparse.Namespace, scenario: str, kind: str, n: int, rep: int, cache: bulk.Payloads
) -> Callable[[], dict[str, Any]]:
    if scenario == "bulk":
        return lambda: bulk.run_once(kind, n, cache)
    if scenario == "moves":
        return lambda: moves.run_once(kind, args.moves, args.move_rate, args.ping_interval)
    if scenario == "churn":
        return lambda: churn.run_once(
            kind, args.rates, args.duration, args.preload, args.max_lag, seed=rep + 1
        )
    return lambda: restart.run_once(kind, n, args.restart_changes)


def short(sample: dict[str, Any]) -> str:
    s = sample
    if "error" in s:
        return f"ERROR {s['error']}"
    if s["scenario"] == "bulk":
        return f"RIB {s['rib_s']:.3f} s, FDB {s['fdb_s']:.3f} s, withdrawn {s['withdraw_s']} s, RSS {s['rss_total_mb']['loaded']} MB"
    if s["scenario"] == "moves":
        lat = sorted(s["latency_ms"])
        mid = lat[len(lat) // 2] if lat else None
        return f"median {mid} ms over {len(lat)} moves, {s['ping']['lost']} pings lost"
    if s["scenario"] == "churn":
        return f"largest sustained rate {s['sustained_rate']}/s"
    return (f"new table in {s['new_table_s']} s, reconciled {s['reconciled_s']} s, unchanged removed "
            f"{s['unchanged_removed']}, rewritten {s['unchanged_rewritten']}")  # fmt: skip


def finish(result: dict[str, Any], out: Path) -> str:
    result["summary"] = stats.summarize(result["samples"])
    result["goals"] = stats.goals(result["summary"])
    result["plots"] = plots.all_plots(result, out)
    text = report.markdown(result)
    (out / "results.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "summary.md").write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        stored: dict[str, Any] = json.loads(args.report.read_text())
        directory: Path = args.out or args.report.parent
        directory.mkdir(parents=True, exist_ok=True)
        print(finish(stored, directory))
        return 0
    if os.geteuid() != 0:
        print("benchmarks.churn needs root (network namespaces, FRR)", file=sys.stderr)
        return 2
    if "frr" in args.targets and not frr_available():
        print("FRR (zebra, bgpd, vtysh) is not installed", file=sys.stderr)
        return 2
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS / f"churn-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.churn " + shlex.join(list(argv) if argv is not None else sys.argv[1:])
    started = time.monotonic()
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "command": command,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine.describe(),
        "samples": [],
    }
    todo = jobs(args)
    for i, (scenario, kind, params, run) in enumerate(todo, 1):
        began = time.monotonic()
        try:
            sample = run()
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            sample = {
                "scenario": scenario,
                "target": kind,
                **params,
                "error": f"{type(exc).__name__}: {exc}"[:2000],
            }
        sample.update(params)
        sample["wall_s"] = round(time.monotonic() - began, 2)
        result["samples"].append(sample)
        size = f" {params['routes']:>7,}" if "routes" in params else ""
        print(f"[{i}/{len(todo)}] {scenario:<7} {kind:<6}{size} rep {params['repeat']}: {short(sample)} "
              f"({sample['wall_s']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["machine"]["loadavg_end"] = machine.loadavg()
    print(finish(result, out))
    print(f"results: {out}/results.json, summary.md, {', '.join(result['plots'])}", file=sys.stderr)
    return 1 if any("error" in s for s in result["samples"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
