"""Watching one VXLAN device's kernel FDB from outside the router under test.

A :class:`FdbWatch` opens an rtnetlink socket subscribed to neighbour notifications inside the router's
namespace and, in its own thread, follows the bridge FDB entries of one VXLAN device (``vni110``) and of
its bridge: for every MAC the ``dst VTEP`` entry on the VXLAN device (``self``) and the bridge port the
bridge forwards it to (``master``). Every change is logged with ``time.monotonic()`` at reception, so a
scenario can ask afterwards when a MAC reached a state, or wait for a condition now. The same code watches
FRR's zebra and evpn-speaker: both install ``MAC dev vniX dst VTEP self extern_learn`` plus the bridge's
``master`` entry.

A BPF filter on the socket keeps only ``AF_BRIDGE`` neighbour messages (IP neighbour chatter is dropped in
the kernel); the receive buffer is 256 MiB so that 100,000 routes (200,000 notifications) cannot overrun it.
If it overruns all the same, :attr:`FdbWatch.overruns` counts it and the state is re-read with a dump.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.bench_dataplane import remote_fdb
from dataplane import netns, rtnl
from tests.lab import Namespace

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ZERO_MAC = bytes(6)
_BPF = struct.Struct("=HBBI")


@dataclass(frozen=True, slots=True)
class FdbEvent:
    """One change: ``kind`` ``"self"`` (value: the VTEP, None when removed) or ``"master"`` (value: the
    bridge port's ifindex, None when removed)."""

    at: float
    kind: str
    mac: bytes
    value: IPAddress | int | None


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _bridge_only_filter(sock: socket.socket) -> None:
    """Classic BPF: accept RTM_NEWNEIGH/RTM_DELNEIGH of family AF_BRIDGE, drop everything else."""
    new, delete = (
        (rtnl.RTM_NEWNEIGH, rtnl.RTM_DELNEIGH)
        if sys.byteorder == "big"
        else (rtnl.RTM_NEWNEIGH << 8, rtnl.RTM_DELNEIGH << 8)
    )
    program = b"".join(
        _BPF.pack(*insn)
        for insn in (
            (0x28, 0, 0, 4),  # ldh [4]: nlmsg_type (host order, read big-endian)
            (0x15, 1, 0, new),
            (0x15, 0, 3, delete),
            (0x30, 0, 0, 16),  # ldb [16]: ndm_family
            (0x15, 0, 1, rtnl.AF_BRIDGE),
            (0x06, 0, 0, 0xFFFFFFFF),  # accept
            (0x06, 0, 0, 0),  # drop
        )
    )
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HxxxxxxQ", len(program) // _BPF.size, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, rtnl.SO_ATTACH_FILTER, fprog)


def ifindex(ns: Namespace, name: str) -> int:
    return int(ns.ip_json("link", "show", name)[0]["ifindex"])


class FdbWatch:
    """Follow ``vxlan`` (and its bridge) in ``ns``: ``remote`` (MAC -> VTEP), ``ports`` (MAC -> bridge
    port ifindex), ``events`` (every change, in order), ``changed_at`` (time of the last change).

    Start it before the work it measures; stop it with :meth:`close` (also a context manager).
    """

    def __init__(self, ns: Namespace, vxlan: str = "vni110", *, log_events: bool = True) -> None:
        self.ns = ns
        self.vxlan_index = ifindex(ns, vxlan)
        self.log_events = log_events
        self.remote: dict[bytes, IPAddress] = {}
        self.ports: dict[bytes, int] = {}
        self.events: list[FdbEvent] = []
        self.changed_at = time.monotonic()
        self.overruns = 0
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        with netns.entered(ns.name):
            self._sock = rtnl.open_socket(rtnl.RTMGRP_NEIGH, rcvbuf=256 << 20)
        _bridge_only_filter(self._sock)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self.resync()
        self._thread = threading.Thread(target=self._run, name=f"fdb-watch-{ns.role}", daemon=True)
        self._thread.start()

    def __enter__(self) -> FdbWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self._sock.close()

    def resync(self) -> None:
        """Replace the remote table with a dump (at start, and after an overrun)."""
        dumped = remote_fdb(self.ns.name, self.vxlan_index)
        with self.lock:
            self.remote = dict(dumped)

    def _run(self) -> None:
        buffer = bytearray(1 << 16)
        while not self._stop.is_set():
            try:
                size = self._sock.recv_into(buffer)
            except TimeoutError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    self.resync()
                    continue
                return
            now = time.monotonic()
            changed = False
            with self.lock:
                for m in rtnl.decode(memoryview(buffer)[:size]):
                    if isinstance(m, rtnl.Neigh) and m.lladdr is not None and m.lladdr != ZERO_MAC:
                        changed |= self._apply(m, now)
                if changed:
                    self.changed_at = now
                    self._wake.notify_all()

    def _apply(self, m: rtnl.Neigh, now: float) -> bool:
        assert m.lladdr is not None
        mac = m.lladdr
        if m.flags & rtnl.NTF_SELF:
            if m.ifindex != self.vxlan_index or (m.dst is None and not m.deleted):
                return False
            old = self.remote.get(mac)
            if m.deleted:
                if old is None:
                    return False
                del self.remote[mac]
                value: IPAddress | int | None = None
            else:
                assert m.dst is not None
                self.remote[mac] = m.dst
                value = m.dst
            if self.log_events:
                self.events.append(FdbEvent(now, "self", mac, value))
            return True
        if m.flags & rtnl.NTF_MASTER or m.master is not None:
            old_port = self.ports.get(mac)
            if m.deleted:
                if old_port != m.ifindex:
                    return False
                del self.ports[mac]
                value = None
            else:
                self.ports[mac] = m.ifindex
                value = m.ifindex
            if self.log_events:
                self.events.append(FdbEvent(now, "master", mac, value))
            return True
        return False

    # -- waiting -------------------------------------------------------------------------------------------

    def wait(self, predicate: Callable[[FdbWatch], bool], timeout: float, what: str) -> float:
        """Block until ``predicate(self)`` holds (checked under the lock after every change); the time of
        the change that made it hold (``changed_at``). TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{what}: not reached in {timeout:.0f} s ({len(self.remote)} remote MACs)"
                    )
                self._wake.wait(min(left, 0.5))
            return self.changed_at

    def wait_count(self, count: int, timeout: float) -> float:
        """The time the remote table first held exactly ``count`` MACs (after the last change)."""
        return self.wait(lambda w: len(w.remote) == count, timeout, f"{count} remote MACs")

    def wait_quiet(self, seconds: float, timeout: float) -> float:
        """Wait until nothing changed for ``seconds``; the time of the last change."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                last = self.changed_at
            now = time.monotonic()
            if now - last >= seconds:
                return last
            if now > deadline:
                raise TimeoutError(f"the FDB kept changing for {timeout:.0f} s")
            time.sleep(min(seconds - (now - last), 0.1) + 0.001)

    def snapshot_events(self) -> list[FdbEvent]:
        with self.lock:
            return list(self.events)

    def verify(self) -> dict[bytes, IPAddress]:
        """The kernel's remote table now, by dump (independent of the notifications)."""
        return remote_fdb(self.ns.name, self.vxlan_index)


def first_time(
    events: list[FdbEvent],
    mac: bytes,
    after: float,
    done: Callable[[IPAddress | None, int | None], bool],
) -> float | None:
    """Replay ``mac``'s events: the first time at or after ``after`` when ``done(vtep, port)`` holds (the
    state before ``after`` counts: if it already holds then, ``after`` itself)."""
    vtep: IPAddress | None = None
    port: int | None = None
    checked = False
    for event in events:
        if event.mac != mac:
            continue
        if event.at >= after and not checked:
            checked = True
            if done(vtep, port):
                return after
        if event.kind == "self":
            vtep = event.value if not isinstance(event.value, int) else None
        else:
            port = event.value if isinstance(event.value, int) else None
        if event.at >= after and done(vtep, port):
            return event.at
    return None
