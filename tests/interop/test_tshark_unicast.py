"""tshark as an independent decoder of our IPv4 and IPv6 unicast UPDATEs.

UPDATEs are built with :class:`UpdatePacker` (4-octet AS session, 4096-byte messages): IPv4 prefixes of
lengths 0/8/24/25/32 in the classic NLRI field with a NEXT_HOP attribute and in the withdrawn routes field,
IPv6 prefixes of lengths 0/48/64/127/128 in MP_REACH_NLRI / MP_UNREACH_NLRI (AFI 2, SAFI 1) with a global
and an IPv4-mapped (``::ffff:a.b.c.d``) next hop, ORIGIN IGP and INCOMPLETE, a two-ASN AS_PATH with a
4-byte ASN, MED, LOCAL_PREF and COMMUNITIES, and bulk runs the packer splits over several UPDATEs. They are
written into a pcap and decoded by tshark; every field tshark shows is compared with what we encoded, and
``evpn-speaker decode --all --json --pcap`` must read the same capture as tshark does.

tshark 4.0 quirks this relies on (checked on 4.0.17):

- Prefixes are dict *keys* (``"10.0.0.0/8": {"bgp.prefix_length": ..., "bgp.nlri_prefix": ...}``), so
  prefixes are read from the fields inside each entry and put in wire order by their ``_raw`` offsets.
- tshark guesses ADD-PATH (RFC 7911) per NLRI block: a block where a plain reading gives a 0-length prefix
  that is not the block's only entry is read as path identifiers if that reading fits (``::/0`` followed by
  ``2001:db8::/48`` shows as ``b800::/13 PathId 3153921``). Our encoding is right; to keep tshark's view
  unambiguous each default route goes in an UPDATE of its own, and no test accepts a ``bgp.nlri_path_id``.
- AS number width is auto-detected unless set: ``-o "bgp.asn_len:4 octet"`` states what the session
  negotiated (the capture has no OPENs).
- Regular communities are ``community`` {``community_as``, ``community_value``}, well-known ones (NO_EXPORT,
  ...) a separate ``community_wellknown`` list: wire order comes from the ``_raw`` offsets.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from evpn.codec.attributes import AsPath, Origin, PathAttributes
from evpn.codec.evpn_nlri import IPAddress, IPNetwork
from evpn.codec.messages import HEADER_LEN, MAX_MESSAGE
from evpn.codec.packer import UpdatePacker
from speaker.cli import main
from tests.lab import in_ci
from tests.lab.capture import (
    as_list,
    find_values,
    path_attribute,
    path_attributes,
    raw_bytes,
    tshark_available,
    tshark_bgp_json,
    write_bgp_pcap,
)

pytestmark = pytest.mark.interop

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
N4 = ipaddress.IPv4Network
N6 = ipaddress.IPv6Network
Action = Literal["announce", "withdraw"]

PA = "bgp.update.path_attribute."
REACH = PA + "mp_reach_nlri"
UNREACH = PA + "mp_unreach_nlri"
TSHARK_ARGS = ("-o", "bgp.asn_len:4 octet")

NO_EXPORT = 0xFFFFFF01  # RFC 1997
COMMUNITIES = ((65000 << 16) | 100, (65001 << 16) | 4200, NO_EXPORT)
PATH = AsPath.sequence(65000, 4200000001)
FULL = PathAttributes(origin=Origin.IGP, as_path=PATH, med=50, local_pref=200, communities=COMMUNITIES)
EXTREMES = PathAttributes(origin=Origin.IGP, as_path=PATH, med=0xFFFFFFFF, local_pref=0)
INCOMPLETE = PathAttributes(origin=Origin.INCOMPLETE, as_path=PATH)

NH4 = V4("192.0.2.1")
NH6 = V6("2001:db8::1")
NH6_MAPPED = V6("::ffff:192.0.2.1")
NH6_MAPPED2 = V6("::ffff:198.51.100.7")

V4_ROUTES = (N4("10.0.0.0/8"), N4("192.0.2.0/24"), N4("198.51.100.128/25"), N4("203.0.113.7/32"))
V6_ROUTES = (N6("2001:db8::/48"), N6("2001:db8:1::/64"), N6("2001:db8::2/127"), N6("2001:db8::1/128"))
V6_MAPPED_ROUTES = (N6("2001:db8:ff::/64"),)
DEFAULT4, DEFAULT6 = N4("0.0.0.0/0"), N6("::/0")
BULK4 = tuple(N4((int(V4("10.64.0.0")) + i, 32)) for i in range(2000))  # 10,000 bytes of NLRI
BULK6 = tuple(N6((int(V6("2001:db8:b::")) + i, 128)) for i in range(600))  # 10,200 bytes of NLRI

FLAGS = {1: 0x40, 2: 0x40, 3: 0x40, 4: 0x80, 5: 0x40, 8: 0xC0, 14: 0x80, 15: 0x80}  # RFC 4271 §5, 4760
EXTENDED_LENGTH = 0x10


@dataclass(frozen=True, slots=True)
class Sent:
    """One packer call and the UPDATEs it gave."""

    action: Action
    routes: tuple[IPNetwork, ...]
    attributes: PathAttributes | None
    next_hop: IPAddress | None
    messages: tuple[bytes, ...]


PACKER = UpdatePacker(max_size=MAX_MESSAGE, four_octet_as=True)


def _announce(attributes: PathAttributes, routes: tuple[IPNetwork, ...], next_hop: IPAddress) -> Sent:
    return Sent(
        "announce", routes, attributes, next_hop, tuple(PACKER.announce(attributes, routes, next_hop))
    )


def _withdraw(routes: tuple[IPNetwork, ...]) -> Sent:
    return Sent("withdraw", routes, None, None, tuple(PACKER.withdraw(routes)))


SENT = (
    _announce(FULL, V4_ROUTES, NH4),
    _announce(INCOMPLETE, (DEFAULT4,), V4("198.51.100.1")),
    _announce(FULL, V6_ROUTES, NH6),
    _announce(INCOMPLETE, (DEFAULT6,), NH6_MAPPED),
    _announce(EXTREMES, V6_MAPPED_ROUTES, NH6_MAPPED2),
    _withdraw(V4_ROUTES + V6_ROUTES + V6_MAPPED_ROUTES),  # both families in one call: one UPDATE each
    _withdraw((DEFAULT4, DEFAULT6)),
    _announce(FULL, BULK4, NH4),
    _announce(FULL, BULK6, NH6),
    _withdraw(BULK4 + BULK6),
)
MESSAGES = [(sent, message) for sent in SENT for message in sent.messages]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not tshark_available():
        if in_ci():
            pytest.fail("tshark is not installed", pytrace=False)
        pytest.skip("tshark is not installed")
    path = tmp_path_factory.mktemp("tshark") / "unicast.pcap"
    write_bgp_pcap(path, [message for _, message in MESSAGES])  # one message per TCP segment
    return path


@pytest.fixture(scope="module")
def decoded(capture: Path) -> list[dict[str, Any]]:
    """tshark's ``bgp`` dict of every message, in the order of ``MESSAGES``."""
    out: list[dict[str, Any]] = []
    for packet in tshark_bgp_json(capture, raw=True, extra_args=TSHARK_ARGS):
        out += as_list(packet["_source"]["layers"].get("bgp"))
    assert len(out) == len(MESSAGES)
    return out


