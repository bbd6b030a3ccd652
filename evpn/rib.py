"""Paths, the BGP decision process for EVPN and the Loc-RIB (RFC 4271 §9.1, RFC 7432 §15, RFC 4456 §9).

A ``Path`` is one route as received from one peer (or originated by us). Its ``rank`` is computed once per
UPDATE (all routes of an UPDATE share attributes and peer) and orders paths, smaller first:

  sticky MAC (RFC 7432 §15.2), higher MAC Mobility sequence (§15.1), higher LOCAL_PREF, shorter AS path,
  lower ORIGIN, lower MED, eBGP over iBGP, shorter CLUSTER_LIST, lower ORIGINATOR_ID / router id,
  lower peer address (RFC 4271 §9.1.2.2, RFC 4456 §9).

MED is always compared (not only between paths from one neighbour AS) so that the order is total and the
result does not depend on arrival order. The peer address makes ranks of different peers distinct.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable
from typing import NamedTuple

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import EvpnRoute, IPAddress, MacIpRoute

Rank = tuple[int, int, int, int, int, int, int, int, int, tuple[int, int]]
RouteKey = tuple[object, ...]

DEFAULT_LOCAL_PREF = 100


class Path(NamedTuple):
    """One route from one source; immutable (a NamedTuple: cheap to build on the hot path)."""

    peer: IPAddress | None
    """The peer it came from; None for a route we originate."""
    route: EvpnRoute
    attrs: PathAttributes
    next_hop: IPAddress
    rank: Rank
    l2: tuple[int, ...]
    """L2VNIs whose import RTs match (MAC-VRF imports)."""
    l3: tuple[int, ...]
    """L3VNIs whose import RTs match (IP-VRF imports)."""

    @property
    def sticky(self) -> bool:
        return self.rank[0] == 0

    @property
    def sequence(self) -> int:
        return -self.rank[1]


def route_key(route: EvpnRoute) -> RouteKey:
    """The route key the RIB indexes on: the same fields as ``route.key`` (RFC 7432 §7.2: RD, Ethernet Tag,
    MAC, IP; ESI and labels excluded), for type-2 held as bytes and ints, whose hashes are cached or cheap
    (hashing an ``ipaddress`` object formats a hex string each time). Element 0 is the route type."""
    if type(route) is MacIpRoute:
        ip = route.ip
        if ip is None:
            return (2, route.rd.packed, route.ethernet_tag, route.mac.packed, 0, 0)
        return (
            2,
            route.rd.packed,
            route.ethernet_tag,
            route.mac.packed,
            4 if isinstance(ip, ipaddress.IPv4Address) else 6,
            _ip_int(ip),
        )
    return route.key


def _int_getter() -> Callable[[IPAddress], int]:
    """``int(ip)`` without the Python-level ``__int__`` call: a C-level getter of the integer an
    ``ipaddress`` object keeps, if this Python's ``ipaddress`` keeps it where expected (checked once)."""
    getter = operator.attrgetter("_ip")
    try:
        for ip in (ipaddress.IPv4Address("192.0.2.1"), ipaddress.IPv6Address("2001:db8::1")):
            value = getter(ip)
            if type(value) is not int or value != int(ip):
                return int
    except AttributeError:
        return int
    result: Callable[[IPAddress], int] = getter
    return result


_ip_int = _int_getter()


PathSet = Path | list[Path] | None
"""The candidates of one MAC, IP or prefix in a VRF: nothing, one Path (the usual case) or a list."""


def pathset_add(held: PathSet, path: Path) -> PathSet:
    if held is None:
        return path
    if isinstance(held, list):
        held.append(path)
        return held
    return [held, path]


def pathset_remove(held: PathSet, path: Path) -> PathSet:
    if held is path:
        return None
    if isinstance(held, list):
        for i, p in enumerate(held):
            if p is path:
                del held[i]
                break
        return held[0] if len(held) == 1 else held
    return held


def pathset_iter(held: PathSet) -> tuple[Path, ...] | list[Path]:
    if held is None:
        return ()
    return held if isinstance(held, list) else (held,)


def pathset_best(held: PathSet) -> Path | None:
    """The winner among candidates (``candidate_order``)."""
    if held is None or not isinstance(held, list):
        return held
    return min(held, key=candidate_order)


