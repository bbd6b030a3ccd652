"""``evpn-speaker decode``: hex arguments and stdin, pcap and pcapng input, JSON and text output, errors."""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.capabilities import FourOctetAs, Multiprotocol
from evpn.codec.evpn_nlri import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IPAddress,
    IpPrefixRoute,
    MacIpRoute,
    encode_evpn_route,
)
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION, DefaultGateway, MacMobility, RouterMac
from evpn.codec.families import Family
from evpn.codec.messages import (
    Keepalive,
    MpReach,
    MpUnreach,
    Open,
    Update,
    encode_mp_reach,
    encode_update,
    end_of_rib,
    frame,
)
from evpn.codec.pmsi import PmsiTunnel
from evpn.esi import Esi
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from speaker.cli import main
from speaker.pcap import (
    Endpoint,
    StreamData,
    TcpReassembler,
    TcpSegment,
    bgp_messages,
    read_capture,
)

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

REPO = Path(__file__).resolve().parents[2]
RD = RouteDistinguisher.from_text("10.0.0.1:2")
RD5 = RouteDistinguisher.from_text("65000:100")
MAC = MacAddress.from_text("aa:bb:cc:dd:ee:ff")
RMAC = MacAddress.from_text("02:00:0a:00:00:01")
ESI = Esi.from_text("00:11:22:33:44:55:66:77:88:99")
ZERO_ESI = "00:00:00:00:00:00:00:00:00:00"
VTEP = ipaddress.IPv4Address("10.0.0.1")
VTEP6 = ipaddress.IPv6Address("2001:db8::1")
RT = RouteTarget.from_text("65000:110")

L2_ATTRS = PathAttributes(
    as_path=AsPath.sequence(65000),
    local_pref=100,
    ext_communities=(RT, VXLAN_ENCAPSULATION, RouterMac(RMAC), MacMobility(3, sticky=True), DefaultGateway()),
)
IMET_ATTRS = PathAttributes(
    as_path=AsPath.sequence(65000),
    ext_communities=(RT, VXLAN_ENCAPSULATION),
    pmsi=PmsiTunnel.ingress_replication(110, VTEP),
)
ES_ATTRS = PathAttributes(
    as_path=AsPath.sequence(65000), ext_communities=(RouteTarget.from_text("10.0.0.1:5"),)
)

TYPE1 = EthernetAdRoute(RD, ESI, 0xFFFFFFFF, 110)
TYPE2 = MacIpRoute(RD, MAC, ipaddress.IPv4Address("192.170.1.3"), 110, 100)
TYPE2_V6 = MacIpRoute(RD, MAC, ipaddress.IPv6Address("2001:db8::3"), 110)
TYPE3 = InclusiveMulticastRoute(RD, VTEP)
TYPE4 = EthernetSegmentRoute(RD, ESI, VTEP)
TYPE5 = IpPrefixRoute(RD5, ipaddress.IPv4Network("192.168.10.0/24"), 100)
TYPE5_V6 = IpPrefixRoute(
    RD5, ipaddress.IPv6Network("2001:db8:5::/64"), 100, ipaddress.IPv6Address("2001:db8:5::1"), ESI, 7
)

NH = {"next_hop": "10.0.0.1"}
L2_KEYS: dict[str, Any] = {
    "route_targets": ["65000:110"],
    "encapsulation": "vxlan",
    "router_mac": "02:00:0a:00:00:01",
    "mac_mobility": {"sequence": 3, "sticky": True},
    "default_gateway": True,
}


def announce(attrs: PathAttributes, next_hop: IPAddress, *routes: EvpnRoute) -> bytes:
    return encode_update(Update(attributes=attrs, mp_reach=MpReach(25, 70, (next_hop,), routes)))


