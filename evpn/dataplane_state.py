"""What the kernel should hold, as plain values: the core computes them, the dataplane installs them.

Entries name VNIs, not devices: the dataplane maps a VNI to its devices (``vni<vni>``, the SVI
``br-pe-<vni>`` of an L2VNI, the L3 SVI of an L3VNI), so the core stays free of host naming.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, fields

from evpn.codec.evpn_nlri import IPAddress, IPNetwork
from evpn.mac import MacAddress


@dataclass(frozen=True, slots=True, order=True)
class FdbEntry:
    """Remote MAC behind a VTEP: ``bridge fdb add MAC dev vni<vni> dst VTEP self extern_learn`` (+ master).

    Also the Router's MAC of a remote VTEP on an L3VNI's VXLAN device (symmetric IRB, RFC 9135 §4).
    """

    vni: int
    mac: MacAddress
    vtep: IPAddress


@dataclass(frozen=True, slots=True, order=True)
class FloodEntry:
    """BUM ingress replication to one remote VTEP from its type-3 route (RFC 8365 §9):
    ``bridge fdb append 00:00:00:00:00:00 dev vni<vni> dst VTEP``."""

    vni: int
    vtep: IPAddress


@dataclass(frozen=True, slots=True, order=True)
class NeighEntry:
    """Remote IP-to-MAC binding on the SVI of ``vni`` (``extern_learn``): ARP/ND suppression for an L2VNI,
    or the VTEP-to-Router's-MAC neighbour on the L3 SVI for an L3VNI."""

    vni: int
    ip: IPAddress
    mac: MacAddress


@dataclass(frozen=True, slots=True, order=True)
class RouteEntry:
    """A route in the VRF of an L3VNI: ``PREFIX via VTEP dev <L3 SVI> onlink proto <ours>``."""

    vrf: str
    l3vni: int
    prefix: IPNetwork
    vtep: IPAddress


@dataclass(frozen=True, slots=True, order=True)
class UnicastRouteEntry:
    """A BGP unicast route: ``PREFIX via NEXT_HOP proto <ours>`` in the router namespace's main table
    (``vrf`` empty: underlay routes, the passthrough host's routes) or in the VRF ``vrf`` (a host session's
    routes). The kernel finds the device from the next hop."""

    vrf: str
    prefix: IPNetwork
    next_hop: IPAddress


DataplaneEntry = FdbEntry | FloodEntry | NeighEntry | RouteEntry | UnicastRouteEntry


@dataclass(frozen=True, slots=True)
class DataplaneDelta:
    """Entries to remove and to add, computed incrementally by the core. An entry never appears in both.

    Apply removals first, then additions; an FdbEntry removed and one added for the same (vni, mac) is a move
    and the dataplane may apply it as a single replace.
    """

    add: tuple[DataplaneEntry, ...] = ()
    remove: tuple[DataplaneEntry, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)

    def merged(self, later: DataplaneDelta) -> DataplaneDelta:
        """This delta followed by ``later``, as one delta (an add then a remove cancels out)."""
        adds = dict.fromkeys(self.add)
        removes = dict.fromkeys(self.remove)
        for entry in later.remove:
            if entry in adds:
                del adds[entry]
            else:
                removes[entry] = None
        for entry in later.add:
            if entry in removes:
                del removes[entry]
            else:
                adds[entry] = None
        return DataplaneDelta(tuple(adds), tuple(removes))


def _slot_setters(cls: type) -> tuple[Callable[[object, object], None], ...]:
    """The slot descriptors' setters of a slotted dataclass, in field order."""
    return tuple(vars(cls)[f.name].__set__ for f in fields(cls))


_new = object.__new__
_FDB_VNI, _FDB_MAC, _FDB_VTEP = _slot_setters(FdbEntry)
_NEIGH_VNI, _NEIGH_IP, _NEIGH_MAC = _slot_setters(NeighEntry)
_ROUTE_VRF, _ROUTE_L3VNI, _ROUTE_PREFIX, _ROUTE_VTEP = _slot_setters(RouteEntry)


# The VRFs build one entry per received route on the hot path: the builders below fill the slots directly,
# without the frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field, about twice the cost).
# The entries are the same values (equality, hash, order): tests/unit/test_dataplane_state.py checks it.


def fdb_entry(vni: int, mac: MacAddress, vtep: IPAddress) -> FdbEntry:
    """``FdbEntry(vni, mac, vtep)``, built faster."""
    entry: FdbEntry = _new(FdbEntry)
    _FDB_VNI(entry, vni)
    _FDB_MAC(entry, mac)
    _FDB_VTEP(entry, vtep)
    return entry


def neigh_entry(vni: int, ip: IPAddress, mac: MacAddress) -> NeighEntry:
    """``NeighEntry(vni, ip, mac)``, built faster."""
    entry: NeighEntry = _new(NeighEntry)
    _NEIGH_VNI(entry, vni)
    _NEIGH_IP(entry, ip)
    _NEIGH_MAC(entry, mac)
    return entry


def route_entry(vrf: str, l3vni: int, prefix: IPNetwork, vtep: IPAddress) -> RouteEntry:
    """``RouteEntry(vrf, l3vni, prefix, vtep)``, built faster."""
    entry: RouteEntry = _new(RouteEntry)
    _ROUTE_VRF(entry, vrf)
    _ROUTE_L3VNI(entry, l3vni)
    _ROUTE_PREFIX(entry, prefix)
    _ROUTE_VTEP(entry, vtep)
    return entry


def host_route(ip: IPAddress) -> IPNetwork:
    """The /32 or /128 of an address (a type-2 MAC+IP route's host route in its IP-VRF)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ipaddress.IPv4Network((ip, 32))
    return ipaddress.IPv6Network((ip, 128))
