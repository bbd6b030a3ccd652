"""The narrow interface every BGP session engine offers the speaker (DESIGN.md §2).

An engine owns the sessions of one speaker: it connects and accepts, runs OPEN/KEEPALIVE/NOTIFICATION, and
moves routes. What to advertise to whom is the core's decision; the engine keeps, per peer, the routes the
owner gave it (an Adj-RIB-Out), replays them whenever a session comes up, and reports what peers send as
core events (``evpn.events``). Several engines can live in one process: no global state.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress
from evpn.codec.messages import Route
from evpn.events import EndOfRib, PeerDown, PeerUp, RoutesReceived

EngineEvent = PeerUp | PeerDown | RoutesReceived | EndOfRib


class EndOfRibMode(enum.Enum):
    """When an engine sends End-of-RIB (RFC 4724 §2) after a session comes up.

    ``AUTO``: right after replaying the routes already given to ``advertise`` for that peer (the initial
    table is what the owner advertised before the session came up). ``MANUAL``: only when the owner calls
    ``end_of_rib(peer)`` (the owner computes its initial table on ``PeerUp`` and then says it is done).
    """

    AUTO = "auto"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class PeerState:
    """One line of ``show bgp summary`` (FRR's columns)."""

    peer: IPAddress
    asn: int | None
    state: str
    uptime: float | None
    messages_in: int
    messages_out: int
    prefixes_received: int
    flaps: int
    last_error: str
    description: str = ""
    router_id: str | None = None


@runtime_checkable
class SessionEngine(Protocol):
    """Sessions and bytes; the EVPN content is built and parsed by our codec whatever the engine.

    ``peer`` None in ``advertise``/``withdraw``/``end_of_rib`` means every configured peer. Routes given to
    ``advertise`` replace earlier announcements of the same route key for that peer.
    """

    async def start(self) -> None:
        """Listen and start connecting to the configured neighbors."""

    async def stop(self, graceful: bool = False) -> None:
        """Close every session: a Cease NOTIFICATION (RFC 4486 §4, Administrative Shutdown), or with
        ``graceful`` no NOTIFICATION so peers keep our routes as stale (RFC 4724 §4); then end ``events()``."""

    async def advertise(
        self,
        peer: IPAddress | None,
        attributes: PathAttributes,
        next_hop: IPAddress,
        routes: Sequence[Route],
    ) -> None:
        """Announce ``routes`` sharing ``attributes`` and ``next_hop`` (the VTEP for EVPN)."""

    async def withdraw(self, peer: IPAddress | None, routes: Sequence[Route]) -> None:
        """Withdraw ``routes`` (by route key)."""

    async def end_of_rib(self, peer: IPAddress | None = None) -> None:
        """Mark the initial table as complete (sends End-of-RIB in ``EndOfRibMode.MANUAL``; else a no-op)."""

    def events(self) -> AsyncIterator[EngineEvent]:
        """PeerUp / PeerDown / RoutesReceived / EndOfRib in arrival order; ends after ``stop``."""
        ...

    def peer_states(self) -> list[PeerState]:
        """``show bgp summary``: one entry per configured neighbor."""
        ...


_P = TypeVar("_P")


def select_peers(peers: Mapping[IPAddress, _P], peer: IPAddress | None) -> list[_P]:
    """The peers an ``advertise``/``withdraw``/``end_of_rib`` call means: every one for None, else that one
    (a ValueError naming it when it is not a configured neighbor)."""
    if peer is None:
        return list(peers.values())
    try:
        return [peers[peer]]
    except KeyError:
        raise ValueError(f"{peer} is not a configured neighbor") from None
