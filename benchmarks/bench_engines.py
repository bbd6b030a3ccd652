"""Both session engines (native, exabgp) on the same bulk work, in the same run, against each other and FRR.

Run (root): ``.venv/bin/python -m benchmarks.bench_engines [--sizes 10000 50000] [--repeats 3] [--json OUT]``

Topology (``bench_speaker``'s, one fresh lab per measurement): two namespaces joined by a veth; the target
(``speaker.tools.speaker_runner --engine native|exabgp``: the whole ``Speaker`` with an in-memory dataplane
and L2VNI 110, or FRR 8.4 zebra + bgpd with ``advertise-all-vni``) in one, a raw BGP peer (plain socket,
our codec) in the other.

- **receive**: ``bench_speaker``'s injector: N MAC-only type-2 routes of VNI 110 over 64 VTEPs, 100 NLRIs per
  UPDATE, packed before the clock starts, written in one go once the session is Established.
  Timed until the speaker's MAC-VRF of VNI 110 holds N MACs (the runner polls every millisecond, reports
  ``time.monotonic()``); for bgpd until ``show bgp l2vpn evpn summary json`` reports N prefixes received
  from the injector (vtysh every 20 ms, as ``bench_speaker.run_bgpd``). Same bytes for every target; they
  are written with ``send`` calls that wait for a slow reader (``bench_speaker.Injector.send``'s ``sendall``
  gives up after 0.2 s in all, too short for the exabgp engine at 50,000 routes).
- **announce**: the raw receiver connects, waits for the speaker's End-of-RIB (the initial table: one
  type-3), then the runner learns N local MACs in one batch (``learn_range``: ``Speaker.inject_many``).
  Timed from sending that command until the receiver has decoded (``MessageDecoder``, in its own thread) N
  distinct type-2 NLRIs. The receiver does not announce the extended message capability: every engine sends
  UPDATEs of at most 4096 octets. **FRR announce** is the nearest equivalent FRR has: N dynamic FDB entries
  added to a local port of FRR's L2VNI bridge with one ``bridge -batch`` (kernel), learned by zebra over
  netlink and announced by bgpd; timed from starting the batch until the same receiver decoded N type-2. It
  includes the kernel's FDB work (reported as ``kernel_fdb_seconds``), which the speaker's in-memory
  ``learn_range`` does not have: the FRR announce figure is a bound, not the identical work.

RSS (VmRSS once the work is done, VmHWM = peak): the runner process; for the exabgp engine also the ExaBGP
process and its API relay process (its child), and their sum; for FRR bgpd (and zebra). Medians over the
repeats; ratios are of median seconds (``native/exabgp`` < 1: native faster; ``x/FRR`` > 1: slower than FRR).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.bench_speaker import (
    ASN,
    FRR_CONFIG,
    INJ_ID,
    INJ_IP,
    TARGET_IP,
    TARGET_VTEP,
    VNI,
    Injector,
    _pair,
    machine,
    poll,
    run_bgpd,
    updates,
)
from evpn.codec.capabilities import FourOctetAs, Multiprotocol
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.messages import DecodeOptions, Keepalive, MessageDecoder, Open, Update
from evpn.mac import MacAddress
from speaker.tools.speaker_runner import RunnerClient
from tests.lab import Lab, Namespace, create_l2vni, frr_available

ENGINES = ("native", "exabgp")
FIRST_MAC = "02:10:00:00:00:00"
TIMEOUT = 600.0
HEADER = 19


def status_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in kB (empty when it is gone)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux ``/proc/PID/task/TID/children``)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    kids = [int(k) for k in handle.read().split()]
                out.extend(kids)
                todo.extend(kids)
    return out


def process_memory(client: RunnerClient) -> dict[str, float]:
    """MB: the runner's RSS/peak and, when the engine runs ExaBGP, ExaBGP's and its relay's."""
    runner = client.request("rss")
    out = {"runner_rss_mb": runner["VmRSS"] / 1024, "runner_hwm_mb": runner["VmHWM"] / 1024}
    pid = client.request("engine").get("pid")
    if isinstance(pid, int):
        exa = status_kb(pid)
        relay = [status_kb(kid) for kid in children(pid)]
        out["exabgp_rss_mb"] = exa.get("VmRSS", 0) / 1024
        out["exabgp_hwm_mb"] = exa.get("VmHWM", 0) / 1024
        out["relay_rss_mb"] = sum(r.get("VmRSS", 0) for r in relay) / 1024
    out["total_rss_mb"] = out["runner_rss_mb"] + out.get("exabgp_rss_mb", 0.0) + out.get("relay_rss_mb", 0.0)
    return out


