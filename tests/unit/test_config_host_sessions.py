"""speaker.config_file: host sessions (L3VNI ``hostSession``, ``L3Passthrough``) and the Underlay's unicast side.

Both OpenPERouter API groups (nested, flat and list forms), the native schema, the veth addresses OpenPERouter's
ipam derives from the node index, the families OpenPERouter activates on underlay neighbors, and the errors.
"""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from evpn.codec.families import Family
from evpn.config import HostSession, Neighbor, PeerType, SpeakerConfig, Timers
from speaker.config_file import ConfigFileError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "configs" / "openperouter-host-sessions.yaml"
OLD = "openpe.openperouter.github.io/v1alpha1"
NEW = "network.openperouter.io/v1alpha1"
V4 = Family.IPV4_UNICAST
V6 = Family.IPV6_UNICAST
EVPN = Family.L2VPN_EVPN


def net4(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def net6(text: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(text)


def addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def underlay(api: str = NEW, neighbors: str = "[{asn: 64512, address: 192.168.11.2}]") -> str:
    """An Underlay (lines 1-7) and the separator (line 8): the next document starts on line 9."""
    vtep = "tunnelEndpoint: {cidrs: [100.65.0.0/24]}" if api == NEW else "evpn: {vtepcidr: 100.65.0.0/24}"
    return (
        f"apiVersion: {api}\nkind: Underlay\nmetadata: {{name: underlay}}\nspec:\n"
        f"  asn: 64514\n  {vtep}\n  neighbors: {neighbors}\n---\n"
    )


def l3vni(session: str, name: str = "red", vni: int = 100, api: str = NEW, key: str = "hostSession") -> str:
    """An L3VNI whose host session (``key``, from line 16 of its document) is ``session``."""
    body = textwrap.indent(textwrap.dedent(session).strip("\n"), "    ")
    return (
        f"apiVersion: {api}\nkind: L3VNI\nmetadata: {{name: {name}}}\nspec:\n"
        f"  vrf: {name}\n  vni: {vni}\n  {key}:\n{body}\n---\n"
    )


def passthrough(session: str, name: str = "pt", api: str = NEW, key: str = "hostSession") -> str:
    body = textwrap.indent(textwrap.dedent(session).strip("\n"), "    ")
    return (
        f"apiVersion: {api}\nkind: L3Passthrough\nmetadata: {{name: {name}}}\nspec:\n  {key}:\n{body}\n---\n"
    )


def load(text: str, node_index: int | None = 0) -> SpeakerConfig:
    return parse_config(text, "hs.yaml", node_index=node_index, warn=lambda _: None)


# --------------------------------------------------------------------------------------------------------------
# The example


@pytest.mark.parametrize(("node_index", "host"), [(0, 2), (1, 3), (5, 7)])
def test_example_host_sessions(node_index: int, host: int) -> None:
    config = load_config(EXAMPLE, node_index=node_index)
    red, blue = config.l3vnis
    assert red.host_session == HostSession(
        asn=64514,
        host_asn=64515,
        local_cidr_ipv4=net4("192.169.10.0/24"),
        local_cidr_ipv6=net6("fd00:169:10::/64"),
        node_index=node_index,
    )
    assert blue.host_session == HostSession(
        asn=64514, host_type=PeerType.EXTERNAL, local_cidr_ipv4=net4("192.169.11.0/24"), node_index=node_index
    )
    assert config.passthrough == HostSession(
        asn=64514, host_asn=64516, local_cidr_ipv4=net4("192.169.20.0/24"), node_index=node_index
    )
    # the router side is the same on every node, the host side is router side + N + 1
    assert red.host_session.router_side(net4("192.169.10.0/24")) == ipaddress.ip_interface("192.169.10.1/24")
    sessions = [(n.address, n.vrf, n.local_asn, n.families) for n in config.neighbors()]
    assert sessions == [
        (addr("192.168.11.2"), None, None, (V4, EVPN)),
        (addr(f"192.169.20.{host}"), None, 64514, (V4,)),
        (addr(f"192.169.10.{host}"), "red", 64514, (V4,)),
        (addr(f"fd00:169:10::{host}"), "red", 64514, (V6,)),
        (addr(f"192.169.11.{host}"), "blue", 64514, (V4,)),
    ]
    u = config.underlay
    assert (u.announce_vtep, u.nexthop_tracking, u.nexthop_resolve_via_default) == (True, True, True)
    assert u.neighbors[0].allowas_in == 3


# --------------------------------------------------------------------------------------------------------------
# Spellings of both API groups


RED_V4 = HostSession(asn=64514, host_asn=64515, local_cidr_ipv4=net4("192.169.10.0/24"))

FORMS = [
    (
        "old nested",
        l3vni("asn: 64514\nhostasn: 64515\nlocalcidr: {ipv4: 192.169.10.0/24}", api=OLD, key="hostsession"),
        RED_V4,
    ),
    (
        "old nested hosttype",
        l3vni(
            "asn: 64514\nhosttype: internal\nlocalcidr: {ipv6: 'fd00:10::/64'}", api=OLD, key="hostsession"
        ),
        HostSession(asn=64514, host_type=PeerType.INTERNAL, local_cidr_ipv6=net6("fd00:10::/64")),
    ),
    (
        "old flat (earliest L3VNI)",
        f"apiVersion: {OLD}\nkind: L3VNI\nmetadata: {{name: red}}\nspec:\n"
        "  vni: 100\n  asn: 64514\n  hostasn: 64515\n  localcidr: {ipv4: 192.169.10.0/24}\n",
        RED_V4,
    ),
    (
        "new intermediate lowercase",
        l3vni("asn: 64514\nhostasn: 64515\nlocalcidr: {ipv4: 192.169.10.0/24}", key="hostsession"),
        RED_V4,
    ),
    (
        "new hostASN localCIDR dual",
        l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.169.10.0/24, ipv6: 'fd00:10::/64'}"),
        HostSession(
            asn=64514,
            host_asn=64515,
            local_cidr_ipv4=net4("192.169.10.0/24"),
            local_cidr_ipv6=net6("fd00:10::/64"),
        ),
    ),
    (
        "new hostType External",
        l3vni("asn: 64514\nhostType: External\nlocalCIDR: {ipv4: 192.169.10.0/24}"),
        HostSession(asn=64514, host_type=PeerType.EXTERNAL, local_cidr_ipv4=net4("192.169.10.0/24")),
    ),
    (
        "new localCIDRs list, any order",
        l3vni("asn: 64514\nhostASN: 64515\nlocalCIDRs: ['fd00:10::/64', 192.169.10.0/24]"),
        HostSession(
            asn=64514,
            host_asn=64515,
            local_cidr_ipv4=net4("192.169.10.0/24"),
            local_cidr_ipv6=net6("fd00:10::/64"),
        ),
    ),
    (
        "host bits dropped as net.ParseCIDR does",
        l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.169.10.7/24}"),
        RED_V4,
    ),
]


