"""Two leaves and a spine in network namespaces: the seed's multi-cluster KubeVirt example, live.

Run it with ``examples/two-leaf`` (root). Topology (every namespace, process and device is removed at the
end, also on Ctrl-C or failure)::

                         spine: FRR bgpd, iBGP route reflector (AS 64512), l2vpn evpn
                   192.168.11.1 /            \\ 192.168.12.1
                  192.168.11.2 /              \\ 192.168.12.2
    leaf1: evpn-speaker run (VTEP 100.65.0.1)   leaf2: FRR zebra+bgpd advertise-all-vni (VTEP 100.65.0.2)
      VRF red (netns), L3VNI 100                  (--peer evpn-speaker: a second evpn-speaker)
      L2VNI 110, gateway 192.170.1.1/24           L2VNI 110 (br-pe-110 + vni110), gateway 192.170.1.1/24
      host side: br-hs-110                        bridge port to-h30
            |                                           |
       host .3  192.170.1.3                        host .30 192.170.1.30   (moved to leaf1 at the end)

The L3VNI (VRF red, VNI 100) is on the evpn-speaker leaves. FRR's leaf keeps the L2VNI and its gateway
address in its default table: FRR's L3VNI needs a VRF, and this kernel has no VRF device (FRR's other
option, ``zebra -n`` with one network namespace per VRF, ties the whole zebra to that mode; DESIGN.md §5-6).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab import FrrRouter, Lab, Namespace, create_l2vni, wait_for  # noqa: E402

ASN = 64512
VNI, L3VNI = 110, 100
GATEWAY = "192.170.1.1"
SPINE_ID = "10.0.0.100"
PROGRAM = [sys.executable, "-m", "speaker.cli"]


@dataclass(frozen=True)
class LeafPlan:
    """Addresses of one leaf."""

    role: str  # namespace role: leaf1 / leaf2
    spine_ip: str  # spine's end of the link
    ip: str  # leaf's end of the link
    vtep: str
    router_id: str


@dataclass(frozen=True)
class HostPlan:
    role: str
    ip: str
    mac: str


LEAF1 = LeafPlan("leaf1", "192.168.11.1", "192.168.11.2", "100.65.0.1", "10.0.0.1")
LEAF2 = LeafPlan("leaf2", "192.168.12.1", "192.168.12.2", "100.65.0.2", "10.0.0.2")
HOST3 = HostPlan("h3", "192.170.1.3", "02:00:c0:aa:01:03")
HOST30 = HostPlan("h30", "192.170.1.30", "02:00:c0:aa:01:1e")


class CheckFailed(Exception):
    """A check of the demo did not pass."""


# -------------------------------------------------------------------------------------------------------
# output


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    say(f"\n==> {text}")


def ok(text: str) -> None:
    say(f"  [ok] {text}")


def side_by_side(left_title: str, left: str, right_title: str, right: str, width: int = 100) -> str:
    """Two blocks of text in columns (each column ``width`` wide; long lines are cut)."""
    lines_l = [left_title, "-" * min(width - 2, len(left_title) + 4), *left.rstrip().splitlines()]
    lines_r = [right_title, "-" * min(width - 2, len(right_title) + 4), *right.rstrip().splitlines()]
    rows = []
    for i in range(max(len(lines_l), len(lines_r))):
        a = lines_l[i] if i < len(lines_l) else ""
        b = lines_r[i] if i < len(lines_r) else ""
        a = a if len(a) < width - 1 else a[: width - 2] + "~"
        rows.append(f"  {a:<{width}} | {b}".rstrip())
    return "\n".join(rows)


# -------------------------------------------------------------------------------------------------------
# leaves


def frr_leaf_config(plan: LeafPlan) -> str:
    return f"""
router bgp {ASN}
 bgp router-id {plan.router_id}
 no bgp default ipv4-unicast
 neighbor {plan.spine_ip} remote-as {ASN}
 neighbor {plan.spine_ip} timers 3 9
 neighbor {plan.spine_ip} timers connect 1
 address-family l2vpn evpn
  neighbor {plan.spine_ip} activate
  advertise-all-vni
 exit-address-family
