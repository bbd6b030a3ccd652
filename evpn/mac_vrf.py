"""MAC-VRF of one L2VNI: local and remote MACs, MAC mobility and duplicate detection (RFC 7432 §15).

State is kept per MAC and per IP in dicts, so every event costs O(1) plus the few paths of that one MAC:
there is never a scan of the table (GoBGP's per-path scan is what made it O(N²), DESIGN §8).

Rules (RFC 7432 §15, FRR ``zebra_evpn_mac.c``):
- A MAC learned locally while a remote route for it exists is advertised with seq = remote seq + 1.
- A remote route with a higher sequence (or sticky, against a non-sticky local MAC) wins: our local route is
  withdrawn and the remote FDB entry installed. Equal sequences: the lowest VTEP address wins (§15.1).
- A sticky MAC never moves (§15.2): a non-sticky route or learn against it is ignored (StickyMacConflict).
- Among remote routes: sticky, higher sequence, lowest VTEP, then the BGP decision (``candidate_order``).
- A move is a change of location to a sequence at least as high as before. ``max_moves`` moves within
  ``window`` seconds mark the MAC duplicate: its local route is no longer advertised. With ``freeze`` the MAC
  is also pinned where it is (new locations are ignored) until ``freeze_time`` passes (never if unset).
  Without freeze, the duplicate flag clears ``window`` seconds after detection.
- Remote MAC+IP routes give neighbour entries (ARP/ND suppression) unless the IP is local.

Memory: most MACs and IPs are known from remote routes only, and their whole state is their candidates. Such
a MAC (or IP) is held as its candidates, the ``PathSet`` (one route's ``Path`` itself, or a list), not as a
state object: ``MacState.of_pathset`` / ``IpState.of_pathset`` expand it when anything else happens to it,
and a state that becomes candidates only again is folded back. Installed entries are not stored: they are
rebuilt from the state when removed. Per received route the garbage collector so tracks no object of the
MAC-VRF's own.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from evpn.codec.evpn_nlri import InclusiveMulticastRoute, IPAddress, MacIpRoute
from evpn.codec.pmsi import PmsiTunnelType
from evpn.config import DuplicateDetection
from evpn.dataplane_state import DataplaneEntry, FloodEntry, fdb_entry, neigh_entry
from evpn.desired import DeltaJournal
from evpn.fast_ip import ip_key
from evpn.mac import MacAddress
from evpn.notices import (
    MacDuplicate,
    MacDuplicateCleared,
    MacFrozen,
    MacMoved,
    Notice,
    StickyMacConflict,
)
from evpn.rib import (
    Path,
    PathSet,
    RouteKey,
    address_key,
    candidate_order,
    pathset_add,
    pathset_best,
    pathset_iter,
    pathset_remove,
)

LOCAL = "local"
"""Location of a MAC learned on this node (otherwise the VTEP address, or None)."""

Location = IPAddress | str | None

__all__ = ["LOCAL", "Advert", "DadState", "IpState", "Location", "MacState", "MacVrf", "MacVrfSink", "ip_key"]


class Advert(NamedTuple):
    """What we advertise for a local MAC: its sequence, sticky flag and local IPs (MAC+IP routes)."""

    seq: int
    sticky: bool
    ips: frozenset[IPAddress]


class MacVrfSink(Protocol):
    """What a MAC-VRF reports to the core."""

    @property
    def journal(self) -> DeltaJournal: ...

    def notice(self, notice: Notice) -> None: ...

    def local_advert(self, vni: int, mac: MacAddress, old: Advert | None, new: Advert | None) -> None: ...

    def local_host(self, vni: int, ip: IPAddress, active: bool) -> None: ...

    def schedule(self, when: float, vni: int, mac: MacAddress) -> None: ...


class MacState:
    """Everything known about one MAC of one VNI; kept only while that is more than its remote candidates
    (local, sequence, duplicate-detection state or local IPs; see ``as_pathset``)."""

    __slots__ = (
        "advert",
        "dad",
        "ips",
        "loc",
        "loc_seq",
        "local",
        "mac",
        "remotes",
        "seq",
        "sticky",
    )

    def __init__(self, mac: MacAddress) -> None:
        self.mac = mac
        self.local = False
        self.sticky = False
        self.seq = 0
        self.ips: set[IPAddress] | None = None
        self.remotes: PathSet = None
        self.loc: Location = None
        """LOCAL, the VTEP the MAC is installed toward (its FDB entry), or None."""
        self.loc_seq = 0
        self.advert: Advert | None = None
        self.dad: DadState | None = None
        """Duplicate-detection counters, created at the first move (most MACs never move)."""

    @classmethod
    def of_pathset(cls, held: Candidates) -> MacState:
        """What a compact entry stands for: a MAC known only from remote routes, installed toward the best."""
        best = _best(held)
        st = cls(_route(best).mac)
        st.remotes = held
        st.loc = best.next_hop
        st.loc_seq = -best.rank[1]
        return st

    def as_pathset(self) -> Candidates | None:
        """The compact entry standing for this state (the inverse of ``of_pathset``), if there is one."""
        held = self.remotes
        if (
            held is None
            or self.local
            or self.sticky
            or self.seq
            or self.ips
            or self.advert is not None
            or self.dad is not None
        ):
            return None
        best = _best(held)
        if self.loc != best.next_hop or self.loc_seq != -best.rank[1]:
            return None
        return held

    @property
    def vtep(self) -> IPAddress | None:
        """The VTEP of the installed FDB entry (the location, when remote)."""
        loc = self.loc
        return None if loc is None or isinstance(loc, str) else loc

    @property
    def dup(self) -> bool:
        return self.dad is not None and self.dad.dup

    @property
    def frozen(self) -> bool:
        return self.dad is not None and self.dad.frozen

    def is_empty(self) -> bool:
        return not (self.local or self.remotes is not None or self.ips or self.dup or self.loc is not None)


class DadState:
    """Moves of one MAC within the detection window, and its duplicate / frozen state."""

    __slots__ = ("dup", "frozen", "moves", "until", "window_start")

    def __init__(self) -> None:
        self.moves = 0
        self.window_start: float | None = None
        self.dup = False
        self.frozen = False
        self.until: float | None = None


class IpState:
    """One IP of the VNI: the local MAC it is bound to, remote MAC+IP paths, the installed neighbour; kept
    only while the IP is bound to a local MAC."""

    __slots__ = ("ip", "local_mac", "neigh", "remotes")

    def __init__(self, ip: IPAddress) -> None:
        self.ip = ip
        self.local_mac: MacAddress | None = None
        self.remotes: PathSet = None
        self.neigh: MacAddress | None = None
        """The MAC of the installed neighbour entry, if any."""

    @classmethod
    def of_pathset(cls, held: Candidates) -> IpState:
        """What a compact entry stands for: an IP known only from remote routes, not bound to a local MAC,
        its neighbour installed toward the best one's MAC."""
        route = _route(_best(held))
        assert route.ip is not None
        ist = cls(route.ip)
        ist.remotes = held
        ist.neigh = route.mac
        return ist


