"""Smoke tests of the lab itself: FRR + GoBGP + capture in namespaces, end to end, and cleanup."""

from __future__ import annotations

import errno
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.lab import (
    GobgpNeighbor,
    Lab,
    create_l2vni,
    evpn_labels,
    evpn_nlris,
    evpn_nlris_raw,
    ext_communities,
    ext_community_kind,
    find_values,
    path_attr,
    path_attribute,
    path_route_targets,
    pid_alive,
    pid_comm,
    rd_bytes_to_str,
    rd_string,
    tshark_available,
    tshark_bgp_json,
    tshark_decode_bytes,
)
from tests.lab.netns import REGISTRY_DIR, run

ASN = 64512
VNI = 110
FRR_VTEP, GOBGP_VTEP = "10.255.0.1", "10.255.0.2"
FRR_IP, GOBGP_IP = "192.168.100.1", "192.168.100.2"
REMOTE_MAC = "aa:bb:cc:00:01:10"

FRR_CONFIG = f"""
router bgp {ASN}
 bgp router-id {FRR_VTEP}
 no bgp default ipv4-unicast
 neighbor {GOBGP_IP} remote-as {ASN}
 neighbor {GOBGP_IP} timers 3 9
 neighbor {GOBGP_IP} timers connect 1
 address-family l2vpn evpn
  neighbor {GOBGP_IP} activate
  advertise-all-vni
 exit-address-family
"""

DAEMONS = ("zebra", "bgpd", "gobgpd", "dumpcap", "sleep")


def _assert_cleaned(names: list[str], pids: list[int], workdir: Path, *, kept: bool) -> None:
    listed = run(["ip", "netns", "list"]).stdout.split()
    assert not set(names) & set(listed), f"namespaces left: {listed}"
    assert not any((REGISTRY_DIR / n).exists() for n in names)
    for pid in pids:
        assert not pid_alive(pid), f"pid {pid} ({pid_comm(pid)}) still running"
        assert pid_comm(pid) not in DAEMONS, f"pid {pid} left as a zombie"
    assert workdir.exists() == kept


