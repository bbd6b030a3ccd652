"""route_to_dict / route_to_text: the keys and values of every EVPN route type, with and without attributes."""

from __future__ import annotations

import ipaddress

import pytest

from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.evpn_nlri import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    MacIpRoute,
    UnknownEvpnRoute,
)
from evpn.codec.extcommunity import (
    VXLAN_ENCAPSULATION,
    DefaultGateway,
    Encapsulation,
    EsImportRouteTarget,
    MacMobility,
    RouterMac,
    TunnelType,
)
from evpn.codec.pmsi import PmsiTunnel
from evpn.codec.route_view import (
    encapsulation_name,
    route_labels,
    route_prefix_text,
    route_to_dict,
    route_to_text,
)
from evpn.esi import Esi
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget

RD_IP = RouteDistinguisher.from_text("10.0.0.1:2")
RD_AS = RouteDistinguisher.from_text("65000:110")
RD_AS4 = RouteDistinguisher.from_text("4200000000:7")
MAC = MacAddress.from_text("AA:BB:CC:DD:EE:0F")
RMAC = MacAddress.from_text("02:00:0a:00:00:01")
ESI = Esi.from_text("00:11:22:33:44:55:66:77:88:99")
ZERO_ESI = "00:00:00:00:00:00:00:00:00:00"
VTEP = ipaddress.IPv4Address("10.0.0.1")
VTEP6 = ipaddress.IPv6Address("2001:db8::1")

FULL = PathAttributes(
    as_path=AsPath.sequence(65000),
    ext_communities=(
        RouteTarget.from_text("65000:110"),
        RouteTarget.from_text("10.0.0.1:5"),
        RouteTarget.from_text("4200000000:9"),
        VXLAN_ENCAPSULATION,
        RouterMac(RMAC),
        MacMobility(7, sticky=True),
        DefaultGateway(),
    ),
    pmsi=PmsiTunnel.ingress_replication(110, VTEP),
)
PLAIN = PathAttributes(as_path=AsPath.sequence(65000))

FULL_KEYS = {
    "next_hop": "10.0.0.1",
    "route_targets": ["65000:110", "10.0.0.1:5", "4200000000:9"],
    "encapsulation": "vxlan",
    "router_mac": "02:00:0a:00:00:01",
    "mac_mobility": {"sequence": 7, "sticky": True},
    "default_gateway": True,
    "pmsi": {"tunnel_type": 6, "label": 110, "tunnel_id": "10.0.0.1"},
}


def test_type1_keys() -> None:
    route = EthernetAdRoute(RD_AS, ESI, 4294967295, 110)
    assert route_to_dict(route, None, None, "withdraw") == {
        "action": "withdraw",
        "type": 1,
        "rd": "65000:110",
        "esi": "00:11:22:33:44:55:66:77:88:99",
        "ethernet_tag": 4294967295,
        "labels": [110],
    }


def test_type2_mac_only_keys() -> None:
    route = MacIpRoute(RD_IP, MAC, None, 110)
    assert route_to_dict(route, PLAIN, VTEP, "announce") == {
        "action": "announce",
        "type": 2,
        "rd": "10.0.0.1:2",
        "esi": ZERO_ESI,
        "ethernet_tag": 0,
        "mac": "aa:bb:cc:dd:ee:0f",
        "labels": [110],
        "next_hop": "10.0.0.1",
        "route_targets": [],
        "default_gateway": False,
    }


def test_type2_two_labels_and_every_attribute() -> None:
    route = MacIpRoute(RD_IP, MAC, ipaddress.IPv4Address("192.170.1.3"), 110, 100, ESI, 5)
    assert route_to_dict(route, FULL, VTEP, "announce") == {
        "action": "announce",
        "type": 2,
        "rd": "10.0.0.1:2",
        "esi": "00:11:22:33:44:55:66:77:88:99",
        "ethernet_tag": 5,
        "mac": "aa:bb:cc:dd:ee:0f",
        "ip": "192.170.1.3",
        "labels": [110, 100],
        **FULL_KEYS,
    }