def withdraw(*routes: EvpnRoute) -> bytes:
    return encode_update(Update(mp_unreach=MpUnreach(25, 70, routes)))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["decode", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# -------------------------------------------------------------------------------------------------------
# hex input, JSON values for every route type


EXPECTED_TYPE2 = {
    "action": "announce",
    "type": 2,
    "rd": "10.0.0.1:2",
    "esi": ZERO_ESI,
    "ethernet_tag": 0,
    "mac": "aa:bb:cc:dd:ee:ff",
    "ip": "192.170.1.3",
    "labels": [110, 100],
    **NH,
    **L2_KEYS,
}


def test_json_every_route_type(capsys: pytest.CaptureFixture[str]) -> None:
    messages = [
        announce(L2_ATTRS, VTEP, TYPE2, TYPE2_V6),
        announce(IMET_ATTRS, VTEP, TYPE3),
        announce(ES_ATTRS, VTEP, TYPE1, TYPE4),
        announce(
            PathAttributes(ext_communities=(RT, VXLAN_ENCAPSULATION, RouterMac(RMAC))), VTEP6, TYPE5, TYPE5_V6
        ),
    ]
    rc, out, err = run_cli(capsys, "--json", *(m.hex() for m in messages))
    assert (rc, err) == (0, "")
    got = json_lines(out)
    es_keys = {"next_hop": "10.0.0.1", "route_targets": ["10.0.0.1:5"], "default_gateway": False}
    l3_keys = {
        "next_hop": "2001:db8::1",
        "route_targets": ["65000:110"],
        "encapsulation": "vxlan",
        "router_mac": "02:00:0a:00:00:01",
        "default_gateway": False,
    }
    assert got == [
        EXPECTED_TYPE2,
        {
            "action": "announce",
            "type": 2,
            "rd": "10.0.0.1:2",
            "esi": ZERO_ESI,
            "ethernet_tag": 0,
            "mac": "aa:bb:cc:dd:ee:ff",
            "ip": "2001:db8::3",
            "labels": [110],
            **NH,
            **L2_KEYS,
        },
        {
            "action": "announce",
            "type": 3,
            "rd": "10.0.0.1:2",
            "ethernet_tag": 0,
            "originator_ip": "10.0.0.1",
            **NH,
            "route_targets": ["65000:110"],
            "encapsulation": "vxlan",
            "default_gateway": False,
            "pmsi": {"tunnel_type": 6, "label": 110, "tunnel_id": "10.0.0.1"},
        },
        {
            "action": "announce",
            "type": 1,
            "rd": "10.0.0.1:2",
            "esi": "00:11:22:33:44:55:66:77:88:99",
            "ethernet_tag": 4294967295,
            "labels": [110],
            **es_keys,
        },
        {
            "action": "announce",
            "type": 4,
            "rd": "10.0.0.1:2",
            "esi": "00:11:22:33:44:55:66:77:88:99",
            "originator_ip": "10.0.0.1",
            **es_keys,
        },
        {
            "action": "announce",
            "type": 5,
            "rd": "65000:100",
            "esi": ZERO_ESI,
            "ethernet_tag": 0,
            "prefix": "192.168.10.0/24",
            "gateway_ip": "0.0.0.0",
            "labels": [100],
            **l3_keys,
        },
        {
            "action": "announce",
            "type": 5,
            "rd": "65000:100",
            "esi": "00:11:22:33:44:55:66:77:88:99",
            "ethernet_tag": 7,
            "prefix": "2001:db8:5::/64",
            "gateway_ip": "2001:db8:5::1",
            "labels": [100],
            **l3_keys,
        },
    ]


def test_json_withdraw_has_route_keys_only(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "--json", withdraw(TYPE2, TYPE3, TYPE5).hex())
    assert rc == 0
    got = json_lines(out)
    assert [d["action"] for d in got] == ["withdraw"] * 3
    assert got[0] == {
        "action": "withdraw",
        "type": 2,
        "rd": "10.0.0.1:2",
        "esi": ZERO_ESI,
        "ethernet_tag": 0,
        "mac": "aa:bb:cc:dd:ee:ff",
        "ip": "192.170.1.3",
        "labels": [110, 100],
    }
    assert got[1] == {
        "action": "withdraw",
        "type": 3,
        "rd": "10.0.0.1:2",
        "ethernet_tag": 0,
        "originator_ip": "10.0.0.1",
    }
    assert got[2]["prefix"] == "192.168.10.0/24"


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    data = announce(L2_ATTRS, VTEP, TYPE2) + announce(IMET_ATTRS, VTEP, TYPE3) + withdraw(TYPE5)
    rc, out, err = run_cli(capsys, data.hex())
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "announce [2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]:[32]:[192.170.1.3] RD 10.0.0.1:2 label 110/100 "
        "nexthop 10.0.0.1 RT:65000:110 ET:8 Rmac:02:00:0a:00:00:01 MM:3, sticky MAC Default Gateway",
        "announce [3]:[0]:[32]:[10.0.0.1] RD 10.0.0.1:2 nexthop 10.0.0.1 RT:65000:110 ET:8 "
        "PMSI:IR:110:10.0.0.1",
        "withdraw [5]:[0]:[24]:[192.168.10.0] RD 65000:100 label 100",
    ]


