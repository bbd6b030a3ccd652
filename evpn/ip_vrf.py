"""IP-VRF of one L3VNI: remote type-5 and host (IP-bearing type-2) routes become VRF routes (RFC 9136,
RFC 9135 symmetric IRB).

For each prefix the best candidate (sticky, sequence, lowest VTEP, then the BGP decision) is installed as
three entries: the route ``PREFIX via VTEP`` in the VRF, the remote Router's MAC in the L3VNI's FDB and the
VTEP-to-Router's-MAC neighbour on the L3 SVI (DESIGN §4). Entries shared by many prefixes behind one VTEP
are reference counted here. A prefix we originate ourselves (a gateway subnet, a local host)
is not installed from remote routes: the connected route wins, as in FRR.

Memory: prefixes are keyed by an int (``evpn.fast_ip.prefix_key``), so a host route needs no network object
until an entry is built. A prefix we do not originate is held as its remote candidates, the ``PathSet``
(one route's ``Path`` itself, the usual case, or a list), installed toward the best one: a ``PrefixState``
exists only while we originate the prefix too. Route entries are rebuilt when removed. Per received route
the garbage collector so tracks no object of the IP-VRF's own.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Protocol

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress, IPNetwork, IpPrefixRoute, MacIpRoute
from evpn.dataplane_state import (
    DataplaneEntry,
    FdbEntry,
    NeighEntry,
    fdb_entry,
    neigh_entry,
    route_entry,
)
from evpn.desired import DeltaJournal
from evpn.fast_ip import host_prefix, prefix_key
from evpn.mac import MacAddress
from evpn.rib import Path, PathSet, candidate_order, pathset_add, pathset_best, pathset_remove

VtepEntries = tuple[FdbEntry, NeighEntry]


class IpVrfSink(Protocol):
    @property
    def journal(self) -> DeltaJournal: ...


def path_prefix(path: Path) -> IPNetwork:
    """The prefix a path imported into an IP-VRF stands for: a type-5 prefix or a type-2 host route."""
    route = path.route
    if isinstance(route, MacIpRoute):
        assert route.ip is not None
        return host_prefix(route.ip)
    assert isinstance(route, IpPrefixRoute)
    return route.prefix


class PrefixState:
    """A prefix we originate (counted in ``local``), with its remote candidates and where it is installed;
    kept only while ``local`` is not 0 (otherwise the candidates alone are the entry)."""

    __slots__ = ("local", "prefix", "remotes", "rmac", "vtep")

    def __init__(self, prefix: IPNetwork) -> None:
        self.prefix = prefix
        self.local = 0
        self.remotes: PathSet = None
        self.vtep: IPAddress | None = None
        """The VTEP of the installed route, if any."""
        self.rmac: MacAddress | None = None
        """The Router's MAC of the installed route (its VTEP entries, shared by every prefix behind it)."""


Candidates = Path | list[Path]
"""A compact entry: the remote candidates of a prefix we do not originate (a non-empty PathSet)."""


def _best(held: Candidates) -> Path:
    return held if not isinstance(held, list) else min(held, key=candidate_order)


