"""FRR (zebra + bgpd) in a network namespace, started as DESIGN.md section 6 describes.

Each router gets a private directory owned by user ``frr`` holding ``zebra.conf``, ``bgpd.conf``,
the pid files, the vty sockets (``--vty_socket DIR``), the zserv socket (``-z DIR/zserv.api``) and the
logs (``zebra.log``, ``bgpd.log``, plus ``*.launch.log`` for the daemons' own stdout/stderr).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.lab.netns import (
    CommandError,
    LabError,
    Namespace,
    kill_pid,
    pid_alive,
    read_pid_file,
    run,
    tail_file,
    wait_for,
)

T = TypeVar("T")

FRR_LIBDIR = Path("/usr/lib/frr")
DAEMONS = ("zebra", "bgpd")
VXLAN_PORT = 4789


def frr_available() -> bool:
    """True if zebra, bgpd and vtysh are installed."""
    return all((FRR_LIBDIR / d).exists() for d in DAEMONS) and shutil.which("vtysh") is not None


class FrrRouter:
    """zebra + bgpd in ``ns`` with a private directory; query it with :meth:`vtysh` / :meth:`vtysh_json`.

    ``config`` is bgpd's configuration text (``router bgp ...``); ``zebra_config`` is zebra's.
    ``bgp_port`` changes bgpd's listen port (``-p``); ``zebra_args`` / ``bgpd_args`` are appended.
    ``wrapper`` is a command prefix each daemon is started through, inside the namespace (for example
    :func:`netns_vrf_wrapper`, which gives ``zebra -n`` a private ``/run/netns``); it must exec the daemon.
    """

    def __init__(
        self,
        ns: Namespace,
        config: str,
        *,
        directory: Path,
        zebra_config: str = "",
        hostname: str | None = None,
        bgp_port: int | None = None,
        zebra_args: Sequence[str] = (),
        bgpd_args: Sequence[str] = (),
        log_level: str = "informational",
        wrapper: Sequence[str] = (),
    ) -> None:
        self.ns = ns
        self.config = config
        self.zebra_config = zebra_config
        self.dir = directory
        self.hostname = hostname or ns.role
        self.bgp_port = bgp_port
        self.zebra_args = list(zebra_args)
        self.bgpd_args = list(bgpd_args)
        self.log_level = log_level
        self.wrapper = list(wrapper)
        self._started: list[str] = []

    def __repr__(self) -> str:
        return f"FrrRouter({self.ns.name!r}, dir={str(self.dir)!r})"

    # -- lifecycle ---------------------------------------------------------------------------------------

    def pid_file(self, daemon: str) -> Path:
        """Path of ``daemon``'s pid file."""
        return self.dir / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        """Path of ``daemon``'s log file."""
        return self.dir / f"{daemon}.log"

    def start(self, timeout: float = 10.0) -> FrrRouter:
        """Write the configs, start zebra then bgpd, and wait until vtysh reaches both."""
        frr_user = pwd.getpwnam("frr")
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.dir, frr_user.pw_uid, frr_user.pw_gid)
        self.dir.chmod(0o755)
        configs = {"zebra": self.zebra_config, "bgpd": self.config}
        for daemon, text in configs.items():
            conf = self.dir / f"{daemon}.conf"
            conf.write_text(f"hostname {self.hostname}\n{text.strip()}\n")
            os.chown(conf, frr_user.pw_uid, frr_user.pw_gid)
        try:
            self._start_daemon("zebra", self.zebra_args, timeout)
            wait_for(
                (self.dir / "zserv.api").exists,
                timeout,
                what=f"zebra zserv socket in {self.dir}",
                details=self.logs,
            )
            extra = [*(["-p", str(self.bgp_port)] if self.bgp_port is not None else []), *self.bgpd_args]
            self._start_daemon("bgpd", extra, timeout)
            wait_for(
                self._daemons_connected, timeout, what="vtysh to reach zebra and bgpd", details=self.logs
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _start_daemon(self, daemon: str, extra: Sequence[str], timeout: float) -> None:
        cmd = [
            *self.wrapper,
            str(FRR_LIBDIR / daemon),
            "-d",
            "-u", "frr",
            "-g", "frr",
            "-f", str(self.dir / f"{daemon}.conf"),
            "-i", str(self.pid_file(daemon)),
            "-z", str(self.dir / "zserv.api"),
            "--vty_socket", str(self.dir),
            "-P", "0",
            "--log", f"file:{self.log_file(daemon)}",
            "--log-level", self.log_level,
            *extra,
        ]  # fmt: skip
        # stdout/stderr go to a file: a daemon keeping an inherited pipe open would block a reader.
        with open(self.dir / f"{daemon}.launch.log", "wb") as launch_log:
            proc = self.ns.popen(cmd, stdout=launch_log, stderr=launch_log, stdin=subprocess.DEVNULL)
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
        self._started.append(daemon)
        if rc != 0:
            raise LabError(f"{daemon} exited with rc={rc} during start\n{self.logs()}")
        wait_for(
            lambda: (pid := read_pid_file(self.pid_file(daemon))) is not None and pid_alive(pid),
            timeout,
            what=f"{daemon} pid file",
            details=self.logs,
        )
        wait_for(
            (self.dir / f"{daemon}.vty").exists,
            timeout,
            what=f"{daemon} vty socket",
            details=self.logs,
        )

    def _daemons_connected(self) -> bool:
        out = self.vtysh("show daemons")
        return all(d in out.split() for d in DAEMONS)

    def pids(self) -> dict[str, int | None]:
        """Current pid of each daemon from its pid file (None when absent)."""
        return {d: read_pid_file(self.pid_file(d)) for d in DAEMONS}

    @property
    def running(self) -> bool:
        """True if both daemons are alive."""
        return all(pid is not None and pid_alive(pid) for pid in self.pids().values())

    def stop(self, timeout: float = 5.0) -> None:
        """Kill bgpd then zebra by their pid files (SIGTERM, then SIGKILL). Idempotent."""
        for daemon in reversed(DAEMONS):
            pid = read_pid_file(self.pid_file(daemon))
            if pid is not None:
                kill_pid(pid, timeout=timeout, expected_comm=daemon)

    def logs(self, lines: int = 200) -> str:
        """The tail of every log file of this router, with headers."""
        parts = []
        for daemon in DAEMONS:
            for path in (self.log_file(daemon), self.dir / f"{daemon}.launch.log"):
                if path.exists():
                    parts.append(f"--- {path} ---\n{tail_file(path, lines)}")
        return "\n".join(parts) or f"(no logs in {self.dir})"

    # -- queries -----------------------------------------------------------------------------------------

    def vtysh(self, cmd: str | Sequence[str], *, check: bool = True, timeout: float = 30.0) -> str:
        """Run one command (or several in sequence) through vtysh and return its output."""
        cmds = [cmd] if isinstance(cmd, str) else list(cmd)
        args = ["vtysh", "--vty_socket", str(self.dir)]
        for c in cmds:
            args += ["-c", c]
        result = run(args, check=False, timeout=timeout)
        if check and (result.returncode != 0 or result.stdout.lstrip().startswith("%")):
            raise CommandError(args, result)
        return result.stdout

    def vtysh_json(self, cmd: str) -> Any:
        """Run a ``show ... json`` command (``json`` appended when missing) and parse the output."""
        if not cmd.rstrip().endswith(" json"):
            cmd = f"{cmd.rstrip()} json"
        out = self.vtysh(cmd)
        try:
            return json.loads(out) if out.strip() else {}
        except json.JSONDecodeError as exc:
            raise LabError(f"vtysh {cmd!r} did not return JSON: {out[:2000]}") from exc

    def configure(self, text: str) -> str:
        """Apply configuration lines (as in a config file) through ``configure terminal``."""
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("!")]
        return self.vtysh(["configure terminal", *lines])

    def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 10.0,
        interval: float = 0.2,
        what: str = "condition",
    ) -> T:
        """Poll ``predicate`` until truthy; on timeout raise TimeoutError including this router's logs."""
        return wait_for(predicate, timeout, interval, what=f"{what} on {self!r}", details=self.logs)

    def neighbor_state(self, peer: str) -> str | None:
        """bgpd's state for neighbor ``peer`` (``"Established"``, ``"Active"``, ...) or None."""
        data = self.vtysh_json(f"show bgp neighbors {peer} json")
        info = data.get(peer)
        return info.get("bgpState") if isinstance(info, dict) else None

    def wait_established(self, peer: str, timeout: float = 20.0) -> None:
        """Wait until the session with ``peer`` is Established."""
        self.wait_for(
            lambda: self.neighbor_state(peer) == "Established", timeout, what=f"BGP {peer} Established"
        )

    def evpn_vni(self, vni: int) -> dict[str, Any]:
        """``show bgp l2vpn evpn vni VNI json`` (keys ``rd``, ``originatorIp``, ``importRTs``, ...)."""
        data: dict[str, Any] = self.vtysh_json(f"show bgp l2vpn evpn vni {vni} json")
        return data

    def evpn_macs(self, vni: int) -> dict[str, dict[str, Any]]:
        """``show evpn mac vni VNI json`` ``macs`` map: MAC -> {type: local|remote, remoteVtep, ...}."""
        data = self.vtysh_json(f"show evpn mac vni {vni} json")
        macs: dict[str, dict[str, Any]] = data.get("macs", {}) if isinstance(data, dict) else {}
        return macs


