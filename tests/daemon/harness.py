"""The daemon (``evpn-speaker run``) as a real process in a namespace, against FRR 8.4, for tests/daemon.

Topology (every namespace, process and device belongs to the ``Lab`` and is removed even on failure)::

    vm1 --- [hs: br-hs-110] ==host-e/pe-e== [spk: br-pe-110, vni110]  evpn-speaker run
                                                 |  192.168.100.2/30
                                                 |  192.168.100.1/30
    vm2 ---------------------------------- [frr: br-pe-110, vni110]  zebra + bgpd (advertise-all-vni)

Our side builds its devices from the configuration file; FRR's side uses ``create_l2vni``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lab import FrrRouter, Lab, Namespace, create_l2vni, wait_for

ASN = 64512
VNI = 110
FRR_IP, SPK_IP = "192.168.100.1", "192.168.100.2"
FRR_VTEP, SPK_VTEP = "10.255.0.1", "10.255.0.2"
VM1_IP, VM2_IP = "192.170.1.10", "192.170.1.20"
VM1_MAC, VM2_MAC = "02:00:00:00:01:10", "02:00:00:00:02:20"
ROOT = Path(__file__).resolve().parents[2]
PROGRAM = [sys.executable, "-m", "speaker.cli"]


def frr_config(graceful_restart: bool = True) -> str:
    gr = " bgp graceful-restart\n" if graceful_restart else ""
    return f"""
router bgp {ASN}
 bgp router-id {FRR_VTEP}
 no bgp default ipv4-unicast
{gr} neighbor {SPK_IP} remote-as {ASN}
 neighbor {SPK_IP} timers 3 9
 neighbor {SPK_IP} timers connect 1
 address-family l2vpn evpn
  neighbor {SPK_IP} activate
  advertise-all-vni
 exit-address-family
"""


def speaker_config(host_netns: str, vnis: tuple[int, ...] = (VNI,), *, extra: str = "") -> str:
    l2 = "".join(f"  - name: l2-{vni}\n    vni: {vni}\n    host_bridge: {{mode: managed}}\n" for vni in vnis)
    return f"""version: 1
underlay:
  asn: {ASN}
  router_id: {SPK_VTEP}
  vtep:
    ipv4: {SPK_VTEP}
  neighbors:
    - address: {FRR_IP}
      asn: {ASN}
      timers: {{keepalive: 3, hold: 9, connect_retry: 1}}
l2vnis:
{l2}graceful_restart: {{enabled: true, restart_time: 30, stalepath_time: 15}}
host_netns: {host_netns}
vrf_backend: netns
{extra}"""


def run_cli(
    *args: str, ns: Namespace | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    cmd = [*PROGRAM, *args]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns.name, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


@dataclass
class DaemonProcess:
    """One ``evpn-speaker run`` process; ``log`` is its stderr (the daemon logs there)."""

    lab: Lab
    ns: Namespace
    args: list[str]
    name: str
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.lab.workdir / f"{self.name}.log"
        self.proc = self.lab.popen(self.ns, [*PROGRAM, "run", *self.args], name=self.name, cwd=ROOT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 20.0, start: int = 0) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited rc={self.proc.returncode}:\n{self.log()[-5000:]}")
            return re.search(pattern, self.log()[start:])

        match: re.Match[str] = wait_for(found, timeout, what=f"daemon log {pattern!r}", details=self.log)
        return match

    def send(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        self.send(sig)
        return self.proc.wait(timeout)


@dataclass
class Topology:
    lab: Lab
    frr_ns: Namespace
    spk: Namespace
    hs: Namespace
    vm1: Namespace
    vm2: Namespace
    frr: FrrRouter
    config_path: Path
    daemons: list[DaemonProcess] = field(default_factory=list)

    def write_config(self, text: str) -> None:
        self.config_path.write_text(text)

    @property
    def socket(self) -> Path:
        return self.lab.workdir / "control.sock"

    def control(self, *words: str) -> subprocess.CompletedProcess[str]:
        """``evpn-speaker WORDS... --socket <ours>`` (show, clear, reload)."""
        return run_cli(*words, "--socket", str(self.socket))

    def start_daemon(self, *extra: str) -> DaemonProcess:
        daemon = DaemonProcess(
            self.lab,
            self.spk,
            [
                "--config",
                str(self.config_path),
                "--socket",
                str(self.socket),
                "--log-level",
                "info,dataplane=debug",
                *extra,
            ],
            f"speaker-{len(self.daemons)}",
        )
        self.daemons.append(daemon)
        daemon.wait_log(r"evpn-speaker running")
        return daemon

    def attach_vm1(self, vni: int = VNI) -> None:
        """vm1's veth into br-hs-<vni> in the host namespace (the bridge is the daemon's)."""
        self.hs.ip("link", "set", "to-vm1", "master", f"br-hs-{vni}", "up")

    def wait_established(self, timeout: float = 30.0) -> None:
        self.frr.wait_established(SPK_IP, timeout)

    def frr_summary_peer(self) -> dict[str, Any]:
        data = self.frr.vtysh_json("show bgp summary")
        peers: dict[str, Any] = data["l2VpnEvpn"]["peers"]
        return dict(peers[SPK_IP])

    def ping(self, src: Namespace, dst: str, count: int = 3, timeout: float = 30.0) -> str:
        result = src.run(
            ["ping", "-c", str(count), "-i", "0.2", "-W", "1", dst], check=False, timeout=timeout
        )
        return result.stdout

    def wait_remote_mac(self, mac: str = VM2_MAC, timeout: float = 15.0) -> None:
        wait_for(
            lambda: any(mac in line and "dst" in line for line in self.kernel_entries()[0]),
            timeout,
            what=f"remote MAC {mac} in our FDB",
        )

    def wait_ping(self, src: Namespace, dst: str, timeout: float = 30.0) -> None:
        wait_for(
            lambda: src.run(["ping", "-c", "1", "-W", "1", dst], check=False).returncode == 0,
            timeout,
            what=f"ping {dst} from {src.name}",
        )

    def kernel_entries(self) -> tuple[list[str], list[str]]:
        """Our namespace's remote FDB entries on vni* and ``extern_learn`` neighbours on br-pe-* (sorted)."""
        fdb = [
            line.strip()
            for line in self.spk.bridge("fdb", "show").splitlines()
            if " dev vni" in f" {line}" and ("dst" in line or "extern_learn" in line)
        ]
        neigh = [
            line.strip()
            for line in self.spk.ip("neigh", "show").splitlines()
            if "br-pe-" in line and "extern_learn" in line
        ]
        return sorted(fdb), sorted(neigh)


