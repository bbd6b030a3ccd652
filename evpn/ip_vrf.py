"""IP-VRF of one L3VNI: remote type-5 and host (IP-bearing type-2) routes become VRF routes (RFC 9136,
RFC 9135 symmetric IRB).

For each prefix the best candidate (sticky, sequence, lowest VTEP, then the BGP decision) is installed as
three entries: the route ``PREFIX via VTEP`` in the VRF, the remote Router's MAC in the L3VNI's FDB and the
VTEP-to-Router's-MAC neighbour on the L3 SVI (DESIGN §4). Entries shared by many prefixes behind one VTEP
are reference counted here. A prefix we originate ourselves (a gateway subnet, a local host)
is not installed from remote routes: the connected route wins, as in FRR.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Protocol

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress, IPNetwork
from evpn.dataplane_state import DataplaneEntry, FdbEntry, NeighEntry, RouteEntry
from evpn.desired import DeltaJournal
from evpn.mac import MacAddress
from evpn.rib import Path, PathSet, pathset_add, pathset_best, pathset_remove

VtepEntries = tuple[FdbEntry, NeighEntry]


class IpVrfSink(Protocol):
    @property
    def journal(self) -> DeltaJournal: ...


class PrefixState:
    __slots__ = ("local", "remotes", "route", "vtep")

    def __init__(self) -> None:
        self.local = 0
        self.remotes: PathSet = None
        self.route: RouteEntry | None = None
        self.vtep: VtepEntries | None = None
        """The Router's MAC FDB entry and VTEP neighbour (shared by every prefix behind that VTEP)."""


class IpVrf:
    """The IP-VRF of one L3VNI."""

    __slots__ = ("_rmacs", "_sink", "_vteps", "l3vni", "prefixes", "vrf")

    def __init__(self, vrf: str, l3vni: int, sink: IpVrfSink) -> None:
        self.vrf = vrf
        self.l3vni = l3vni
        self._sink = sink
        self.prefixes: dict[IPNetwork, PrefixState] = {}
        self._vteps: dict[tuple[int, int, bytes], tuple[VtepEntries, list[int]]] = {}
        self._rmacs: dict[int, tuple[PathAttributes, MacAddress | None]] = {}

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

    def _vtep_use(self, vtep: IPAddress, rmac: MacAddress) -> VtepEntries:
        """The RMAC FDB and VTEP neighbour entries toward ``vtep``, shared by all its prefixes."""
        key = (4 if isinstance(vtep, IPv4Address) else 6, int(vtep), rmac.packed)
        hit = self._vteps.get(key)
        if hit is None:
            entries = (FdbEntry(self.l3vni, rmac, vtep), NeighEntry(self.l3vni, vtep, rmac))
            self._vteps[key] = (entries, [1])
            desired = self._sink.journal
            desired.add(entries[0])
            desired.add(entries[1])
            return entries
        hit[1][0] += 1
        return hit[0]

    def _vtep_release(self, entries: VtepEntries) -> None:
        vtep = entries[0].vtep
        key = (vtep.version, int(vtep), entries[0].mac.packed)
        _, count = self._vteps[key]
        count[0] -= 1
        if count[0] == 0:
            del self._vteps[key]
            desired = self._sink.journal
            desired.remove(entries[0])
            desired.remove(entries[1])

    def entries(self) -> list[DataplaneEntry]:
        """Every dataplane entry this VRF wants installed."""
        out: list[DataplaneEntry] = [st.route for st in self.prefixes.values() if st.route is not None]
        for (fdb, neigh), _ in self._vteps.values():
            out.append(fdb)
            out.append(neigh)
        return out

    def remote_best(self, prefix: IPNetwork) -> Path | None:
        """The best remote candidate for ``prefix``, installed or not (a prefix we originate is not)."""
        st = self.prefixes.get(prefix)
        return pathset_best(st.remotes) if st is not None else None

    def rebind(self, sink: IpVrfSink) -> None:
        self._sink = sink

    def remote(self, prefix: IPNetwork, old: Path | None, new: Path | None) -> None:
        """A candidate for ``prefix`` changed (``new`` must carry a Router's MAC)."""
        if new is None:
            found = self.prefixes.get(prefix)
            if found is None:
                return
            st = found
        else:
            # one lookup (hashing an ``ipaddress`` network is a Python-level call): setdefault
            fresh = PrefixState()
            st = self.prefixes.setdefault(prefix, fresh)
            if st is fresh:
                # fast path, same outcome as _refresh: a new prefix with one remote candidate, not local
                st.remotes = new
                rmac = self._router_mac(new.attrs)
                if rmac is not None:
                    vtep = new.next_hop
                    st.vtep = self._vtep_use(vtep, rmac)
                    route = st.route = RouteEntry(self.vrf, self.l3vni, prefix, vtep)
                    self._sink.journal.add(route)
                return
        if old is not None:
            st.remotes = pathset_remove(st.remotes, old)
        if new is not None:
            st.remotes = pathset_add(st.remotes, new)
        self._refresh(prefix, st)

    def set_local(self, prefix: IPNetwork, on: bool) -> None:
        """We originate or host ``prefix`` ourselves (counted: several sources may)."""
        st = self.prefixes.get(prefix)
        if st is None:
            if not on:
                return
            st = self.prefixes[prefix] = PrefixState()
        st.local += 1 if on else -1
        self._refresh(prefix, st)

    def _refresh(self, prefix: IPNetwork, st: PrefixState) -> None:
        route: RouteEntry | None = None
        vtep_entries: VtepEntries | None = None
        best = pathset_best(st.remotes)
        if best is not None and st.local <= 0:
            rmac = self._router_mac(best.attrs)
            vtep = best.next_hop
            cur = st.vtep
            if cur is not None and cur[0].vtep == vtep and cur[0].mac == rmac:
                return
            if rmac is not None:
                vtep_entries = self._vtep_use(vtep, rmac)
                route = RouteEntry(self.vrf, self.l3vni, prefix, vtep)
        if route is not None or st.route is not None:
            journal = self._sink.journal
            if route is not None:
                journal.add(route)
            if st.route is not None:
                journal.remove(st.route)
            if st.vtep is not None:
                self._vtep_release(st.vtep)
            st.route = route
            st.vtep = vtep_entries
        if route is None and st.local <= 0 and st.remotes is None:
            del self.prefixes[prefix]