def test_non_evpn_messages_silent_unless_all(capsys: pytest.CaptureFixture[str]) -> None:
    opening = Open(65000, 90, VTEP, (Multiprotocol(25, 70), FourOctetAs(65000))).encode()
    data = opening + Keepalive().encode() + announce(L2_ATTRS, VTEP, TYPE2) + end_of_rib(Family.L2VPN_EVPN)
    rc, out, _ = run_cli(capsys, "--json", data.hex())
    assert rc == 0
    assert [d["type"] for d in json_lines(out)] == [2]
    rc, out, _ = run_cli(capsys, "--json", "--all", data.hex())
    got = json_lines(out)
    assert got[0] == {
        "message": "open",
        "asn": 65000,
        "hold_time": 90,
        "bgp_id": "10.0.0.1",
        "capabilities": ["mp:l2vpn evpn", "as4:65000"],
    }
    assert got[1] == {"message": "keepalive"}
    assert got[2] == EXPECTED_TYPE2
    assert got[3] == {"message": "end-of-rib", "family": "l2vpn evpn"}
    rc, out, _ = run_cli(capsys, "--all", data.hex())
    lines = out.splitlines()
    assert lines[0] == "OPEN AS 65000 hold 90 id 10.0.0.1 mp:l2vpn evpn as4:65000"
    assert lines[1] == "KEEPALIVE"
    assert lines[3] == "End-of-RIB l2vpn evpn"


# -------------------------------------------------------------------------------------------------------
# stdin


def test_hex_from_stdin_with_whitespace(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = announce(L2_ATTRS, VTEP, TYPE2).hex(), withdraw(TYPE2).hex()
    text = (
        "# two messages\n"
        + " ".join(first[i : i + 32] for i in range(0, len(first), 32))
        + "\n\t"
        + second
        + "\n"
    )
    for argv in (["--json"], ["--json", "-"]):
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))
        rc, out, err = run_cli(capsys, *argv)
        assert (rc, err) == (0, "")
        assert [d["action"] for d in json_lines(out)] == ["announce", "withdraw"]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_input_on_a_terminal_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Tty())
    rc, out, err = run_cli(capsys)
    assert rc == 2 and out == ""
    assert "nothing to decode" in err