def test_type2_ipv6() -> None:
    route = MacIpRoute(RD_AS4, MAC, ipaddress.IPv6Address("2001:db8::3"), 16777215)
    d = route_to_dict(route, None, None, "withdraw")
    assert d["rd"] == "4200000000:7"
    assert d["ip"] == "2001:db8::3"
    assert d["labels"] == [16777215]


def test_type3_keys() -> None:
    route = InclusiveMulticastRoute(RD_IP, VTEP6, 110)
    attrs = PathAttributes(
        ext_communities=(RouteTarget.from_text("65000:110"), VXLAN_ENCAPSULATION),
        pmsi=PmsiTunnel.ingress_replication(110, VTEP6),
    )
    assert route_to_dict(route, attrs, VTEP6, "announce") == {
        "action": "announce",
        "type": 3,
        "rd": "10.0.0.1:2",
        "ethernet_tag": 110,
        "originator_ip": "2001:db8::1",
        "next_hop": "2001:db8::1",
        "route_targets": ["65000:110"],
        "encapsulation": "vxlan",
        "default_gateway": False,
        "pmsi": {"tunnel_type": 6, "label": 110, "tunnel_id": "2001:db8::1"},
    }


def test_type4_keys() -> None:
    route = EthernetSegmentRoute(RD_IP, ESI, VTEP)
    attrs = PathAttributes(ext_communities=(EsImportRouteTarget(MAC),))
    assert route_to_dict(route, attrs, VTEP, "announce") == {
        "action": "announce",
        "type": 4,
        "rd": "10.0.0.1:2",
        "esi": "00:11:22:33:44:55:66:77:88:99",
        "originator_ip": "10.0.0.1",
        "next_hop": "10.0.0.1",
        "route_targets": [],
        "default_gateway": False,
    }


def test_type5_keys_v4_and_v6() -> None:
    v4 = IpPrefixRoute(RD_AS, ipaddress.IPv4Network("192.168.10.0/24"), 100)
    assert route_to_dict(v4, None, None, "withdraw") == {
        "action": "withdraw",
        "type": 5,
        "rd": "65000:110",
        "esi": ZERO_ESI,
        "ethernet_tag": 0,
        "prefix": "192.168.10.0/24",
        "gateway_ip": "0.0.0.0",
        "labels": [100],
    }
    v6 = IpPrefixRoute(
        RD_AS,
        ipaddress.IPv6Network("2001:db8:5::/64"),
        100,
        ipaddress.IPv6Address("2001:db8:5::1"),
        ESI,
        3,
    )
    d = route_to_dict(v6, PathAttributes(ext_communities=(RouterMac(RMAC),)), VTEP, "announce")
    assert d["prefix"] == "2001:db8:5::/64"
    assert d["gateway_ip"] == "2001:db8:5::1"
    assert d["esi"] == "00:11:22:33:44:55:66:77:88:99"
    assert d["ethernet_tag"] == 3
    assert d["router_mac"] == "02:00:0a:00:00:01"
    assert "mac" not in d and "ip" not in d and "originator_ip" not in d


@pytest.mark.parametrize(
    ("route", "absent"),
    [
        (EthernetAdRoute(RD_AS, ESI, 0, 1), {"mac", "ip", "prefix", "gateway_ip", "originator_ip"}),
        (MacIpRoute(RD_AS, MAC), {"prefix", "gateway_ip", "originator_ip", "ip"}),
        (InclusiveMulticastRoute(RD_AS, VTEP), {"esi", "mac", "ip", "prefix", "gateway_ip", "labels"}),
        (EthernetSegmentRoute(RD_AS, ESI, VTEP), {"ethernet_tag", "mac", "ip", "prefix", "labels"}),
        (IpPrefixRoute(RD_AS, ipaddress.IPv4Network("10.0.0.0/8")), {"mac", "ip", "originator_ip"}),
    ],
)
def test_keys_that_do_not_apply_are_omitted(route: EvpnRoute, absent: set[str]) -> None:
    d = route_to_dict(route, None, None, "withdraw")
    assert not absent & d.keys()
    assert not {"next_hop", "route_targets", "default_gateway", "pmsi"} & d.keys()


