"""The native engine against real FRR 8.4 in network namespaces (over a veth), via ``speaker.tools.bgp_peer``.

Our engine runs as a subprocess in its own namespace (``ip netns exec NS python -m speaker.tools.bgp_peer``),
reporting what it receives as JSON lines and taking commands on stdin; FRR is queried with vtysh.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.capabilities import FourOctetAs, GracefulRestart, Multiprotocol, RouteRefresh
from evpn.codec.extcommunity import Encapsulation, TunnelType
from evpn.codec.families import Family
from evpn.codec.messages import (
    Keepalive,
    MessageDecoder,
    MessageType,
    NotificationMessage,
    Open,
    encode_mp_reach,
    encode_route,
    frame,
)
from evpn.route_target import RouteTarget
from speaker.tools.bgp_peer import route_from_json
from tests.lab import FrrRouter, Lab, Namespace, create_l2vni

pytestmark = [pytest.mark.interop, pytest.mark.root]

ASN = 64512
VNI = 110
FRR_IP, SPK_IP = "192.168.100.1", "192.168.100.2"
RAW_IP, SPK_RAW_IP = "192.168.101.1", "192.168.101.2"
FRR_VTEP, SPK_VTEP = "10.255.0.1", "10.255.0.2"
RD = f"{SPK_VTEP}:{VNI}"
MAC = "02:00:00:00:aa:01"
RMAC = "02:00:00:00:00:02"
TYPE2 = {
    "type": 2,
    "rd": RD,
    "mac": MAC,
    "ip": "192.170.1.30",
    "vni": VNI,
    "l3vni": 100,
    "router_mac": RMAC,
    "nexthop": SPK_VTEP,
}
TYPE3 = {"type": 3, "rd": RD, "vni": VNI, "nexthop": SPK_VTEP}
TYPE2_KEY = f"[2]:[0]:[48]:[{MAC}]:[32]:[192.170.1.30]"
TYPE3_KEY = f"[3]:[0]:[32]:[{SPK_VTEP}]"


def frr_config(peer_asn: int, password: str | None = None) -> str:
    pw = f" neighbor {SPK_IP} password {password}\n" if password else ""
    return f"""
router bgp {ASN}
 bgp router-id {FRR_VTEP}
 no bgp default ipv4-unicast
 no bgp ebgp-requires-policy
 neighbor {SPK_IP} remote-as {peer_asn}
 neighbor {SPK_IP} timers 3 9
 neighbor {SPK_IP} timers connect 1
{pw} address-family l2vpn evpn
  neighbor {SPK_IP} activate
  advertise-all-vni
 exit-address-family
"""


class PeerProcess:
    """``bgp_peer`` in a namespace: JSON lines out (collected by a thread), JSON commands in."""

    def __init__(self, lab: Lab, ns: Namespace, args: list[str]) -> None:
        self.lines: list[dict[str, Any]] = []
        self.stderr_path = lab.workdir / "bgp_peer.stderr"
        stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed by the lab cleanup below
        lab.add_cleanup(stderr.close, "close bgp_peer stderr")
        lab.add_log_source("bgp_peer stderr", lambda: self.stderr_path.read_text(errors="replace")[-20000:])
        lab.add_log_source("bgp_peer stdout", lambda: "\n".join(json.dumps(x) for x in self.lines[-200:]))
        self.proc = lab.popen(
            ns,
            [sys.executable, "-m", "speaker.tools.bgp_peer", "--log-level", "DEBUG", *args],
            name="bgp_peer",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        lab.add_cleanup(self._close_stdin, "close bgp_peer stdin")
        threading.Thread(target=self._read, daemon=True).start()

    def _close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for raw in self.proc.stdout:
                try:
                    self.lines.append(json.loads(raw))
                except json.JSONDecodeError:
                    self.lines.append({"event": "garbage", "text": raw.decode(errors="replace")})

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def wait(
        self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20.0, start: int = 0
    ) -> dict[str, Any]:
        """The first line from index ``start`` on that matches ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if predicate(line):
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise TimeoutError(f"bgp_peer: no {what}; rc={self.proc.poll()} lines={self.lines[-20:]}")

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == kind]

    def states(self) -> dict[str, dict[str, Any]]:
        mark = len(self.lines)
        self.send({"op": "states"})
        line = self.wait(lambda x: x.get("event") == "states", "states", start=mark)
        return {p["peer"]: p for p in line["peers"]}