@pytest.mark.parametrize("bad", ["ffzz", "fff", "-"])
def test_bad_hex_is_a_usage_error(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    argv = ["00", bad] if bad == "-" else [bad]
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 2
    assert err.startswith("evpn-speaker decode: error:")


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(capsys, "--bogus")
    assert rc == 2
    assert "unrecognized arguments" in err


# -------------------------------------------------------------------------------------------------------
# malformed messages: the RFC 7606 outcome on stderr, decoding goes on, exit 1


def test_malformed_treat_as_withdraw_then_continues(capsys: pytest.CaptureFixture[str]) -> None:
    bad = announce(L2_ATTRS, VTEP, TYPE2)
    origin = b"\x40\x01\x01\x00"
    assert bad.count(origin) == 1
    bad = bad.replace(origin, b"\x40\x01\x01\x07")  # ORIGIN 7 does not exist (RFC 7606 §7.1)
    rc, out, err = run_cli(capsys, "--json", bad.hex(), announce(IMET_ATTRS, VTEP, TYPE3).hex())
    assert rc == 1
    assert [d["type"] for d in json_lines(out)] == [3]
    assert err.count("\n") == 1
    assert err.startswith("error: message 1 (UPDATE, ")
    assert "RFC 7606 treat-as-withdraw (1 routes treated as withdrawn): ORIGIN malformed" in err


def test_attribute_discard_keeps_the_routes(capsys: pytest.CaptureFixture[str]) -> None:
    attrs = (
        encode_mp_reach(Family.L2VPN_EVPN, VTEP.packed, encode_evpn_route(TYPE3))
        + IMET_ATTRS.encode()
        + b"\xc0\x07\x03abc"  # AGGREGATOR of 3 bytes: attribute discard (RFC 7606 §7.7)
    )
    message = frame(2, b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs)
    rc, out, err = run_cli(capsys, "--json", message.hex())
    assert rc == 1
    assert [d["type"] for d in json_lines(out)] == [3]
    assert "RFC 7606 attribute-discard (attribute 7 discarded, routes kept)" in err


def test_broken_framing_is_a_session_reset_and_decoding_resumes(capsys: pytest.CaptureFixture[str]) -> None:
    broken = b"\xfe" + Keepalive().encode()[1:]
    rc, out, err = run_cli(capsys, "--json", (broken + announce(L2_ATTRS, VTEP, TYPE2)).hex())
    assert rc == 1
    assert json_lines(out) == [EXPECTED_TYPE2]
    lines = err.splitlines()
    assert lines[0] == (
        "error: offset 0: RFC 7606 session-reset (NOTIFICATION 1/1 Message Header Error / Connection Not "
        "Synchronized): message marker is not all ones"
    )
    assert lines[1] == "note: offset 0: skipped 19 bytes to the next BGP header"


def test_nlri_error_is_a_session_reset(capsys: pytest.CaptureFixture[str]) -> None:
    attrs = encode_mp_reach(Family.L2VPN_EVPN, VTEP.packed, b"\x02\x05abcde") + L2_ATTRS.encode()
    message = frame(2, b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs)
    rc, out, err = run_cli(capsys, message.hex())
    assert (rc, out) == (1, "")
    assert "RFC 7606 session-reset (NOTIFICATION 3/9 UPDATE Message Error / Optional Attribute Error)" in err
    assert "type-2 route: bad length 5" in err


def test_truncated_input(capsys: pytest.CaptureFixture[str]) -> None:
    whole = announce(L2_ATTRS, VTEP, TYPE2)
    rc, out, err = run_cli(capsys, "--json", (whole + whole[:30]).hex())
    assert rc == 1
    assert len(json_lines(out)) == 1
    assert "30 bytes left over: truncated BGP message" in err


def test_two_octet_as(capsys: pytest.CaptureFixture[str]) -> None:
    message = encode_update(
        Update(attributes=L2_ATTRS, mp_reach=MpReach(25, 70, (VTEP,), (TYPE2,))), four_octet_as=False
    )
    rc, out, err = run_cli(capsys, "--json", "--two-octet-as", message.hex())
    assert (rc, err) == (0, "")
    assert json_lines(out) == [EXPECTED_TYPE2]
    rc, _, err = run_cli(capsys, message.hex())
    assert rc == 1
    assert "treat-as-withdraw" in err


# -------------------------------------------------------------------------------------------------------
# pcap and pcapng


CLIENT = ("192.0.2.1", 50179)
SERVER = ("192.0.2.2", 179)
CLIENT6 = ("2001:db8:ff::1", 50179)
SERVER6 = ("2001:db8:ff::2", 179)
ISN_C, ISN_S = 4_294_967_000, 7_000  # the client's sequence numbers wrap past 2**32


class Flow:
    """Builds the packets of one TCP connection with chosen segments, for scapy to write."""

    def __init__(self, link: str = "ether", v6: bool = False, server_port: int = 179) -> None:
        self.link = link
        self.client, self.server = (CLIENT6, SERVER6) if v6 else (CLIENT, SERVER)
        self.server = (self.server[0], server_port)
        self.v6 = v6
        self.packets: list[Any] = []
        self.sent = {True: 0, False: 0}  # bytes written per direction (True: client to server)

    def _packet(self, from_client: bool, seq: int, flags: str, payload: bytes) -> Any:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether
        from scapy.packet import Raw

        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        l3 = (IPv6(src=src[0], dst=dst[0]) if self.v6 else IP(src=src[0], dst=dst[0])) / TCP(
            sport=src[1], dport=dst[1], flags=flags, seq=seq % 2**32, ack=0
        )
        if payload:
            l3 = l3 / Raw(payload)
        proto = 0x86DD if self.v6 else 0x0800
        pkt: Any
        if self.link == "ether":
            pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3
        elif self.link == "sll":
            pkt = CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=proto) / l3
        elif self.link == "sll2":
            pkt = CookedLinuxV2(proto=proto, lladdrtype=1, lladdrlen=6) / l3
        else:
            pkt = l3
        pkt.time = 1_700_000_000 + len(self.packets) / 1000
        return pkt

    def handshake(self) -> Flow:
        self.packets.append(self._packet(True, ISN_C, "S", b""))
        self.packets.append(self._packet(False, ISN_S, "SA", b""))
        return self

    def segment(self, from_client: bool, payload: bytes, offset: int | None = None) -> Flow:
        """Send ``payload`` at stream ``offset`` (default: right after what was sent)."""
        at = self.sent[from_client] if offset is None else offset
        isn = ISN_C if from_client else ISN_S
        self.packets.append(self._packet(from_client, isn + 1 + at, "PA", payload))
        self.sent[from_client] = max(self.sent[from_client], at + len(payload))
        return self

    def write_pcap(self, path: Path) -> Path:
        from scapy.utils import wrpcap

        wrpcap(str(path), self.packets)
        return path

    def write_pcapng(self, path: Path) -> Path:
        from scapy.utils import PcapNgWriter

        writer = PcapNgWriter(str(path))
        for pkt in self.packets:
            writer.write(pkt)
        writer.close()
        return path


