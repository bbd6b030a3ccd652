"""Configuration rules (OpenPERouter admission rules, FRR ranges): ConfigError names object, field, reason."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from evpn.config import L2Vni, L3Vni, Neighbor, PeerType, SpeakerConfig, Timers, Underlay
from evpn.config_validation import (
    parse_route_distinguisher,
    parse_route_target,
    parse_route_target_matcher,
    validate,
)
from evpn.errors import ConfigError
from evpn.mac import MacAddress
from tests.unit.core_helpers import config

V4 = ipaddress.IPv4Address


def _err(cfg: SpeakerConfig) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    return info.value


def test_valid_config_passes() -> None:
    """OpenPERouter admission rules: the seed configuration is valid."""
    validate(config())


def test_error_message_names_object_field_and_reason() -> None:
    """ConfigError names object, field and reason."""
    err = ConfigError("l2vni", "blue", "vni", "VNI 110 is already used")
    assert str(err) == "l2vni 'blue': vni: VNI 110 is already used"
    assert (err.object_kind, err.object_name, err.field) == ("l2vni", "blue", "vni")


def test_vni_unique_across_l2_and_l3() -> None:
    """RFC 7348 §5 VNI space: one VNI, one segment, across L2 and L3."""
    cfg = config()
    cfg = dataclasses.replace(cfg, l2vnis=(*cfg.l2vnis, L2Vni("dup", 100)))
    err = _err(cfg)
    assert (err.object_kind, err.object_name, err.field) == ("l2vni", "dup", "vni")
    assert "already used" in err.reason


@pytest.mark.parametrize("vni", [0, 16777216, -1])
def test_vni_range(vni: int) -> None:
    """RFC 7348 §5: a VNI is 24 bits, 0 is reserved here."""
    cfg = dataclasses.replace(config(l3=False), l2vnis=(L2Vni("x", vni),))
    assert _err(cfg).field == "vni"


def test_vni_upper_bound_is_valid_and_names_fit() -> None:
    """RFC 7348 §5: VNI 16777215 is valid and its device names fit IFNAMSIZ."""
    validate(dataclasses.replace(config(l3=False), l2vnis=(L2Vni("x", 16777215),)))


def test_one_l3vni_per_vrf() -> None:
    """RFC 9135 §5: one L3VNI per IP-VRF."""
    cfg = dataclasses.replace(config(), l3vnis=(L3Vni("red", "red", 100), L3Vni("red2", "red", 101)))
    err = _err(cfg)
    assert (err.object_name, err.field) == ("red2", "vrf")


def test_gateway_ips_need_a_routing_domain() -> None:
    """RFC 9135 §4: an IRB gateway needs an IP-VRF (L3VNI)."""
    gw = (ipaddress.ip_interface("192.170.1.1/24"),)
    cfg = dataclasses.replace(config(l3=False), l2vnis=(L2Vni("x", 110, gateway_ips=gw),))
    assert _err(cfg).field == "gateway_ips"
    cfg = dataclasses.replace(config(l3=False), l2vnis=(L2Vni("x", 110, vrf="blue", gateway_ips=gw),))
    err = _err(cfg)
    assert err.field == "vrf" and "no L3VNI" in err.reason


def test_vrf_name_length() -> None:
    """Linux IFNAMSIZ: a VRF device name is at most 15 characters."""
    cfg = dataclasses.replace(config(l3=False), l3vnis=(L3Vni("r", "a-very-long-vrf-name", 100),))
    assert _err(cfg).field == "vrf"


def test_neighbor_needs_asn_or_peer_type() -> None:
    """RFC 4271 §4.2: the peer AS must be known (or FRR's internal/external)."""
    u = dataclasses.replace(config().underlay, neighbors=(Neighbor(V4("10.0.0.9")),))
    err = _err(dataclasses.replace(config(), underlay=u))
    assert (err.object_kind, err.object_name, err.field) == ("neighbor", "10.0.0.9", "asn")
    u = dataclasses.replace(
        config().underlay, neighbors=(Neighbor(V4("10.0.0.9"), peer_type=PeerType.INTERNAL),)
    )
    validate(dataclasses.replace(config(), underlay=u))


@pytest.mark.parametrize(("hold", "ok"), [(0, True), (1, False), (2, False), (3, True), (180, True)])
def test_hold_time_zero_or_at_least_three(hold: int, ok: bool) -> None:
    """RFC 4271 §4.2: hold time 0 or >= 3."""
    n = Neighbor(V4("10.0.0.9"), asn=1, timers=Timers(hold_time=hold))
    cfg = dataclasses.replace(config(), underlay=dataclasses.replace(config().underlay, neighbors=(n,)))
    if ok:
        validate(cfg)
    else:
        assert _err(cfg).field == "timers.hold_time"


def test_vtep_required() -> None:
    """RFC 8365 §5.1.3: routes need a VTEP next hop."""
    u = Underlay(asn=64514, router_id=V4("10.0.0.1"))
    assert _err(SpeakerConfig(underlay=u)).field == "vtep"


def test_router_id_not_zero() -> None:
    """RFC 4271 §4.2 / RFC 6286: BGP Identifier 0 is invalid."""
    u = Underlay(asn=64514, router_id=V4("0.0.0.0"), vtep_ipv4=V4("100.65.0.1"))
    assert _err(SpeakerConfig(underlay=u)).field == "router_id"


def test_router_mac_must_be_unicast() -> None:
    """RFC 9135 §8.1: the Router's MAC is a unicast MAC."""
    cfg = dataclasses.replace(
        config(), l3vnis=(L3Vni("red", "red", 100, router_mac=MacAddress.from_text("01:00:5e:00:00:01")),)
    )
    assert _err(cfg).field == "router_mac"


def test_duplicate_names() -> None:
    """OpenPERouter: object names are unique."""
    cfg = dataclasses.replace(config(l3=False), l2vnis=(L2Vni("a", 1), L2Vni("a", 2)))
    assert _err(cfg).field == "name"


def test_route_target_syntax_errors_name_the_field() -> None:
    """RFC 4360 §4 / RFC 4364 §4.2 text forms; errors name the field."""
    with pytest.raises(ConfigError) as info:
        parse_route_target("64512", "l3vni", "red", "export_rts")
    assert info.value.field == "export_rts" and "64512" in info.value.reason
    with pytest.raises(ConfigError):
        parse_route_target_matcher("*:x", "l2vni", "l2", "import_rts")
    with pytest.raises(ConfigError):
        parse_route_distinguisher("1.2.3.4:70000", "l2vni", "l2", "rd")
    assert str(parse_route_target_matcher("*:110", "l2vni", "l2", "import_rts")) == "*:110"
    assert str(parse_route_target("64514:110", "l2vni", "l2", "export_rts")) == "64514:110"


def test_core_refuses_an_invalid_config() -> None:
    """The core validates its configuration (RFC 7348 §5 VTEP)."""
    from evpn.core import EvpnCore

    u = Underlay(asn=64514, router_id=V4("10.0.0.1"))
    with pytest.raises(ConfigError):
        EvpnCore(SpeakerConfig(underlay=u))