def frr_route(frr: FrrRouter, rd: str, key: str) -> dict[str, Any] | None:
    data = frr.vtysh_json(f"show bgp l2vpn evpn route rd {rd}")
    entry = data.get(rd, {}).get(key)
    if not entry or not entry.get("paths"):
        return None
    path: dict[str, Any] = entry["paths"][0][0]
    return path


def frr_peer(frr: FrrRouter) -> dict[str, Any]:
    peers: dict[str, Any] = frr.vtysh_json("show bgp summary")["l2VpnEvpn"]["peers"]
    return dict(peers[SPK_IP])


def setup(lab: Lab, peer_asn: int, password: str | None = None) -> tuple[Namespace, Namespace, FrrRouter]:
    frr_ns, spk_ns = lab.namespace("frr"), lab.namespace("spk")
    lab.veth(frr_ns, spk_ns, f"{FRR_IP}/30", f"{SPK_IP}/30")
    create_l2vni(frr_ns, VNI, FRR_VTEP)
    spk_ns.add_address("lo", f"{SPK_VTEP}/32")
    frr_ns.add_route(f"{SPK_VTEP}/32", via=SPK_IP)  # next-hop tracking must resolve our VTEP
    frr = lab.frr(frr_ns, frr_config(peer_asn, password))
    return frr_ns, spk_ns, frr


def malformed_update(spec: dict[str, Any], ebgp_asn: int | None = None) -> bytes:
    """One of our NLRIs again, with an EXTENDED_COMMUNITIES attribute of length 7 (RFC 7606 §7.14)."""
    route = route_from_json(spec)
    if ebgp_asn is None:
        attrs = PathAttributes(as_path=AsPath(), local_pref=100).encode()
    else:
        attrs = PathAttributes(as_path=AsPath.sequence(ebgp_asn)).encode()
    bad_ext = (
        b"\xc0\x10\x07"
        + (RouteTarget.from_text(f"{ASN}:{VNI}").packed + Encapsulation(TunnelType.VXLAN).packed)[:7]
    )
    mp = encode_mp_reach(Family.L2VPN_EVPN, ipaddress.IPv4Address(SPK_VTEP).packed, encode_route(route))
    block = mp + attrs + bad_ext
    return frame(MessageType.UPDATE, b"\x00\x00" + len(block).to_bytes(2, "big") + block)


class RawBgp:
    """A blocking BGP speaker on a socket created inside a namespace (our codec, no engine)."""

    def __init__(self, ns: Namespace, host: str, asn: int, router_id: str) -> None:
        with ns.enter():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect((host, 179))
        self.decoder = MessageDecoder()
        self.buffer = bytearray()
        caps = (Multiprotocol(25, 70), RouteRefresh(), FourOctetAs(asn), GracefulRestart(120))
        self.sock.sendall(Open(asn, 9, ipaddress.IPv4Address(router_id), caps).encode())
        assert isinstance(self.read(), Open)
        self.sock.sendall(Keepalive().encode())

    def read(self) -> object:
        while True:
            messages, _ = self.decoder.split(self.buffer)
            if messages:
                del self.buffer[: len(messages[0])]
                message = self.decoder.decode(messages[0])
                if isinstance(message, NotificationMessage):
                    raise AssertionError(f"raw peer got {message}")
                return message
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buffer += data

    def close(self) -> None:
        self.sock.close()


