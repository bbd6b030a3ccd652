"""What the figures were measured on: CPU, memory, kernel, versions, the code's commit, the load."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _first(path: str, prefix: str) -> str:
    with contextlib.suppress(OSError), open(path) as handle:
        for line in handle:
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    return "?"


def _run(cmd: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=10, check=False, cwd=ROOT
        ).stdout.strip()
    return ""


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def describe() -> dict[str, Any]:
    mem_kb = _first("/proc/meminfo", "MemTotal").split()[0]
    frr = _run(["/usr/lib/frr/bgpd", "--version"]).splitlines()
    commit = _run(["git", "rev-parse", "--short", "HEAD"]) or "?"
    dirty = bool(_run(["git", "status", "--porcelain", "--untracked-files=no"]))
    try:
        exabgp = importlib.metadata.version("exabgp")
    except importlib.metadata.PackageNotFoundError:
        exabgp = "?"
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory_gib": round(int(mem_kb) / 1024 / 1024, 1) if mem_kb.isdigit() else None,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "frr": frr[0].replace("bgpd version", "FRR") if frr else "FRR ?",
        "exabgp": exabgp,
        "commit": commit + (" (uncommitted changes)" if dirty else ""),
        "loadavg_start": loadavg(),
    }
