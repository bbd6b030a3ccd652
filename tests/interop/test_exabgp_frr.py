"""The exabgp engine against real FRR 8.4 in network namespaces (over a veth).

ExaBGP runs inside the speaker's namespace (``ExaBgpEngine(netns=...)``); the engine itself runs in the test's
event loop. FRR must receive our type-2 with both labels and Router's MAC, and our type-3 with PMSI, through
ExaBGP; we must receive FRR's type-3 with its PMSI, decoded by our codec from the raw bytes ExaBGP reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
from typing import Any

import pytest

from evpn.codec.evpn_nlri import InclusiveMulticastRoute, MacIpRoute
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
