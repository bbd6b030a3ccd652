"""Scenario **moves**: one host MAC moves back and forth between two leaves at a given rate.

Fabric topology (``topology.build_fabric``), both leaves of the target's kind, an FRR spine between them.
The moving host (192.170.1.30, one MAC) has a location behind each leaf; a move is a live migration: the
source location drops the IP address and goes silent, the destination takes the address and sends one
gratuitous ARP (written on a raw ``AF_PACKET`` socket by this process: the clock starts just before that
``send``, not when some ``arping`` returns).

Per move, the latency is the time from that GARP until the *old* leaf's kernel forwards the MAC to the new
leaf: its bridge entry on ``vni110`` (``master``) and the VXLAN entry ``dst <new VTEP>`` (``self``), both
seen in netlink notifications (``FdbWatch``). A ping flow (every ``ping_interval`` s) runs from a host
behind leaf1 towards the moving host during all the moves; ``lost`` is what it lost.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import signal
import socket
import struct
import time
from typing import Any

from benchmarks.churn.fdb import FdbWatch, first_time, mac_bytes
from benchmarks.churn.topology import Fabric, Host, build_fabric
from tests.lab import Lab, Namespace, wait_for

ETH_P_ARP = 0x0806


def garp_frame(mac: str, ip: str) -> bytes:
    """A gratuitous ARP request (sender = target = ``ip``), broadcast, as QEMU/KubeVirt send after a move."""
    hw = mac_bytes(mac)
    addr = ipaddress.IPv4Address(ip).packed
    ether = b"\xff" * 6 + hw + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + hw + addr + bytes(6) + addr
    return ether + arp


def raw_socket(ns: Namespace, ifname: str) -> socket.socket:
    with ns.enter():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        sock.bind((ifname, 0))
    return sock


def ping_counts(text: str) -> tuple[int, int]:
    match = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    if match is None:
        raise RuntimeError(f"no ping statistics in: {text[-500:]}")
    return int(match.group(1)), int(match.group(2))


def lost_per_move(text: str, sent: int, interval: float, moves: list[float]) -> list[int]:
    """Attribute each lost echo of ``ping -D`` output to the move (wall-clock start times ``moves``) that
    preceded its sending. A lost echo's send time is estimated from the nearest earlier answered one."""
    answered = {
        int(m.group(2)): float(m.group(1))
        for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", text, re.MULTILINE)
    }
    counts = [0] * len(moves)
    last: tuple[int, float] | None = None
    for seq in range(1, sent + 1):
        if seq in answered:
            last = (seq, answered[seq])
            continue
        if last is None:
            continue
        at = last[1] + (seq - last[0]) * interval
        before = [i for i, start in enumerate(moves) if start <= at]
        if before:
            counts[before[-1]] += 1
    return counts


def _converged(new_vtep: ipaddress.IPv4Address, vxlan_index: int) -> Any:
    return lambda vtep, port: vtep == new_vtep and port == vxlan_index


def _move(
    fab: Fabric,
    watches: tuple[FdbWatch, FdbWatch],
    frm: int,
    to: int,
    sock: socket.socket,
    frame: bytes,
    timeout: float,
) -> float | None:
    """One live migration of the mover from location ``frm`` to ``to``; the latency in seconds or None."""
    src, dst = fab.mover[frm], fab.mover[to]
    cidr = f"{src.plan.ip}/24"
    src.ns.ip("addr", "del", cidr, "dev", "eth0")
    dst.ns.ip("addr", "add", cidr, "dev", "eth0")
    old = watches[frm]
    new_vtep = ipaddress.IPv4Address(dst.leaf.plan.vtep)
    done = _converged(new_vtep, old.vxlan_index)
    mac = mac_bytes(src.plan.mac)
    sent = time.monotonic()
    sock.send(frame)
    try:
        old.wait(lambda w: done(w.remote.get(mac), w.ports.get(mac)), timeout, "the move")
    except TimeoutError:
        return None
    at = first_time(old.snapshot_events(), mac, sent, done)
    return None if at is None else at - sent


def run_once(
    kind: str, moves: int, rate: float, ping_interval: float = 0.01, timeout: float = 5.0
) -> dict[str, Any]:
    with Lab(f"churn-moves-{kind}") as lab:
        fab = build_fabric(lab, kind)
        watches = (FdbWatch(fab.leaves[0].ns), FdbWatch(fab.leaves[1].ns))
        for w in watches:
            lab.add_cleanup(w.close, "stop the FDB watch")
        mover: tuple[Host, Host] = fab.mover
        frame = garp_frame(mover[0].plan.mac, mover[0].plan.ip)
        socks = (raw_socket(mover[0].ns, "eth0"), raw_socket(mover[1].ns, "eth0"))
        for s in socks:
            lab.add_cleanup(s.close, "close the GARP socket")
        # the mover starts behind leaf1: announce it, wait until leaf2 forwards to leaf1
        mac = mac_bytes(mover[0].plan.mac)
        start_done = _converged(ipaddress.IPv4Address(mover[0].leaf.plan.vtep), watches[1].vxlan_index)
        socks[0].send(frame)
        watches[1].wait(lambda w: start_done(w.remote.get(mac), w.ports.get(mac)), 60, "the mover on leaf2")
        target = mover[0].plan.ip
        wait_for(
            lambda: fab.pinger.ns.run(["ping", "-c", "1", "-W", "1", target], check=False).returncode == 0,
            30,
            0.1,
            f"ping {target}",
        )
        ping = lab.popen(
            fab.pinger.ns, ["ping", "-D", "-i", str(ping_interval), "-W", "1", target], name="ping-flow"
        )
        time.sleep(0.5)
        latencies: list[float | None] = []
        starts: list[float] = []
        wall: list[float] = []
        started = time.monotonic()
        for i in range(moves):
            frm, to = (0, 1) if i % 2 == 0 else (1, 0)
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            starts.append(time.monotonic())
            wall.append(time.time())
            latencies.append(_move(fab, watches, frm, to, socks[to], frame, timeout))
        time.sleep(1.0)  # pings in flight come back (or time out: -W 1)
        with contextlib.suppress(ProcessLookupError):
            ping.send_signal(signal.SIGINT)
        ping.wait(10)
        output = (lab.workdir / "ping-flow.log").read_text()
        sent, received = ping_counts(output)
        per_move = lost_per_move(output, sent, ping_interval, wall)
    measured = [round(x * 1000, 3) for x in latencies if x is not None]
    return {
        "scenario": "moves",
        "target": kind,
        "moves": moves,
        "rate_per_s": rate,
        "achieved_rate_per_s": round((moves - 1) / (starts[-1] - starts[0]), 3) if moves > 1 else None,
        "latency_ms": measured,
        "missed": sum(1 for x in latencies if x is None),
        "ping": {
            "interval_s": ping_interval,
            "sent": sent,
            "received": received,
            "lost": sent - received,
            "lost_per_move": per_move,
        },
    }