"""


def spine_config(leaves: tuple[LeafPlan, ...]) -> str:
    neighbors = "".join(
        f" neighbor {p.ip} remote-as {ASN}\n neighbor {p.ip} timers 3 9\n neighbor {p.ip} timers connect 1\n"
        for p in leaves
    )
    af = "".join(f"  neighbor {p.ip} activate\n  neighbor {p.ip} route-reflector-client\n" for p in leaves)
    return f"""
router bgp {ASN}
 bgp router-id {SPINE_ID}
 no bgp default ipv4-unicast
{neighbors} address-family l2vpn evpn
{af} exit-address-family
"""


def speaker_config(plan: LeafPlan, host_netns: str, vrf: str) -> str:
    return f"""# evpn-speaker native configuration (speaker/CONFIG.md) for {plan.role}
version: 1
underlay:
  asn: {ASN}
  router_id: {plan.router_id}
  vtep:
    ipv4: {plan.vtep}
  neighbors:
    - address: {plan.spine_ip}
      asn: {ASN}
      description: spine
      timers: {{keepalive: 3, hold: 9, connect_retry: 1}}
l3vnis:
  - name: red
    vni: {L3VNI}
    vrf: {vrf}
l2vnis:
  - name: layer2
    vni: {VNI}
    vrf: {vrf}
    host_bridge: {{mode: managed}}
    gateway_ips: [{GATEWAY}/24]
