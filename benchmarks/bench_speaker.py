"""Receiving bulk type-2 routes: our ``Speaker`` against FRR's bgpd, same sender, same run.

Run (root): ``.venv/bin/python -m benchmarks.bench_speaker [--sizes 10000 50000] [--repeats 3] [--json OUT]``

Per size and repeat, two fresh labs in turn, each a namespace pair joined by a veth:

- ``speaker``: ``speaker.tools.speaker_runner`` (the whole ``Speaker``: native engine, core, in-memory
  dataplane) with L2VNI 110, in its namespace;
- ``bgpd``: FRR 8.4 zebra + bgpd with ``advertise-all-vni`` and the kernel devices of L2VNI 110 (DESIGN §6,
  §8), next hops resolvable.

The sender (the injector of DESIGN §8) is a raw BGP speaker in the other namespace: our codec and
``UpdatePacker``, N MAC-only type-2 routes of VNI 110 over 64 VTEPs, 100 NLRIs per UPDATE, packed before the
clock starts and written with one ``sendall`` on a plain TCP socket once the session is Established.

Timed from just before ``sendall`` until all N routes are in the target: for the speaker, the core's
MAC-VRF of VNI 110 holds N MACs (the runner polls ``len(core.mac_vrfs[110].macs)`` every millisecond and
reports ``time.monotonic()``, a system-wide clock); for bgpd, ``show bgp l2vpn evpn summary json`` reports N
prefixes received from the sender (vtysh every 20 ms). RSS: VmRSS of the runner process and of bgpd (and
zebra) once all routes are in. Medians over the repeats.
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

from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.capabilities import Capability, FourOctetAs, Multiprotocol
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION
from evpn.codec.messages import Keepalive, Open
from evpn.codec.packer import UpdatePacker
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from speaker.tools.speaker_runner import RunnerClient
from tests.lab import Lab, Namespace, create_l2vni, frr_available

ASN = 64512
VNI = 110
TARGET_IP, INJ_IP = "192.168.200.1", "192.168.200.2"
TARGET_VTEP, INJ_ID = "100.65.0.1", "10.0.0.2"
VTEPS = [ipaddress.IPv4Address(f"100.65.1.{i}") for i in range(1, 65)]
PER_UPDATE = 100

FRR_CONFIG = f"""
router bgp {ASN}
 bgp router-id {TARGET_VTEP}
 no bgp default ipv4-unicast
 neighbor {INJ_IP} remote-as {ASN}
 address-family l2vpn evpn
  neighbor {INJ_IP} activate
  advertise-all-vni
 exit-address-family