# -------------------------------------------------------------------------------------------------------
# kernel devices for an L2VNI


@dataclass(frozen=True)
class L2Vni:
    """Names of the kernel devices created for one L2VNI."""

    vni: int
    bridge: str
    vxlan: str
    vtep: str


def anycast_mac(vni: int) -> str:
    """OpenPERouter's gateway MAC for a VNI: ``00:f3`` + big-endian ``vni + 1``."""
    raw = bytes([0x00, 0xF3]) + (vni + 1).to_bytes(4, "big")
    return ":".join(f"{b:02x}" for b in raw)


def create_l2vni(
    ns: Namespace,
    vni: int,
    vtep: str,
    *,
    gateway: str | None = None,
    add_vtep_address: bool = True,
    mtu: int | None = None,
) -> L2Vni:
    """Create the devices FRR's ``advertise-all-vni`` needs for ``vni`` in ``ns``.

    Bridge ``br-pe-<vni>``; VXLAN ``vni<vni>`` (id, dstport 4789, local ``vtep``, nolearning,
    addrgenmode none) enslaved with neigh_suppress on and learning off; ``vtep``/32 on lo. With
    ``gateway`` (CIDR), the bridge gets that address and the anycast MAC of :func:`anycast_mac`.
    """
    if not 1 <= vni < 1 << 24:
        raise ValueError(f"VNI out of range: {vni}")
    bridge, vxlan = f"br-pe-{vni}", f"vni{vni}"
    if add_vtep_address:
        ns.add_address("lo", f"{vtep}/32")
    ns.ip("link", "add", bridge, "type", "bridge")
    ns.ip(
        "link", "add", vxlan, "type", "vxlan", "id", str(vni), "dstport", str(VXLAN_PORT),
        "local", vtep, "nolearning",
    )  # fmt: skip
    ns.ip("link", "set", vxlan, "master", bridge, "addrgenmode", "none")
    ns.bridge("link", "set", "dev", vxlan, "neigh_suppress", "on", "learning", "off")
    if mtu is not None:
        ns.ip("link", "set", vxlan, "mtu", str(mtu))
    if gateway:
        ns.ip("link", "set", bridge, "address", anycast_mac(vni))
        ns.add_address(bridge, gateway)
    ns.link_up(bridge)
    ns.link_up(vxlan)
    return L2Vni(vni, bridge, vxlan, vtep)