@pytest.mark.parametrize(("resource", "session"), [c[1:] for c in FORMS], ids=[c[0] for c in FORMS])
def test_l3vni_host_session_forms(resource: str, session: HostSession) -> None:
    api = OLD if OLD in resource else NEW
    assert load(underlay(api) + resource).l3vnis[0].host_session == session


@pytest.mark.parametrize("api", [OLD, NEW])
def test_l3passthrough(api: str) -> None:
    key = "hostsession" if api == OLD else "hostSession"
    session = "asn: 64514\nhostasn: 64515\nlocalcidr: {ipv4: 192.169.20.0/24}"
    config = load(underlay(api) + passthrough(session, api=api, key=key), node_index=4)
    assert config.passthrough == HostSession(
        asn=64514, host_asn=64515, local_cidr_ipv4=net4("192.169.20.0/24"), node_index=4
    )
    assert config.l3vnis == ()
    host = config.neighbors()[1]
    assert (host.address, host.vrf, host.local_asn, host.asn) == (addr("192.169.20.6"), None, 64514, 64515)


def test_l3vni_without_host_session() -> None:
    text = (
        underlay()
        + f"apiVersion: {NEW}\nkind: L3VNI\nmetadata: {{name: red}}\nspec: {{vrf: red, vni: 100}}\n"
    )
    config = load(text)
    assert config.l3vnis[0].host_session is None
    assert config.passthrough is None


