"""The EVPN core (sans-IO): events in, routes to advertise/withdraw and one dataplane delta out.

It wires the RIB (``rib``), the per-peer Adj-RIBs (``peers``, ``export``), one MAC-VRF per L2VNI
(``mac_vrf``) and one IP-VRF per L3VNI (``ip_vrf``). Every handler is incremental: a change touches only
the route keys, MACs and prefixes it affects. Time is always the ``now`` argument.

Usage (the speaker's loop)::

    core = EvpnCore(config)                 # validates (ConfigError)
    out = core.start(now)                   # type-3 per L2VNI, type-5 of gateway subnets
    out = core.handle(event, now)           # any evpn.events event
    out = core.tick(now)                    # call about once a second: GR sweep, duplicate expiry
    out = core.reconfigure(new_config, now) # only the differences
    core.desired_dataplane()                # full state, for a reconcile at start-up

Each ``CoreOutput`` holds per-peer ``RoutesToAdvertise`` (routes sharing one attribute object and next hop,
ready for UPDATE packing) and ``RoutesToWithdraw``, one ``DataplaneDelta`` and the notices. After sending
the output of a ``PeerUp`` (the peer's whole Adj-RIB-Out) the session engine sends End-of-RIB (RFC 4724 §2).
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
from collections.abc import Callable, Iterable

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IPAddress,
    IPNetwork,
    IpPrefixRoute,
    MacIpRoute,
    UnknownEvpnRoute,
)
from evpn.codec.families import Family
from evpn.codec.messages import Route
from evpn.config import Neighbor, SpeakerConfig
from evpn.config_validation import validate
from evpn.dataplane_state import DataplaneDelta, DataplaneEntry, UnicastRouteEntry
from evpn.desired import DeltaJournal
from evpn.events import (
    CoreEvent,
    EndOfRib,
    KernelRoutes,
    LocalMacAged,
    LocalMacLearned,
    LocalNeighLearned,
    LocalNeighRemoved,
    LocalPrefixAdded,
    LocalPrefixRemoved,
    PeerDown,
    PeerUp,
    RoutesReceived,
)
from evpn.export import AttributeRewriter, OutputBuilder, may_export
from evpn.fast_ip import host_key, host_prefix, prefix_key
from evpn.ip_vrf import IpVrf, path_prefix
from evpn.mac import MacAddress
from evpn.mac_vrf import Advert, MacVrf
from evpn.notices import NextHopChanged, Notice, RejectReason, RouteRejected, StaleRoutesSwept
from evpn.originate import Originator, gateway_prefixes
from evpn.outputs import CoreOutput, RoutesToAdvertise, RoutesToWithdraw
from evpn.peers import PeerState
from evpn.rib import LocRib, Path, Rank, RouteKey, path_rank, route_key
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from evpn.show import (
    MacTable,
    NextHopRow,
    RibByRd,
    VniRow,
    build_mac_table,
    build_next_hops,
    build_rib_by_rd,
    build_vni_table,
)
from evpn.unicast import PrefixIndex, UnicastPath, UnicastTable

__all__ = ["CoreOutput", "EvpnCore", "RoutesToAdvertise", "RoutesToWithdraw"]

_LOCAL_RANK: Rank = (1, 0, -100, 0, 0, 0, 0, 0, 0, (0, 0))
_LOCAL_UNICAST_ATTRS = PathAttributes()
"""Our own unicast routes (``network`` statements): ORIGIN IGP, empty AS_PATH (RFC 4271 §5.1)."""
_UNICAST = (ipaddress.IPv4Network, ipaddress.IPv6Network)
_EVPN_TYPES = (
    MacIpRoute,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    EthernetAdRoute,
    EthernetSegmentRoute,
    UnknownEvpnRoute,
)
Targets = tuple[tuple[int, ...], tuple[int, ...]]
Timer = tuple[float, int, str, object, object]


class EvpnCore:
    """One speaker's EVPN state. Not thread-safe; every method returns what changed."""

    def __init__(self, config: SpeakerConfig) -> None:
        validate(config)
        self._config = config
        u = config.underlay
        self._vtep: IPAddress = u.vtep
        self._router_id = u.router_id
        self._asn = u.asn
        self._orig = Originator(config)
        self.journal = DeltaJournal()
        self._rib = LocRib()
        self._peers: dict[IPAddress, PeerState] = {}
        self._up: list[PeerState] = []
        self._local: dict[RouteKey, Path] = {}
        self._local_prefixes: dict[tuple[int, IPNetwork], int] = {}
        self._notices: list[Notice] = []
        self._out = OutputBuilder()
        self._rewriter = AttributeRewriter(u.asn, u.cluster_id if u.cluster_id is not None else u.router_id)
        self._timers: list[Timer] = []
        self._last_source: tuple[IPAddress | None, PeerState | None] = (None, None)
        self._timer_seq = 0
        self._started = False
        self._tcache: dict[int, tuple[PathAttributes, Targets]] = {}
        self._rr_clients = {n.address for n in u.neighbors if n.route_reflector_client}
        self._import_exact: dict[RouteTarget, list[tuple[int, int]]] = {}
        self._import_wild: dict[int, list[tuple[int, int]]] = {}
        for kind, table in ((2, self._orig.l2_ids), (3, self._orig.l3_ids)):
            for vni, ids in table.items():
                for m in ids.import_rts:
                    if m.route_target is not None:
                        self._import_exact.setdefault(m.route_target, []).append((kind, vni))
                    else:
                        self._import_wild.setdefault(m.assigned, []).append((kind, vni))
        self._l3_vrf = {l3.vni: l3.vrf for l3 in config.l3vnis}
        self.mac_vrfs: dict[int, MacVrf] = {}
        for l2 in config.l2vnis:
            ignored = frozenset((self._orig.gateway_mac(l2.vni).packed,)) if l2.gateway_ips else frozenset()
            self.mac_vrfs[l2.vni] = MacVrf(l2.vni, self._vtep, config.duplicate_detection, self, ignored)
        self.ip_vrfs: dict[int, IpVrf] = {l3.vni: IpVrf(l3.vrf, l3.vni, self) for l3 in config.l3vnis}
        # IPv4/IPv6 unicast: the default instance and one per L3VNI with a host session
        self._neighbors: dict[IPAddress, Neighbor] = {n.address: n for n in config.neighbors()}
        self._default_table = UnicastTable(None, None, u.asn)
        self._tables: dict[str | None, UnicastTable] = {None: self._default_table}
        for l3 in config.l3vnis:
            if l3.host_session is not None:
                self._tables[l3.vrf] = UnicastTable(l3.vrf, l3.vni, l3.host_session.asn)
        self._host_tables = {t.l3vni: t for t in self._tables.values() if t.l3vni is not None}
        self._vrf_touched: dict[tuple[int, IPNetwork], None] = {}
        """(L3VNI, prefix) of host-session VRFs whose EVPN candidates changed in this call."""
        self._unicast_rewriters: dict[int, AttributeRewriter] = {}
        self._host_exports: dict[tuple[int, IPNetwork], PathAttributes] = {}
        self._evpn_to_host: dict[int, tuple[PathAttributes, PathAttributes]] = {}
        # next-hop tracking (FRR NHT): kernel routes and BGP routes of the default instance resolve VTEPs
        self._nht = u.nexthop_tracking
        self._nht_via_default = u.nexthop_resolve_via_default
        self._kernel_prefixes: frozenset[IPNetwork] = frozenset()
        self._kernel_index = PrefixIndex()
        self._bgp_index = PrefixIndex()
        self._nh_state: dict[IPAddress, IPNetwork | None] = {}
        """Tracked next hops (remote VTEPs) and the route resolving each; None: unreachable."""

    @property
    def config(self) -> SpeakerConfig:
        return self._config

    def router_macs(self) -> dict[int, MacAddress]:
        """The Router's MAC of each L3VNI (configured, else derived from the router id): the dataplane gives
        it to the L3VNI's SVI so that symmetric IRB traffic to us is accepted (RFC 9135 §8.1)."""
        return dict(self._orig.router_macs)

    # ---- public API -----------------------------------------------------------------------------------

    def start(self, now: float) -> CoreOutput:
        """Originate what the configuration alone defines: type-3 per L2VNI, type-5 of gateway subnets,
        and the gateway MAC/IP routes of L2VNIs with ``advertise_gateway`` (Default Gateway, RFC 7432 §7.8)."""
        if not self._started:
            self._started = True
            for l2 in self._config.l2vnis:
                self._originate(*self._orig.imet(l2.vni))
                if l2.advertise_gateway:
                    gmac = self._orig.gateway_mac(l2.vni)
                    for gw in l2.gateway_ips:
                        self._originate(*self._orig.mac_ip(l2.vni, gmac, gw.ip, 0, False, gateway=True))
            for l3vni, prefix in _configured_prefixes(self._config):
                self._prefix_source(l3vni, prefix, +1)
            self._unicast_start(now)
        return self._finish(now)

    def handle(self, event: CoreEvent, now: float) -> CoreOutput:
        """Apply one input event (evpn.events)."""
        if isinstance(event, RoutesReceived):
            self._received(event, now)
        elif isinstance(event, LocalMacLearned):
            vrf = self.mac_vrfs.get(event.vni)
            if vrf is not None:
                vrf.learn(event.mac, event.sticky, now)
        elif isinstance(event, LocalMacAged):
            vrf = self.mac_vrfs.get(event.vni)
            if vrf is not None:
                vrf.age(event.mac, now)
        elif isinstance(event, LocalNeighLearned):
            vrf = self.mac_vrfs.get(event.vni)
            if vrf is not None:
                vrf.neigh_learned(event.ip, event.mac, now)
        elif isinstance(event, LocalNeighRemoved):
            vrf = self.mac_vrfs.get(event.vni)
            if vrf is not None:
                vrf.neigh_removed(event.ip, now)
        elif isinstance(event, LocalPrefixAdded | LocalPrefixRemoved):
            l3vni = self._orig.l3_by_vrf.get(event.vrf)
            if l3vni is not None:
                self._prefix_source(l3vni, event.prefix, 1 if isinstance(event, LocalPrefixAdded) else -1)
        elif isinstance(event, PeerUp):
            self._peer_up(event, now)
        elif isinstance(event, PeerDown):
            self._peer_down(event, now)
        elif isinstance(event, EndOfRib):
            peer = self._peers.get(event.peer)
            if peer is not None and peer.stale:
                self._sweep(peer, now, event.family)
        elif isinstance(event, KernelRoutes):
            self._set_kernel_routes(event.prefixes)
            if self._nht:
                self._recheck_next_hops(now)
        return self._finish(now)

    def tick(self, now: float) -> CoreOutput:
        """Fire due timers: graceful-restart stale sweep (RFC 4724 §4.2), duplicate/freeze expiry."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, kind, a, b = heapq.heappop(timers)
            if kind == "dad" and isinstance(a, int) and isinstance(b, MacAddress):
                vrf = self.mac_vrfs.get(a)
                if vrf is not None:
                    vrf.expire(b, now)
            elif kind == "stale" and isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address):
                peer = self._peers.get(a)
                if peer is not None and peer.stale and peer.stale_deadline == when:
                    self._sweep(peer, now)
        return self._finish(now)

    def clear_duplicate(self, vni: int, mac: MacAddress, now: float) -> CoreOutput:
        """``clear evpn dup-addr``: a duplicate or frozen MAC resumes normal operation."""
        vrf = self.mac_vrfs.get(vni)
        if vrf is not None:
            vrf.expire(mac, now, force=True)
        return self._finish(now)

    def reconfigure(self, config: SpeakerConfig, now: float) -> CoreOutput:
        """Adopt ``config``; the output holds only the differences (routes per peer, dataplane entries).

        The new state is rebuilt from what is known (peers, received paths, local MACs/neighbours/prefixes,
        advertised sequence numbers, duplicate-detection state) and compared with the current one.
        """
        new = EvpnCore(config)
        new._set_kernel_routes(self._kernel_prefixes)
        for addr, peer in self._peers.items():
            np = new._peers[addr] = PeerState(addr)
            for slot in (
                "asn",
                "router_id",
                "ibgp",
                "families",
                "graceful_restart",
                "up",
                "stale_deadline",
                "local_address",
            ):
                setattr(np, slot, getattr(peer, slot))
            np.rr_client = peer.rr_client or addr in new._rr_clients
        new._up = [p for p in new._peers.values() if p.up and p.wants_evpn]
        if self._started:
            new.start(now)
        for addr, peer in self._peers.items():  # unicast first: BGP routes resolve EVPN next hops
            if addr in self._neighbors and addr not in new._neighbors:
                continue  # a session the new configuration drops (a removed host session): its routes go
            np = new._peers[addr]
            ugroups: dict[tuple[int, IPAddress], list[Route]] = {}
            uattrs: dict[int, PathAttributes] = {}
            for upath in peer.unicast_in.values():
                ugroups.setdefault((id(upath.attrs), upath.next_hop), []).append(upath.prefix)
                uattrs[id(upath.attrs)] = upath.attrs
            for (aid, nh), uroutes in ugroups.items():
                new._unicast_ingest(np, tuple(uroutes), uattrs[aid], nh, now)
        for addr, peer in self._peers.items():
            np = new._peers[addr]
            groups: dict[tuple[int, IPAddress], list[EvpnRoute]] = {}
            attrs_of: dict[int, PathAttributes] = {}
            for path in peer.adj_in.values():
                groups.setdefault((id(path.attrs), path.next_hop), []).append(path.route)
                attrs_of[id(path.attrs)] = path.attrs
            for (aid, nh), routes in groups.items():
                new._ingest(np, tuple(routes), attrs_of[aid], nh, now)
            np.stale = set(peer.stale) & (set(np.adj_in) | {(0, p) for p in np.unicast_in})
            if np.stale and np.stale_deadline is not None:
                new._schedule(np.stale_deadline, "stale", addr, None)
        for vni, vrf in self.mac_vrfs.items():
            nvrf = new.mac_vrfs.get(vni)
            if nvrf is None:
                continue
            for mac, seq, sticky, ips in vrf.local_macs():
                nvrf.learn(mac, sticky, now, restore_seq=seq)
                for ip in ips:
                    nvrf.neigh_learned(ip, mac, now)
            nvrf.adopt_duplicate_state(vrf)
        gw = _configured_prefixes(self._config)
        for (l3vni, prefix), count in self._local_prefixes.items():
            vrf_name = self._l3_vrf.get(l3vni)
            nl3 = new._orig.l3_by_vrf.get(vrf_name) if vrf_name is not None else None
            extra = count - (1 if (l3vni, prefix) in gw else 0)
            if nl3 is not None and extra > 0:
                for _ in range(extra):
                    new._prefix_source(nl3, prefix, +1)
        new._sync_vrf_imports(now)
        new.journal.take_delta()
        new._notices.clear()
        new._out = OutputBuilder()
        # differences, computed against the current state
        old_entries = self.desired_dataplane()
        new_entries = new.desired_dataplane()
        delta = DataplaneDelta(tuple(new_entries - old_entries), tuple(old_entries - new_entries))
        builder = OutputBuilder()
        for addr, np in new._peers.items():
            if not np.up:
                continue
            old_out = self._peers[addr].adj_out
            target = np.adj_out
            np.adj_out = dict(old_out)
            for key in set(old_out) | set(target):
                builder.set(np, key, target.get(key))
        advertise, withdraw = builder.build()
        for slot, value in vars(new).items():
            setattr(self, slot, value)
        for mvrf in self.mac_vrfs.values():
            mvrf.rebind(self)
        for ivrf in self.ip_vrfs.values():
            ivrf.rebind(self)
        return CoreOutput(advertise, withdraw, delta, ())

    def desired_dataplane(self) -> frozenset[DataplaneEntry]:
        """Every entry the kernel should hold now (for a full reconcile at start-up), read from the VRFs."""
        entries: list[DataplaneEntry] = []
        for mvrf in self.mac_vrfs.values():
            entries.extend(mvrf.entries())
        for ivrf in self.ip_vrfs.values():
            entries.extend(ivrf.entries())
        for table in self._tables.values():
            vrf = table.vrf or ""
            entries.extend(
                UnicastRouteEntry(vrf, p.prefix, p.next_hop) for p in table.bests() if p.peer is not None
            )
        return frozenset(entries)

    # ---- read models ----------------------------------------------------------------------------------

    def mac_table(self, vni: int) -> MacTable:
        """``show evpn mac vni VNI``: local and remote MACs with sequence numbers and flags."""
        vrf = self.mac_vrfs.get(vni)
        if vrf is None:
            raise KeyError(f"VNI {vni} is not an L2VNI")
        return build_mac_table(vrf)

    def vni_table(self) -> tuple[VniRow, ...]:
        """``show evpn vni``: every VNI with its RD, RTs and counts."""
        return build_vni_table(self._config, self._orig, self.mac_vrfs, self.ip_vrfs)

    def rib_by_rd(self) -> tuple[RibByRd, ...]:
        """``show bgp l2vpn evpn``: every path, local and received, grouped by RD."""
        return build_rib_by_rd(self._local.values(), self._rib, self._peers)

    def rib_path_count(self) -> int:
        """``show bgp summary``'s RIB entries: the paths ``rib_by_rd`` lists, counted without building it."""
        local = sum(
            1 for p in self._local.values() if isinstance(getattr(p.route, "rd", None), RouteDistinguisher)
        )
        return local + self._rib.path_count()

    def next_hops(self) -> tuple[NextHopRow, ...]:
        """``show evpn next-hops``: remote VTEPs and what is installed toward each."""
        held: dict[IPAddress, int] = {}
        if self._nht:
            for peer in self._peers.values():
                for path in peer.adj_in.values():
                    if not self._in_rib(path):
                        held[path.next_hop] = held.get(path.next_hop, 0) + 1
        return build_next_hops(self.desired_dataplane(), self._nh_state if self._nht else None, held)

    # ---- MacVrfSink / IpVrfSink -----------------------------------------------------------------------

    def notice(self, notice: Notice) -> None:
        self._notices.append(notice)

    def schedule(self, when: float, vni: int, mac: MacAddress) -> None:
        self._schedule(when, "dad", vni, mac)

    def local_advert(self, vni: int, mac: MacAddress, old: Advert | None, new: Advert | None) -> None:
        """Originate / withdraw the type-2 routes of a local MAC (RFC 7432 §7.2, §15)."""
        old_ips: Iterable[IPAddress | None] = () if old is None else (None, *old.ips)
        keep: set[IPAddress | None] = set() if new is None else {None, *new.ips}
        for ip in old_ips:
            if ip not in keep:
                route, _ = self._orig.mac_ip(vni, mac, ip, 0, False)
                self._withdraw_local(route_key(route))
        if new is not None:
            for ip in (None, *new.ips):
                self._originate(*self._orig.mac_ip(vni, mac, ip, new.seq, new.sticky))

    def local_host(self, vni: int, ip: IPAddress, active: bool) -> None:
        l3vni = self._orig.l2_to_l3.get(vni)
        if l3vni is not None:
            self.ip_vrfs[l3vni].set_local(host_prefix(ip), active)

    # ---- internals: local origination -----------------------------------------------------------------

    def _schedule(self, when: float, kind: str, a: object, b: object) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, a, b))

    def _prefix_source(self, l3vni: int, prefix: IPNetwork, step: int) -> None:
        key = (l3vni, prefix)
        count = self._local_prefixes.get(key, 0)
        new_count = max(count + step, 0)
        if new_count:
            self._local_prefixes[key] = new_count
        else:
            self._local_prefixes.pop(key, None)
        if (count == 0) == (new_count == 0):
            return
        route, attrs = self._orig.prefix(l3vni, prefix)
        host = self._host_exports.get(key)
        if new_count:
            self._originate(route, attrs)
        elif host is not None:  # a host session still announces it: its type-5 takes over
            self._originate(route, host)
        else:
            self._withdraw_local(route_key(route))
        if host is None:
            self.ip_vrfs[l3vni].set_local(prefix, bool(new_count))

    def _originate(self, route: EvpnRoute, attrs: PathAttributes) -> None:
        key = route_key(route)
        old = self._local.get(key)
        if old is not None and old.route == route and old.attrs is attrs:
            return
        self._local[key] = Path(None, route, attrs, self._vtep, _LOCAL_RANK, (), ())
        self._export(key)

    def _withdraw_local(self, key: RouteKey) -> None:
        if self._local.pop(key, None) is not None:
            self._export(key)

    def _export(self, key: RouteKey) -> None:
        """Bring every up peer's Adj-RIB-Out for ``key`` in line with the local route or the best path."""
        up = self._up
        if not up:
            return
        path = self._local.get(key)
        if path is None:
            path = self._rib.best(key)
        source = None
        if path is not None and path.peer is not None:
            if path.peer is self._last_source[0]:  # same address object: routes of one UPDATE
                source = self._last_source[1]
            else:
                source = self._peers[path.peer]
                self._last_source = (path.peer, source)
        rewrite = self._rewriter.rewrite
        out = self._out
        for peer in up:
            if path is None or not may_export(source, peer):
                if key in peer.adj_out:
                    out.set(peer, key, None)
                continue
            out.set(peer, key, (path.route, rewrite(path, source, peer), path.next_hop))

    # ---- internals: peers ------------------------------------------------------------------------------

    def _peer_up(self, ev: PeerUp, now: float) -> None:
        self._last_source = (None, None)
        peer = self._peers.get(ev.peer)
        if peer is None:
            peer = self._peers[ev.peer] = PeerState(ev.peer)
        peer.up = True
        peer.asn = ev.peer_asn
        peer.router_id = ev.peer_router_id
        peer.ibgp = ev.ibgp
        peer.rr_client = ev.route_reflector_client or ev.peer in self._rr_clients
        peer.families = ev.families
        peer.graceful_restart = ev.graceful_restart
        peer.local_address = ev.local_address
        peer.adj_out = {}
        if peer.stale and not ev.graceful_restart:
            self._sweep(peer, now)  # RFC 4724 §4.2: back without graceful restart, stale routes go now
        if peer.stale:
            peer.stale_deadline = now + self._config.graceful_restart.stalepath_time
            self._schedule(peer.stale_deadline, "stale", peer.address, None)
        self._up = [p for p in self._peers.values() if p.up and p.wants_evpn]
        self._unicast_peer_up(peer)
        if not peer.wants_evpn:
            return
        rewrite = self._rewriter.rewrite
        table: dict[RouteKey, tuple[EvpnRoute, PathAttributes, IPAddress]] = {}
        for key, paths in self._rib.items():
            best = paths[0]
            source = self._peers[best.peer] if best.peer is not None else None
            if may_export(source, peer):
                table[key] = (best.route, rewrite(best, source, peer), best.next_hop)
        for key, path in self._local.items():
            table[key] = (path.route, rewrite(path, None, peer), path.next_hop)
        for key, entry in table.items():
            self._out.set(peer, key, entry)

    def _peer_down(self, ev: PeerDown, now: float) -> None:
        self._last_source = (None, None)
        peer = self._peers.get(ev.peer)
        if peer is None:
            return
        peer.up = False
        peer.adj_out = {}
        self._up = [p for p in self._peers.values() if p.up and p.wants_evpn]
        gr = self._config.graceful_restart
        if ev.graceful and peer.graceful_restart and gr.enabled and (peer.adj_in or peer.unicast_in):
            # RFC 4724 §4.2: keep the routes, marked stale, until refreshed or the timer fires
            peer.stale = set(peer.adj_in) | {(0, p) for p in peer.unicast_in}
            peer.stale_deadline = now + gr.restart_time
            self._schedule(peer.stale_deadline, "stale", peer.address, None)
            return
        for key in list(peer.adj_in):
            self._drop(peer, key, now)
        for prefix in list(peer.unicast_in):
            self._unicast_drop(peer, prefix, now)
        peer.stale.clear()
        peer.stale_deadline = None
        if not peer.adj_in and ev.peer not in self._neighbors:
            del self._peers[ev.peer]

    def _sweep(self, peer: PeerState, now: float, family: Family | None = None) -> None:
        """Remove stale routes (of ``family`` at its End-of-RIB; all of them when the timer fires)."""
        stale = [k for k in peer.stale if family is None or _key_family(k) is family]
        for key in stale:
            if key[0] == 0:
                prefix = key[1]
                assert isinstance(prefix, _UNICAST)
                self._unicast_drop(peer, prefix, now)
            else:
                self._drop(peer, key, now)
            peer.stale.discard(key)
        if not peer.stale:
            peer.stale_deadline = None
        if stale:
            self._notices.append(StaleRoutesSwept(peer.address, len(stale)))

    # ---- internals: received routes -------------------------------------------------------------------

    def _received(self, ev: RoutesReceived, now: float) -> None:
        peer = self._peers.get(ev.peer)
        if peer is None or not peer.up:
            for route in ev.announced:
                self._notices.append(RouteRejected(ev.peer, route, RejectReason.UNKNOWN_PEER))
            return
        if ev.withdrawn:
            self._withdrawn(peer, ev.withdrawn, now)
        if not ev.announced:
            return
        attrs = ev.attributes
        nh = ev.next_hop
        if attrs is None or nh is None:
            self._reject(peer, ev.announced, RejectReason.NO_NEXT_HOP, now)
            return
        reason = self._loop_check(attrs, peer)
        if reason is not None:
            self._reject(peer, ev.announced, reason, now)
            return
        if isinstance(ev.announced[0], _UNICAST):
            self._unicast_ingest(peer, ev.announced, attrs, nh, now)
            return
        self._ingest(peer, ev.announced, attrs, nh, now)

    def _reject(self, peer: PeerState, routes: tuple[Route, ...], reason: RejectReason, now: float) -> None:
        """Treat-as-withdraw (RFC 7606 §2): the routes replace nothing and remove what they replaced."""
        for route in routes:
            if isinstance(route, _EVPN_TYPES):
                self._drop(peer, route_key(route), now)
            elif isinstance(route, _UNICAST):
                self._unicast_drop(peer, route, now)
            self._notices.append(RouteRejected(peer.address, route, reason))

    def _loop_check(self, attrs: PathAttributes, peer: PeerState) -> RejectReason | None:
        if attrs.originator_id is not None and attrs.originator_id == self._router_id:
            return RejectReason.ORIGINATOR_ID_LOOP
        if attrs.cluster_list and self._rewriter_cluster_id() in attrs.cluster_list:
            return RejectReason.CLUSTER_LIST_LOOP
        if not peer.ibgp:
            asn = self._table_of(peer.address).asn
            if attrs.as_path.contains(asn) and not self._allowas_in(attrs, peer, asn):
                return RejectReason.AS_PATH_LOOP
        return None

    def _allowas_in(self, attrs: PathAttributes, peer: PeerState, asn: int) -> bool:
        """FRR ``allowas-in N`` (our ASN at most N times) and ``allowas-in origin`` (only as the origin AS)."""
        neighbor = self._neighbors.get(peer.address)
        if neighbor is None:
            return False
        asns = [a for seg in attrs.as_path.segments for a in seg.asns]
        if neighbor.allowas_in and asns.count(asn) <= neighbor.allowas_in:
            return True
        if neighbor.allowas_in_origin:
            while asns and asns[-1] == asn:
                asns.pop()
            return asn not in asns
        return False

    def _rewriter_cluster_id(self) -> ipaddress.IPv4Address:
        u = self._config.underlay
        return u.cluster_id if u.cluster_id is not None else u.router_id

    def _targets(self, attrs: PathAttributes) -> Targets:
        """L2VNIs and L3VNIs whose import RTs match (FRR wildcard ``*:N`` matches the assigned part)."""
        hit = self._tcache.get(id(attrs))
        if hit is not None and hit[0] is attrs:
            return hit[1]
        l2: list[int] = []
        l3: list[int] = []
        exact = self._import_exact
        wild = self._import_wild
        for rt in attrs.route_targets:
            for kind, vni in (*exact.get(rt, ()), *wild.get(rt.assigned, ())):
                target = l2 if kind == 2 else l3
                if vni not in target:
                    target.append(vni)
        result: Targets = (tuple(l2), tuple(l3))
        if len(self._tcache) > 4096:
            self._tcache.clear()
        self._tcache[id(attrs)] = (attrs, result)
        return result

    def _ingest(
        self, peer: PeerState, routes: tuple[Route, ...], attrs: PathAttributes, nh: IPAddress, now: float
    ) -> None:
        """Announcements of one UPDATE: rank and import targets are computed once for all of them."""
        rank = path_rank(attrs, peer.address, not peer.ibgp, peer.router_id)
        held = self._nht and not self._reachable(nh)
        l2, l3 = ((), ()) if nh == self._vtep else self._targets(attrs)
        if l3 and attrs.router_mac is None:
            l3 = ()
            for route in routes:  # only routes the IP-VRF would have imported are worth a notice
                if isinstance(route, IpPrefixRoute) or (
                    isinstance(route, MacIpRoute) and route.ip is not None
                ):
                    self._notices.append(RouteRejected(peer.address, route, RejectReason.NO_ROUTER_MAC))
                    break
        adj_in = peer.adj_in
        stale = peer.stale
        put = self._rib.put
        address = peer.address
        # nobody may receive paths of this peer (e.g. an iBGP non-client, no eBGP peer): a new key needs
        # no Adj-RIB-Out work unless we originate the same key
        quiet = not any(may_export(peer, p) for p in self._up)
        local = self._local
        for route in routes:
            cls = type(route)
            if cls is IpPrefixRoute:
                assert isinstance(route, IpPrefixRoute)
                if route.label == 0 and route.gateway is None:
                    self._drop(peer, route_key(route), now)
                    self._notices.append(RouteRejected(address, route, RejectReason.TREAT_AS_WITHDRAW))
                    continue
            elif cls is not MacIpRoute and not isinstance(route, _EVPN_TYPES):
                continue
            key = route_key(route)  # type: ignore[arg-type]
            old = adj_in.get(key)
            path = new_path((address, route, attrs, nh, rank, l2, l3))
            adj_in[key] = path
            if stale:
                stale.discard(key)
            if held:  # next hop unreachable: kept in the Adj-RIB-In, out of best-path selection (FRR NHT)
                if old is not None and self._in_rib(old):
                    before, after = self._rib.drop(key, old)
                    if before is not after:
                        self._best_changed(key, before, after, now)
                continue
            if old is not None and self._nht and not self._in_rib(old):
                old = None
            before, after = put(key, path, old)
            if before is not after:
                self._best_changed(
                    key, before, after, now, not (quiet and before is None and key not in local)
                )

    def _withdrawn(self, peer: PeerState, routes: tuple[Route, ...], now: float) -> None:
        """Withdrawals of one UPDATE (``_drop`` for each, with the export decision made once)."""
        adj_in = peer.adj_in
        stale = peer.stale
        drop = self._rib.drop
        nht = self._nht
        # nobody may receive paths of this peer: a key whose last path goes away was in no Adj-RIB-Out
        # (unless we originate it too), as in _ingest
        quiet = not any(may_export(peer, p) for p in self._up)
        local = self._local
        for route in routes:
            if not isinstance(route, _EVPN_TYPES):
                if isinstance(route, _UNICAST):
                    self._unicast_drop(peer, route, now)
                continue
            key = route_key(route)
            old = adj_in.pop(key, None)
            if old is None:
                continue
            if stale:
                stale.discard(key)
            if nht and not self._in_rib(old):
                continue
            before, after = drop(key, old)
            if before is not after:
                self._best_changed(
                    key, before, after, now, not (quiet and after is None and key not in local)
                )

    def _drop(self, peer: PeerState, key: RouteKey, now: float) -> None:
        old = peer.adj_in.pop(key, None)
        if old is None:
            return
        peer.stale.discard(key)
        if self._nht and not self._in_rib(old):
            return
        before, after = self._rib.drop(key, old)
        if before is not after:
            self._best_changed(key, before, after, now)

    def _best_changed(
        self, key: RouteKey, before: Path | None, after: Path | None, now: float, export: bool = True
    ) -> None:
        kind = key[0]
        if kind == 2:
            if before is None or after is None:  # fast path: a new or a gone route (as _import_l2/_l3)
                path = after if before is None else before
                assert path is not None
                vrfs = self.mac_vrfs
                for vni in path.l2:
                    vrfs[vni].remote(before, after, now, key)
                if path.l3 and key[4]:  # a host route (RFC 9135): fast_ip.host_key from the key's IP
                    ipi: int = key[5]  # type: ignore[assignment]
                    pkey = ipi if key[4] == 4 else ipi | 1 << 128
                    ip_vrfs = self.ip_vrfs
                    for vni in path.l3:
                        ip_vrfs[vni].remote(pkey, before, after)
            else:
                self._import_l2(key, before, after, now)
                if (before is not None and before.l3) or (after is not None and after.l3):
                    self._import_l3(before, after)
        elif kind == 3:
            ref = after if after is not None else before
            assert ref is not None
            for vni in ref.l2 if before is None or after is None else {*before.l2, *after.l2}:
                vrf = self.mac_vrfs.get(vni)
                if vrf is not None:
                    vrf.flood(key, after if after is not None and vni in after.l2 else None)
        elif kind == 5:
            self._import_l3(before, after)
        if export:
            self._export(key)

    def _import_l2(self, key: RouteKey, before: Path | None, after: Path | None, now: float) -> None:
        vrfs = self.mac_vrfs
        if before is None:
            assert after is not None
            for vni in after.l2:
                vrfs[vni].remote(None, after, now, key)
            return
        if after is None:
            for vni in before.l2:
                vrfs[vni].remote(before, None, now, key)
            return
        if before.l2 == after.l2:
            for vni in after.l2:
                vrfs[vni].remote(before, after, now, key)
            return
        for vni in {*before.l2, *after.l2}:
            vrfs[vni].remote(
                before if vni in before.l2 else None, after if vni in after.l2 else None, now, key
            )

    @staticmethod
    def _l3_prefix(path: Path | None) -> int | None:
        """The IP-VRF prefix of a path, as its ``prefix_key``: a type-5 prefix, or the host route of a
        MAC+IP route (RFC 9135)."""
        if path is None or not path.l3:
            return None
        route = path.route
        if isinstance(route, IpPrefixRoute):
            return prefix_key(route.prefix)
        if isinstance(route, MacIpRoute) and route.ip is not None:
            return host_key(route.ip)
        return None

    def _import_l3(self, before: Path | None, after: Path | None) -> None:
        if before is None:  # fast path: a new route
            if after is None or not after.l3:
                return
            route = after.route
            if type(route) is MacIpRoute:
                ip = route.ip
                key = host_key(ip) if ip is not None else None
            else:
                key = self._l3_prefix(after)
            if key is not None:
                for vni in after.l3:
                    self.ip_vrfs[vni].remote(key, None, after)
                if self._host_tables:
                    self._touch_vrfs(after.l3, path_prefix(after))
            return
        old_key = self._l3_prefix(before)
        new_key = self._l3_prefix(after)
        if old_key is None and new_key is None:
            return
        vnis = set(before.l3 if old_key is not None else ())
        vnis.update(after.l3 if new_key is not None and after is not None else ())
        for vni in vnis:
            vrf = self.ip_vrfs[vni]
            old_in = old_key is not None and vni in before.l3
            new_in = new_key is not None and after is not None and vni in after.l3
            key = new_key if new_in else old_key
            assert key is not None
            vrf.remote(key, before if old_in else None, after if new_in else None)
            if self._host_tables:
                changed = after if new_in else before
                assert changed is not None
                self._touch_vrfs((vni,), path_prefix(changed))

    # ---- internals: IPv4/IPv6 unicast (the default instance, host sessions) ----------------------------

    def _table_of(self, address: IPAddress) -> UnicastTable:
        """The instance of a peer: its neighbor's VRF (a host session), else the default one."""
        neighbor = self._neighbors.get(address)
        if neighbor is None or neighbor.vrf is None:
            return self._default_table
        return self._tables.get(neighbor.vrf, self._default_table)

    def _unicast_start(self, now: float) -> None:
        """``network`` statements: the VTEP /32 (/128) in the default instance (OpenPERouter announces it so
        remote VTEPs need no other routing), and each host session's veth subnet in its instance."""
        u = self._config.underlay
        local: list[tuple[UnicastTable, IPNetwork]] = []
        if u.announce_vtep:
            local.extend(
                (self._default_table, host_prefix(v)) for v in (u.vtep_ipv4, u.vtep_ipv6) if v is not None
            )
        if self._config.passthrough is not None:
            local.extend((self._default_table, c) for c in self._config.passthrough.cidrs())
        for l3 in self._config.l3vnis:
            if l3.host_session is not None:
                local.extend((self._tables[l3.vrf], c) for c in l3.host_session.cidrs())
        for table, prefix in local:
            unspecified = ipaddress.ip_address(0 if prefix.version == 4 else "::")
            path = UnicastPath(None, prefix, _LOCAL_UNICAST_ATTRS, unspecified, _LOCAL_RANK)
            before, after = table.put(path, None)
            if before is not after:
                self._unicast_changed(table, prefix, before, after, now)

    def _unicast_ingest(
        self, peer: PeerState, routes: tuple[Route, ...], attrs: PathAttributes, nh: IPAddress, now: float
    ) -> None:
        table = self._table_of(peer.address)
        rank = path_rank(attrs, peer.address, not peer.ibgp, peer.router_id)
        held = peer.unicast_in
        stale = peer.stale
        for prefix in routes:
            if not isinstance(prefix, _UNICAST):
                continue
            old = held.get(prefix)
            path = UnicastPath(peer.address, prefix, attrs, nh, rank)
            held[prefix] = path
            if stale:
                stale.discard((0, prefix))
            before, after = table.put(path, old)
            if before is not after:
                self._unicast_changed(table, prefix, before, after, now)

    def _unicast_drop(self, peer: PeerState, prefix: IPNetwork, now: float) -> None:
        old = peer.unicast_in.pop(prefix, None)
        if old is None:
            return
        peer.stale.discard((0, prefix))
        table = self._table_of(peer.address)
        before, after = table.drop(old)
        if before is not after:
            self._unicast_changed(table, prefix, before, after, now)

    def _unicast_changed(
        self,
        table: UnicastTable,
        prefix: IPNetwork,
        before: UnicastPath | None,
        after: UnicastPath | None,
        now: float,
    ) -> None:
        """The best path of ``prefix`` changed: kernel route, next-hop tracking, type-5 export, peers."""
        old_nh = before.next_hop if before is not None and before.from_peer else None
        new_nh = after.next_hop if after is not None and after.from_peer else None
        if old_nh != new_nh:
            vrf = table.vrf or ""
            if old_nh is not None:
                self.journal.remove(UnicastRouteEntry(vrf, prefix, old_nh))
            if new_nh is not None:
                self.journal.add(UnicastRouteEntry(vrf, prefix, new_nh))
        if table is self._default_table:
            if before is None:
                self._bgp_index.add(prefix)
            elif after is None:
                self._bgp_index.discard(prefix)
            if self._nht and (before is None or after is None):
                self._recheck_next_hops(now)
        elif table.l3vni is not None:
            self._host_export(table.l3vni, prefix, after if after is not None and after.from_peer else None)
        self._unicast_advertise(table, prefix)

    def _host_export(self, l3vni: int, prefix: IPNetwork, path: UnicastPath | None) -> None:
        """A host-session route becomes a type-5 route of the L3VNI (FRR ``advertise ipv4 unicast`` in the
        VRF, RFC 9136 §4.4.1): our RD, RTs and Router's MAC, the host's ORIGIN and AS_PATH. A prefix we
        originate from the configuration (a gateway subnet, the veth subnet) keeps its own route."""
        key = (l3vni, prefix)
        old = self._host_exports.get(key)
        route, _ = self._orig.prefix(l3vni, prefix)
        configured = key in self._local_prefixes
        if path is None:
            if old is not None:
                del self._host_exports[key]
                if not configured:
                    self._withdraw_local(route_key(route))
                    self.ip_vrfs[l3vni].set_local(prefix, False)
            return
        attrs = self._orig.prefix_from_host(l3vni, path.attrs)
        self._host_exports[key] = attrs
        if configured:
            return
        self._originate(route, attrs)
        if old is None:
            self.ip_vrfs[l3vni].set_local(prefix, True)

    def _unicast_peers(self, table: UnicastTable, version: int) -> list[PeerState]:
        family = Family.IPV4_UNICAST if version == 4 else Family.IPV6_UNICAST
        return [
            p
            for p in self._peers.values()
            if p.up and family in p.families and self._table_of(p.address) is table
        ]

    def _unicast_advertise(self, table: UnicastTable, prefix: IPNetwork) -> None:
        peers = self._unicast_peers(table, prefix.version)
        if not peers:
            return
        best = table.best(prefix)
        for peer in peers:
            self._out.set(peer, (0, prefix), self._unicast_entry(table, prefix, best, peer))

    def _unicast_peer_up(self, peer: PeerState) -> None:
        """A new session gets the whole unicast table of its instance for the families it negotiated."""
        table = self._table_of(peer.address)
        for prefix in list(table.candidates):
            family = Family.IPV4_UNICAST if prefix.version == 4 else Family.IPV6_UNICAST
            if family in peer.families:
                entry = self._unicast_entry(table, prefix, table.best(prefix), peer)
                if entry is not None:
                    self._out.set(peer, (0, prefix), entry)

    def _unicast_entry(
        self, table: UnicastTable, prefix: IPNetwork, best: UnicastPath | None, to: PeerState
    ) -> tuple[Route, PathAttributes, IPAddress] | None:
        """What ``to`` gets for ``prefix`` (RFC 4271 §9.1.3, §5.1.3): the best path unless split horizon or
        iBGP rules forbid it (a route imported from EVPN counts as ours).
        Next hop: unchanged between iBGP peers, else ours on the session (next-hop-self; also for routes
        from a host session sent to the iBGP underlay: every node uses the same veth subnet, so the host's
        address would not lead back to this node)."""
        rewriter = self._unicast_rewriters.get(table.asn)
        if rewriter is None:
            rewriter = self._unicast_rewriters[table.asn] = AttributeRewriter(
                table.asn, self._rewriter_cluster_id()
            )
        if best is None:
            return None
        source = self._peers.get(best.peer) if best.peer is not None else None
        if source is not None and not may_export(source, to):
            return None
        nh = best.next_hop if source is not None and source.ibgp and to.ibgp else _self_next_hop(to, prefix)
        if nh is None:
            return None
        return (prefix, rewriter.rewrite_attrs(best.attrs, source, to), nh)

    def _to_host(self, attrs: PathAttributes) -> PathAttributes:
        """An EVPN path's attributes as a unicast route: ORIGIN and AS_PATH; EVPN communities stay behind."""
        hit = self._evpn_to_host.get(id(attrs))
        if hit is not None and hit[0] is attrs:
            return hit[1]
        out = PathAttributes(origin=attrs.origin, as_path=attrs.as_path, med=attrs.med)
        if len(self._evpn_to_host) > 4096:
            self._evpn_to_host.clear()
        self._evpn_to_host[id(attrs)] = (attrs, out)
        return out

    def _touch_vrfs(self, l3vnis: Iterable[int], prefix: IPNetwork) -> None:
        for vni in l3vnis:
            if vni in self._host_tables:
                self._vrf_touched[(vni, prefix)] = None

    def _sync_vrf_imports(self, now: float) -> None:
        """The IP-VRF's best EVPN candidate of each touched prefix becomes the ``imported`` path of the
        host-session VRF's table, where it competes with the host's paths (RFC 4271 §9.1.2: a route the host
        echoes back, with a longer AS path, must not win over the EVPN route it came from)."""
        while self._vrf_touched:
            touched, self._vrf_touched = self._vrf_touched, {}
            for l3vni, prefix in touched:
                table = self._host_tables[l3vni]
                remote = self.ip_vrfs[l3vni].remote_best(prefix)
                candidates = table.candidates.get(prefix, ())
                old = next((p for p in candidates if p.imported), None)
                if remote is None:
                    if old is None:
                        continue
                    before, after = table.drop(old)
                else:
                    attrs = self._to_host(remote.attrs)
                    if old is not None and old.attrs is attrs and old.next_hop == remote.next_hop:
                        continue
                    rank = path_rank(attrs, remote.next_hop, False, None)
                    path = UnicastPath(None, prefix, attrs, remote.next_hop, rank, True)
                    before, after = table.put(path, old)
                if before is not after:
                    self._unicast_changed(table, prefix, before, after, now)

    # ---- internals: next-hop tracking ----------------------------------------------------------------

    def _set_kernel_routes(self, prefixes: frozenset[IPNetwork]) -> None:
        self._kernel_prefixes = prefixes
        index = PrefixIndex()
        for prefix in prefixes:
            index.add(prefix)
        self._kernel_index = index

    def _resolve(self, nh: IPAddress) -> IPNetwork | None:
        """The longest route covering ``nh``, from the kernel's main table or BGP (zebra's NHT)."""
        via_default = self._nht_via_default
        kernel = self._kernel_index.lookup(nh, allow_default=via_default)
        bgp = self._bgp_index.lookup(nh, allow_default=via_default)
        if kernel is None or (bgp is not None and bgp.prefixlen > kernel.prefixlen):
            return bgp
        return kernel

    def _reachable(self, nh: IPAddress) -> bool:
        if nh == self._vtep:
            return True
        if nh not in self._nh_state:
            via = self._nh_state[nh] = self._resolve(nh)
            if via is None:
                self._notices.append(NextHopChanged(nh, False, None, 0))
            return via is not None
        return self._nh_state[nh] is not None

    def _in_rib(self, path: Path) -> bool:
        """Whether a received path takes part in best-path selection (its next hop resolves)."""
        return not self._nht or path.next_hop == self._vtep or self._nh_state.get(path.next_hop) is not None

    def _recheck_next_hops(self, now: float) -> None:
        """Routes changed: paths whose next hop became (un)reachable enter or leave best-path selection."""
        for nh, state in list(self._nh_state.items()):
            via = self._resolve(nh)
            self._nh_state[nh] = via
            if (via is None) == (state is None):
                continue
            moved = 0
            for peer in list(self._peers.values()):
                for key, path in list(peer.adj_in.items()):
                    if path.next_hop != nh:
                        continue
                    moved += 1
                    if via is not None:
                        before, after = self._rib.put(key, path, None)
                    else:
                        before, after = self._rib.drop(key, path)
                    if before is not after:
                        self._best_changed(key, before, after, now)
            self._notices.append(NextHopChanged(nh, via is not None, via, moved))

    def _finish(self, now: float) -> CoreOutput:
        if self._vrf_touched:
            self._sync_vrf_imports(now)
        delta = self.journal.take_delta()
        advertise, withdraw = self._out.build()
        notices = tuple(self._notices)
        self._notices.clear()
        if not advertise and not withdraw and not delta and not notices:
            return _EMPTY_OUTPUT
        return CoreOutput(advertise, withdraw, delta, notices)


