"""The exabgp engine against real FRR 8.4 in network namespaces (over a veth).

ExaBGP runs inside the speaker's namespace (``ExaBgpEngine(netns=...)``); the engine itself runs in the test's
event loop. FRR must receive our type-2 with both labels and Router's MAC, and our type-3 with PMSI, through
ExaBGP; we must receive FRR's type-3 with its PMSI, decoded by our codec from the raw bytes ExaBGP reports.
Host sessions in a VRF namespace (``vrf_namespaces``) carry IPv4/IPv6 unicast with FRR as the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
from typing import Any

import pytest

from evpn.codec.attributes import AsPath, Origin, PathAttributes
from evpn.codec.evpn_nlri import InclusiveMulticastRoute, MacIpRoute
from evpn.codec.families import Family
from evpn.config import Neighbor, Timers, Underlay
from evpn.events import PeerUp, RoutesReceived
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from speaker.exabgp_engine import ExaBgpEngine
from tests.contract.helpers import EventLog, evpn_attributes
from tests.lab import FrrRouter, Lab, create_l2vni

pytestmark = [pytest.mark.interop, pytest.mark.root]

ASN = 64512
VNI = 110
FRR_IP, SPK_IP = "192.168.110.1", "192.168.110.2"
FRR_VTEP, SPK_VTEP = "10.255.0.1", "10.255.0.2"
RD = f"{SPK_VTEP}:{VNI}"
MAC = "02:00:00:00:aa:01"
RMAC = "02:00:00:00:00:02"
TYPE2_KEY = f"[2]:[0]:[48]:[{MAC}]:[32]:[192.170.1.30]"
TYPE3_KEY = f"[3]:[0]:[32]:[{SPK_VTEP}]"

FRR_CONFIG = f"""
router bgp {ASN}
 bgp router-id {FRR_VTEP}
 no bgp default ipv4-unicast
 no bgp ebgp-requires-policy
 neighbor {SPK_IP} remote-as {ASN}
 neighbor {SPK_IP} timers 3 9
 neighbor {SPK_IP} timers connect 1
 address-family l2vpn evpn
  neighbor {SPK_IP} activate
  advertise-all-vni
 exit-address-family
