"""Automatic RD/RT exactly as FRR (DESIGN §3): export (ASN & 0xFFFF):VNI type 0x00, import *:VNI, RD
router-id:N type 1 with a stable N; explicit values override."""

from __future__ import annotations

import dataclasses

from evpn.auto_ids import anycast_gateway_mac, auto_export_rt, auto_rd_indexes, resolve_ids
from evpn.config import L2Vni
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget, RouteTargetMatcher
from tests.unit.core_helpers import config


def test_export_rt_is_type0_low_16_bits_of_asn() -> None:
    """RFC 4360 §4 type 0x00 RT, FRR auto RT: (ASN & 0xFFFF):VNI."""
    rt = auto_export_rt(64514, 110)
    assert rt.packed == bytes.fromhex("0002fc020000006e")
    assert auto_export_rt(4200000001, 110) == RouteTarget.from_text(f"{4200000001 & 0xFFFF}:110")
    assert auto_export_rt(4200000001, 110).packed[:2] == b"\x00\x02"


def test_wildcard_import_matches_other_as() -> None:
    """AS 64514 and AS 64518 import each other's VNI 110 (FRR's *:VNI)."""
    l2a, _ = resolve_ids(config(asn=64514))
    l2b, _ = resolve_ids(config(asn=64518))
    assert l2a[110].import_rts == (RouteTargetMatcher(110),)
    assert any(m.matches(l2b[110].export_rts[0]) for m in l2a[110].import_rts)
    assert any(m.matches(l2a[110].export_rts[0]) for m in l2b[110].import_rts)
    assert not any(m.matches(RouteTarget.from_text("64518:111")) for m in l2a[110].import_rts)


def test_rd_is_type1_router_id_and_stable() -> None:
    """RFC 4364 §4.2 type-1 RD router-id:N, N stable across restarts (and input order)."""
    l2, l3 = resolve_ids(config(l2=(110, 120)))
    assert l2[110].rd == RouteDistinguisher.ipv4("10.0.0.1", 110)
    assert l3[100].rd == RouteDistinguisher.ipv4("10.0.0.1", 100)
    assert l2[110].rd.packed[:2] == b"\x00\x01"
    again, _ = resolve_ids(config(l2=(120, 110)))
    assert again[110].rd == l2[110].rd and again[120].rd == l2[120].rd


def test_rd_index_for_large_vnis_is_lowest_free_and_deterministic() -> None:
    """RFC 4364 §4.2: N fits 16 bits, so VNIs above 65535 take the lowest free N."""
    cfg = config(l2=(70000, 1, 80000), l3=False)
    idx = auto_rd_indexes(cfg)
    assert idx == {1: 1, 70000: 2, 80000: 3}
    assert auto_rd_indexes(cfg) == idx


def test_adding_a_small_vni_does_not_move_other_rds() -> None:
    """RFC 4364 §4.2 RD stability across reconfiguration."""
    before = auto_rd_indexes(config(l2=(110, 120), l3=False))
    after = auto_rd_indexes(config(l2=(110, 115, 120), l3=False))
    assert before[110] == after[110] and before[120] == after[120]


def test_explicit_values_override() -> None:
    """RFC 4364 §4.2 / RFC 4360: configured RD and RTs win over the automatic ones."""
    cfg = config(l3=False)
    rd = RouteDistinguisher.from_text("10.0.0.1:110")
    l2 = L2Vni(
        "x",
        200,
        rd=rd,
        import_rts=(RouteTargetMatcher.from_text("65000:7"),),
        export_rts=(RouteTarget.from_text("65000:7"),),
    )
    cfg = dataclasses.replace(cfg, l2vnis=(*cfg.l2vnis, l2))
    ids, _ = resolve_ids(cfg)
    assert ids[200].rd == rd
    assert ids[200].export_rts == (RouteTarget.from_text("65000:7"),)
    # the explicit RD took N=110, so auto VNI 110 gets the lowest free N
    assert ids[110].rd == RouteDistinguisher.ipv4("10.0.0.1", 1)


def test_anycast_gateway_mac() -> None:
    """DESIGN §4 (OpenPERouter): 00:f3 + big-endian vni+1."""
    assert str(anycast_gateway_mac(110)) == "00:f3:00:00:00:6f"
