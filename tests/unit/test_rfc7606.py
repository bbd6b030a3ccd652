"""Targeted RFC 7606 (revised UPDATE error handling) and RFC 4271 §6 header/OPEN error tests.

Each test names the RFC section it checks.
"""

from __future__ import annotations

import ipaddress

import pytest

from evpn.codec.attributes import AsPath, AttrType, Origin, PathAttributes, encode_attribute
from evpn.codec.evpn_nlri import (
    EvpnRoute,
    InclusiveMulticastRoute,
    MacIpRoute,
    encode_evpn_route,
)
from evpn.codec.families import Family
from evpn.codec.messages import (
    HEADER_LEN,
    MARKER,
    DecodeOptions,
    MessageType,
    Open,
    Update,
    decode_message,
    encode_mp_reach,
    encode_mp_unreach,
    frame,
)
from evpn.codec.prefixes import encode_prefix
from evpn.errors import (
    HeaderSubcode,
    MessageError,
    NotificationCode,
    OpenSubcode,
    Rfc7606Action,
    UpdateSubcode,
)
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from tests.unit.test_messages import check_error

RD = RouteDistinguisher.from_text("10.0.0.1:3")
VTEP = ipaddress.IPv4Address("10.0.0.1")
ROUTES: tuple[EvpnRoute, ...] = (
    MacIpRoute(RD, MacAddress.from_text("00:11:22:33:44:55"), ipaddress.IPv4Address("10.1.1.1"), 110, 4001),
    InclusiveMulticastRoute(RD, VTEP),
)
WITHDRAWN: tuple[EvpnRoute, ...] = (InclusiveMulticastRoute(RD, ipaddress.IPv4Address("10.0.0.9")),)
NLRI_RAW = b"".join(encode_evpn_route(r) for r in ROUTES)

ORIGIN = encode_attribute(0x40, AttrType.ORIGIN, b"\x00")
AS_PATH = encode_attribute(0x40, AttrType.AS_PATH, AsPath.sequence(65001).encode())
MP_REACH = encode_mp_reach(Family.L2VPN_EVPN, VTEP.packed, NLRI_RAW)
MP_UNREACH = encode_mp_unreach(Family.L2VPN_EVPN, b"".join(encode_evpn_route(r) for r in WITHDRAWN))
EXT = encode_attribute(0xC0, AttrType.EXTENDED_COMMUNITIES, bytes.fromhex("0002fc000000006e"))


def update_wire(attrs: bytes, nlri: bytes = b"", withdrawn: bytes = b"") -> bytes:
    body = len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big") + attrs + nlri
    return frame(MessageType.UPDATE, body)


def decode_error(wire: bytes, options: DecodeOptions | None = None) -> MessageError:
    with pytest.raises(MessageError) as info:
        decode_message(wire, options)
    check_error(info.value)
    return info.value


def assert_treat_as_withdraw(wire: bytes, options: DecodeOptions | None = None) -> MessageError:
    err = decode_error(wire, options)
    assert err.action is Rfc7606Action.TREAT_AS_WITHDRAW, err.reason
    assert set(ROUTES) <= set(err.withdrawn)
    return err


def assert_discard(wire: bytes, code: int, options: DecodeOptions | None = None) -> Update:
    err = decode_error(wire, options)
    assert err.action is Rfc7606Action.ATTRIBUTE_DISCARD, err.reason
    assert err.discarded == (code,)
    assert isinstance(err.update, Update)
    assert err.update.announced_routes == ROUTES
    assert err.update.attributes is not None
    return err.update


def assert_reset(wire: bytes, code: int, subcode: int, options: DecodeOptions | None = None) -> MessageError:
    err = decode_error(wire, options)
    assert err.action is Rfc7606Action.SESSION_RESET, err.reason
    assert err.notification is not None
    assert (err.notification.code, err.notification.subcode) == (code, subcode), err.reason
    return err