"""


def frr_route(frr: FrrRouter, rd: str, key: str) -> dict[str, Any] | None:
    data = frr.vtysh_json(f"show bgp l2vpn evpn route rd {rd}")
    entry = data.get(rd, {}).get(key)
    if not entry or not entry.get("paths"):
        return None
    path: dict[str, Any] = entry["paths"][0][0]
    return path


async def test_exabgp_engine_with_frr(lab: Lab) -> None:
    frr_ns, spk_ns = lab.namespace("frr"), lab.namespace("spk")
    lab.veth(frr_ns, spk_ns, f"{FRR_IP}/30", f"{SPK_IP}/30")
    create_l2vni(frr_ns, VNI, FRR_VTEP)
    spk_ns.add_address("lo", f"{SPK_VTEP}/32")
    frr_ns.add_route(f"{SPK_VTEP}/32", via=SPK_IP)  # FRR's next-hop tracking must resolve our VTEP
    frr = lab.frr(frr_ns, FRR_CONFIG)

    nb = Neighbor(ipaddress.ip_address(FRR_IP), asn=ASN, timers=Timers(keepalive=1, hold_time=9))
    underlay = Underlay(asn=ASN, router_id=ipaddress.IPv4Address(SPK_VTEP), neighbors=(nb,))
    engine = ExaBgpEngine(underlay, listen_address=SPK_IP, listen_port=179, netns=spk_ns.name)
    lab.add_cleanup(lambda: None if engine.pid is None else _kill_group(engine.pid), "kill ExaBGP")
    log = EventLog(engine)
    vtep = ipaddress.ip_address(SPK_VTEP)
    rd = RouteDistinguisher.ipv4(SPK_VTEP, VNI)
    type2 = MacIpRoute(
        rd, MacAddress.from_text(MAC), ipaddress.ip_address("192.170.1.30"), label1=VNI, label2=100
    )
    type3 = InclusiveMulticastRoute(rd, vtep)
    try:
        await engine.start()
        up = await log.wait_for(PeerUp, timeout=30)
        assert up.ibgp and str(up.peer_router_id) == FRR_VTEP

        await engine.advertise(None, evpn_attributes(ASN, SPK_VTEP, pmsi=True), vtep, [type3])
        await engine.advertise(None, evpn_attributes(ASN, SPK_VTEP, router_mac=RMAC), vtep, [type2])
        t3 = await asyncio.to_thread(
            frr.wait_for, lambda: frr_route(frr, RD, TYPE3_KEY), what="type-3 in FRR"
        )
        assert t3["pmsi"] == {"tunnelType": "Ingress Replication", "label": VNI}
        t2 = await asyncio.to_thread(
            frr.wait_for, lambda: frr_route(frr, RD, TYPE2_KEY), what="type-2 in FRR"
        )
        assert t2["vni"] == f"{VNI}/100"  # both labels survived ExaBGP
        assert t2["extendedCommunity"]["string"] == f"RT:{ASN}:{VNI} ET:8 Rmac:{RMAC}"
        assert t2["nexthops"][0]["ip"] == SPK_VTEP

        # FRR's own type-3 (advertise-all-vni), PMSI decoded by our codec from ExaBGP's raw bytes
        got = await log.wait_for(
            RoutesReceived,
            lambda e: any(isinstance(r, InclusiveMulticastRoute) for r in e.announced),
            timeout=30,
        )
        assert got.attributes is not None and got.attributes.pmsi is not None
        assert got.attributes.pmsi.label == VNI
        assert str(got.attributes.pmsi.tunnel_id) == FRR_VTEP
        assert str(got.next_hop) == FRR_VTEP

        # withdraw by key (other labels): FRR drops the route
        await engine.withdraw(None, [MacIpRoute(rd, type2.mac, type2.ip, label1=1)])
        await asyncio.to_thread(
            frr.wait_for, lambda: frr_route(frr, RD, TYPE2_KEY) is None, what="type-2 withdrawn from FRR"
        )
        assert frr_route(frr, RD, TYPE3_KEY) is not None
    finally:
        await engine.stop()
        await log.close()


def _kill_group(pid: int) -> None:
    """Lab finalizer: ExaBGP's process group dies even when the test body failed before ``stop``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


HOST_ASN, OUR_HOST_ASN = 64600, 64700  # the host's AS, ours on the host sessions (``local_asn``)
PE_V4, HOST_V4, PE_V6, HOST_V6 = "192.168.77.1", "192.168.77.2", "fd77::1", "fd77::2"

HOST_FRR_CONFIG = f"""
router bgp {HOST_ASN}
 bgp router-id {HOST_V4}
 no bgp default ipv4-unicast
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {PE_V4} remote-as {OUR_HOST_ASN}
 neighbor {PE_V4} timers 3 9
 neighbor {PE_V4} timers connect 1
 neighbor {PE_V6} remote-as {OUR_HOST_ASN}
 neighbor {PE_V6} timers 3 9
 neighbor {PE_V6} timers connect 1
 address-family ipv4 unicast
  neighbor {PE_V4} activate
  network 10.99.0.0/24
 exit-address-family
 address-family ipv6 unicast
  neighbor {PE_V6} activate
  network 2001:db8:99::/48
 exit-address-family
"""


def frr_unicast(frr: FrrRouter, prefix: str) -> dict[str, Any] | None:
    afi = "ipv6" if ":" in prefix else "ipv4"
    data = frr.vtysh_json(f"show bgp {afi} unicast {prefix} json")
    paths = data.get("paths") if isinstance(data, dict) else None
    return paths[0] if paths else None


