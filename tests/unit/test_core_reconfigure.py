"""reconfigure: only the difference goes out (routes per peer, dataplane entries)."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from evpn.codec.evpn_nlri import InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute
from evpn.config import L2Vni
from evpn.dataplane_state import FdbEntry, FloodEntry
from evpn.errors import ConfigError
from evpn.events import LocalMacLearned, LocalPrefixAdded
from evpn.route_target import RouteTarget, RouteTargetMatcher
from tests.unit.core_helpers import (
    PEER,
    VTEP_B,
    advertised,
    announce,
    config,
    mac,
    started,
    t2,
    t2_attrs,
    t3,
    withdrawn,
)


def test_same_config_changes_nothing() -> None:
    """RFC 4271 §9.2: no change, no UPDATE."""
    cfg = config()
    core, ap = started(cfg)
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=2), t2(VTEP_B, mac(2))), 0))
    ap.apply(core.handle(LocalPrefixAdded("red", ipaddress.ip_network("10.9.0.0/16")), 0))
    out = core.reconfigure(cfg, 1)
    assert not out.advertise and not out.withdraw and not out.dataplane


def test_adding_an_l2vni_originates_only_its_routes_and_imports_known_paths() -> None:
    """RFC 7432 §11 (type-3 per EVI) on reconfiguration: only the new EVI's routes."""
    core, ap = started(config(l2=(110,)))
    r3, a3 = t3(VTEP_B, 120)
    ap.apply(core.handle(announce(PEER, VTEP_B, a3, r3), 0))
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    out = ap.apply(core.reconfigure(config(l2=(110, 120)), 1))
    routes = [r for r, _, _ in advertised(out)]
    assert len(routes) == 1 and isinstance(routes[0], InclusiveMulticastRoute)
    assert out.dataplane.add == (FloodEntry(120, VTEP_B),) and not out.withdraw
    # the core keeps working after the swap
    out = ap.apply(core.handle(LocalMacLearned(120, mac(1)), 2))
    assert [r for r, _, _ in advertised(out) if isinstance(r, MacIpRoute) and r.label1 == 120]
    assert core.desired_dataplane() == frozenset(ap.entries)


def test_removing_an_l2vni_withdraws_its_routes_and_entries() -> None:
    """RFC 4271 §9.2: a removed EVI's routes are withdrawn, its entries removed."""
    core, ap = started(config(l2=(110, 120)))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(vni=120), t2(VTEP_B, mac(9), vni=120)), 0))
    ap.apply(core.handle(LocalMacLearned(120, mac(1)), 0))
    out = ap.apply(core.reconfigure(config(l2=(110,)), 1))
    gone = withdrawn(out)
    assert {type(r) for r in gone} == {InclusiveMulticastRoute, MacIpRoute}
    assert FdbEntry(120, mac(9), VTEP_B) in out.dataplane.remove
    assert not any(isinstance(r, IpPrefixRoute) for r in gone)


def test_changing_import_rts_reimports() -> None:
    """RFC 4364 §4.3.1 import by RT on reconfiguration."""
    core, ap = started(config(l3=False))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(vni=777), t2(VTEP_B, mac(3))), 0))
    assert not ap.entries
    cfg = config(l3=False)
    l2 = dataclasses.replace(cfg.l2vnis[0], import_rts=(RouteTargetMatcher.from_text("*:777"),))
    out = ap.apply(core.reconfigure(dataclasses.replace(cfg, l2vnis=(l2,)), 1))
    assert FdbEntry(110, mac(3), VTEP_B) in out.dataplane.add


def test_changing_export_rts_readvertises_with_new_rt() -> None:
    """RFC 4271 §9.2: new attributes replace the route implicitly (no withdraw)."""
    core, ap = started(config(l3=False))
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    cfg = config(l3=False)
    l2: L2Vni = dataclasses.replace(cfg.l2vnis[0], export_rts=(RouteTarget.from_text("65000:1"),))
    out = core.reconfigure(dataclasses.replace(cfg, l2vnis=(l2,)), 1)
    adv = advertised(out)
    assert adv and all(a.route_targets == (RouteTarget.from_text("65000:1"),) for _, a, _ in adv)
    assert not out.withdraw  # same keys, implicit replace


def test_local_sequence_survives_reconfigure() -> None:
    """RFC 7432 §15.1: the sequence number we advertised never goes back."""
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=3), t2(VTEP_B, mac(1))), 0))
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 1))
    core.reconfigure(config(l2=(110, 130)), 2)
    row = next(r for r in core.mac_table(110).rows if r.mac == mac(1))
    assert row.kind == "local" and row.local_seq == 4


def test_invalid_new_config_is_refused_and_state_kept() -> None:
    """RFC 7348 §5: a VNI clash is refused (ConfigError) and the running state stays."""
    core, ap = started(config())
    ap.apply(core.handle(LocalMacLearned(110, mac(1)), 0))
    bad = config(l2=(110, 100))
    with pytest.raises(ConfigError):
        core.reconfigure(bad, 1)
    assert core.mac_table(110).rows[0].kind == "local"