def test_baseline_update_is_valid() -> None:
    decoded = decode_message(update_wire(MP_REACH + ORIGIN + AS_PATH + EXT))
    assert isinstance(decoded, Update)
    assert decoded.announced_routes == ROUTES


# -- RFC 7606 §7: per-attribute handling ----------------------------------------------------------------
@pytest.mark.parametrize("value", [b"\x03", b"\xff", b"", b"\x00\x00"])
def test_rfc7606_s7_1_malformed_origin_is_treat_as_withdraw(value: bytes) -> None:
    attr = encode_attribute(0x40, AttrType.ORIGIN, value)
    assert_treat_as_withdraw(update_wire(MP_REACH + attr + AS_PATH))


@pytest.mark.parametrize(
    "value",
    [
        b"\x02",  # truncated segment header
        b"\x02\x02\x00\x00\xfd\xe9",  # segment overruns (2 ASNs announced, 1 present)
        b"\x00\x01\x00\x00\xfd\xe9",  # segment type 0
        b"\x05\x01\x00\x00\xfd\xe9",  # segment type 5
        b"\x02\x00",  # zero-length segment
    ],
)
def test_rfc7606_s7_2_malformed_as_path_is_treat_as_withdraw(value: bytes) -> None:
    attr = encode_attribute(0x40, AttrType.AS_PATH, value)
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + attr))


def test_rfc7606_s7_3_next_hop_length_is_treat_as_withdraw() -> None:
    nh = encode_attribute(0x40, AttrType.NEXT_HOP, b"\x0a\x00\x00")
    prefix = encode_prefix(ipaddress.IPv4Network("192.0.2.0/24"))
    err = decode_error(update_wire(ORIGIN + AS_PATH + nh, nlri=prefix))
    assert err.action is Rfc7606Action.TREAT_AS_WITHDRAW
    assert err.withdrawn == (ipaddress.IPv4Network("192.0.2.0/24"),)


def test_rfc7606_s7_4_med_length_is_treat_as_withdraw() -> None:
    med = encode_attribute(0x80, AttrType.MULTI_EXIT_DISC, b"\x00\x00\x01")
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + med))


def test_rfc7606_s7_5_local_pref_from_ebgp_is_discarded() -> None:
    lp = encode_attribute(0x40, AttrType.LOCAL_PREF, (200).to_bytes(4, "big"))
    update = assert_discard(
        update_wire(MP_REACH + ORIGIN + AS_PATH + lp + EXT), AttrType.LOCAL_PREF, DecodeOptions(ebgp=True)
    )
    assert update.attributes is not None
    assert update.attributes.local_pref is None
    assert len(update.attributes.route_targets) == 1
    # from an internal peer the same UPDATE is fine
    decoded = decode_message(update_wire(MP_REACH + ORIGIN + AS_PATH + lp + EXT))
    assert isinstance(decoded, Update)
    assert decoded.attributes is not None
    assert decoded.attributes.local_pref == 200


def test_rfc7606_s7_5_local_pref_length_from_ibgp_is_treat_as_withdraw() -> None:
    lp = encode_attribute(0x40, AttrType.LOCAL_PREF, b"\x00\x00\x00\x00\x01")
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + lp))


@pytest.mark.parametrize("value", [b"\x00", b"\x00\x00"])
def test_rfc7606_s7_6_atomic_aggregate_length_is_attribute_discard(value: bytes) -> None:
    attr = encode_attribute(0x40, AttrType.ATOMIC_AGGREGATE, value)
    update = assert_discard(update_wire(MP_REACH + ORIGIN + AS_PATH + attr), AttrType.ATOMIC_AGGREGATE)
    assert update.attributes is not None
    assert update.attributes.atomic_aggregate is False
    assert update.attributes.origin is Origin.IGP
    assert update.attributes.as_path == AsPath.sequence(65001)