# -------------------------------------------------------------------------------------------------------
# tshark's view, from tshark fields only


def _prefixes(container: dict[str, Any] | None, address_field: str, version: int) -> list[IPNetwork]:
    """The prefixes of an NLRI block (a dict keyed by tshark's prefix text), in wire order."""
    if container is None:
        return []
    found: list[tuple[int, IPNetwork]] = []
    for key, value in container.items():
        if key.endswith("_raw"):
            continue
        for entry in as_list(value):
            assert "bgp.nlri_path_id" not in entry, f"tshark read {key!r} as ADD-PATH"
            length = int(entry["bgp.prefix_length"])
            network = ipaddress.ip_network(f"{entry[address_field]}/{length}")
            assert network.version == version
            found.append((int(entry["bgp.prefix_length_raw"][1]), network))
    return [network for _, network in sorted(found, key=lambda pair: pair[0])]


def _family(version: int) -> str:
    return "ipv4 unicast" if version == 4 else "ipv6 unicast"


def _reach_next_hop(reach: dict[str, Any]) -> IPAddress:
    hops = find_values(reach, REACH + ".next_hop.ipv6") + find_values(reach, REACH + ".next_hop.ipv4")
    assert len(hops) == 1
    return ipaddress.ip_address(hops[0])


def tshark_routes(bgp: dict[str, Any]) -> list[dict[str, Any]]:
    """Every unicast route of one UPDATE: action, family, prefix and (announced) next hop."""
    out: list[dict[str, Any]] = []
    for prefix in _prefixes(bgp.get("bgp.update.withdrawn_routes"), "bgp.withdrawn_prefix", 4):
        out.append({"action": "withdraw", "family": _family(4), "prefix": prefix})
    unreach = path_attribute(bgp, 15)
    if unreach is not None:
        for prefix in _prefixes(unreach.get(UNREACH), "bgp.mp_unreach_nlri_ipv6_prefix", 6):
            out.append({"action": "withdraw", "family": _family(6), "prefix": prefix})
    classic = _prefixes(bgp.get("bgp.update.nlri"), "bgp.nlri_prefix", 4)
    if classic:
        attr = path_attribute(bgp, 3)
        assert attr is not None
        hop = ipaddress.ip_address(attr[PA + "next_hop"])
        out += [{"action": "announce", "family": _family(4), "prefix": p, "next_hop": hop} for p in classic]
    reach = path_attribute(bgp, 14)
    if reach is not None:
        hop = _reach_next_hop(reach)
        for prefix in _prefixes(reach.get(REACH), "bgp.mp_reach_nlri_ipv6_prefix", 6):
            out.append({"action": "announce", "family": _family(6), "prefix": prefix, "next_hop": hop})
    return out