_EMPTY_OUTPUT = CoreOutput()


def _configured_prefixes(config: SpeakerConfig) -> dict[tuple[int, IPNetwork], None]:
    """(L3VNI, prefix) originated as type-5 from the configuration: gateway subnets, host-session subnets."""
    out = gateway_prefixes(config)
    for l3 in config.l3vnis:
        if l3.host_session is not None:
            for cidr in l3.host_session.cidrs():
                out[(l3.vni, cidr)] = None
    return out


def _key_family(key: RouteKey) -> Family:
    if key[0] == 0:
        prefix = key[1]
        return Family.IPV4_UNICAST if isinstance(prefix, ipaddress.IPv4Network) else Family.IPV6_UNICAST
    return Family.L2VPN_EVPN


def _self_next_hop(to: PeerState, prefix: IPNetwork) -> IPAddress | None:
    """Our address on the session to ``to`` as next hop for ``prefix``; an IPv6 route over an IPv4 session
    gets the IPv4-mapped address (RFC 4291 §2.5.5.2), an IPv4 route over IPv6 none."""
    local = to.local_address
    if local is None:
        return None
    if local.version == prefix.version:
        return local
    if prefix.version == 6 and isinstance(local, ipaddress.IPv4Address):
        return ipaddress.IPv6Address("::ffff:" + str(local))
    return None


new_path: Callable[[tuple[object, ...]], Path] = functools.partial(tuple.__new__, Path)
"""``Path(*fields)`` without the NamedTuple's Python-level ``__new__`` and without a Python call of its own
(hot path: one per received route)."""