@pytest.mark.parametrize("length", [0, 6, 7, 9])
def test_rfc7606_s7_7_aggregator_length_is_attribute_discard(length: int) -> None:
    attr = encode_attribute(0xC0, AttrType.AGGREGATOR, bytes(length))
    update = assert_discard(update_wire(MP_REACH + ORIGIN + AS_PATH + attr), AttrType.AGGREGATOR)
    assert update.attributes is not None
    assert update.attributes.aggregator is None


def test_rfc7606_s7_7_aggregator_2_octet_session() -> None:
    """Between 2-octet speakers AGGREGATOR is 6 bytes; 8 is malformed there."""
    path = encode_attribute(0x40, AttrType.AS_PATH, AsPath.sequence(65001).encode(False))
    ok = encode_attribute(0xC0, AttrType.AGGREGATOR, bytes(6))
    two = DecodeOptions(four_octet_as=False)
    decoded = decode_message(update_wire(MP_REACH + ORIGIN + path + ok), two)
    assert isinstance(decoded, Update)
    assert decoded.attributes is not None
    assert decoded.attributes.aggregator == (0, ipaddress.IPv4Address(0))
    bad = encode_attribute(0xC0, AttrType.AGGREGATOR, bytes(8))
    assert_discard(update_wire(MP_REACH + ORIGIN + path + bad), AttrType.AGGREGATOR, two)


@pytest.mark.parametrize("length", [0, 3, 5, 7])
def test_rfc7606_s7_8_communities_length_is_treat_as_withdraw(length: int) -> None:
    attr = encode_attribute(0xC0, AttrType.COMMUNITIES, bytes(length))
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + attr))


@pytest.mark.parametrize("length", [0, 3, 5, 8])
def test_rfc7606_s7_9_originator_id_length_is_treat_as_withdraw(length: int) -> None:
    attr = encode_attribute(0x80, AttrType.ORIGINATOR_ID, bytes(length))
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + attr))


@pytest.mark.parametrize("length", [0, 3, 6, 9])
def test_rfc7606_s7_10_cluster_list_length_is_treat_as_withdraw(length: int) -> None:
    attr = encode_attribute(0x80, AttrType.CLUSTER_LIST, bytes(length))
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + attr))


@pytest.mark.parametrize("length", [0, 4, 7, 9, 12, 15])
def test_rfc7606_s7_14_ext_communities_length_not_multiple_of_8_is_treat_as_withdraw(length: int) -> None:
    attr = encode_attribute(0xC0, AttrType.EXTENDED_COMMUNITIES, bytes(length))
    err = assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + attr))
    assert err.withdrawn == ROUTES


@pytest.mark.parametrize("length", [0, 1, 4])
def test_rfc7606_s3_pmsi_tunnel_malformed_is_treat_as_withdraw(length: int) -> None:
    """RFC 6514 §5 PMSI Tunnel shorter than its fixed part: treat-as-withdraw (RFC 7606 §3 default)."""
    attr = encode_attribute(0xC0, AttrType.PMSI_TUNNEL, bytes(length))
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + attr))


def test_rfc6793_s4_1_as4_path_from_new_speaker_is_discarded() -> None:
    attr = encode_attribute(0xC0, AttrType.AS4_PATH, AsPath.sequence(65001).encode())
    assert_discard(update_wire(MP_REACH + ORIGIN + AS_PATH + attr), AttrType.AS4_PATH)


# -- RFC 7606 §3: general rules -------------------------------------------------------------------------
def test_rfc7606_s3_c_attribute_flags_wrong_is_treat_as_withdraw() -> None:
    origin_optional = encode_attribute(0xC0, AttrType.ORIGIN, b"\x00")
    assert_treat_as_withdraw(update_wire(MP_REACH + origin_optional + AS_PATH))
    ext_non_transitive = encode_attribute(0x80, AttrType.EXTENDED_COMMUNITIES, bytes(8))
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + ext_non_transitive))
    mp_transitive = bytes((0xC0,)) + MP_REACH[1:]
    assert_treat_as_withdraw(update_wire(mp_transitive + ORIGIN + AS_PATH))