def session_flow(link: str = "ether", v6: bool = False, server_port: int = 179) -> Flow:
    """OPENs and KEEPALIVEs, then two UPDATEs: one split over two segments with the first one retransmitted,
    one whose two halves arrive out of order, then a withdraw."""
    opening = Open(65000, 90, VTEP, (Multiprotocol(25, 70), FourOctetAs(65000))).encode()
    first = announce(L2_ATTRS, VTEP, TYPE2)
    second = announce(IMET_ATTRS, VTEP, TYPE3)
    flow = Flow(link, v6, server_port).handshake()
    flow.segment(True, opening).segment(False, opening + Keepalive().encode()).segment(
        True, Keepalive().encode()
    )
    start = flow.sent[True]
    flow.segment(True, first[:40])
    flow.segment(True, first[40:])
    flow.segment(True, first[:40], offset=start)  # retransmission
    start = flow.sent[True]
    flow.segment(True, second[25:], offset=start + 25)  # out of order
    flow.segment(True, second[:25], offset=start)
    flow.segment(True, second[:30], offset=start)  # a late duplicate
    flow.segment(False, Keepalive().encode())
    flow.segment(True, withdraw(TYPE2))
    return flow


EXPECTED_SESSION = [(2, "announce"), (3, "announce"), (2, "withdraw")]


def test_pcap_reassembly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = session_flow().write_pcap(tmp_path / "bgp.pcap")
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(path))
    assert (rc, err) == (0, "")
    got = json_lines(out)
    assert [(d["type"], d["action"]) for d in got] == EXPECTED_SESSION
    assert got[0] == EXPECTED_TYPE2
    rc, out, err = run_cli(capsys, "--pcap", str(path))
    assert out.splitlines()[0] == "# 1700000000.006000 192.0.2.1:50179 > 192.0.2.2:179"
    assert out.splitlines()[1].startswith("announce [2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]:[32]:[192.170.1.3]")


@pytest.mark.parametrize(("link", "v6"), [("ether", True), ("sll", False), ("sll2", True), ("raw", False)])
def test_pcapng_link_types(capsys: pytest.CaptureFixture[str], tmp_path: Path, link: str, v6: bool) -> None:
    path = session_flow(link, v6).write_pcapng(tmp_path / "bgp.pcapng")
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(path))
    assert (rc, err) == (0, "")
    assert [(d["type"], d["action"]) for d in json_lines(out)] == EXPECTED_SESSION


@pytest.mark.parametrize("link", ["sll", "raw"])
def test_pcap_link_types(capsys: pytest.CaptureFixture[str], tmp_path: Path, link: str) -> None:
    path = session_flow(link, v6=True).write_pcap(tmp_path / "bgp.pcap")
    rc, out, err = run_cli(capsys, "--json", "--all", "--pcap", str(path))
    assert (rc, err) == (0, "")
    kinds = [d.get("message", d.get("action")) for d in json_lines(out)]
    assert kinds == [
        "open",
        "open",
        "keepalive",
        "keepalive",
        "announce",
        "announce",
        "keepalive",
        "withdraw",
    ]