def _packer_order(routes: tuple[IPNetwork, ...]) -> list[IPNetwork]:
    """The order the packer sends routes in: grouped by family in order of first appearance."""
    first = routes[0].version if routes else 4
    return sorted(routes, key=lambda route: route.version != first)


def expected_routes(sent: Sent) -> list[dict[str, Any]]:
    """Our side of :func:`tshark_routes` for every UPDATE of one packer call, in wire order."""
    return [
        {"action": sent.action, "family": _family(route.version), "prefix": route}
        | ({"next_hop": sent.next_hop} if sent.action == "announce" else {})
        for route in _packer_order(sent.routes)
    ]


def _by_call(decoded: list[dict[str, Any]]) -> list[tuple[Sent, list[tuple[bytes, dict[str, Any]]]]]:
    """Each packer call with its messages and tshark's decode of each."""
    out: list[tuple[Sent, list[tuple[bytes, dict[str, Any]]]]] = []
    position = 0
    for sent in SENT:
        count = len(sent.messages)
        out.append((sent, list(zip(sent.messages, decoded[position : position + count], strict=True))))
        position += count
    return out


def _prefix_size(prefix: IPNetwork) -> int:
    return 1 + (prefix.prefixlen + 7) // 8


def _attribute_size(attr: dict[str, Any]) -> int:
    """Flags, type, length (1 or 2 bytes by the extended-length flag tshark shows) and value."""
    flags = int(attr[PA + "flags"], 16)
    return 2 + (2 if flags & EXTENDED_LENGTH else 1) + int(attr[PA + "length"])


def _communities(attr: dict[str, Any]) -> list[int]:
    """COMMUNITIES as tshark decodes them (regular ``AS:value`` and well-known), in wire order."""
    node = attr[PA + "communities"]
    found: list[tuple[int, int]] = []
    regular = as_list(node.get(PA + "community"))
    regular_raw = find_values(node, PA + "community_raw")
    assert len(regular) == len(regular_raw)
    for community, raw in zip(regular, regular_raw, strict=True):
        value = (int(community[PA + "community_as"]) << 16) | int(community[PA + "community_value"])
        found.append((int(raw[1]), value))
    known = as_list(node.get(PA + "community_wellknown"))
    known_raw = find_values(node, PA + "community_wellknown_raw")
    assert len(known) == len(known_raw)
    found += [(int(raw[1]), int(value, 16)) for value, raw in zip(known, known_raw, strict=True)]
    return [value for _, value in sorted(found)]


def _expected_type_codes(sent: Sent, version: int) -> list[int]:
    if sent.action == "withdraw":
        return [] if version == 4 else [15]
    attributes = sent.attributes
    assert attributes is not None
    codes = [1, 2, 3] if version == 4 else [14, 1, 2]  # MP_REACH first (RFC 7606 §5.1)
    codes += [4] if attributes.med is not None else []
    codes += [5] if attributes.local_pref is not None else []
    return codes + ([8] if attributes.communities else [])


def _message_version(bgp: dict[str, Any]) -> int:
    versions = {route["prefix"].version for route in tshark_routes(bgp)}
    assert len(versions) == 1, "an UPDATE carries one family"
    return versions.pop()


