"""The summary as Markdown tables (printed, written to ``summary.md``, pasted into the README).

Cells read ``median (min-max)`` over the repeats; ``xFRR`` is median / FRR's median in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = dict[str, Any]


def cell(fig: dict[str, Any] | None, digits: int = 3, unit: str = "") -> str:
    if fig is None:
        return "-"
    fmt = f"{{:.{digits}f}}"
    text = fmt.format(fig["median"]) + unit
    if fig["n"] > 1 and fig["min"] != fig["max"]:
        text += f" ({fmt.format(fig['min'])}-{fmt.format(fig['max'])})"
    return text


def ratio(row: Row, figure: str) -> str:
    value = row.get("x_frr", {}).get(figure)
    return "" if value is None else f"{value:.2f}"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def bulk_table(rows: Sequence[Row]) -> str:
    return table(
        ("routes", "target", "in RIB s", "in FDB s", "xFRR", "withdrawn, FDB clean s", "xFRR",
         "RSS loaded MB", "bytes/route", "xFRR"),
        [
            (
                f"{r['routes']:,}", r["target"], cell(r["rib_s"]), cell(r["fdb_s"]), ratio(r, "fdb_s"),
                cell(r["withdraw_s"]) + (f" ({r['withdraw_incomplete']} incomplete)" if r["withdraw_incomplete"] else ""),
                ratio(r, "withdraw_s"), cell(r["rss_loaded_mb"], 1), cell(r["bytes_per_route"], 0),
                ratio(r, "bytes_per_route"),
            )
            for r in rows
        ],
    )  # fmt: skip


def moves_table(rows: Sequence[Row]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    return table(
        ("target", "moves", "p50 ms", "p90 ms", "p99 ms", "p50 xFRR", "repeat p50s ms", "lost pings/run",
         "missed"),
        [
            (
                r["target"], str(r["moves"]), ms(r["p50_ms"]), ms(r["p90_ms"]), ms(r["p99_ms"]),
                ratio(r, "p50_ms"), cell(r["repeat_p50_ms"], 1), cell(r["lost_pings"], 0), str(r["missed"]),
            )
            for r in rows
        ],
    )  # fmt: skip


def churn_table(rows: Sequence[Row]) -> str:
    out = []
    for r in rows:
        steps = ", ".join(
            f"{s['rate']}/s: p99 {cell(s['p99_ms'], 0)} ms, CPU {cell(s['cpu_mean_pct'], 0)} %"
            + ("" if s["sustained"] == s["runs"] else f" [{s['runs'] - s['sustained']}/{s['runs']} failed]")
            for s in r["steps"]
        )
        out.append((r["target"], cell(r["sustained_rate"], 0), ratio(r, "sustained_rate"), steps))
    return table(("target", "largest sustained updates/s", "xFRR", "per rate"), out)


def restart_table(rows: Sequence[Row]) -> str:
    return table(
        ("routes", "target", "started s", "session s", "new table in FDB s", "xFRR", "reconciled s",
         "stale left", "unchanged removed / re-added / rewritten"),
        [
            (
                f"{r['routes']:,}", r["target"], cell(r["startup_s"]), cell(r["session_s"]),
                cell(r["new_table_s"]), ratio(r, "new_table_s"),
                cell(r["reconciled_s"]) + (f" ({r['not_reconciled']} never)" if r["not_reconciled"] else ""),
                cell(r["stale_left"], 0),
                " / ".join(cell(r[k], 0) for k in ("unchanged_removed", "unchanged_readded", "unchanged_rewritten")),
            )
            for r in rows
        ],
    )  # fmt: skip


def goals_table(goals: Sequence[dict[str, Any]]) -> str:
    def num(v: Any) -> str:
        return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))

    return table(
        ("goal", "target", "value", "FRR", "ratio", "met"),
        [
            (g["goal"], g["target"], num(g["value"]), num(g["frr"]), num(g["ratio"]),
             {True: "yes", False: "**no**", None: "?"}[g["met"]])
            for g in goals
        ],
    )  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    summary = result["summary"]
    m = result["machine"]
    parts = [
        f"Machine: {m['cpu']}, {m['cpus']} vCPUs, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, {m['frr']}, ExaBGP {m['exabgp']}; evpn-speaker {m['commit']}; "
        f"load average {m['loadavg_start']} at the start, {m['loadavg_end']} at the end.",
        f"Command: `{result['command']}` ({result['duration_s']:.0f} s).",
    ]
    sections = (
        ("bulk", "Bulk: N type-2 routes in, then withdrawn", bulk_table),
        ("moves", "MAC moves (leaf -> FRR spine -> leaf; GARP to the old leaf's FDB)", moves_table),
        ("churn", "Churn (announce/withdraw/move mix)", churn_table),
        ("restart", "Restart (SIGKILL, start again, 1 % of the table changed meanwhile)", restart_table),
    )
    for key, title, render in sections:
        if summary.get(key):
            parts.append(f"### {title}\n\n{render(summary[key])}")
    if result.get("goals"):
        parts.append(f"### Goals (DESIGN §8)\n\n{goals_table(result['goals'])}")
    errors = [s for s in result["samples"] if "error" in s]
    if errors:
        parts.append(
            "### Failed runs\n\n"
            + "\n".join(
                f"- {e['scenario']} {e['target']} {e.get('routes', '')} (repeat {e.get('repeat')}): {e['error']}"
                for e in errors
            )
        )
    return "\n\n".join(parts) + "\n"
