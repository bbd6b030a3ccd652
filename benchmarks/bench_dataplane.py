"""Dataplane throughput: remote MACs, neighbours and routes installed and removed through the reconciler.

Run (root): ``.venv/bin/python -m benchmarks.bench_dataplane [--sizes 10000 50000] [--json OUT]``

A fresh namespace per run with the plumbing of one leaf (L2VNI 110 and L3VNI 100 "red", netns VRF backend);
then, timed separately, one ``apply`` each of:

- ``fdb``: N remote MACs (``FdbEntry``: the ``self extern_learn`` entry with its VTEP plus the bridge's
  ``master extern_learn`` entry, one ``master self`` netlink request per MAC, as zebra installs them), then
  their removal;
- ``neigh``: N remote MAC+IP neighbours on the SVI (``extern_learn``), then removal;
- ``route``: N /32 routes in the VRF (``via VTEP dev <L3 SVI> onlink proto 201``), then removal.

Every entry is accounted for by the kernel (errors per entry, an acknowledgement per batch); the run fails
if any entry fails, and the kernel is read back (``installed()``) to check the count. Figures are entries
per second.

Then, in the same run (unless ``--no-zebra`` or FRR is missing), FRR's zebra on the same FDB work
(``zebra-fdb``): FRR 8.4 (zebra + bgpd) in a namespace with ``advertise-all-vni`` and the devices of L2VNI
110; a raw BGP speaker (our codec, ~100 type-2 NLRIs per UPDATE, the injector of DESIGN §8) sends N MAC-only
type-2 routes over the same 64 VTEPs, then withdraws them. Timed from the first UPDATE sent until the kernel
holds all N ``dst VTEP self extern_learn`` entries on ``vni110`` (netlink dump every 20 ms), then until none
is left. zebra's figure includes bgpd and the 20 ms polling; ours is the reconciler alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dataplane import netns, rtnl
from dataplane.layout import Layout, Namespaces
from dataplane.plumbing import Plumbing
from dataplane.reconciler import KernelDataplane
from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.capabilities import FourOctetAs, Multiprotocol
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION
from evpn.codec.messages import Keepalive, Open
from evpn.codec.packer import UpdatePacker
from evpn.config import HostBridge, L2Vni, L3Vni, SpeakerConfig, Underlay, VrfBackend
from evpn.dataplane_state import DataplaneDelta, DataplaneEntry, FdbEntry, NeighEntry, RouteEntry
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from tests.lab import Lab, create_l2vni, frr_available

VTEPS = [ipaddress.IPv4Address(f"100.65.1.{i}") for i in range(1, 65)]


def config() -> SpeakerConfig:
    return SpeakerConfig(
        underlay=Underlay(
            asn=64512,
            router_id=ipaddress.IPv4Address("10.0.0.1"),
            vtep_ipv4=ipaddress.IPv4Address("100.65.0.1"),
        ),
        l2vnis=(
            L2Vni(
                name="l2",
                vni=110,
                vrf="red",
                host_bridge=HostBridge(),
                gateway_ips=(ipaddress.ip_interface("10.128.0.1/9"),),
            ),
        ),
        l3vnis=(L3Vni(name="red", vrf="red", vni=100, router_mac=MacAddress.from_text("02:00:00:00:00:01")),),
        vrf_backend=VrfBackend.NETNS,
    )


def workload(kind: str, n: int) -> tuple[DataplaneEntry, ...]:
    if kind == "fdb":
        return tuple(
            FdbEntry(110, MacAddress.from_int(0x0A0000000000 + i), VTEPS[i % len(VTEPS)]) for i in range(n)
        )
    if kind == "neigh":
        return tuple(
            NeighEntry(
                110, ipaddress.IPv4Address(0x0A800000 + 2 + i), MacAddress.from_int(0x0A0000000000 + i)
            )
            for i in range(n)
        )
    return tuple(
        RouteEntry("red", 100, ipaddress.IPv4Network((0x0B000000 + i, 32)), VTEPS[i % len(VTEPS)])
        for i in range(n)
    )


async def measure(dp: KernelDataplane, kind: str, n: int) -> dict[str, Any]:
    entries = workload(kind, n)
    started = time.perf_counter()
    added = await dp.apply(DataplaneDelta(add=entries))
    install = time.perf_counter() - started
    if not added.ok or added.added != n:
        raise SystemExit(f"{kind} {n}: {len(added.failures)} failures, first {added.failures[:1]}")
    installed = len(await dp.installed())
    if installed != n:
        raise SystemExit(f"{kind} {n}: kernel holds {installed} of our entries, expected {n}")
    started = time.perf_counter()
    removed = await dp.apply(DataplaneDelta(remove=entries))
    remove = time.perf_counter() - started
    if not removed.ok or removed.removed != n:
        raise SystemExit(f"{kind} {n}: removal failures {removed.failures[:1]}")
    return {
        "kind": kind,
        "entries": n,
        "install_s": round(install, 3),
        "install_per_s": round(n / install),
        "remove_s": round(remove, 3),
        "remove_per_s": round(n / remove),
    }


async def run(sizes: Sequence[int], neigh_route_sizes: Sequence[int]) -> list[dict[str, Any]]:
    prefix = f"evb{secrets.token_hex(3)}"
    router, host = f"{prefix}-r", f"{prefix}-h"
    layout = Layout(config(), Namespaces(router, host, f"{prefix}-{{vrf}}"))
    created = [router, host, layout.namespaces.vrf("red")]
    results: list[dict[str, Any]] = []
    try:
        netns.create(router)
        netns.create(host)
        await Plumbing(layout).apply_async()
        dp = KernelDataplane(layout)
        try:
            for n in sizes:
                results.append(await measure(dp, "fdb", n))
            for n in neigh_route_sizes:
                results.append(await measure(dp, "neigh", n))
                results.append(await measure(dp, "route", n))
        finally:
            await dp.close()
    finally:
        for name in created:
            netns.delete(name)
    return results


# -- FRR zebra on the same work ------------------------------------------------------------------------

ASN = 64512
FRR_IP, INJ_IP = "192.168.0.1", "192.168.0.2"

FRR_CONFIG = f"""
router bgp {ASN}
 bgp router-id 10.0.0.1
 no bgp default ipv4-unicast
 neighbor {INJ_IP} remote-as {ASN}
 neighbor {INJ_IP} passive
 address-family l2vpn evpn
  neighbor {INJ_IP} activate
  advertise-all-vni
 exit-address-family
