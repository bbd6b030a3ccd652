"""Values and their text forms: MAC, RD (RFC 4364 §4.2), RT (RFC 4360, RFC 5668), ESI (RFC 7432 §5), numbers."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings

from evpn.errors import InvalidValue, describe_notification
from evpn.esi import ZERO_ESI, Esi, EsiType
from evpn.mac import MacAddress
from evpn.numbers import Asn, EthernetTag, Vni
from evpn.route_distinguisher import RdType, RouteDistinguisher
from evpn.route_target import RouteTarget, RouteTargetMatcher, RtFormat
from tests.unit import strategies as s

FAST = settings(max_examples=200, deadline=None)


# -- MAC ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF", "aa-bb-cc-dd-ee-ff", "aabb.ccdd.eeff", " aabbccddeeff "],
)
def test_mac_text_forms(text: str) -> None:
    mac = MacAddress.from_text(text)
    assert mac.packed == bytes.fromhex("aabbccddeeff")
    assert str(mac) == "aa:bb:cc:dd:ee:ff"


@pytest.mark.parametrize("text", ["", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "gg:bb:cc:dd:ee:ff", "xyz"])
def test_mac_bad_text(text: str) -> None:
    with pytest.raises(InvalidValue):
        MacAddress.from_text(text)


def test_mac_properties() -> None:
    assert MacAddress.from_text("01:00:5e:00:00:01").is_multicast
    assert not MacAddress.from_text("00:00:5e:00:00:01").is_multicast
    assert MacAddress(b"\x00" * 6).is_zero
    assert int(MacAddress.from_int(0x0A0B0C0D0E0F)) == 0x0A0B0C0D0E0F
    with pytest.raises(InvalidValue):
        MacAddress.from_int(1 << 48)
    with pytest.raises(InvalidValue):
        MacAddress(b"\x00" * 5)


@FAST
@given(s.macs)
def test_mac_text_round_trip(mac: MacAddress) -> None:
    assert MacAddress.from_text(str(mac)) == mac
    assert MacAddress.from_int(int(mac)) == mac


# -- Route Distinguisher (RFC 4364 §4.2) --------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "packed"),
    [
        ("64512:110", RdType.AS2, "0000fc000000006e"),
        ("10.0.0.1:5", RdType.IPV4, "00010a0000010005"),
        ("4200000000:110", RdType.AS4, "0002fa56ea00006e"),
        ("0:0", RdType.AS2, "0000000000000000"),
        ("65535:4294967295", RdType.AS2, "0000ffffffffffff"),
    ],
)
def test_rd_text_types(text: str, kind: RdType, packed: str) -> None:
    rd = RouteDistinguisher.from_text(text)
    assert rd.type == kind
    assert rd.packed.hex() == packed
    assert str(rd) == text


@pytest.mark.parametrize(
    "text", ["", "64512", ":5", "abc:5", "64512:x", "10.0.0.1:65536", "1.2.3:4", "4200000000:65536", "-1:5"]
)
def test_rd_bad_text(text: str) -> None:
    with pytest.raises(InvalidValue):
        RouteDistinguisher.from_text(text)


def test_rd_unknown_type_text() -> None:
    rd = RouteDistinguisher(b"\x00\x07" + b"\x01" * 6)
    assert str(rd).startswith("unknown-type-7:")


@FAST
@given(s.rds_as2)
def test_rd_as2_text_round_trip(rd: RouteDistinguisher) -> None:
    assert RouteDistinguisher.from_text(str(rd)) == rd


@FAST
@given(s.rds_ipv4)
def test_rd_ipv4_text_round_trip(rd: RouteDistinguisher) -> None:
    assert RouteDistinguisher.from_text(str(rd)) == rd


@FAST
@given(s.rds_as4)
def test_rd_as4_text_round_trip_for_4_octet_asns(rd: RouteDistinguisher) -> None:
    parsed = RouteDistinguisher.from_text(str(rd))
    if int(rd.administrator) >= 1 << 16:
        assert parsed == rd
    else:  # FRR prints a small-ASN type-2 RD the same as type 0: text reads back as type 0
        assert parsed.type == RdType.AS2
        assert (parsed.administrator, parsed.assigned) == (rd.administrator, rd.assigned)


# -- Route Target (RFC 4360 §4, FRR text) --------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fmt", "packed"),
    [
        ("64512:110", RtFormat.AS2, "0002fc000000006e"),
        ("10.0.0.1:5", RtFormat.IPV4, "01020a0000010005"),
        ("4200000000:110", RtFormat.AS4, "0202fa56ea00006e"),
    ],
)
def test_rt_frr_text(text: str, fmt: RtFormat, packed: str) -> None:
    rt = RouteTarget.from_text(text)
    assert rt.format == fmt
    assert rt.packed.hex() == packed
    assert str(rt) == text
    assert RouteTarget.from_packed(rt.packed) == rt


@pytest.mark.parametrize(
    "text", ["", "110", "x:110", "64512:y", "10.0.0.256:1", "10.0.0.1:65536", "4200000000:65536", "1:-1"]
)
def test_rt_bad_text(text: str) -> None:
    with pytest.raises(InvalidValue):
        RouteTarget.from_text(text)


def test_rt_range_checks() -> None:
    with pytest.raises(InvalidValue):
        RouteTarget(RtFormat.AS2, 1 << 16, 0)
    with pytest.raises(InvalidValue):
        RouteTarget(RtFormat.IPV4, 0, 1 << 16)


@FAST
@given(s.route_targets)
def test_rt_packed_round_trip(rt: RouteTarget) -> None:
    assert RouteTarget.from_packed(rt.packed) == rt
    assert len(rt.packed) == 8
    assert rt.packed[1] == 0x02


@FAST
@given(s.route_targets)
def test_rt_text_round_trip(rt: RouteTarget) -> None:
    parsed = RouteTarget.from_text(str(rt))
    if rt.format == RtFormat.AS4 and rt.administrator < 1 << 16:
        assert parsed.format == RtFormat.AS2  # same text as FRR prints; reads back as type 0x00
        assert (parsed.administrator, parsed.assigned) == (rt.administrator, rt.assigned)
    else:
        assert parsed == rt


def test_wildcard_rt_matcher_frr_auto_import() -> None:
    """DESIGN §3: the auto import RT ``*:VNI`` matches only the local-admin part."""
    matcher = RouteTargetMatcher.from_text("*:110")
    assert matcher.matches(RouteTarget.from_text("64512:110"))
    assert matcher.matches(RouteTarget.from_text("64518:110"))
    assert not matcher.matches(RouteTarget.from_text("64512:111"))
    assert str(matcher) == "*:110"


def test_exact_rt_matcher() -> None:
    matcher = RouteTargetMatcher.from_text("64512:110")
    assert matcher.matches(RouteTarget.from_text("64512:110"))
    assert not matcher.matches(RouteTarget.from_text("64518:110"))
    assert str(matcher) == "64512:110"


@pytest.mark.parametrize("text", ["*:", "*:x", "*:-1", "*:4294967296"])
def test_wildcard_rt_matcher_bad_text(text: str) -> None:
    with pytest.raises(InvalidValue):
        RouteTargetMatcher.from_text(text)


# -- ESI (RFC 7432 §5) ---------------------------------------------------------------------------------
MAC = MacAddress.from_text("00:11:22:33:44:55")


@pytest.mark.parametrize(
    ("esi", "text", "kind"),
    [
        (Esi.arbitrary(bytes(range(1, 10))), "00:01:02:03:04:05:06:07:08:09", EsiType.ARBITRARY),
        (Esi.lacp(MAC, 0x0102), "01:00:11:22:33:44:55:01:02:00", EsiType.LACP),
        (Esi.bridge_protocol(MAC, 0x8000), "02:00:11:22:33:44:55:80:00:00", EsiType.BRIDGE_PROTOCOL),
        (Esi.mac_based(MAC, 0x010203), "03:00:11:22:33:44:55:01:02:03", EsiType.MAC_BASED),
        (Esi.router_id("10.0.0.1", 7), "04:0a:00:00:01:00:00:00:07:00", EsiType.ROUTER_ID),
        (Esi.as_based(4200000000, 9), "05:fa:56:ea:00:00:00:00:09:00", EsiType.AS_BASED),
    ],
)
def test_esi_type_constructors(esi: Esi, text: str, kind: EsiType) -> None:
    assert str(esi) == text
    assert esi.type == kind
    assert Esi.from_text(text) == esi
    assert len(esi.packed) == 10


def test_esi_bad_values() -> None:
    for bad in ("", "00:11", "zz:00:00:00:00:00:00:00:00:00", "00:" * 10 + "00"):
        with pytest.raises(InvalidValue):
            Esi.from_text(bad)
    with pytest.raises(InvalidValue):
        Esi.arbitrary(b"\x00" * 8)
    with pytest.raises(InvalidValue):
        Esi.lacp(MAC, 1 << 16)
    with pytest.raises(InvalidValue):
        Esi.mac_based(MAC, 1 << 24)
    with pytest.raises(InvalidValue):
        Esi.as_based(1 << 32, 0)
    assert ZERO_ESI.is_zero
    assert not Esi.lacp(MAC, 1).is_zero


@FAST
@given(s.esis)
def test_esi_text_round_trip(esi: Esi) -> None:
    assert Esi.from_text(str(esi)) == esi


# -- numbers -------------------------------------------------------------------------------------------
def test_bounded_numbers() -> None:
    assert Vni(16777215) == 16777215
    assert EthernetTag(0xFFFFFFFF) == 0xFFFFFFFF
    assert Asn.from_text("1.10") == 65546
    assert Asn.from_text("4200000000") == 4200000000
    for factory, bad in ((Vni, 1 << 24), (Vni, -1), (EthernetTag, 1 << 32), (Asn, 1 << 32)):
        with pytest.raises(InvalidValue):
            factory(bad)
    for text in ("x", "1.65536", "-1", "1.2.3"):
        with pytest.raises(InvalidValue):
            Asn.from_text(text)


def test_describe_notification() -> None:
    assert describe_notification(3, 11) == "UPDATE Message Error / Malformed AS_PATH"
    assert describe_notification(1, 2) == "Message Header Error / Bad Message Length"
    assert describe_notification(99, 1).startswith("unknown error code")
    assert describe_notification(4, 0) == "Hold Timer Expired"


def test_ipv4_rd_accepts_address_object() -> None:
    rd = RouteDistinguisher.ipv4(ipaddress.IPv4Address("192.0.2.1"), 3)
    assert str(rd) == "192.0.2.1:3"


@pytest.mark.parametrize(
    "packed",
    [b"", b"\x00\x02\x00", bytes.fromhex("0302000000000001"), bytes.fromhex("0003fc000000006e"), bytes(9)],
)
def test_rt_from_packed_rejects_non_route_targets(packed: bytes) -> None:
    """RFC 4360 §4: a Route Target is type 0x00/0x01/0x02 with subtype 0x02, 8 bytes."""
    with pytest.raises(InvalidValue):
        RouteTarget.from_packed(packed)
