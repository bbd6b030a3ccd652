"""The whole ``Speaker`` (core + session engine + in-memory dataplane) against real FRR 8.4 (zebra + bgpd with
L2VNI 110), directly and through a real GoBGP route reflector, in network namespaces; every test runs once per
session engine (``native``, ``exabgp``: ``speaker_runner --engine``), with the same assertions.

The speaker runs as ``speaker.tools.speaker_runner`` inside its namespace (``ip netns exec``), driven by
JSON lines; FRR is queried with vtysh. Checked both ways: our type-3/type-2 in FRR's BGP table with our RD,
RT, VNI, Router's MAC and PMSI, our MAC remote in FRR's ``show evpn mac``; FRR's type-3 and the type-2 of a
host on FRR's bridge in our mac table and dataplane; a MAC move from FRR's side to ours carries a higher
MAC-mobility sequence number that FRR adopts.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from typing import Any

import pytest

from evpn.config import Neighbor, SpeakerConfig, Underlay
from speaker.engine import EndOfRibMode
from speaker.exabgp_engine import ExaBgpEngine
from speaker.native_engine import NativeEngine
from speaker.speaker import Speaker
from speaker.tools.speaker_runner import RunnerClient
from tests.lab import FrrRouter, GobgpNeighbor, Lab, Namespace, create_l2vni

pytestmark = [pytest.mark.interop, pytest.mark.root]

ENGINES = ("native", "exabgp")

ASN = 64512
VNI, L3VNI = 110, 100
FRR_VTEP, SPK_VTEP = "10.255.0.1", "10.255.0.2"
RR_ID = "10.255.0.100"
OUR_MAC, OUR_IP = "02:00:00:00:aa:01", "192.170.1.50"
HOST_MAC = "02:00:00:00:bb:01"  # a host on FRR's bridge that moves to us


def frr_config(neighbor: str) -> str:
    return f"""
router bgp {ASN}
 bgp router-id {FRR_VTEP}
 no bgp default ipv4-unicast
 neighbor {neighbor} remote-as {ASN}
 neighbor {neighbor} timers 3 9
 neighbor {neighbor} timers connect 1
 address-family l2vpn evpn
  neighbor {neighbor} activate
  advertise-all-vni
 exit-address-family
"""


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The session engine the speaker runs (``--engine``)."""
    name: str = request.param
    return name


def start_speaker(lab: Lab, ns: Namespace, listen: str, neighbor: str, engine: str) -> RunnerClient:
    stderr_path = lab.workdir / "speaker.stderr"
    stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed by the lab cleanup
    lab.add_cleanup(stderr.close, "close speaker stderr")
    lab.add_log_source("speaker stderr", lambda: stderr_path.read_text(errors="replace")[-20000:])
    proc = lab.popen(
        ns,
        [
            sys.executable, "-m", "speaker.tools.speaker_runner", "--log-level", "INFO",
            "--asn", str(ASN), "--router-id", SPK_VTEP, "--vtep", SPK_VTEP, "--listen", listen,
            "--neighbor", f"{neighbor},asn={ASN}", "--keepalive", "1", "--hold", "3",
            "--l2vni", f"{VNI},vrf=red", "--l3vni", f"{L3VNI},vrf=red", "--engine", engine,
        ],
        name="speaker",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )  # fmt: skip
    client = RunnerClient(proc)
    lab.add_cleanup(client.close, "stop the speaker runner")
    lab.add_log_source("speaker stdout", lambda: "\n".join(str(x) for x in client.lines[-100:]))
    client.wait(lambda x: x.get("event") == "ready", "ready")
    info = client.request("engine")
    assert info["engine"] == engine
    assert info["class"] == {"native": "NativeEngine", "exabgp": "ExaBgpEngine"}[engine]
    assert (info["pid"] is not None) == (engine == "exabgp")  # ExaBGP runs as the runner's child
    return client


def add_host(lab: Lab, frr_ns: Namespace) -> None:
    """A host port on FRR's bridge with HOST_MAC learned as a dynamic (non-sticky) local MAC."""
    host_ns = lab.namespace("host")
    host_ns.disable_ipv6()  # no ND: the MAC must stay where the test puts it
    frr_ns.sysctl({"net.ipv6.conf.default.disable_ipv6": 1})
    lab.veth(frr_ns, host_ns, a_ifname="hs-110", b_ifname="eth0")
    frr_ns.ip("link", "set", "hs-110", "master", f"br-pe-{VNI}")
    frr_ns.link_up("hs-110")
    frr_ns.bridge("fdb", "add", HOST_MAC, "dev", "hs-110", "master", "dynamic")


