"""Network namespaces, veth pairs, process helpers and the :class:`Lab` that owns them all.

Every namespace a :class:`Lab` creates is named ``ev<6 hex lab id>-<role>`` (short, unique per lab, so
tests can run back to back or in parallel) and is recorded in ``/run/evpn-lab/<name>`` with the owner's
pid and start time. A later :class:`Lab` removes namespaces whose owner died without cleaning up
(for example after ``kill -9``); namespaces of a living owner are never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tests.lab.capture import Capture
    from tests.lab.frr import FrrRouter
    from tests.lab.gobgp import GobgpNeighbor, GobgpRouter

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
REGISTRY_DIR = Path("/run/evpn-lab")
NS_PREFIX = "ev"
IFNAMSIZ = 15  # longest Linux interface name
CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


class LabError(RuntimeError):
    """A lab operation failed."""


class CommandError(LabError):
    """A command exited non-zero; carries its output."""

    def __init__(self, cmd: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        self.cmd = list(cmd)
        self.result = result
        super().__init__(
            f"command failed (rc={result.returncode}): {' '.join(self.cmd)}\n"
            f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}"
        )


# ---------------------------------------------------------------------------------------------------------
# commands, waiting, processes


def run(
    cmd: Sequence[str], *, check: bool = True, timeout: float = 30.0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the current namespace, capturing text output; raise :class:`CommandError` on rc!=0."""
    result = subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, input=input, check=False
    )
    if check and result.returncode != 0:
        raise CommandError(cmd, result)
    return result


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.1,
    what: str = "condition",
    details: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns a truthy value and return that value.

    Exceptions raised by the predicate count as "not yet" (the last one is reported). On timeout raise
    :class:`TimeoutError` whose message includes ``details()`` (for example daemon logs).
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    last_value: T | None = None
    while True:
        try:
            value = predicate()
            last_value = value
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:.1f}s waiting for {what}; last value: {last_value!r}"
            if last_exc is not None:
                msg += f"; last error: {last_exc!r}"
            if details is not None:
                try:
                    msg += "\n" + details()
                except Exception as exc:
                    msg += f"\n(could not collect details: {exc!r})"
            raise TimeoutError(msg)
        time.sleep(interval)


def become_subreaper() -> None:
    """Make this process adopt orphaned descendants (daemons that fork), so it can reap them."""
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    head, _, rest = text.rpartition(")")
    return [head.partition("(")[2], *rest.split()]


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    stat = _proc_stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


def pid_comm(pid: int) -> str | None:
    """The process name (``/proc/PID/comm``) or None."""
    stat = _proc_stat(pid)
    return None if stat is None else stat[0]


def pid_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (identifies a process across pid reuse)."""
    stat = _proc_stat(pid)
    return None if stat is None else int(stat[20])


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our (possibly adopted) child; no-op otherwise."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill_pid(pid: int, *, timeout: float = 5.0, expected_comm: str | None = None) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout``, then SIGKILL; reap it. Returns False if it was not running.

    ``expected_comm`` guards against pid reuse: a process with another name is left alone.
    """
    if not pid_alive(pid):
        reap(pid)
        return False
    if expected_comm is not None and pid_comm(pid) != expected_comm[:15]:
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            reap(pid)
            if not pid_alive(pid):
                reap(pid)  # it may have died between the reap and the check: reap it now, no zombie left
                return True
            time.sleep(0.02)
    raise LabError(f"process {pid} survived SIGKILL")


def read_pid_file(path: Path) -> int | None:
    """The pid stored in ``path`` or None when the file is missing or empty."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def stop_popen(proc: subprocess.Popen[Any], *, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """Signal a child started with Popen, wait for it, SIGKILL it if it does not exit."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def check_ifname(name: str) -> str:
    """Return ``name`` if it is a valid Linux interface name, else raise ValueError."""
    if not name or len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise ValueError(f"invalid interface name {name!r} (1..{IFNAMSIZ} chars, no '/' or spaces)")
    return name