"""


def type2_routes(n: int, first: int = 0) -> list[tuple[ipaddress.IPv4Address, MacIpRoute]]:
    """N MAC-only type-2 routes of VNI 110 (MACs ``0a:00:00:00:00:00`` + ``first`` + i), each with its VTEP
    (round-robin over ``VTEPS`` by MAC number)."""
    rd = RouteDistinguisher.ipv4(ipaddress.IPv4Address(INJ_ID), 1)
    return [
        (VTEPS[i % len(VTEPS)], MacIpRoute(rd, MacAddress.from_int(0x0A0000000000 + i), None, VNI))
        for i in range(first, first + n)
    ]


def pack_announce(routes: Sequence[tuple[ipaddress.IPv4Address, MacIpRoute]]) -> bytes:
    """UPDATEs announcing ``(vtep, route)`` pairs, grouped by VTEP, ``PER_UPDATE`` NLRIs per UPDATE."""
    attrs = PathAttributes(
        as_path=AsPath(),
        local_pref=100,
        ext_communities=(RouteTarget.from_text(f"{ASN}:{VNI}"), VXLAN_ENCAPSULATION),
    )
    groups: dict[ipaddress.IPv4Address, list[MacIpRoute]] = {}
    for vtep, route in routes:
        groups.setdefault(vtep, []).append(route)
    packer = UpdatePacker()
    out = []
    for vtep, group in groups.items():
        for start in range(0, len(group), PER_UPDATE):
            out.extend(packer.announce(attrs, group[start : start + PER_UPDATE], vtep))
    return b"".join(out)


def pack_withdraw(routes: Sequence[MacIpRoute]) -> bytes:
    """UPDATEs withdrawing ``routes`` (MP_UNREACH_NLRI, as many per UPDATE as fit)."""
    return b"".join(UpdatePacker().withdraw(list(routes))) if routes else b""


def updates(n: int) -> bytes:
    """N MAC-only type-2 routes, round-robin over the VTEPs, ``PER_UPDATE`` NLRIs per UPDATE."""
    return pack_announce(type2_routes(n))


class Injector:
    """The raw sender: OPEN + KEEPALIVE, then a thread that drains what the target sends and keeps the
    session alive (KEEPALIVE every 2 s)."""

    def __init__(
        self, ns: Namespace, target_ip: str = TARGET_IP, extra_caps: Sequence[Capability] = ()
    ) -> None:
        with ns.enter():
            self.sock = socket.create_connection((target_ip, 179), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        caps = (Multiprotocol(25, 70), FourOctetAs(ASN), *extra_caps)
        self.lock = threading.Lock()
        with self.lock:
            self.sock.sendall(
                Open(ASN, 90, ipaddress.IPv4Address(INJ_ID), caps).encode() + Keepalive().encode()
            )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        self.sock.settimeout(0.2)
        last = time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - last > 2:
                last = time.monotonic()
                with self.lock, contextlib.suppress(OSError):
                    self.sock.sendall(Keepalive().encode())
            try:
                if not self.sock.recv(1 << 16):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def send(self, data: bytes) -> None:
        """Send everything, however slowly the target reads: the socket's 0.2 s timeout (set for the drain
        thread) bounds each ``send`` call here, where ``sendall`` would give up after 0.2 s in total."""
        view = memoryview(data)
        with self.lock:
            while view:
                try:
                    sent = self.sock.send(view)
                except TimeoutError:
                    continue
                view = view[sent:]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        with contextlib.suppress(OSError):
            self.sock.close()


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def poll(predicate: Callable[[], bool], timeout: float, interval: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(interval)


def _pair(lab: Lab) -> tuple[Namespace, Namespace]:
    target, inj = lab.namespace("target"), lab.namespace("inj")
    lab.veth(target, inj, f"{TARGET_IP}/24", f"{INJ_IP}/24")
    return target, inj


def run_speaker(n: int, data: bytes) -> dict[str, Any]:
    with Lab("bench-speaker") as lab:
        target, inj = _pair(lab)
        stderr = open(lab.workdir / "speaker.stderr", "wb")  # noqa: SIM115 - closed below
        lab.add_cleanup(stderr.close, "close stderr")
        proc = lab.popen(
            target,
            [
                sys.executable, "-m", "speaker.tools.speaker_runner", "--quiet",
                "--asn", str(ASN), "--router-id", TARGET_VTEP, "--listen", TARGET_IP,
                "--neighbor", f"{INJ_IP},asn={ASN},passive", "--hold", "90", "--keepalive", "30",
                "--l2vni", str(VNI),
            ],
            name="speaker",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )  # fmt: skip
        client = RunnerClient(proc)
        lab.add_cleanup(client.close, "stop runner")
        client.wait(lambda x: x.get("event") == "ready", "ready")
        rss_before = client.request("rss")["VmRSS"]
        injector = Injector(inj)
        try:
            poll(
                lambda: client.request("peers")["peers"][0]["state"] == "Established",
                10,
                0.05,
                "session with the speaker",
            )
            mark = len(client.lines)
            client.send({"op": "wait_count", "id": "bench", "vni": VNI, "count": n, "timeout": 300})
            # and until the dataplane holds the N remote MACs (MAC-only routes, no type-3: no flood entries)
            client.send({"op": "wait_installed", "id": "dp", "count": n, "timeout": 300})
            time.sleep(0.05)  # the poll loop is running
            started = time.monotonic()
            injector.send(data)
            reply = client.wait(lambda x: x.get("id") == "bench", "all routes in the core", 300, mark)
            if reply.get("timeout"):
                raise TimeoutError(f"speaker: {reply['count']} of {n} routes")
            elapsed = reply["at"] - started
            dp = client.wait(lambda x: x.get("id") == "dp", "all routes in the dataplane", 300, mark)
            in_dataplane = dp["at"] - started if not dp.get("timeout") else None
            rss = client.request("rss")
            installed = client.request("count", vni=VNI)["count"]
        finally:
            injector.close()
        return {
            "target": "speaker (in-memory dataplane)",
            "routes": n,
            "seconds": elapsed,
            "dataplane_seconds": in_dataplane,
            "rss_mb": rss["VmRSS"] / 1024,
            "rss_idle_mb": rss_before / 1024,
            "hwm_mb": rss["VmHWM"] / 1024,
            "count": installed,
        }


def _bgpd_received(frr: Any) -> int:
    data = frr.vtysh_json("show bgp l2vpn evpn summary")
    peer = data.get("peers", {}).get(INJ_IP, {})
    return int(peer.get("pfxRcd", 0))


def run_bgpd(n: int, data: bytes) -> dict[str, Any]:
    with Lab("bench-bgpd") as lab:
        target, inj = _pair(lab)
        create_l2vni(target, VNI, TARGET_VTEP)
        target.add_route("100.65.1.0/24", via=INJ_IP)  # next-hop tracking: VTEPs must be reachable
        frr = lab.frr(target, FRR_CONFIG)
        pids = frr.pids()
        rss_before = rss_kb(pids["bgpd"] or 0)
        zebra_before = rss_kb(pids["zebra"] or 0)
        injector = Injector(inj)
        try:
            frr.wait_established(INJ_IP)
            started = time.monotonic()
            injector.send(data)
            deadline = started + 300
            while True:
                asked = time.monotonic()
                if _bgpd_received(frr) >= n:
                    # bgpd answers vtysh between UPDATE batches: the routes were in when the answer came
                    # (upper bound); the poll that saw them started at `asked` (lower bound)
                    elapsed = time.monotonic() - started
                    lower = asked - started
                    break
                if asked > deadline:
                    raise TimeoutError(f"bgpd: {_bgpd_received(frr)} of {n} routes")
                time.sleep(0.02)
            bgpd_rss = rss_kb(pids["bgpd"] or 0)
            zebra_rss = rss_kb(pids["zebra"] or 0)
        finally:
            injector.close()
        return {
            "target": "FRR bgpd",
            "routes": n,
            "seconds": elapsed,
            "seconds_lower_bound": lower,
            "rss_mb": bgpd_rss / 1024,
            "rss_idle_mb": rss_before / 1024,
            "zebra_rss_mb": zebra_rss / 1024,
            "zebra_rss_idle_mb": zebra_before / 1024,
        }


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-frr", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_speaker needs root (network namespaces)", file=sys.stderr)
        return 2
    with_frr = not args.no_frr and frr_available()
    runs: list[dict[str, Any]] = []
    for n in args.sizes:
        data = updates(n)
        for rep in range(args.repeats):
            todo: list[Callable[[], dict[str, Any]]] = [partial(run_speaker, n, data)]
            if with_frr:
                todo.append(partial(run_bgpd, n, data))
            for run in todo:
                result = run()
                result["repeat"] = rep
                runs.append(result)
                print(
                    f"  {result['target']:<28} {n:>6} routes  {result['seconds']:7.3f} s  "
                    f"RSS {result['rss_mb']:6.1f} MB",
                    file=sys.stderr,
                )
    summary = []
    for n in args.sizes:
        for target in dict.fromkeys(r["target"] for r in runs if r["routes"] == n):
            rs = [r for r in runs if r["routes"] == n and r["target"] == target]
            summary.append({
                "target": target, "routes": n, "repeats": len(rs),
                "median_s": round(statistics.median(r["seconds"] for r in rs), 3),
                "routes_per_s": round(n / statistics.median(r["seconds"] for r in rs)),
                "median_rss_mb": round(statistics.median(r["rss_mb"] for r in rs), 1),
                **({"median_dataplane_s": round(statistics.median(r["dataplane_seconds"] for r in rs), 3)}
                   if rs[0].get("dataplane_seconds") is not None else {}),
                **({"median_lower_bound_s": round(statistics.median(r["seconds_lower_bound"] for r in rs), 3)}
                   if "seconds_lower_bound" in rs[0] else {}),
                "idle_rss_mb": round(statistics.median(r["rss_idle_mb"] for r in rs), 1),
                **({"zebra_rss_mb": round(statistics.median(r["zebra_rss_mb"] for r in rs), 1)}
                   if "zebra_rss_mb" in rs[0] else {}),
            })  # fmt: skip
    print(f"machine: {machine()}")
    print(f"{'target':<28} {'routes':>7} {'median s':>9} {'routes/s':>9} {'RSS MB':>7} {'idle MB':>8}")
    for s in summary:
        extra = f"  (zebra {s['zebra_rss_mb']} MB)" if "zebra_rss_mb" in s else ""
        if "median_dataplane_s" in s:
            extra += f"  (all in the dataplane: {s['median_dataplane_s']} s)"
        if "median_lower_bound_s" in s:
            extra += f"  (poll started at {s['median_lower_bound_s']} s)"
        print(
            f"{s['target']:<28} {s['routes']:>7} {s['median_s']:>9} {s['routes_per_s']:>9} "
            f"{s['median_rss_mb']:>7} {s['idle_rss_mb']:>8}{extra}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine(), "summary": summary, "runs": runs}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
