"""Renderers of ``speaker.show``: FRR 8.4's vtysh layout and JSON keys, on the state of a real ``EvpnCore``
driven with events (``tests.unit.core_helpers``) and on ``PeerState`` lists.

The expected header lines and column layouts below are copied from FRR 8.4's own output (lab: two FRRs with
L2VNI 110, see ``tests/lab``)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from dataclasses import dataclass, field

import pytest

from evpn.config import SpeakerConfig
from evpn.core import EvpnCore
from evpn.events import LocalMacLearned, LocalNeighLearned
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.show import MacTable, NextHopRow, RibByRd, VniRow
from speaker import show
from speaker.engine import PeerState
from tests.unit.core_helpers import (
    PEER,
    V4,
    VTEP_A,
    VTEP_B,
    Applied,
    announce,
    config,
    mac,
    started,
    t2,
    t2_attrs,
    t3,
    t5,
)

LOCAL, REMOTE, DUP = mac(1), mac(2), mac(3)
IDENT = show.Identity("10.0.0.1", 64514, VTEP_A)

FRR_MAC_HEADER = "MAC               Type   Flags Intf/Remote ES/VTEP            VLAN  Seq #'s"
FRR_MAC_FLAGS = "Flags: N=sync-neighs, I=local-inactive, P=peer-active, X=peer-proxy"
FRR_VNI_HEADER = "VNI        Type VxLAN IF              # MACs   # ARPs   # Remote VTEPs  Tenant VRF                           "
FRR_SUMMARY_HEADER = (
    "Neighbor        V         AS   MsgRcvd   MsgSent   TblVer  InQ OutQ  Up/Down State/PfxRcd   PfxSnt Desc"
)
FRR_SUMMARY_ROW = (
    "192.168.100.2   4      64512         6         6        0    0    0 00:00:04            3        3 N/A"
)


@dataclass
class CoreReader:
    """A speaker-like object over a bare ``EvpnCore`` (what the control socket and metrics read)."""

    core: EvpnCore
    applied: Applied
    peers: list[PeerState] = field(default_factory=list)
    cleared: list[tuple[int, MacAddress]] = field(default_factory=list)
    now: float = 100.0

    @property
    def config(self) -> SpeakerConfig:
        return self.core.config

    def mac_table(self, vni: int) -> MacTable:
        return self.core.mac_table(vni)

    def vni_table(self) -> tuple[VniRow, ...]:
        return self.core.vni_table()

    def rib_by_rd(self) -> tuple[RibByRd, ...]:
        return self.core.rib_by_rd()

    def rib_path_count(self) -> int:
        return self.core.rib_path_count()

    def next_hops(self) -> tuple[NextHopRow, ...]:
        return self.core.next_hops()

    def peer_states(self) -> list[PeerState]:
        return list(self.peers)

    def clear_duplicate(self, vni: int, mac: MacAddress) -> None:
        self.cleared.append((vni, mac))
        self.applied.apply(self.core.clear_duplicate(vni, mac, self.now))


def peer_state(**kw: object) -> PeerState:
    values: dict[str, object] = {
        "peer": PEER,
        "asn": 64514,
        "state": "Established",
        "uptime": 3725.0,
        "messages_in": 120,
        "messages_out": 130,
        "prefixes_received": 5,
        "flaps": 1,
        "last_error": "",
    }
    values.update(kw)
    return PeerState(**values)  # type: ignore[arg-type]


def build_reader() -> CoreReader:
    """L2VNI 110 (in VRF red, L3VNI 100): a local MAC with an IP, a remote MAC (seq 2), the peer's type-3
    and type-5, and a MAC made duplicate by five moves (FRR's defaults: 5 moves in 180 s)."""
    core, ap = started(config())
    ap.apply(core.handle(LocalMacLearned(110, LOCAL), 1))
    ap.apply(core.handle(LocalNeighLearned(110, V4("192.170.1.3"), LOCAL), 1))
    r3, a3 = t3(VTEP_B)
    ap.apply(core.handle(announce(PEER, VTEP_B, a3, r3), 1))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=2), t2(VTEP_B, REMOTE)), 1))
    r5, a5 = t5(VTEP_B, "10.9.0.0/24", rmac=mac(9))
    ap.apply(core.handle(announce(PEER, VTEP_B, a5, r5), 1))
    ap.apply(core.handle(LocalMacLearned(110, DUP), 2))
    seq = 0
    for i in range(5):
        if i % 2 == 0:
            seq += 1
            ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=seq), t2(VTEP_B, DUP)), 3 + i))
        else:
            ap.apply(core.handle(LocalMacLearned(110, DUP), 3 + i))
            seq += 1
    return CoreReader(core, ap, [peer_state()])


