"""Notices: what the core tells the operator (logs, metrics), as frozen values."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from evpn.codec.evpn_nlri import IPAddress
from evpn.mac import MacAddress


class MacLocation(enum.Enum):
    LOCAL = "local"
    REMOTE = "remote"


@dataclass(frozen=True, slots=True)
class MacMoved:
    """A MAC changed location (RFC 7432 §15); ``vtep`` None means local; ``sequence`` is the new one."""

    vni: int
    mac: MacAddress
    from_vtep: IPAddress | None
    to_vtep: IPAddress | None
    sequence: int


@dataclass(frozen=True, slots=True)
class MacDuplicate:
    """``moves`` moves within the detection window: the MAC is no longer advertised (RFC 7432 §15.1)."""

    vni: int
    mac: MacAddress
    moves: int


@dataclass(frozen=True, slots=True)
class MacFrozen:
    """A duplicate MAC is pinned where it is until ``until`` (None: until cleared), FRR's freeze."""

    vni: int
    mac: MacAddress
    until: float | None


@dataclass(frozen=True, slots=True)
class MacDuplicateCleared:
    """A duplicate (or frozen) MAC recovered: normal learning and advertising resume."""

    vni: int
    mac: MacAddress


@dataclass(frozen=True, slots=True)
class StickyMacConflict:
    """A sticky MAC was learned or announced elsewhere; the sticky location stays (RFC 7432 §15.2)."""

    vni: int
    mac: MacAddress
    kept_vtep: IPAddress | None
    ignored_vtep: IPAddress | None


class RejectReason(enum.Enum):
    ORIGINATOR_ID_LOOP = "originator id is ours (RFC 4456 §8)"
    CLUSTER_LIST_LOOP = "cluster list holds our cluster id (RFC 4456 §8)"
    AS_PATH_LOOP = "AS path holds our AS (RFC 4271 §9.1.2)"
    TREAT_AS_WITHDRAW = "type-5 with label 0 and no gateway (RFC 9136 §3.2)"
    NO_ROUTER_MAC = "no Router's MAC for symmetric IRB (RFC 9135 §8.1)"
    NO_NEXT_HOP = "announcement without next hop"
    UNKNOWN_PEER = "peer is not established"


@dataclass(frozen=True, slots=True)
class RouteRejected:
    """A received route was not accepted, or accepted but not imported anywhere."""

    peer: IPAddress
    route: object
    reason: RejectReason


@dataclass(frozen=True, slots=True)
class StaleRoutesSwept:
    """Graceful restart: stale routes of ``peer`` removed at End-of-RIB or timer (RFC 4724 §4.2)."""

    peer: IPAddress
    count: int


@dataclass(frozen=True, slots=True)
class NextHopChanged:
    """Next-hop tracking: a remote VTEP became reachable (``via`` the covering route) or unreachable; its
    ``paths`` EVPN paths entered or left best-path selection (FRR: valid / inaccessible)."""

    next_hop: IPAddress
    reachable: bool
    via: object
    paths: int


Notice = (
    MacMoved
    | MacDuplicate
    | MacFrozen
    | MacDuplicateCleared
    | StickyMacConflict
    | RouteRejected
    | StaleRoutesSwept
    | NextHopChanged
)
