"""The exabgp engine without a subprocess: configuration, environment, launcher command syntax, route tokens."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from evpn.codec.attributes import AsPath, Origin, PathAttributes
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.extcommunity import Encapsulation, RouterMac, TunnelType
from evpn.codec.families import Family
from evpn.codec.messages import encode_route
from evpn.codec.pmsi import PmsiTunnel
from evpn.config import GracefulRestartConfig, Neighbor, PeerType, Timers, Underlay
from evpn.esi import Esi
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from speaker.exabgp_engine import ExaBgpEngine, exabgp_environment, generate_config, route_token
from speaker.exabgp_launcher import COMMANDS, CommandError, format_command, parse_command, split_attributes

RD = RouteDistinguisher.ipv4("10.0.0.1", 110)


def _underlay(*neighbors: Neighbor) -> Underlay:
    return Underlay(asn=64512, router_id=ipaddress.IPv4Address("10.0.0.1"), neighbors=neighbors)


def _type2(label2: int | None = 100, esi: Esi | None = None) -> MacIpRoute:
    route = MacIpRoute(
        RD,
        MacAddress.from_text("02:00:00:00:00:01"),
        ipaddress.ip_address("192.0.2.1"),
        label1=110,
        label2=label2,
    )
    return dataclasses.replace(route, esi=esi) if esi is not None else route


def _attributes() -> PathAttributes:
    return PathAttributes(
        origin=Origin.IGP,
        as_path=AsPath.sequence(64512),
        ext_communities=(
            RouteTarget.from_text("64512:110"),
            Encapsulation(TunnelType.VXLAN),
            RouterMac(MacAddress.from_text("02:00:00:00:00:aa")),
        ),
        pmsi=PmsiTunnel.ingress_replication(110, ipaddress.ip_address("10.255.0.1")),
    )


# -- configuration ------------------------------------------------------------------------------------------
def test_config_has_neighbor_timers_md5_gr_and_api() -> None:
    nb = Neighbor(
        ipaddress.ip_address("192.0.2.2"),
        asn=64513,
        port=1790,
        password='se"cret',
        timers=Timers(keepalive=1, hold_time=3),
        description="tor-1",
        ebgp_multihop=2,
    )
    text = generate_config(
        _underlay(nb),
        relay_command="/usr/bin/python3 -m speaker.exabgp_launcher --relay /tmp/x/api.sock",
        local_address=ipaddress.ip_address("192.0.2.1"),
        graceful_restart=GracefulRestartConfig(restart_time=77),
    )
    assert "process evpn-speaker {" in text
    assert "run /usr/bin/python3 -m speaker.exabgp_launcher --relay /tmp/x/api.sock;" in text
    for line in (
        "neighbor 192.0.2.2 {",
        "router-id 10.0.0.1;",
        "local-as 64512;",
        "peer-as 64513;",
        "hold-time 3;",
        "passive false;",
        "connect 1790;",
        "local-address 192.0.2.1;",
        'md5-password "se\\"cret";',
        'description "tor-1";',
        "outgoing-ttl 2;",
        "graceful-restart 77;",
        "asn4 enable;",
        "l2vpn evpn;",
        "manual-eor true;",
        "adj-rib-out true;",
        "processes [ evpn-speaker ];",
        "receive { packets; open; update; notification; keepalive; refresh; }",
    ):
        assert line in text, line
    assert text.count("{") == text.count("}")


def test_config_passive_peer_type_families_and_no_gr() -> None:
    internal = Neighbor(ipaddress.ip_address("fd00::2"), peer_type=PeerType.INTERNAL, passive=True)
    external = Neighbor(
        ipaddress.ip_address("192.0.2.3"),
        peer_type=PeerType.EXTERNAL,
        families=(Family.L2VPN_EVPN, Family.IPV4_UNICAST),
    )
    text = generate_config(
        _underlay(internal, external),
        relay_command="relay",
        local_address=ipaddress.ip_address("192.0.2.1"),
        graceful_restart=GracefulRestartConfig(enabled=False),
    )
    first, second = text.split("neighbor fd00::2 {")[1].split("neighbor 192.0.2.3 {")
    assert "peer-as 64512;" in first and "passive true;" in first
    assert "local-address" not in first  # an IPv4 source does not fit an IPv6 neighbor
    assert "peer-as auto;" in second and "ipv4 unicast;" in second and "local-address 192.0.2.1;" in second
    assert "graceful-restart" not in text
    assert "md5-password" not in text


def test_environment_for_exabgp5() -> None:
    env = exabgp_environment(
        listen=True, listen_address=ipaddress.ip_address("127.0.0.1"), listen_port=1179, project_root="/src"
    )
    assert env["exabgp.api.ack"] == "false"
    assert env["exabgp.tcp.port"] == "1179" and env["exabgp.tcp.bind"] == "127.0.0.1"
    assert env["exabgp.daemon.daemonize"] == "false" and env["exabgp.log.destination"] == "stdout"
    assert env["exabgp.daemon.user"]
    assert env["PYTHONPATH"].split(":")[0] == "/src"
    quiet = exabgp_environment(listen=False, listen_address=None, listen_port=179, project_root="/src")
    assert quiet["exabgp.tcp.bind"] == ""


def test_engine_mirrors_native_constructor() -> None:
    nb = Neighbor(ipaddress.ip_address("127.0.0.2"), asn=64512)
    engine = ExaBgpEngine(
        _underlay(nb),
        listen_address="127.0.0.1",
        listen_port=0,
        listen=True,
        local_address=None,
        graceful_restart=GracefulRestartConfig(),
        restarting=False,
        forwarding_preserved=False,
        initial_backoff=0.1,
    )
    [state] = engine.peer_states()
    assert state.state == "Idle" and state.peer == nb.address and state.messages_in == 0
    assert engine.local_address == ipaddress.ip_address("127.0.0.1")


async def test_ipv4_unicast_needs_an_ipv4_next_hop() -> None:
    engine = ExaBgpEngine(_underlay(Neighbor(ipaddress.ip_address("127.0.0.2"), asn=64512)))
    with pytest.raises(ValueError, match="IPv4 next hop"):
        await engine.advertise(
            None, _attributes(), ipaddress.ip_address("fd00::1"), [ipaddress.ip_network("10.0.0.0/24")]
        )


def test_config_local_as_and_looked_up_local_addresses() -> None:
    host = Neighbor(
        ipaddress.ip_address("192.168.10.3"),
        asn=64600,
        families=(Family.IPV4_UNICAST,),
        vrf="red",
        local_asn=64700,
    )
    v6 = Neighbor(ipaddress.ip_address("fd00::3"), peer_type=PeerType.INTERNAL, local_asn=64701)
    other = Neighbor(ipaddress.ip_address("192.0.2.9"), asn=64513)
    text = generate_config(
        _underlay(host, v6, other),
        relay_command="relay",
        local_address=None,
        graceful_restart=GracefulRestartConfig(),
        neighbors=[host, v6],
        local_addresses={host.address: ipaddress.ip_address("192.168.10.1")},
    )
    assert "192.0.2.9" not in text  # only the neighbors given
    first, second = text.split("neighbor 192.168.10.3 {")[1].split("neighbor fd00::3 {")
    assert "local-as 64700;" in first and "peer-as 64600;" in first
    assert "local-address 192.168.10.1;" in first and "ipv4 unicast;" in first
    assert "local-as 64701;" in second and "peer-as 64701;" in second  # internal: our ASN on that session
    assert "local-address" not in second  # not looked up: ExaBGP's auto local address


# -- route tokens ---------------------------------------------------------------------------------------------
def test_route_token_is_the_route_key() -> None:
    assert route_token(_type2(100)) == route_token(_type2(None))  # labels are not part of the key
    assert route_token(_type2(100)) == route_token(_type2(100, Esi(bytes(range(10)))))  # nor the ESI
    other = dataclasses.replace(_type2(100), mac=MacAddress.from_text("02:00:00:00:00:02"))
    assert route_token(other) != route_token(_type2(100))
    assert route_token(_type2()).isalnum() and "=" not in route_token(_type2())


# -- launcher commands ----------------------------------------------------------------------------------------
def test_announce_command_round_trip_keeps_every_byte() -> None:
    route = _type2(100, Esi(bytes(range(10))))
    nlri = encode_route(route)
    attrs = _attributes().encode()
    line = format_command(
        "evpn-announce", "192.0.2.2", next_hop="10.255.0.1", attributes=attrs, routes=[("k1", nlri)]
    )
    cmd = parse_command(line)
    assert cmd.action == "announce" and cmd.peers == ("192.0.2.2",)
    assert cmd.next_hop == ipaddress.ip_address("10.255.0.1")
    assert cmd.routes == (("k1", nlri),)
    rebuilt = b"".join(
        bytes((flags | (0x10 if len(v) > 255 else 0), code))
        + (len(v).to_bytes(2, "big") if len(v) > 255 else bytes((len(v),)))
        + v
        for flags, code, v in cmd.attributes
    )
    assert rebuilt == attrs
    codes = [code for _, code, _ in cmd.attributes]
    assert 22 in codes and 16 in codes  # PMSI and extended communities travel as they are


def test_withdraw_and_cease_commands() -> None:
    nlri = encode_route(_type2())
    cmd = parse_command(format_command("evpn-withdraw", "fd00::2", routes=[("a", nlri), ("b", nlri)]))
    assert cmd.action == "withdraw" and cmd.peers == ("fd00::2",) and len(cmd.routes) == 2
    assert parse_command("neighbor 192.0.2.2 evpn-cease").action == "cease"
    assert parse_command("evpn-withdraw k=" + nlri.hex()).peers == ()


def test_empty_attributes_are_a_dash() -> None:
    line = format_command(
        "evpn-announce", "192.0.2.2", next_hop="10.0.0.1", routes=[("k", encode_route(_type2()))]
    )
    assert " - " in line
    assert parse_command(line).attributes == ()


def test_unicast_commands_round_trip() -> None:
    v4 = PathAttributes(
        origin=Origin.EGP, as_path=AsPath.sequence(64512), next_hop=ipaddress.IPv4Address("192.0.2.1"), med=5
    )
    prefixes = [encode_route(ipaddress.ip_network(p)) for p in ("10.0.0.0/8", "192.0.2.128/25", "0.0.0.0/0")]
    line = format_command(
        "ipv4-announce",
        "192.0.2.2",
        next_hop="192.0.2.1",
        attributes=v4.encode(),
        routes=[("", n) for n in prefixes],
    )
    assert line.split()[2:4] == ["ipv4-announce", "192.0.2.1"]
    cmd = parse_command(line)
    assert cmd.action == "announce" and cmd.family == "ipv4"
    assert [n for _, n in cmd.routes] == prefixes and cmd.routes[2][1] == b"\x00"
    assert (0x40, 3, bytes([192, 0, 2, 1])) in cmd.attributes
    assert (0x80, 4, (5).to_bytes(4, "big")) in cmd.attributes
    v6 = encode_route(ipaddress.ip_network("2001:db8::/32"))
    line6 = format_command(
        "ipv6-announce",
        "fd00::2",
        next_hop="fd00::1",
        attributes=PathAttributes().encode(),
        routes=[("", v6)],
    )
    cmd6 = parse_command(line6)
    assert cmd6.family == "ipv6" and cmd6.routes == (("", v6),)
    assert cmd6.next_hop == ipaddress.ip_address("fd00::1")
    gone = parse_command(format_command("ipv6-withdraw", "fd00::2", routes=[("", v6)]))
    assert gone.action == "withdraw" and gone.family == "ipv6" and gone.routes == (("", v6),)


def test_exabgp_dispatches_every_launcher_command_to_the_launcher() -> None:
    """ExaBGP's own dispatch (``API.response``) with its built-in commands: none of ours may be shadowed
    (``inet-withdraw ipv4 ...`` was, by ``withdraw ipv4``)."""
    from types import SimpleNamespace

    import exabgp.reactor.api.command  # noqa: F401 - registers ExaBGP's built-in commands
    from exabgp.reactor.api import API
    from exabgp.reactor.api.command.command import Command

    nlri4 = encode_route(ipaddress.ip_network("10.0.0.0/24")).hex()
    nlri6 = encode_route(ipaddress.ip_network("2001:db8::/32")).hex()
    attrs4 = PathAttributes(next_hop=ipaddress.IPv4Address("10.0.0.1")).encode().hex()
    evpn = "k=" + encode_route(_type2()).hex()
    lines = {
        "evpn-announce": f"evpn-announce 10.0.0.1 {_attributes().encode().hex()} {evpn}",
        "evpn-withdraw": f"evpn-withdraw {evpn}",
        "ipv4-announce": f"ipv4-announce 10.0.0.1 {attrs4} {nlri4}",
        "ipv4-withdraw": f"ipv4-withdraw {nlri4}",
        "ipv6-announce": f"ipv6-announce fd00::1 {PathAttributes().encode().hex()} {nlri6}",
        "ipv6-withdraw": f"ipv6-withdraw {nlri6}",
        "evpn-cease": "evpn-cease",
    }
    assert set(lines) == set(COMMANDS)
    called: list[str] = []
    text = {name: (lambda *args, name=name: called.append(name)) for name in COMMANDS}
    fake = SimpleNamespace(
        functions=sorted({*Command.functions, *COMMANDS}, reverse=True),
        callback={"text": {**Command.callback["text"], **text}, "json": {}},
    )
    for name, line in lines.items():
        parse_command(f"neighbor 192.0.2.2 {line}")  # a valid command of ours
        called.clear()
        API.response(fake, None, "svc", f"neighbor 192.0.2.2 {line}", False)
        assert called == [name], (line, called)


@pytest.mark.parametrize(
    "line",
    [
        "neighbor 192.0.2.2 announce route 10.0.0.0/24 next-hop self",
        "neighbor 192.0.2.2 evpn-withdraw",
        "neighbor 192.0.2.2 evpn-withdraw k=zz",
        "neighbor 192.0.2.2 evpn-withdraw =0203",
        "neighbor 192.0.2.2 evpn-withdraw k=020500",  # length byte does not match
        "neighbor 192.0.2.2 evpn-announce 10.0.0.1 4001",
        "neighbor 192.0.2.2 evpn-announce nothop 400101 k=020100",
        "neighbor 192.0.2.2 evpn-announce 10.0.0.1 400101 k=020100 extra",
        "neighbor 192.0.2.2 evpn-announce 10.0.0.1 40030401020304 k=020100",  # NEXT_HOP beside MP_REACH
        "neighbor 192.0.2.2 evpn-cease now",
        "neighbor not-an-ip evpn-cease",
        "neighbor 192.0.2.2 ipv4-withdraw",
        "neighbor 192.0.2.2 ipv4-withdraw 180a00",  # /24 needs three octets
        "neighbor 192.0.2.2 ipv4-withdraw 210a00000000",  # /33
        "neighbor 192.0.2.2 ipv6-withdraw 810a",  # /129
        "neighbor 192.0.2.2 ipv4-announce 10.0.0.1 400101 180a0000",  # no NEXT_HOP
        "neighbor 192.0.2.2 ipv4-announce 10.0.0.1 4001010040030401020304 180a0000",  # another NEXT_HOP
        "neighbor 192.0.2.2 ipv4-announce fd00::1 400101 180a0000",
        "neighbor 192.0.2.2 ipv6-announce fd00::1 4001010040030401020304 2020010db8",  # NEXT_HOP
        "neighbor 192.0.2.2 ipv6-announce fd00::1 400101",  # no route
    ],
)
def test_bad_commands_are_refused(line: str) -> None:
    with pytest.raises((CommandError, ValueError)):
        parse_command(line)


def test_split_attributes() -> None:
    long_value = bytes(300)
    data = b"\x40\x01\x01\x00" + b"\xd0\x10" + len(long_value).to_bytes(2, "big") + long_value
    assert split_attributes(data) == [(0x40, 1, b"\x00"), (0xC0, 16, long_value)]
    with pytest.raises(CommandError, match="built by ExaBGP"):
        split_attributes(b"\x80\x0e\x01\x00")
    with pytest.raises(CommandError, match="overruns"):
        split_attributes(b"\x40\x01\x05\x00")
    with pytest.raises(CommandError, match="truncated"):
        split_attributes(b"\x40\x01")
