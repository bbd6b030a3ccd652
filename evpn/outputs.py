"""What one core call returns, as plain values: per-peer UPDATE contents, one dataplane delta, notices."""

from __future__ import annotations

from dataclasses import dataclass, field

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress
from evpn.codec.messages import Route
from evpn.dataplane_state import DataplaneDelta
from evpn.notices import Notice


@dataclass(frozen=True, slots=True)
class RoutesToAdvertise:
    """Routes for ``peer`` sharing one set of attributes and one next hop (one or more UPDATEs)."""

    peer: IPAddress
    attributes: PathAttributes
    next_hop: IPAddress
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class RoutesToWithdraw:
    peer: IPAddress
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class CoreOutput:
    advertise: tuple[RoutesToAdvertise, ...] = ()
    withdraw: tuple[RoutesToWithdraw, ...] = ()
    dataplane: DataplaneDelta = field(default_factory=DataplaneDelta)
    notices: tuple[Notice, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.advertise or self.withdraw or self.dataplane or self.notices)
