"""The native engine against GoBGP 3.x acting as a route reflector (we are its client)."""

from __future__ import annotations

import json

import pytest

from tests.interop.test_native_frr import RD, SPK_VTEP, TYPE2, TYPE3, VNI, PeerProcess
from tests.lab import GobgpNeighbor, Lab, path_attr, path_route_targets, rd_string

pytestmark = [pytest.mark.interop, pytest.mark.root]

ASN = 64512
RR_IP, SPK_IP = "192.168.102.1", "192.168.102.2"
RR_ID = "10.255.0.100"
REMOTE_MAC = "aa:bb:cc:00:01:10"


def test_native_engine_with_gobgp_route_reflector(lab: Lab) -> None:
    rr_ns, spk_ns = lab.namespace("rr"), lab.namespace("spk")
    lab.veth(rr_ns, spk_ns, f"{RR_IP}/30", f"{SPK_IP}/30")
    spk_ns.add_address("lo", f"{SPK_VTEP}/32")
    gobgp = lab.gobgp(
        rr_ns, ASN, RR_ID, [GobgpNeighbor(SPK_IP, ASN, route_reflector_client=True, cluster_id=RR_ID)]
    )
    peer = PeerProcess(
        lab,
        spk_ns,
        ["--asn", str(ASN), "--router-id", SPK_VTEP, "--neighbor", f"{RR_IP},asn={ASN}",
         "--route", json.dumps(TYPE3), "--route", json.dumps(TYPE2)],
    )  # fmt: skip
    gobgp.wait_established(SPK_IP)
    up = peer.wait(lambda x: x.get("event") == "peer_up", "PeerUp")
    assert up["ibgp"] and up["router_id"] == RR_ID

    # our routes in GoBGP's RIB, with RD, RT, labels, Router's MAC and PMSI
    ours = gobgp.wait_for(
        lambda: [p for p in gobgp.evpn_paths() if rd_string(p["nlri"]["value"]["rd"]) == RD],
        what="our routes in GoBGP",
    )
    by_type = {p["nlri"]["type"]: p for p in ours}
    assert set(by_type) == {2, 3}
    assert f"{ASN}:{VNI}" in path_route_targets(by_type[3])
    pmsi = path_attr(by_type[3], 22)
    assert pmsi is not None and pmsi["label"] == VNI and pmsi["tunnel-id"] == SPK_VTEP
    mac_ip = by_type[2]["nlri"]["value"]
    assert mac_ip["mac"] == TYPE2["mac"] and mac_ip["ip"] == TYPE2["ip"]
    assert mac_ip["labels"] == [VNI, 100]  # both labels as raw 24-bit values
    ext = path_attr(by_type[2], 16) or {}
    assert any(c.get("subtype") == 3 and c.get("mac") == TYPE2["router_mac"] for c in ext.get("value", [])), (
        ext
    )

    # a route injected into GoBGP reaches us decoded (label = VNI, RT, next hop)
    gobgp.add_route(
        f"macadv {REMOTE_MAC} 0.0.0.0 etag 0 label {VNI} rd {RR_ID}:{VNI} rt {ASN}:{VNI} encap vxlan nexthop {RR_ID}"
    )
    got = peer.wait(
        lambda x: x.get("event") == "routes" and any(r.get("mac") == REMOTE_MAC for r in x["announced"]),
        "GoBGP's route",
    )
    (route,) = [r for r in got["announced"] if r.get("mac") == REMOTE_MAC]
    assert route["labels"] == [VNI] and route["rd"] == f"{RR_ID}:{VNI}" and route["next_hop"] == RR_ID
    assert route["route_targets"] == [f"{ASN}:{VNI}"] and route["encapsulation"] == "vxlan"
    gobgp.del_route(
        f"macadv {REMOTE_MAC} 0.0.0.0 etag 0 label {VNI} rd {RR_ID}:{VNI} rt {ASN}:{VNI} encap vxlan nexthop {RR_ID}"
    )
    peer.wait(
        lambda x: x.get("event") == "routes" and any(r.get("mac") == REMOTE_MAC for r in x["withdrawn"]),
        "GoBGP's withdraw",
    )
    # our withdraw reaches GoBGP
    peer.send({"op": "withdraw", "route": TYPE2})
    gobgp.wait_for(
        lambda: not [p for p in gobgp.evpn_paths(2) if rd_string(p["nlri"]["value"]["rd"]) == RD],
        what="our type-2 withdrawn in GoBGP",
    )
    states = peer.states()
    assert states[RR_IP]["state"] == "Established" and states[RR_IP]["flaps"] == 0