"""


@dataclass(frozen=True, slots=True)
class ZebraResult:
    """``remove_s`` is None when zebra did not remove everything (FRR 8.4 sometimes overruns its netlink
    socket on bulk withdrawals and leaves entries behind: ``left`` says how many)."""

    entries: int
    install_s: float
    remove_s: float | None
    left: int = 0


def remote_fdb(ns: str, ifindex: int) -> dict[bytes, ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The remote MACs of VXLAN device ``ifindex`` in namespace ``ns`` (one netlink dump): MAC -> VTEP of
    every ``dst VTEP extern_learn`` entry (flood entries excluded)."""
    with netns.entered(ns):
        transport = rtnl.BatchTransport(rtnl.open_socket())
    try:
        return {
            m.lladdr: m.dst
            for m in transport.dump(rtnl.dump_request(rtnl.RTM_GETNEIGH, rtnl.AF_BRIDGE))
            if isinstance(m, rtnl.Neigh)
            and m.ifindex == ifindex
            and m.dst is not None
            and m.lladdr is not None
            and m.flags & rtnl.NTF_EXT_LEARNED
            and m.lladdr != b"\0" * 6
        }
    finally:
        transport.close()


def _zebra_count(ns: str, ifindex: int) -> int:
    return len(remote_fdb(ns, ifindex))


def _zebra_wait(
    ns: str, ifindex: int, present: set[bytes], want: int, timeout: float, events: socket.socket
) -> float:
    """Follow zebra's FDB notifications (dumping 50k entries every few ms would steal CPU from zebra) from
    ``present`` until ``want`` remote MACs are installed; the time of the last change, confirmed by a dump."""
    deadline = time.monotonic() + timeout
    events.settimeout(0.5)
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        if len(present) == want and _zebra_count(ns, ifindex) == want:
            return last_change
        try:
            data = events.recv(1 << 20)
        except TimeoutError:
            continue
        for m in rtnl.decode(data):
            if not isinstance(m, rtnl.Neigh) or m.ifindex != ifindex or m.dst is None or m.lladdr is None:
                continue
            if m.lladdr == bytes(6) or not m.flags & rtnl.NTF_SELF:
                continue
            if m.deleted:
                present.discard(m.lladdr)
            elif m.flags & rtnl.NTF_EXT_LEARNED:
                present.add(m.lladdr)
            last_change = time.monotonic()
    raise TimeoutError(f"zebra: {want} entries not reached in {timeout}s (have {_zebra_count(ns, ifindex)})")