def build(lab: Lab, *, graceful_restart: bool = True) -> Topology:
    frr_ns, spk, hs = lab.namespace("frr"), lab.namespace("spk"), lab.namespace("hs")
    vm1, vm2 = lab.namespace("vm1"), lab.namespace("vm2")
    for ns in (vm1, vm2):
        ns.disable_ipv6()
    lab.veth(frr_ns, spk, f"{FRR_IP}/30", f"{SPK_IP}/30")
    create_l2vni(frr_ns, VNI, FRR_VTEP)
    frr_ns.add_route(f"{SPK_VTEP}/32", via=SPK_IP)
    spk.add_route(f"{FRR_VTEP}/32", via=FRR_IP)
    # vm2 behind FRR
    lab.veth(vm2, frr_ns, f"{VM2_IP}/24", None)
    vm2.ip("link", "set", "to-frr", "address", VM2_MAC)
    frr_ns.ip("link", "set", "to-vm2", "master", f"br-pe-{VNI}", "up")
    # vm1 behind us: its peer end waits in the host namespace until the daemon made br-hs-110
    lab.veth(vm1, hs, f"{VM1_IP}/24", None)
    vm1.ip("link", "set", "to-hs", "address", VM1_MAC)
    frr = lab.frr(frr_ns, frr_config(graceful_restart))
    config_path = lab.workdir / "speaker.yaml"
    config_path.write_text(speaker_config(hs.name))
    return Topology(lab, frr_ns, spk, hs, vm1, vm2, frr, config_path)


def frr_macs(topo: Topology, vni: int = VNI) -> dict[str, dict[str, Any]]:
    return topo.frr.evpn_macs(vni)


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:4000]


def now() -> float:
    return time.monotonic()


def neighbor_counters(topo: Topology) -> tuple[int, int]:
    """FRR's (connectionsEstablished, connectionsDropped) for our session."""
    data = topo.frr.vtysh_json(f"show bgp neighbors {SPK_IP} json")[SPK_IP]
    return int(data.get("connectionsEstablished", 0)), int(data.get("connectionsDropped", 0))


def start_ping(topo: Topology, src: Namespace, dst: str, seconds: float, name: str) -> tuple[Any, Path]:
    """A ``ping -i 0.05`` for ``seconds`` in the background; returns the process and its output file."""
    count = int(seconds / 0.05)
    proc = topo.lab.popen(src, ["ping", "-i", "0.05", "-W", "1", "-c", str(count), dst], name=name)
    return proc, topo.lab.workdir / f"{name}.log"


def ping_loss(proc: Any, path: Path, timeout: float = 60.0) -> tuple[int, int, str]:
    """(transmitted, received, output) of a finished background ping."""
    proc.wait(timeout)
    out = path.read_text()
    match = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert match, out
    return int(match.group(1)), int(match.group(2)), out