@pytest.fixture
def reader() -> CoreReader:
    return build_reader()


def columns(line: str) -> list[str]:
    return line.split()


# ---- show evpn mac vni -----------------------------------------------------------------------------------


def test_mac_table_text_has_frr_layout(reader: CoreReader) -> None:
    text = show.mac_table_text(reader.mac_table(110))
    lines = text.splitlines()
    assert lines[0] == "Number of MACs (local and remote) known for this VNI: 3"
    assert lines[1] == FRR_MAC_FLAGS
    assert lines[2] == FRR_MAC_HEADER
    rows = {line[:17]: line for line in lines[3:]}
    assert set(rows) == {str(LOCAL), str(REMOTE), str(DUP)}
    # columns start where FRR's header puts them
    remote = rows[str(REMOTE)]
    assert remote[FRR_MAC_HEADER.index("Type") :].startswith("remote")
    assert remote[FRR_MAC_HEADER.index("Intf/Remote") :].startswith(str(VTEP_B))
    assert remote[FRR_MAC_HEADER.index("Seq #'s") :] == "0/2"
    assert rows[str(LOCAL)][FRR_MAC_HEADER.index("Type") :].startswith("local ")
    assert columns(rows[str(DUP)])[-1] == "4/5"  # local 4, remote 5: the bounce left it remote, duplicate


def test_mac_table_json_uses_frr_keys(reader: CoreReader) -> None:
    data = show.mac_table_json(reader.mac_table(110))
    assert data["numMacs"] == 3
    macs = data["macs"]
    assert isinstance(macs, dict)
    assert macs[str(REMOTE)] == {
        "type": "remote",
        "remoteVtep": str(VTEP_B),
        "localSequence": 0,
        "remoteSequence": 2,
        "isDuplicate": False,
    }
    assert macs[str(LOCAL)] == {
        "type": "local",
        "localSequence": 0,
        "remoteSequence": 0,
        "isDuplicate": False,
        "neighbors": {"active": ["192.170.1.3"], "inactive": []},
    }
    assert macs[str(DUP)]["isDuplicate"] is True
    json.dumps(data)  # serialisable as is


def test_mac_duplicate_view_lists_only_duplicates_as_frr(reader: CoreReader) -> None:
    table = reader.mac_table(110)
    lines = show.mac_table_text(table, duplicate=True).splitlines()
    assert lines[0] == "Number of MACs (local and remote) known for this VNI: 1"
    # FRR 8.4's own header for this view: no "Seq #'s", one trailing space
    assert lines[1] == "MAC               Type   Flags Intf/Remote ES/VTEP            VLAN "
    assert len(lines) == 3 and lines[2].startswith(str(DUP))
    data = show.mac_table_json(table, duplicate=True)
    assert data["numMacs"] == 1 and list(data["macs"]) == [str(DUP)]  # type: ignore[call-overload]
    empty = MacTable(110, tuple(r for r in table.rows if not r.duplicate))
    assert show.mac_table_text(empty, duplicate=True) == ""  # FRR prints nothing
    assert show.mac_table_json(empty, duplicate=True) == {"numMacs": 0, "macs": {}}


def test_mac_vni_all(reader: CoreReader) -> None:
    tables = [reader.mac_table(110)]
    text = show.mac_tables_text(tables)
    assert text.startswith("\nVNI 110 #MACs (local and remote) 3\n\n" + FRR_MAC_FLAGS + "\n" + FRR_MAC_HEADER)
    data = show.mac_tables_json(tables)
    assert list(data) == ["110"] and data["110"] == show.mac_table_json(tables[0])


def test_empty_mac_table_prints_nothing() -> None:
    assert show.mac_table_text(MacTable(110, ())) == ""
    assert show.mac_table_json(MacTable(110, ())) == {"numMacs": 0, "macs": {}}