def test_rfc7606_s3_c_partial_bit_is_not_a_flag_error() -> None:
    ext_partial = encode_attribute(0xE0, AttrType.EXTENDED_COMMUNITIES, bytes.fromhex("0002fc000000006e"))
    decoded = decode_message(update_wire(MP_REACH + ORIGIN + AS_PATH + ext_partial))
    assert isinstance(decoded, Update)


def test_rfc7606_s7_7_aggregator_flags_wrong_is_attribute_discard() -> None:
    attr = encode_attribute(0x40, AttrType.AGGREGATOR, bytes(8))
    assert_discard(update_wire(MP_REACH + ORIGIN + AS_PATH + attr), AttrType.AGGREGATOR)


@pytest.mark.parametrize("missing", ["ORIGIN", "AS_PATH", "both"])
def test_rfc7606_s3_d_missing_well_known_attribute_with_nlri_is_treat_as_withdraw(missing: str) -> None:
    attrs = {"ORIGIN": AS_PATH + EXT, "AS_PATH": ORIGIN + EXT, "both": EXT}[missing]
    assert_treat_as_withdraw(update_wire(MP_REACH + attrs))


def test_rfc7606_s3_d_mp_reach_without_any_other_attribute_is_treat_as_withdraw() -> None:
    err = assert_treat_as_withdraw(update_wire(MP_REACH))
    assert err.withdrawn == ROUTES


def test_rfc7606_s3_d_missing_next_hop_for_ipv4_nlri_is_treat_as_withdraw() -> None:
    prefix = ipaddress.IPv4Network("192.0.2.0/24")
    err = decode_error(update_wire(ORIGIN + AS_PATH, nlri=encode_prefix(prefix)))
    assert err.action is Rfc7606Action.TREAT_AS_WITHDRAW
    assert err.withdrawn == (prefix,)


def test_rfc7606_s3_d_missing_attributes_without_nlri_is_fine() -> None:
    """A pure withdrawal needs no ORIGIN/AS_PATH (RFC 7606 §3.d applies only with NLRI)."""
    decoded = decode_message(update_wire(MP_UNREACH))
    assert isinstance(decoded, Update)
    assert decoded.withdrawn_routes == WITHDRAWN


def test_rfc7606_s3_g_duplicate_mp_reach_is_session_reset() -> None:
    assert_reset(
        update_wire(MP_REACH + ORIGIN + AS_PATH + MP_REACH),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
    )


def test_rfc7606_s3_g_duplicate_mp_unreach_is_session_reset() -> None:
    assert_reset(
        update_wire(MP_UNREACH + MP_UNREACH),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
    )


def test_rfc7606_s3_g_duplicate_other_attribute_is_discarded_keeping_the_first() -> None:
    med1 = encode_attribute(0x80, AttrType.MULTI_EXIT_DISC, (1).to_bytes(4, "big"))
    med2 = encode_attribute(0x80, AttrType.MULTI_EXIT_DISC, (2).to_bytes(4, "big"))
    update = assert_discard(update_wire(MP_REACH + ORIGIN + med1 + AS_PATH + med2), AttrType.MULTI_EXIT_DISC)
    assert update.attributes is not None
    assert update.attributes.med == 1


def test_rfc7606_s3_g_duplicate_unknown_attribute_is_discarded() -> None:
    u1 = encode_attribute(0xC0, 99, b"a")
    u2 = encode_attribute(0xC0, 99, b"b")
    update = assert_discard(update_wire(MP_REACH + ORIGIN + AS_PATH + u1 + u2), 99)
    assert update.attributes is not None
    assert [a.value for a in update.attributes.unknown] == [b"a"]


