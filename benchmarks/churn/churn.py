"""Scenario **churn**: a steady random mix of announce / withdraw / move at R updates/s for T seconds.

Pair topology, one lab per (target, repeat). The injector first loads ``preload`` routes (untimed), then
runs a ladder of rates, lowest first, on the same router: each step sends R route operations per second
for T seconds, in ticks of 10 ms, each op one of (seeded random, equal shares):

- announce: a new MAC (never seen before) from its VTEP;
- withdraw: the oldest MAC still announced;
- move: the oldest MAC still announced, re-announced from the next VTEP (the same route key from the same
  peer with a new next hop: the kernel entry must point elsewhere).

Oldest-first keeps every MAC's operations seconds apart, so each op is matched to the FDB notification
that carries it out: its latency is the time from the tick that sent it until the kernel's VXLAN entry
shows it (present with the new VTEP, or gone). All ops of a tick are packed before the clock starts.

A step is **sustained** when the injector kept up (it achieved >= 95 % of R: the router read what was
sent), every op reached the kernel, and the p99 latency stayed <= ``max_lag`` (default 1 s): the backlog
stayed bounded. The ladder stops at the first step that is not sustained; the target's figure is the
largest sustained R. CPU (% of one core, all processes of the router) and RSS are sampled every 0.25 s.
"""

from __future__ import annotations

import bisect
import ipaddress
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.bench_speaker import Injector
from benchmarks.churn.fdb import FdbEvent, FdbWatch
from benchmarks.churn.inject import (
    EOR,
    VTEPS,
    Pair,
    connect,
    mac_key,
    pack_announce,
    pack_withdraw,
    type2_routes,
)
from benchmarks.churn.procs import Sampler
from benchmarks.churn.stats import percentile
from benchmarks.churn.topology import build_pair
from evpn.codec.evpn_nlri import MacIpRoute
from tests.lab import Lab

TICK = 0.01


@dataclass
class Table:
    """The injector's view: what it has announced (oldest first) and the next new MAC number."""

    present: deque[tuple[int, int]] = field(default_factory=deque)  # (MAC number, VTEP index)
    next_new: int = 0

    def route(self, number: int) -> MacIpRoute:
        return type2_routes(1, number)[0][1]


@dataclass(frozen=True)
class Op:
    tick: int
    kind: str
    mac: bytes
    vtep: ipaddress.IPv4Address | None  # None: withdrawn


