"""The routers under test ("targets"), one interface for all three:

- ``native``: evpn-speaker's daemon (``python -m speaker.cli run --config FILE --engine native``);
- ``exabgp``: the same daemon with ``--engine exabgp`` (ExaBGP 5.0.15 as its child process);
- ``frr``: FRR 8.4 zebra + bgpd with ``advertise-all-vni`` on ``create_l2vni``'s kernel devices.

Both are configured alike: the same ASN, router id, VTEP, neighbors and timers, L2VNI 110, graceful
restart on, duplicate-address detection off (the MAC-move scenario moves one MAC far more often than 5
times in 180 s). The daemon builds its own devices (``br-pe-110``, ``vni110``; with ``host_netns`` also the
managed host bridge ``br-hs-110`` there); FRR gets the same devices from ``tests.lab.create_l2vni``.

Queries go through cheap persistent paths, so that polling does not load the router under test more than
needed: evpn-speaker's control socket (``speaker.control.request``), FRR's daemons' own vty sockets (the
protocol vtysh speaks: the command, a NUL; the answer ends with three NULs and a status byte).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.churn.procs import with_descendants
from speaker.control import ControlConnectError, request
from tests.daemon.harness import DaemonProcess
from tests.lab import FrrRouter, Lab, Namespace, create_l2vni, pid_alive, wait_for

TARGETS = ("native", "exabgp", "frr")
ASN = 64512
VNI = 110


@dataclass(frozen=True, slots=True)
class Neighbor:
    address: str
    passive: bool = False
    fast_timers: bool = True  # keepalive 3, hold 9, connect-retry 1 (labs); else 30/90


@dataclass(frozen=True, slots=True)
class RouterPlan:
    """What every target is configured with."""

    name: str  # process / file names
    router_id: str
    vtep: str
    neighbors: tuple[Neighbor, ...]
    host_netns: Namespace | None = None  # evpn-speaker: the host side (managed br-hs-110) lives there


class Router(ABC):
    """A router under test in ``ns``."""

    kind: str
    ns: Namespace
    plan: RouterPlan

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def pids(self) -> dict[str, int]:
        """Every process of the router, by name."""

    @abstractmethod
    def peer(self, address: str) -> dict[str, Any]:
        """``show bgp summary`` for one neighbor: at least ``state`` and ``pfxRcd``."""

    @abstractmethod
    def kill(self) -> None:
        """SIGKILL every process of the router (as a supervisor killing the unit's cgroup would)."""

    @abstractmethod
    def host_side(self) -> tuple[Namespace, str]:
        """Where hosts of VNI 110 plug in: (namespace, bridge)."""

    def established(self, address: str) -> bool:
        try:
            return self.peer(address).get("state") == "Established"
        except (OSError, ValueError, KeyError, ControlConnectError):
            return False

    def received(self, address: str) -> int:
        return int(self.peer(address).get("pfxRcd", 0))

    def wait_established(self, address: str, timeout: float = 60.0) -> None:
        wait_for(lambda: self.established(address), timeout, 0.05, f"{self.kind} {self.plan.name}: {address}")

    def kill_all(self, pids: dict[str, int]) -> None:
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids.values():
            wait_for(lambda pid=pid: not pid_alive(pid), 10, 0.01, f"pid {pid} gone")  # type: ignore[misc]


# -- evpn-speaker -----------------------------------------------------------------------------------------


def speaker_config(plan: RouterPlan, engine: str) -> str:
    neighbors = ""
    for n in plan.neighbors:
        timers = "{keepalive: 3, hold: 9, connect_retry: 1}" if n.fast_timers else "{keepalive: 30, hold: 90}"
        neighbors += f"    - address: {n.address}\n      asn: {ASN}\n      timers: {timers}\n"
        if n.passive:
            neighbors += "      passive: true\n"
    host = plan.host_netns
    l2 = f"  - name: l2-{VNI}\n    vni: {VNI}\n" + ("    host_bridge: {mode: managed}\n" if host else "")
    return (
        f"# written by benchmarks.churn for {plan.name}\nversion: 1\n"
        f"underlay:\n  asn: {ASN}\n  router_id: {plan.router_id}\n  vtep:\n    ipv4: {plan.vtep}\n"
        f"  neighbors:\n{neighbors}"
        f"l2vnis:\n{l2}"
        "duplicate_detection: {enabled: false}\n"
        "graceful_restart: {enabled: true, restart_time: 120, stalepath_time: 360}\n"
        f"engine: {engine}\n" + (f"host_netns: {host.name}\n" if host else "")
    )


class SpeakerRouter(Router):
    """``evpn-speaker run`` in ``ns`` (``tests.daemon.harness.DaemonProcess``)."""

    def __init__(self, lab: Lab, ns: Namespace, plan: RouterPlan, engine: str) -> None:
        self.kind = engine
        self.lab, self.ns, self.plan, self.engine = lab, ns, plan, engine
        self.config = lab.workdir / f"{plan.name}.yaml"
        self.config.write_text(speaker_config(plan, engine))
        self.socket = lab.workdir / f"{plan.name}.sock"
        self.daemons: list[DaemonProcess] = []

    def start(self) -> None:
        args = ["--config", str(self.config), "--socket", str(self.socket), "--log-level", "info"]
        daemon = DaemonProcess(self.lab, self.ns, args, f"{self.plan.name}-{len(self.daemons)}")
        self.daemons.append(daemon)
        daemon.wait_log(r"evpn-speaker running", timeout=60)

    @property
    def daemon(self) -> DaemonProcess:
        return self.daemons[-1]

    def pids(self) -> dict[str, int]:
        if not self.daemons or self.daemon.proc.poll() is not None:
            return {}
        return with_descendants("evpn-speaker", self.daemon.proc.pid)

    def query(self, command: str) -> Any:
        reply = request(self.socket, command, as_json=True, timeout=60)
        if not reply.ok:
            raise RuntimeError(f"{self.plan.name}: {command}: {reply.error}")
        return json.loads(reply.output)

    def peer(self, address: str) -> dict[str, Any]:
        peers = self.query("show bgp summary").get("l2VpnEvpn", {}).get("peers", {})
        info: dict[str, Any] = peers.get(address, {})
        return info

    def kill(self) -> None:
        pids = self.pids()
        self.kill_all(pids)
        self.daemon.proc.wait(10)

    def host_side(self) -> tuple[Namespace, str]:
        return self.ns, f"br-pe-{VNI}"


# -- FRR ----------------------------------------------------------------------------------------------------


def frr_config(plan: RouterPlan) -> str:
    lines = [f"router bgp {ASN}", f" bgp router-id {plan.router_id}", " no bgp default ipv4-unicast"]
    lines.append(" bgp graceful-restart")
    for n in plan.neighbors:
        lines.append(f" neighbor {n.address} remote-as {ASN}")
        if n.passive:
            lines.append(f" neighbor {n.address} passive")
        if n.fast_timers:
            lines += [f" neighbor {n.address} timers 3 9", f" neighbor {n.address} timers connect 1"]
    lines.append(" address-family l2vpn evpn")
    lines += [f"  neighbor {n.address} activate" for n in plan.neighbors]
    lines += ["  advertise-all-vni", "  no dup-addr-detection", " exit-address-family"]
    return "\n".join(lines) + "\n"


class Vty:
    """One FRR daemon's vty socket (``DIR/<daemon>.vty``), kept open between commands."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock: socket.socket | None = None

    def command(self, text: str, timeout: float = 60.0) -> str:
        if self.sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(str(self.path))
            except OSError:
                sock.close()
                raise
            self.sock = sock
        try:
            self.sock.sendall(text.encode() + b"\0")
            data = bytearray()
            while not (len(data) >= 4 and data[-4:-1] == b"\0\0\0"):
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError(f"{self.path}: closed")
                data += chunk
        except OSError:
            self.close()
            raise
        if data[-1] != 0:
            raise RuntimeError(f"{self.path}: {text!r} failed: {bytes(data[:-4]).decode(errors='replace')}")
        return bytes(data[:-4]).decode(errors="replace")

    def json(self, text: str) -> Any:
        out = self.command(text if text.endswith(" json") else f"{text} json")
        return json.loads(out) if out.strip() else {}

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


class FrrTarget(Router):
    """FRR 8.4 zebra + bgpd in ``ns`` on the devices of ``create_l2vni`` (``tests.lab.FrrRouter``)."""

    def __init__(self, lab: Lab, ns: Namespace, plan: RouterPlan) -> None:
        self.kind = "frr"
        self.lab, self.ns, self.plan = lab, ns, plan
        create_l2vni(ns, VNI, plan.vtep)
        self.frr: FrrRouter = lab.frr(ns, frr_config(plan), start=False)
        self.bgpd = Vty(self.frr.dir / "bgpd.vty")
        lab.add_cleanup(self.bgpd.close, "close bgpd vty")

    def start(self) -> None:
        for stale in ("bgpd.vty", "zebra.vty", "zserv.api", "bgpd.pid", "zebra.pid"):
            with contextlib.suppress(FileNotFoundError):
                (self.frr.dir / stale).unlink()
        self.bgpd.close()
        self.frr.start(timeout=30)

    def pids(self) -> dict[str, int]:
        return {name: pid for name, pid in self.frr.pids().items() if pid is not None and pid_alive(pid)}

    def peer(self, address: str) -> dict[str, Any]:
        info: dict[str, Any] = self.bgpd.json("show bgp l2vpn evpn summary").get("peers", {}).get(address, {})
        return info

    def kill(self) -> None:
        self.kill_all(self.pids())
        self.bgpd.close()

    def host_side(self) -> tuple[Namespace, str]:
        return self.ns, f"br-pe-{VNI}"


def make_router(kind: str, lab: Lab, ns: Namespace, plan: RouterPlan) -> Router:
    """A router of ``kind`` (``TARGETS``), not started."""
    if kind == "frr":
        return FrrTarget(lab, ns, plan)
    if kind in ("native", "exabgp"):
        return SpeakerRouter(lab, ns, plan, kind)
    raise ValueError(f"unknown target {kind!r} (one of {', '.join(TARGETS)})")