# --------------------------------------------------------------------------------------------------------------
# The veth addresses (OpenPERouter ipam: router side = first usable address, host side = router side + N + 1)

DERIVED = [
    ("192.169.10.0/24", 0, "192.169.10.1", "192.169.10.2"),
    ("192.169.10.0/24", 1, "192.169.10.1", "192.169.10.3"),
    ("192.169.10.0/24", 5, "192.169.10.1", "192.169.10.7"),
    # a network address whose last byte is not 0 is usable, and is the router side
    ("192.169.10.128/25", 0, "192.169.10.128", "192.169.10.129"),
    ("192.169.10.128/25", 1, "192.169.10.128", "192.169.10.130"),
    ("192.169.10.128/25", 5, "192.169.10.128", "192.169.10.134"),
    ("fd00:10::/64", 0, "fd00:10::1", "fd00:10::2"),
    ("fd00:10::/64", 1, "fd00:10::1", "fd00:10::3"),
    ("fd00:10::/64", 5, "fd00:10::1", "fd00:10::7"),
]


@pytest.mark.parametrize(("cidr", "node_index", "router", "host"), DERIVED)
def test_derived_veth_addresses(cidr: str, node_index: int, router: str, host: str) -> None:
    family = "ipv4" if "." in cidr else "ipv6"
    text = underlay() + l3vni(f"asn: 64514\nhostASN: 64515\nlocalCIDR: {{{family}: '{cidr}'}}")
    session = load(text, node_index=node_index).l3vnis[0].host_session
    assert session is not None
    network = ipaddress.ip_network(cidr)
    assert session.router_side(network).ip == addr(router)
    assert session.host_side(network).ip == addr(host)
    assert [n.address for n in session.neighbors("red")] == [addr(host)]


def test_the_last_address_of_a_small_cidr_is_usable() -> None:
    # /29: router .1, node 5 -> host .7 (the broadcast address, as go-cidr's Host allows); node 6 does not fit
    text = underlay() + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.169.10.0/29}")
    session = load(text, node_index=5).l3vnis[0].host_session
    assert session is not None and session.host_side(net4("192.169.10.0/29")).ip == addr("192.169.10.7")
    with pytest.raises(ConfigFileError, match=r"node index 6: the host side would be 192\.169\.10\.8"):
        load(text, node_index=6)


# --------------------------------------------------------------------------------------------------------------
# Underlay neighbors: the families and allowas-in of OpenPERouter's FRR template


def vni_docs(api: str = NEW) -> str:
    return f"apiVersion: {api}\nkind: L3VNI\nmetadata: {{name: red}}\nspec: {{vrf: red, vni: 100}}\n---\n"


FAMILIES = [
    ("IPv4 neighbor, VNIs", underlay() + vni_docs(), (V4, EVPN)),
    ("IPv4 neighbor, no VNI: no EVPN", underlay(), (V4,)),
    (
        "IPv6 neighbor, VNIs: IPv4 unicast too (the VTEP)",
        underlay(neighbors="[{asn: 64512, address: 'fd00::2'}]") + vni_docs(),
        (V4, V6, EVPN),
    ),
    (
        "dual-stack tunnel endpoint",
        underlay().replace("cidrs: [100.65.0.0/24]", "cidrs: [100.65.0.0/24, 'fd00:65::/64']") + vni_docs(),
        (V4, V6, EVPN),
    ),
    (
        "IPv6 passthrough",
        underlay() + passthrough("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv6: 'fd00:20::/64'}"),
        (V4, V6),
    ),
    ("old API, VNIs", underlay(OLD) + vni_docs(OLD), (V4, EVPN)),
    (
        "explicit addressFamilies are kept",
        underlay(neighbors="[{asn: 64512, address: 192.168.11.2, addressFamilies: [{type: evpn}]}]")
        + vni_docs(),
        (EVPN,),
    ),
]


@pytest.mark.parametrize(("text", "families"), [c[1:] for c in FAMILIES], ids=[c[0] for c in FAMILIES])
def test_underlay_neighbor_families(text: str, families: tuple[Family, ...]) -> None:
    neighbor = load(text).underlay.neighbors[0]
    assert neighbor.families == families
    assert (neighbor.allowas_in, neighbor.allowas_in_origin) == (3, False)