def test_frr_and_gobgp_exchange_evpn_routes(requires_root: None) -> None:
    """FRR (L2VNI 110) and GoBGP peer over a veth; routes flow both ways; the capture decodes."""
    with Lab("smoke") as lab:
        frr_ns, gobgp_ns = lab.namespace("frr"), lab.namespace("gobgp")
        link = lab.veth(frr_ns, gobgp_ns, f"{FRR_IP}/30", f"{GOBGP_IP}/30")
        cap = lab.capture(gobgp_ns, link.b.ifname)
        l2vni = create_l2vni(frr_ns, VNI, FRR_VTEP)
        gobgp_ns.add_address("lo", f"{GOBGP_VTEP}/32")
        frr_ns.add_route(f"{GOBGP_VTEP}/32", via=GOBGP_IP)  # next-hop tracking must resolve the VTEP

        frr = lab.frr(frr_ns, FRR_CONFIG)
        gobgp = lab.gobgp(gobgp_ns, ASN, GOBGP_VTEP, [GobgpNeighbor(FRR_IP, ASN)])
        frr.wait_established(GOBGP_IP)
        gobgp.wait_established(FRR_IP)

        # FRR's type-3 route for VNI 110 reaches GoBGP with FRR's RD and the auto RT
        frr_rd = frr.wait_for(lambda: frr.evpn_vni(VNI).get("rd"), what="RD of VNI 110")
        imet = gobgp.wait_for(
            lambda: [p for p in gobgp.evpn_paths(3) if rd_string(p["nlri"]["value"]["rd"]) == frr_rd],
            what=f"type-3 route with RD {frr_rd}",
        )[0]
        assert imet["nlri"]["value"]["ip"] == FRR_VTEP
        assert f"{ASN}:{VNI}" in path_route_targets(imet)
        pmsi = path_attr(imet, 22)
        assert pmsi is not None and pmsi["label"] == VNI and pmsi["tunnel-id"] == FRR_VTEP

        # a MAC injected into GoBGP becomes a remote MAC in FRR and in the kernel FDB
        gobgp.add_route(
            f"macadv {REMOTE_MAC} 0.0.0.0 etag 0 label {VNI} rd {GOBGP_VTEP}:{VNI} "
            f"rt {ASN}:{VNI} encap vxlan nexthop {GOBGP_VTEP}"
        )

        def remote_mac() -> dict[str, Any] | None:
            mac = frr.evpn_macs(VNI).get(REMOTE_MAC)
            return mac if mac and mac.get("type") == "remote" else None

        mac = frr.wait_for(remote_mac, what=f"remote MAC {REMOTE_MAC}")
        assert mac["remoteVtep"] == GOBGP_VTEP
        fdb = frr_ns.bridge("fdb", "show", "dev", l2vni.vxlan)
        assert f"{REMOTE_MAC} dst {GOBGP_VTEP} self extern_learn" in fdb

        # a socket created while the thread is inside a namespace stays there: only there is the VTEP local
        with gobgp_ns.enter():
            sock = socket.socket()
        with sock:
            sock.bind((GOBGP_VTEP, 0))
            assert sock.getsockname()[0] == GOBGP_VTEP
        with socket.socket() as sock, pytest.raises(OSError) as excinfo:
            sock.bind((GOBGP_VTEP, 0))
        assert excinfo.value.errno == errno.EADDRNOTAVAIL

        # tshark decodes both UPDATEs from the capture
        messages = cap.bgp_messages(raw=True)
        updates = [m for m in messages if m.get("bgp.type") == "2"]
        type3 = [(m, n) for m in updates for n in evpn_nlris(m) if n["bgp.evpn.nlri.rt"] == "3"]
        assert type3, f"no type-3 NLRI in {len(updates)} UPDATEs"
        msg3, nlri3 = type3[0]
        assert rd_bytes_to_str(nlri3["bgp.evpn.nlri.rd"]) == frr_rd
        assert nlri3["bgp.evpn.nlri.ip.addr"] == FRR_VTEP
        kinds = {ext_community_kind(c): c for c in ext_communities(msg3)}
        assert kinds[(0x00, 0x02)]["bgp.ext_com.value_as2"] == str(ASN)
        assert kinds[(0x00, 0x02)]["bgp.ext_com.value_an4"] == str(VNI)
        assert kinds[(0x03, 0x0C)]["bgp.ext_com.tunnel_type"] == "8"
        assert find_values(path_attribute(msg3, 22), "bgp.evpn.nlri.vni") == [str(VNI)]
        type2 = [
            (n, raw)
            for m in updates
            for n, raw in evpn_nlris_raw(m)
            if n.get("bgp.evpn.nlri.mac_addr") == REMOTE_MAC
        ]
        assert type2, "GoBGP's type-2 UPDATE not in the capture"
        nlri2, raw2 = type2[0]
        # the wire carries the raw 24-bit VNI; tshark's mpls_ls1 shows it as a 20-bit label (110 >> 4)
        assert evpn_labels(nlri2, raw2) == [VNI]
        assert nlri2["bgp.evpn.nlri.mpls_ls1"] == str(VNI >> 4)

        names = [ns.name for ns in lab.namespaces]
        pids = [p for p in (*frr.pids().values(), gobgp.pid, cap.proc.pid if cap.proc else None) if p]
        workdir = lab.workdir
    _assert_cleaned(names, pids, workdir, kept=False)


def test_capture_keeps_packets_sent_just_before_stop(lab: Lab) -> None:
    """stop() right after the traffic loses nothing (dumpcap alone drops its last ~250 ms at SIGINT)."""
    if not tshark_available():
        pytest.skip("tshark not installed")
    a, b = lab.namespace("a"), lab.namespace("b")
    link = lab.veth(a, b, "10.9.1.1/30", "10.9.1.2/30")
    assert a.run(["ping", "-c1", "-W2", link.b.ip]).returncode == 0  # ARP resolved before the capture
    for i in range(3):
        cap = lab.capture(a, link.a.ifname, "icmp", name=f"icmp-{i}")
        assert a.run(["ping", "-c3", "-i0.01", "-W2", link.b.ip]).returncode == 0
        cap.stop(settle=0)  # every echo and reply was captured before this call: all must be in the file
        frames = tshark_bgp_json(cap.path, display_filter="icmp")
        kinds = [f["_source"]["layers"]["icmp"]["icmp.type"] for f in frames]
        assert kinds == ["8", "0"] * 3, f"{kinds}; {cap.logs()}"