def test_rfc7606_s3_h_most_severe_outcome_wins() -> None:
    bad_origin = encode_attribute(0x40, AttrType.ORIGIN, b"\x09")
    bad_atomic = encode_attribute(0x40, AttrType.ATOMIC_AGGREGATE, b"\x01")
    assert_treat_as_withdraw(update_wire(MP_REACH + bad_origin + AS_PATH + bad_atomic))


def test_rfc4271_s6_3_unrecognized_well_known_attribute_is_session_reset() -> None:
    """RFC 4271 §6.3: Unrecognized Well-known Attribute (3/2), data is the attribute."""
    attr = encode_attribute(0x40, 99, b"xyz")
    err = assert_reset(
        update_wire(MP_REACH + ORIGIN + AS_PATH + attr),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
    )
    assert err.notification is not None
    assert err.notification.data == attr


def test_unknown_optional_non_transitive_attribute_is_ignored() -> None:
    attr = encode_attribute(0x80, 99, b"xyz")
    decoded = decode_message(update_wire(MP_REACH + ORIGIN + AS_PATH + attr))
    assert isinstance(decoded, Update)
    assert decoded.attributes is not None
    assert decoded.attributes.unknown == ()


# -- RFC 7606 §4, §5: framing and NLRI ------------------------------------------------------------------
def test_rfc7606_s4_attribute_overrun_after_mp_reach_is_treat_as_withdraw() -> None:
    overrun = bytes((0x40, AttrType.ORIGIN, 9, 0))  # claims 9 bytes, 1 present
    err = assert_treat_as_withdraw(update_wire(MP_REACH + AS_PATH + overrun))
    assert err.withdrawn == ROUTES


def test_rfc7606_s4_attribute_overrun_before_any_mp_reach_is_session_reset() -> None:
    overrun = bytes((0x40, AttrType.ORIGIN, 9, 0))
    assert_reset(
        update_wire(AS_PATH + overrun),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
    )


def test_rfc7606_s4_truncated_attribute_header_after_mp_reach_is_treat_as_withdraw() -> None:
    assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + b"\x40\x01"))


def test_rfc7606_s4_treat_as_withdraw_lists_body_nlri_and_unreach_too() -> None:
    prefix = ipaddress.IPv4Network("192.0.2.0/24")
    overrun = bytes((0x40, AttrType.ORIGIN, 9, 0))
    err = decode_error(update_wire(MP_REACH + MP_UNREACH + overrun, nlri=encode_prefix(prefix)))
    assert err.action is Rfc7606Action.TREAT_AS_WITHDRAW
    assert set(err.withdrawn) == {*ROUTES, *WITHDRAWN, prefix}


def test_rfc7606_s4_total_attribute_length_overrun_is_session_reset() -> None:
    body = b"\x00\x00" + (100).to_bytes(2, "big") + ORIGIN
    assert_reset(
        frame(MessageType.UPDATE, body),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
    )


def test_rfc4271_s6_3_withdrawn_length_overrun_is_session_reset() -> None:
    body = (50).to_bytes(2, "big") + b"\x00\x00"
    assert_reset(
        frame(MessageType.UPDATE, body),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
    )


@pytest.mark.parametrize(
    "nlri",
    [
        bytes((2, 34)) + bytes(34),  # bad type-2 length
        bytes((3, 20)) + bytes(5),  # overrun
        b"\x02",  # truncated header
        bytes((2, 33))
        + bytes(22)
        + b"\x30"
        + bytes(6)
        + b"\x20"
        + bytes(3),  # IP length 32 in a 33-byte route
    ],
)
def test_rfc7606_s5_3_mp_reach_with_unparseable_evpn_nlri_is_session_reset(nlri: bytes) -> None:
    reach = encode_mp_reach(Family.L2VPN_EVPN, VTEP.packed, nlri)
    err = assert_reset(
        update_wire(reach + ORIGIN + AS_PATH),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
    )
    assert "NLRI" in err.reason