# ---------------------------------------------------------------------------------------------------------
# namespaces


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Namespace:
    """A named network namespace (``ip netns``) with lo up.

    ``Namespace(name)`` creates it; ``role`` is a short human label used for default interface names.
    """

    def __init__(self, name: str, *, role: str | None = None, register: bool = True) -> None:
        if not name or len(name) > 32 or "/" in name:
            raise ValueError(f"invalid namespace name {name!r}")
        self.name = name
        self.role = role or name
        self._registered = False
        run(["ip", "netns", "add", name])
        try:
            if register:
                _register(name)
                self._registered = True
            self.ip("link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"

    @property
    def path(self) -> Path:
        """The namespace's bind-mount file (usable with setns)."""
        return NETNS_DIR / self.name

    def exists(self) -> bool:
        """True while the namespace exists."""
        return self.path.exists()

    def run(
        self,
        cmd: Sequence[str],
        check: bool = True,
        *,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the namespace (``ip netns exec``) and capture its text output."""
        return run(["ip", "netns", "exec", self.name, *cmd], check=check, timeout=timeout, input=input)

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside the namespace. ``ip netns exec`` execs, so ``.pid`` is the command's pid.

        The caller owns the process (use :meth:`Lab.popen` to have it tracked and killed).
        """
        return subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kwargs)

    def ip(self, *args: str, check: bool = True) -> str:
        """Run ``ip -n NS ARGS`` and return stdout."""
        return run(["ip", "-n", self.name, *args], check=check).stdout

    def ip_json(self, *args: str) -> Any:
        """Run ``ip -n NS -j ARGS`` and return parsed JSON."""
        out = run(["ip", "-n", self.name, "-j", *args]).stdout
        return json.loads(out) if out.strip() else []

    def bridge(self, *args: str, check: bool = True) -> str:
        """Run ``bridge -n NS ARGS`` and return stdout."""
        return run(["bridge", "-n", self.name, *args], check=check).stdout

    def link_up(self, dev: str) -> None:
        """Set ``dev`` up."""
        self.ip("link", "set", dev, "up")

    def add_address(self, dev: str, cidr: str) -> None:
        """Add (or keep) address ``cidr`` on ``dev`` (``ip addr replace``)."""
        self.ip("addr", "replace", cidr, "dev", dev)

    def add_route(
        self,
        prefix: str,
        via: str | None = None,
        dev: str | None = None,
        *,
        onlink: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        """Install a route (``ip route replace PREFIX [via GW] [dev DEV] [onlink]``)."""
        args = ["route", "replace", prefix]
        if via:
            args += ["via", via]
        if dev:
            args += ["dev", dev]
        if onlink:
            args.append("onlink")
        self.ip(*args, *extra)

    def sysctl(self, values: Mapping[str, str | int]) -> None:
        """Set sysctls inside the namespace, e.g. ``{"net.ipv4.ip_forward": 1}``."""
        if values:
            self.run(["sysctl", "-qw", *(f"{k}={v}" for k, v in values.items())])

    def enable_forwarding(self) -> None:
        """IPv4/IPv6 forwarding on, plus the ARP/NA learning sysctls of DESIGN.md section 4."""
        self.sysctl(
            {
                "net.ipv4.ip_forward": 1,
                "net.ipv6.conf.all.forwarding": 1,
                "net.ipv4.conf.all.arp_accept": 1,
                "net.ipv4.conf.default.arp_accept": 1,
                "net.ipv6.conf.all.accept_untracked_na": 1,
                "net.ipv6.conf.default.accept_untracked_na": 1,
            }
        )

    def disable_ipv6(self) -> None:
        """Turn IPv6 off for all current and future interfaces (no ND chatter)."""
        self.sysctl({"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1})

    def pids(self) -> list[int]:
        """Pids of all processes whose network namespace is this one."""
        out = run(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split()]

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        """Switch the *calling thread* into the namespace for the duration of the block.

        Sockets created inside stay in the namespace after the block. Other threads (for example
        asyncio's getaddrinfo executor) are not affected: use numeric addresses.
        """
        with open("/proc/thread-self/ns/net", "rb") as current, open(self.path, "rb") as target:
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(current.fileno())

    def delete(self) -> None:
        """Kill every process left in the namespace, then delete it. Idempotent."""
        if self.exists():
            _kill_all_in(self.name)
            run(["ip", "netns", "del", self.name], check=False)
        if self._registered:
            with contextlib.suppress(FileNotFoundError):
                (REGISTRY_DIR / self.name).unlink()
            self._registered = False


def _kill_all_in(name: str) -> None:
    """Kill the processes left in namespace ``name`` (never this process itself)."""
    out = run(["ip", "netns", "pids", name], check=False).stdout
    for pid in (int(p) for p in out.split()):
        if pid != os.getpid():
            with contextlib.suppress(LabError):
                kill_pid(pid, timeout=2.0)


def _register(name: str) -> None:
    REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    (REGISTRY_DIR / name).write_text(f"{pid} {pid_start_time(pid)}\n")


def reap_stale_namespaces() -> list[str]:
    """Delete lab namespaces whose owning process is gone; return their names."""
    removed: list[str] = []
    if not REGISTRY_DIR.is_dir():
        return removed
    for entry in REGISTRY_DIR.iterdir():
        try:
            pid_s, start_s = entry.read_text().split()
            owner_alive = pid_alive(int(pid_s)) and str(pid_start_time(int(pid_s))) == start_s
        except (OSError, ValueError):
            owner_alive = False
        if owner_alive:
            continue
        if (NETNS_DIR / entry.name).exists():
            _kill_all_in(entry.name)
            run(["ip", "netns", "del", entry.name], check=False)
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
        removed.append(entry.name)
    return removed


@dataclass(frozen=True)
class Link:
    """One end of a link: namespace, interface name and optional address (CIDR)."""

    ns: Namespace
    ifname: str
    cidr: str | None = None

    @property
    def ip(self) -> str:
        """The address without prefix length."""
        if self.cidr is None:
            raise LabError(f"{self.ifname} in {self.ns.name} has no address")
        return self.cidr.split("/")[0]


@dataclass(frozen=True)
class VethPair:
    """A veth pair: ``a`` in the first namespace, ``b`` in the second."""

    a: Link
    b: Link


def create_veth(
    a: Namespace,
    b: Namespace,
    a_ifname: str,
    b_ifname: str,
    a_addr: str | None = None,
    b_addr: str | None = None,
    *,
    mtu: int | None = None,
    up: bool = True,
) -> VethPair:
    """Create a veth pair directly between ``a`` and ``b`` (never in the root namespace).

    Addresses are CIDRs (``"192.168.1.1/30"``); both ends are set up unless ``up`` is False.
    """
    check_ifname(a_ifname)
    check_ifname(b_ifname)
    a.ip("link", "add", a_ifname, "type", "veth", "peer", "name", b_ifname, "netns", b.name)
    for ns, ifname, addr in ((a, a_ifname, a_addr), (b, b_ifname, b_addr)):
        if mtu is not None:
            ns.ip("link", "set", ifname, "mtu", str(mtu))
        if addr:
            ns.add_address(ifname, addr)
        if up:
            ns.link_up(ifname)
    return VethPair(Link(a, a_ifname, a_addr), Link(b, b_ifname, b_addr))


# ---------------------------------------------------------------------------------------------------------
# the lab


class Lab:
    """Owns namespaces, daemons, captures and processes; removes all of them on exit.

    Use as a context manager (or the ``lab`` pytest fixture). Cleanup runs in reverse order of
    creation even when the body raised; on failure the logs of every daemon are printed to stderr and
    the work directory (configs, logs, pcaps) is kept.
    """

    def __init__(self, name: str = "lab", *, keep_workdir: bool = False) -> None:
        self.name = name
        self.id = self._new_id()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"evlab-{self.id}-"))
        self.workdir.chmod(0o755)  # FRR drops to user frr and must reach its directory below
        self.keep_workdir = keep_workdir
        self.namespaces: list[Namespace] = []
        self._cleanups: list[tuple[str, Callable[[], None]]] = []
        self._log_sources: list[tuple[str, Callable[[], str]]] = []
        self._closed = False
        become_subreaper()

    @staticmethod
    def _new_id() -> str:
        for _ in range(100):
            lab_id = secrets.token_hex(3)
            if not any(NETNS_DIR.glob(f"{NS_PREFIX}{lab_id}*")):
                return lab_id
        raise LabError("could not find a free lab id")

    def __repr__(self) -> str:
        return f"Lab({self.name!r}, id={self.id!r}, workdir={str(self.workdir)!r})"

    def __enter__(self) -> Lab:
        reap_stale_namespaces()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.close(failed=exc_type is not None)

    # -- building blocks ---------------------------------------------------------------------------------

    def namespace(self, role: str) -> Namespace:
        """Create a namespace named ``ev<labid>-<role>`` (≤ 15 chars; role: 1..6 chars, unique in this lab)."""
        if not role or len(role) > 6 or not role.replace("-", "").isalnum():
            raise ValueError(f"role must be 1..6 alphanumeric chars: {role!r}")
        name = f"{NS_PREFIX}{self.id}-{role}"
        if any(ns.name == name for ns in self.namespaces):
            raise ValueError(f"role {role!r} already used in this lab")
        ns = Namespace(name, role=role)
        self.namespaces.append(ns)
        self.add_cleanup(ns.delete, f"delete namespace {name}")
        return ns

    def veth(
        self,
        a: Namespace,
        b: Namespace,
        a_addr: str | None = None,
        b_addr: str | None = None,
        *,
        a_ifname: str | None = None,
        b_ifname: str | None = None,
        mtu: int | None = None,
    ) -> VethPair:
        """Connect two namespaces with a veth pair; default names ``to-<peer role>``."""
        return create_veth(
            a,
            b,
            a_ifname or f"to-{b.role}"[:IFNAMSIZ],
            b_ifname or f"to-{a.role}"[:IFNAMSIZ],
            a_addr,
            b_addr,
            mtu=mtu,
        )

    def frr(
        self,
        ns: Namespace,
        config: str,
        *,
        zebra_config: str = "",
        start: bool = True,
        **kwargs: Any,
    ) -> FrrRouter:
        """Create (and by default start) an FRR zebra+bgpd instance in ``ns``; stopped at cleanup."""
        from tests.lab.frr import FrrRouter

        router = FrrRouter(
            ns, config, zebra_config=zebra_config, directory=self._subdir(f"frr-{ns.role}"), **kwargs
        )
        self.add_cleanup(router.stop, f"stop FRR in {ns.name}")
        self.add_log_source(f"FRR {ns.name}", router.logs)
        if start:
            router.start()
        return router

    def gobgp(
        self,
        ns: Namespace,
        asn: int,
        router_id: str,
        neighbors: Sequence[GobgpNeighbor] = (),
        *,
        start: bool = True,
        **kwargs: Any,
    ) -> GobgpRouter:
        """Create (and by default start) a gobgpd in ``ns``; stopped at cleanup."""
        from tests.lab.gobgp import GobgpRouter

        router = GobgpRouter(
            ns, asn, router_id, neighbors, directory=self._subdir(f"gobgp-{ns.role}"), **kwargs
        )
        self.add_cleanup(router.stop, f"stop gobgpd in {ns.name}")
        self.add_log_source(f"gobgpd {ns.name}", router.logs)
        if start:
            router.start()
        return router

    def capture(
        self,
        ns: Namespace,
        iface: str | Sequence[str],
        bpf_filter: str = "tcp port 179",
        *,
        name: str | None = None,
        start: bool = True,
    ) -> Capture:
        """Start ``dumpcap`` in ``ns`` writing ``<workdir>/<name>.pcapng``; stopped at cleanup.

        Read it only after :meth:`Capture.stop` (``bgp_messages``/``bgp_json`` call it): stop drains
        dumpcap's ring first, so everything captured until then is in the file (plus one barrier frame,
        EtherType 0x88b5, per Ethernet interface).
        """
        from tests.lab.capture import Capture

        ifaces = [iface] if isinstance(iface, str) else list(iface)
        stem = name or f"{ns.role}-{'-'.join(ifaces)}"
        cap = Capture(ns, ifaces, self.workdir / f"{stem}.pcapng", bpf_filter)
        self.add_cleanup(cap.stop, f"stop capture {stem}")
        self.add_log_source(f"dumpcap {stem}", cap.logs)
        if start:
            cap.start()
        return cap

    def popen(self, ns: Namespace, cmd: Sequence[str], *, name: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a tracked process in ``ns``; stdout+stderr go to ``<workdir>/<name>.log``."""
        log_path = self.workdir / f"{name}.log"
        log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in the cleanup
        kwargs.setdefault("stdout", log)
        kwargs.setdefault("stderr", subprocess.STDOUT)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        try:
            proc = ns.popen(cmd, **kwargs)
        except BaseException:
            log.close()
            raise

        def _stop() -> None:
            try:
                stop_popen(proc)
            finally:
                log.close()

        self.add_cleanup(_stop, f"stop {name} (pid {proc.pid})")
        self.add_log_source(name, lambda: tail_file(log_path))
        return proc

    def add_cleanup(self, fn: Callable[[], None], what: str = "") -> None:
        """Register ``fn`` to run at close (last registered runs first)."""
        self._cleanups.append((what or repr(fn), fn))

    def add_log_source(self, name: str, fn: Callable[[], str]) -> None:
        """Register a callable whose text is printed when the lab closes after a failure."""
        self._log_sources.append((name, fn))

    def dump_logs(self, stream: IO[str] | None = None) -> None:
        """Print every registered log source to ``stream`` (stderr by default)."""
        out = stream or sys.stderr
        print(f"===== {self!r}: logs =====", file=out)
        for name, fn in self._log_sources:
            try:
                text = fn()
            except Exception as exc:
                text = f"(could not read: {exc!r})"
            print(f"----- {name} -----\n{text}", file=out)

    def _subdir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir()
        return path

    # -- teardown ----------------------------------------------------------------------------------------

    def close(self, failed: bool = False) -> None:
        """Stop everything, delete namespaces, remove the work directory (kept when ``failed``)."""
        if self._closed:
            return
        self._closed = True
        if failed:
            self.dump_logs()
        errors: list[str] = []
        while self._cleanups:
            what, fn = self._cleanups.pop()
            try:
                fn()
            except Exception:
                errors.append(f"{what}: {traceback.format_exc()}")
        if failed or self.keep_workdir or errors:
            print(f"lab {self.id}: work directory kept at {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            msg = "lab cleanup errors:\n" + "\n".join(errors)
            if failed:
                print(msg, file=sys.stderr)  # do not mask the original failure
            else:
                raise LabError(msg)


def tail_file(path: Path, lines: int = 200) -> str:
    """The last ``lines`` lines of a text file, or ``"(no file)"``."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no file)"
    return "\n".join(text.splitlines()[-lines:])