def test_lab_cleans_up_when_the_body_raises(requires_root: None) -> None:
    """Daemons, captures and processes are killed and namespaces deleted even after an exception."""
    names: list[str] = []
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"), Lab("boom") as lab:
        a, b = lab.namespace("a"), lab.namespace("b")
        lab.veth(a, b, "10.0.0.1/30", "10.0.0.2/30")
        frr = lab.frr(a, "router bgp 65001\n bgp router-id 10.0.0.1\n no bgp default ipv4-unicast\n")
        gobgp = lab.gobgp(b, 65002, "10.0.0.2", [GobgpNeighbor("10.0.0.1", 65001)])
        cap = lab.capture(a, "to-b")
        sleeper = lab.popen(b, ["sleep", "300"], name="sleeper")
        names = [a.name, b.name]
        pids = [
            p for p in (*frr.pids().values(), gobgp.pid, cap.proc.pid if cap.proc else None, sleeper.pid) if p
        ]
        assert len(pids) == 5 and all(pid_alive(p) for p in pids)
        workdir = lab.workdir
        raise RuntimeError("boom")
    _assert_cleaned(names, pids, workdir, kept=True)  # kept for post-mortem after a failure
    run(["rm", "-rf", str(workdir)])


def test_lab_fixture_connects_namespaces(lab: Lab) -> None:
    """The ``lab`` fixture: two namespaces joined by a veth reach each other."""
    a, b = lab.namespace("a"), lab.namespace("b")
    pair = lab.veth(a, b, "10.9.0.1/30", "10.9.0.2/30")
    b.add_address("lo", "10.9.9.9/32")
    a.add_route("10.9.9.9/32", via=pair.b.ip)
    a.sysctl({"net.ipv4.conf.all.arp_accept": 1})
    assert a.run(["ping", "-c1", "-W2", "10.9.9.9"]).returncode == 0
    assert len(a.name) <= 15 and a.name != b.name


def _imet_nlri(rd: bytes, vtep: bytes) -> bytes:
    value = rd + bytes(4) + b"\x20" + vtep  # RD, Ethernet tag 0, IP length 32, originator
    return bytes([3, len(value)]) + value


def _update_imet(rd: bytes, vtep: bytes, vni: int) -> bytes:
    mp_reach = struct.pack("!HBB", 25, 70, 4) + vtep + b"\x00" + _imet_nlri(rd, vtep)
    ext = struct.pack("!BBHI", 0x00, 0x02, ASN, vni) + struct.pack("!BBIH", 0x03, 0x0C, 0, 8)
    pmsi = struct.pack("!BB", 0, 6) + vni.to_bytes(3, "big") + vtep
    attrs = b"".join(
        [
            b"\x40\x01\x01\x00",  # ORIGIN IGP
            b"\x40\x02\x00",  # empty AS_PATH
            bytes([0x80, 14, len(mp_reach)]) + mp_reach,
            bytes([0xC0, 16, len(ext)]) + ext,
            bytes([0xC0, 22, len(pmsi)]) + pmsi,
        ]
    )
    body = b"\x00\x00" + struct.pack("!H", len(attrs)) + attrs
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), 2) + body


def test_tshark_decodes_our_bytes() -> None:
    """write_bgp_pcap + tshark: several messages per segment and a message split over segments."""
    if not tshark_available():
        pytest.skip("tshark not installed")
    keepalive = b"\xff" * 16 + b"\x00\x13\x04"
    rd, vtep = bytes.fromhex("00010a0000010002"), bytes([10, 0, 0, 1])
    update = _update_imet(rd, vtep, VNI)
    messages = tshark_decode_bytes([[keepalive, update], update[:30], update[30:]], raw=True)
    assert [m["bgp.type"] for m in messages] == ["4", "2", "2"]
    for message in messages[1:]:
        (nlri,) = evpn_nlris(message)
        assert rd_bytes_to_str(nlri["bgp.evpn.nlri.rd"]) == "10.0.0.1:2"
        assert nlri["bgp.evpn.nlri.ip.addr"] == "10.0.0.1"
        assert [ext_community_kind(c) for c in ext_communities(message)] == [(0x00, 0x02), (0x03, 0x0C)]
        assert find_values(path_attribute(message, 22), "bgp.evpn.nlri.vni") == ["110"]
        ((_, raw),) = evpn_nlris_raw(message)
        assert raw == _imet_nlri(rd, vtep)
