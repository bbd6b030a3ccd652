"""Processes of a router under test: memory (RSS) and CPU time, sampled from ``/proc``.

Reuses ``bench_engines.status_kb`` / ``children`` (VmRSS, VmHWM, descendants); adds CPU seconds and a
background :class:`Sampler` for the time series of the churn scenario.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping

from benchmarks.bench_engines import children, status_kb

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (0 when it is gone)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    return 0.0


def comm(pid: int) -> str:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as handle:
        return handle.read().strip()
    return "?"


def label(pid: int) -> str:
    """A short name: ``exabgp`` and ``exabgp-relay`` for the exabgp engine's children, else ``comm``."""
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            args = handle.read().split(b"\0")
        if b"--relay" in args:
            return "exabgp-relay"
        if any(b"exabgp_launcher" in a for a in args):
            return "exabgp"
    return comm(pid)


def with_descendants(name: str, pid: int) -> dict[str, int]:
    """``{name: pid}`` plus every descendant by :func:`label` (``exabgp``, ``exabgp-relay``; ``#2`` ...)."""
    out = {name: pid}
    for kid in children(pid):
        base = key = label(kid)
        n = 1
        while key in out:
            n += 1
            key = f"{base}#{n}"
        out[key] = kid
    return out


def rss_mb(pids: Mapping[str, int]) -> dict[str, float]:
    """VmRSS of each process in MB (missing processes are left out)."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        kb = status_kb(pid).get("VmRSS")
        if kb is not None:
            out[name] = round(kb / 1024, 2)
    return out


def hwm_mb(pids: Mapping[str, int]) -> dict[str, float]:
    """VmHWM (peak RSS) of each process in MB."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        kb = status_kb(pid).get("VmHWM")
        if kb is not None:
            out[name] = round(kb / 1024, 2)
    return out


class Sampler:
    """Every ``interval`` seconds: total CPU (% of one core) and total RSS (MB) of the processes that
    ``pids()`` returns at that moment. ``series`` holds ``[t, cpu_pct, rss_mb]`` rows, ``t`` relative to
    :meth:`start`."""

    def __init__(self, pids: Callable[[], Mapping[str, int]], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.series: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self.started = 0.0

    def start(self) -> Sampler:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _totals(self) -> tuple[float, float]:
        pids = self.pids()
        cpu = sum(cpu_seconds(pid) for pid in pids.values())
        return cpu, sum(rss_mb(pids).values())

    def _run(self) -> None:
        last_t, (last_cpu, _) = time.monotonic(), self._totals()
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            cpu, rss = self._totals()
            pct = 100.0 * max(cpu - last_cpu, 0.0) / max(now - last_t, 1e-6)
            self.series.append([round(now - self.started, 3), round(pct, 1), round(rss, 1)])
            last_t, last_cpu = now, cpu

    def stop(self) -> list[list[float]]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        return self.series
