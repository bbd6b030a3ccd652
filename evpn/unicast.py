"""IPv4 and IPv6 unicast routing instances beside EVPN (RFC 4271 §9, RFC 4760).

Two kinds of instance, as in OpenPERouter's FRR configuration:

- the default instance: the underlay neighbors and the ``L3Passthrough`` host session; we originate the
  VTEP /32 (/128), and the best paths learned from peers go to the router namespace's main table;
- one instance per L3VNI with a host session: the host's routes become type-5 routes, and the prefixes the
  IP-VRF imports from EVPN are advertised to the host.

``UnicastTable`` keeps every candidate per prefix, best first; ``PrefixIndex`` answers longest-prefix
matches for next-hop tracking. Both are plain data structures: the core wires them.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress, IPNetwork
from evpn.rib import Rank


class UnicastPath(NamedTuple):
    """One unicast route: from a peer, ours (``peer`` None), or, in a host-session VRF, the route the
    IP-VRF imports from EVPN (``imported``: next hop the remote VTEP), which competes with the host's paths
    in one best-path selection as in FRR's VRF table."""

    peer: IPAddress | None
    prefix: IPNetwork
    attrs: PathAttributes
    next_hop: IPAddress
    rank: Rank
    imported: bool = False

    @property
    def from_peer(self) -> bool:
        return self.peer is not None


def _rank(path: UnicastPath) -> Rank:
    return path.rank


class UnicastTable:
    """The unicast Loc-RIB of one instance: per prefix every candidate, best first (RFC 4271 §9.1.2)."""

    __slots__ = ("asn", "candidates", "l3vni", "vrf")

    def __init__(self, vrf: str | None, l3vni: int | None, asn: int) -> None:
        self.vrf = vrf
        """None: the default instance."""
        self.l3vni = l3vni
        self.asn = asn
        """Our ASN in this instance (a host session's ``asn`` in a VRF)."""
        self.candidates: dict[IPNetwork, list[UnicastPath]] = {}

    def best(self, prefix: IPNetwork) -> UnicastPath | None:
        paths = self.candidates.get(prefix)
        return paths[0] if paths else None

    def put(
        self, path: UnicastPath, old: UnicastPath | None
    ) -> tuple[UnicastPath | None, UnicastPath | None]:
        """Add ``path`` (replacing ``old`` from the same source); return (best before, best after)."""
        paths = self.candidates.setdefault(path.prefix, [])
        before = paths[0] if paths else None
        if old is not None and old in paths:
            paths.remove(old)
        paths.append(path)
        paths.sort(key=_rank)
        return before, paths[0]

    def drop(self, old: UnicastPath) -> tuple[UnicastPath | None, UnicastPath | None]:
        paths = self.candidates.get(old.prefix)
        if not paths:
            return None, None
        before = paths[0]
        if old in paths:
            paths.remove(old)
        if not paths:
            del self.candidates[old.prefix]
            return before, None
        return before, paths[0]

    def bests(self) -> list[UnicastPath]:
        return [paths[0] for paths in self.candidates.values()]


class PrefixIndex:
    """A set of prefixes with longest-prefix match on addresses (FRR's next-hop resolution, zebra NHT)."""

    __slots__ = ("_by_length",)

    def __init__(self) -> None:
        self._by_length: dict[tuple[int, int], dict[int, int]] = {}

    def add(self, prefix: IPNetwork) -> None:
        bucket = self._by_length.setdefault((prefix.version, prefix.prefixlen), {})
        key = int(prefix.network_address)
        bucket[key] = bucket.get(key, 0) + 1

    def discard(self, prefix: IPNetwork) -> None:
        bucket = self._by_length.get((prefix.version, prefix.prefixlen))
        key = int(prefix.network_address)
        if bucket is None or key not in bucket:
            return
        bucket[key] -= 1
        if bucket[key] <= 0:
            del bucket[key]

    def lookup(self, address: IPAddress, *, allow_default: bool = True) -> IPNetwork | None:
        """The longest prefix holding ``address``; a /0 only with ``allow_default``."""
        width = address.max_prefixlen
        value = int(address)
        lengths = sorted((n for v, n in self._by_length if v == address.version), reverse=True)
        for length in lengths:
            if length == 0 and not allow_default:
                break
            bucket = self._by_length[(address.version, length)]
            net = (value >> (width - length)) << (width - length) if length else 0
            if net in bucket:
                kind = ipaddress.IPv4Network if address.version == 4 else ipaddress.IPv6Network
                return kind((net, length))
        return None