def test_rfc7606_s5_3_mp_unreach_with_unparseable_nlri_is_session_reset() -> None:
    unreach = encode_mp_unreach(Family.L2VPN_EVPN, bytes((1, 10)) + bytes(10))
    assert_reset(
        update_wire(unreach), NotificationCode.UPDATE_MESSAGE_ERROR, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR
    )


def test_rfc7606_s5_3_ipv4_nlri_unparseable_is_session_reset() -> None:
    nh = encode_attribute(0x40, AttrType.NEXT_HOP, VTEP.packed)
    assert_reset(
        update_wire(ORIGIN + AS_PATH + nh, nlri=b"\x21\x01\x02\x03\x04\x05"),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.INVALID_NETWORK_FIELD,
    )
    assert_reset(
        update_wire(b"", withdrawn=b"\x18\x0a"),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.INVALID_NETWORK_FIELD,
    )


@pytest.mark.parametrize("value", [b"", b"\x00\x19\x46", b"\x00\x19\x46\x10\x00"])
def test_rfc7606_s7_11_mp_reach_too_short_is_session_reset(value: bytes) -> None:
    reach = encode_attribute(0x80, AttrType.MP_REACH_NLRI, value)
    assert_reset(
        update_wire(reach + ORIGIN + AS_PATH),
        NotificationCode.UPDATE_MESSAGE_ERROR,
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
    )


def test_rfc7606_s7_11_mp_reach_next_hop_length_is_treat_as_withdraw() -> None:
    reach = encode_mp_reach(Family.L2VPN_EVPN, b"\x0a\x00\x00\x01\x02", NLRI_RAW)
    assert_treat_as_withdraw(update_wire(reach + ORIGIN + AS_PATH))


def test_rfc7606_s7_12_mp_unreach_too_short_is_session_reset() -> None:
    unreach = encode_attribute(0x80, AttrType.MP_UNREACH_NLRI, b"\x00\x19")
    assert_reset(
        update_wire(unreach), NotificationCode.UPDATE_MESSAGE_ERROR, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR
    )


def test_rfc7606_s5_1_treat_as_withdraw_keeps_parsed_update_for_logging() -> None:
    attr = encode_attribute(0xC0, AttrType.COMMUNITIES, bytes(3))
    err = assert_treat_as_withdraw(update_wire(MP_REACH + ORIGIN + AS_PATH + attr))
    assert isinstance(err.update, Update)
    assert err.update.mp_reach is not None
    assert err.update.mp_reach.next_hop == VTEP


# -- RFC 4271 §6.1: message header errors --------------------------------------------------------------
def test_rfc4271_s6_1_bad_marker_is_1_1() -> None:
    wire = bytearray(frame(MessageType.KEEPALIVE, b""))
    wire[3] = 0
    assert_reset(
        bytes(wire), NotificationCode.MESSAGE_HEADER_ERROR, HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED
    )


@pytest.mark.parametrize(
    "wire",
    [
        MARKER + (18).to_bytes(2, "big") + b"\x04",  # below the minimum
        MARKER + (20).to_bytes(2, "big") + b"\x04",  # length field larger than the bytes
        MARKER + (19).to_bytes(2, "big") + b"\x04\x00",  # length field smaller than the bytes
        frame(MessageType.KEEPALIVE, b"\x00"),  # KEEPALIVE is exactly 19
        frame(MessageType.NOTIFICATION, b"\x06"),  # NOTIFICATION at least 21
        frame(MessageType.OPEN, bytes(9)),  # OPEN at least 29
        frame(MessageType.UPDATE, b"\x00\x00\x00"),  # UPDATE at least 23
        frame(MessageType.ROUTE_REFRESH, b"\x00\x19\x00"),  # ROUTE-REFRESH at least 23
        MARKER[:10],  # shorter than a header
    ],
)
def test_rfc4271_s6_1_bad_length_is_1_2(wire: bytes) -> None:
    assert_reset(wire, NotificationCode.MESSAGE_HEADER_ERROR, HeaderSubcode.BAD_MESSAGE_LENGTH)