def address_key(ip: IPAddress) -> tuple[int, int]:
    """A total order over IPv4 and IPv6 addresses (IPv4 first)."""
    return (ip.version, int(ip))


def path_rank(attrs: PathAttributes, peer: IPAddress, ebgp: bool, peer_router_id: IPAddress | None) -> Rank:
    """The rank of every path of one UPDATE (see the module docstring)."""
    mm = attrs.mac_mobility
    sticky = mm is not None and mm.sticky
    seq = mm.sequence if mm is not None else 0
    lp = attrs.local_pref if attrs.local_pref is not None else DEFAULT_LOCAL_PREF
    origin_id = attrs.originator_id if attrs.originator_id is not None else peer_router_id
    return (
        0 if sticky else 1,
        -seq,
        -lp,
        attrs.as_path.length,
        int(attrs.origin),
        attrs.med if attrs.med is not None else 0,
        0 if ebgp else 1,
        len(attrs.cluster_list),
        int(origin_id) if isinstance(origin_id, ipaddress.IPv4Address) else 0,
        address_key(peer),
    )


def candidate_order(path: Path) -> tuple[int, int, tuple[int, int], Rank, RouteKey]:
    """Order among paths of *different* route keys for one MAC, IP or prefix in a VRF: sticky, sequence,
    then the lowest VTEP wins (RFC 7432 §15.1), then the rest of the decision, then the route key (two
    routes of one peer can tie on everything else; the key makes the choice independent of arrival order)."""
    rank = path.rank
    return (rank[0], rank[1], address_key(path.next_hop), rank, route_key(path.route))


class LocRib:
    """Per route key, every path received, best first (Adj-RIBs-In live in the peers).

    A key with one path (the usual case) holds the Path itself, not a one-element list: 88 bytes less
    per route."""

    __slots__ = ("_paths",)

    def __init__(self) -> None:
        self._paths: dict[RouteKey, Path | list[Path]] = {}

    def put(self, key: RouteKey, path: Path, old: Path | None) -> tuple[Path | None, Path | None]:
        """Add ``path`` (replacing ``old`` of the same peer); return (best before, best after)."""
        held = self._paths.get(key)
        if held is None or held is old:
            self._paths[key] = path
            return held, path
        paths = held if isinstance(held, list) else [held]
        before = paths[0]
        for i, p in enumerate(paths):
            if p is old:
                paths[i] = path
                break
        else:
            paths.append(path)
        best = min(paths, key=_rank_of)
        if best is not paths[0]:
            paths.remove(best)
            paths.insert(0, best)
        self._paths[key] = paths
        return before, paths[0]

    def drop(self, key: RouteKey, old: Path) -> tuple[Path | None, Path | None]:
        """Remove ``old``; return (best before, best after)."""
        held = self._paths.get(key)
        if held is None:
            return None, None
        if not isinstance(held, list):
            if held is old:
                del self._paths[key]
                return held, None
            return held, held
        paths = held
        before = paths[0]
        for i, p in enumerate(paths):
            if p is old:
                del paths[i]
                break
        if before is old:
            best = min(paths, key=_rank_of)
            if best is not paths[0]:
                paths.remove(best)
                paths.insert(0, best)
        if len(paths) == 1:
            self._paths[key] = paths[0]
        return before, paths[0]

    def best(self, key: RouteKey) -> Path | None:
        held = self._paths.get(key)
        if held is None or not isinstance(held, list):
            return held
        return held[0]

    def paths(self, key: RouteKey) -> tuple[Path, ...]:
        held = self._paths.get(key)
        if held is None:
            return ()
        return tuple(held) if isinstance(held, list) else (held,)

    def items(self) -> list[tuple[RouteKey, tuple[Path, ...]]]:
        """Every key with its paths, best first."""
        return [(k, tuple(v) if isinstance(v, list) else (v,)) for k, v in self._paths.items()]

    def path_count(self) -> int:
        """How many paths, over every key (``show bgp summary``'s RIB entries) without building a view."""
        return sum(len(v) if isinstance(v, list) else 1 for v in self._paths.values())

    def __len__(self) -> int:
        return len(self._paths)


def _rank_of(path: Path) -> Rank:
    return path.rank