# --------------------------------------------------------------------------------------------------------------
# The native schema

NATIVE = textwrap.dedent("""\
    node_index: 1
    underlay:
      asn: 64514
      router_id_cidr: 10.0.0.0/24
      vtep: {cidrs: [100.65.0.0/24]}
      announce_vtep: false
      nexthop_tracking: false
      nexthop_resolve_via_default: false
      neighbors:
        - address: 192.168.11.2
          asn: 64512
          families: [ipv4-unicast, ipv6-unicast, l2vpn-evpn]
          allowas_in: 2
        - address: 192.168.12.2
          asn: 64513
          allowas_in_origin: true
    l3vnis:
      - name: red
        vni: 100
        host_session:
          asn: 64514
          host_asn: 64515
          local_cidr: {ipv4: 192.169.10.0/24, ipv6: "fd00:10::/64"}
          timers: {keepalive: 10, hold: 30}
      - name: blue
        vni: 200
        host_session:
          asn: 64514
          host_type: internal
          local_cidr: {ipv4: 192.169.11.0/24}
    passthrough:
      asn: 64514
      host_asn: 64516
      local_cidr: {ipv6: "fd00:20::/64"}
""")


def test_native_host_sessions_and_underlay_keys() -> None:
    config = parse_config(NATIVE, "leaf.yaml")
    u = config.underlay
    assert (u.router_id, u.vtep_ipv4) == (addr("10.0.0.2"), addr("100.65.0.1"))  # node_index: 1 from the file
    assert (u.announce_vtep, u.nexthop_tracking, u.nexthop_resolve_via_default) == (False, False, False)
    assert u.neighbors == (
        Neighbor(address=addr("192.168.11.2"), asn=64512, families=(V4, V6, EVPN), allowas_in=2),
        Neighbor(address=addr("192.168.12.2"), asn=64513, allowas_in_origin=True),
    )
    red, blue = config.l3vnis
    assert red.host_session == HostSession(
        asn=64514,
        host_asn=64515,
        local_cidr_ipv4=net4("192.169.10.0/24"),
        local_cidr_ipv6=net6("fd00:10::/64"),
        node_index=1,
        hold_time=30,
        keepalive=10,
    )
    assert blue.host_session == HostSession(
        asn=64514, host_type=PeerType.INTERNAL, local_cidr_ipv4=net4("192.169.11.0/24"), node_index=1
    )
    assert config.passthrough == HostSession(
        asn=64514, host_asn=64516, local_cidr_ipv6=net6("fd00:20::/64"), node_index=1
    )
    red_v4 = config.neighbors()[3]
    assert (red_v4.address, red_v4.vrf, red_v4.timers) == (
        addr("192.169.10.3"),
        "red",
        Timers(keepalive=10, hold_time=30),
    )


def test_native_command_line_node_index_wins() -> None:
    config = parse_config(NATIVE, "leaf.yaml", node_index=5)
    assert config.underlay.vtep_ipv4 == addr("100.65.0.5")
    assert config.passthrough is not None and config.passthrough.node_index == 5
    assert config.passthrough.host_side(net6("fd00:20::/64")).ip == addr("fd00:20::7")


def test_native_defaults_track_next_hops() -> None:
    text = "underlay: {asn: 1, router_id: 10.0.0.1, vtep: {ipv4: 100.65.0.1}, neighbors: [{address: 10.1.0.1, asn: 2}]}\n"
    config = parse_config(text, "min.yaml")
    u = config.underlay
    assert (u.announce_vtep, u.nexthop_tracking, u.nexthop_resolve_via_default) == (True, True, True)
    assert u.neighbors[0].families == (EVPN,)  # the native default stays l2vpn evpn only
    assert (u.neighbors[0].allowas_in, u.neighbors[0].allowas_in_origin) == (0, False)
    assert config.passthrough is None


# --------------------------------------------------------------------------------------------------------------
# Errors: file, line, object, field, reason

SESSION_OK = "asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.169.10.0/24}"