def evpn_paths(frr: FrrRouter, rd: str) -> dict[str, dict[str, Any]]:
    """``show bgp l2vpn evpn route detail``: prefix -> best path, for the routes of ``rd``."""
    data = frr.vtysh_json("show bgp l2vpn evpn route detail")
    out: dict[str, dict[str, Any]] = {}
    for prefix, entry in data.get(rd, {}).items():
        if isinstance(entry, dict) and entry.get("paths"):
            paths = entry["paths"]
            path = paths[0][0] if isinstance(paths[0], list) else paths[0]
            out[prefix] = path
    return out


def mac_row(client: RunnerClient, mac: str) -> dict[str, Any] | None:
    for row in client.request("mac_table", vni=VNI)["rows"]:
        if row["mac"] == mac:
            return dict(row)
    return None


def installed(client: RunnerClient) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.request("installed")["entries"]
    return entries


def check_exchange(frr: FrrRouter, spk: RunnerClient, via_rr: bool) -> None:
    frr.wait_for(lambda: evpn_paths(frr, f"{FRR_VTEP}:2") or frr.evpn_vni(VNI).get("rd"), what="FRR's VNI")
    vnis = {v["vni"]: v for v in spk.request("vnis")["vnis"]}
    rd = vnis[VNI]["rd"]
    assert vnis[VNI]["export_rts"] == [f"{ASN}:{VNI}"]

    # ours -> FRR: type-3 and type-2 (MAC, MAC+IP) with RD, RT, VNI, Router's MAC, PMSI
    spk.request("learn", vni=VNI, mac=OUR_MAC, ip=OUR_IP)
    t3_key, t2_key = f"[3]:[0]:[32]:[{SPK_VTEP}]", f"[2]:[0]:[48]:[{OUR_MAC}]:[32]:[{OUR_IP}]"

    def both() -> dict[str, dict[str, Any]] | None:
        paths = evpn_paths(frr, rd)
        return paths if t3_key in paths and t2_key in paths else None

    paths = frr.wait_for(both, what="our routes in FRR")
    t3, t2 = paths[t3_key], paths[t2_key]
    assert t3["pmsi"] == {"tunnelType": "Ingress Replication", "label": VNI}
    assert t3["extendedCommunity"]["string"] == f"RT:{ASN}:{VNI} ET:8"
    assert t3["nexthops"][0]["ip"] == SPK_VTEP
    assert t2["vni"] == f"{VNI}/{L3VNI}"  # label 1 = L2VNI, label 2 = L3VNI
    comms = t2["extendedCommunity"]["string"].split()
    assert {f"RT:{ASN}:{VNI}", f"RT:{ASN}:{L3VNI}", "ET:8"} <= set(comms)
    rmac = next(c for c in comms if c.startswith("Rmac:"))[5:]
    assert len(rmac) == 17 and rmac != "00:00:00:00:00:00"
    assert t2["nexthops"][0]["ip"] == SPK_VTEP
    if via_rr:
        assert t2.get("originatorId") == SPK_VTEP and RR_ID in str(t2.get("clusterList"))
    mac = frr.wait_for(lambda: frr.evpn_macs(VNI).get(OUR_MAC), what="our MAC in FRR's MAC table")
    assert mac["type"] == "remote" and mac["remoteVtep"] == SPK_VTEP

    # FRR -> ours: its type-3 (flood entry) and the type-2 of its host (remote MAC behind FRR's VTEP)
    row = frr.wait_for(lambda: mac_row(spk, HOST_MAC), what="FRR's host MAC in our mac table")
    assert row["kind"] == "remote" and row["vtep"] == FRR_VTEP and row["remote_seq"] == 0
    entries = installed(spk)
    assert {"kind": "FdbEntry", "vni": VNI, "mac": HOST_MAC, "vtep": FRR_VTEP} in entries
    assert {"kind": "FloodEntry", "vni": VNI, "vtep": FRR_VTEP} in entries

    # the host moves to us: our type-2 with MAC mobility sequence 1 wins in FRR
    spk.request("learn", vni=VNI, mac=HOST_MAC)
    local = mac_row(spk, HOST_MAC)
    assert local is not None and local["kind"] == "local" and local["local_seq"] == 1
    moved = frr.wait_for(
        lambda: (m := frr.evpn_macs(VNI).get(HOST_MAC)) and m.get("type") == "remote" and m,
        what="FRR to see the move",
    )
    assert moved["remoteVtep"] == SPK_VTEP
    detail = frr.vtysh_json(f"show evpn mac vni {VNI} mac {HOST_MAC}")
    info = detail.get(HOST_MAC, detail)
    assert info.get("remoteSequence") == 1, info
    key = f"[2]:[0]:[48]:[{HOST_MAC}]"
    ours = frr.wait_for(lambda: evpn_paths(frr, rd).get(key), what="our type-2 for the moved MAC")
    assert "MM:1" in ours["extendedCommunity"]["string"]
    assert not [x for x in spk.events("peer_down")]