def test_native_engine_with_frr_ibgp(lab: Lab) -> None:
    """Established; our type-2/3 in FRR with RD/RT/VNI/Router's MAC/PMSI; FRR's type-3 back to us decoded;
    a malformed UPDATE each way is treat-as-withdraw and both sessions stay up."""
    _, spk_ns, frr = setup(lab, ASN)
    raw_ns = lab.namespace("raw")
    lab.veth(raw_ns, spk_ns, f"{RAW_IP}/30", f"{SPK_RAW_IP}/30")
    peer = PeerProcess(
        lab,
        spk_ns,
        [
            "--asn", str(ASN), "--router-id", SPK_VTEP,
            "--neighbor", f"{FRR_IP},asn={ASN}",
            "--neighbor", f"{RAW_IP},asn={ASN},passive",
            "--route", json.dumps(TYPE3), "--route", json.dumps(TYPE2),
        ],
    )  # fmt: skip
    peer.wait(lambda x: x.get("event") == "ready", "ready")

    frr.wait_established(SPK_IP)
    summary = frr_peer(frr)
    assert summary["state"] == "Established" and summary["remoteAs"] == ASN
    up = peer.wait(lambda x: x.get("event") == "peer_up" and x["peer"] == FRR_IP, "PeerUp from FRR")
    assert up["ibgp"] and up["router_id"] == FRR_VTEP and up["families"] == ["l2vpn evpn"]

    # our routes, as FRR sees them
    t3 = frr.wait_for(lambda: frr_route(frr, RD, TYPE3_KEY), what="our type-3 in FRR")
    assert t3["pmsi"] == {"tunnelType": "Ingress Replication", "label": VNI}
    assert t3["extendedCommunity"]["string"] == f"RT:{ASN}:{VNI} ET:8"
    assert t3["nexthops"][0]["ip"] == SPK_VTEP and t3["valid"]
    t2 = frr.wait_for(lambda: frr_route(frr, RD, TYPE2_KEY), what="our type-2 in FRR")
    assert t2["vni"] == f"{VNI}/100"  # label 1 = L2VNI, label 2 = L3VNI, raw 24 bits
    assert t2["extendedCommunity"]["string"] == f"RT:{ASN}:{VNI} ET:8 Rmac:{RMAC}"
    assert t2["nexthops"][0]["ip"] == SPK_VTEP and t2["locPrf"] == 100
    # and FRR acted on them: remote MAC and flood VTEP in VNI 110
    mac = frr.wait_for(lambda: frr.evpn_macs(VNI).get(MAC), what="remote MAC from our type-2")
    assert mac["type"] == "remote" and mac["remoteVtep"] == SPK_VTEP
    assert SPK_VTEP in frr.vtysh_json(f"show evpn vni {VNI}")["numRemoteVteps"]

    # FRR's type-3 comes back to us decoded, then its End-of-RIB
    frr_rd = frr.wait_for(lambda: frr.evpn_vni(VNI).get("rd"), what="FRR's RD")
    routes = peer.wait(
        lambda x: x.get("event") == "routes" and any(r.get("rd") == frr_rd for r in x["announced"]),
        "FRR's type-3",
    )
    (imet,) = [r for r in routes["announced"] if r["rd"] == frr_rd]
    assert imet["type"] == 3 and imet["originator_ip"] == FRR_VTEP and imet["next_hop"] == FRR_VTEP
    assert imet["pmsi"] == {"label": VNI, "tunnel_id": FRR_VTEP, "tunnel_type": 6}
    assert imet["route_targets"] == [f"{ASN}:{VNI}"] and imet["encapsulation"] == "vxlan"
    peer.wait(lambda x: x.get("event") == "end_of_rib" and x["peer"] == FRR_IP, "FRR's End-of-RIB")

    # FRR 8.4 applies RFC 7606 to eBGP peers only: on iBGP a malformed attribute resets the session
    # (NOTIFICATION 3/9). We reconnect and replay our table. (eBGP treat-as-withdraw: the next test.)
    mark = len(peer.lines)
    peer.send({"op": "raw", "hex": malformed_update(TYPE2).hex()})
    down = peer.wait(
        lambda x: x.get("event") == "peer_down" and x["peer"] == FRR_IP, "FRR's reset", start=mark
    )
    assert "3/9" in down["reason"]
    peer.wait(lambda x: x.get("event") == "peer_up" and x["peer"] == FRR_IP, "re-established", start=mark)
    frr.wait_established(SPK_IP)
    frr.wait_for(lambda: frr_route(frr, RD, TYPE2_KEY), what="type-2 replayed after the reset")

    # a raw peer sends us a valid route, then the same NLRI malformed: we withdraw it and stay up
    raw = RawBgp(raw_ns, SPK_RAW_IP, ASN, "10.255.0.9")
    try:
        peer.wait(lambda x: x.get("event") == "peer_up" and x["peer"] == RAW_IP, "PeerUp from the raw peer")
        good = route_from_json(
            {"type": 2, "rd": "10.255.0.9:110", "mac": "02:00:00:00:bb:01", "nexthop": "10.255.0.9"}
        )
        attrs = PathAttributes(
            as_path=AsPath(), local_pref=100, ext_communities=(RouteTarget.from_text("64512:110"),)
        )
        mp = encode_mp_reach(
            Family.L2VPN_EVPN, ipaddress.IPv4Address("10.255.0.9").packed, encode_route(good)
        )
        raw.sock.sendall(
            frame(
                MessageType.UPDATE,
                b"\x00\x00" + len(mp + attrs.encode()).to_bytes(2, "big") + mp + attrs.encode(),
            )
        )
        peer.wait(
            lambda x: (
                x.get("event") == "routes"
                and any(r.get("mac") == "02:00:00:00:bb:01" for r in x["announced"])
            ),
            "the raw peer's route",
        )
        bad_block = (
            mp + PathAttributes(as_path=AsPath(), local_pref=100).encode() + b"\xc0\x10\x07" + bytes(7)
        )
        raw.sock.sendall(
            frame(MessageType.UPDATE, b"\x00\x00" + len(bad_block).to_bytes(2, "big") + bad_block)
        )
        peer.wait(
            lambda x: (
                x.get("event") == "routes"
                and any(r.get("mac") == "02:00:00:00:bb:01" for r in x["withdrawn"])
            ),
            "treat-as-withdraw of the raw peer's route",
        )
        raw.sock.sendall(Keepalive().encode())
        time.sleep(0.5)
        states = peer.states()
        assert states[RAW_IP]["state"] == "Established" and states[FRR_IP]["state"] == "Established"
        assert "treat-as-withdraw" in states[RAW_IP]["last_error"]
        assert not [x for x in peer.events("peer_down") if x["peer"] == RAW_IP]
    finally:
        raw.close()

    # graceful restart (RFC 4724 §4): FRR saw our capability (restart time, L2VPN EVPN, F bit clear) ...
    text = frr.vtysh(f"show bgp neighbors {SPK_IP}")
    assert "Graceful Restart Capability: advertised and received" in text
    assert "Remote Restart timer is 120 seconds" in text and "L2VPN EVPN(not preserved)" in text
    # ... and a graceful stop closes the session without a NOTIFICATION. FRR 8.4 still drops our EVPN
    # routes at once: its helper only keeps stale routes of SAFIs up to MPLS VPN (FOREACH_AFI_SAFI_NSF).
    peer.send({"op": "stop", "graceful": True})
    assert peer.proc.wait(10) == 0
    frr.wait_for(lambda: frr_peer(frr)["state"] != "Established", what="session down")
    assert "Peer closed the session" in frr.vtysh(f"show bgp neighbors {SPK_IP}")