def _require_tshark() -> None:
    if not tshark_available():
        if in_ci():
            pytest.fail("tshark is not installed", pytrace=False)
        pytest.skip("tshark is not installed")


# -------------------------------------------------------------------------------------------------------
# tests


def test_tshark_sees_every_route_as_encoded(decoded: list[dict[str, Any]]) -> None:
    """Per packer call: every prefix announced or withdrawn, its family and next hop, in wire order."""
    for sent, pairs in _by_call(decoded):
        shown = [route for _, bgp in pairs for route in tshark_routes(bgp)]
        assert shown == expected_routes(sent)


def test_tshark_message_framing(decoded: list[dict[str, Any]]) -> None:
    """Message length, withdrawn routes length, path attribute length and NLRI length all add up."""
    for (_, message), bgp in zip(MESSAGES, decoded, strict=True):
        assert bgp["bgp.type"] == "2"
        assert int(bgp["bgp.length"]) == len(message) <= MAX_MESSAGE
        withdrawn = _prefixes(bgp.get("bgp.update.withdrawn_routes"), "bgp.withdrawn_prefix", 4)
        withdrawn_len = int(bgp["bgp.update.withdrawn_routes.length"])
        assert withdrawn_len == sum(_prefix_size(p) for p in withdrawn)
        attrs_len = int(bgp["bgp.update.path_attributes.length"])
        assert attrs_len == sum(_attribute_size(a) for a in path_attributes(bgp))
        nlri = _prefixes(bgp.get("bgp.update.nlri"), "bgp.nlri_prefix", 4)
        assert len(message) - HEADER_LEN - 4 - withdrawn_len - attrs_len == sum(_prefix_size(p) for p in nlri)


def test_tshark_path_attributes(decoded: list[dict[str, Any]]) -> None:
    """Attribute order and flags, ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES."""
    for (sent, _), bgp in zip(MESSAGES, decoded, strict=True):
        version = _message_version(bgp)
        attrs = path_attributes(bgp)
        assert [int(a[PA + "type_code"]) for a in attrs] == _expected_type_codes(sent, version)
        for attr in attrs:
            flags = int(attr[PA + "flags"], 16)
            extended = EXTENDED_LENGTH if int(attr[PA + "length"]) > 255 else 0
            assert flags == FLAGS[int(attr[PA + "type_code"])] | extended
        if sent.action == "withdraw":
            continue
        attributes = sent.attributes
        assert attributes is not None
        origin = path_attribute(bgp, 1)
        assert origin is not None and int(origin[PA + "origin"]) == attributes.origin
        as_path = path_attribute(bgp, 2)
        assert as_path is not None
        segments = as_list(as_path[PA + "as_path_segment"])
        assert [(s[PA + "as_path_segment.type"], s[PA + "as_path_segment.length"]) for s in segments] == [
            ("2", "2")
        ]
        assert [int(a) for a in find_values(as_path, PA + "as_path_segment.as4")] == [65000, 4200000001]
        assert int(as_path[PA + "length"]) == 2 + 2 * 4
        next_hop = path_attribute(bgp, 3)
        if version == 4:
            assert next_hop is not None and V4(next_hop[PA + "next_hop"]) == sent.next_hop
        med = path_attribute(bgp, 4)
        if attributes.med is not None:
            assert med is not None and int(med[PA + "multi_exit_disc"]) == attributes.med
        local_pref = path_attribute(bgp, 5)
        if attributes.local_pref is not None:
            assert local_pref is not None and int(local_pref[PA + "local_pref"]) == attributes.local_pref
        communities = path_attribute(bgp, 8)
        if attributes.communities:
            assert communities is not None and _communities(communities) == list(attributes.communities)


def test_tshark_mp_reach_and_unreach(decoded: list[dict[str, Any]]) -> None:
    """AFI 2 / SAFI 1, a 16-byte next hop (global or IPv4-mapped), no SNPA; IPv4 never in MP attributes."""
    for (sent, _), bgp in zip(MESSAGES, decoded, strict=True):
        reach, unreach = path_attribute(bgp, 14), path_attribute(bgp, 15)
        if _message_version(bgp) == 4:
            assert reach is None and unreach is None
            continue
        if sent.action == "withdraw":
            assert unreach is not None and reach is None
            assert (unreach[UNREACH + ".afi"], unreach[UNREACH + ".safi"]) == ("2", "1")
            continue
        assert reach is not None and unreach is None
        assert (reach[REACH + ".afi"], reach[REACH + ".safi"]) == ("2", "1")
        assert sent.next_hop is not None and sent.next_hop.version == 6
        assert raw_bytes(reach, REACH + ".next_hop") == bytes((16,)) + sent.next_hop.packed
        assert _reach_next_hop(reach) == sent.next_hop
        assert reach[REACH + ".nbr_snpa"] == "0"


