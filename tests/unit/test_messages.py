"""Whole BGP messages (RFC 4271 §4): round trips, End-of-RIB, framing, and the bad-input contract.

The contract: ``MessageDecoder.decode`` / ``decode_message`` return a message or raise exactly
``evpn.errors.MessageError`` whose RFC 7606 outcome is coherent; ``MessageDecoder.split`` likewise.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evpn.codec.attributes import PathAttributes
from evpn.codec.capabilities import (
    AddPath,
    AddPathFamily,
    Capability,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAs,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
    decode_capability,
    encode_capability,
)
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.families import Family
from evpn.codec.messages import (
    HEADER_LEN,
    MARKER,
    DecodeOptions,
    Keepalive,
    Message,
    MessageDecoder,
    MessageType,
    MpReach,
    MpUnreach,
    NotificationMessage,
    Open,
    RouteRefreshMessage,
    Update,
    decode_message,
    encode_update,
    end_of_rib,
    frame,
)
from evpn.errors import InvalidValue, MessageError, Rfc7606Action
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from tests.unit import strategies as s

FAST = settings(max_examples=200, deadline=None)
# EVPN_FUZZ_EXAMPLES raises the example budget of the bad-input tests for a long local campaign.
FUZZ = settings(
    max_examples=int(os.environ.get("EVPN_FUZZ_EXAMPLES", "300")),
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow],
)
BGP_ID = ipaddress.IPv4Address("10.0.0.1")


# -- the contract checker -------------------------------------------------------------------------------
def check_error(err: MessageError) -> None:
    """An RFC 7606 outcome must be usable: reset has a NOTIFICATION, withdraw lists NLRIs, discard an UPDATE."""
    assert type(err) is MessageError
    assert err.reason
    if err.action is Rfc7606Action.SESSION_RESET:
        assert err.notification is not None
        assert 1 <= err.notification.code <= 7
        assert isinstance(err.notification.data, bytes)
        assert err.notification.describe()
    elif err.action is Rfc7606Action.TREAT_AS_WITHDRAW:
        assert err.notification is None
        assert isinstance(err.update, Update)
        assert err.withdrawn == err.update.withdrawn_routes + err.update.announced_routes
    elif err.action is Rfc7606Action.ATTRIBUTE_DISCARD:
        assert err.notification is None
        assert isinstance(err.update, Update)
        assert err.discarded
        assert err.update.discarded == err.discarded
    else:  # pragma: no cover - the codec never picks AFI/SAFI disable
        raise AssertionError(f"unexpected action {err.action}")


def decode_checked(data: bytes, options: DecodeOptions | None = None) -> Message | None:
    """Decode through both entry points; None when it raised (after checking the error)."""
    results = []
    for call in (lambda: decode_message(data, options), lambda: MessageDecoder(options).decode(data)):
        try:
            results.append(call())
        except MessageError as err:
            check_error(err)
            results.append(type(err).__name__ + ":" + err.action.value)
    assert results[0] == results[1]
    return results[0] if not isinstance(results[0], str) else None


def refix_length(msg: bytes) -> bytes:
    """Make the header length match so the body parser is reached."""
    return msg[:16] + len(msg).to_bytes(2, "big") + msg[18:]


# -- round trips ---------------------------------------------------------------------------------------
@FAST
@given(s.messages)
def test_message_round_trip(message: Message) -> None:
    wire = s.encode_message(message)
    assert wire[:16] == MARKER
    assert int.from_bytes(wire[16:18], "big") == len(wire)
    assert decode_message(wire) == message


@FAST
@given(s.capabilities)
def test_capability_round_trip(cap: Capability) -> None:
    wire = encode_capability(cap)
    assert decode_capability(wire[0], wire[2:]) == cap


@pytest.mark.parametrize(
    "cap",
    [
        Multiprotocol(25, 70),
        Multiprotocol(1, 1),
        Multiprotocol(2, 1),
        FourOctetAs(4200000000),
        RouteRefresh(),
        GracefulRestart(120, True, True, (GracefulRestartFamily(25, 70, True), GracefulRestartFamily(1, 1))),
        AddPath((AddPathFamily(25, 70, 3), AddPathFamily(1, 1, 1))),
        ExtendedMessage(),
        EnhancedRouteRefresh(),
        UnknownCapability(128, b"\x01\x02"),
    ],
)
def test_open_with_each_capability(cap: Capability) -> None:
    message = Open(23456, 90, BGP_ID, (cap,))
    assert decode_message(message.encode()) == message


def test_capability_wire_forms() -> None:
    """RFC 4760 §8, RFC 6793, RFC 4724 §3, RFC 7911 §4, RFC 8654, RFC 7313."""
    assert encode_capability(Multiprotocol(25, 70)).hex() == "010400190046"
    assert encode_capability(FourOctetAs(65546)).hex() == "41040001000a"
    assert encode_capability(RouteRefresh()).hex() == "0200"
    assert encode_capability(ExtendedMessage()).hex() == "0600"
    assert encode_capability(EnhancedRouteRefresh()).hex() == "4600"
    assert (
        encode_capability(
            GracefulRestart(120, restarting=True, families=(GracefulRestartFamily(25, 70, True),))
        ).hex()
        == "400680780019" + "4680"
    )
    assert encode_capability(AddPath((AddPathFamily(25, 70, 3),))).hex() == "450400194603"


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (1, b"\x00\x01\x00"),
        (65, b"\x00\x00\x01"),
        (64, b"\x00"),
        (64, b"\x00\x78\x00"),
        (69, b""),
        (69, b"\x00\x01\x01"),
    ],
)
def test_malformed_known_capability(code: int, value: bytes) -> None:
    with pytest.raises(InvalidValue):
        decode_capability(code, value)


def test_open_many_capabilities_uses_extended_optional_parameters() -> None:
    """RFC 9072: optional parameters over 255 bytes use the extended encoding."""
    caps = tuple(UnknownCapability(200 + i, bytes(40)) for i in range(8))
    message = Open(65000, 180, BGP_ID, caps)
    wire = message.encode()
    assert wire[HEADER_LEN + 9 : HEADER_LEN + 11] == b"\xff\xff"
    assert decode_message(wire) == message


def test_open_wire_layout() -> None:
    wire = Open(65000, 180, BGP_ID, (Multiprotocol(25, 70),)).encode()
    assert wire[18] == MessageType.OPEN
    body = wire[HEADER_LEN:]
    assert body[0] == 4
    assert body[1:3] == (65000).to_bytes(2, "big")
    assert body[3:5] == (180).to_bytes(2, "big")
    assert body[5:9] == BGP_ID.packed
    assert body[9:] == bytes((8, 2, 6)) + bytes.fromhex("010400190046")
    assert Open(65000, 180, BGP_ID).encode()[HEADER_LEN + 9 :] == b"\x00"


def test_keepalive_notification_route_refresh() -> None:
    assert Keepalive().encode() == MARKER + b"\x00\x13\x04"
    assert decode_message(Keepalive().encode()) == Keepalive()
    note = NotificationMessage(6, 2, b"bye")
    assert decode_message(note.encode()) == note
    rr = RouteRefreshMessage(25, 70)
    assert rr.encode()[HEADER_LEN:] == bytes.fromhex("00190046")
    assert decode_message(rr.encode()) == rr
    borr = RouteRefreshMessage(25, 70, 1)
    assert decode_message(borr.encode()) == borr


@FAST
@given(s.evpn_updates())
def test_evpn_update_round_trip(update: Update) -> None:
    """EVPN announce in MP_REACH_NLRI and withdraw in MP_UNREACH_NLRI (RFC 4760 §3/§4, AFI 25 SAFI 70)."""
    decoded = decode_message(encode_update(update))
    assert decoded == update
    assert isinstance(decoded, Update)
    assert decoded.announced_routes == (update.mp_reach.routes if update.mp_reach else ())


@FAST
@given(s.ipv4_updates())
def test_ipv4_unicast_update_round_trip(update: Update) -> None:
    decoded = decode_message(encode_update(update))
    assert decoded == update


@FAST
@given(s.ipv6_updates())
def test_ipv6_unicast_update_round_trip(update: Update) -> None:
    decoded = decode_message(encode_update(update))
    assert decoded == update


@pytest.mark.parametrize("family", list(Family))
def test_end_of_rib_each_family(family: Family) -> None:
    """RFC 4724 §2: IPv4 EoR is an empty UPDATE, others an MP_UNREACH_NLRI with no NLRI."""
    wire = end_of_rib(family)
    decoded = decode_message(wire)
    assert isinstance(decoded, Update)
    assert decoded.end_of_rib is family
    if family is Family.IPV4_UNICAST:
        assert wire == frame(MessageType.UPDATE, b"\x00\x00\x00\x00")
    else:
        assert decoded == Update(mp_unreach=MpUnreach(family.afi, family.safi, ()))


def test_not_end_of_rib() -> None:
    assert Update(nlri=(ipaddress.IPv4Network("10.0.0.0/8"),)).end_of_rib is None
    assert Update(mp_unreach=MpUnreach(25, 70, (), b"\x01")).end_of_rib is None
    assert Update(mp_unreach=MpUnreach(1, 128, ())).end_of_rib is None
    assert Update(mp_reach=MpReach(25, 70, (), ())).end_of_rib is None


def test_unknown_family_kept_raw() -> None:
    """An unknown AFI/SAFI in MP_UNREACH is kept as raw NLRI bytes."""
    attr = bytes((0x80, 15, 6)) + (1).to_bytes(2, "big") + bytes((128,)) + b"\x01\x02\x03"
    wire = frame(MessageType.UPDATE, b"\x00\x00" + len(attr).to_bytes(2, "big") + attr)
    decoded = decode_message(wire)
    assert isinstance(decoded, Update)
    assert decoded.mp_unreach == MpUnreach(1, 128, (), b"\x01\x02\x03")


def test_decode_accepts_bytearray_and_memory_copies() -> None:
    route = MacIpRoute(RouteDistinguisher.as2(1, 1), MacAddress(b"\x00" * 6))
    update = Update(attributes=PathAttributes(), mp_reach=MpReach(25, 70, (BGP_ID,), (route,)))
    wire = encode_update(update)
    assert MessageDecoder().decode(bytearray(wire)) == update  # type: ignore[arg-type]


# -- framing -------------------------------------------------------------------------------------------
@settings(FAST, max_examples=100)
@given(st.lists(s.messages, max_size=6), st.integers(0, 200))
def test_split_stream(messages: list[Message], cut: int) -> None:
    wires = [s.encode_message(m) for m in messages]
    stream = b"".join(wires)
    decoder = MessageDecoder()
    out, used = decoder.split(stream)
    assert out == wires
    assert used == len(stream)
    assert decoder.split(bytearray(stream)) == (wires, len(stream))
    # a partial buffer yields only the whole messages and leaves the rest
    partial = stream[: max(0, len(stream) - cut)]
    out, used = decoder.split(partial)
    assert b"".join(out) == partial[:used]
    assert decoder.split(partial[used:]) == ([], 0)
    assert [decoder.decode(w) for w in out] == messages[: len(out)]


@FUZZ
@given(st.binary(max_size=300))
def test_split_random_bytes(data: bytes) -> None:
    try:
        out, used = MessageDecoder().split(data)
    except MessageError as err:
        check_error(err)
        assert err.action is Rfc7606Action.SESSION_RESET
        return
    assert 0 <= used <= len(data)
    assert b"".join(out) == data[:used]


@FUZZ
@given(st.binary(max_size=300))
def test_split_random_bytes_after_marker(data: bytes) -> None:
    buffer = MARKER + data
    try:
        out, used = MessageDecoder().split(buffer)
    except MessageError as err:
        check_error(err)
        return
    for item in out:
        decode_checked(item)
    assert b"".join(out) == buffer[:used]


def test_split_respects_max_message() -> None:
    big = frame(MessageType.NOTIFICATION, b"\x06\x02" + bytes(5000))
    out, _ = MessageDecoder().split(big)
    assert out == [big]
    with pytest.raises(MessageError) as info:
        MessageDecoder(DecodeOptions(max_message=4096)).split(big)
    assert info.value.notification is not None
    assert (info.value.notification.code, info.value.notification.subcode) == (1, 2)


# -- bad-input contract: truncation and mutation -------------------------------------------------------
@settings(FUZZ, max_examples=FUZZ.max_examples // 2)
@given(s.messages)
def test_every_prefix_is_an_error_or_message(message: Message) -> None:
    """Every prefix of a valid message, as is and with the header length patched, decodes or raises MessageError."""
    wire = s.encode_message(message)
    for cut in range(len(wire)):
        prefix = wire[:cut]
        assert decode_checked(prefix) is None  # the header's length never matches a strict prefix
        if cut >= HEADER_LEN:
            decode_checked(refix_length(prefix))


@FUZZ
@given(s.messages, st.data())
def test_byte_flips(message: Message, data: st.DataObject) -> None:
    wire = bytearray(s.encode_message(message))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] = data.draw(st.integers(0, 255))
    decode_checked(bytes(wire))
    if len(wire) >= HEADER_LEN:
        decode_checked(refix_length(bytes(wire)))


def _with_partial(update: Update) -> Update:
    if update.attributes is None or not update.attributes.unknown:
        return update
    unknown = tuple(dataclasses.replace(a, flags=a.flags | 0x20) for a in update.attributes.unknown)
    return dataclasses.replace(update, attributes=dataclasses.replace(update.attributes, unknown=unknown))


def _encodable(update: Update) -> bool:
    """Unknown families cannot be re-encoded (the codec keeps only their raw NLRI)."""
    return all(
        mp is None or Family.lookup(mp.afi, mp.safi) is not None
        for mp in (update.mp_reach, update.mp_unreach)
    )


@FUZZ
@given(s.updates, st.data())
def test_update_body_mutations(update: Update, data: st.DataObject) -> None:
    """Random inserts, deletes and overwrites inside an UPDATE body, header kept consistent."""
    body = bytearray(encode_update(update)[HEADER_LEN:])
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "xor"]))
        pos = data.draw(st.integers(0, len(body)))
        if op == "insert":
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif pos < len(body):
            if op == "delete":
                del body[pos : pos + data.draw(st.integers(1, 8))]
            elif op == "xor":
                body[pos] ^= 1 << data.draw(st.integers(0, 7))
            else:
                body[pos] = data.draw(st.integers(0, 255))
    for options in (None, DecodeOptions(ebgp=True), DecodeOptions(four_octet_as=False)):
        decoded = decode_checked(frame(MessageType.UPDATE, bytes(body)), options)
        if isinstance(decoded, Update) and _encodable(decoded):
            # whatever was accepted re-encodes to something that decodes to the same UPDATE (an unknown
            # optional transitive attribute passed on gains the Partial bit, RFC 4271 §5)
            four = options is None or options.four_octet_as
            again = decode_message(encode_update(decoded, four), options)
            assert again == _with_partial(decoded)


@FUZZ
@given(st.sampled_from([*list(MessageType), 0, 6, 255]), st.binary(max_size=200))
def test_random_bodies(kind: int, body: bytes) -> None:
    decode_checked(frame(kind, body))


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    decode_checked(data)
    decode_checked(MARKER + data)


@settings(FUZZ, max_examples=FUZZ.max_examples // 3)
@given(s.updates)
def test_shared_decoder_is_stable(update: Update) -> None:
    """A session decoder caches attribute sets; decoding the same bytes twice gives the same result."""
    decoder = MessageDecoder()
    wire = encode_update(update)
    assert decoder.decode(wire) == decoder.decode(wire) == update


@FAST
@given(s.end_of_rib_messages, s.decode_options)
def test_end_of_rib_decodes_under_any_options(wire: bytes, options: DecodeOptions) -> None:
    decoded = decode_message(wire, options)
    assert isinstance(decoded, Update)
    assert decoded.end_of_rib is not None