@pytest.mark.parametrize("passive", [False, True], ids=["we-connect", "frr-connects"])
def test_native_engine_with_frr_ebgp_md5(lab: Lab, passive: bool) -> None:
    """eBGP with a TCP MD5 password (RFC 2385) on both sides, on our connecting socket or on our listening
    socket (passive); AS_PATH as each side expects; FRR treats our malformed UPDATE as withdraw."""
    password = "evpn-s3cret"
    _, spk_ns, frr = setup(lab, 64513, password)
    peer = PeerProcess(
        lab,
        spk_ns,
        ["--asn", "64513", "--router-id", SPK_VTEP, "--neighbor", f"{FRR_IP},asn={ASN},password={password}" + (",passive" if passive else ""),
         "--route", json.dumps(TYPE3)],
    )  # fmt: skip
    frr.wait_established(SPK_IP)
    up = peer.wait(lambda x: x.get("event") == "peer_up", "PeerUp")
    assert not up["ibgp"] and up["asn"] == ASN
    t3 = frr.wait_for(lambda: frr_route(frr, RD, TYPE3_KEY), what="our type-3 in FRR")
    assert t3["aspath"]["string"] == "64513" and t3["pmsi"]["label"] == VNI
    routes = peer.wait(lambda x: x.get("event") == "routes" and x["announced"], "FRR's routes")
    assert routes["as_path"] == str(ASN) and routes["local_pref"] is None
    # a malformed UPDATE for our type-3: FRR treats it as withdraw on eBGP and the session stays
    dropped_before = frr_peer(frr).get("connectionsDropped", 0)
    peer.send({"op": "raw", "hex": malformed_update(TYPE3, ebgp_asn=64513).hex()})
    frr.wait_for(lambda: frr_route(frr, RD, TYPE3_KEY) is None, what="type-3 withdrawn by treat-as-withdraw")
    time.sleep(1.0)
    assert frr_peer(frr)["state"] == "Established"
    assert frr_peer(frr).get("connectionsDropped", 0) == dropped_before
    assert not peer.events("peer_down")
    assert "EXT_COMMUNITIES" in frr.log_file("bgpd").read_text()
    peer.send({"op": "announce", "route": TYPE3})  # the session still carries UPDATEs
    frr.wait_for(lambda: frr_route(frr, RD, TYPE3_KEY), what="type-3 announced again")