def start_runner(lab: Lab, ns: Namespace, engine: str) -> RunnerClient:
    """``speaker_runner --engine ENGINE`` in ``ns``, the raw peer as a passive neighbor; ready."""
    stderr = open(lab.workdir / "speaker.stderr", "wb")  # noqa: SIM115 - closed by the lab cleanup
    lab.add_cleanup(stderr.close, "close stderr")
    proc = lab.popen(
        ns,
        [
            sys.executable, "-m", "speaker.tools.speaker_runner", "--quiet", "--engine", engine,
            "--asn", str(ASN), "--router-id", TARGET_VTEP, "--listen", TARGET_IP,
            "--neighbor", f"{INJ_IP},asn={ASN},passive", "--hold", "90", "--keepalive", "30",
            "--l2vni", str(VNI),
        ],
        name=f"speaker-{engine}",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )  # fmt: skip
    client = RunnerClient(proc)
    lab.add_cleanup(client.close, "stop runner")
    client.wait(lambda x: x.get("event") == "ready", "ready", timeout=30)
    got = client.request("engine")["engine"]
    if got != engine:
        raise RuntimeError(f"runner started engine {got!r}, not {engine!r}")
    return client


def established(client: RunnerClient) -> bool:
    return bool(client.request("peers")["peers"][0]["state"] == "Established")


def run_receive(engine: str, n: int, data: bytes) -> dict[str, Any]:
    """The injector's N routes into the speaker running ``engine`` (``bench_speaker.run_speaker``'s way)."""
    with Lab(f"bench-rx-{engine}") as lab:
        target, inj = _pair(lab)
        client = start_runner(lab, target, engine)
        idle = process_memory(client)
        injector = Injector(inj)
        try:
            poll(lambda: established(client), 20, 0.05, f"session with the speaker ({engine})")
            mark = len(client.lines)
            client.send({"op": "wait_count", "id": "bench", "vni": VNI, "count": n, "timeout": TIMEOUT})
            client.send({"op": "wait_installed", "id": "dp", "count": n, "timeout": TIMEOUT})
            time.sleep(0.05)  # the poll loops are running
            started = time.monotonic()
            injector.send(data)
            reply = client.wait(lambda x: x.get("id") == "bench", "all routes in the core", TIMEOUT, mark)
            if reply.get("timeout"):
                raise TimeoutError(f"{engine}: {reply['count']} of {n} routes")
            elapsed = reply["at"] - started
            dp = client.wait(lambda x: x.get("id") == "dp", "all routes in the dataplane", TIMEOUT, mark)
            in_dataplane = dp["at"] - started if not dp.get("timeout") else None
            memory = process_memory(client)
            count = client.request("count", vni=VNI)["count"]
            peer = client.request("peers")["peers"][0]
        finally:
            injector.close()
        if peer["state"] != "Established" or peer["flaps"]:
            raise RuntimeError(f"{engine}: the session did not stay up: {peer}")
        return {
            "direction": "receive",
            "target": engine,
            "routes": n,
            "seconds": elapsed,
            "dataplane_seconds": in_dataplane,
            "count": count,
            "idle_total_rss_mb": idle["total_rss_mb"],
            **memory,
        }


def run_receive_frr(n: int, data: bytes) -> dict[str, Any]:
    """``bench_speaker.run_bgpd``: the same bytes into FRR bgpd, in this harness's row shape."""
    got = run_bgpd(n, data)
    return {
        "direction": "receive",
        "target": "frr",
        "routes": n,
        "seconds": got["seconds"],
        "seconds_lower_bound": got["seconds_lower_bound"],
        "bgpd_rss_mb": got["rss_mb"],
        "zebra_rss_mb": got["zebra_rss_mb"],
        "idle_total_rss_mb": got["rss_idle_mb"],
        "total_rss_mb": got["rss_mb"],
    }


