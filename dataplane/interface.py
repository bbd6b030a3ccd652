"""The dataplane as the speaker sees it: install a delta, converge to a desired set, read back what is there.

Implemented by :class:`dataplane.reconciler.KernelDataplane` (netlink) and
:class:`dataplane.memory.MemoryDataplane` (tests without root). Local learning comes from a separate
:class:`EventSource` (``dataplane.monitor.Monitor`` for the kernel).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

from evpn.dataplane_state import DataplaneDelta, DataplaneEntry
from evpn.events import KernelRoutes, LocalMacAged, LocalMacLearned, LocalNeighLearned, LocalNeighRemoved


class Operation(enum.StrEnum):
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class EntryFailure:
    """One entry the dataplane could not install or remove; the rest of the batch went on."""

    entry: DataplaneEntry
    operation: Operation
    errno: int
    reason: str


@dataclass(frozen=True, slots=True)
class ApplyResult:
    added: int = 0
    removed: int = 0
    failures: tuple[EntryFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """A device the speaker watches went up or down (``vni`` is the VNI it belongs to)."""

    ifname: str
    vni: int | None
    up: bool


LocalEvent = (
    LocalMacLearned | LocalMacAged | LocalNeighLearned | LocalNeighRemoved | LinkChanged | KernelRoutes
)
"""What an :class:`EventSource` yields. ``KernelRoutes`` is the router namespace's whole main table (without our
routes), for next-hop tracking: first at start, then after every change."""


class Dataplane(Protocol):
    async def apply(self, delta: DataplaneDelta) -> ApplyResult:
        """Removals first, then additions; a failing entry is reported and the others still applied."""
        ...

    async def reconcile(self, desired: Iterable[DataplaneEntry]) -> ApplyResult:
        """Make the installed entries exactly ``desired`` (start-up): keep, add missing, remove stale own."""
        ...

    async def installed(self) -> frozenset[DataplaneEntry]:
        """The entries this dataplane owns as they are now (read back, not remembered)."""
        ...

    async def close(self) -> None: ...


class EventSource(Protocol):
    def events(self) -> AsyncIterator[LocalEvent]:
        """Local learning as it happens; the current local state first (the kernel's routes before that)."""
        ...