def test_native_engine_with_frr_over_ipv6(lab: Lab) -> None:
    """The session runs over IPv6 (our IPv4 VTEP stays the EVPN next hop); routes flow both ways."""
    frr_ns, spk_ns = lab.namespace("frr"), lab.namespace("spk")
    pair = lab.veth(frr_ns, spk_ns)
    frr_ns.ip("addr", "add", "fd00:100::1/64", "dev", pair.a.ifname, "nodad")
    spk_ns.ip("addr", "add", "fd00:100::2/64", "dev", pair.b.ifname, "nodad")
    frr_ns.ip("addr", "add", f"{FRR_IP}/30", "dev", pair.a.ifname)
    spk_ns.ip("addr", "add", f"{SPK_IP}/30", "dev", pair.b.ifname)
    create_l2vni(frr_ns, VNI, FRR_VTEP)
    spk_ns.add_address("lo", f"{SPK_VTEP}/32")
    frr_ns.add_route(f"{SPK_VTEP}/32", via=SPK_IP)
    config = frr_config(ASN).replace(SPK_IP, "fd00:100::2")
    frr = lab.frr(frr_ns, config)
    peer = PeerProcess(
        lab,
        spk_ns,
        [
            "--asn",
            str(ASN),
            "--router-id",
            SPK_VTEP,
            "--neighbor",
            f"fd00:100::1,asn={ASN}",
            "--route",
            json.dumps(TYPE3),
        ],
    )
    frr.wait_established("fd00:100::2")
    up = peer.wait(lambda x: x.get("event") == "peer_up", "PeerUp")
    assert up["peer"] == "fd00:100::1" and up["router_id"] == FRR_VTEP
    t3 = frr.wait_for(lambda: frr_route(frr, RD, TYPE3_KEY), what="our type-3 in FRR")
    assert t3["nexthops"][0]["ip"] == SPK_VTEP and t3["pmsi"]["label"] == VNI
    routes = peer.wait(lambda x: x.get("event") == "routes" and x["announced"], "FRR's type-3")
    assert routes["announced"][0]["originator_ip"] == FRR_VTEP