def test_speaker_with_frr(lab: Lab, engine: str) -> None:
    frr_ns, spk_ns = lab.namespace("frr"), lab.namespace("spk")
    frr_ip, spk_ip = "192.168.110.1", "192.168.110.2"
    lab.veth(frr_ns, spk_ns, f"{frr_ip}/30", f"{spk_ip}/30")
    create_l2vni(frr_ns, VNI, FRR_VTEP)
    spk_ns.add_address("lo", f"{SPK_VTEP}/32")
    frr_ns.add_route(f"{SPK_VTEP}/32", via=spk_ip)  # next-hop tracking must resolve our VTEP
    add_host(lab, frr_ns)
    frr = lab.frr(frr_ns, frr_config(spk_ip))
    spk = start_speaker(lab, spk_ns, spk_ip, frr_ip, engine)
    frr.wait_established(spk_ip)
    spk.wait(lambda x: x.get("event") == "peer_up", "PeerUp")
    peers = spk.request("peers")["peers"]
    assert peers[0]["state"] == "Established" and peers[0]["router_id"] == FRR_VTEP
    check_exchange(frr, spk, via_rr=False)


def test_speaker_with_frr_through_gobgp_rr(lab: Lab, engine: str) -> None:
    rr_ns, frr_ns, spk_ns = lab.namespace("rr"), lab.namespace("frr"), lab.namespace("spk")
    rr_frr, frr_ip = "192.168.120.1", "192.168.120.2"
    rr_spk, spk_ip = "192.168.121.1", "192.168.121.2"
    lab.veth(rr_ns, frr_ns, f"{rr_frr}/30", f"{frr_ip}/30")
    lab.veth(rr_ns, spk_ns, f"{rr_spk}/30", f"{spk_ip}/30")
    create_l2vni(frr_ns, VNI, FRR_VTEP)
    spk_ns.add_address("lo", f"{SPK_VTEP}/32")
    frr_ns.add_route(f"{SPK_VTEP}/32", via=rr_frr)
    add_host(lab, frr_ns)
    gobgp = lab.gobgp(
        rr_ns,
        ASN,
        RR_ID,
        [
            GobgpNeighbor(frr_ip, ASN, route_reflector_client=True, cluster_id=RR_ID),
            GobgpNeighbor(spk_ip, ASN, route_reflector_client=True, cluster_id=RR_ID),
        ],
    )
    frr = lab.frr(frr_ns, frr_config(rr_frr))
    spk = start_speaker(lab, spk_ns, spk_ip, rr_spk, engine)
    gobgp.wait_established(frr_ip)
    gobgp.wait_established(spk_ip)
    spk.wait(lambda x: x.get("event") == "peer_up", "PeerUp")
    check_exchange(frr, spk, via_rr=True)


def test_speaker_builds_the_engine_its_configuration_names() -> None:
    """``SpeakerConfig.engine`` picks the default engine (what ``--engine`` and ``engine:`` set)."""
    underlay = Underlay(
        asn=ASN,
        router_id=ipaddress.IPv4Address(SPK_VTEP),
        vtep_ipv4=ipaddress.IPv4Address(SPK_VTEP),
        neighbors=(Neighbor(ipaddress.ip_address(FRR_VTEP), asn=ASN),),
    )
    for name, cls in (("native", NativeEngine), ("exabgp", ExaBgpEngine)):
        spk = Speaker(SpeakerConfig(underlay, engine=name), listen_address="127.0.0.1", listen_port=17999)
        engine = spk.engine
        assert isinstance(engine, cls) and type(engine) is cls
        assert engine.end_of_rib_mode is EndOfRibMode.MANUAL
        assert engine.listen_port == 17999
        assert str(engine.listen_address) == "127.0.0.1"
    with pytest.raises(ValueError, match="unknown engine 'gobgp'"):
        Speaker(SpeakerConfig(underlay, engine="gobgp"))
