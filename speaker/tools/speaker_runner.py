"""Run one ``Speaker`` (in-memory dataplane) from arguments, controlled by JSON lines on stdin/stdout.

For interop tests and benchmarks, typically inside a namespace::

    ip netns exec spk python -m speaker.tools.speaker_runner --asn 64512 --router-id 10.255.0.2 \\
        --vtep 10.255.0.2 --neighbor 192.168.100.1,asn=64512 --l2vni 110,vrf=red --l3vni 100,vrf=red

``--engine native|exabgp`` picks the session engine (``SpeakerConfig.engine``; the exabgp engine runs ExaBGP
5.0.15 as a child process in the runner's namespace, see ``speaker/EXABGP.md``).

stdout: one JSON object per line: ``{"event": "ready", "port": P}``, then (unless ``--quiet``) every change
of ``Speaker.subscribe()`` (``peer_up``, ``peer_down``, ``end_of_rib``, ``advertise``, ``withdraw``,
``dataplane``, ``notice``), and the replies to commands (``{"event": "reply", "op": ..., "id": ...}``).
stdin: one command per line, with an optional ``id`` echoed in the reply:

- ``{"op": "learn", "vni": 110, "mac": "02:..", "ip": "192.170.1.30"}`` (``ip`` optional, ``sticky``),
  ``{"op": "age", "vni": 110, "mac": "02:.."}``, ``{"op": "neigh_removed", "vni": 110, "ip": ".."}``;
- ``{"op": "learn_range", "vni": 110, "first": "02:..", "count": N}``: N local MACs from ``first`` on, one
  ``inject_many`` (replies once the engine took their routes, ``"at"`` = ``time.monotonic()``);
- ``{"op": "mac_table", "vni": 110}``, ``{"op": "vnis"}``, ``{"op": "rib"}``, ``{"op": "next_hops"}``,
  ``{"op": "peers"}``, ``{"op": "installed"}``, ``{"op": "count", "vni": 110}`` (MACs known in the VNI);
- ``{"op": "wait_count", "vni": 110, "count": N, "timeout": 60}``: replies when ``count`` MACs are known,
  with ``"at"`` = ``time.monotonic()`` of the first poll (every millisecond) that saw them;
- ``{"op": "wait_installed", "count": N}``: the same for the in-memory dataplane's entry count;
- ``{"op": "rss"}``: ``VmRSS`` and ``VmHWM`` of this process in kB;
- ``{"op": "engine"}``: the engine's name, class and (exabgp) the pid of its ExaBGP process;
- ``{"op": "stop", "graceful": false}``. SIGTERM/SIGINT stop too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import enum
import ipaddress
import itertools
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from dataplane.memory import MemoryDataplane
from evpn.config import (
    GracefulRestartConfig,
    IPInterface,
    L2Vni,
    L3Vni,
    SpeakerConfig,
    Timers,
    Underlay,
)
from evpn.events import LocalMacAged, LocalMacLearned, LocalNeighLearned, LocalNeighRemoved, PeerDown, PeerUp
from evpn.mac import MacAddress
from evpn.outputs import RoutesToAdvertise, RoutesToWithdraw
from speaker.config_file import ENGINES
from speaker.speaker import DataplaneApplied, Speaker, SpeakerChange
from speaker.tools.bgp_peer import parse_neighbor

Json = dict[str, Any]


def to_json(value: Any) -> Any:
    """Plain JSON for the frozen values of the core (dataclasses, addresses, MACs, enums)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_json(value.value) if not isinstance(value.value, tuple) else value.name
    own_str: object = type(value).__str__
    if own_str is not object.__str__:  # MacAddress, RouteDistinguisher, routes: their text form
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_json(v) for v in value]
        return items if not isinstance(value, set | frozenset) else sorted(items, key=str)
    return str(value)


def change_to_json(change: SpeakerChange) -> Json:
    if isinstance(change, PeerUp):
        return {"event": "peer_up", "peer": str(change.peer), "graceful_restart": change.graceful_restart}
    if isinstance(change, PeerDown):
        return {"event": "peer_down", "peer": str(change.peer), "reason": change.reason}
    if isinstance(change, RoutesToAdvertise):
        return {"event": "advertise", "peer": str(change.peer), "routes": [str(r) for r in change.routes]}
    if isinstance(change, RoutesToWithdraw):
        return {"event": "withdraw", "peer": str(change.peer), "routes": [str(r) for r in change.routes]}
    if isinstance(change, DataplaneApplied):
        return {
            "event": "dataplane",
            "reconcile": change.reconcile,
            "add": len(change.delta.add),
            "remove": len(change.delta.remove),
            "failures": len(change.result.failures),
        }
    out = to_json(change)
    kind = "end_of_rib" if type(change).__name__ == "EndOfRib" else "notice"
    return {"event": kind, "kind": type(change).__name__, **(out if isinstance(out, dict) else {})}


def _vni_spec(text: str) -> tuple[int, dict[str, str]]:
    vni, *opts = text.split(",")
    kw = dict(opt.partition("=")[::2] for opt in opts)
    return int(vni), kw


