"""Per-peer state of the core: session facts from PeerUp, Adj-RIB-In, Adj-RIB-Out, graceful-restart stale set."""

from __future__ import annotations

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import EvpnRoute, IPAddress, IPNetwork
from evpn.codec.families import Family
from evpn.rib import Path, RouteKey
from evpn.unicast import UnicastPath

OutEntry = tuple[EvpnRoute | IPNetwork, PathAttributes, IPAddress]


class PeerState:
    """One neighbour. ``adj_in`` keys are ``route.key`` (RFC 4271 §3.2); ``stale`` holds keys kept across a
    graceful restart until refreshed, swept at End-of-RIB or at ``stale_deadline`` (RFC 4724 §4.2)."""

    __slots__ = (
        "address",
        "adj_in",
        "adj_out",
        "asn",
        "families",
        "graceful_restart",
        "ibgp",
        "local_address",
        "router_id",
        "rr_client",
        "stale",
        "stale_deadline",
        "unicast_in",
        "up",
    )

    def __init__(self, address: IPAddress) -> None:
        self.address = address
        self.asn = 0
        self.router_id: IPAddress | None = None
        self.ibgp = True
        self.rr_client = False
        self.families: frozenset[Family] = frozenset()
        self.graceful_restart = False
        self.up = False
        self.adj_in: dict[RouteKey, Path] = {}
        self.adj_out: dict[RouteKey, OutEntry] = {}
        self.stale: set[RouteKey] = set()
        """Stale keys: EVPN route keys, and ``(0, prefix)`` for unicast routes."""
        self.stale_deadline: float | None = None
        self.local_address: IPAddress | None = None
        self.unicast_in: dict[IPNetwork, UnicastPath] = {}
        """Adj-RIB-In of IPv4/IPv6 unicast (RFC 4271 §3.2)."""

    @property
    def wants_evpn(self) -> bool:
        return not self.families or Family.L2VPN_EVPN in self.families