ERRORS: list[tuple[str, str, int | None, str]] = [
    (
        "missing asn",
        underlay() + l3vni("hostASN: 64515\nlocalCIDR: {ipv4: 192.169.10.0/24}"),
        0,
        'hs.yaml:16: L3VNI "red": spec.hostSession.asn: required field is missing',
    ),
    (
        "both hostASN and hostType",
        underlay() + l3vni(SESSION_OK + "\nhostType: External"),
        0,
        'hs.yaml:19: L3VNI "red": spec.hostSession.hostType: hostASN and hostType cannot be set together',
    ),
    (
        "neither hostASN nor hostType",
        underlay() + l3vni("asn: 64514\nlocalCIDR: {ipv4: 192.169.10.0/24}"),
        0,
        'hs.yaml:16: L3VNI "red": spec.hostSession.hostASN: either hostASN or hostType must be set',
    ),
    (
        "old API: neither hostasn nor hosttype",
        underlay(OLD) + l3vni("asn: 64514\nlocalcidr: {ipv4: 192.169.10.0/24}", api=OLD, key="hostsession"),
        0,
        'hs.yaml:16: L3VNI "red": spec.hostsession.hostasn: either hostasn or hosttype must be set',
    ),
    (
        "old flat form without hostasn",
        underlay(OLD)
        + f"apiVersion: {OLD}\nkind: L3VNI\nmetadata: {{name: red}}\nspec:\n"
        + "  vni: 100\n  asn: 64514\n  localcidr: {ipv4: 192.169.10.0/24}\n",
        0,
        'hs.yaml:13: L3VNI "red": spec.hostasn: required field is missing',
    ),
    (
        "flat and nested together",
        underlay(OLD)
        + f"apiVersion: {OLD}\nkind: L3VNI\nmetadata: {{name: red}}\nspec:\n  vni: 100\n  asn: 64514\n"
        + "  hostsession: {asn: 64514, hostasn: 64515, localcidr: {ipv4: 192.169.10.0/24}}\n",
        0,
        'hs.yaml:14: L3VNI "red": spec.asn: set together with hostsession: give the host session once',
    ),
    (
        "hostASN equal to asn",
        underlay() + l3vni("asn: 64514\nhostASN: 64514\nlocalCIDR: {ipv4: 192.169.10.0/24}"),
        0,
        'hs.yaml:17: L3VNI "red": spec.hostSession.hostASN: must be different from asn (64514)',
    ),
    (
        "bad hostType",
        underlay() + l3vni("asn: 64514\nhostType: ibgp\nlocalCIDR: {ipv4: 192.169.10.0/24}"),
        0,
        "hs.yaml:17: L3VNI \"red\": spec.hostSession.hostType: must be Internal or External, got 'ibgp'",
    ),
    (
        "missing localCIDR",
        underlay() + l3vni("asn: 64514\nhostASN: 64515"),
        0,
        'hs.yaml:16: L3VNI "red": spec.hostSession.localCIDR: required field is missing',
    ),
    (
        "empty localCIDR",
        underlay() + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {}"),
        0,
        'hs.yaml:18: L3VNI "red": spec.hostSession.localCIDR: at least one of ipv4 or ipv6 must be set',
    ),
    (
        "IPv6 CIDR under ipv4",
        underlay() + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 'fd00::/64'}"),
        0,
        'hs.yaml:18: L3VNI "red": spec.hostSession.localCIDR.ipv4: fd00::/64 is not an IPv4 CIDR',
    ),
    (
        "not a CIDR",
        underlay() + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.169.10.1}"),
        0,
        "hs.yaml:18: L3VNI \"red\": spec.hostSession.localCIDR.ipv4: '192.169.10.1' is not a CIDR "
        "(ADDRESS/PREFIX)",
    ),
    (
        "localCIDRs with two IPv4",
        underlay() + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDRs: [192.169.10.0/24, 192.169.11.0/24]"),
        0,
        'hs.yaml:18: L3VNI "red": spec.hostSession.localCIDRs[1]: at most one IPv4 CIDR is allowed',
    ),
    (
        "CIDR too small for the node index",
        underlay() + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.169.10.0/30}"),
        2,
        'hs.yaml:18: L3VNI "red": spec.hostSession.localCIDR.ipv4: node index 2: the host side would be '
        "192.169.10.4 (router side 192.169.10.1 + 3), outside 192.169.10.0/30",
    ),
    (
        "no node index",
        underlay() + l3vni(SESSION_OK),
        None,
        'hs.yaml:18: L3VNI "red": spec.hostSession.localCIDR.ipv4: the host side of the veth is router side '
        "+ N + 1 in 192.169.10.0/24: pass the node index (--node-index N)",
    ),
    (
        "overlapping L3VNI CIDRs",
        underlay()
        + l3vni(SESSION_OK)
        + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.169.10.128/25}", name="blue", vni=200),
        0,
        'hs.yaml:29: L3VNI "blue": spec.hostSession.localCIDR.ipv4: 192.169.10.128/25 overlaps '
        '192.169.10.0/24 of L3VNI "red"',
    ),
    (
        "passthrough overlapping an L3VNI",
        underlay()
        + l3vni(SESSION_OK)
        + passthrough("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.169.0.0/16}"),
        0,
        'hs.yaml:27: L3Passthrough "pt": spec.hostSession.localCIDR.ipv4: 192.169.0.0/16 overlaps '
        '192.169.10.0/24 of L3VNI "red"',
    ),
    (
        "host address of an underlay neighbor",
        underlay() + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.168.11.0/24}"),
        0,
        'hs.yaml:18: L3VNI "red": spec.hostSession.localCIDR.ipv4: the host side of the veth, 192.168.11.2 '
        "(node index 0), is an underlay neighbor's address",
    ),
    (
        "router address of an underlay neighbor",
        underlay(neighbors="[{asn: 64512, address: 192.168.11.1}]")
        + l3vni("asn: 64514\nhostASN: 64515\nlocalCIDR: {ipv4: 192.168.11.0/24}"),
        0,
        'hs.yaml:18: L3VNI "red": spec.hostSession.localCIDR.ipv4: the router side of the veth, 192.168.11.1 '
        "(node index 0), is an underlay neighbor's address",
    ),
    (
        "two L3Passthrough",
        underlay() + passthrough(SESSION_OK) + passthrough(SESSION_OK.replace("10.0", "20.0"), name="pt2"),
        0,
        "hs.yaml:18: L3Passthrough \"pt2\": a second L3Passthrough (the first, 'pt', is on line 9): "
        "OpenPERouter allows one",
    ),
    (
        "new API passthrough without hostSession",
        underlay()
        + f"apiVersion: {NEW}\nkind: L3Passthrough\nmetadata: {{name: pt}}\nspec: {{nodeSelector: {{}}}}\n",
        0,
        'hs.yaml:12: L3Passthrough "pt": spec.hostSession: required field is missing',
    ),
    (
        "unknown host session field",
        underlay() + l3vni(SESSION_OK + "\nholdTime: 30"),
        0,
        'hs.yaml:19: L3VNI "red": spec.hostSession.holdTime: unknown field (known: asn, hostASN, hostType, '
        "hostasn, hosttype, localCIDR, localCIDRs, localcidr)",
    ),
]


