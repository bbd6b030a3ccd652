"""Adj-RIB-Out: who gets which route with which attributes (RFC 4271 §9.2, RFC 4456 §8, RFC 4724).

- Locally originated routes go to every peer with our VTEP as next hop.
- iBGP-learned routes go to eBGP peers; to iBGP peers only when reflecting (RFC 4456 §8: from a client to
  everyone, from a non-client to clients), never back to the peer they came from.
- eBGP: our ASN is prepended and iBGP-only attributes (LOCAL_PREF, MED, ORIGINATOR_ID, CLUSTER_LIST) go.
- Reflection: ORIGINATOR_ID is set if absent and our cluster id is prepended to CLUSTER_LIST.
Outgoing attribute objects are cached per (incoming attributes, treatment), so the routes of one UPDATE keep
sharing one object and ``OutputBuilder`` can group them into one RoutesToAdvertise.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress
from evpn.codec.messages import Route
from evpn.outputs import RoutesToAdvertise, RoutesToWithdraw
from evpn.peers import OutEntry, PeerState
from evpn.rib import DEFAULT_LOCAL_PREF, Path, RouteKey

_CACHE_LIMIT = 8192


def may_export(source: PeerState | None, to: PeerState) -> bool:
    """Split horizon and route reflection rules for a path from ``source`` (None: ours) to ``to``."""
    if source is None:
        return True
    if source is to:
        return False
    if not source.ibgp or not to.ibgp:
        return True
    return source.rr_client or to.rr_client


class AttributeRewriter:
    """Outgoing attributes per treatment, cached (identity of the incoming object is the cache key)."""

    __slots__ = ("_asn", "_cache", "_cluster_id")

    def __init__(self, asn: int, cluster_id: ipaddress.IPv4Address) -> None:
        self._asn = asn
        self._cluster_id = cluster_id
        self._cache: dict[tuple[int, bool, IPAddress | None], tuple[PathAttributes, PathAttributes]] = {}

    def rewrite(self, path: Path, source: PeerState | None, to: PeerState) -> PathAttributes:
        return self.rewrite_attrs(path.attrs, source, to)

    def rewrite_attrs(self, attrs: PathAttributes, source: PeerState | None, to: PeerState) -> PathAttributes:
        origin_id = source.router_id if source is not None else None
        ckey = (id(attrs), to.ibgp, origin_id)
        hit = self._cache.get(ckey)
        if hit is not None and hit[0] is attrs:
            return hit[1]
        out = self._compute(attrs, source, to.ibgp)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[ckey] = (attrs, out)
        return out

    def _compute(self, attrs: PathAttributes, source: PeerState | None, ibgp: bool) -> PathAttributes:
        if not ibgp:
            return dataclasses.replace(
                attrs,
                as_path=attrs.as_path.prepend(self._asn),
                local_pref=None,
                med=None if source is not None else attrs.med,
                originator_id=None,
                cluster_list=(),
            )
        lp = attrs.local_pref if attrs.local_pref is not None else DEFAULT_LOCAL_PREF
        if source is None:
            return dataclasses.replace(attrs, local_pref=lp)
        if not source.ibgp:
            return dataclasses.replace(attrs, local_pref=lp, originator_id=None, cluster_list=())
        origin_id = attrs.originator_id
        if origin_id is None and isinstance(source.router_id, ipaddress.IPv4Address):
            origin_id = source.router_id
        return dataclasses.replace(
            attrs,
            local_pref=lp,
            originator_id=origin_id,
            cluster_list=(self._cluster_id, *attrs.cluster_list),
        )


class OutputBuilder:
    """Collects Adj-RIB-Out changes of one core call and turns them into grouped per-peer outputs.

    Each change records the entry the peer had before the call, so a route advertised then withdrawn within
    one call produces nothing, and only real differences are sent.
    """

    __slots__ = ("_dirty",)

    def __init__(self) -> None:
        self._dirty: dict[PeerState, dict[RouteKey, OutEntry | None]] = {}

    def set(self, peer: PeerState, key: RouteKey, entry: OutEntry | None) -> None:
        """Make ``entry`` (None: nothing) the Adj-RIB-Out content of ``peer`` for ``key``."""
        old = peer.adj_out.get(key)
        if old is entry:
            return
        dirty = self._dirty.get(peer)
        if dirty is None:
            dirty = self._dirty[peer] = {}
        if key not in dirty:
            dirty[key] = old
        if entry is None:
            del peer.adj_out[key]
        else:
            peer.adj_out[key] = entry

    def build(self) -> tuple[tuple[RoutesToAdvertise, ...], tuple[RoutesToWithdraw, ...]]:
        advertise: list[RoutesToAdvertise] = []
        withdraw: list[RoutesToWithdraw] = []
        for peer, dirty in self._dirty.items():
            groups: dict[tuple[int, IPAddress], tuple[PathAttributes, list[Route]]] = {}
            gone: list[Route] = []
            adj_out = peer.adj_out
            for key, old in dirty.items():
                new = adj_out.get(key)
                if new is None:
                    if old is not None:
                        gone.append(old[0])
                    continue
                if old is not None and old == new:
                    continue
                route, attrs, nh = new
                gkey = (id(attrs), nh)
                group = groups.get(gkey)
                if group is None:
                    groups[gkey] = (attrs, [route])
                else:
                    group[1].append(route)
            addr = peer.address
            if gone:
                withdraw.append(RoutesToWithdraw(addr, tuple(gone)))
            for (_, nh), (attrs, routes) in groups.items():
                advertise.append(RoutesToAdvertise(addr, attrs, nh, tuple(routes)))
        self._dirty = {}
        return tuple(advertise), tuple(withdraw)