def test_tshark_sees_bulk_prefixes_once_each_over_full_updates(decoded: list[dict[str, Any]]) -> None:
    """2000 /32s and 600 /128s, announced then withdrawn: several UPDATEs per family, each filled up,
    and every prefix seen by tshark exactly once per action."""
    calls = [(sent, pairs) for sent, pairs in _by_call(decoded) if len(sent.routes) >= len(BULK6)]
    assert [(sent.action, len(sent.routes)) for sent, _ in calls] == [
        ("announce", len(BULK4)),
        ("announce", len(BULK6)),
        ("withdraw", len(BULK4) + len(BULK6)),
    ]
    for sent, pairs in calls:
        for family, one_more in ((4, _prefix_size(BULK4[0])), (6, _prefix_size(BULK6[0]))):
            sent_routes = {route for route in sent.routes if route.version == family}
            if not sent_routes:
                continue
            messages = [bgp for _, bgp in pairs if _message_version(bgp) == family]
            assert len(messages) >= 3
            counts = Counter(route["prefix"] for bgp in messages for route in tshark_routes(bgp))
            assert set(counts) == sent_routes
            assert set(counts.values()) == {1}
            for bgp in messages[:-1]:  # the packer moved on only when the next prefix did not fit
                assert int(bgp["bgp.length"]) + one_more > MAX_MESSAGE
            if family == 6:  # a 4 KB MP attribute needs the extended-length flag
                mp = [
                    a for bgp in messages for a in path_attributes(bgp) if a[PA + "type_code"] in ("14", "15")
                ]
                assert all(int(a[PA + "flags"], 16) & EXTENDED_LENGTH for a in mp)


def test_tshark_reports_nothing_malformed(decoded: list[dict[str, Any]]) -> None:
    assert find_values(decoded, "_ws.expert") == []
    assert find_values(decoded, "_ws.malformed") == []
    assert find_values(decoded, "bgp.nlri_path_id") == []


def _normalised(route: dict[str, Any]) -> dict[str, Any]:
    """Prefix and next hop as ipaddress objects (``::ffff:192.0.2.1`` prints as ``::ffff:c000:201``
    before Python 3.13)."""
    out = dict(route) | {"prefix": ipaddress.ip_network(str(route["prefix"]))}
    if "next_hop" in out:
        out["next_hop"] = ipaddress.ip_address(str(out["next_hop"]))
    return out


def test_our_decoder_reads_the_capture_as_tshark_does(
    decoded: list[dict[str, Any]], capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``decode --all`` prints action, family, prefix and next hop of unicast routes (no path attributes)."""
    assert main(["decode", "--all", "--json", "--pcap", str(capture)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    ours = [_normalised(json.loads(line)) for line in captured.out.splitlines()]
    assert ours == [route for bgp in decoded for route in tshark_routes(bgp)]


def test_our_decoder_shows_unicast_only_with_all(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "--json", "--pcap", str(capture)]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_mixed_families_with_an_ipv4_next_hop(tmp_path: Path) -> None:
    """One call with IPv4 and IPv6 prefixes and an IPv4 next hop: the IPv6 UPDATE carries it IPv4-mapped,
    16 bytes (RFC 2545 §3)."""
    _require_tshark()
    messages = PACKER.announce(FULL, (V4_ROUTES[0], V6_ROUTES[0]), NH4)
    path = tmp_path / "mixed.pcap"
    write_bgp_pcap(path, messages)
    shown = [bgp for p in tshark_bgp_json(path, raw=True) for bgp in as_list(p["_source"]["layers"]["bgp"])]
    assert find_values(shown, "_ws.malformed") == []
    reach = next(a for bgp in shown if (a := path_attribute(bgp, 14)) is not None)
    assert raw_bytes(reach, REACH + ".next_hop")[0] == 16
    assert ipaddress.IPv6Address(raw_bytes(reach, REACH + ".next_hop")[1:17]).ipv4_mapped == NH4