# ---- show evpn vni ---------------------------------------------------------------------------------------


def test_vni_table_text_and_json(reader: CoreReader) -> None:
    rows = reader.vni_table()
    tables = {110: reader.mac_table(110)}
    lines = show.vni_text(rows, tables, reader.next_hops()).splitlines()
    assert lines[0] == FRR_VNI_HEADER
    by_vni = {columns(line)[0]: line for line in lines[1:]}
    assert columns(by_vni["110"]) == ["110", "L2", "vni110", "3", "1", "1", "red"]
    assert len(by_vni["110"]) == len(FRR_VNI_HEADER)  # FRR pads every column, the last one too
    assert columns(by_vni["100"]) == ["100", "L3", "vni100", "n/a", "1", "n/a", "red"]
    data = show.vni_json(rows, tables, reader.next_hops())
    assert data["110"] == {
        "vni": 110,
        "type": "L2",
        "vxlanIf": "vni110",
        "numMacs": 3,
        "numArpNd": 1,
        "numRemoteVteps": 1,
        "tenantVrf": "red",
        "remoteVteps": [str(VTEP_B)],
    }
    assert data["100"]["numPrefixes"] == 3  # type: ignore[index]


def test_vni_detail(reader: CoreReader) -> None:
    row = next(r for r in reader.vni_table() if r.vni == 110)
    text = show.vni_detail_text(row, IDENT, reader.mac_table(110), reader.next_hops())
    assert text.splitlines()[:8] == [
        "VNI: 110",
        " Type: L2",
        " Tenant VRF: red",
        " VxLAN interface: vni110",
        f" Local VTEP IP: {VTEP_A}",
        " Remote VTEPs for this VNI:",
        f"  {VTEP_B} flood: HER",
        " Number of MACs (local and remote) known for this VNI: 3",
    ]
    assert f" RD: {row.rd}" in text
    data = show.vni_detail_json(row, IDENT, reader.mac_table(110), reader.next_hops())
    assert data["vxlanInterface"] == "vni110" and data["vtepIp"] == str(VTEP_A)
    assert data["numRemoteVteps"] == [str(VTEP_B)]  # FRR 8.4's key for the list
    assert data["rd"] == row.rd and data["exportRTs"] == list(row.export_rts)


# ---- show bgp l2vpn evpn vni -----------------------------------------------------------------------------

FRR_BGP_VNI_HEADER = (
    "  VNI        Type RD                    Import RT                 Export RT                 "
    "Tenant VRF                           "
)
FRR_BGP_VNI_ROW = (
    "* 110        L2   10.255.0.1:2          64512:110                 64512:110                "
    "default                              "
)


def test_bgp_vni_table_matches_frr_columns(reader: CoreReader) -> None:
    rows = reader.vni_table()
    lines = show.bgp_vni_text(rows).splitlines()
    assert lines[2:5] == ["Number of L2 VNIs: 1", "Number of L3 VNIs: 1", "Flags: * - Kernel"]
    assert lines[5] == FRR_BGP_VNI_HEADER
    l2 = next(r for r in rows if r.vni == 110)
    frr_like = dataclasses.replace(
        l2, rd="10.255.0.1:2", import_rts=("64512:110",), export_rts=("64512:110",), vrf=None
    )
    assert show.bgp_vni_text([frr_like]).splitlines()[-1] == FRR_BGP_VNI_ROW
    data = show.bgp_vni_json(rows, IDENT)
    assert data["numL2Vnis"] == 1 and data["numL3Vnis"] == 1
    assert data["110"] == {
        "vni": 110,
        "type": "L2",
        "inKernel": "True",
        "rd": l2.rd,
        "originatorIp": str(VTEP_A),
        "tenantVrf": "red",
        "importRTs": list(l2.import_rts),
        "exportRTs": list(l2.export_rts),
    }
    detail = show.bgp_vni_detail_text(l2, IDENT).splitlines()
    assert detail[:4] == [
        "VNI: 110 (known to the kernel)",
        "  Type: L2",
        "  Tenant-Vrf: red",
        f"  RD: {l2.rd}",
    ]


# ---- show bgp summary ------------------------------------------------------------------------------------