def build_config(args: argparse.Namespace) -> SpeakerConfig:
    timers = Timers(keepalive=args.keepalive, hold_time=args.hold, connect_retry=args.connect_retry)
    neighbors = tuple(parse_neighbor(n, timers) for n in args.neighbor)
    l3vnis = []
    for spec in args.l3vni:
        vni, kw = _vni_spec(spec)
        rmac = MacAddress.from_text(kw["router_mac"]) if "router_mac" in kw else None
        l3vnis.append(L3Vni(kw.get("vrf", f"vrf{vni}"), kw.get("vrf", f"vrf{vni}"), vni, router_mac=rmac))
    l2vnis = []
    for spec in args.l2vni:
        vni, kw = _vni_spec(spec)
        gateways: tuple[IPInterface, ...] = (
            (ipaddress.ip_interface(kw["gateway"]),) if "gateway" in kw else ()
        )
        l2vnis.append(L2Vni(f"l2-{vni}", vni, vrf=kw.get("vrf"), gateway_ips=gateways))
    vtep = ipaddress.ip_address(args.vtep or args.router_id)
    return SpeakerConfig(
        engine=args.engine,
        underlay=Underlay(
            asn=args.asn,
            router_id=ipaddress.IPv4Address(args.router_id),
            vtep_ipv4=vtep if isinstance(vtep, ipaddress.IPv4Address) else None,
            vtep_ipv6=vtep if isinstance(vtep, ipaddress.IPv6Address) else None,
            neighbors=neighbors,
        ),
        l2vnis=tuple(l2vnis),
        l3vnis=tuple(l3vnis),
        graceful_restart=GracefulRestartConfig(
            restart_time=args.restart_time, stalepath_time=args.stalepath_time
        ),
    )


def rss_kb() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def _engine_pid(spk: Speaker) -> int | None:
    """The pid of the engine's own process (ExaBGP), None for an in-process engine."""
    pid = getattr(spk.engine, "pid", None)
    return pid if isinstance(pid, int) else None


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.speaker = Speaker(
            build_config(args),
            listen_address=args.listen,
            listen_port=args.port,
            restarting=args.restarting,
            engine_options={"initial_backoff": args.initial_backoff},
            name=args.name,
        )
        self.done = asyncio.Event()
        self.graceful = False

    def emit(self, obj: Json) -> None:
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
        sys.stdout.flush()

    async def command(self, cmd: Json) -> Json:
        spk = self.speaker
        op = cmd.get("op")
        vni = int(cmd.get("vni", 0))
        if op == "learn":
            mac = MacAddress.from_text(cmd["mac"])
            await spk.inject(LocalMacLearned(vni, mac, bool(cmd.get("sticky", False))))
            if cmd.get("ip"):
                await spk.inject(LocalNeighLearned(vni, ipaddress.ip_address(cmd["ip"]), mac))
            return {}
        if op == "learn_range":  # benchmarks: COUNT local MACs from FIRST on, injected as one batch
            first = int(MacAddress.from_text(cmd["first"]))
            count = int(cmd["count"])
            await spk.inject_many(LocalMacLearned(vni, MacAddress.from_int(first + i)) for i in range(count))
            return {"at": time.monotonic(), "count": count}
        if op == "age":
            await spk.inject(LocalMacAged(vni, MacAddress.from_text(cmd["mac"])))
            return {}
        if op == "neigh_removed":
            await spk.inject(LocalNeighRemoved(vni, ipaddress.ip_address(cmd["ip"])))
            return {}
        if op == "mac_table":
            return {"rows": to_json(spk.mac_table(vni).rows)}
        if op == "vnis":
            return {"vnis": to_json(spk.vni_table())}
        if op == "rib":
            return {"rib": to_json(spk.rib_by_rd())}
        if op == "next_hops":
            return {"next_hops": to_json(spk.next_hops())}
        if op == "peers":
            return {"peers": to_json(spk.peer_states())}
        if op == "installed":
            return {"entries": [to_json(e) | {"kind": type(e).__name__} for e in await spk.installed()]}
        if op == "count":
            return {"count": len(spk.core.mac_vrfs[vni].macs)}
        if op == "wait_count":
            macs = spk.core.mac_vrfs[vni].macs
            want = int(cmd["count"])
            deadline = time.monotonic() + float(cmd.get("timeout", 60))
            while len(macs) < want:
                if time.monotonic() > deadline:
                    return {"timeout": True, "count": len(macs)}
                await asyncio.sleep(0.001)
            return {"at": time.monotonic(), "count": len(macs)}
        if op == "wait_installed":  # in-memory dataplanes only: their entry count
            dp = spk.dataplane
            assert isinstance(dp, MemoryDataplane)
            size: Callable[[], int] = dp.__len__
            want = int(cmd["count"])
            deadline = time.monotonic() + float(cmd.get("timeout", 60))
            while size() < want:
                if time.monotonic() > deadline:
                    return {"timeout": True, "count": size()}
                await asyncio.sleep(0.001)
            return {"at": time.monotonic(), "count": size()}
        if op == "rss":
            return rss_kb()
        if op == "engine":
            return {"engine": spk.config.engine, "class": type(spk.engine).__name__, "pid": _engine_pid(spk)}
        if op == "stop":
            self.graceful = bool(cmd.get("graceful", False))
            self.done.set()
            return {}
        raise ValueError(f"unknown op {op!r}")

    async def run_command(self, line: bytes) -> None:
        cmd: Json = {}
        try:
            cmd = json.loads(line)
            reply = await self.command(cmd)
            self.emit({"event": "reply", "op": cmd.get("op"), "id": cmd.get("id"), **reply})
        except Exception as exc:
            self.emit({"event": "error", "id": cmd.get("id"), "error": f"{type(exc).__name__}: {exc}"})

    async def read_commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        except (OSError, ValueError):
            return
        waits: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            if not line.strip():
                continue
            if b'"wait_' in line:  # runs beside the others: a wait must not hold up commands
                task = asyncio.ensure_future(self.run_command(line))
                waits.add(task)
                task.add_done_callback(waits.discard)
            else:
                await self.run_command(line)
        self.done.set()  # stdin closed: the controller is gone

    async def changes(self) -> None:
        async with self.speaker.subscribe() as changes:
            async for change in changes:
                self.emit(change_to_json(change))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.done.set)
        watcher = None if self.args.quiet else asyncio.ensure_future(self.changes())
        await self.speaker.start()
        port = getattr(self.speaker.engine, "listen_port", None)
        self.emit({"event": "ready", "port": port})
        commands = asyncio.ensure_future(self.read_commands())
        await self.done.wait()
        await self.speaker.stop(graceful=self.graceful)
        commands.cancel()
        if watcher is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(watcher, 2.0)
        self.emit({"event": "stopped"})
        return 0


