"""Scenario **restart**: the router killed and restarted with N routes (50,000 by default) in the kernel.

Pair topology. The injector loads N routes and the FDB holds them. Then the router is killed with SIGKILL,
all its processes at once (evpn-speaker: the daemon and, with the exabgp engine, ExaBGP and its relay, as a
supervisor killing the unit's cgroup would; FRR: zebra and bgpd), and started again at once. While it was
down, the injector's table changed by ``changes`` of N (default 1 %) each: routes withdrawn, routes moved
to another VTEP, new routes. The injector reconnects as soon as the router listens, sends its whole new
table and End-of-RIB (it advertises graceful restart, as a real peer would).

Measured from the new start: ``startup_s`` (the process reports it runs), ``session_s`` (the injector's
session Established), ``new_table_s`` (every route of the new table is in the kernel FDB with its VTEP),
``reconciled_s`` (the FDB equals the new table: the withdrawn routes are gone too; None when some stayed:
``stale_left`` counts them once nothing changed for 5 s). Then, for the routes that did **not** change, from the netlink notifications of
the whole restart (until the FDB was quiet for 3 s): ``unchanged_removed`` (entries deleted),
``unchanged_readded`` (deleted and installed again) and ``unchanged_rewritten`` (installed again over
themselves, same VTEP, without a delete). The goal is 0 for all three: a restart should not touch what did
not change.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.churn.fdb import FdbEvent, FdbWatch
from benchmarks.churn.inject import EOR, VTEPS, Pair, connect, mac_key, pack_announce, type2_routes
from benchmarks.churn.topology import build_pair
from tests.lab import Lab


def new_table(n: int, changes: float) -> tuple[list[Pair], list[Pair], dict[str, int]]:
    """(old table, new table, how many withdrawn/moved/added)."""
    old = type2_routes(n)
    k = max(1, int(n * changes))
    moved = [(VTEPS[(VTEPS.index(vtep) + 1) % len(VTEPS)], route) for vtep, route in old[k : 2 * k]]
    new = moved + old[2 * k :] + type2_routes(k, n)
    return old, new, {"withdrawn": k, "moved": k, "added": k}


def touched(events: list[FdbEvent], unchanged: set[bytes]) -> dict[str, int]:
    """How the notifications treated the MACs that did not change."""
    removed: set[bytes] = set()
    readded: set[bytes] = set()
    rewritten: set[bytes] = set()
    for e in events:
        if e.kind != "self" or e.mac not in unchanged:
            continue
        if e.value is None:
            removed.add(e.mac)
        elif e.mac in removed:
            readded.add(e.mac)
        else:
            rewritten.add(e.mac)
    return {
        "unchanged_removed": len(removed),
        "unchanged_readded": len(readded),
        "unchanged_rewritten": len(rewritten),
    }


def run_once(kind: str, n: int, changes: float = 0.01) -> dict[str, Any]:
    old, new, changed = new_table(n, changes)
    expected = {mac_key(route): vtep for vtep, route in new}
    before = {mac_key(route): vtep for vtep, route in old}
    unchanged = {key for key, vtep in expected.items() if before.get(key) == vtep}
    timeout = 120 + n / 500
    with Lab(f"churn-restart-{kind}") as lab:
        pair = build_pair(lab, kind)
        router = pair.router
        injector = connect(pair.inj, router)
        with FdbWatch(pair.target) as watch:
            injector.send(pack_announce(old) + EOR)
            watch.wait_count(n, timeout)
            watch.wait_quiet(1.0, timeout)
            mark = len(watch.snapshot_events())
            processes = sorted(router.pids())
            killed = time.monotonic()
            router.kill()
            injector.close()
            started = time.monotonic()
            router.start()
            running = time.monotonic()
            injector = connect(pair.inj, router, timeout)
            lab.add_cleanup(injector.close, "close the injector")
            established = time.monotonic()
            injector.send(pack_announce(new) + EOR)
            try:
                present_at = watch.wait(
                    lambda w: (
                        time.monotonic() - w.changed_at > 0.05
                        and all(w.remote.get(k) == v for k, v in expected.items())
                    ),
                    timeout,
                    "the new table in the kernel",
                )
            except TimeoutError:
                have = watch.remote
                raise RuntimeError(
                    f"{kind}: after the restart {sum(1 for k, v in expected.items() if have.get(k) != v)} "
                    f"routes of the new table are missing or wrong in the FDB"
                ) from None
            # then the withdrawn routes must go: wait until they did, or nothing changed for 5 s
            last = watch.wait(
                lambda w: len(w.remote) == len(expected) or time.monotonic() - w.changed_at > 5,
                timeout,
                "stale entries removed",
            )
            stale_left = len(watch.remote) - len(expected)
            done_at = last if stale_left == 0 else None
            watch.wait_quiet(3.0, timeout)
            final = watch.verify()
            final_ok = all(final.get(k) == v for k, v in expected.items()) and len(final) == len(expected)
            counts = touched(watch.snapshot_events()[mark:], unchanged)
            events = len(watch.snapshot_events()) - mark
    return {
        "scenario": "restart",
        "target": kind,
        "routes": n,
        "changed": changed,
        "unchanged": len(unchanged),
        "killed": processes,
        "startup_s": round(running - started, 4),
        "session_s": round(established - started, 4),
        "new_table_s": round(present_at - started, 4),
        "reconciled_s": None if done_at is None else round(done_at - started, 4),
        "reconciled_from_kill_s": None if done_at is None else round(done_at - killed, 4),
        "stale_left": stale_left,
        **counts,
        "fdb_events": events,
        "final_ok": final_ok,
    }