@pytest.mark.parametrize(
    ("text", "node_index", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_host_session_errors(text: str, node_index: int | None, message: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        load(text, node_index=node_index)
    assert str(err.value) == message
    assert err.value.field in message


NATIVE_BASE = "underlay:\n  asn: 65001\n  router_id: 10.0.0.1\n  vtep: {ipv4: 100.65.0.1}\n"  # lines 1-4
NATIVE_NEIGHBOR = "  neighbors: [{address: 192.168.11.2, asn: 64512}]\n"  # line 5


def native_l3(session: str) -> str:
    """An L3VNI "red" (line 6 on, after NATIVE_BASE + NATIVE_NEIGHBOR) whose host_session starts on line 9."""
    body = textwrap.indent(textwrap.dedent(session).strip("\n"), "      ")
    return f"l3vnis:\n  - name: red\n    vni: 100\n    host_session:\n{body}\n"


NATIVE_ERRORS: list[tuple[str, str, int | None, str]] = [
    (
        "missing asn",
        NATIVE_BASE + NATIVE_NEIGHBOR + native_l3("host_asn: 64515\nlocal_cidr: {ipv4: 192.169.10.0/24}"),
        0,
        'leaf.yaml:10: l3vni "red": l3vnis[0].host_session.asn: required field is missing',
    ),
    (
        "host_asn and host_type",
        NATIVE_BASE
        + NATIVE_NEIGHBOR
        + native_l3("asn: 1\nhost_asn: 2\nhost_type: external\nlocal_cidr: {ipv4: 192.169.10.0/24}"),
        0,
        'leaf.yaml:12: l3vni "red": l3vnis[0].host_session.host_type: host_asn and host_type cannot be set '
        "together",
    ),
    (
        "no node index",
        NATIVE_BASE + NATIVE_NEIGHBOR + native_l3("asn: 1\nhost_asn: 2\nlocal_cidr: {ipv4: 192.169.10.0/24}"),
        None,
        'leaf.yaml:12: l3vni "red": l3vnis[0].host_session.local_cidr.ipv4: the host side of the veth is '
        "router side + N + 1 in 192.169.10.0/24: pass the node index (--node-index N)",
    ),
    (
        "CIDR too small",
        NATIVE_BASE + NATIVE_NEIGHBOR + native_l3("asn: 1\nhost_asn: 2\nlocal_cidr: {ipv6: 'fd00::/126'}"),
        3,
        'leaf.yaml:12: l3vni "red": l3vnis[0].host_session.local_cidr.ipv6: node index 3: the host side would '
        "be fd00::5 (router side fd00::1 + 4), outside fd00::/126",
    ),
    (
        "host address of an underlay neighbor",
        NATIVE_BASE + NATIVE_NEIGHBOR + native_l3("asn: 1\nhost_asn: 2\nlocal_cidr: {ipv4: 192.168.11.0/24}"),
        0,
        'leaf.yaml:12: l3vni "red": l3vnis[0].host_session.local_cidr.ipv4: the host side of the veth, '
        "192.168.11.2 (node index 0), is an underlay neighbor's address",
    ),
    (
        "passthrough overlapping an L3VNI",
        NATIVE_BASE
        + NATIVE_NEIGHBOR
        + native_l3("asn: 1\nhost_asn: 2\nlocal_cidr: {ipv4: 192.169.10.0/24}")
        + "passthrough: {asn: 1, host_type: external, local_cidr: {ipv4: 192.169.10.0/28}}\n",
        0,
        'leaf.yaml:13: passthrough.local_cidr.ipv4: 192.169.10.0/28 overlaps 192.169.10.0/24 of l3vni "red"',
    ),
    (
        "allowas_in with allowas_in_origin",
        NATIVE_BASE + "  neighbors: [{address: 10.1.0.1, asn: 2, allowas_in: 3, allowas_in_origin: true}]\n",
        0,
        "leaf.yaml:5: underlay.neighbors[0].allowas_in_origin: set together with allowas_in: FRR's allowas-in "
        "is either a count or origin, keep one",
    ),
    (
        "allowas_in out of FRR's range",
        NATIVE_BASE + "  neighbors: [{address: 10.1.0.1, asn: 2, allowas_in: 11}]\n",
        0,
        "leaf.yaml:5: underlay.neighbors[0].allowas_in: must be 1..10, got 11",
    ),
    (
        "nexthop_tracking not a boolean",
        NATIVE_BASE + "  nexthop_tracking: yes please\n",
        0,
        "leaf.yaml:5: underlay.nexthop_tracking: must be true or false, got string 'yes please'",
    ),
    (
        "negative node_index",
        "node_index: -1\n" + NATIVE_BASE,
        None,
        "leaf.yaml:1: node_index: must be 0..2147483647, got -1",
    ),
]


@pytest.mark.parametrize(
    ("text", "node_index", "message"), [c[1:] for c in NATIVE_ERRORS], ids=[c[0] for c in NATIVE_ERRORS]
)
def test_native_host_session_errors(text: str, node_index: int | None, message: str) -> None:
    with pytest.raises(ConfigFileError) as err:
        parse_config(text, "leaf.yaml", node_index=node_index)
    assert str(err.value) == message
    assert err.value.field in message