def test_pcap_on_another_port(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = session_flow(server_port=1179).write_pcap(tmp_path / "bgp.pcap")
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(path))
    assert (rc, out, err) == (0, "", "")
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(path), "--port", "1179")
    assert (rc, err) == (0, "")
    assert [(d["type"], d["action"]) for d in json_lines(out)] == EXPECTED_SESSION


def test_pcap_capture_started_mid_stream(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first = announce(L2_ATTRS, VTEP, TYPE2)
    flow = Flow()  # no handshake captured: starts in the middle of the first UPDATE
    flow.segment(True, first[50:], offset=50)
    flow.segment(True, announce(IMET_ATTRS, VTEP, TYPE3))
    flow.segment(True, withdraw(TYPE2)[:10])  # the capture ends mid-message
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(flow.write_pcap(tmp_path / "mid.pcap")))
    assert rc == 0
    assert [d["type"] for d in json_lines(out)] == [3]
    notes = err.splitlines()
    assert len(notes) == 2
    assert (
        notes[0].startswith("note: ")
        and f"skipped {len(first) - 50} bytes to the next BGP header" in notes[0]
    )
    assert "10 bytes at the end of the capture do not form a whole BGP message" in notes[1]


def test_pcap_cut_short(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name, write in (("cut.pcap", Flow.write_pcap), ("cut.pcapng", Flow.write_pcapng)):
        path = write(session_flow(), tmp_path / name)
        path.write_bytes(path.read_bytes()[:-30])  # the capture was killed while writing the last packet
        rc, out, err = run_cli(capsys, "--json", "--pcap", str(path))
        assert rc == 0
        assert [(d["type"], d["action"]) for d in json_lines(out)] == EXPECTED_SESSION[:2]
        assert err.endswith("the capture was cut short; decoded what came before\n")


def test_big_endian_nanosecond_pcap(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP

    payload = announce(L2_ATTRS, VTEP, TYPE2)
    packet = bytes(
        IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=40000, dport=179, flags="PA", seq=5) / payload
    )
    header = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101)  # LINKTYPE_RAW
    record = struct.pack(">IIII", 1_700_000_000, 500_000_000, len(packet), len(packet)) + packet
    path = tmp_path / "be.pcap"
    path.write_bytes(header + record)
    frames = read_capture(path)
    assert frames[0].timestamp == pytest.approx(1_700_000_000.5)
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(path))
    assert (rc, err) == (0, "")
    assert json_lines(out) == [EXPECTED_TYPE2]


def test_big_endian_pcapng_with_nanosecond_resolution(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from scapy.layers.inet import IP, TCP

    def block(kind: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        return struct.pack(">II", kind, len(body) + 12) + body + struct.pack(">I", len(body) + 12)

    payload = announce(L2_ATTRS, VTEP, TYPE2)
    packet = bytes(
        IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=40000, dport=179, flags="PA", seq=5) / payload
    )
    stamp = 1_700_000_000_250_000_000  # ns
    shb = block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack(">HHI", 101, 0, 0) + struct.pack(">HHB3x", 9, 1, 9) + struct.pack(">HH", 0, 0))
    epb = block(
        6, struct.pack(">IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(packet), len(packet)) + packet
    )
    path = tmp_path / "be.pcapng"
    path.write_bytes(shb + idb + epb)
    assert read_capture(path)[0].timestamp == pytest.approx(1_700_000_000.25)
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(path))
    assert (rc, err) == (0, "")
    assert json_lines(out) == [EXPECTED_TYPE2]


def test_segments_before_the_first_one_seen_are_dropped() -> None:
    a, b = Endpoint(ipaddress.IPv4Address("192.0.2.1"), 1), Endpoint(ipaddress.IPv4Address("192.0.2.2"), 179)
    r = TcpReassembler()
    assert r.feed(TcpSegment(0.0, a, b, 1000, 0x18, b"later")) == [StreamData(0.0, a, b, b"later", 1, False)]
    assert r.feed(TcpSegment(1.0, a, b, 990, 0x18, b"earlier...")) == []
    assert r.finish() == []


