"""Installs dataplane deltas in the kernel the way zebra does (DESIGN §4), batched, marked, owner-aware.

What it installs and how it recognises its own entries again after a restart:

- remote MAC: ``MAC dev vni<vni> dst VTEP self extern_learn`` plus the bridge's ``master extern_learn`` entry,
  both in one message (``master self``, as zebra sends it: the kernel does the bridge, then the VXLAN device);
  when that fails (the bridge refused, or its entry is gone because the MAC moved to a local port) the two
  halves are sent on their own, so one never blocks the other;
- flood: ``00:00:00:00:00:00 dev vni<vni> dst VTEP`` appended per VTEP (all zero-MAC entries on a VXLAN
  device the plumbing created are ours: the kernel keeps one flag set per MAC, not per destination);
- neighbour: ``IP lladdr MAC dev <SVI> extern_learn`` (state NOARP);
- route: ``PREFIX via VTEP dev <L3 SVI> onlink proto evpn-speaker`` (:data:`RTPROT_EVPN_SPEAKER`);
- unicast route: ``PREFIX via NEXT_HOP proto evpn-speaker metric 20`` (no device, never ``onlink``: the kernel
  resolves the next hop) in the router namespace's main table (VRF "") or in a VRF's table
  (:meth:`dataplane.layout.Layout.unicast_tables`).

Entries without these marks, or on devices of VNIs not in the configuration, are never touched.
All netlink work runs in a worker thread, one batch transport per namespace (see :mod:`dataplane.rtnl`).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

from dataplane import netns, rtnl
from dataplane.interface import ApplyResult, EntryFailure, Operation
from dataplane.layout import Layout, VniDevices, VrfPlace
from evpn.dataplane_state import (
    DataplaneDelta,
    DataplaneEntry,
    FdbEntry,
    FloodEntry,
    NeighEntry,
    RouteEntry,
    UnicastRouteEntry,
)
from evpn.mac import MacAddress

RTPROT_EVPN_SPEAKER = 201
"""Our route protocol number, "evpn-speaker" (``ip route show proto 201``). Not 196: FRR's rt_protos.d names
186-198 for its daemons (196 is staticd), and we must never take another daemon's routes for ours."""

UNICAST_METRIC = 20
"""The metric of our unicast routes (what zebra gives eBGP routes). Not the kernel's default: a replace only
overwrites a route of the same prefix *and metric*, so a connected route (IPv4 metric 0) or a user's static
route (IPv6 metric 1024) with the same prefix is never overwritten, and a connected IPv4 route still wins."""

_ZERO_MAC = b"\0" * 6
_CREATE = rtnl.NLM_F_CREATE | rtnl.NLM_F_REPLACE
_SELF_EXT = rtnl.NTF_SELF | rtnl.NTF_EXT_LEARNED
"""The VXLAN device's own entries we install (flood and remote MACs)."""
_MASTER_EXT = rtnl.NTF_MASTER | rtnl.NTF_EXT_LEARNED
"""The bridge's entry for a remote MAC."""


@dataclass(frozen=True, slots=True)
class _Request:
    """One entry's netlink messages; ``tolerate`` are errnos that still mean success (ENOENT on removal);
    ``fallback`` builds messages doing the same work one part at a time, sent when any of ``messages``
    fails (built only then: it is rare, and packing them for every entry would cost a microsecond each)."""

    entry: DataplaneEntry
    operation: Operation
    messages: tuple[bytes, ...]
    tolerate: frozenset[int] = frozenset()
    fallback: Callable[[], tuple[bytes, ...]] | None = None


@dataclass(slots=True)
class _KernelView:
    """Our entries as read from one namespace, plus bridge ``master extern_learn`` entries on our VXLANs."""

    entries: set[DataplaneEntry] = field(default_factory=set)
    masters: set[tuple[int, bytes]] = field(default_factory=set)


def _replaced_keys(adds: Iterable[DataplaneEntry]) -> set[tuple[object, ...]]:
    keys: set[tuple[object, ...]] = set()
    for entry in adds:
        key = _replace_key(entry)
        if key is not None:
            keys.add(key)
    return keys


def _replace_key(entry: DataplaneEntry) -> tuple[object, ...] | None:
    """Entries an add with NLM_F_REPLACE overwrites: a removal of the same key is then redundant."""
    if isinstance(entry, FdbEntry):
        return ("fdb", entry.vni, entry.mac)
    if isinstance(entry, NeighEntry):
        return ("neigh", entry.vni, entry.ip)
    if isinstance(entry, RouteEntry):
        return ("route", entry.vrf, entry.prefix)
    return (
        None  # a unicast route's next hop may be unreachable: remove the old one, do not hope to replace it
    )


