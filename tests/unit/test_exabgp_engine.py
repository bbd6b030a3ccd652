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
from speaker.exabgp_launcher import CommandError, format_command, parse_command, split_attributes

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


async def test_non_evpn_routes_are_refused() -> None:
    engine = ExaBgpEngine(_underlay(Neighbor(ipaddress.ip_address("127.0.0.2"), asn=64512)))
    with pytest.raises(ValueError, match="EVPN routes only"):
        await engine.advertise(
            None, _attributes(), ipaddress.ip_address("10.0.0.1"), [ipaddress.ip_network("10.0.0.0/24")]
        )


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
        "neighbor 192.0.2.2 evpn-cease now",
        "neighbor not-an-ip evpn-cease",
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