# -------------------------------------------------------------------------------------------------------
# an L3VNI whose VRF is a network namespace (FRR ``zebra -n``)

_NETNS_VRF_SCRIPT = """set -e
for pair in $EVLAB_VRFS; do
  mount --bind "/run/netns/${pair#*=}" "$EVLAB_NETNS_DIR/${pair%%=*}"
done
mount --rbind "$EVLAB_NETNS_DIR" /run/netns
exec "$@"
"""


def netns_vrf_wrapper(directory: Path, vrfs: Mapping[str, Namespace]) -> list[str]:
    """A :class:`FrrRouter` ``wrapper`` for ``zebra -n``: each daemon runs in a private mount namespace whose
    ``/run/netns`` holds exactly ``vrfs`` (VRF name -> the namespace that is that VRF), under those names.

    ``zebra -n`` turns every entry of ``/run/netns`` into a VRF (and bgpd opens them to make its VRF
    sockets), so the rest of the lab's namespaces must stay out of sight (DESIGN.md section 6). The bind
    mounts (``--rbind``: a plain bind would drop the namespace files mounted below) live and die with the daemons' mount namespaces: nothing is left behind in the system's one.
    ``directory`` (created here) holds the mount points.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pairs = []
    for vrf, ns in vrfs.items():
        if not vrf or "/" in vrf or "=" in vrf or any(c.isspace() for c in vrf):
            raise ValueError(f"invalid VRF name {vrf!r}")
        (directory / vrf).touch()
        pairs.append(f"{vrf}={ns.name}")
    return [
        "env",
        f"EVLAB_NETNS_DIR={directory}",
        f"EVLAB_VRFS={' '.join(pairs)}",
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", _NETNS_VRF_SCRIPT, "netns-vrf",
    ]  # fmt: skip


@dataclass(frozen=True)
class L3VniNetns:
    """Devices of an L3VNI whose VRF is the namespace ``vrf_ns``: ``vxlan`` and the L3 SVI ``bridge``."""

    vni: int
    vrf_ns: Namespace
    bridge: str
    vxlan: str
    vtep: str
    router_mac: str


def create_l3vni_netns(
    ns: Namespace, vrf_ns: Namespace, vni: int, vtep: str, *, router_mac: str
) -> L3VniNetns:
    """The L3 recipe of DESIGN.md section 5 for FRR's netns VRFs: ``vni<vni>`` is created in the router
    namespace ``ns`` (its UDP socket stays there, sourced from ``vtep``) and moved into ``vrf_ns``, where the
    L3 SVI bridge ``br-pe-<vni>`` (MAC ``router_mac``, FRR's Router's MAC) enslaves it. ``vtep`` must already
    be an address of ``ns``."""
    if not 1 <= vni < 1 << 24:
        raise ValueError(f"VNI out of range: {vni}")
    bridge, vxlan = f"br-pe-{vni}", f"vni{vni}"
    ns.ip(
        "link", "add", vxlan, "type", "vxlan", "id", str(vni), "dstport", str(VXLAN_PORT),
        "local", vtep, "nolearning",
    )  # fmt: skip
    ns.ip("link", "set", vxlan, "netns", vrf_ns.name)
    vrf_ns.ip("link", "add", bridge, "type", "bridge")
    vrf_ns.ip("link", "set", bridge, "address", router_mac, "addrgenmode", "none")
    vrf_ns.ip("link", "set", vxlan, "master", bridge, "addrgenmode", "none")
    vrf_ns.bridge("link", "set", "dev", vxlan, "neigh_suppress", "on", "learning", "off")
    vrf_ns.link_up(bridge)
    vrf_ns.link_up(vxlan)
    return L3VniNetns(vni, vrf_ns, bridge, vxlan, vtep, router_mac)
