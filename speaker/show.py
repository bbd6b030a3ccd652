"""Renderers for the operator commands: read models (``evpn.show``, ``PeerState``) to FRR-8.4-shaped text and
JSON. Pure functions, no I/O; the control socket (``speaker.control``) picks the one a command names.

Text copies the layout of FRR 8.4's vtysh output (column headers and widths); JSON uses FRR's key names where
FRR has an equivalent (``show evpn mac vni 110 json``: ``type``, ``remoteVtep``, ``localSequence``,
``remoteSequence``, ``isDuplicate``; ``show bgp summary json``: ``peers`` with ``state``, ``pfxRcd``,
``msgRcvd``, ``msgSent``, ``peerUptime`` ...). Facts the speaker does not have (interface indexes, table
versions, memory use, prefixes sent) are left out of JSON and shown as ``-`` (or 0 for queues) in text.
``show evpn next-hops`` is our own table (FRR's command of that name lists L3VNI next hops with RMACs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dataplane.layout import vxlan_name
from evpn.codec.evpn_nlri import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IPAddress,
    IpPrefixRoute,
    MacIpRoute,
)
from evpn.codec.route_view import route_prefix_text
from evpn.route_distinguisher import RouteDistinguisher
from evpn.show import MacRow, MacTable, NextHopRow, RibByRd, RibPath, VniRow
from speaker.engine import PeerState

JsonObject = dict[str, object]

ROUTE_TYPES: dict[str, int] = {"ead": 1, "macip": 2, "multicast": 3, "es": 4, "prefix": 5}
"""``show bgp l2vpn evpn route type NAME`` (FRR's names) to the EVPN route type code."""

_BGP_HEADER = (
    "Status codes: s suppressed, d damped, h history, * valid, > best, i - internal\n"
    "Origin codes: i - IGP, e - EGP, ? - incomplete\n"
    "EVPN type-1 prefix: [1]:[EthTag]:[ESI]:[IPlen]:[VTEP-IP]:[Frag-id]\n"
    "EVPN type-2 prefix: [2]:[EthTag]:[MAClen]:[MAC]:[IPlen]:[IP]\n"
    "EVPN type-3 prefix: [3]:[EthTag]:[IPlen]:[OrigIP]\n"
    "EVPN type-4 prefix: [4]:[ESI]:[IPlen]:[OrigIP]\n"
    "EVPN type-5 prefix: [5]:[EthTag]:[IPlen]:[IP]\n"
)
_MAC_FLAGS = "Flags: N=sync-neighs, I=local-inactive, P=peer-active, X=peer-proxy"


@dataclass(frozen=True, slots=True)
class Identity:
    """The local facts some headers print: router id, AS number, VTEP (None when unknown)."""

    router_id: str | None = None
    asn: int | None = None
    vtep: IPAddress | None = None


def to_json(value: object) -> str:
    """JSON text as FRR prints it (two-space indent, keys in insertion order), newline-terminated."""
    return json.dumps(value, indent=2) + "\n"


def _addr_key(a: IPAddress) -> tuple[int, int]:
    return (a.version, int(a))


# ---- show bgp summary ------------------------------------------------------------------------------------


def peer_uptime(seconds: float | None) -> str:
    """FRR's ``peer_uptime``: ``never``, ``HH:MM:SS`` below a day, ``DdHHhMMm`` below a week, else ``WWwDdHHh``."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days == 0:
        return f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if days < 7:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    return f"{days // 7:02d}w{days % 7}d{hours:02d}h"


def bgp_summary_json(peers: Sequence[PeerState], ident: Identity, rib_entries: int = 0) -> JsonObject:
    """``show bgp summary json`` (the ``l2VpnEvpn`` table only: the speaker runs no other family)."""
    table: JsonObject = {}
    if ident.router_id is not None:
        table["routerId"] = ident.router_id
    if ident.asn is not None:
        table["as"] = ident.asn
    table["vrfName"] = "default"
    table["ribCount"] = rib_entries
    table["peerCount"] = len(peers)
    out_peers: JsonObject = {}
    for p in sorted(peers, key=lambda p: _addr_key(p.peer)):
        entry: JsonObject = {}
        if p.description:
            entry["desc"] = p.description
        if p.asn is not None:
            entry["remoteAs"] = p.asn
        if ident.asn is not None:
            entry["localAs"] = ident.asn
        entry["version"] = 4
        entry["msgRcvd"] = p.messages_in
        entry["msgSent"] = p.messages_out
        entry["outq"] = 0
        entry["inq"] = 0
        entry["peerUptime"] = peer_uptime(p.uptime)
        entry["peerUptimeMsec"] = int((p.uptime or 0) * 1000)
        entry["pfxRcd"] = p.prefixes_received
        entry["state"] = p.state
        entry["peerState"] = "OK" if p.state == "Established" else "Idle"
        entry["connectionsEstablished"] = p.flaps + (1 if p.state == "Established" else 0)
        entry["connectionsDropped"] = p.flaps
        if p.last_error:
            entry["lastResetDueTo"] = p.last_error
        if p.router_id is not None:
            entry["routerId"] = p.router_id
        entry["idType"] = f"ipv{p.peer.version}"
        out_peers[str(p.peer)] = entry
    table["peers"] = out_peers
    table["failedPeers"] = sum(1 for p in peers if p.state != "Established")
    table["displayedPeers"] = len(peers)
    table["totalPeers"] = len(peers)
    return {"l2VpnEvpn": table}


def bgp_summary_text(peers: Sequence[PeerState], ident: Identity, rib_entries: int = 0) -> str:
    """``show bgp summary`` as FRR 8.4 prints the L2VPN EVPN table."""
    if not peers:
        return "% No BGP neighbors found in VRF default\n"
    lines = ["", "L2VPN EVPN Summary (VRF default):"]
    lines.append(
        f"BGP router identifier {ident.router_id or '-'}, local AS number {ident.asn or '-'} vrf-id 0"
    )
    lines.append(f"RIB entries {rib_entries}")
    lines.append(f"Peers {len(peers)}")
    lines.append("")
    lines.append(
        "Neighbor        V         AS   MsgRcvd   MsgSent   TblVer  InQ OutQ  Up/Down State/PfxRcd   PfxSnt Desc"
    )
    for p in sorted(peers, key=lambda p: _addr_key(p.peer)):
        name = str(p.peer)
        if len(name) > 15:  # FRR puts a long neighbor name on a line of its own
            lines.append(name)
            name = ""
        up = peer_uptime(p.uptime) if p.state == "Established" or p.uptime is not None else "never"
        state = str(p.prefixes_received) if p.state == "Established" else p.state
        asn = str(p.asn) if p.asn is not None else "-"
        lines.append(
            f"{name:<16}4 {asn:>10} {p.messages_in:>9} {p.messages_out:>9} {0:>8} {0:>4} {0:>4} "
            f"{up:>8} {state:>12} {'-':>8} {p.description or 'N/A'}"
        )
    lines.append("")
    lines.append(f"Total number of neighbors {len(peers)}")
    return "\n".join(lines) + "\n"


# ---- show bgp l2vpn evpn ---------------------------------------------------------------------------------

_RT_TEXT = re.compile(r"^(\d+|\d+\.\d+\.\d+\.\d+):\d+$")


def frr_ext_community(text: str) -> str:
    """One extended community of ``RibPath.ext_communities`` in FRR's notation (``RT:65000:110``, ``ET:8``)."""
    if _RT_TEXT.match(text):
        return f"RT:{text}"
    if text == "ET:vxlan":
        return "ET:8"
    return text


def route_vni(route: EvpnRoute) -> int | None:
    """The VNI a type-2 or type-5 route carries in its label (RFC 8365 §5.1.3), else None."""
    if isinstance(route, MacIpRoute):
        return route.label1
    if isinstance(route, IpPrefixRoute):
        return route.label
    return None


def _ip_key(a: IPAddress | None) -> tuple[int, int]:
    return (0, 0) if a is None else _addr_key(a)


def route_sort_key(route: EvpnRoute) -> tuple[object, ...]:
    """FRR's table order within an RD: route type, then the route's fields (MAC before MAC+IP)."""
    if isinstance(route, MacIpRoute):
        return (2, route.ethernet_tag, route.mac.packed, _ip_key(route.ip))
    if isinstance(route, InclusiveMulticastRoute):
        return (3, route.ethernet_tag, _addr_key(route.originator))
    if isinstance(route, IpPrefixRoute):
        net = route.prefix
        return (5, route.ethernet_tag, net.version, int(net.network_address), net.prefixlen)
    return (int(route.route_type), route_prefix_text(route))


def filter_rib(
    groups: Iterable[RibByRd], route_type: int | None = None, rd: RouteDistinguisher | None = None
) -> tuple[RibByRd, ...]:
    """The RD groups of one route type and/or one RD, paths in FRR's order (best first within a prefix);
    empty groups are dropped."""
    out = []
    for group in groups:
        if rd is not None and group.rd != rd:
            continue
        paths = [p for p in group.paths if route_type is None or int(p.route.route_type) == route_type]
        paths.sort(key=lambda p: (route_sort_key(p.route), not p.best))
        if paths:
            out.append(RibByRd(group.rd, tuple(paths)))
    return tuple(out)


def _internal(path: RibPath, asns: Mapping[IPAddress, int | None], ident: Identity) -> bool:
    if path.peer is None:
        return False
    asn = asns.get(path.peer)
    return asn is None or ident.asn is None or asn == ident.asn


def _status(path: RibPath, internal: bool) -> str:
    return ("S" if path.stale else "*") + (">" if path.best else " ") + ("i" if internal else " ")


def _route_fields(route: EvpnRoute) -> JsonObject:
    """FRR's per-path route keys (``routeType``, ``ethTag``, ``mac``, ``ip`` ...)."""
    out: JsonObject = {"routeType": int(route.route_type)}
    if isinstance(route, MacIpRoute):
        out.update({"ethTag": route.ethernet_tag, "macLen": 48, "mac": str(route.mac)})
        if route.ip is not None:
            out.update({"ipLen": route.ip.max_prefixlen, "ip": str(route.ip)})
        out["vni"] = route.label1
    elif isinstance(route, InclusiveMulticastRoute):
        out.update({"ethTag": route.ethernet_tag, "ipLen": route.originator.max_prefixlen})
        out["ip"] = str(route.originator)
    elif isinstance(route, IpPrefixRoute):
        out.update({"ethTag": route.ethernet_tag, "ipLen": route.prefix.prefixlen})
        out["ip"] = str(route.prefix.network_address)
        out["gatewayIP"] = str(route.gateway_ip)
        out["vni"] = route.label
    elif isinstance(route, EthernetAdRoute):
        out.update({"ethTag": route.ethernet_tag, "esi": str(route.esi)})
    elif isinstance(route, EthernetSegmentRoute):
        out.update({"esi": str(route.esi), "ipLen": route.originator.max_prefixlen})
        out["ip"] = str(route.originator)
    return out


def bgp_evpn_json(
    groups: Sequence[RibByRd],
    ident: Identity,
    peers: Sequence[PeerState] = (),
    *,
    route_type: int | None = None,
    rd: RouteDistinguisher | None = None,
) -> JsonObject:
    """``show bgp l2vpn evpn [route type T] [rd RD] json``: RD -> prefix -> ``paths``; totals at the end."""
    asns = {p.peer: p.asn for p in peers}
    out: JsonObject = {}
    if route_type is None and rd is None:
        if ident.router_id is not None:
            out["bgpLocalRouterId"] = ident.router_id
        out["defaultLocPrf"] = 100
        if ident.asn is not None:
            out["localAS"] = ident.asn
    prefixes = paths_count = 0
    for group in filter_rib(groups, route_type, rd):
        table: JsonObject = {"rd": str(group.rd)}
        for path in group.paths:
            prefix = route_prefix_text(path.route)
            entry = table.get(prefix)
            if not isinstance(entry, dict):
                entry = {"prefix": prefix, "prefixLen": 352, "paths": []}
                table[prefix] = entry
                prefixes += 1
            internal = _internal(path, asns, ident)
            p: JsonObject = {"valid": True}
            if path.stale:
                p["stale"] = True
            if path.best:
                p["bestpath"] = True
            p["pathFrom"] = "internal" if internal else "external"
            p.update(_route_fields(path.route))
            p["weight"] = 32768 if path.peer is None else 0
            p["peerId"] = str(path.peer) if path.peer is not None else "(unspec)"
            p["path"] = ""
            p["origin"] = "IGP"
            p["extendedCommunity"] = {"string": " ".join(frr_ext_community(c) for c in path.ext_communities)}
            p["nexthops"] = [{"ip": str(path.next_hop), "afi": f"ipv{path.next_hop.version}", "used": True}]
            paths_list = entry["paths"]
            assert isinstance(paths_list, list)
            paths_list.append(p)
            paths_count += 1
        out[str(group.rd)] = table
    out["numPrefix"] = prefixes
    out["numPaths"] = paths_count
    return out


def bgp_evpn_text(
    groups: Sequence[RibByRd],
    ident: Identity,
    peers: Sequence[PeerState] = (),
    *,
    route_type: int | None = None,
    rd: RouteDistinguisher | None = None,
    route: bool = False,
) -> str:
    """``show bgp l2vpn evpn [route [type T]] [rd RD]``: FRR's three lines per path (``route``: the form
    with the ``Extended Community`` header and a prefixes/paths count)."""
    asns = {p.peer: p.asn for p in peers}
    selected = filter_rib(groups, route_type, rd)
    scope = filter_rib(groups, None, rd)
    total_prefixes = sum(len({route_prefix_text(p.route) for p in g.paths}) for g in scope)
    if not selected:
        if route_type is not None:
            return "No EVPN prefixes (of requested type) exist\n"
        return "No EVPN prefixes exist\n" if rd is None else f"No prefixes exist with this RD {rd}\n"
    lines = [f"BGP table version is 0, local router ID is {ident.router_id or '-'}", _BGP_HEADER]
    lines.append("   Network          Next Hop            Metric LocPrf Weight Path")
    if route or route_type is not None:
        lines.append("                    Extended Community")
    prefixes = paths = 0
    for group in selected:
        lines.append(f"Route Distinguisher: {group.rd}")
        seen: set[str] = set()
        for path in group.paths:
            prefix = route_prefix_text(path.route)
            if prefix not in seen:
                seen.add(prefix)
                prefixes += 1
            paths += 1
            lines.append(_status(path, _internal(path, asns, ident)) + prefix)
            weight = 32768 if path.peer is None else 0
            lines.append(f"{'':20}{path.next_hop!s:<16}{'':10}{'':7}{weight:>7} i")
            comms = " ".join(frr_ext_community(c) for c in path.ext_communities)
            lines.append(f"{'':20}{comms}")
    lines.append("")
    if route_type is not None:
        lines.append(f"Displayed {prefixes} prefixes ({paths} paths) (of requested type)")
    elif route:
        with_rd = " with this RD" if rd is not None else ""
        lines.append(f"Displayed {prefixes} prefixes ({paths} paths){with_rd}")
    else:
        lines.append(f"Displayed {prefixes} out of {total_prefixes} total prefixes")
    return "\n".join(lines) + "\n"


# ---- show evpn vni ---------------------------------------------------------------------------------------


def _vni_vteps(row: VniRow, next_hops: Sequence[NextHopRow]) -> dict[IPAddress, bool]:
    """Remote VTEPs of a VNI (from its MACs or prefixes, and from flood entries) -> floods to it (HER)."""
    vteps = dict.fromkeys(row.remote_vteps, False)
    for nh in next_hops:
        if row.vni in nh.vnis and (nh.flood or nh.vtep in vteps):
            vteps[nh.vtep] = vteps.get(nh.vtep, False) or nh.flood
    return dict(sorted(vteps.items(), key=lambda kv: _addr_key(kv[0])))


def _arps(row: VniRow, tables: Mapping[int, MacTable] | None) -> int:
    table = tables.get(row.vni) if tables is not None else None
    return sum(len(r.ips) for r in table.rows) if table is not None else 0


def vni_json(
    rows: Sequence[VniRow],
    tables: Mapping[int, MacTable] | None = None,
    next_hops: Sequence[NextHopRow] = (),
) -> JsonObject:
    """``show evpn vni json``: VNI -> ``vni``, ``type``, ``vxlanIf``, ``numMacs``, ``numArpNd``, ``remoteVteps`` ..."""
    out: JsonObject = {}
    for row in rows:
        vteps = _vni_vteps(row, next_hops)
        entry: JsonObject = {"vni": row.vni, "type": row.kind, "vxlanIf": vxlan_name(row.vni)}
        if row.kind == "L2":
            entry["numMacs"] = row.macs
            entry["numArpNd"] = _arps(row, tables)
        else:
            entry["numPrefixes"] = row.prefixes
        entry["numRemoteVteps"] = len(vteps)
        entry["tenantVrf"] = row.vrf or "default"
        entry["remoteVteps"] = [str(v) for v in vteps]
        out[str(row.vni)] = entry
    return out


def vni_text(
    rows: Sequence[VniRow],
    tables: Mapping[int, MacTable] | None = None,
    next_hops: Sequence[NextHopRow] = (),
) -> str:
    """``show evpn vni``: FRR's one line per VNI (an L3 VNI shows its next hops under ``# ARPs``, as FRR)."""
    if not rows:
        return ""
    lines = [
        f"{'VNI':<10} {'Type':<4} {'VxLAN IF':<21} {'# MACs':<8} {'# ARPs':<8} {'# Remote VTEPs':<15} "
        f"{'Tenant VRF':<37}"
    ]
    for row in rows:
        vteps = _vni_vteps(row, next_hops)
        if row.kind == "L2":
            macs, arps, nvteps = str(row.macs), str(_arps(row, tables)), str(len(vteps))
        else:  # FRR: router MACs (not in our read model), next hops, "n/a"
            macs, arps, nvteps = "n/a", str(len(vteps)), "n/a"
        lines.append(
            f"{row.vni:<10} {row.kind:<4} {vxlan_name(row.vni):<21} {macs:<8} {arps:<8} {nvteps:<15} "
            f"{row.vrf or 'default':<37}"
        )
    return "\n".join(lines) + "\n"


def vni_detail_json(
    row: VniRow, ident: Identity, table: MacTable | None = None, next_hops: Sequence[NextHopRow] = ()
) -> JsonObject:
    """``show evpn vni VNI json`` (FRR's keys) plus ``rd``, ``importRTs``, ``exportRTs`` (FRR's BGP keys)."""
    vteps = _vni_vteps(row, next_hops)
    out: JsonObject = {"vni": row.vni, "type": row.kind, "vrf": row.vrf or "default"}
    out["vxlanInterface"] = vxlan_name(row.vni)
    if ident.vtep is not None:
        out["vtepIp"] = str(ident.vtep)
    if row.kind == "L2":
        out["numMacs"] = row.macs
        out["numArpNd"] = sum(len(r.ips) for r in table.rows) if table is not None else 0
    else:
        out["numPrefixes"] = row.prefixes
    out["numRemoteVteps"] = [str(v) for v in vteps]  # FRR 8.4 puts the list under this key
    out["remoteVteps"] = [{"ip": str(v), "flood": "HER" if f else "-"} for v, f in vteps.items()]
    out["rd"] = row.rd
    out["importRTs"] = list(row.import_rts)
    out["exportRTs"] = list(row.export_rts)
    return out


def vni_detail_text(
    row: VniRow, ident: Identity, table: MacTable | None = None, next_hops: Sequence[NextHopRow] = ()
) -> str:
    """``show evpn vni VNI``: FRR's detail lines, then the RD and route targets."""
    vteps = _vni_vteps(row, next_hops)
    lines = [f"VNI: {row.vni}", f" Type: {row.kind}", f" Tenant VRF: {row.vrf or 'default'}"]
    lines.append(f" VxLAN interface: {vxlan_name(row.vni)}")
    lines.append(f" Local VTEP IP: {ident.vtep if ident.vtep is not None else '-'}")
    if vteps:
        lines.append(" Remote VTEPs for this VNI:")
        lines.extend(f"  {v} flood: {'HER' if f else '-'}" for v, f in vteps.items())
    else:
        lines.append(" No remote VTEPs known for this VNI")
    if row.kind == "L2":
        arps = sum(len(r.ips) for r in table.rows) if table is not None else 0
        lines.append(f" Number of MACs (local and remote) known for this VNI: {row.macs}")
        lines.append(f" Number of ARPs (IPv4 and IPv6, local and remote) known for this VNI: {arps}")
    else:
        lines.append(f" Number of prefixes known for this VNI: {row.prefixes}")
    lines.append(f" RD: {row.rd}")
    lines.append(" Import Route Target:")
    lines.extend(f"   {rt}" for rt in row.import_rts)
    lines.append(" Export Route Target:")
    lines.extend(f"   {rt}" for rt in row.export_rts)
    return "\n".join(lines) + "\n"


# ---- show bgp l2vpn evpn vni -----------------------------------------------------------------------------


def bgp_vni_json(rows: Sequence[VniRow], ident: Identity) -> JsonObject:
    """``show bgp l2vpn evpn vni json``: the flags FRR prints, then VNI -> ``rd``, ``importRTs``, ..."""
    out: JsonObject = {
        "advertiseAllVnis": "Enabled",
        "flooding": "Head-end replication",
        "numVnis": len(rows),
        "numL2Vnis": sum(1 for r in rows if r.kind == "L2"),
        "numL3Vnis": sum(1 for r in rows if r.kind == "L3"),
    }
    for row in rows:
        entry: JsonObject = {"vni": row.vni, "type": row.kind, "inKernel": "True", "rd": row.rd}
        if ident.vtep is not None:
            entry["originatorIp"] = str(ident.vtep)
        entry["tenantVrf"] = row.vrf or "default"
        entry["importRTs"] = list(row.import_rts)
        entry["exportRTs"] = list(row.export_rts)
        out[str(row.vni)] = entry
    return out


def bgp_vni_text(rows: Sequence[VniRow]) -> str:
    """``show bgp l2vpn evpn vni``: FRR's RD / route-target table (several RTs joined with commas)."""
    lines = [
        "Advertise All VNI flag: Enabled",
        "BUM flooding: Head-end replication",
        f"Number of L2 VNIs: {sum(1 for r in rows if r.kind == 'L2')}",
        f"Number of L3 VNIs: {sum(1 for r in rows if r.kind == 'L3')}",
        "Flags: * - Kernel",
        f"  {'VNI':<10} {'Type':<4} {'RD':<21} {'Import RT':<25} {'Export RT':<25} {'Tenant VRF':<37}",
    ]
    for r in rows:
        imp, exp = ",".join(r.import_rts), ",".join(r.export_rts)
        # FRR 8.4 puts no blank between the export RT and the VRF columns
        lines.append(f"* {r.vni:<10} {r.kind:<4} {r.rd:<21} {imp:<25} {exp:<25}{r.vrf or 'default':<37}")
    return "\n".join(lines) + "\n"


def bgp_vni_detail_text(row: VniRow, ident: Identity) -> str:
    """``show bgp l2vpn evpn vni VNI``."""
    lines = [
        f"VNI: {row.vni} (known to the kernel)",
        f"  Type: {row.kind}",
        f"  Tenant-Vrf: {row.vrf or 'default'}",
        f"  RD: {row.rd}",
        f"  Originator IP: {ident.vtep if ident.vtep is not None else '-'}",
        "  Import Route Target:",
        *(f"    {rt}" for rt in row.import_rts),
        "  Export Route Target:",
        *(f"    {rt}" for rt in row.export_rts),
    ]
    return "\n".join(lines) + "\n"


# ---- show evpn mac vni -----------------------------------------------------------------------------------


def _mac_json(row: MacRow) -> JsonObject:
    out: JsonObject = {"type": row.kind}
    if row.kind == "remote" and row.vtep is not None:
        out["remoteVtep"] = str(row.vtep)
    out["localSequence"] = row.local_seq
    out["remoteSequence"] = row.remote_seq
    out["isDuplicate"] = row.duplicate
    if row.sticky:
        out["stickyMac"] = True
    if row.frozen:
        out["frozen"] = True
    if row.ips:  # FRR's shape (``show evpn mac vni VNI mac MAC json``); inactive ones are not kept
        out["neighbors"] = {"active": [str(ip) for ip in row.ips], "inactive": []}
    return out


def _mac_line(row: MacRow) -> str:
    where = str(row.vtep) if row.kind == "remote" and row.vtep is not None else "-"
    return f"{row.mac!s:<17} {row.kind:<6} {'':<5} {where:<30} {'':<5} {row.local_seq}/{row.remote_seq}"


_MAC_HEADER = f"{'MAC':<17} {'Type':<6} {'Flags':<5} {'Intf/Remote ES/VTEP':<30} {'VLAN':<5} Seq #'s"


def mac_table_json(table: MacTable, *, duplicate: bool = False) -> JsonObject:
    """``show evpn mac vni VNI [duplicate] json``: ``numMacs`` and ``macs`` by MAC."""
    rows = [r for r in table.rows if r.duplicate] if duplicate else list(table.rows)
    return {"numMacs": len(rows), "macs": {str(r.mac): _mac_json(r) for r in rows}}


def mac_table_text(table: MacTable, *, duplicate: bool = False) -> str:
    """``show evpn mac vni VNI [duplicate]`` (nothing at all when ``duplicate`` finds none, as FRR)."""
    if duplicate:
        rows = [r for r in table.rows if r.duplicate]
        if not rows:
            return ""
        lines = [f"Number of MACs (local and remote) known for this VNI: {len(rows)}"]
        lines.append(_MAC_HEADER.removesuffix(" Seq #'s"))  # FRR 8.4 leaves the last header out here
        lines.extend(_mac_line(r) for r in rows)
        return "\n".join(lines) + "\n"
    if not table.rows:
        return ""
    lines = [
        f"Number of MACs (local and remote) known for this VNI: {len(table.rows)}",
        _MAC_FLAGS,
        _MAC_HEADER,
    ]
    lines.extend(_mac_line(r) for r in table.rows)
    return "\n".join(lines) + "\n"


def mac_tables_json(tables: Sequence[MacTable]) -> JsonObject:
    """``show evpn mac vni all json``: VNI -> the per-VNI object."""
    return {str(t.vni): mac_table_json(t) for t in tables}


def mac_tables_text(tables: Sequence[MacTable]) -> str:
    """``show evpn mac vni all``: a titled block per VNI."""
    out = []
    for t in tables:
        out.append(f"\nVNI {t.vni} #MACs (local and remote) {len(t.rows)}\n\n")
        if t.rows:
            out.append(_MAC_FLAGS + "\n" + _MAC_HEADER + "\n")
            out.extend(_mac_line(r) + "\n" for r in t.rows)
    return "".join(out)


# ---- show evpn next-hops ---------------------------------------------------------------------------------


def next_hops_json(rows: Sequence[NextHopRow]) -> JsonObject:
    """``show evpn next-hops json`` (ours): VTEP -> ``nexthopIp``, ``vnis``, ``numMacs``, ``numRoutes``, ``flood``."""
    return {
        str(r.vtep): {
            "nexthopIp": str(r.vtep),
            "vnis": list(r.vnis),
            "numMacs": r.macs,
            "numRoutes": r.routes,
            "flood": "HER" if r.flood else "-",
            **(
                {}
                if r.reachable is None
                else {
                    "reachable": r.reachable,
                    "resolvedVia": str(r.via) if r.via is not None else None,
                    "pathsHeld": r.held,
                }
            ),
        }
        for r in rows
    }


def next_hops_text(rows: Sequence[NextHopRow]) -> str:
    """``show evpn next-hops``: one line per remote VTEP with what is installed toward it."""
    lines = [f"Number of remote VTEPs: {len(rows)}"]
    tracked = any(r.reachable is not None for r in rows)
    if rows:
        head = f"{'VTEP':<15} {'Flood':<5} {'# MACs':<8} {'# Routes':<8} "
        lines.append(head + (f"{'Reachable':<10} {'Via':<18} {'# Held':<7} " if tracked else "") + "VNIs")
        for r in rows:
            vnis = ",".join(str(v) for v in r.vnis)
            line = f"{r.vtep!s:<15} {'HER' if r.flood else '-':<5} {r.macs:<8} {r.routes:<8} "
            if tracked:
                reach = "yes" if r.reachable else "no"
                line += f"{reach:<10} {str(r.via) if r.via is not None else '-':<18} {r.held:<7} "
            lines.append(line + vnis)
    return "\n".join(lines) + "\n"


def parse_rd(text: str) -> RouteDistinguisher:
    """An RD as typed after ``rd`` (``10.0.0.1:2``, ``65000:110``); ValueError when malformed."""
    try:
        return RouteDistinguisher.from_text(text)
    except Exception as exc:
        raise ValueError(f"malformed RD {text!r}") from exc
