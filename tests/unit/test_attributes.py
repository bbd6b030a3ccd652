"""Path attributes, extended communities and PMSI (RFC 4271 §4.3/§5, RFC 4360, RFC 7432 §7.5-7.8, RFC 6514 §5)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evpn.codec.attributes import (
    AsPath,
    AsPathSegment,
    AttrType,
    Origin,
    PathAttributes,
    SegmentType,
    UnknownAttribute,
    decode_as_path,
    decode_path_attributes,
    encode_attribute,
)
from evpn.codec.extcommunity import (
    VXLAN_ENCAPSULATION,
    DefaultGateway,
    Encapsulation,
    EsiLabel,
    EsImportRouteTarget,
    ExtCommunity,
    MacMobility,
    NdExtCommunity,
    RouterMac,
    UnknownExtCommunity,
    decode_ext_community,
)
from evpn.codec.messages import _split_attributes
from evpn.codec.pmsi import PmsiTunnel, PmsiTunnelType
from evpn.errors import InvalidValue
from evpn.mac import MacAddress
from evpn.route_target import RouteTarget
from tests.unit import strategies as s

FAST = settings(max_examples=250, deadline=None)
MAC = MacAddress.from_text("00:11:22:33:44:55")


def _decode(wire: bytes, **kw: bool) -> PathAttributes:
    raw, err = _split_attributes(wire, 0, len(wire))
    assert err is None
    attrs, problems = decode_path_attributes(raw, **kw)
    assert problems == []
    return attrs


# -- extended communities ------------------------------------------------------------------------------
@FAST
@given(s.ext_communities)
def test_ext_community_round_trip(community: ExtCommunity) -> None:
    assert len(community.packed) == 8
    assert decode_ext_community(community.packed) == community
    assert decode_ext_community(community.packed).packed == community.packed


@FAST
@given(st.binary(min_size=8, max_size=8))
def test_any_8_bytes_decode(raw: bytes) -> None:
    decoded = decode_ext_community(raw)
    assert len(decoded.packed) == 8
    if isinstance(decoded, UnknownExtCommunity):
        assert decoded.packed == raw


@pytest.mark.parametrize(
    ("community", "wire"),
    [
        (RouteTarget.from_text("64512:110"), "0002fc000000006e"),
        (VXLAN_ENCAPSULATION, "030c000000000008"),
        (MacMobility(5, sticky=True), "0600010000000005"),
        (MacMobility(7), "0600000000000007"),
        (EsiLabel(110, single_active=True), "060101000000006e"),
        (EsImportRouteTarget(MAC), "0602001122334455"),
        (RouterMac(MAC), "0603001122334455"),
        (DefaultGateway(), "030d000000000000"),
        (NdExtCommunity(router=True, override=True), "0608030000000000"),
        (NdExtCommunity(immutable=True), "0608080000000000"),  # RFC 9047 §2: I is bit 4
        (NdExtCommunity(proxy=True), "0608040000000000"),  # FRR's proxy flag
        (NdExtCommunity(True, True, True, True), "06080f0000000000"),
        (UnknownExtCommunity(bytes.fromhex("8071000000000001")), "8071000000000001"),
    ],
)
def test_ext_community_wire_layout(community: ExtCommunity, wire: str) -> None:
    """Type/subtype per DESIGN §3 (RFC 7432 §7.5-7.8, RFC 9012 §4.1, RFC 9135 §8.1)."""
    assert community.packed.hex() == wire
    assert decode_ext_community(bytes.fromhex(wire)) == community


def test_ext_community_text() -> None:
    assert str(VXLAN_ENCAPSULATION) == "ET:vxlan"
    assert str(Encapsulation(999)) == "ET:999"
    assert str(MacMobility(3, True)) == "MM:3, sticky MAC"
    assert str(RouterMac(MAC)) == "Rmac:00:11:22:33:44:55"
    assert str(NdExtCommunity(router=True, immutable=True)) == "ND:Router Flag Immutable"
    with pytest.raises(InvalidValue):
        UnknownExtCommunity(b"\x00" * 7)
    with pytest.raises(InvalidValue):
        MacMobility(1 << 32)
    with pytest.raises(InvalidValue):
        EsiLabel(1 << 24)


# -- PMSI (RFC 6514 §5) --------------------------------------------------------------------------------
@FAST
@given(s.pmsi_tunnels)
def test_pmsi_round_trip(tunnel: PmsiTunnel) -> None:
    assert PmsiTunnel.decode(tunnel.encode()) == tunnel


@pytest.mark.parametrize("vtep", [ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv6Address("2001:db8::7")])
def test_pmsi_ingress_replication_tunnel_ids(vtep: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    tunnel = PmsiTunnel.ingress_replication(110, vtep)
    wire = tunnel.encode()
    assert wire[:5] == bytes((0, PmsiTunnelType.INGRESS_REPLICATION)) + bytes.fromhex("00006e")
    assert wire[5:] == vtep.packed
    decoded = PmsiTunnel.decode(wire)
    assert decoded.tunnel_id == vtep
    assert decoded.label == 110


def test_pmsi_bad() -> None:
    with pytest.raises(InvalidValue):
        PmsiTunnel.decode(b"\x00\x06\x00\x00")
    with pytest.raises(InvalidValue):
        PmsiTunnel(6, 1 << 24, ipaddress.IPv4Address("1.1.1.1"))


# -- AS_PATH --------------------------------------------------------------------------------------------
@FAST
@given(s.as_paths)
def test_as_path_round_trip_4_octet(path: AsPath) -> None:
    assert decode_as_path(path.encode(True), 4) == path


@FAST
@given(st.lists(st.lists(s.u16, min_size=1, max_size=300), max_size=3))
def test_as_path_round_trip_2_octet_and_long_segments(seqs: list[list[int]]) -> None:
    """Segments over 255 ASNs are split (RFC 4271 §4.3: segment length is one octet)."""
    path = AsPath(tuple(AsPathSegment(SegmentType.AS_SEQUENCE, tuple(q)) for q in seqs))
    decoded = decode_as_path(path.encode(False), 2)
    flat = [a for seg in decoded.segments for a in seg.asns]
    assert flat == [a for q in seqs for a in q]
    assert all(len(seg.asns) <= 255 for seg in decoded.segments)


def test_as_path_helpers() -> None:
    path = AsPath.sequence(65001, 65002)
    assert path.length == 2
    assert path.first_asn == 65001
    assert path.prepend(65000) == AsPath.sequence(65000, 65001, 65002)
    assert str(path) == "65001 65002"
    aset = AsPath((AsPathSegment(SegmentType.AS_SET, (1, 2)),))
    assert aset.length == 1
    assert aset.first_asn is None
    assert str(aset) == "{1,2}"
    assert AsPath().prepend(5) == AsPath.sequence(5)
    assert AsPath.sequence(*range(255)).prepend(7).segments[0].asns == (7,)
    confed = AsPath((AsPathSegment(SegmentType.AS_CONFED_SEQUENCE, (9,)), *path.segments))
    assert confed.length == 2
    assert confed.first_asn == 65001
    assert confed.contains(9)


def test_as_path_2_octet_uses_as_trans() -> None:
    """RFC 6793 §4.2.2: a 4-octet ASN in a 2-octet AS_PATH is AS_TRANS."""
    wire = AsPath.sequence(4200000000, 65000).encode(False)
    assert wire == bytes((2, 2)) + (23456).to_bytes(2, "big") + (65000).to_bytes(2, "big")


# -- whole attribute sets -------------------------------------------------------------------------------
@FAST
@given(s.path_attributes)
def test_path_attributes_round_trip(attrs: PathAttributes) -> None:
    assert _decode(attrs.encode()) == attrs


@st.composite
def _two_octet_attributes(draw: st.DrawFn) -> PathAttributes:
    attrs = draw(s.path_attributes)
    seqs = draw(st.lists(st.lists(s.u16, min_size=1, max_size=10), max_size=3))
    path = AsPath(tuple(AsPathSegment(SegmentType.AS_SEQUENCE, tuple(q)) for q in seqs))
    aggregator = draw(st.one_of(st.none(), st.tuples(s.u16, s.ipv4_addresses)))
    return replace(attrs, as_path=path, aggregator=aggregator)


@FAST
@given(_two_octet_attributes())
def test_path_attributes_round_trip_2_octet_session(attrs: PathAttributes) -> None:
    """RFC 4271 §4.3 / RFC 6793: without the 4-octet AS capability AS_PATH and AGGREGATOR use 2-octet ASNs."""
    assert _decode(attrs.encode(four_octet_as=False), four_octet_as=False) == attrs


def test_aggregator_2_octet_wire_length() -> None:
    """RFC 4271 §5.1.7: AGGREGATOR is 6 bytes between 2-octet speakers (8 with 4-octet ASNs, RFC 6793)."""
    attrs = PathAttributes(aggregator=(65000, ipaddress.IPv4Address("10.0.0.1")))
    wire = attrs.encode(four_octet_as=False)
    raw, _ = _split_attributes(wire, 0, len(wire))
    (value,) = [v for _f, c, v in raw if c == AttrType.AGGREGATOR]
    assert value == (65000).to_bytes(2, "big") + bytes((10, 0, 0, 1))
    wire = attrs.encode()
    raw, _ = _split_attributes(wire, 0, len(wire))
    (value,) = [v for _f, c, v in raw if c == AttrType.AGGREGATOR]
    assert len(value) == 8


def test_attribute_order_and_flags() -> None:
    attrs = PathAttributes(
        origin=Origin.INCOMPLETE,
        as_path=AsPath.sequence(65001),
        next_hop=ipaddress.IPv4Address("10.0.0.1"),
        med=5,
        local_pref=100,
        ext_communities=(VXLAN_ENCAPSULATION,),
        pmsi=PmsiTunnel.ingress_replication(110, ipaddress.IPv4Address("10.0.0.1")),
    )
    wire = attrs.encode()
    raw, _ = _split_attributes(wire, 0, len(wire))
    assert [c for _f, c, _v in raw] == [1, 2, 3, 4, 5, 16, 22]
    assert [f for f, _c, _v in raw] == [0x40, 0x40, 0x40, 0x80, 0x40, 0xC0, 0xC0]


def test_unknown_optional_transitive_passed_with_partial_bit() -> None:
    """RFC 4271 §5: an unrecognized optional transitive attribute is passed on with Partial set."""
    wire = encode_attribute(0xC0, 99, b"abc") + encode_attribute(0x80, 98, b"dropped")
    attrs = _decode(PathAttributes().encode() + wire)
    assert attrs.unknown == (UnknownAttribute(0xC0, 99, b"abc"),)
    reencoded = attrs.encode()
    raw, _ = _split_attributes(reencoded, 0, len(reencoded))
    assert (0xE0, 99, b"abc") in raw
    assert all(c != 98 for _f, c, _v in raw)


def test_unknown_attribute_extended_length_flag_not_kept() -> None:
    """The Extended Length bit is framing (RFC 4271 §4.3), not part of the attribute's flags."""
    wire = encode_attribute(0xC0, 99, b"x" * 300)
    assert wire[0] & 0x10
    attrs = _decode(PathAttributes().encode() + wire)
    assert attrs.unknown == (UnknownAttribute(0xC0, 99, b"x" * 300),)
    again = _decode(attrs.encode())
    assert again.unknown == (UnknownAttribute(0xE0, 99, b"x" * 300),)
    assert _decode(again.encode()) == again


def test_encode_attribute_extended_length() -> None:
    assert encode_attribute(0x40, 1, b"\x00") == b"\x40\x01\x01\x00"
    long = encode_attribute(0xC0, 16, b"\x00" * 256)
    assert long[:4] == b"\xd0\x10\x01\x00"
    with pytest.raises(InvalidValue):
        encode_attribute(0xC0, 16, b"\x00" * 65536)


def test_path_attribute_accessors() -> None:
    rt = RouteTarget.from_text("64512:110")
    mm = MacMobility(4, True)
    attrs = PathAttributes(ext_communities=(rt, VXLAN_ENCAPSULATION, RouterMac(MAC), mm, DefaultGateway()))
    assert attrs.route_targets == (rt,)
    assert attrs.router_mac == MAC
    assert attrs.mac_mobility == mm
    assert attrs.default_gateway
    assert attrs.encapsulation == 8
    empty = PathAttributes()
    assert empty.router_mac is None
    assert empty.mac_mobility is None
    assert empty.encapsulation is None
    assert not empty.default_gateway