class RunnerClient:
    """The controller's side: a started runner process (stdin and stdout pipes), its lines collected by a
    thread; ``request`` sends a command and waits for its reply."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[Json] = []
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._eof = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for raw in self.proc.stdout:
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    line = {"event": "garbage", "text": raw.decode(errors="replace")}
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait(
        self, predicate: Callable[[Json], bool], what: str, timeout: float = 20.0, start: int = 0
    ) -> Json:
        """The first line from index ``start`` on that matches ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if predicate(line):
                        return line
                start = max(start, len(self.lines))
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(min(left, 0.5))
        raise TimeoutError(f"speaker_runner: no {what}; rc={self.proc.poll()} last lines={self.lines[-10:]}")

    def send(self, command: Json) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, op: str, timeout: float = 20.0, **fields: Any) -> Json:
        """Send ``{"op": op, **fields}`` and return its reply (``RuntimeError`` on an error reply)."""
        ident = next(self._ids)
        with self._cond:
            mark = len(self.lines)
        self.send({"op": op, "id": ident, **fields})
        line = self.wait(
            lambda x: x.get("id") == ident and x.get("event") in ("reply", "error"),
            f"reply to {op}",
            timeout,
            mark,
        )
        if line["event"] == "error":
            raise RuntimeError(f"speaker_runner {op}: {line['error']}")
        return line

    def events(self, kind: str) -> list[Json]:
        with self._cond:
            return [x for x in self.lines if x.get("event") == kind]

    def close(self, timeout: float = 10.0) -> None:
        """Ask the runner to stop (Cease) and wait for it."""
        if self.proc.poll() is None and self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError, ValueError):
                self.send({"op": "stop"})
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="speaker_runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default=None)
    parser.add_argument("--asn", type=int, required=True)
    parser.add_argument("--router-id", required=True)
    parser.add_argument("--vtep", default=None, help="VTEP address (default: the router id)")
    parser.add_argument("--listen", default=None, help="listen address (default: all)")
    parser.add_argument("--port", type=int, default=179)
    parser.add_argument(
        "--engine", choices=ENGINES, default="native", help="BGP session engine (default: native)"
    )
    parser.add_argument("--neighbor", action="append", default=[], help="ADDRESS,asn=N[,port=P][,passive]")
    parser.add_argument("--l2vni", action="append", default=[], help="VNI[,vrf=NAME][,gateway=CIDR]")
    parser.add_argument("--l3vni", action="append", default=[], help="VNI,vrf=NAME[,router_mac=MAC]")
    parser.add_argument("--keepalive", type=int, default=3)
    parser.add_argument("--hold", type=int, default=9)
    parser.add_argument("--connect-retry", type=int, default=2)
    parser.add_argument("--initial-backoff", type=float, default=0.3)
    parser.add_argument("--restart-time", type=int, default=120)
    parser.add_argument("--stalepath-time", type=int, default=360)
    parser.add_argument("--restarting", action="store_true", help="start as a graceful restart")
    parser.add_argument("--quiet", action="store_true", help="no change events on stdout")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    return asyncio.run(Runner(args).run())


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["RunnerClient", "build_config", "change_to_json", "main", "to_json"]
