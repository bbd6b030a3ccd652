"""Vectors from a real FRR: what FRR 8.4 sends for an L2VNI, decoded by our codec, equals what FRR shows.

FRR runs zebra+bgpd in a namespace with L2VNI 110 (gateway 192.170.1.1/24, advertise-default-gw) and a host
192.170.1.3 on the bridge; GoBGP is the peer. The capture of FRR's side of the session is decoded with
``MessageDecoder`` and every route is compared with ``show bgp l2vpn evpn route detail json``; then the host
leaves and FRR's withdrawals must decode too.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from evpn.codec.evpn_nlri import InclusiveMulticastRoute, MacIpRoute
from evpn.codec.messages import MessageDecoder, Update
from evpn.codec.pmsi import PmsiTunnelType
from tests.lab import GobgpNeighbor, Lab, create_l2vni

pytestmark = pytest.mark.interop

ASN = 64512
VNI = 110
FRR_VTEP, PEER_VTEP = "10.255.0.1", "10.255.0.2"
FRR_IP, PEER_IP = "192.168.100.1", "192.168.100.2"
HOST_IP = "192.170.1.3"

FRR_CONFIG = f"""
router bgp {ASN}
 bgp router-id {FRR_VTEP}
 no bgp default ipv4-unicast
 neighbor {PEER_IP} remote-as {ASN}
 neighbor {PEER_IP} timers 3 9
 neighbor {PEER_IP} timers connect 1
 address-family l2vpn evpn
  neighbor {PEER_IP} activate
  advertise-all-vni
  advertise-default-gw
 exit-address-family
"""


def stream_from(pcap: Path, src: str) -> bytes:
    """The TCP payload ``src`` sent to port 179, in sequence order (tshark only cuts the segments out)."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", f"ip.src=={src} && tcp.len>0", "-T", "fields",
         "-e", "tcp.seq_raw", "-e", "tcp.payload"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    segments: dict[int, bytes] = {}
    for line in out.splitlines():
        seq, _, payload = line.partition("\t")
        segments[int(seq)] = bytes.fromhex(payload.replace(":", ""))
    data = bytearray()
    next_seq: int | None = None
    for seq in sorted(segments):
        chunk = segments[seq]
        if next_seq is not None and seq < next_seq:  # retransmission overlap
            chunk = chunk[next_seq - seq :]
        data += chunk
        next_seq = seq + len(segments[seq])
    return bytes(data)


def decode_updates(stream: bytes) -> list[Update]:
    decoder = MessageDecoder()
    messages, used = decoder.split(stream)
    assert used == len(stream), "the capture ends inside a message"
    return [m for m in map(decoder.decode, messages) if isinstance(m, Update)]