class KernelDataplane:
    """The :class:`dataplane.interface.Dataplane` of a real kernel, for the devices of ``layout``."""

    def __init__(self, layout: Layout, *, protocol: int = RTPROT_EVPN_SPEAKER) -> None:
        self._layout = layout
        self._vnis = layout.vnis()
        self._vrfs = layout.vrfs()
        self._tables = layout.unicast_tables()
        self._protocol = protocol
        self._transports: dict[str | None, tuple[tuple[int, int], rtnl.BatchTransport]] = {}
        self._lock = asyncio.Lock()

    # -- the interface ------------------------------------------------------------------------------------

    async def apply(self, delta: DataplaneDelta) -> ApplyResult:
        async with self._lock:
            return await asyncio.to_thread(self._apply_sync, delta.remove, delta.add)

    async def reconcile(self, desired: Iterable[DataplaneEntry]) -> ApplyResult:
        wanted = set(desired)
        async with self._lock:
            return await asyncio.to_thread(self._reconcile_sync, wanted)

    async def installed(self) -> frozenset[DataplaneEntry]:
        async with self._lock:
            views = await asyncio.to_thread(self._read_all)
        return frozenset(e for view in views.values() for e in view.entries)

    async def close(self) -> None:
        async with self._lock:
            for _, transport in self._transports.values():
                transport.close()
            self._transports.clear()

    # -- synchronous core (worker thread) ----------------------------------------------------------------

    def _transport(self, ns: str | None) -> rtnl.BatchTransport:
        """The socket of ``ns``, reopened when the namespace was deleted and created again meanwhile."""
        identity = netns.identity(ns)
        cached = self._transports.get(ns)
        if cached is not None and cached[0] == identity:
            return cached[1]
        if cached is not None:
            cached[1].close()
        with netns.entered(ns):
            transport = rtnl.BatchTransport(rtnl.open_socket())
        self._transports[ns] = (identity, transport)
        return transport

    def _indexes(self, ns: str | None, names: Iterable[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        with netns.entered(ns):
            for name in names:
                try:
                    found[name] = socket.if_nametoindex(name)
                except OSError:
                    continue
        return found

    def _namespace_of(self, entry: DataplaneEntry) -> str | None:
        if isinstance(entry, UnicastRouteEntry):
            table = self._tables.get(entry.vrf)
            return table.netns if table is not None else None
        if isinstance(entry, RouteEntry):
            place = self._vrfs.get(entry.vrf)
            return place.netns if place is not None else None
        devices = self._vnis.get(entry.vni)
        return devices.netns if devices is not None else None

    def _apply_sync(self, removes: Sequence[DataplaneEntry], adds: Sequence[DataplaneEntry]) -> ApplyResult:
        replaced = _replaced_keys(adds)
        removes = [e for e in removes if _replace_key(e) not in replaced]
        by_ns: dict[str | None, list[tuple[DataplaneEntry, Operation]]] = {}
        for entry in removes:
            by_ns.setdefault(self._namespace_of(entry), []).append((entry, Operation.REMOVE))
        for entry in adds:
            by_ns.setdefault(self._namespace_of(entry), []).append((entry, Operation.ADD))
        failures: list[EntryFailure] = []
        added = removed = 0
        for ns, work in by_ns.items():
            if ns is not None and not netns.exists(ns):
                reason = f"namespace {ns} does not exist"
                failures.extend(EntryFailure(entry, op, errno.ENOENT, reason) for entry, op in work)
                continue
            requests, unplaced = self._build(ns, work)
            failures.extend(unplaced)
            ok_add, ok_remove, failed = self._send(ns, requests)
            added += ok_add
            removed += ok_remove
            failures.extend(failed)
        return ApplyResult(added, removed, tuple(failures))

    def _build(
        self, ns: str | None, work: Sequence[tuple[DataplaneEntry, Operation]]
    ) -> tuple[list[_Request], list[EntryFailure]]:
        names = {d.vxlan for d in self._vnis.values() if d.netns == ns}
        names |= {d.svi for d in self._vnis.values() if d.netns == ns}
        index = self._indexes(ns, names)
        requests: list[_Request] = []
        failures: list[EntryFailure] = []
        for entry, operation in work:
            try:
                requests.append(self._request(entry, operation, index))
            except LookupError as exc:
                failures.append(EntryFailure(entry, operation, errno.ENODEV, str(exc)))
        return requests, failures

    def _device(self, vni: int) -> VniDevices:
        devices = self._vnis.get(vni)
        if devices is None:
            raise LookupError(f"VNI {vni} is not configured")
        return devices

    def _request(self, entry: DataplaneEntry, operation: Operation, index: dict[str, int]) -> _Request:
        add = operation == Operation.ADD
        gone = frozenset({errno.ENOENT, errno.ESRCH})
        if isinstance(entry, UnicastRouteEntry):
            return self._unicast_request(entry, operation, gone)
        if isinstance(entry, RouteEntry):
            place = self._vrfs.get(entry.vrf)
            if place is None:
                raise LookupError(f"VRF {entry.vrf!r} is not configured")
            oif = _lookup(index, place.svi)
            if add:
                msg = rtnl.route_message(
                    rtnl.RTM_NEWROUTE, _CREATE, entry.prefix, entry.vtep, oif, place.table, self._protocol
                )
                return _Request(entry, operation, (msg,))
            msg = rtnl.route_message(
                rtnl.RTM_DELROUTE, 0, entry.prefix, entry.vtep, oif, place.table, self._protocol
            )
            return _Request(entry, operation, (msg,), gone)
        devices = self._device(entry.vni)
        if isinstance(entry, NeighEntry):
            svi = _lookup(index, devices.svi)
            ips: tuple[rtnl.IPAddress, ...] = (entry.ip,)
            if devices.l3 and isinstance(entry.ip, ipaddress.IPv4Address):
                ips += (rtnl.ipv4_mapped(entry.ip),)  # the next hop of IPv6 routes through this VTEP
            if add:
                messages = tuple(
                    rtnl.neigh_message(
                        rtnl.RTM_NEWNEIGH,
                        _CREATE,
                        svi,
                        ip,
                        entry.mac.packed,
                        rtnl.NTF_EXT_LEARNED,
                        rtnl.NUD_NOARP,
                    )
                    for ip in ips
                )
                return _Request(entry, operation, messages)
            messages = tuple(rtnl.neigh_message(rtnl.RTM_DELNEIGH, 0, svi, ip, None, 0, 0) for ip in ips)
            return _Request(entry, operation, messages, gone)
        vxlan = _lookup(index, devices.vxlan)
        if isinstance(entry, FloodEntry):
            if add:
                msg = rtnl.fdb_message(
                    rtnl.RTM_NEWNEIGH,
                    rtnl.NLM_F_CREATE | rtnl.NLM_F_APPEND,
                    vxlan,
                    _ZERO_MAC,
                    entry.vtep,
                    _SELF_EXT,
                    rtnl.NUD_NOARP | rtnl.NUD_PERMANENT,
                )
                return _Request(entry, operation, (msg,))
            msg = rtnl.fdb_message(rtnl.RTM_DELNEIGH, 0, vxlan, _ZERO_MAC, entry.vtep, rtnl.NTF_SELF, 0)
            return _Request(entry, operation, (msg,), gone)
        mac = entry.mac.packed
        halves = partial(_fdb_halves, vxlan, mac, entry.vtep, add)
        if add:
            flags = _SELF_EXT | _MASTER_EXT
            msg = rtnl.fdb_message(
                rtnl.RTM_NEWNEIGH, _CREATE, vxlan, mac, entry.vtep, flags, rtnl.NUD_REACHABLE
            )
            return _Request(entry, operation, (msg,), fallback=halves)
        flags = rtnl.NTF_SELF | rtnl.NTF_MASTER
        msg = rtnl.fdb_message(rtnl.RTM_DELNEIGH, 0, vxlan, mac, entry.vtep, flags, 0)
        return _Request(entry, operation, (msg,), gone, fallback=halves)

    def _unicast_request(
        self, entry: UnicastRouteEntry, operation: Operation, gone: frozenset[int]
    ) -> _Request:
        table = self._tables.get(entry.vrf)
        if table is None:
            raise LookupError(f"VRF {entry.vrf!r} is not configured")
        if operation == Operation.ADD:
            msg = rtnl.unicast_route_message(
                rtnl.RTM_NEWROUTE,
                _CREATE,
                entry.prefix,
                entry.next_hop,
                table.table,
                self._protocol,
                UNICAST_METRIC,
            )
            return _Request(entry, operation, (msg,))
        # no metric: removes ours (protocol, gateway) whatever metric it was installed with
        msg = rtnl.unicast_route_message(
            rtnl.RTM_DELROUTE, 0, entry.prefix, entry.next_hop, table.table, self._protocol
        )
        return _Request(entry, operation, (msg,), gone)

    def _send(self, ns: str | None, requests: Sequence[_Request]) -> tuple[int, int, list[EntryFailure]]:
        if not requests:
            return 0, 0, []
        transport = self._transport(ns)
        outcomes = transport.transact([m for r in requests for m in r.messages])
        judged: list[tuple[_Request, list[rtnl.Outcome]]] = []
        retry: list[tuple[_Request, tuple[bytes, ...]]] = []
        position = 0
        for request in requests:
            mine = outcomes[position : position + len(request.messages)]
            position += len(request.messages)
            if request.fallback is not None and any(o.error for o in mine):
                retry.append((request, request.fallback()))
            else:
                judged.append((request, mine))
        if retry:
            outcomes = transport.transact([m for _, messages in retry for m in messages])
            position = 0
            for request, messages in retry:
                judged.append((request, outcomes[position : position + len(messages)]))
                position += len(messages)
        failures: list[EntryFailure] = []
        added = removed = 0
        for request, mine in judged:
            errors = [o for o in mine if o.error and o.error not in request.tolerate]
            if errors:
                first = errors[0]
                reason = first.message or os.strerror(first.error)
                failures.append(EntryFailure(request.entry, request.operation, first.error, reason))
            elif request.operation == Operation.ADD:
                added += 1
            else:
                removed += 1
        return added, removed, failures

    # -- reading back ----------------------------------------------------------------------------------------

    def _read_all(self) -> dict[str | None, _KernelView]:
        namespaces = {d.netns for d in self._vnis.values()} | {p.netns for p in self._vrfs.values()}
        namespaces |= {t.netns for t in self._tables.values()}
        return {ns: self._read(ns) for ns in namespaces if ns is None or netns.exists(ns)}

    def _read(self, ns: str | None) -> _KernelView:
        view = _KernelView()
        local = {d.vxlan for d in self._vnis.values() if d.netns == ns} | {
            d.svi for d in self._vnis.values() if d.netns == ns
        }
        index = self._indexes(ns, local)
        vxlan_vni = {index[d.vxlan]: d.vni for d in self._vnis.values() if d.netns == ns and d.vxlan in index}
        svi_vni = {index[d.svi]: d.vni for d in self._vnis.values() if d.netns == ns and d.svi in index}
        svi_vrf = {index[p.svi]: p for p in self._vrfs.values() if p.netns == ns and p.svi in index}
        unicast = {t.table: t.vrf for t in self._tables.values() if t.netns == ns}
        transport = self._transport(ns)
        for msg in transport.dump(rtnl.dump_request(rtnl.RTM_GETNEIGH, rtnl.AF_BRIDGE)):
            if not isinstance(msg, rtnl.Neigh) or msg.ifindex not in vxlan_vni or msg.lladdr is None:
                continue
            vni = vxlan_vni[msg.ifindex]
            if msg.dst is not None and msg.flags & rtnl.NTF_SELF:
                if msg.lladdr == _ZERO_MAC:
                    view.entries.add(FloodEntry(vni, msg.dst))
                elif msg.flags & rtnl.NTF_EXT_LEARNED:
                    view.entries.add(FdbEntry(vni, MacAddress(msg.lladdr), msg.dst))
            elif (
                msg.master is not None and not msg.flags & rtnl.NTF_SELF and msg.flags & rtnl.NTF_EXT_LEARNED
            ):
                view.masters.add((vni, msg.lladdr))
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in transport.dump(rtnl.dump_request(rtnl.RTM_GETNEIGH, family)):
                if (
                    isinstance(msg, rtnl.Neigh)
                    and msg.ifindex in svi_vni
                    and msg.flags & rtnl.NTF_EXT_LEARNED
                    and msg.dst is not None
                    and msg.lladdr is not None
                    and len(msg.lladdr) == 6
                ):
                    if isinstance(msg.dst, ipaddress.IPv6Address) and msg.dst.ipv4_mapped is not None:
                        continue  # the companion of an IPv4 VTEP neighbour on an L3 SVI
                    view.entries.add(NeighEntry(svi_vni[msg.ifindex], msg.dst, MacAddress(msg.lladdr)))
            for msg in transport.dump(rtnl.dump_request(rtnl.RTM_GETROUTE, family)):
                if isinstance(msg, rtnl.Route) and msg.protocol == self._protocol and msg.gateway is not None:
                    entry = _route_entry(msg, svi_vrf, unicast)
                    if entry is not None:
                        view.entries.add(entry)
        return view

    def _reconcile_sync(self, wanted: set[DataplaneEntry]) -> ApplyResult:
        views = self._read_all()
        have: set[DataplaneEntry] = set()
        masters: set[tuple[int, bytes]] = set()
        for view in views.values():
            have |= view.entries
            masters |= view.masters
        wanted_macs = {(e.vni, e.mac.packed) for e in wanted if isinstance(e, FdbEntry)}
        adds = [
            e
            for e in wanted
            if e not in have or (isinstance(e, FdbEntry) and (e.vni, e.mac.packed) not in masters)
        ]
        removes = [e for e in have if e not in wanted]
        result = self._apply_sync(sorted(removes, key=repr), sorted(adds, key=repr))
        stray = [(vni, mac) for vni, mac in masters if (vni, mac) not in wanted_macs]
        cleaned = self._remove_masters(stray)
        return ApplyResult(result.added, result.removed + cleaned, result.failures)

    def _remove_masters(self, stray: Sequence[tuple[int, bytes]]) -> int:
        """Bridge ``master extern_learn`` entries left on our VXLAN devices without their remote MAC."""
        by_ns: dict[str | None, list[tuple[int, bytes]]] = {}
        for vni, mac in stray:
            by_ns.setdefault(self._vnis[vni].netns, []).append((vni, mac))
        removed = 0
        for ns, items in by_ns.items():
            index = self._indexes(ns, {self._vnis[vni].vxlan for vni, _ in items})
            messages = [
                rtnl.fdb_message(
                    rtnl.RTM_DELNEIGH, 0, index[self._vnis[vni].vxlan], mac, None, rtnl.NTF_MASTER, 0
                )
                for vni, mac in items
                if self._vnis[vni].vxlan in index
            ]
            removed += sum(1 for o in self._transport(ns).transact(messages) if not o.error)
        return removed


def _route_entry(
    msg: rtnl.Route, svi_vrf: dict[int, VrfPlace], unicast: dict[int, str]
) -> RouteEntry | UnicastRouteEntry | None:
    """One of our routes read back: an EVPN route is ``onlink`` through its VRF's L3 SVI, a unicast route
    never is ``onlink``; anything else with our protocol is left alone."""
    gateway = msg.gateway
    if gateway is None:
        return None
    if msg.flags & rtnl.RTNH_F_ONLINK:
        place = svi_vrf.get(msg.oif or -1)
        if place is None or msg.table != place.table:
            return None
        if isinstance(gateway, ipaddress.IPv6Address) and gateway.ipv4_mapped is not None:
            gateway = gateway.ipv4_mapped
        return RouteEntry(place.vrf, place.l3vni, msg.prefix, gateway)
    vrf = unicast.get(msg.table)
    return UnicastRouteEntry(vrf, msg.prefix, gateway) if vrf is not None else None


def _fdb_halves(vxlan: int, mac: bytes, vtep: rtnl.IPAddress, add: bool) -> tuple[bytes, ...]:
    """A remote MAC as two messages: the VXLAN device's ``self`` entry, then the bridge's ``master`` one."""
    if add:
        return (
            rtnl.fdb_message(rtnl.RTM_NEWNEIGH, _CREATE, vxlan, mac, vtep, _SELF_EXT, rtnl.NUD_REACHABLE),
            rtnl.fdb_message(rtnl.RTM_NEWNEIGH, _CREATE, vxlan, mac, None, _MASTER_EXT, rtnl.NUD_NOARP),
        )
    return (
        rtnl.fdb_message(rtnl.RTM_DELNEIGH, 0, vxlan, mac, vtep, rtnl.NTF_SELF, 0),
        rtnl.fdb_message(rtnl.RTM_DELNEIGH, 0, vxlan, mac, None, rtnl.NTF_MASTER, 0),
    )


def _lookup(index: dict[str, int], name: str) -> int:
    try:
        return index[name]
    except KeyError:
        raise LookupError(f"device {name} does not exist") from None