host_netns: {host_netns}
vrf_backend: netns
"""


def normalize_mac_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """The fields both FRR and evpn-speaker show for a MAC: type, remoteVtep, localSequence, remoteSequence."""
    out: dict[str, Any] = {"type": entry.get("type")}
    if entry.get("type") == "remote":
        out["remoteVtep"] = entry.get("remoteVtep")
    for key in ("localSequence", "remoteSequence"):
        if key in entry:
            out[key] = int(entry[key])
    return out


@dataclass
class Leaf:
    """One leaf router: FRR or evpn-speaker, with the same queries for both."""

    plan: LeafPlan
    ns: Namespace
    kind: str  # "frr" | "evpn-speaker"
    host_side: Namespace  # where the hosts' veth ends are bridged (FRR: the leaf; speaker: its host netns)
    frr: FrrRouter | None = None
    socket: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    vrf: Namespace | None = None

    @property
    def title(self) -> str:
        return f"{self.plan.role} ({self.kind})"

    def host_bridge(self) -> str:
        return f"br-pe-{VNI}" if self.kind == "frr" else f"br-hs-{VNI}"

    def control(self, *words: str) -> str:
        assert self.socket is not None
        result = subprocess.run(
            [*PROGRAM, *words, "--socket", str(self.socket)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
            check=False,
        )
        if result.returncode != 0:
            raise CheckFailed(f"evpn-speaker {' '.join(words)}: rc={result.returncode}: {result.stderr}")
        return result.stdout

    def show(self, command: str) -> str:
        """``command`` as text: ``vtysh -c`` for FRR, ``evpn-speaker ... --socket`` for ours."""
        if self.frr is not None:
            return self.frr.vtysh(command)
        return self.control(*command.split())

    def show_command(self, command: str) -> str:
        if self.frr is not None:
            return f"vtysh -c '{command}'"
        return f"evpn-speaker {command}"

    def macs(self) -> dict[str, dict[str, Any]]:
        """``show evpn mac vni 110`` as JSON: MAC -> entry (FRR's keys)."""
        if self.frr is not None:
            return self.frr.evpn_macs(VNI)
        data = json.loads(self.control("show", "evpn", "mac", "vni", str(VNI), "--json"))
        macs: dict[str, dict[str, Any]] = data.get("macs", {})
        return macs

    def peer_state(self, peer: str) -> str | None:
        """The BGP state of ``peer`` from ``show bgp summary`` JSON."""
        if self.frr is not None:
            data = self.frr.vtysh_json("show bgp summary")
            peers = data.get("l2VpnEvpn", {}).get("peers", {})
        else:
            data = json.loads(self.control("show", "bgp", "summary", "--json"))
            peers = data.get("l2VpnEvpn", data).get("peers", {})
        info = peers.get(peer)
        return str(info.get("state")) if isinstance(info, dict) else None

    def log_tail(self, lines: int = 60) -> str:
        if self.frr is not None:
            return self.frr.logs(lines)
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Topology:
    lab: Lab
    spine_ns: Namespace
    spine: FrrRouter
    leaf1: Leaf
    leaf2: Leaf
    h3: Namespace
    h30: Namespace
    h30_leaf: Leaf = field(init=False)

    def __post_init__(self) -> None:
        self.h30_leaf = self.leaf2

    @property
    def leaves(self) -> tuple[Leaf, Leaf]:
        return (self.leaf1, self.leaf2)


def start_speaker(lab: Lab, plan: LeafPlan, ns: Namespace, hs: Namespace, vrf: Namespace) -> Leaf:
    config = lab.workdir / f"{plan.role}.yaml"
    config.write_text(speaker_config(plan, hs.name, vrf.name))
    socket = lab.workdir / f"{plan.role}.sock"
    name = f"evpn-speaker-{plan.role}"
    args = ["run", "--config", str(config), "--socket", str(socket), "--log-format", "text"]
    proc = lab.popen(ns, [*PROGRAM, *args], name=name, cwd=ROOT)
    log_path = lab.workdir / f"{name}.log"
    leaf = Leaf(plan, ns, "evpn-speaker", hs, socket=socket, proc=proc, log_path=log_path, vrf=vrf)

    def running() -> bool:
        if proc.poll() is not None:
            raise CheckFailed(f"{name} exited rc={proc.returncode}:\n{leaf.log_tail()}")
        return "evpn-speaker running" in log_path.read_text(errors="replace")

    wait_for(running, 30, what=f"{name} to start", details=leaf.log_tail)
    return leaf


def build(lab: Lab, peer: str = "frr") -> Topology:
    """Namespaces, links, the spine, both leaves (started) and the two hosts (attached)."""
    spine_ns = lab.namespace("spine")
    spine_ns.enable_forwarding()
    leaf_ns = {p.role: lab.namespace(p.role) for p in (LEAF1, LEAF2)}
    for plan in (LEAF1, LEAF2):
        ns = leaf_ns[plan.role]
        lab.veth(spine_ns, ns, f"{plan.spine_ip}/30", f"{plan.ip}/30")
        spine_ns.add_route(f"{plan.vtep}/32", via=plan.ip)
        other = LEAF2 if plan is LEAF1 else LEAF1
        ns.add_route(f"{other.vtep}/32", via=plan.spine_ip)
    spine = lab.frr(spine_ns, spine_config((LEAF1, LEAF2)))

    # leaf1: evpn-speaker, with its host namespace and the VRF red namespace created beforehand
    hs1, red1 = lab.namespace("hs1"), lab.namespace("red1")
    leaf1 = start_speaker(lab, LEAF1, leaf_ns["leaf1"], hs1, red1)

    # leaf2: FRR with the kernel devices advertise-all-vni needs, or a second evpn-speaker
    ns2 = leaf_ns["leaf2"]
    if peer == "frr":
        ns2.enable_forwarding()
        create_l2vni(ns2, VNI, LEAF2.vtep, gateway=f"{GATEWAY}/24")
        frr = lab.frr(ns2, frr_leaf_config(LEAF2))
        leaf2 = Leaf(LEAF2, ns2, "frr", ns2, frr=frr)
    else:
        hs2, red2 = lab.namespace("hs2"), lab.namespace("red2")
        leaf2 = start_speaker(lab, LEAF2, ns2, hs2, red2)

    # hosts: veth into the host side, default route via the anycast gateway
    h3, h30 = lab.namespace(HOST3.role), lab.namespace(HOST30.role)
    for host, ns, leaf in ((HOST3, h3, leaf1), (HOST30, h30, leaf2)):
        ns.disable_ipv6()
        lab.veth(ns, leaf.host_side, f"{host.ip}/24", None, a_ifname="eth0", b_ifname=f"to-{host.role}")
        ns.ip("link", "set", "eth0", "address", host.mac)
        ns.add_route("default", via=GATEWAY)
    topo = Topology(lab, spine_ns, spine, leaf1, leaf2, h3, h30)
    for leaf in topo.leaves:
        wait_for(
            lambda leaf=leaf: leaf.host_bridge() in leaf.host_side.ip("link", "show"),  # type: ignore[misc]
            20,
            what=f"{leaf.host_bridge()} on {leaf.title}",
        )
    attach(topo.leaf1, HOST3)
    attach(topo.leaf2, HOST30)
    return topo


def attach(leaf: Leaf, host: HostPlan) -> None:
    leaf.host_side.ip("link", "set", f"to-{host.role}", "master", leaf.host_bridge(), "up")


# -------------------------------------------------------------------------------------------------------
# checks


def wait_established(topo: Topology, timeout: float = 40.0) -> None:
    for leaf in topo.leaves:
        topo.spine.wait_established(leaf.plan.ip, timeout)
        wait_for(
            lambda leaf=leaf: leaf.peer_state(leaf.plan.spine_ip) == "Established",  # type: ignore[misc]
            timeout,
            what=f"{leaf.title}: spine Established",
            details=leaf.log_tail,
        )


def ping(src: Namespace, dst: str, count: int = 3) -> str:
    """Ping until one answer arrives (ARP/MAC learning), then ``count`` pings that must all be answered."""
    wait_for(
        lambda: src.run(["ping", "-c", "1", "-W", "1", dst], check=False).returncode == 0,
        30,
        what=f"ping {dst} from {src.role}",
    )
    out = src.run(["ping", "-c", str(count), "-i", "0.2", "-W", "1", dst], check=False).stdout
    match = re.search(r"\d+ packets transmitted, \d+ received, [\d.]+% packet loss", out)
    if " 0% packet loss" not in out:
        raise CheckFailed(f"ping {dst} from {src.role}: {out}")
    return match.group(0) if match else out.strip()


def wait_mac(
    leaf: Leaf,
    mac: str,
    kind: str,
    *,
    vtep: str | None = None,
    seq: int | None = None,
    timeout: float = 25.0,
) -> dict[str, Any]:
    """Wait until ``leaf`` shows ``mac`` as ``kind`` (from ``vtep``, with sequence ``seq``); the entry."""
    seq_key = "localSequence" if kind == "local" else "remoteSequence"

    def matches() -> dict[str, Any] | None:
        entry = leaf.macs().get(mac)
        if not entry or entry.get("type") != kind:
            return None
        if vtep is not None and entry.get("remoteVtep") != vtep:
            return None
        if seq is not None and int(entry.get(seq_key, -1)) != seq:
            return None
        return entry

    def details() -> str:
        return f"{leaf.title} macs: {json.dumps(leaf.macs(), indent=1)}\n{leaf.log_tail(30)}"

    what = (
        f"{mac} {kind} on {leaf.title}"
        + (f" from {vtep}" if vtep else "")
        + (f" with {seq_key} {seq}" if seq is not None else "")
    )
    try:
        entry: dict[str, Any] = wait_for(matches, timeout, what=what, details=details)
    except TimeoutError as exc:
        raise CheckFailed(str(exc)) from exc
    return entry


def show_both(topo: Topology, command: str) -> None:
    a, b = topo.leaf1, topo.leaf2
    say(
        side_by_side(
            f"{a.title}$ {a.show_command(command)}",
            a.show(command),
            f"{b.title}$ {b.show_command(command)}",
            b.show(command),
        )
    )


def garp(host: Namespace, plan: HostPlan, iface: str) -> None:
    """A gratuitous ARP from the host (what QEMU/KubeVirt sends after a live migration), with scapy."""
    script = (
        "from scapy.all import ARP, Ether, sendp\n"
        f"p = Ether(src='{plan.mac}', dst='ff:ff:ff:ff:ff:ff') / ARP(op=1, hwsrc='{plan.mac}', "
        f"psrc='{plan.ip}', hwdst='00:00:00:00:00:00', pdst='{plan.ip}')\n"
        f"sendp(p, iface='{iface}', count=3, inter=0.1, verbose=False)\n"
    )
    host.run([sys.executable, "-c", script], timeout=30)


MOVED_IF = "eth1"


def move_host30(topo: Topology) -> None:
    """Live-migrate host .30 from leaf2 to leaf1: plug it into leaf1, GARP, then unplug it from leaf2.

    As in a KubeVirt live migration, the MAC appears behind leaf1 while leaf2 still advertises it (its old
    port is still there, silent), so leaf1 advertises it with MAC Mobility sequence 1 and leaf2 gives way.
    A new veth carries the same MAC and IP: moving the old one would make leaf2's bridge forget the MAC,
    and leaf2 withdraw it, before leaf1 sees it (a fresh MAC, sequence 0).
    """
    h30, dst = topo.h30, topo.leaf1.host_side
    dev = f"to-{HOST30.role}m"
    h30.ip("addr", "flush", "dev", "eth0")
    topo.lab.veth(h30, dst, f"{HOST30.ip}/24", None, a_ifname=MOVED_IF, b_ifname=dev)
    h30.ip("link", "set", MOVED_IF, "address", HOST30.mac)
    h30.add_route("default", via=GATEWAY)
    dst.ip("link", "set", dev, "master", topo.leaf1.host_bridge(), "up")
    topo.h30_leaf = topo.leaf1
    garp(h30, HOST30, MOVED_IF)


def unplug_old_port(topo: Topology) -> None:
    """Remove host .30's old veth from leaf2 (the source side of the migration is gone)."""
    topo.h30.ip("link", "del", "eth0")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP raise KeyboardInterrupt so that the lab cleans up as on Ctrl-C."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_demo(lab: Lab, peer: str) -> None:
    t0 = time.monotonic()
    step(
        "build: spine (FRR route reflector), leaf1 (evpn-speaker), "
        f"leaf2 ({'FRR' if peer == 'frr' else 'evpn-speaker'}), hosts 192.170.1.3 and 192.170.1.30"
    )
    topo = build(lab, peer)
    ok(f"namespaces: {', '.join(ns.name for ns in lab.namespaces)}")
    if peer == "frr":
        say(
            "  note: L3VNI 100 / VRF red runs on leaf1 (evpn-speaker, VRF as a network namespace);"
            " FRR's leaf2 has L2VNI 110\n"
            "        with the gateway 192.170.1.1/24 on br-pe-110 in its default table (FRR's L3VNI needs a"
            " VRF device, absent here)"
        )

    step("BGP sessions to the spine")
    wait_established(topo)
    ok("leaf1 <-> spine Established, leaf2 <-> spine Established")

    step("ping across the stretched L2 (VNI 110) and to the anycast gateway")
    ok(f"192.170.1.3 -> 192.170.1.30: {ping(topo.h3, HOST30.ip)}")
    ok(f"192.170.1.30 -> 192.170.1.3: {ping(topo.h30, HOST3.ip)}")
    ok(f"192.170.1.3 -> gateway 192.170.1.1 (leaf1): {ping(topo.h3, GATEWAY)}")
    ok(f"192.170.1.30 -> gateway 192.170.1.1 (leaf2): {ping(topo.h30, GATEWAY)}")

    step("MACs learned and exchanged over EVPN (type-2 routes)")
    wait_mac(topo.leaf1, HOST3.mac, "local")
    wait_mac(topo.leaf1, HOST30.mac, "remote", vtep=LEAF2.vtep)
    wait_mac(topo.leaf2, HOST30.mac, "local")
    wait_mac(topo.leaf2, HOST3.mac, "remote", vtep=LEAF1.vtep)
    ok(f"{HOST3.mac} (.3) local on leaf1, remote on leaf2 via {LEAF1.vtep}")
    ok(f"{HOST30.mac} (.30) local on leaf2, remote on leaf1 via {LEAF2.vtep}")
    show_both(topo, "show bgp summary")
    say()
    show_both(topo, f"show evpn mac vni {VNI}")

    step("move host 192.170.1.30 from leaf2 to leaf1 (live migration: plug it into leaf1, gratuitous ARP)")
    move_host30(topo)
    ok(
        "host .30 plugged into leaf1's br-hs-110 (same MAC and IP), GARP sent; its old port on leaf2 is silent"
    )
    local = wait_mac(topo.leaf1, HOST30.mac, "local", seq=1)
    remote = wait_mac(topo.leaf2, HOST30.mac, "remote", vtep=LEAF1.vtep, seq=1)
    ok(
        f"{HOST30.mac}: local on leaf1 with sequence {local.get('localSequence')}, "
        f"remote on leaf2 via {remote.get('remoteVtep')} with sequence {remote.get('remoteSequence')}"
    )
    show_both(topo, f"show evpn mac vni {VNI}")
    unplug_old_port(topo)
    ok("host .30's old port on leaf2 removed")

    step("ping after the move")
    ok(f"192.170.1.30 -> gateway 192.170.1.1 (now leaf1): {ping(topo.h30, GATEWAY)}")
    ok(f"192.170.1.30 -> 192.170.1.3: {ping(topo.h30, HOST3.ip)}")
    ok(f"192.170.1.3 -> 192.170.1.30: {ping(topo.h3, HOST30.ip)}")

    step(f"all checks passed in {time.monotonic() - t0:.1f} s; cleaning up")


def leftovers(lab: Lab) -> list[str]:
    """Namespaces and processes of ``lab`` still present (after its cleanup: none)."""
    left = [f"namespace {p.name}" for p in Path("/run/netns").glob(f"ev{lab.id}-*")]
    marker = str(lab.workdir).encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                text = cmdline.replace(b"\0", b" ").decode(errors="replace")
                left.append(f"process {proc.name}: {text}")
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="examples/two-leaf",
        description="Build a spine and two EVPN leaves in network namespaces (root), check them, clean up.",
    )
    parser.add_argument(
        "--peer",
        choices=("frr", "evpn-speaker"),
        default="frr",
        help="what runs leaf2 (leaf1 always runs evpn-speaker); default: frr",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the work directory (configs, daemon logs) afterwards"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        say("two-leaf: needs root (network namespaces, FRR)")
        return 2
    failed, interrupted, error = True, False, ""
    with sigterm_as_interrupt():
        lab = Lab("two-leaf", keep_workdir=args.keep_logs)
        try:
            lab.__enter__()
            run_demo(lab, args.peer)
            failed = False
        except KeyboardInterrupt:
            interrupted = True
        except Exception as exc:  # any failure: report it, clean up, exit 1
            error = f"{type(exc).__name__}: {exc}"
            say(f"\n[FAIL] {error}\n(the logs of every daemon follow)")
        finally:
            # a second Ctrl-C or SIGTERM must not cut the cleanup short
            saved = {
                s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
            }
            try:
                step("cleanup: stopping daemons, deleting namespaces")
                if failed and not interrupted:
                    lab.dump_logs(sys.stdout)
                try:
                    lab.close()
                except Exception as exc:
                    say(f"  [FAIL] cleanup: {exc}")
                    failed = True
                if args.keep_logs:
                    say(f"  work directory kept: {lab.workdir}")
                else:
                    shutil.rmtree(lab.workdir, ignore_errors=True)
                if left := leftovers(lab):
                    say("  [FAIL] left behind:\n    " + "\n    ".join(left))
                    failed = True
                else:
                    ok("nothing left (namespaces, daemons, devices" + (")" if args.keep_logs else ", files)"))
            finally:
                for sig, handler in saved.items():
                    signal.signal(sig, handler)
    if interrupted:
        say("\ninterrupted: cleaned up")
        return 130
    if failed:
        say(f"\nFAILED{': ' + error if error else ''}")
        return 1
    say("\nPASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "HOST3",
    "HOST30",
    "LEAF1",
    "LEAF2",
    "CheckFailed",
    "Leaf",
    "Topology",
    "build",
    "main",
    "move_host30",
    "normalize_mac_entry",
    "ping",
    "wait_established",
    "wait_mac",
]