def plan_step(table: Table, rate: int, duration: float, rng: random.Random) -> tuple[list[bytes], list[Op]]:
    """Pack every tick of one step (bytes per tick) and list its ops."""
    ticks = max(1, round(duration / TICK))
    total = round(rate * duration)
    per_tick = [total // ticks + (1 if i < total % ticks else 0) for i in range(ticks)]
    chunks: list[bytes] = []
    ops: list[Op] = []
    for tick, count in enumerate(per_tick):
        announce: list[Pair] = []
        withdraw: list[MacIpRoute] = []
        for _ in range(count):
            kind = rng.choice(("announce", "withdraw", "move")) if table.present else "announce"
            if kind == "announce":
                number, vtep_index = table.next_new, table.next_new % len(VTEPS)
                table.next_new += 1
            else:
                number, vtep_index = table.present.popleft()
            route = table.route(number)
            if kind == "withdraw":
                withdraw.append(route)
                ops.append(Op(tick, kind, mac_key(route), None))
                continue
            if kind == "move":
                vtep_index = (vtep_index + 1) % len(VTEPS)
            table.present.append((number, vtep_index))
            announce.append((VTEPS[vtep_index], route))
            ops.append(Op(tick, kind, mac_key(route), VTEPS[vtep_index]))
        chunks.append(pack_withdraw(withdraw) + pack_announce(announce))
    return chunks, ops


def send_ticks(injector: Injector, chunks: Sequence[bytes], sent: list[float]) -> None:
    """Write one chunk per tick on schedule (late ticks go at once); ``sent`` gets each tick's time."""
    start = time.monotonic()
    for i, chunk in enumerate(chunks):
        delay = start + i * TICK - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent.append(time.monotonic())
        if chunk:
            injector.send(chunk)


def latencies(ops: Sequence[Op], sent: Sequence[float], events: Sequence[FdbEvent]) -> list[float | None]:
    """Each op's latency (None: never seen), from the VXLAN-entry notifications."""
    by_mac: dict[bytes, tuple[list[float], list[Any]]] = {}
    for e in events:
        if e.kind == "self":
            times, values = by_mac.setdefault(e.mac, ([], []))
            times.append(e.at)
            values.append(e.value)
    out: list[float | None] = []
    for op in ops:
        at = sent[op.tick]
        times, values = by_mac.get(op.mac, ([], []))
        found = None
        for i in range(bisect.bisect_left(times, at), len(times)):
            if values[i] == op.vtep:
                found = times[i] - at
                break
        out.append(found)
    return out


def run_step(
    injector: Injector,
    watch: FdbWatch,
    table: Table,
    rate: int,
    duration: float,
    max_lag: float,
    rng: random.Random,
    sampler_pids: Any,
) -> dict[str, Any]:
    chunks, ops = plan_step(table, rate, duration, rng)
    expected = {mac_key(table.route(n)): VTEPS[v] for n, v in table.present}
    mark = len(watch.snapshot_events())
    sent: list[float] = []
    sampler = Sampler(sampler_pids, 0.25).start()
    sender = threading.Thread(target=send_ticks, args=(injector, chunks, sent), daemon=True)
    sender.start()
    sender.join(duration * 20 + 60)
    send_s = sent[-1] - sent[0] if len(sent) > 1 else 0.0
    achieved = len(ops) / (send_s + TICK) if sent else 0.0
    try:
        done_at = watch.wait(
            lambda w: time.monotonic() - w.changed_at > 0.05 and w.remote == expected,
            max(30.0, 3 * duration),
            "the churn's final state",
        )
        drain_s: float | None = max(0.0, done_at - sent[-1])
    except TimeoutError:
        drain_s = None
    series = sampler.stop()
    found = latencies(ops, sent, watch.snapshot_events()[mark:])
    measured = [x for x in found if x is not None]
    missing = len(found) - len(measured)
    p99 = percentile(measured, 0.99)
    kinds = {k: sum(1 for o in ops if o.kind == k) for k in ("announce", "withdraw", "move")}
    sustained = achieved >= 0.95 * rate and missing == 0 and drain_s is not None and p99 <= max_lag
    cpu = [row[1] for row in series]
    return {
        "rate": rate,
        "duration_s": duration,
        "ops": len(ops),
        "ops_by_kind": kinds,
        "achieved_rate": round(achieved, 1),
        "latency_ms": {
            "p50": round(percentile(measured, 0.5) * 1000, 2),
            "p90": round(percentile(measured, 0.9) * 1000, 2),
            "p99": round(p99 * 1000, 2),
            "max": round(max(measured, default=float("nan")) * 1000, 2),
        },
        "missing": missing,
        "drain_s": None if drain_s is None else round(drain_s, 4),
        "sustained": sustained,
        "cpu_mean_pct": round(sum(cpu) / len(cpu), 1) if cpu else None,
        "series": series,
    }


def run_once(
    kind: str, rates: Sequence[int], duration: float, preload: int, max_lag: float = 1.0, seed: int = 1
) -> dict[str, Any]:
    rng = random.Random(seed)
    table = Table()
    with Lab(f"churn-mix-{kind}") as lab:
        pair = build_pair(lab, kind)
        router = pair.router
        injector = connect(pair.inj, router)
        lab.add_cleanup(injector.close, "close the injector")
        with FdbWatch(pair.target) as watch:
            routes = type2_routes(preload)
            table.present.extend((i, i % len(VTEPS)) for i in range(preload))
            table.next_new = preload
            injector.send(pack_announce(routes) + EOR)
            watch.wait_count(preload, 120 + preload / 500)
            steps = []
            for rate in sorted(rates):
                step = run_step(injector, watch, table, rate, duration, max_lag, rng, router.pids)
                steps.append(step)
                if not step["sustained"]:
                    break
            if watch.overruns:
                raise RuntimeError(f"{kind}: the FDB watch overran {watch.overruns} time(s)")
    sustained = [s["rate"] for s in steps if s["sustained"]]
    return {
        "scenario": "churn",
        "target": kind,
        "preload": preload,
        "max_lag_s": max_lag,
        "sustained_rate": max(sustained, default=0),
        "steps": steps,
    }