class IpVrf:
    """The IP-VRF of one L3VNI."""

    __slots__ = ("_journal", "_last", "_rmacs", "_sink", "_vteps", "l3vni", "prefixes", "vrf")

    def __init__(self, vrf: str, l3vni: int, sink: IpVrfSink) -> None:
        self.vrf = vrf
        self.l3vni = l3vni
        self._sink = sink
        self._journal = sink.journal
        """The sink's journal (hot path: one lookup less per entry)."""
        self.prefixes: dict[int, PrefixState | Candidates] = {}
        """Keyed by ``prefix_key``; a Path or list is a compact entry, installed toward its best candidate."""
        self._vteps: dict[tuple[int, int, bytes], tuple[VtepEntries, list[int]]] = {}
        self._rmacs: dict[int, tuple[PathAttributes, MacAddress | None]] = {}
        self._last: tuple[PathAttributes, IPAddress, list[int]] | None = None
        """Attributes and next hop of the last new prefix, with the use count of their VTEP entries: the
        routes of one UPDATE share both objects."""

    def _router_mac(self, attrs: PathAttributes) -> MacAddress | None:
        """Router's MAC of a path, cached per attribute object (shared by the routes of an UPDATE)."""
        hit = self._rmacs.get(id(attrs))
        if hit is not None and hit[0] is attrs:
            return hit[1]
        rmac = attrs.router_mac
        if len(self._rmacs) > 4096:
            self._rmacs.clear()
        self._rmacs[id(attrs)] = (attrs, rmac)
        return rmac

    def _vtep_use(self, vtep: IPAddress, rmac: MacAddress) -> list[int]:
        """Count one more prefix toward ``vtep``: its RMAC FDB and VTEP neighbour entries, shared by all.
        Returns the use count (a one-element list)."""
        key = (4 if isinstance(vtep, IPv4Address) else 6, int(vtep), rmac.packed)
        hit = self._vteps.get(key)
        if hit is None:
            entries = (fdb_entry(self.l3vni, rmac, vtep), neigh_entry(self.l3vni, vtep, rmac))
            count = [1]
            self._vteps[key] = (entries, count)
            desired = self._journal
            desired.add(entries[0])
            desired.add(entries[1])
            return count
        count = hit[1]
        count[0] += 1
        return count

    def _vtep_release(self, vtep: IPAddress, rmac: MacAddress) -> list[int] | None:
        """Count one prefix less toward ``vtep``; returns the use count, None when the entries are gone."""
        key = (4 if isinstance(vtep, IPv4Address) else 6, int(vtep), rmac.packed)
        entries, count = self._vteps[key]
        count[0] -= 1
        if count[0]:
            return count
        del self._vteps[key]
        self._last = None
        desired = self._journal
        desired.remove(entries[0])
        desired.remove(entries[1])
        return None

    def _expand(self, key: int, held: Candidates) -> PrefixState:
        """The state a compact entry stands for (installed toward its best candidate), stored in its place."""
        best = _best(held)
        st = self.prefixes[key] = PrefixState(path_prefix(best))
        st.remotes = held
        rmac = self._router_mac(best.attrs)
        if rmac is not None:
            st.vtep = best.next_hop
            st.rmac = rmac
        return st

    def _install(self, path: Path) -> None:
        """Install the route of a compact entry's best candidate (and count its VTEP entries)."""
        attrs, vtep = path.attrs, path.next_hop
        last = self._last
        if last is not None and last[0] is attrs and last[1] is vtep:
            last[2][0] += 1  # _vtep_use, for the routes of one UPDATE after the first
        else:
            rmac = self._router_mac(attrs)
            if rmac is None:
                return  # not installed
            self._last = (attrs, vtep, self._vtep_use(vtep, rmac))
        self._journal.add(route_entry(self.vrf, self.l3vni, path_prefix(path), vtep))

    def _uninstall(self, path: Path) -> None:
        """Undo ``_install``."""
        attrs, vtep = path.attrs, path.next_hop
        last = self._last
        if last is None or last[0] is not attrs or last[1] is not vtep:
            last = None
            if self._router_mac(attrs) is None:
                return  # was not installed
        self._journal.remove(route_entry(self.vrf, self.l3vni, path_prefix(path), vtep))
        if last is not None and last[2][0] > 1:
            last[2][0] -= 1  # _vtep_release, for the routes of one UPDATE but the last
            return
        rmac = self._router_mac(attrs)
        assert rmac is not None
        count = self._vtep_release(vtep, rmac)
        if count is not None:
            self._last = (attrs, vtep, count)

    def entries(self) -> list[DataplaneEntry]:
        """Every dataplane entry this VRF wants installed (route entries built anew from the state)."""
        vrf, l3vni = self.vrf, self.l3vni
        out: list[DataplaneEntry] = []
        for held in self.prefixes.values():
            if isinstance(held, PrefixState):
                if held.vtep is not None:
                    out.append(route_entry(vrf, l3vni, held.prefix, held.vtep))
            else:
                best = _best(held)
                if self._router_mac(best.attrs) is not None:
                    out.append(route_entry(vrf, l3vni, path_prefix(best), best.next_hop))
        for (fdb, neigh), _ in self._vteps.values():
            out.append(fdb)
            out.append(neigh)
        return out

    def route_vteps(self) -> set[IPAddress]:
        """The VTEPs this VRF's routes are installed toward."""
        vteps: set[IPAddress] = set()
        for held in self.prefixes.values():
            if isinstance(held, PrefixState):
                if held.vtep is not None:
                    vteps.add(held.vtep)
            else:
                best = _best(held)
                if self._router_mac(best.attrs) is not None:
                    vteps.add(best.next_hop)
        return vteps

    def remote_best(self, prefix: IPNetwork) -> Path | None:
        """The best remote candidate for ``prefix``, installed or not (a prefix we originate is not)."""
        held = self.prefixes.get(prefix_key(prefix))
        if held is None:
            return None
        return pathset_best(held.remotes if isinstance(held, PrefixState) else held)

    def rebind(self, sink: IpVrfSink) -> None:
        """Report to another sink (the core adopting this VRF after a reconfigure)."""
        self._sink = sink
        self._journal = sink.journal

    def remote(self, key: int, old: Path | None, new: Path | None) -> None:
        """A candidate for the prefix of ``key`` (``prefix_key``) changed."""
        prefixes = self.prefixes
        held = prefixes.get(key)
        if held is None:
            if new is None:
                return
            # fast path (``_install``, inlined): a new prefix with one remote candidate, not local
            prefixes[key] = new
            attrs, vtep = new.attrs, new.next_hop
            last = self._last
            if last is not None and last[0] is attrs and last[1] is vtep:
                last[2][0] += 1  # _vtep_use, for the routes of one UPDATE after the first
            else:
                rmac = self._router_mac(attrs)
                if rmac is None:
                    return  # not installed
                self._last = (attrs, vtep, self._vtep_use(vtep, rmac))
            route = new.route
            ip = route.ip if type(route) is MacIpRoute else None
            prefix = host_prefix(ip) if ip is not None else path_prefix(new)
            self._journal.add(route_entry(self.vrf, self.l3vni, prefix, vtep))
            return
        if isinstance(held, PrefixState):
            st = held
        else:  # a compact entry: installed toward its best candidate
            before = _best(held)
            after: PathSet = held
            if old is not None:
                after = pathset_remove(after, old)
            if new is not None:
                after = pathset_add(after, new)
            if after is None:
                del prefixes[key]
                self._uninstall(before)
                return
            prefixes[key] = after
            best = _best(after)
            if best is not before and (
                best.next_hop != before.next_hop
                or self._router_mac(best.attrs) != self._router_mac(before.attrs)
            ):
                self._install(best)
                self._uninstall(before)
            return
        if old is not None:
            st.remotes = pathset_remove(st.remotes, old)
        if new is not None:
            st.remotes = pathset_add(st.remotes, new)
        self._refresh(key, st)

    def set_local(self, prefix: IPNetwork, on: bool) -> None:
        """We originate or host ``prefix`` ourselves (counted: several sources may)."""
        key = prefix_key(prefix)
        held = self.prefixes.get(key)
        if held is None:
            if not on:
                return
            st = self.prefixes[key] = PrefixState(prefix)
        else:
            st = held if isinstance(held, PrefixState) else self._expand(key, held)
        st.local += 1 if on else -1
        self._refresh(key, st)

    def _refresh(self, key: int, st: PrefixState) -> None:
        vtep: IPAddress | None = None
        rmac: MacAddress | None = None
        best = pathset_best(st.remotes)
        if best is not None and st.local <= 0:
            rmac = self._router_mac(best.attrs)
            if rmac is not None:
                vtep = best.next_hop
        if vtep != st.vtep or rmac != st.rmac:
            journal = self._journal
            if vtep is not None:
                assert rmac is not None
                self._vtep_use(vtep, rmac)
                journal.add(route_entry(self.vrf, self.l3vni, st.prefix, vtep))
            if st.vtep is not None:
                journal.remove(route_entry(self.vrf, self.l3vni, st.prefix, st.vtep))
                assert st.rmac is not None
                self._vtep_release(st.vtep, st.rmac)
            st.vtep = vtep
            st.rmac = rmac if vtep is not None else None
        if st.remotes is None:
            if st.local <= 0:
                del self.prefixes[key]
        elif st.local == 0:  # candidates only, installed toward the best: back to a compact entry
            self.prefixes[key] = st.remotes