def test_pcap_malformed_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = announce(L2_ATTRS, VTEP, TYPE2).replace(b"\x40\x01\x01\x00", b"\x40\x01\x01\x07")
    flow = Flow().handshake().segment(True, bad).segment(True, announce(IMET_ATTRS, VTEP, TYPE3))
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(flow.write_pcap(tmp_path / "bad.pcap")))
    assert rc == 1
    assert [d["type"] for d in json_lines(out)] == [3]
    assert err.startswith("error: 1700000000.002000 192.0.2.1:50179 > 192.0.2.2:179 message 1 (UPDATE, ")
    assert "RFC 7606 treat-as-withdraw" in err


def test_pcap_session_with_two_octet_as(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    old = Open(65000, 90, VTEP, (Multiprotocol(25, 70),)).encode()  # no 4-octet AS capability
    new = Open(65000, 90, VTEP, (Multiprotocol(25, 70), FourOctetAs(65000))).encode()
    update = encode_update(
        Update(attributes=L2_ATTRS, mp_reach=MpReach(25, 70, (VTEP,), (TYPE2,))), four_octet_as=False
    )
    flow = Flow().handshake().segment(True, old).segment(False, new).segment(True, update)
    rc, out, err = run_cli(capsys, "--json", "--pcap", str(flow.write_pcap(tmp_path / "as2.pcap")))
    assert (rc, err) == (0, "")
    assert json_lines(out) == [EXPECTED_TYPE2]


def test_pcap_file_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "--pcap", str(tmp_path / "missing.pcap"))
    assert rc == 2 and "cannot read" in err
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    rc, _, err = run_cli(capsys, "--pcap", str(junk))
    assert rc == 2 and "not a pcap or pcapng file" in err
    rc, _, err = run_cli(capsys, "--pcap", str(junk), "00")
    assert rc == 2 and "not both" in err
    rc, _, err = run_cli(capsys, "--port", "1179", "00")
    assert rc == 2 and "--pcap input only" in err


def test_reassembler_wraps_and_holds_out_of_order() -> None:
    a, b = Endpoint(ipaddress.IPv4Address("192.0.2.1"), 1), Endpoint(ipaddress.IPv4Address("192.0.2.2"), 179)
    r = TcpReassembler()
    isn = 2**32 - 3
    assert r.feed(TcpSegment(0.0, a, b, isn, 0x02, b"")) == []
    assert r.feed(TcpSegment(1.0, a, b, (isn + 1 + 4) % 2**32, 0x18, b"efgh")) == []  # after the wrap, early
    out = r.feed(TcpSegment(2.0, a, b, isn + 1, 0x18, b"abcd"))
    assert out == [StreamData(2.0, a, b, b"abcdefgh", 1, True)]
    assert r.feed(TcpSegment(3.0, a, b, isn + 1, 0x18, b"abcdefgh")) == []  # retransmission of all
    out = r.feed(TcpSegment(4.0, a, b, (isn + 1 + 6) % 2**32, 0x18, b"ghij"))  # overlapping
    assert out == [StreamData(4.0, a, b, b"ij", 1, True)]


def test_pcap_reader_matches_scapy_capture(tmp_path: Path) -> None:
    path = session_flow().write_pcapng(tmp_path / "bgp.pcapng")
    frames = read_capture(path)
    assert len(frames) == 13
    assert frames[0].timestamp == pytest.approx(1_700_000_000.0)
    items = list(bgp_messages(frames))
    assert [type(i).__name__ for i in items] == ["BgpMessage"] * 8


# -------------------------------------------------------------------------------------------------------
# the installed console script


def test_console_script() -> None:
    """The installed ``evpn-speaker`` script, once with hex arguments, once with hex piped on stdin."""
    script = REPO / ".venv" / "bin" / "evpn-speaker"
    if not script.exists():
        script = Path(sys.executable).parent / "evpn-speaker"
    data = announce(L2_ATTRS, VTEP, TYPE2).hex()

    def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "decode", *argv],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = run("--json", data)
    assert (done.returncode, done.stderr) == (0, "")
    assert json_lines(done.stdout) == [EXPECTED_TYPE2]
    done = run(stdin=data + "\n")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(
        "announce [2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]:[32]:[192.170.1.3] RD 10.0.0.1:2"
    )
    done = run("--json", data[:-2])
    assert done.returncode == 1
    assert "truncated BGP message" in done.stderr