async def test_exabgp_engine_host_sessions_in_a_vrf_namespace(lab: Lab) -> None:
    """Host sessions (``Neighbor.vrf``) run in their own ExaBGP inside the VRF's namespace (``vrf_namespaces``):
    IPv4 and IPv6 unicast with FRR as the host, our per-session ASN, our address in ``PeerUp``, both
    directions, a withdraw; the v4 session is passive on our side (FRR connects into the namespace)."""
    spk_ns, vrf_ns, host_ns = lab.namespace("spk"), lab.namespace("red"), lab.namespace("host")
    lab.veth(vrf_ns, host_ns, f"{PE_V4}/24", f"{HOST_V4}/24", a_ifname="pe-red", b_ifname="host-red")
    vrf_ns.ip("addr", "add", f"{PE_V6}/64", "dev", "pe-red", "nodad")
    host_ns.ip("addr", "add", f"{HOST_V6}/64", "dev", "host-red", "nodad")
    frr = lab.frr(host_ns, HOST_FRR_CONFIG)

    timers = Timers(keepalive=1, hold_time=9)
    v4 = Neighbor(
        ipaddress.ip_address(HOST_V4),
        asn=HOST_ASN,
        timers=timers,
        families=(Family.IPV4_UNICAST,),
        vrf="red",
        local_asn=OUR_HOST_ASN,
        passive=True,
    )
    v6 = Neighbor(
        ipaddress.ip_address(HOST_V6),
        asn=HOST_ASN,
        timers=timers,
        families=(Family.IPV6_UNICAST,),
        vrf="red",
        local_asn=OUR_HOST_ASN,
    )
    underlay = Underlay(asn=ASN, router_id=ipaddress.IPv4Address(SPK_VTEP), neighbors=(v4, v6))
    engine = ExaBgpEngine(underlay, netns=spk_ns.name, vrf_namespaces={"red": vrf_ns.name})

    def kill_all() -> None:
        for pid in engine.pids.values():
            _kill_group(pid)

    lab.add_cleanup(kill_all, "kill every ExaBGP")
    log = EventLog(engine)
    try:
        await engine.start()
        assert set(engine.pids) == {spk_ns.name, vrf_ns.name}  # one ExaBGP per namespace
        up4 = await log.wait_for(PeerUp, lambda e: e.peer == v4.address, timeout=30)
        up6 = await log.wait_for(PeerUp, lambda e: e.peer == v6.address, timeout=30)
        assert up4.peer_asn == HOST_ASN and not up4.ibgp and up4.families == {Family.IPV4_UNICAST}
        assert up4.local_address == ipaddress.ip_address(PE_V4)
        assert up6.local_address == ipaddress.ip_address(PE_V6) and up6.families == {Family.IPV6_UNICAST}
        assert frr.vtysh_json(f"show bgp neighbors {PE_V4} json")[PE_V4]["remoteAs"] == OUR_HOST_ASN

        # the host's routes, decoded by our codec from ExaBGP's raw bytes
        got4 = await log.wait_for(
            RoutesReceived, lambda e: ipaddress.ip_network("10.99.0.0/24") in e.announced
        )
        assert got4.next_hop == ipaddress.ip_address(HOST_V4) and got4.attributes is not None
        assert got4.attributes.as_path == AsPath.sequence(HOST_ASN)
        got6 = await log.wait_for(
            RoutesReceived, lambda e: ipaddress.ip_network("2001:db8:99::/48") in e.announced
        )
        assert got6.next_hop == ipaddress.ip_address(HOST_V6)

        # ours, through ExaBGP: ORIGIN, AS_PATH, MED and communities as our codec encoded them
        attrs = PathAttributes(
            origin=Origin.INCOMPLETE,
            as_path=AsPath.sequence(OUR_HOST_ASN, 65010),
            med=7,
            communities=((OUR_HOST_ASN << 16) | 1,),
        )
        ours4, ours6 = ipaddress.ip_network("10.200.0.0/24"), ipaddress.ip_network("2001:db8:200::/48")
        await engine.advertise(v4.address, attrs, up4.local_address, [ours4])
        await engine.advertise(v6.address, attrs, up6.local_address, [ours6])
        for prefix, hop in ((ours4, PE_V4), (ours6, PE_V6)):
            path = await asyncio.to_thread(
                frr.wait_for, lambda p=str(prefix): frr_unicast(frr, p), what=f"{prefix} in FRR"
            )
            assert path["aspath"]["string"] == f"{OUR_HOST_ASN} 65010"
            assert path["origin"] == "incomplete" and path["metric"] == 7
            assert path["community"]["string"] == f"{OUR_HOST_ASN}:1"
            assert path["nexthops"][0]["ip"] == hop

        await engine.withdraw(None, [ours4])
        await asyncio.to_thread(
            frr.wait_for,
            lambda: frr_unicast(frr, str(ours4)) is None,
            what="10.200.0.0/24 withdrawn from FRR",
        )
        assert frr_unicast(frr, str(ours6)) is not None
    finally:
        await engine.stop()
        await log.close()
