"""tshark as an independent decoder of our EVPN UPDATEs.

UPDATEs for every EVPN route type (IPv4 and IPv6 addresses and next hops, two labels on type 2, every
EVPN extended community, PMSI) are encoded with our codec, written into a pcap and decoded by tshark. Every
field tshark shows is compared with what we encoded, and ``evpn-speaker decode --pcap`` must read the same
capture exactly as tshark does. tshark 4.0 shows type-1/2 labels as 20-bit MPLS labels (VNI 110 as "6"),
so labels are compared as the raw 24 bits at the offsets tshark gives.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evpn.codec.attributes import AsPath, PathAttributes
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
from evpn.codec.extcommunity import (
    VXLAN_ENCAPSULATION,
    DefaultGateway,
    EsiLabel,
    EsImportRouteTarget,
    MacMobility,
    RouterMac,
)
from evpn.codec.messages import MpReach, MpUnreach, Update, encode_update
from evpn.codec.pmsi import PmsiTunnel
from evpn.codec.route_view import route_to_dict
from evpn.esi import Esi
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from speaker.cli import main
from tests.lab import in_ci
from tests.lab.capture import (
    as_list,
    evpn_labels,
    evpn_nlris_raw,
    ext_communities,
    ext_community_kind,
    find_values,
    path_attribute,
    raw_bytes,
    rd_bytes_to_str,
    tshark_available,
    tshark_bgp_json,
    write_bgp_pcap,
)

pytestmark = pytest.mark.interop

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
RD_IP = RouteDistinguisher.from_text("10.0.0.1:2")
RD_AS2 = RouteDistinguisher.from_text("65000:100")
RD_AS4 = RouteDistinguisher.from_text("4200000000:7")
MAC = MacAddress.from_text("aa:bb:cc:00:00:09")
MAC2 = MacAddress.from_text("02:42:ac:11:00:02")
RMAC = MacAddress.from_text("00:f3:00:00:00:65")
ESI_ARB = Esi.arbitrary(bytes.fromhex("112233445566778899"))
ESI_LACP = Esi.lacp(MacAddress.from_text("00:aa:bb:cc:dd:ee"), 0x1234)
ESI_AS = Esi.as_based(4200000000, 77)
VTEP4 = V4("10.0.0.1")
VTEP6 = V6("2001:db8::1")
RTS = (
    RouteTarget.from_text("65000:110"),
    RouteTarget.from_text("10.0.0.1:5"),
    RouteTarget.from_text("4200000000:9"),
)
PATH = AsPath.sequence(65000, 4200000001)


@dataclass(frozen=True, slots=True)
class Announce:
    attributes: PathAttributes
    next_hop: IPAddress
    routes: tuple[EvpnRoute, ...]

    def encode(self) -> bytes:
        reach = MpReach(25, 70, (self.next_hop,), self.routes)
        return encode_update(Update(attributes=self.attributes, mp_reach=reach))


ANNOUNCES = (
    Announce(  # type 2: IPv4 and IPv6 with two labels (symmetric IRB), MAC only; every type-2 community
        PathAttributes(
            as_path=PATH,
            local_pref=100,
            ext_communities=(
                *RTS,
                VXLAN_ENCAPSULATION,
                RouterMac(RMAC),
                MacMobility(3, sticky=True),
                DefaultGateway(),
            ),
        ),
        VTEP4,
        (
            MacIpRoute(RD_IP, MAC, V4("192.170.1.3"), 110, 100, ESI_ARB, 5),
            MacIpRoute(RD_IP, MAC, V6("2001:db8:170::3"), 110, 100),
            MacIpRoute(RD_AS4, MAC2, None, 16777215),
        ),
    ),
    Announce(  # type 2 over an IPv6 VTEP, one label, non-sticky mobility with a large sequence
        PathAttributes(
            as_path=PATH,
            ext_communities=(RTS[0], VXLAN_ENCAPSULATION, MacMobility(70000)),
        ),
        VTEP6,
        (
            MacIpRoute(RD_AS2, MAC2, V6("2001:db8:170::30"), 110, ethernet_tag=4094),
            MacIpRoute(RD_AS2, MAC2, V4("192.170.1.30"), 110),
        ),
    ),
    Announce(  # type 3 with PMSI ingress replication and the VXLAN community (tshark shows the VNI)
        PathAttributes(
            as_path=PATH,
            ext_communities=(RTS[0], VXLAN_ENCAPSULATION),
            pmsi=PmsiTunnel.ingress_replication(110, VTEP4),
        ),
        VTEP4,
        (InclusiveMulticastRoute(RD_IP, VTEP4), InclusiveMulticastRoute(RD_IP, VTEP4, 200)),
    ),
    Announce(  # type 3 over IPv6, PMSI with an IPv6 tunnel id and no encapsulation community
        PathAttributes(
            as_path=PATH, ext_communities=(RTS[1],), pmsi=PmsiTunnel.ingress_replication(4096, VTEP6)
        ),
        VTEP6,
        (InclusiveMulticastRoute(RD_AS2, VTEP6, 7),),
    ),
    Announce(  # types 1 and 4 (multi-homing), ES-Import RT and ESI label
        PathAttributes(
            as_path=PATH,
            ext_communities=(
                RTS[0],
                EsImportRouteTarget(MAC),
                EsiLabel(3000, single_active=True),
                EsiLabel(7),
            ),
        ),
        VTEP4,
        (
            EthernetAdRoute(RD_IP, ESI_LACP, 0xFFFFFFFF, 0),
            EthernetAdRoute(RD_IP, ESI_AS, 100, 110),
            EthernetSegmentRoute(RD_IP, ESI_LACP, VTEP4),
            EthernetSegmentRoute(RD_AS4, ESI_AS, VTEP6),
        ),
    ),
    Announce(  # type 5, IPv4, with and without a gateway
        PathAttributes(
            as_path=PATH,
            ext_communities=(RTS[2], VXLAN_ENCAPSULATION, RouterMac(RMAC)),
        ),
        VTEP4,
        (
            IpPrefixRoute(RD_AS2, ipaddress.IPv4Network("192.168.10.0/24"), 100),
            IpPrefixRoute(RD_AS4, ipaddress.IPv4Network("10.1.2.3/32"), 100, V4("10.1.2.1"), ESI_ARB, 9),
            IpPrefixRoute(RD_IP, ipaddress.IPv4Network("0.0.0.0/0"), 16777215),
        ),
    ),
    Announce(  # type 5, IPv6, over an IPv6 VTEP
        PathAttributes(as_path=PATH, ext_communities=(RTS[0], VXLAN_ENCAPSULATION, RouterMac(RMAC))),
        VTEP6,
        (
            IpPrefixRoute(RD_AS2, ipaddress.IPv6Network("2001:db8:5::/64"), 100),
            IpPrefixRoute(RD_AS2, ipaddress.IPv6Network("2001:db8:6::/48"), 100, V6("2001:db8:6::1")),
        ),
    ),
)
WITHDRAWN = tuple(route for a in ANNOUNCES for route in a.routes)


def _messages() -> list[bytes]:
    withdraw = encode_update(Update(mp_unreach=MpUnreach(25, 70, WITHDRAWN)))
    return [a.encode() for a in ANNOUNCES] + [withdraw]


@dataclass(frozen=True, slots=True)
class Decoded:
    """One BGP message as tshark shows it, with the bytes of the frame it came in."""

    bgp: dict[str, Any]
    frame: bytes

    def field_bytes(self, node: dict[str, Any], field: str) -> bytes:
        """The frame bytes a field covers (right for bit-masked fields, unlike ``raw_bytes``)."""
        entry = node[f"{field}_raw"]
        entry = entry[0] if isinstance(entry[0], list) else entry
        offset, length = int(entry[1]), int(entry[2])
        return self.frame[offset : offset + length]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not tshark_available():
        if in_ci():
            pytest.fail("tshark is not installed", pytrace=False)
        pytest.skip("tshark is not installed")
    path = tmp_path_factory.mktemp("tshark") / "evpn.pcap"
    write_bgp_pcap(path, _messages())  # one message per TCP segment: frame offsets are message offsets
    return path


@pytest.fixture(scope="module")
def decoded(capture: Path) -> list[Decoded]:
    out = []
    for packet in tshark_bgp_json(capture, raw=True):
        layers = packet["_source"]["layers"]
        frame = bytes.fromhex(layers["frame_raw"][0])
        out += [Decoded(bgp, frame) for bgp in as_list(layers.get("bgp"))]
    return out


# -------------------------------------------------------------------------------------------------------
# tshark's view, in the shape of `evpn-speaker decode --json` (built from tshark fields only)


def _nlri_view(nlri: dict[str, Any], raw: bytes) -> dict[str, Any]:
    kind = int(nlri["bgp.evpn.nlri.rt"])
    view: dict[str, Any] = {"type": kind, "rd": rd_bytes_to_str(nlri["bgp.evpn.nlri.rd"])}
    if "bgp.evpn.nlri.esi" in nlri:
        view["esi"] = nlri["bgp.evpn.nlri.esi"]
    if "bgp.evpn.nlri.etag" in nlri:
        view["ethernet_tag"] = int(nlri["bgp.evpn.nlri.etag"])
    address = nlri.get("bgp.evpn.nlri.ip.addr", nlri.get("bgp.evpn.nlri.ipv6.addr"))
    if kind == 2:
        view["mac"] = nlri["bgp.evpn.nlri.mac_addr"]
        if address is not None:
            view["ip"] = address
    elif kind in (3, 4):
        view["originator_ip"] = address
    elif kind == 5:
        view["prefix"] = f"{address}/{nlri['bgp.evpn.nlri.prefix_len']}"
        view["gateway_ip"] = nlri.get("bgp.evpn.nlri.ipv4.gtw_addr", nlri.get("bgp.evpn.nlri.ipv6.gtw_addr"))
    labels = evpn_labels(nlri, raw)
    if labels:
        view["labels"] = labels
    return view


def _route_target(community: dict[str, Any]) -> str | None:
    kind = ext_community_kind(community)
    if kind == (0x00, 0x02):
        return f"{community['bgp.ext_com.value_as2']}:{community['bgp.ext_com.value_an4']}"
    if kind == (0x01, 0x02):
        return f"{community['bgp.ext_com.value_IP4']}:{community['bgp.ext_com.value_an2']}"
    if kind == (0x02, 0x02):
        return f"{community['bgp.ext_com.value_as4']}:{community['bgp.ext_com.value_an2']}"
    return None


def _path_view(message: Decoded) -> dict[str, Any]:
    bgp = message.bgp
    reach = path_attribute(bgp, 14)
    assert reach is not None
    hops = find_values(reach, "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4") + find_values(
        reach, "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6"
    )
    assert len(hops) == 1
    view: dict[str, Any] = {"next_hop": hops[0], "route_targets": [], "default_gateway": False}
    for community in ext_communities(bgp):
        kind = ext_community_kind(community)
        rt = _route_target(community)
        if rt is not None:
            view["route_targets"].append(rt)
        elif kind == (0x03, 0x0C):
            view.setdefault("encapsulation", {"8": "vxlan"}[community["bgp.ext_com.tunnel_type"]])
        elif kind == (0x03, 0x0D):
            view["default_gateway"] = True
        elif kind == (0x06, 0x03):
            view.setdefault("router_mac", community["bgp.ext_com_evpn.esi.router_mac"])
        elif kind == (0x06, 0x00):
            view.setdefault(
                "mac_mobility",
                {
                    "sequence": int(community["bgp.ext_com_evpn.mmac.seq"]),
                    "sticky": bool(int(community["bgp.ext_com_evpn.mmac.flags"], 16) & 1),
                },
            )
    pmsi = path_attribute(bgp, 22)
    if pmsi is not None:
        view["pmsi"] = _pmsi_view(message, pmsi)
    return view


def _pmsi_view(message: Decoded, pmsi: dict[str, Any]) -> dict[str, Any]:
    prefix = "bgp.update.path_attribute."
    if "bgp.evpn.nlri.vni" in pmsi:  # only with the VXLAN Encapsulation community in the UPDATE
        label = int(pmsi["bgp.evpn.nlri.vni"])
        assert message.field_bytes(pmsi, "bgp.evpn.nlri.vni") == label.to_bytes(3, "big")
    else:  # a 20-bit MPLS label: read the 3 bytes
        label = int.from_bytes(message.field_bytes(pmsi, prefix + "mpls_label_value_20bits"), "big")
    # tshark 4.0 shows only the first 4 bytes of an IPv6 tunnel id (as an IPv4 address): read the bytes.
    tunnel_id = ipaddress.ip_address(raw_bytes(pmsi, prefix + "pmsi.tunnel.id"))
    return {
        "tunnel_type": int(pmsi[prefix + "pmsi.tunnel.type"]),
        "label": label,
        "tunnel_id": str(tunnel_id),
    }


def tshark_view(messages: list[Decoded]) -> list[dict[str, Any]]:
    """Every EVPN route tshark found, as ``decode --json`` would print it."""
    out: list[dict[str, Any]] = []
    for message in messages:
        for withdrawn in (True, False):
            pairs = evpn_nlris_raw(message.bgp, withdrawn=withdrawn)
            if not pairs:
                continue
            path = {} if withdrawn else _path_view(message)
            action = "withdraw" if withdrawn else "announce"
            out += [{"action": action, **_nlri_view(n, raw), **path} for n, raw in pairs]
    return out


def expected_view() -> list[dict[str, object]]:
    """What we encoded, in the same shape."""
    out = [route_to_dict(r, a.attributes, a.next_hop, "announce") for a in ANNOUNCES for r in a.routes]
    return out + [route_to_dict(r, None, None, "withdraw") for r in WITHDRAWN]


# -------------------------------------------------------------------------------------------------------
# tests


def test_tshark_sees_every_route_as_encoded(decoded: list[Decoded]) -> None:
    assert len(decoded) == len(ANNOUNCES) + 1
    assert tshark_view(decoded) == expected_view()


def test_tshark_nlri_framing_and_lengths(decoded: list[Decoded]) -> None:
    sent = [a.routes for a in ANNOUNCES] + [WITHDRAWN]
    for message, routes in zip(decoded, sent, strict=True):
        withdrawn = routes is WITHDRAWN
        pairs = evpn_nlris_raw(message.bgp, withdrawn=withdrawn)
        assert len(pairs) == len(routes)
        for (nlri, raw), route in zip(pairs, routes, strict=True):
            wire = encode_evpn_route(route)
            assert raw == wire
            assert int(nlri["bgp.evpn.nlri.len"]) == len(wire) - 2
            if isinstance(route, MacIpRoute):
                assert nlri["bgp.evpn.nlri.maclen"] == "48"
                assert int(nlri["bgp.evpn.nlri.iplen"]) == (0 if route.ip is None else route.ip.max_prefixlen)
                assert len(evpn_labels(nlri, raw)) == (1 if route.label2 is None else 2)
            if isinstance(route, InclusiveMulticastRoute | EthernetSegmentRoute):
                assert int(nlri["bgp.evpn.nlri.iplen"]) == route.originator.max_prefixlen
            if isinstance(route, EthernetAdRoute | MacIpRoute | EthernetSegmentRoute | IpPrefixRoute):
                esi_type = find_values(nlri, "bgp.evpn.nlri.esi.type")
                assert [int(t) for t in esi_type] == [route.esi.type]


def test_tshark_mp_reach_and_base_attributes(decoded: list[Decoded]) -> None:
    for message, sent in zip(decoded, ANNOUNCES, strict=False):
        bgp = message.bgp
        assert bgp["bgp.type"] == "2"
        reach = path_attribute(bgp, 14)
        assert reach is not None
        assert reach["bgp.update.path_attribute.mp_reach_nlri.afi"] == "25"
        assert reach["bgp.update.path_attribute.mp_reach_nlri.safi"] == "70"
        origin = path_attribute(bgp, 1)
        assert origin is not None and origin["bgp.update.path_attribute.origin"] == "0"
        as_path = path_attribute(bgp, 2)
        assert as_path is not None
        assert [int(a) for a in find_values(as_path, "bgp.update.path_attribute.as_path_segment.as4")] == [
            65000,
            4200000001,
        ]
        local_pref = path_attribute(bgp, 5)
        if sent.attributes.local_pref is None:
            assert local_pref is None
        else:
            assert local_pref is not None
            assert int(local_pref["bgp.update.path_attribute.local_pref"]) == sent.attributes.local_pref
    unreach = path_attribute(decoded[-1].bgp, 15)
    assert unreach is not None
    assert unreach["bgp.update.path_attribute.mp_unreach_nlri.afi"] == "25"
    assert unreach["bgp.update.path_attribute.mp_unreach_nlri.safi"] == "70"


def test_tshark_every_extended_community(decoded: list[Decoded]) -> None:
    """Each community in wire order: type/subtype and every value tshark decodes."""
    for message, sent in zip(decoded, ANNOUNCES, strict=False):
        shown = ext_communities(message.bgp)
        ours = sent.attributes.ext_communities
        assert len(shown) == len(ours)
        for community, ec in zip(shown, ours, strict=True):
            assert ext_community_kind(community) == (ec.packed[0], ec.packed[1])
            if isinstance(ec, RouteTarget):
                assert _route_target(community) == str(ec)
            elif isinstance(ec, MacMobility):
                assert int(community["bgp.ext_com_evpn.mmac.seq"]) == ec.sequence
                assert int(community["bgp.ext_com_evpn.mmac.flags"], 16) == int(ec.sticky)
            elif isinstance(ec, RouterMac):
                assert community["bgp.ext_com_evpn.esi.router_mac"] == str(ec.mac)
            elif isinstance(ec, EsImportRouteTarget):
                assert community["bgp.ext_com_evpn.esi.rt"] == str(ec.mac)
            elif isinstance(ec, EsiLabel):
                assert int(community["bgp.update.path_attribute.mpls_label_value"]) == ec.label
                assert int(community["bgp.ext_com_l2.esi_label_flag"]) == int(ec.single_active)
            elif ec == VXLAN_ENCAPSULATION:
                assert community["bgp.ext_com.tunnel_type"] == "8"
            else:
                assert isinstance(ec, DefaultGateway)


def test_tshark_pmsi(decoded: list[Decoded]) -> None:
    for message, sent in zip(decoded, ANNOUNCES, strict=False):
        pmsi = path_attribute(message.bgp, 22)
        if sent.attributes.pmsi is None:
            assert pmsi is None
            continue
        assert pmsi is not None
        assert int(pmsi["bgp.update.path_attribute.pmsi.tunnel.flags"]) == sent.attributes.pmsi.flags
        assert (
            raw_bytes(pmsi, "bgp.update.path_attribute.pmsi.tunnel.id") == sent.attributes.pmsi.encode()[5:]
        )
        view = _pmsi_view(message, pmsi)
        assert view["label"] == sent.attributes.pmsi.label
        assert view["tunnel_type"] == 6
        if isinstance(sent.attributes.pmsi.tunnel_id, ipaddress.IPv4Address):
            assert pmsi["bgp.update.path_attribute.pmsi.tunnel.id"][
                "bgp.update.path_attribute.pmsi.ingress_rep_ip"
            ] == str(sent.attributes.pmsi.tunnel_id)


def test_our_decoder_reads_the_capture_as_tshark_does(
    decoded: list[Decoded], capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["decode", "--json", "--pcap", str(capture)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    ours = [json.loads(line) for line in captured.out.splitlines()]
    assert ours == tshark_view(decoded)
