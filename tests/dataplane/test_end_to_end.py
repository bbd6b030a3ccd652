"""Two leaves without BGP: the plumbing on each, deltas given by hand (what the core would compute),
real traffic between host namespaces across VXLAN, a VM move, and an L3VNI with the netns VRF backend."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
from scapy.all import AsyncSniffer
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from dataplane import netns
from dataplane.interface import LinkChanged, LocalEvent
from dataplane.monitor import Monitor
from dataplane.plumbing import Plumbing
from dataplane.reconciler import KernelDataplane
from evpn.config import HostBridge, L2Vni, SpeakerConfig
from evpn.dataplane_state import DataplaneDelta, FdbEntry, FloodEntry, NeighEntry, RouteEntry
from evpn.events import LocalMacAged, LocalMacLearned, LocalNeighLearned
from evpn.mac import MacAddress
from tests.dataplane.conftest import Leaf, LeafFactory, leaf_config, red
from tests.lab import Lab, Namespace

VTEP = {1: ipaddress.ip_address("100.65.0.1"), 2: ipaddress.ip_address("100.65.0.2")}


def vm_mac(last: int) -> MacAddress:
    return MacAddress.from_text(f"02:aa:00:00:00:{last:02x}")


@dataclass
class Fabric:
    lab: Lab
    underlay: Namespace
    leaves: dict[int, Leaf]


async def fabric(lab: Lab, make_leaf: LeafFactory, configs: dict[int, SpeakerConfig]) -> Fabric:
    """Leaves 1 and 2 on an underlay bridge ``fab`` (10.10.0.<n>/24), each with a route to the other's VTEP."""
    underlay = lab.namespace("und")
    underlay.ip("link", "add", "fab", "type", "bridge")
    underlay.link_up("fab")
    leaves = {}
    for n, config in configs.items():
        leaf = make_leaf(f"l{n}", config)
        router = next(ns for ns in lab.namespaces if ns.name == leaf.router)
        lab.veth(router, underlay, f"10.10.0.{n}/24", a_ifname="uplink", b_ifname=f"p{n}")
        underlay.ip("link", "set", f"p{n}", "master", "fab")
        await Plumbing(leaf.layout).apply_async()
        leaves[n] = leaf
    for n in configs:
        other = 3 - n
        next(ns for ns in lab.namespaces if ns.name == leaves[n].router).add_route(
            f"{VTEP[other]}/32", via=f"10.10.0.{other}"
        )
    return Fabric(lab, underlay, leaves)


def add_vm(
    lab: Lab, leaf: Leaf, role: str, last: int, cidr: str, gateway: str, bridge: str = "br-hs-110"
) -> Namespace:
    """A VM namespace with ``eth0`` (MAC 02:aa::<last>) on the host bridge of ``leaf``; IPv6 off, no chatter."""
    vm = lab.namespace(role)
    vm.disable_ipv6()
    host = next(ns for ns in lab.namespaces if ns.name == leaf.host)
    lab.veth(vm, host, a_ifname="eth0", b_ifname=f"{role}p")
    vm.ip("link", "set", "eth0", "address", str(vm_mac(last)))
    vm.add_address("eth0", cidr)
    vm.add_route("default", via=gateway)
    host.ip("link", "set", f"{role}p", "master", bridge)
    return vm


def ping(vm: Namespace, target: str, count: int = 1) -> bool:
    return vm.run(["ping", "-c", str(count), "-W", "1", "-i", "0.2", target], check=False).returncode == 0


