"""Input events of the core (sans-IO): what the dataplane monitor and the session engine report.

Time never comes from a clock here: every handler takes ``now`` (seconds, monotonic) as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress, IPNetwork
from evpn.codec.families import Family
from evpn.codec.messages import Route
from evpn.mac import MacAddress


@dataclass(frozen=True, slots=True)
class LocalMacLearned:
    """A MAC seen on a local (non-VXLAN) port of the bridge of ``vni``; also a local move between ports."""

    vni: int
    mac: MacAddress
    sticky: bool = False


@dataclass(frozen=True, slots=True)
class LocalMacAged:
    """A local MAC aged out or was deleted from the bridge of ``vni``."""

    vni: int
    mac: MacAddress


@dataclass(frozen=True, slots=True)
class LocalNeighLearned:
    """A local host's IP-to-MAC binding on the SVI of ``vni`` (ARP, GARP, NA): a MAC+IP type-2 route."""

    vni: int
    ip: IPAddress
    mac: MacAddress


@dataclass(frozen=True, slots=True)
class LocalNeighRemoved:
    vni: int
    ip: IPAddress


@dataclass(frozen=True, slots=True)
class LocalPrefixAdded:
    """A prefix to originate as type-5 in ``vrf`` (connected, static, or learned from a host session)."""

    vrf: str
    prefix: IPNetwork


@dataclass(frozen=True, slots=True)
class LocalPrefixRemoved:
    vrf: str
    prefix: IPNetwork


@dataclass(frozen=True, slots=True)
class PeerUp:
    """A session reached Established; ``ibgp`` and the families negotiated come from the OPEN exchange."""

    peer: IPAddress
    peer_asn: int
    peer_router_id: IPAddress
    ibgp: bool
    families: frozenset[Family]
    route_reflector_client: bool = False
    graceful_restart: bool = False
    local_address: IPAddress | None = None
    """Our address on the session: the next hop of unicast routes we send with next-hop-self."""


@dataclass(frozen=True, slots=True)
class PeerDown:
    """A session left Established. ``graceful`` keeps its routes as stale (RFC 4724 §4.2)."""

    peer: IPAddress
    reason: str = ""
    graceful: bool = False


@dataclass(frozen=True, slots=True)
class RoutesReceived:
    """Routes announced (with their shared attributes and next hop) and withdrawn by one UPDATE."""

    peer: IPAddress
    announced: tuple[Route, ...] = ()
    attributes: PathAttributes | None = None
    next_hop: IPAddress | None = None
    withdrawn: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class EndOfRib:
    """The peer finished its initial table for ``family`` (RFC 4724 §2)."""

    peer: IPAddress
    family: Family


@dataclass(frozen=True, slots=True)
class KernelRoutes:
    """Every route of the router namespace's main table that we did not install (connected, static, other
    daemons): with BGP unicast routes they make remote VTEPs reachable for next-hop tracking."""

    prefixes: frozenset[IPNetwork]


CoreEvent = (
    LocalMacLearned
    | LocalMacAged
    | LocalNeighLearned
    | LocalNeighRemoved
    | LocalPrefixAdded
    | LocalPrefixRemoved
    | PeerUp
    | PeerDown
    | RoutesReceived
    | EndOfRib
    | KernelRoutes
)