def test_rfc4271_s6_1_bad_length_data_is_the_length_field() -> None:
    err = assert_reset(
        frame(MessageType.KEEPALIVE, b"\x00"),
        NotificationCode.MESSAGE_HEADER_ERROR,
        HeaderSubcode.BAD_MESSAGE_LENGTH,
    )
    assert err.notification is not None
    assert err.notification.data == (20).to_bytes(2, "big")


def test_rfc8654_message_over_the_negotiated_maximum_is_1_2() -> None:
    wire = frame(MessageType.NOTIFICATION, b"\x06\x02" + bytes(5000))
    assert_reset(
        wire,
        NotificationCode.MESSAGE_HEADER_ERROR,
        HeaderSubcode.BAD_MESSAGE_LENGTH,
        DecodeOptions(max_message=4096),
    )
    assert decode_message(wire, DecodeOptions(max_message=65535))


@pytest.mark.parametrize("kind", [0, 6, 7, 255])
def test_rfc4271_s6_1_bad_type_is_1_3(kind: int) -> None:
    err = assert_reset(
        frame(kind, b""), NotificationCode.MESSAGE_HEADER_ERROR, HeaderSubcode.BAD_MESSAGE_TYPE
    )
    assert err.notification is not None
    assert err.notification.data == bytes((kind,))


# -- RFC 4271 §6.2: OPEN errors ------------------------------------------------------------------------
def _open_body(version: int = 4, hold: int = 90, bgp_id: int = 0x0A000001, params: bytes = b"\x00") -> bytes:
    return frame(
        MessageType.OPEN,
        bytes((version,))
        + (65000).to_bytes(2, "big")
        + hold.to_bytes(2, "big")
        + bgp_id.to_bytes(4, "big")
        + params,
    )


def test_rfc4271_s6_2_open_version_3_is_2_1() -> None:
    err = assert_reset(
        _open_body(version=3), NotificationCode.OPEN_MESSAGE_ERROR, OpenSubcode.UNSUPPORTED_VERSION_NUMBER
    )
    assert err.notification is not None
    assert err.notification.data == b"\x00\x04"  # the largest version we support


@pytest.mark.parametrize("hold", [1, 2])
def test_rfc4271_s6_2_open_hold_time_1_or_2_is_2_6(hold: int) -> None:
    assert_reset(
        _open_body(hold=hold), NotificationCode.OPEN_MESSAGE_ERROR, OpenSubcode.UNACCEPTABLE_HOLD_TIME
    )


@pytest.mark.parametrize("hold", [0, 3, 65535])
def test_rfc4271_s4_2_open_hold_time_0_or_3_plus_accepted(hold: int) -> None:
    decoded = decode_message(_open_body(hold=hold))
    assert isinstance(decoded, Open)
    assert decoded.hold_time == hold


def test_rfc4271_s6_2_open_bgp_id_0_is_2_3() -> None:
    assert_reset(_open_body(bgp_id=0), NotificationCode.OPEN_MESSAGE_ERROR, OpenSubcode.BAD_BGP_IDENTIFIER)


@pytest.mark.parametrize(
    "params",
    [
        b"\x05",  # length beyond the message
        b"\x03\x01\x01\x00",  # parameter type 1 (authentication, deprecated)
        b"\x02\x02\x05",  # parameter overruns
        b"\x03\x02\x01\x01",  # capability overruns its parameter
    ],
)
def test_rfc5492_open_optional_parameter_errors_are_2_x(params: bytes) -> None:
    err = decode_error(_open_body(params=params))
    assert err.notification is not None
    assert err.notification.code == NotificationCode.OPEN_MESSAGE_ERROR


def test_rfc5492_malformed_known_capability_is_open_error() -> None:
    params = bytes((5, 2, 3, 1, 1, 0))  # multiprotocol capability of 1 byte
    err = decode_error(_open_body(params=params))
    assert err.notification is not None
    assert err.notification.code == NotificationCode.OPEN_MESSAGE_ERROR


