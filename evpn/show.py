"""Show-style read models (FRR's ``show evpn mac vni``, ``show evpn vni``, ``show bgp l2vpn evpn``,
``show evpn next-hops``) as frozen values for the CLI to print."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evpn.codec.evpn_nlri import EvpnRoute, IPAddress, IPNetwork
from evpn.config import SpeakerConfig
from evpn.dataplane_state import (
    DataplaneEntry,
    FdbEntry,
    FloodEntry,
    NeighEntry,
    RouteEntry,
    UnicastRouteEntry,
)
from evpn.mac import MacAddress
from evpn.mac_vrf import LOCAL, MacVrf
from evpn.rib import LocRib, Path, pathset_iter
from evpn.route_distinguisher import RouteDistinguisher

if TYPE_CHECKING:
    from evpn.ip_vrf import IpVrf
    from evpn.originate import Originator
    from evpn.peers import PeerState


@dataclass(frozen=True, slots=True)
class MacRow:
    """One MAC of a VNI: ``kind`` is "local", "remote" or "none" (known but installed nowhere)."""

    mac: MacAddress
    kind: str
    vtep: IPAddress | None
    local_seq: int
    remote_seq: int
    sticky: bool
    duplicate: bool
    frozen: bool
    ips: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class MacTable:
    vni: int
    rows: tuple[MacRow, ...]


@dataclass(frozen=True, slots=True)
class VniRow:
    vni: int
    kind: str
    """"L2" or "L3"."""
    vrf: str | None
    rd: str
    import_rts: tuple[str, ...]
    export_rts: tuple[str, ...]
    macs: int
    remote_vteps: tuple[IPAddress, ...]
    prefixes: int


@dataclass(frozen=True, slots=True)
class RibPath:
    route: EvpnRoute
    peer: IPAddress | None
    """None for a route we originate."""
    next_hop: IPAddress
    best: bool
    stale: bool
    ext_communities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RibByRd:
    rd: RouteDistinguisher
    paths: tuple[RibPath, ...]


@dataclass(frozen=True, slots=True)
class NextHopRow:
    """A remote VTEP: what is installed toward it and, with next-hop tracking, whether it resolves."""

    vtep: IPAddress
    vnis: tuple[int, ...]
    macs: int
    routes: int
    flood: bool
    reachable: bool | None = None
    """None: next-hop tracking is off."""
    via: IPNetwork | None = None
    """The route that resolves the VTEP (kernel or BGP)."""
    held: int = 0
    """Received paths kept out of best-path selection because the VTEP is unreachable."""


def build_mac_table(vrf: MacVrf) -> MacTable:
    rows = []
    for st in vrf.states():
        kind = "local" if st.loc is LOCAL else "remote" if st.loc is not None else "none"
        remote_seq = max((p.sequence for p in pathset_iter(st.remotes)), default=0)
        vtep = st.vtep
        rows.append(
            MacRow(
                st.mac,
                kind,
                vtep,
                st.seq,
                remote_seq,
                st.sticky
                or any(p.sticky for p in pathset_iter(st.remotes) if vtep is not None and p.next_hop == vtep),
                st.dup,
                st.frozen,
                tuple(sorted(st.ips or (), key=str)),
            )
        )
    rows.sort(key=lambda r: r.mac)
    return MacTable(vrf.vni, tuple(rows))


def build_vni_table(
    config: SpeakerConfig, orig: Originator, mac_vrfs: dict[int, MacVrf], ip_vrfs: dict[int, IpVrf]
) -> tuple[VniRow, ...]:
    rows = []
    for l2 in config.l2vnis:
        ids = orig.l2_ids[l2.vni]
        vrf = mac_vrfs[l2.vni]
        vteps = vrf.fdb_vteps()
        rows.append(
            VniRow(
                l2.vni,
                "L2",
                l2.vrf,
                str(ids.rd),
                tuple(str(m) for m in ids.import_rts),
                tuple(str(r) for r in ids.export_rts),
                len(vrf.macs),
                tuple(sorted(vteps, key=lambda a: (a.version, int(a)))),
                0,
            )
        )
    for l3 in config.l3vnis:
        ids = orig.l3_ids[l3.vni]
        ivrf = ip_vrfs[l3.vni]
        vteps = ivrf.route_vteps()
        rows.append(
            VniRow(
                l3.vni,
                "L3",
                l3.vrf,
                str(ids.rd),
                tuple(str(m) for m in ids.import_rts),
                tuple(str(r) for r in ids.export_rts),
                0,
                tuple(sorted(vteps, key=lambda a: (a.version, int(a)))),
                len(ivrf.prefixes),
            )
        )
    rows.sort(key=lambda r: r.vni)
    return tuple(rows)


def _rib_path(path: Path, best: bool, stale: bool) -> RibPath:
    return RibPath(
        path.route, path.peer, path.next_hop, best, stale, tuple(str(c) for c in path.attrs.ext_communities)
    )


def build_rib_by_rd(
    local: Iterable[Path], rib: LocRib, peers: dict[IPAddress, PeerState]
) -> tuple[RibByRd, ...]:
    by_rd: dict[RouteDistinguisher, list[RibPath]] = {}
    for path in local:
        rd = getattr(path.route, "rd", None)
        if isinstance(rd, RouteDistinguisher):
            by_rd.setdefault(rd, []).append(_rib_path(path, True, False))
    for key, paths in rib.items():
        for i, path in enumerate(paths):
            rd = getattr(path.route, "rd", None)
            if not isinstance(rd, RouteDistinguisher):
                continue
            peer = peers.get(path.peer) if path.peer is not None else None
            stale = peer is not None and key in peer.stale
            by_rd.setdefault(rd, []).append(_rib_path(path, i == 0, stale))
    return tuple(RibByRd(rd, tuple(ps)) for rd, ps in sorted(by_rd.items()))


def build_next_hops(
    entries: Iterable[DataplaneEntry],
    tracked: Mapping[IPAddress, IPNetwork | None] | None = None,
    held: Mapping[IPAddress, int] | None = None,
) -> tuple[NextHopRow, ...]:
    """Rows per remote VTEP: installed entries, plus every tracked next hop (reachable or not)."""
    acc: dict[IPAddress, tuple[set[int], list[int]]] = {}
    for e in entries:
        if isinstance(e, NeighEntry | UnicastRouteEntry):
            continue
        vtep = e.vtep
        vnis, counts = acc.setdefault(vtep, (set(), [0, 0, 0]))
        if isinstance(e, FdbEntry):
            vnis.add(e.vni)
            counts[0] += 1
        elif isinstance(e, RouteEntry):
            vnis.add(e.l3vni)
            counts[1] += 1
        elif isinstance(e, FloodEntry):
            vnis.add(e.vni)
            counts[2] += 1
    for nh in tracked or {}:
        acc.setdefault(nh, (set(), [0, 0, 0]))
    held = held or {}
    rows = [
        NextHopRow(
            vtep,
            tuple(sorted(vnis)),
            counts[0],
            counts[1],
            counts[2] > 0,
            None if tracked is None else tracked.get(vtep) is not None or vtep not in tracked,
            None if tracked is None else tracked.get(vtep),
            held.get(vtep, 0),
        )
        for vtep, (vnis, counts) in acc.items()
    ]
    rows.sort(key=lambda r: (r.vtep.version, int(r.vtep)))
    return tuple(rows)