def frr_routes(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """FRR's local routes by prefix text, with their RD."""
    routes = {}
    for rd, table in detail.items():
        if not isinstance(table, dict) or "rd" not in table:
            continue
        for prefix, entry in table.items():
            if prefix.startswith("["):
                routes[prefix] = {"rd": rd, **entry, "path": entry["paths"][0][0]}
    return routes


def frr_prefix(route: MacIpRoute | InclusiveMulticastRoute) -> str:
    """FRR's prefix notation (bgp_evpn.c prefix2str) for a type-2 or type-3 route."""
    if isinstance(route, InclusiveMulticastRoute):
        return f"[3]:[{route.ethernet_tag}]:[{route.originator.max_prefixlen}]:[{route.originator}]"
    text = f"[2]:[{route.ethernet_tag}]:[48]:[{route.mac}]"
    if route.ip is not None:
        text += f":[{route.ip.max_prefixlen}]:[{route.ip}]"
    return text


def test_frr_l2vni_updates_decode_to_what_frr_shows(requires_root: None, tmp_path: Path) -> None:
    """Every EVPN route FRR sends decodes to FRR's own RD, MAC, IP, VNI, next hop, RTs and flags."""
    with Lab("vectors") as lab:
        frr_ns, peer_ns, host_ns = lab.namespace("frr"), lab.namespace("peer"), lab.namespace("host")
        link = lab.veth(frr_ns, peer_ns, f"{FRR_IP}/30", f"{PEER_IP}/30")
        cap = lab.capture(peer_ns, link.b.ifname)
        l2vni = create_l2vni(frr_ns, VNI, FRR_VTEP, gateway="192.170.1.1/24")
        frr_ns.sysctl({f"net.ipv6.conf.{l2vni.bridge}.disable_ipv6": "1"})  # no late link-local gateway route
        host_ns.disable_ipv6()
        host_link = lab.veth(host_ns, frr_ns, f"{HOST_IP}/24", None)
        frr_ns.ip("link", "set", host_link.b.ifname, "master", l2vni.bridge)
        peer_ns.add_address("lo", f"{PEER_VTEP}/32")
        frr = lab.frr(frr_ns, FRR_CONFIG)
        lab.gobgp(peer_ns, ASN, PEER_VTEP, [GobgpNeighbor(FRR_IP, ASN)])
        frr.wait_established(PEER_IP)
        host_ns.run(["ping", "-c", "2", "-i", "0.2", "192.170.1.1"])
        host_mac = host_ns.ip_json("link", "show", host_link.a.ifname)[0]["address"]

        def shown() -> dict[str, dict[str, Any]] | None:
            routes = frr_routes(frr.vtysh_json("show bgp l2vpn evpn route detail json"))
            wanted = f"[2]:[0]:[48]:[{host_mac}]:[32]:[{HOST_IP}]"
            return routes if wanted in routes else None

        before = frr.wait_for(shown, what="FRR advertising the host's MAC+IP")
        frr_vni = frr.evpn_vni(VNI)
        time.sleep(1.0)  # let FRR's update-delay flush to the peer before the host leaves

        host_ns.ip("link", "del", host_link.a.ifname)
        frr.wait_for(
            lambda: (
                not any(
                    host_mac in p for p in frr_routes(frr.vtysh_json("show bgp l2vpn evpn route detail json"))
                )
            ),
            what="FRR withdrawing the host's routes",
        )
        time.sleep(1.0)
        cap.stop()
        pcap = Path(cap.path)
        stream = stream_from(pcap, FRR_IP)

    updates = decode_updates(stream)
    announced: dict[str, tuple[Any, Update]] = {}
    withdrawn: set[str] = set()
    for update in updates:
        for route in update.announced_routes:
            assert isinstance(route, MacIpRoute | InclusiveMulticastRoute), route
            announced[frr_prefix(route)] = (route, update)
        for route in update.withdrawn_routes:
            assert isinstance(route, MacIpRoute | InclusiveMulticastRoute), route
            withdrawn.add(frr_prefix(route))

    assert set(announced) == set(before), "FRR's table and the decoded UPDATEs differ"
    for prefix, shown_route in before.items():
        route, update = announced[prefix]
        path = shown_route["path"]
        attrs = update.attributes
        assert attrs is not None and update.mp_reach is not None
        assert str(route.rd) == shown_route["rd"] == frr_vni["rd"]
        assert str(update.mp_reach.next_hop) == path["nexthops"][0]["ip"] == FRR_VTEP
        assert attrs.origin.name == path["origin"]
        communities = path["extendedCommunity"]["string"].split(" ")
        assert [f"RT:{rt}" for rt in attrs.route_targets] == [c for c in communities if c.startswith("RT:")]
        assert frr_vni["exportRts"] == [str(rt) for rt in attrs.route_targets]
        assert ("ET:8" in communities) == (attrs.encapsulation == 8)
        assert ("Default" in communities) == attrs.default_gateway
        if isinstance(route, MacIpRoute):
            assert str(route.mac) == shown_route["mac"]
            assert (str(route.ip) if route.ip else None) == shown_route.get("ip")
            assert [route.label1] == [int(path["vni"])] and route.label2 is None
        else:
            assert str(route.originator) == shown_route["ip"] == FRR_VTEP
            assert attrs.pmsi is not None
            assert attrs.pmsi.tunnel_type == PmsiTunnelType.INGRESS_REPLICATION
            assert attrs.pmsi.label == VNI and attrs.pmsi.tunnel_id == ipaddress.IPv4Address(FRR_VTEP)

    host_prefixes = {p for p in before if host_mac in p}
    assert len(host_prefixes) == 2, host_prefixes  # MAC-only and MAC+IP
    assert host_prefixes <= withdrawn, "FRR's withdrawals of the host's routes did not decode"
