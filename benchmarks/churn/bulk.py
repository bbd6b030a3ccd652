"""Scenario **bulk**: N type-2 routes in, then all withdrawn.

One fresh pair topology per (target, N, repeat). Once the injector's session is Established:

1. ``fdb_s``: the injector writes N pre-packed routes (100 NLRIs per UPDATE) and End-of-RIB, from a
   thread; timed until the kernel FDB holds the N remote MACs (``FdbWatch``: netlink notifications, the
   time of the change that completed it), checked by a dump;
2. ``withdraw_s``: the injector withdraws all N; until the FDB has none left (None when the FDB stopped
   changing 15 s short of it: ``left_after_withdraw``);
3. ``rib_s``, in a second pass over the same routes (nothing polls the router during pass 1: evpn-speaker's
   ``show bgp summary`` walks its whole RIB, about 0.5 s at 100,000 routes: the timed pass must not pay
   for the measurement): until the router reports N prefixes received from the injector
   (``pfxRcd`` of ``show bgp summary``, polled every ``poll`` seconds, backing off so that polling takes at
   most ~10 % of the router's time; ``rib_poll_s`` is the slowest poll). The FDB is filled from the RIB, so
   when the poll that saw N answered after the FDB was complete (``fdb_polled_s``, the FDB time of this
   pass), ``rib_s`` is that FDB time and ``rib_bound`` says ``"fdb"`` (else ``"poll"``).

RSS of every process of the router (MB, ``rss_mb``): ``idle`` (session up, no routes), ``loaded`` (all N
in the FDB), ``withdrawn`` (all gone); ``bytes_per_route`` = (loaded - idle) total / N.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks.bench_speaker import INJ_IP
from benchmarks.churn.fdb import FdbWatch
from benchmarks.churn.inject import EOR, connect, pack_announce, pack_withdraw, type2_routes
from benchmarks.churn.procs import hwm_mb, rss_mb
from benchmarks.churn.targets import Router
from benchmarks.churn.topology import build_pair
from tests.lab import Lab

Payloads = dict[int, tuple[bytes, bytes]]


def payloads(n: int, cache: Payloads) -> tuple[bytes, bytes]:
    """(announce + End-of-RIB, withdraw) bytes for N routes, packed once per N."""
    if n not in cache:
        routes = type2_routes(n)
        cache[n] = (pack_announce(routes) + EOR, pack_withdraw([r for _, r in routes]))
    return cache[n]


def poll_until(
    probe: Callable[[], bool], started: float, timeout: float, interval: float
) -> tuple[float, float]:
    """Call ``probe`` until it is true; (seconds since ``started`` when the true answer came, the longest
    probe). The next probe waits ``max(interval, 9 x the last probe's duration)``: polling takes at most
    about 10 % of the router's time, however slow its answer gets (evpn-speaker's ``show bgp summary``
    walks the whole RIB: about 0.5 s at 100,000 routes)."""
    longest = 0.0
    deadline = started + timeout
    while True:
        asked = time.monotonic()
        done = probe()
        answered = time.monotonic()
        longest = max(longest, answered - asked)
        if done:
            return answered - started, longest
        if answered > deadline:
            raise TimeoutError("not reached in time")
        time.sleep(max(interval, 9 * (answered - asked)))


def settle(watch: FdbWatch, count: int, timeout: float, since: float, stall: float = 15.0) -> float | None:
    """The time the FDB reached ``count`` remote MACs; None when, after ``since``, it stopped changing
    ``stall`` seconds short of it (FRR 8.4's zebra sometimes leaves entries behind on bulk withdrawals)."""
    at = watch.wait(
        lambda w: len(w.remote) == count or time.monotonic() - max(w.changed_at, since) > stall,
        timeout,
        f"{count} remote MACs",
    )
    return at if len(watch.remote) == count else None


def send_async(send: Callable[[bytes], None], data: bytes) -> threading.Thread:
    thread = threading.Thread(target=send, args=(data,), name="inject", daemon=True)
    thread.start()
    return thread


def run_once(kind: str, n: int, cache: Payloads, poll: float = 0.02) -> dict[str, Any]:
    announce, withdraw = payloads(n, cache)
    timeout = 120 + n / 500
    with Lab(f"churn-bulk-{kind}") as lab:
        pair = build_pair(lab, kind)
        router: Router = pair.router
        pids = router.pids()
        injector = connect(pair.inj, router)
        lab.add_cleanup(injector.close, "close the injector")
        time.sleep(0.5)  # let the session settle (initial End-of-RIB, first KEEPALIVEs)
        idle = rss_mb(pids)
        with FdbWatch(pair.target, log_events=False) as watch:
            # pass 1, timed, nothing polls the router: N routes into the FDB, then withdrawn
            started = time.monotonic()
            sender = send_async(injector.send, announce)
            fdb_at = settle(watch, n, timeout, started)
            if fdb_at is None:
                raise RuntimeError(f"{kind}: the FDB stopped at {len(watch.remote)} of {n} remote MACs")
            fdb_s = fdb_at - started
            sender.join(timeout)
            loaded = rss_mb(pids)
            peak = hwm_mb(pids)
            in_kernel = len(watch.verify())
            if in_kernel != n:
                raise RuntimeError(f"{kind}: the kernel holds {in_kernel} remote MACs, expected {n}")
            started_w = time.monotonic()
            sender = send_async(injector.send, withdraw)
            clean_at = settle(watch, 0, timeout, started_w)
            withdraw_s = None if clean_at is None else round(clean_at - started_w, 4)
            sender.join(timeout)
            left = len(watch.verify())
            withdrawn = rss_mb(pids)
            # pass 2: the same routes again, the RIB polled (this costs evpn-speaker time: not for pass 1)
            started_r = time.monotonic()
            sender = send_async(injector.send, announce)
            try:
                rib_poll, rib_poll_s = poll_until(
                    lambda: router.received(INJ_IP) >= n, started_r, timeout, poll
                )
            except TimeoutError:
                raise TimeoutError(f"{kind}: {router.received(INJ_IP)} of {n} routes received") from None
            polled_at = settle(watch, n, timeout, started_r)
            fdb_polled_s = None if polled_at is None else polled_at - started_r
            # every FDB entry comes from a route in the RIB: a poll that answered after the FDB was complete
            # only bounds the RIB time by the FDB time
            if fdb_polled_s is not None and fdb_polled_s < rib_poll:
                rib_s, rib_bound = fdb_polled_s, "fdb"
            else:
                rib_s, rib_bound = rib_poll, "poll"
            sender.join(timeout)
            send_async(injector.send, withdraw).join(timeout)
            settle(watch, 0, timeout, time.monotonic())
            overruns = watch.overruns
        peer = router.peer(INJ_IP)
        if peer.get("state") != "Established":
            raise RuntimeError(f"{kind}: the injector's session went down: {peer}")
    total = {
        k: round(sum(v.values()), 2)
        for k, v in (("idle", idle), ("loaded", loaded), ("withdrawn", withdrawn))
    }
    return {
        "scenario": "bulk",
        "target": kind,
        "routes": n,
        "rib_s": round(rib_s, 4),
        "rib_bound": rib_bound,
        "rib_poll_s": round(rib_poll_s, 4),
        "fdb_s": round(fdb_s, 4),
        "fdb_polled_s": None if fdb_polled_s is None else round(fdb_polled_s, 4),
        "withdraw_s": withdraw_s,
        "left_after_withdraw": left,
        "netlink_overruns": overruns,
        "rss_mb": {"idle": idle, "loaded": loaded, "withdrawn": withdrawn},
        "hwm_mb": peak,
        "rss_total_mb": total,
        "bytes_per_route": round((total["loaded"] - total["idle"]) * 1024 * 1024 / n, 1),
    }