def l2_entries(
    mac: MacAddress, ip: str, vtep: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> tuple[FdbEntry, FloodEntry, NeighEntry]:
    return FdbEntry(110, mac, vtep), FloodEntry(110, vtep), NeighEntry(110, ipaddress.ip_address(ip), mac)


class Collector:
    """Runs a monitor's event stream in the background and keeps every event with its arrival time."""

    def __init__(self, monitor: Monitor) -> None:
        self.events: list[tuple[float, LocalEvent]] = []
        self._stream: AsyncIterator[LocalEvent] = monitor.events()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self._stream:
            self.events.append((time.monotonic(), event))

    async def wait_for(self, event: LocalEvent, timeout: float = 3.0, after: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, seen in self.events:
                if seen == event and when >= after:
                    return when
            await asyncio.sleep(0.002)
        raise AssertionError(f"no {event} within {timeout}s; got {[e for _, e in self.events]}")

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._stream.aclose()  # type: ignore[attr-defined]


def send_frame(vm: Namespace, frame: bytes) -> float:
    """Send a raw frame out of the VM's ``eth0``; returns the monotonic time just before sending."""
    with netns.entered(vm.name):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        sock.bind(("eth0", 0))
        sent = time.monotonic()
        sock.send(frame)
    finally:
        sock.close()
    return sent


def send_announcement(vm: Namespace, mac: MacAddress, ip: str) -> float:
    """What a VM sends after a live migration: a gratuitous ARP (IPv4) or an unsolicited NA (IPv6)."""
    if ipaddress.ip_address(ip).version == 4:
        frame = Ether(src=str(mac), dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=str(mac), psrc=ip, pdst=ip)
    else:
        frame = (
            Ether(src=str(mac), dst="33:33:00:00:00:01")
            / IPv6(src=ip, dst="ff02::1", hlim=255)
            / ICMPv6ND_NA(R=0, S=0, O=1, tgt=ip)
            / ICMPv6NDOptDstLLAddr(lladdr=str(mac))
        )
    return send_frame(vm, bytes(frame))


async def apply_all(dps: Sequence[tuple[KernelDataplane, DataplaneDelta]]) -> None:
    for dp, delta in dps:
        result = await dp.apply(delta)
        assert result.ok, result.failures


async def test_l2vni_across_vxlan_and_a_vm_move(lab: Lab, make_leaf: LeafFactory) -> None:
    fab = await fabric(lab, make_leaf, {1: leaf_config(1), 2: leaf_config(2)})
    leaf1, leaf2 = fab.leaves[1], fab.leaves[2]
    vm3 = add_vm(lab, leaf1, "vm3", 3, "192.170.1.3/24", "192.170.1.1")
    vm30 = add_vm(lab, leaf2, "vm30", 30, "192.170.1.30/24", "192.170.1.1")
    vm31 = add_vm(lab, leaf2, "vm31", 31, "192.170.1.31/24", "192.170.1.1")
    dp1, dp2 = KernelDataplane(leaf1.layout), KernelDataplane(leaf2.layout)
    collector = Collector(Monitor(leaf1.layout))
    try:
        # what the core would install from each other's type-2 and type-3 routes
        await apply_all(
            [
                (
                    dp1,
                    DataplaneDelta(
                        add=(
                            *l2_entries(vm_mac(30), "192.170.1.30", VTEP[2]),
                            FdbEntry(110, vm_mac(31), VTEP[2]),
                        )
                    ),
                ),
                (dp2, DataplaneDelta(add=l2_entries(vm_mac(3), "192.170.1.3", VTEP[1]))),
            ]
        )
        with netns.entered(fab.underlay.name):
            sniffer = AsyncSniffer(iface="fab", filter="udp port 4789", store=True)
            sniffer.start()
        await asyncio.sleep(0.3)
        assert await asyncio.to_thread(ping, vm3, "192.170.1.30", 3)
        packets = sniffer.stop()
        assert packets is not None
        vnis = {p[VXLAN].vni for p in packets if VXLAN in p}
        assert vnis == {110}, [p.summary() for p in packets]
        # leaf1 learned its own VM: MAC from the bridge, MAC+IP from the ARP/neighbour on the SVI
        await collector.wait_for(LocalMacLearned(110, vm_mac(3)))

        # the VM moves to leaf1: gone from leaf2, same MAC and IP behind leaf1, announces itself with a GARP
        next(ns for ns in lab.namespaces if ns.name == leaf2.host).ip("link", "del", "vm30p")
        vm30.delete()
        moved = add_vm(lab, leaf1, "vm30b", 30, "192.170.1.30/24", "192.170.1.1")
        sent = await asyncio.to_thread(send_announcement, moved, vm_mac(30), "192.170.1.30")
        learned = await collector.wait_for(LocalMacLearned(110, vm_mac(30)), after=sent)
        assert learned - sent < 0.25, f"took {learned - sent:.3f}s"
        await collector.wait_for(
            LocalNeighLearned(110, ipaddress.ip_address("192.170.1.30"), vm_mac(30)), after=sent
        )

        # the core's reaction: leaf1 drops its remote entry, leaf2 points the MAC at leaf1
        await apply_all(
            [
                (
                    dp1,
                    DataplaneDelta(
                        remove=(
                            FdbEntry(110, vm_mac(30), VTEP[2]),
                            NeighEntry(110, ipaddress.ip_address("192.170.1.30"), vm_mac(30)),
                        )
                    ),
                ),
                (
                    dp2,
                    DataplaneDelta(
                        add=(
                            FdbEntry(110, vm_mac(30), VTEP[1]),
                            NeighEntry(110, ipaddress.ip_address("192.170.1.30"), vm_mac(30)),
                        )
                    ),
                ),
            ]
        )
        assert await asyncio.to_thread(ping, vm31, "192.170.1.30", 2)
        assert await asyncio.to_thread(ping, vm3, "192.170.1.30", 2)
    finally:
        await collector.close()
        await dp1.close()
        await dp2.close()


async def test_l3vni_netns_backend_routes_between_subnets(lab: Lab, make_leaf: LeafFactory) -> None:
    def l2(vni: int, subnet: int) -> tuple[L2Vni, ...]:
        return (
            L2Vni(
                name=f"l2-{vni}",
                vni=vni,
                vrf="red",
                host_bridge=HostBridge(),
                gateway_ips=(ipaddress.ip_interface(f"192.170.{subnet}.1/24"),),
            ),
        )

    fab = await fabric(
        lab,
        make_leaf,
        {
            1: leaf_config(1, l2=l2(110, 1), l3=(red(1),)),
            2: leaf_config(2, l2=l2(120, 2), l3=(red(2),)),
        },
    )
    leaf1, leaf2 = fab.leaves[1], fab.leaves[2]
    vm3 = add_vm(lab, leaf1, "vm3", 3, "192.170.1.3/24", "192.170.1.1")
    add_vm(lab, leaf2, "vm30", 30, "192.170.2.30/24", "192.170.2.1", bridge="br-hs-120")
    rmac = {1: red(1).router_mac, 2: red(2).router_mac}
    assert rmac[1] is not None and rmac[2] is not None
    dp1, dp2 = KernelDataplane(leaf1.layout), KernelDataplane(leaf2.layout)
    collector = Collector(Monitor(leaf1.layout))  # the L2VNI's bridge lives in the VRF namespace here
    try:
        deltas = []
        for here, there, subnet in ((dp1, 2, "192.170.2.0/24"), (dp2, 1, "192.170.1.0/24")):
            mac = rmac[there]
            assert mac is not None
            deltas.append(
                (
                    here,
                    DataplaneDelta(
                        add=(
                            RouteEntry("red", 100, ipaddress.ip_network(subnet), VTEP[there]),
                            FdbEntry(100, mac, VTEP[there]),
                            NeighEntry(100, VTEP[there], mac),
                        )
                    ),
                )
            )
        await apply_all(deltas)
        assert await asyncio.to_thread(ping, vm3, "192.170.2.30", 3)
        await collector.wait_for(LocalMacLearned(110, vm_mac(3)))
        await collector.wait_for(LocalNeighLearned(110, ipaddress.ip_address("192.170.1.3"), vm_mac(3)))
    finally:
        await collector.close()
        await dp1.close()
        await dp2.close()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
async def test_monitor_reports_neighbours_and_reprobes_stale(
    lab: Lab, make_leaf: LeafFactory, family: str
) -> None:
    config = leaf_config(
        1,
        l2=(
            L2Vni(
                name="l2",
                vni=110,
                host_bridge=HostBridge(),
                gateway_ips=(
                    ipaddress.ip_interface("192.170.1.1/24"),
                    ipaddress.ip_interface("fd00:170:1::1/64"),
                ),
            ),
        ),
    )
    leaf = make_leaf("mon", config)
    await Plumbing(leaf.layout).apply_async()
    vm = add_vm(lab, leaf, "vm3", 3, "192.170.1.3/24", "192.170.1.1")
    router = next(ns for ns in lab.namespaces if ns.name == leaf.router)
    monitor = Monitor(leaf.layout, probe_interval=0.3)
    collector = Collector(monitor)
    try:
        await asyncio.sleep(0.1)  # subscribed
        ip = "fd00:170:1::3" if family == "ipv6" else "192.170.1.3"
        # the first frame of a (migrated) VM: a GARP or an unsolicited NA; no ping, no prior ARP/ND
        sent = await asyncio.to_thread(send_announcement, vm, vm_mac(3), ip)
        mac_at = await collector.wait_for(LocalMacLearned(110, vm_mac(3)), after=sent)
        neigh_at = await collector.wait_for(
            LocalNeighLearned(110, ipaddress.ip_address(ip), vm_mac(3)), after=sent
        )
        assert max(mac_at, neigh_at) - sent < 0.25, (mac_at - sent, neigh_at - sent)
        if family == "ipv6":  # from now on the VM answers neighbour solicitations
            vm.sysctl({"net.ipv6.conf.all.disable_ipv6": 0, "net.ipv6.conf.eth0.disable_ipv6": 0})
            vm.ip("addr", "add", f"{ip}/64", "dev", "eth0", "nodad")
        # force STALE: the monitor probes it, the kernel asks the host, the entry becomes REACHABLE again
        router.ip("neigh", "change", ip, "dev", "br-pe-110", "lladdr", str(vm_mac(3)), "nud", "stale")

        def state() -> str:
            return router.ip("neigh", "show", ip, "dev", "br-pe-110")

        deadline = time.monotonic() + 5
        while "REACHABLE" not in state() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert "REACHABLE" in state(), state()
        # link state of the devices of a VNI
        router.ip("link", "set", "pe-e-110", "down")
        await collector.wait_for(LinkChanged("pe-e-110", 110, up=False))
        await collector.wait_for(LocalMacAged(110, vm_mac(3)))  # the port's MACs are flushed
        router.ip("link", "set", "pe-e-110", "up")
        await collector.wait_for(LinkChanged("pe-e-110", 110, up=True))
    finally:
        await collector.close()