class Receiver:
    """A raw BGP peer that connects to the speaker and counts the distinct type-2 NLRIs it is sent
    (decoded with our ``MessageDecoder`` in its own thread); answers nothing but KEEPALIVEs."""

    def __init__(self, ns: Namespace, want: int, first: str = FIRST_MAC) -> None:
        with ns.enter():
            self.sock = socket.create_connection((TARGET_IP, 179), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.want = want
        self.first = int(MacAddress.from_text(first))
        self.macs: set[MacAddress] = set()
        self.nlris = 0
        self.updates = 0
        self.bytes = 0
        self.done_at: float | None = None
        self.error: str | None = None
        self.end_of_rib = threading.Event()
        self.done = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        caps = (Multiprotocol(25, 70), FourOctetAs(ASN))  # no extended message: UPDATEs <= 4096 octets
        with self.lock:
            self.sock.sendall(
                Open(ASN, 90, ipaddress.IPv4Address(INJ_ID), caps).encode() + Keepalive().encode()
            )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # reported by the caller
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()
            self.end_of_rib.set()

    def _loop(self) -> None:
        decoder = MessageDecoder(DecodeOptions(four_octet_as=True))
        self.sock.settimeout(0.2)
        buf = b""
        last = time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - last > 2:
                last = time.monotonic()
                with self.lock, contextlib.suppress(OSError):
                    self.sock.sendall(Keepalive().encode())
            try:
                chunk = self.sock.recv(1 << 18)
            except TimeoutError:
                continue
            if not chunk:
                self.error = self.error or "the speaker closed the session"
                return
            buf += chunk
            pos = 0
            while len(buf) - pos >= HEADER:
                length = int.from_bytes(buf[pos + 16 : pos + 18], "big")
                if len(buf) - pos < length:
                    break
                message = buf[pos : pos + length]
                pos += length
                if message[18] == 3:
                    self.error = f"NOTIFICATION {message[19:21].hex()}"
                    return
                if message[18] != 2:
                    continue
                self._update(decoder.decode(message), length)
            buf = buf[pos:]

    def _update(self, update: object, length: int) -> None:
        if not isinstance(update, Update):
            return
        if update.end_of_rib is not None:
            self.end_of_rib.set()
            return
        self.updates += 1
        self.bytes += length
        routes = update.mp_reach.routes if update.mp_reach is not None else ()
        for route in routes:
            self.nlris += 1
            if isinstance(route, MacIpRoute) and 0 <= int(route.mac) - self.first < self.want:
                self.macs.add(route.mac)
        if self.done_at is None and len(self.macs) >= self.want:
            self.done_at = time.monotonic()
            self.done.set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        with contextlib.suppress(OSError):
            self.sock.close()


def run_announce(engine: str, n: int) -> dict[str, Any]:
    """The speaker running ``engine`` learns N local MACs; timed until the receiver decoded N type-2."""
    with Lab(f"bench-tx-{engine}") as lab:
        target, rx_ns = _pair(lab)
        client = start_runner(lab, target, engine)
        idle = process_memory(client)
        receiver = Receiver(rx_ns, n)
        lab.add_cleanup(receiver.close, "close the receiver")
        try:
            if not receiver.end_of_rib.wait(30) or receiver.error:
                raise RuntimeError(f"{engine}: no End-of-RIB from the speaker ({receiver.error})")
            mark = len(client.lines)
            started = time.monotonic()
            client.send({"op": "learn_range", "id": "learn", "vni": VNI, "first": FIRST_MAC, "count": n})
            if not receiver.done.wait(TIMEOUT) or receiver.done_at is None:
                raise TimeoutError(f"{engine}: {len(receiver.macs)} of {n} routes ({receiver.error})")
            elapsed = receiver.done_at - started
            learned = client.wait(lambda x: x.get("id") == "learn", "learn_range reply", TIMEOUT, mark)
            handed = learned["at"] - started
            memory = process_memory(client)
            peer = client.request("peers")["peers"][0]
        finally:
            receiver.close()
        if peer["state"] != "Established" or peer["flaps"]:
            raise RuntimeError(f"{engine}: the session did not stay up: {peer}")
        return {
            "direction": "announce",
            "target": engine,
            "routes": n,
            "seconds": elapsed,
            "handed_to_engine_seconds": handed,
            "updates": receiver.updates,
            "nlris": receiver.nlris,
            "routes_per_update": receiver.nlris / receiver.updates if receiver.updates else 0.0,
            "idle_total_rss_mb": idle["total_rss_mb"],
            **memory,
        }


def run_announce_frr(n: int) -> dict[str, Any]:
    """FRR learns N MACs on a local port of its L2VNI bridge (kernel FDB, ``bridge -batch``) and announces
    them; timed from starting the batch until the receiver decoded N type-2 (kernel + zebra + bgpd)."""
    with Lab("bench-tx-frr") as lab:
        target, rx_ns = _pair(lab)
        create_l2vni(target, VNI, TARGET_VTEP)
        target.ip("link", "add", "hs-110", "type", "veth", "peer", "name", "hs-110p")
        target.ip("link", "set", "hs-110", "master", f"br-pe-{VNI}")
        target.link_up("hs-110")
        target.link_up("hs-110p")
        first = int(MacAddress.from_text(FIRST_MAC))
        batch = lab.workdir / "fdb.batch"
        batch.write_text(
            "".join(f"fdb add {MacAddress.from_int(first + i)} dev hs-110 master dynamic\n" for i in range(n))
        )
        frr = lab.frr(target, FRR_CONFIG)
        pids = frr.pids()
        idle = status_kb(pids["bgpd"] or 0).get("VmRSS", 0)
        frr.wait_for(lambda: frr.evpn_vni(VNI).get("vni") == VNI, what="FRR's L2VNI")
        receiver = Receiver(rx_ns, n)
        lab.add_cleanup(receiver.close, "close the receiver")
        try:
            frr.wait_established(INJ_IP)
            receiver.end_of_rib.wait(10)  # FRR's initial table (its type-3), if it sends End-of-RIB
            time.sleep(0.5)
            if receiver.error:
                raise RuntimeError(f"frr: {receiver.error}")
            started = time.monotonic()
            target.run(["bridge", "-batch", str(batch)], timeout=TIMEOUT)
            in_kernel = time.monotonic() - started
            if not receiver.done.wait(TIMEOUT) or receiver.done_at is None:
                raise TimeoutError(f"frr: {len(receiver.macs)} of {n} routes ({receiver.error})")
            elapsed = receiver.done_at - started
            bgpd = status_kb(pids["bgpd"] or 0)
            zebra = status_kb(pids["zebra"] or 0)
        finally:
            receiver.close()
    return {
        "direction": "announce",
        "target": "frr",
        "routes": n,
        "seconds": elapsed,
        "kernel_fdb_seconds": in_kernel,
        "updates": receiver.updates,
        "nlris": receiver.nlris,
        "routes_per_update": receiver.nlris / receiver.updates if receiver.updates else 0.0,
        "bgpd_rss_mb": bgpd.get("VmRSS", 0) / 1024,
        "bgpd_hwm_mb": bgpd.get("VmHWM", 0) / 1024,
        "zebra_rss_mb": zebra.get("VmRSS", 0) / 1024,
        "idle_total_rss_mb": idle / 1024,
        "total_rss_mb": bgpd.get("VmRSS", 0) / 1024,
    }


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    summary: list[dict[str, Any]] = []
    keys = dict.fromkeys((r["direction"], r["routes"], r["target"]) for r in runs)
    for direction, n, target in keys:
        rs = [r for r in runs if (r["direction"], r["routes"], r["target"]) == (direction, n, target)]
        median_s = statistics.median(r["seconds"] for r in rs)
        row: dict[str, Any] = {
            "direction": direction,
            "routes": n,
            "target": target,
            "repeats": len(rs),
            "median_s": round(median_s, 3),
            "routes_per_s": round(n / median_s),
        }
        for key in (
            "dataplane_seconds",
            "handed_to_engine_seconds",
            "kernel_fdb_seconds",
            "seconds_lower_bound",
            "routes_per_update",
            "total_rss_mb",
            "idle_total_rss_mb",
            "runner_rss_mb",
            "runner_hwm_mb",
            "exabgp_rss_mb",
            "exabgp_hwm_mb",
            "relay_rss_mb",
            "bgpd_rss_mb",
            "bgpd_hwm_mb",
            "zebra_rss_mb",
        ):
            value = _median(rs, key)
            if value is not None:
                row[f"median_{key}" if "seconds" in key else key] = value
        summary.append(row)
    seconds = {(s["direction"], s["routes"], s["target"]): s["median_s"] for s in summary}
    for row in summary:
        d, n = row["direction"], row["routes"]
        native, exa, frr = (seconds.get((d, n, t)) for t in ("native", "exabgp", "frr"))
        if row["target"] == "native" and native and exa:
            row["native/exabgp"] = round(native / exa, 3)
        if row["target"] == "exabgp" and native and exa:
            row["exabgp/native"] = round(exa / native, 2)
        if row["target"] in ENGINES and frr:
            row["x/frr"] = round(row["median_s"] / frr, 2)
    return summary


def _mb(value: Any) -> str:
    return "?" if value is None else f"{float(value):.0f}"


def rss_text(row: dict[str, Any]) -> str:
    if row["target"] == "frr":
        return f"bgpd {_mb(row.get('bgpd_rss_mb'))} + zebra {_mb(row.get('zebra_rss_mb'))}"
    text = f"runner {_mb(row.get('runner_rss_mb'))}"
    if "exabgp_rss_mb" in row:
        text += f" + ExaBGP {_mb(row['exabgp_rss_mb'])} + relay {_mb(row.get('relay_rss_mb'))}"
        text += f" = {_mb(row.get('total_rss_mb'))}"
    return text


def detail_text(row: dict[str, Any]) -> str:
    if "median_handed_to_engine_seconds" in row:
        return (
            f"; handed to the engine at {row['median_handed_to_engine_seconds']} s, "
            f"{row.get('routes_per_update', 0):.0f} routes/UPDATE"
        )
    if "median_kernel_fdb_seconds" in row:
        return (
            f"; bridge -batch done at {row['median_kernel_fdb_seconds']} s, "
            f"{row.get('routes_per_update', 0):.0f} routes/UPDATE"
        )
    if "median_seconds_lower_bound" in row:
        return f"; poll started at {row['median_seconds_lower_bound']} s"
    return ""


def print_table(summary: list[dict[str, Any]]) -> None:
    print(f"machine: {machine()}")
    print(
        f"{'direction':<9} {'routes':>6} {'target':<7} {'median s':>9} {'routes/s':>9} "
        f"{'nat/exa':>8} {'x/FRR':>6}  RSS MB (after)"
    )
    for s in summary:
        ratio = s.get("native/exabgp", s.get("exabgp/native"))
        ratio_text = "" if ratio is None else (f"{ratio}" if "native/exabgp" in s else f"({ratio}x)")
        frr = s.get("x/frr")
        print(
            f"{s['direction']:<9} {s['routes']:>6} {s['target']:<7} {s['median_s']:>9} {s['routes_per_s']:>9} "
            f"{ratio_text:>8} {'' if frr is None else frr:>6}  {rss_text(s)}{detail_text(s)}"
        )
    print(
        "FRR announce: kernel FDB (bridge -batch) -> zebra -> bgpd; includes the kernel's work (see the docstring)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--no-frr", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--table", metavar="JSON", help="only print the table of an earlier --json file")
    args = parser.parse_args(argv)
    if args.table:
        stored = json.loads(Path(args.table).read_text())
        print_table(summarize(stored["runs"]))
        return 0
    if os.geteuid() != 0:
        print("bench_engines needs root (network namespaces)", file=sys.stderr)
        return 2
    with_frr = not args.no_frr and frr_available()
    runs: list[dict[str, Any]] = []
    for n in args.sizes:
        data = updates(n)
        for rep in range(args.repeats):
            todo: list[Callable[[], dict[str, Any]]] = [
                partial(run_receive, e, n, data) for e in args.engines
            ]
            if with_frr:
                todo.append(partial(run_receive_frr, n, data))
            todo += [partial(run_announce, e, n) for e in args.engines]
            if with_frr:
                todo.append(partial(run_announce_frr, n))
            for run in todo:
                result = run()
                result["repeat"] = rep
                runs.append(result)
                print(
                    f"  {result['direction']:<8} {result['target']:<7} {n:>6} routes  "
                    f"{result['seconds']:8.3f} s  RSS {result['total_rss_mb']:6.1f} MB",
                    file=sys.stderr,
                    flush=True,
                )
    summary = summarize(runs)
    print_table(summary)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine(), "summary": summary, "runs": runs}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