def test_bgp_summary_row_has_frr_column_widths() -> None:
    """The same session as FRR's sample line gives the same line (prefixes sent are unknown: ``-``)."""
    peer = peer_state(
        peer=V4("192.168.100.2"), asn=64512, uptime=4.2, messages_in=6, messages_out=6, prefixes_received=3
    )
    lines = show.bgp_summary_text([peer], show.Identity("10.255.0.1", 64512)).splitlines()
    assert lines[1] == "L2VPN EVPN Summary (VRF default):"
    assert lines[2] == "BGP router identifier 10.255.0.1, local AS number 64512 vrf-id 0"
    header = lines.index(FRR_SUMMARY_HEADER)
    assert lines[header + 1] == FRR_SUMMARY_ROW.replace("        3 N/A", "        - N/A")
    assert lines[-1] == "Total number of neighbors 1"


def test_bgp_summary_down_peer_shows_state_and_never() -> None:
    down = peer_state(peer=V4("10.0.0.9"), asn=65001, state="Active", uptime=None, messages_in=0)
    up = peer_state()
    lines = show.bgp_summary_text([up, down], IDENT).splitlines()
    start = lines.index(FRR_SUMMARY_HEADER)
    first, second = lines[start + 1], lines[start + 2]
    assert first.startswith("10.0.0.9 ") and second.startswith(str(PEER))  # sorted by address
    assert first[FRR_SUMMARY_HEADER.index("Up/Down") - 1 :].split()[:2] == ["never", "Active"]
    assert first[: FRR_SUMMARY_HEADER.index(" State/PfxRcd") + 13].endswith("Active")
    assert second.split()[8:10] == ["01:02:05", "5"]


def test_bgp_summary_json_uses_frr_keys() -> None:
    data = show.bgp_summary_json([peer_state(), peer_state(peer=V4("10.0.0.9"), state="Idle")], IDENT, 7)
    table = data["l2VpnEvpn"]
    assert isinstance(table, dict)
    assert table["routerId"] == "10.0.0.1" and table["as"] == 64514 and table["ribCount"] == 7
    peer = table["peers"][str(PEER)]
    assert peer["state"] == "Established"
    assert peer["pfxRcd"] == 5 and peer["msgRcvd"] == 120 and peer["msgSent"] == 130
    assert peer["peerUptime"] == "01:02:05" and peer["peerUptimeMsec"] == 3_725_000
    assert peer["remoteAs"] == 64514 and peer["connectionsDropped"] == 1
    assert table["failedPeers"] == 1 and table["totalPeers"] == 2


def test_no_peers() -> None:
    assert show.bgp_summary_text([], IDENT) == "% No BGP neighbors found in VRF default\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "never"),
        (0, "00:00:00"),
        (3725, "01:02:05"),
        (86_400 + 3_660, "1d01h01m"),
        (15 * 86_400, "02w1d00h"),
    ],
)
def test_peer_uptime_like_frr(seconds: float | None, text: str) -> None:
    assert show.peer_uptime(seconds) == text


# ---- show bgp l2vpn evpn ---------------------------------------------------------------------------------


def test_bgp_evpn_text_frr_layout(reader: CoreReader) -> None:
    text = show.bgp_evpn_text(reader.rib_by_rd(), IDENT, reader.peers)
    lines = text.splitlines()
    assert lines[0] == "BGP table version is 0, local router ID is 10.0.0.1"
    assert lines[1].startswith("Status codes: s suppressed, d damped, h history, * valid, > best")
    assert lines[8] == ""
    assert lines[9] == "   Network          Next Hop            Metric LocPrf Weight Path"
    local_rd = next(r.rd for r in reader.vni_table() if r.vni == 110)
    i = lines.index(f"Route Distinguisher: {local_rd}")
    # type-2 before type-3 within an RD, as FRR orders its table; local paths: "*> ", weight 32768
    assert lines[i + 1] == f"*> [2]:[0]:[48]:[{LOCAL}]"
    assert lines[i + 2] == f"{'':20}{VTEP_A!s:<16}{'':17}  32768 i"
    frr_line = "                    10.255.0.1                         32768 i"
    assert lines[i + 2].index("32768") == frr_line.index("32768")
    assert lines[i + 3].split() == ["RT:64514:110", "ET:8"]
    remote = lines.index(f"Route Distinguisher: {RouteDistinguisher.ipv4(str(VTEP_B), 110)}")
    assert lines[remote + 1] == f"*>i[2]:[0]:[48]:[{REMOTE}]"
    assert lines[remote + 2].rstrip().endswith("      0 i")
    assert "MM:2" in lines[remote + 3].split()
    assert lines[-1] == "Displayed 8 out of 8 total prefixes"