Candidates = Path | list[Path]
"""A compact entry: the remote candidates of a MAC or IP that has no other state (a non-empty PathSet)."""


def _best(held: Candidates) -> Path:
    return held if not isinstance(held, list) else min(held, key=candidate_order)


def _route(path: Path) -> MacIpRoute:
    route = path.route
    assert isinstance(route, MacIpRoute)
    return route


class MacVrf:
    """The MAC-VRF of one L2VNI."""

    __slots__ = (
        "_dad",
        "_flood_refs",
        "_floods",
        "_ignored",
        "_journal",
        "_sink",
        "_vtep_key",
        "ips",
        "macs",
        "vni",
        "vtep",
    )

    def __init__(
        self,
        vni: int,
        vtep: IPAddress,
        dad: DuplicateDetection,
        sink: MacVrfSink,
        ignored_macs: frozenset[bytes] = frozenset(),
    ) -> None:
        self.vni = vni
        self.vtep = vtep
        self._vtep_key = address_key(vtep)
        self._dad = dad
        self._sink = sink
        self._journal = sink.journal
        """The sink's journal (hot path: one lookup less per entry)."""
        self._ignored = ignored_macs
        self.macs: dict[bytes, MacState | Candidates] = {}
        """Keyed by the MAC's 6 bytes (their hash is cached; a MacAddress hashes through Python code); a
        Path or list is a compact entry (``MacState.of_pathset``)."""
        self.ips: dict[int, IpState | Candidates] = {}
        """Keyed by ``ip_key(ip)`` (an int: hashing an ipaddress object formats a string); a Path or list is
        a compact entry (``IpState.of_pathset``)."""
        self._floods: dict[RouteKey, FloodEntry] = {}
        self._flood_refs: dict[FloodEntry, int] = {}

    def rebind(self, sink: MacVrfSink) -> None:
        """Report to another sink (the core adopting this VRF after a reconfigure)."""
        self._sink = sink
        self._journal = sink.journal

    def _state(self, packed: bytes) -> MacState | None:
        """The state of a MAC, a compact entry expanded (and stored) first."""
        held = self.macs.get(packed)
        if held is None or isinstance(held, MacState):
            return held
        st = self.macs[packed] = MacState.of_pathset(held)
        return st

    def _ip_state(self, key: int) -> IpState | None:
        """The state of an IP, a compact entry expanded (and stored) first."""
        held = self.ips.get(key)
        if held is None or isinstance(held, IpState):
            return held
        ist = self.ips[key] = IpState.of_pathset(held)
        return ist

    # ---- local learning -------------------------------------------------------------------------------

    def learn(self, mac: MacAddress, sticky: bool, now: float, restore_seq: int | None = None) -> None:
        """A MAC seen on a local port (RFC 7432 §15.1: seq = remote seq + 1 when it was remote).

        ``restore_seq`` re-creates a local MAC with the sequence it already had (reconfiguration).
        Our own anycast gateway MAC is not a host: it is only advertised by ``advertise_gateway``."""
        if mac.packed in self._ignored:
            return
        st = self._state(mac.packed)
        if st is None:
            st = self.macs[mac.packed] = MacState(mac)
        if restore_seq is not None:
            st.seq = restore_seq
            st.local = True
            st.sticky = sticky
            self._resolve(mac, st, now)
            return
        if st.frozen:
            return
        if st.loc is LOCAL and st.local:
            if st.sticky != sticky:  # the flag changed: a remote sticky route may win now (§15.2)
                st.sticky = sticky
                self._resolve(mac, st, now)
            return
        best = pathset_best(st.remotes)
        if best is not None and best.rank[0] == 0 and not sticky:
            self._sink.notice(StickyMacConflict(self.vni, mac, best.next_hop, None))
            return
        st.local = True
        st.sticky = sticky
        if best is not None and best.sequence >= st.seq:
            st.seq = best.sequence + 1
        self._resolve(mac, st, now)

    def age(self, mac: MacAddress, now: float) -> None:
        st = self.macs.get(mac.packed)
        if not isinstance(st, MacState) or not st.local:
            return
        st.local = False
        st.sticky = False
        self._resolve(mac, st, now)

    def neigh_learned(self, ip: IPAddress, mac: MacAddress, now: float) -> None:
        """A local IP-to-MAC binding: a MAC+IP route while the MAC is local (RFC 7432 §7.2)."""
        key = ip_key(ip)
        ist = self._ip_state(key)
        if ist is None:
            ist = self.ips[key] = IpState(ip)
        if ist.local_mac == mac:
            return
        if ist.local_mac is not None:
            self._unbind(ip, ist)
        ist.local_mac = mac
        st = self._state(mac.packed)
        if st is None:
            st = self.macs[mac.packed] = MacState(mac)
        if st.ips is None:
            st.ips = set()
        st.ips.add(ip)
        if st.loc is LOCAL:
            self._sink.local_host(self.vni, ip, True)
            self._refresh_advert(mac, st)
        self._refresh_ip(ip, ist)

    def neigh_removed(self, ip: IPAddress, now: float) -> None:
        ist = self.ips.get(ip_key(ip))
        if not isinstance(ist, IpState) or ist.local_mac is None:
            return
        self._unbind(ip, ist)
        self._refresh_ip(ip, ist)

    def _unbind(self, ip: IPAddress, ist: IpState) -> None:
        mac = ist.local_mac
        ist.local_mac = None
        if mac is None:
            return
        st = self.macs.get(mac.packed)
        if not isinstance(st, MacState) or st.ips is None:
            return
        st.ips.discard(ip)
        if not st.ips:
            st.ips = None
        if st.loc is LOCAL:
            self._sink.local_host(self.vni, ip, False)
            self._refresh_advert(mac, st)
        elif st.is_empty():
            del self.macs[mac.packed]

    # ---- remote routes --------------------------------------------------------------------------------

    def remote(self, old: Path | None, new: Path | None, now: float, key: RouteKey) -> None:
        """The best path of the type-2 route key ``key`` (``evpn.rib.route_key``) changed from ``old`` to
        ``new`` (either may be None)."""
        ref = new if new is not None else old
        if ref is None:
            return
        route = ref.route
        assert isinstance(route, MacIpRoute)
        mac = route.mac
        packed = mac.packed
        if packed in self._ignored:
            return
        macs = self.macs
        held = macs.get(packed)
        if held is None:
            if new is None:
                return
            # fast path, same outcome as _resolve: a MAC seen for the first time goes where it is announced
            macs[packed] = new
            self._journal.add(fdb_entry(self.vni, mac, new.next_hop))
        elif held is old and old is not None and (new is None or new.next_hop == old.next_hop):
            # fast paths on a compact entry: its route is gone, or replaced toward the same VTEP
            if new is None:
                del macs[packed]
                self._journal.remove(fdb_entry(self.vni, mac, old.next_hop))
            else:
                macs[packed] = new
        else:
            st = held if isinstance(held, MacState) else self._state(packed)
            assert st is not None
            if old is not None:
                st.remotes = pathset_remove(st.remotes, old)
            if new is not None:
                st.remotes = pathset_add(st.remotes, new)
                if st.loc is LOCAL and st.sticky and new.rank[0] != 0:
                    self._sink.notice(StickyMacConflict(self.vni, mac, None, new.next_hop))
            self._resolve(mac, st, now)
        ip = route.ip
        if ip is not None:
            ipi: int = key[5]  # type: ignore[assignment]
            ikey = ipi if key[4] == 4 else ipi | 1 << 128  # ip_key(ip), from the int the route key holds
            ips = self.ips
            iheld = ips.get(ikey)
            if iheld is None:
                if new is None:
                    return
                # fast path, same outcome as _refresh_ip: a new IP, not local, one remote binding
                ips[ikey] = new
                self._journal.add(neigh_entry(self.vni, ip, mac))
                return
            if iheld is old:  # a compact entry: same route key, so the same MAC
                if new is None:
                    del ips[ikey]
                    self._journal.remove(neigh_entry(self.vni, ip, mac))
                else:
                    ips[ikey] = new
                return
            if not isinstance(iheld, IpState):
                self._remote_ip_candidates(ip, ikey, iheld, old, new)
                return
            ist = iheld
            if old is not None:
                ist.remotes = pathset_remove(ist.remotes, old)
            if new is not None:
                ist.remotes = pathset_add(ist.remotes, new)
            self._refresh_ip(ip, ist)

    def _remote_ip_candidates(
        self, ip: IPAddress, ikey: int, held: Candidates, old: Path | None, new: Path | None
    ) -> None:
        """``remote`` for an IP held as a compact entry: the neighbour follows the best candidate (the
        outcome of ``_refresh_ip`` for an IP without a local binding)."""
        before = _best(held)
        after: PathSet = held
        if old is not None:
            after = pathset_remove(after, old)
        if new is not None:
            after = pathset_add(after, new)
        if after is None:
            del self.ips[ikey]
            self._journal.remove(neigh_entry(self.vni, ip, _route(before).mac))
            return
        self.ips[ikey] = after
        old_mac, new_mac = _route(before).mac, _route(_best(after)).mac
        if old_mac != new_mac:
            self._journal.add(neigh_entry(self.vni, ip, new_mac))
            self._journal.remove(neigh_entry(self.vni, ip, old_mac))

    def flood(self, key: RouteKey, new: Path | None) -> None:
        """The best type-3 path of ``key`` changed: one flood entry per remote VTEP (RFC 8365 §9)."""
        old_entry = self._floods.pop(key, None)
        entry: FloodEntry | None = None
        if new is not None:
            route = new.route
            assert isinstance(route, InclusiveMulticastRoute)
            vtep: IPAddress = route.originator
            pmsi = new.attrs.pmsi
            if (
                pmsi is not None
                and pmsi.tunnel_type == PmsiTunnelType.INGRESS_REPLICATION
                and not isinstance(pmsi.tunnel_id, bytes)
            ):
                vtep = pmsi.tunnel_id
            entry = FloodEntry(self.vni, vtep)
            self._floods[key] = entry
        if old_entry == entry:
            return
        refs = self._flood_refs
        journal = self._journal
        if entry is not None:
            count = refs.get(entry, 0)
            refs[entry] = count + 1
            if count == 0:
                journal.add(entry)
        if old_entry is not None:
            count = refs[old_entry] - 1
            if count:
                refs[old_entry] = count
            else:
                del refs[old_entry]
                journal.remove(old_entry)

    def adopt_duplicate_state(self, old: MacVrf) -> None:
        """Carry duplicate-detection state over from the VRF this one replaces (reconfiguration)."""
        for key, ost in old.macs.items():
            if not isinstance(ost, MacState) or ost.dad is None:
                continue
            st = self._state(key)
            if st is None:
                continue
            st.dad = ost.dad
            if st.dad.dup and st.dad.until is not None:
                self._sink.schedule(st.dad.until, self.vni, st.mac)
            self._refresh_advert(st.mac, st)

    # ---- timers ---------------------------------------------------------------------------------------

    def expire(self, mac: MacAddress, now: float, force: bool = False) -> None:
        """Duplicate/freeze timer of ``mac`` (or a manual clear when ``force``)."""
        st = self.macs.get(mac.packed)
        if not isinstance(st, MacState) or st.dad is None or not st.dad.dup:
            return
        if not force and (st.dad.until is None or st.dad.until > now):
            return
        st.dad = None
        self._sink.notice(MacDuplicateCleared(self.vni, mac))
        self._resolve(mac, st, now)

    # ---- decision -------------------------------------------------------------------------------------

    def _local_beats(self, st: MacState, best: Path) -> bool:
        remote_sticky = best.rank[0] == 0
        if st.sticky != remote_sticky:
            return st.sticky
        rseq = -best.rank[1]
        if st.seq != rseq:
            return st.seq > rseq
        return self._vtep_key < address_key(best.next_hop)

    def _resolve(self, mac: MacAddress, st: MacState, now: float) -> None:
        prev = st.loc
        new: Location
        if st.frozen:
            if prev is LOCAL:
                new = LOCAL if st.local else None
            elif prev is not None and any(p.next_hop == prev for p in pathset_iter(st.remotes)):
                new = prev
            else:
                new = None
            new_seq = st.loc_seq
        else:
            best = pathset_best(st.remotes)
            if st.local and (best is None or self._local_beats(st, best)):
                new = LOCAL
                new_seq = st.seq
            elif best is not None:
                new = best.next_hop
                new_seq = -best.rank[1]
                st.local = False
            else:
                new = None
                new_seq = 0
        # dataplane: one FDB entry for a remote location
        new_vtep = None if new is None or isinstance(new, str) else new
        old_vtep = st.vtep
        if old_vtep != new_vtep:
            desired = self._journal
            if new_vtep is not None:
                desired.add(fdb_entry(self.vni, mac, new_vtep))
            if old_vtep is not None:
                desired.remove(fdb_entry(self.vni, st.mac, old_vtep))
        if prev is not None and new is not None and prev != new and new_seq >= st.loc_seq and not st.frozen:
            self._sink.notice(MacMoved(self.vni, mac, old_vtep, new_vtep, new_seq))
            self._count_move(mac, st, now)
        st.loc = new
        st.loc_seq = new_seq
        was_local = prev is LOCAL
        is_local = new is LOCAL
        if was_local != is_local and st.ips:
            ips = list(st.ips)
            for ip in ips:
                self._sink.local_host(self.vni, ip, is_local)
            if new is not None and not is_local:
                # the host moved away: its addresses went with it
                st.ips = None
                for ip in ips:
                    ist = self._ip_state(ip_key(ip))
                    assert ist is not None
                    ist.local_mac = None
            for ip in ips:
                ist = self._ip_state(ip_key(ip))
                assert ist is not None
                self._refresh_ip(ip, ist)
        self._refresh_advert(mac, st)
        if st.is_empty():
            del self.macs[mac.packed]
        else:
            compact = st.as_pathset()
            if compact is not None:
                self.macs[mac.packed] = compact

    def _count_move(self, mac: MacAddress, st: MacState, now: float) -> None:
        """Duplicate address detection (FRR ``dup-addr-detection``)."""
        dad = self._dad
        if not dad.enabled:
            return
        state = st.dad
        if state is None:
            state = st.dad = DadState()
        if state.window_start is None or now - state.window_start > dad.window:
            state.window_start = now
            state.moves = 0
        state.moves += 1
        if state.moves < dad.max_moves or state.dup:
            return
        state.dup = True
        self._sink.notice(MacDuplicate(self.vni, mac, state.moves))
        if dad.freeze:
            state.frozen = True
            state.until = now + dad.freeze_time if dad.freeze_time is not None else None
            self._sink.notice(MacFrozen(self.vni, mac, state.until))
        else:
            state.until = now + dad.window
        if state.until is not None:
            self._sink.schedule(state.until, self.vni, mac)

    def _refresh_advert(self, mac: MacAddress, st: MacState) -> None:
        new = None
        if st.loc is LOCAL and not st.dup:
            new = Advert(st.seq, st.sticky, frozenset(st.ips) if st.ips else frozenset())
        if new != st.advert:
            old = st.advert
            st.advert = new
            self._sink.local_advert(self.vni, mac, old, new)

    def _ip_is_local(self, ist: IpState) -> bool:
        if ist.local_mac is None:
            return False
        st = self.macs.get(ist.local_mac.packed)
        return isinstance(st, MacState) and st.loc is LOCAL

    def _refresh_ip(self, ip: IPAddress, ist: IpState) -> None:
        neigh: MacAddress | None = None
        old = ist.neigh
        if ist.remotes is not None and not self._ip_is_local(ist):
            best = pathset_best(ist.remotes)
            assert best is not None
            neigh = _route(best).mac
        if old != neigh:
            desired = self._journal
            if neigh is not None:
                desired.add(neigh_entry(self.vni, ip, neigh))
            if old is not None:
                desired.remove(neigh_entry(self.vni, ip, old))
            ist.neigh = neigh
        if ist.local_mac is None:  # candidates only: back to a compact entry (IpState.of_pathset), or gone
            if ist.remotes is None:
                del self.ips[ip_key(ip)]
            else:
                self.ips[ip_key(ip)] = ist.remotes

    def entries(self) -> list[DataplaneEntry]:
        """Every dataplane entry this VRF wants installed (built anew from the state)."""
        vni = self.vni
        out: list[DataplaneEntry] = []
        for held in self.macs.values():
            if isinstance(held, MacState):
                vtep = held.vtep
                if vtep is not None:
                    out.append(fdb_entry(vni, held.mac, vtep))
            else:
                best = _best(held)
                out.append(fdb_entry(vni, _route(best).mac, best.next_hop))
        for iheld in self.ips.values():
            if isinstance(iheld, IpState):
                if iheld.neigh is not None:
                    out.append(neigh_entry(vni, iheld.ip, iheld.neigh))
            else:
                route = _route(_best(iheld))
                assert route.ip is not None
                out.append(neigh_entry(vni, route.ip, route.mac))
        out.extend(self._flood_refs)
        return out

    # ---- read model -----------------------------------------------------------------------------------

    def states(self) -> list[MacState]:
        """The state of every MAC, compact entries expanded into new (unstored) MacStates: a read model."""
        return [
            held if isinstance(held, MacState) else MacState.of_pathset(held) for held in self.macs.values()
        ]

    def fdb_vteps(self) -> set[IPAddress]:
        """The VTEPs this VRF's MACs are installed toward."""
        vteps: set[IPAddress] = set()
        for held in self.macs.values():
            vtep = held.vtep if isinstance(held, MacState) else _best(held).next_hop
            if vtep is not None:
                vteps.add(vtep)
        return vteps

    def local_macs(self) -> list[tuple[MacAddress, int, bool, tuple[IPAddress, ...]]]:
        """Local MACs (location local) with seq, sticky, IPs: used to carry state across a reconfigure."""
        return [
            (st.mac, st.seq, st.sticky, tuple(st.ips or ()))
            for st in self.macs.values()
            if isinstance(st, MacState) and (st.loc is LOCAL or (st.local and st.frozen))
        ]