def test_unknown_route_type() -> None:
    route = UnknownEvpnRoute(9, b"\x01\x02")
    assert route_to_dict(route, None, None, "withdraw") == {"action": "withdraw", "type": 9}
    assert route_prefix_text(route) == "[9]:[0102]"
    assert route_labels(route) == []


def test_pmsi_opaque_tunnel_id_and_other_encapsulation() -> None:
    attrs = PathAttributes(
        ext_communities=(Encapsulation(TunnelType.MPLS),),
        pmsi=PmsiTunnel(3, 5, b"\x0a\x00\x00\x01\xe0\x00\x00\x01"),
    )
    d = route_to_dict(InclusiveMulticastRoute(RD_AS, VTEP), attrs, VTEP, "announce")
    assert d["encapsulation"] == "mpls"
    assert d["pmsi"] == {"tunnel_type": 3, "label": 5, "tunnel_id": "0a000001e0000001"}
    assert encapsulation_name(999) == "999"


@pytest.mark.parametrize(
    ("route", "prefix"),
    [
        (EthernetAdRoute(RD_AS, ESI, 0, 1), "[1]:[0]:[00:11:22:33:44:55:66:77:88:99]"),
        (MacIpRoute(RD_AS, MAC), "[2]:[0]:[48]:[aa:bb:cc:dd:ee:0f]"),
        (
            MacIpRoute(RD_AS, MAC, ipaddress.IPv4Address("10.0.0.1")),
            "[2]:[0]:[48]:[aa:bb:cc:dd:ee:0f]:[32]:[10.0.0.1]",
        ),
        (
            MacIpRoute(RD_AS, MAC, ipaddress.IPv6Address("fe80::1"), ethernet_tag=7),
            "[2]:[7]:[48]:[aa:bb:cc:dd:ee:0f]:[128]:[fe80::1]",
        ),
        (InclusiveMulticastRoute(RD_AS, VTEP), "[3]:[0]:[32]:[10.0.0.1]"),
        (EthernetSegmentRoute(RD_AS, ESI, VTEP6), "[4]:[00:11:22:33:44:55:66:77:88:99]:[128]:[2001:db8::1]"),
        (IpPrefixRoute(RD_AS, ipaddress.IPv4Network("10.1.0.0/16")), "[5]:[0]:[16]:[10.1.0.0]"),
        (IpPrefixRoute(RD_AS, ipaddress.IPv6Network("2001:db8::/32")), "[5]:[0]:[32]:[2001:db8::]"),
    ],
)
def test_prefix_text_is_frr_notation(route: EvpnRoute, prefix: str) -> None:
    assert route_prefix_text(route) == prefix


def test_text_line_announce() -> None:
    route = MacIpRoute(RD_IP, MAC, ipaddress.IPv4Address("192.170.1.3"), 110, 100)
    assert route_to_text(route, FULL, VTEP, "announce") == (
        "announce [2]:[0]:[48]:[aa:bb:cc:dd:ee:0f]:[32]:[192.170.1.3] RD 10.0.0.1:2 label 110/100 "
        "nexthop 10.0.0.1 RT:65000:110 RT:10.0.0.1:5 RT:4200000000:9 ET:8 Rmac:02:00:0a:00:00:01 "
        "MM:7, sticky MAC Default Gateway PMSI:IR:110:10.0.0.1"
    )


def test_text_line_withdraw_and_type5_extras() -> None:
    route = IpPrefixRoute(
        RD_AS, ipaddress.IPv4Network("10.1.0.0/16"), 100, ipaddress.IPv4Address("10.1.0.1"), ESI
    )
    assert route_to_text(route, None, None, "withdraw") == (
        "withdraw [5]:[0]:[16]:[10.1.0.0] RD 65000:110 ESI 00:11:22:33:44:55:66:77:88:99 "
        "gateway 10.1.0.1 label 100"
    )