def _drain(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            if not sock.recv(1 << 16):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def zebra_run(n: int) -> ZebraResult:
    with Lab("bench-zebra") as lab:
        frr_ns, inj_ns = lab.namespace("frr"), lab.namespace("inj")
        lab.veth(frr_ns, inj_ns, f"{FRR_IP}/24", f"{INJ_IP}/24")
        create_l2vni(frr_ns, 110, "100.65.0.1")
        frr_ns.add_route("100.65.1.0/24", via=INJ_IP)  # next-hop tracking: VTEPs must be reachable
        frr = lab.frr(frr_ns, FRR_CONFIG)
        with netns.entered(inj_ns.name):
            sock = socket.create_connection((FRR_IP, 179), timeout=10)
        stop = threading.Event()
        try:
            caps = (Multiprotocol(25, 70), FourOctetAs(ASN))
            sock.sendall(
                Open(ASN, 90, ipaddress.IPv4Address("10.0.0.2"), caps).encode() + Keepalive().encode()
            )
            reader = threading.Thread(target=_drain, args=(sock, stop), daemon=True)
            reader.start()
            frr.wait_established(INJ_IP)
            attrs = PathAttributes(
                as_path=AsPath(),
                local_pref=100,
                ext_communities=(RouteTarget.from_text(f"{ASN}:110"), VXLAN_ENCAPSULATION),
            )
            rd = RouteDistinguisher.ipv4(ipaddress.IPv4Address("10.0.0.2"), 1)
            groups: dict[ipaddress.IPv4Address, list[MacIpRoute]] = {}
            for i in range(n):
                route = MacIpRoute(rd, MacAddress.from_int(0x0A0000000000 + i), None, 110)
                groups.setdefault(VTEPS[i % len(VTEPS)], []).append(route)
            packer = UpdatePacker()
            announce = b"".join(
                m for vtep, routes in groups.items() for m in packer.announce(attrs, routes, vtep)
            )
            withdraw = b"".join(m for routes in groups.values() for m in packer.withdraw(routes))
            ifindex = int(frr_ns.ip_json("link", "show", "vni110")[0]["ifindex"])
            with netns.entered(frr_ns.name):
                events = rtnl.open_socket(rtnl.RTMGRP_NEIGH, rcvbuf=256 << 20)
            try:
                started = time.monotonic()
                sock.sendall(announce)
                present: set[bytes] = set()
                installed = _zebra_wait(frr_ns.name, ifindex, present, n, 60, events)
                started_remove = time.monotonic()
                sock.sendall(withdraw)
                try:
                    removed = _zebra_wait(frr_ns.name, ifindex, present, 0, 30, events)
                except TimeoutError:
                    return ZebraResult(n, installed - started, None, _zebra_count(frr_ns.name, ifindex))
            finally:
                events.close()
            return ZebraResult(n, installed - started, removed - started_remove)
        finally:
            stop.set()
            with contextlib.suppress(OSError):
                sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000], help="remote MAC counts")
    parser.add_argument("--neigh-route-sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--no-zebra", action="store_true", help="skip FRR zebra on the same FDB work")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_dataplane needs root (network namespaces)", file=sys.stderr)
        return 2
    results = asyncio.run(run(args.sizes, args.neigh_route_sizes))
    if not args.no_zebra:
        if not frr_available():
            print("FRR not installed: zebra comparison skipped", file=sys.stderr)
        for n in args.sizes if frr_available() else ():
            z = zebra_run(n)
            results.append({
                "kind": "zebra-fdb", "entries": n,
                "install_s": round(z.install_s, 3), "install_per_s": round(n / z.install_s),
                "remove_s": round(z.remove_s, 3) if z.remove_s is not None else f"{z.left} left",
                "remove_per_s": round(n / z.remove_s) if z.remove_s is not None else "-",
            })  # fmt: skip
    print(f"{'kind':<10} {'entries':>8} {'install s':>10} {'/s':>9} {'remove s':>9} {'/s':>9}")
    for r in results:
        print(
            f"{r['kind']:<10} {r['entries']:>8} {r['install_s']:>10} {r['install_per_s']:>9} "
            f"{r['remove_s']:>9} {r['remove_per_s']:>9}"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
