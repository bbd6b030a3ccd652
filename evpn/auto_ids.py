"""Automatic RD, RTs and MACs of a VNI, byte-compatible with FRR (DESIGN §3); explicit values override.

- Export RT: type 0x00 ``(ASN & 0xFFFF):VNI`` (FRR keeps the low 16 bits of a 4-byte ASN).
- Import RT: FRR's wildcard ``*:VNI``, matching only the local-administrator part, so AS 64514 and AS 64518
  import each other's VNI 110.
- RD: type 1 ``router-id:N`` (RFC 4364 §4.2). FRR picks the lowest free N in creation order, which is not
  reproducible; ours is a pure function of the configuration, so it is stable across restarts:
  the VNIs without an explicit RD, L2 and L3 together in ascending order, each take N = VNI when
  1 <= VNI <= 65535 and N is still free, otherwise the lowest free N from 1. N already used by an explicit
  type-1 RD on our router id is never reused. Adding or removing a VNI below 65536 never moves another RD.
"""

from __future__ import annotations

from dataclasses import dataclass

from evpn.config import L2Vni, L3Vni, SpeakerConfig
from evpn.mac import MacAddress
from evpn.route_distinguisher import RdType, RouteDistinguisher
from evpn.route_target import RouteTarget, RouteTargetMatcher, RtFormat


def auto_export_rt(asn: int, vni: int) -> RouteTarget:
    """FRR's auto RT: type 0x00, ``(ASN & 0xFFFF):VNI``."""
    return RouteTarget(RtFormat.AS2, asn & 0xFFFF, vni)


def auto_import_rt(vni: int) -> RouteTargetMatcher:
    """FRR's auto import RT: the wildcard ``*:VNI``."""
    return RouteTargetMatcher(vni)


def anycast_gateway_mac(vni: int) -> MacAddress:
    """OpenPERouter's gateway MAC of an L2VNI: ``00:f3:`` then big-endian ``vni + 1`` (DESIGN §4)."""
    return MacAddress(b"\x00\xf3" + (vni + 1).to_bytes(4, "big"))


def auto_router_mac(config: SpeakerConfig, l3: L3Vni) -> MacAddress:
    """The Router's MAC of an L3VNI (RFC 9135 §8.1): the configured one, else ``02:`` + router id + ``00``.

    A locally administered MAC derived from the router id: stable, unique per node, and the dataplane gives
    the same MAC to the L3 SVI.
    """
    if l3.router_mac is not None:
        return l3.router_mac
    return MacAddress(b"\x02" + config.underlay.router_id.packed + b"\x00")


@dataclass(frozen=True, slots=True)
class VniIds:
    """The RD and RTs a VNI uses, explicit or automatic."""

    vni: int
    rd: RouteDistinguisher
    import_rts: tuple[RouteTargetMatcher, ...]
    export_rts: tuple[RouteTarget, ...]


def auto_rd_indexes(config: SpeakerConfig) -> dict[int, int]:
    """N of ``router-id:N`` for every VNI without an explicit RD (rule in the module docstring)."""
    rid = config.underlay.router_id.packed
    taken: set[int] = set()
    pending: list[int] = []
    vnis: list[L2Vni | L3Vni] = [*config.l2vnis, *config.l3vnis]
    for obj in vnis:
        if obj.rd is None:
            pending.append(obj.vni)
        elif obj.rd.type == RdType.IPV4 and obj.rd.packed[2:6] == rid:
            taken.add(obj.rd.assigned)
    pending.sort()
    out: dict[int, int] = {}
    deferred: list[int] = []
    for vni in pending:
        if vni <= 0xFFFF and vni not in taken:
            out[vni] = vni
            taken.add(vni)
        else:
            deferred.append(vni)
    free = 1
    for vni in deferred:
        while free in taken:
            free += 1
        out[vni] = free
        taken.add(free)
    return out


def resolve_ids(config: SpeakerConfig) -> tuple[dict[int, VniIds], dict[int, VniIds]]:
    """VniIds of every L2VNI and every L3VNI, keyed by VNI."""
    index = auto_rd_indexes(config)
    asn = config.underlay.asn
    rid = config.underlay.router_id

    def ids(obj: L2Vni | L3Vni) -> VniIds:
        rd = obj.rd if obj.rd is not None else RouteDistinguisher.ipv4(rid, index[obj.vni])
        imports = obj.import_rts or (auto_import_rt(obj.vni),)
        exports = obj.export_rts or (auto_export_rt(asn, obj.vni),)
        return VniIds(obj.vni, rd, imports, exports)

    return {l2.vni: ids(l2) for l2 in config.l2vnis}, {l3.vni: ids(l3) for l3 in config.l3vnis}