def test_bgp_evpn_route_type_and_rd_filters(reader: CoreReader) -> None:
    groups = reader.rib_by_rd()
    text = show.bgp_evpn_text(
        groups, IDENT, reader.peers, route_type=show.ROUTE_TYPES["multicast"], route=True
    )
    lines = text.splitlines()
    assert "                    Extended Community" in lines
    prefixes = [line for line in lines if line[:3] in ("*> ", "*>i")]
    assert prefixes == [f"*> [3]:[0]:[32]:[{VTEP_A}]", f"*>i[3]:[0]:[32]:[{VTEP_B}]"]
    assert lines[-1] == "Displayed 2 prefixes (2 paths) (of requested type)"
    rd = RouteDistinguisher.ipv4(str(VTEP_B), 100)
    text = show.bgp_evpn_text(groups, IDENT, reader.peers, rd=rd)
    assert [line for line in text.splitlines() if line.startswith("*")] == ["*>i[5]:[0]:[24]:[10.9.0.0]"]
    assert text.splitlines()[-1] == "Displayed 1 out of 1 total prefixes"
    none = show.bgp_evpn_text(groups, IDENT, route_type=show.ROUTE_TYPES["ead"], route=True)
    assert none == "No EVPN prefixes (of requested type) exist\n"


def test_bgp_evpn_json(reader: CoreReader) -> None:
    data = show.bgp_evpn_json(reader.rib_by_rd(), IDENT, reader.peers)
    assert data["bgpLocalRouterId"] == "10.0.0.1" and data["localAS"] == 64514
    assert data["numPrefix"] == 8 and data["numPaths"] == 8
    remote_rd = str(RouteDistinguisher.ipv4(str(VTEP_B), 110))
    table = data[remote_rd]
    assert isinstance(table, dict) and table["rd"] == remote_rd
    entry = table[f"[2]:[0]:[48]:[{REMOTE}]"]
    path = entry["paths"][0]
    assert path["bestpath"] is True and path["pathFrom"] == "internal" and path["peerId"] == str(PEER)
    assert path["routeType"] == 2 and path["mac"] == str(REMOTE) and path["vni"] == 110
    assert path["extendedCommunity"] == {"string": "RT:64518:110 ET:8 MM:2"}
    assert path["nexthops"] == [{"ip": str(VTEP_B), "afi": "ipv4", "used": True}]
    only = show.bgp_evpn_json(reader.rib_by_rd(), IDENT, route_type=5)
    assert only["numPrefix"] == 2 and "bgpLocalRouterId" not in only


def test_ext_community_text() -> None:
    assert show.frr_ext_community("65000:110") == "RT:65000:110"
    assert show.frr_ext_community("10.0.0.1:3") == "RT:10.0.0.1:3"
    assert show.frr_ext_community("ET:vxlan") == "ET:8"
    assert show.frr_ext_community("MM:3, sticky MAC") == "MM:3, sticky MAC"
    assert show.frr_ext_community("Rmac:02:aa:00:00:00:05") == "Rmac:02:aa:00:00:00:05"


# ---- show evpn next-hops ---------------------------------------------------------------------------------


def test_next_hops(reader: CoreReader) -> None:
    rows = reader.next_hops()
    lines = show.next_hops_text(rows).splitlines()
    assert lines[0] == "Number of remote VTEPs: 1"
    assert columns(lines[2]) == [str(VTEP_B), "HER", "3", "1", "100,110"]
    assert show.next_hops_json(rows) == {
        str(VTEP_B): {
            "nexthopIp": str(VTEP_B),
            "vnis": [100, 110],
            "numMacs": 3,
            "numRoutes": 1,
            "flood": "HER",
        }
    }
    assert show.next_hops_text(()) == "Number of remote VTEPs: 0\n"


def test_to_json_is_newline_terminated() -> None:
    assert show.to_json({"a": ipaddress.ip_address("10.0.0.1").version}) == '{\n  "a": 4\n}\n'