def test_open_header_fields_decode() -> None:
    wire = _open_body()
    decoded = decode_message(wire)
    assert decoded == Open(65000, 90, ipaddress.IPv4Address("10.0.0.1"))
    assert len(wire) == HEADER_LEN + 10


def test_encoded_attributes_helper_round_trip() -> None:
    """Sanity: the PathAttributes encoder produces what these hand-built tests use."""
    assert PathAttributes(as_path=AsPath.sequence(65001)).encode() == ORIGIN + AS_PATH


@pytest.mark.parametrize("subtype", [1, 2])
def test_rfc7313_s5_borr_eorr_bad_length_is_7_1_with_the_message(subtype: int) -> None:
    wire = frame(MessageType.ROUTE_REFRESH, bytes((0, 25, subtype, 70, 0)))
    err = assert_reset(wire, NotificationCode.ROUTE_REFRESH_MESSAGE_ERROR, 1)
    assert err.notification is not None
    assert err.notification.data == wire
    assert err.notification.describe() == "ROUTE-REFRESH Message Error / Invalid Message Length"


def test_rfc2918_route_refresh_bad_length_is_1_2() -> None:
    assert_reset(
        frame(MessageType.ROUTE_REFRESH, bytes((0, 25, 0, 70, 0))),
        NotificationCode.MESSAGE_HEADER_ERROR,
        HeaderSubcode.BAD_MESSAGE_LENGTH,
    )


def test_rfc8654_s4_open_over_4096_is_1_2_even_with_extended_messages() -> None:
    params = bytes((255, 255)) + (4100).to_bytes(2, "big") + b"\x02" + (4097).to_bytes(2, "big") + bytes(4097)
    assert_reset(
        _open_body(params=params),
        NotificationCode.MESSAGE_HEADER_ERROR,
        HeaderSubcode.BAD_MESSAGE_LENGTH,
        DecodeOptions(max_message=65535),
    )


def test_rfc7606_s7_2_encoder_never_emits_zero_length_segment() -> None:
    """A zero-length AS_PATH segment is malformed on receipt; the encoder leaves empty segments out."""
    from evpn.codec.attributes import AsPathSegment, SegmentType

    path = AsPath((AsPathSegment(SegmentType.AS_SET, ()), *AsPath.sequence(65001).segments))
    assert path.encode() == AsPath.sequence(65001).encode()
    attrs = PathAttributes(as_path=path)
    decoded = decode_message(update_wire(MP_REACH + attrs.encode()))
    assert isinstance(decoded, Update)


@pytest.mark.parametrize("code", [AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR])
def test_rfc6793_s6_as4_attribute_with_wrong_flags_is_attribute_discard(code: int) -> None:
    """RFC 6793 §6 (and RFC 7606 §3.c's exception): a malformed AS4_PATH/AS4_AGGREGATOR is discarded."""
    attr = encode_attribute(0x80, code, AsPath.sequence(65001).encode())  # optional, not transitive
    assert_discard(update_wire(MP_REACH + ORIGIN + AS_PATH + attr), code)


@pytest.mark.parametrize(
    "next_hop",
    [
        encode_attribute(0x40, AttrType.NEXT_HOP, bytes(16)),  # wrong length
        encode_attribute(0xC0, AttrType.NEXT_HOP, bytes(4)),  # wrong flags
        encode_attribute(0x40, AttrType.NEXT_HOP, bytes(4)),  # fine
    ],
)
def test_rfc4760_s3_next_hop_without_body_nlri_is_ignored(next_hop: bytes) -> None:
    """RFC 4760 §3: an UPDATE whose only NLRI is in MP_REACH_NLRI ignores NEXT_HOP, even a malformed one."""
    decoded = decode_message(update_wire(MP_REACH + ORIGIN + AS_PATH + next_hop))
    assert isinstance(decoded, Update)
    assert decoded.announced_routes == ROUTES
