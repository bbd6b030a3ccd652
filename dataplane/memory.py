"""An in-memory dataplane with the kernel one's behaviour (ownership, VNIs it knows), for tests without root."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Iterable

from dataplane.interface import ApplyResult, EntryFailure, LocalEvent, Operation
from evpn.dataplane_state import (
    DataplaneDelta,
    DataplaneEntry,
    FdbEntry,
    NeighEntry,
    RouteEntry,
    UnicastRouteEntry,
)


def entry_vni(entry: DataplaneEntry) -> int | None:
    """The VNI whose devices an entry needs (None: a unicast route, which needs its VRF only)."""
    if isinstance(entry, UnicastRouteEntry):
        return None
    return entry.l3vni if isinstance(entry, RouteEntry) else entry.vni


class MemoryDataplane:
    """Holds entries as the kernel would: one remote VTEP per (vni, mac), one MAC per (vni, ip), one EVPN route
    and one unicast route per (vrf, prefix), so an add replaces the entry in its slot; O(1) per entry.
    ``vnis`` (when given) are the VNIs with devices, ``vrfs`` the VRFs unicast routes may go to (the default
    VRF "" always): others fail with ENODEV, as in the kernel. ``inject`` feeds the event stream."""

    def __init__(self, vnis: Iterable[int] | None = None, vrfs: Iterable[str] | None = None) -> None:
        self._vnis = frozenset(vnis) if vnis is not None else None
        self._vrfs = frozenset(vrfs) | {""} if vrfs is not None else None
        self._slots: dict[object, DataplaneEntry] = {}
        self._events: asyncio.Queue[LocalEvent] = asyncio.Queue()

    def __len__(self) -> int:
        return len(self._slots)

    def entries(self) -> frozenset[DataplaneEntry]:
        """What is installed, read synchronously (``installed`` is the interface's async form)."""
        return frozenset(self._slots.values())

    @staticmethod
    def _slot(entry: DataplaneEntry) -> object:
        """The kernel object an entry occupies (an add to an occupied slot is a replace)."""
        if isinstance(entry, FdbEntry):
            return (1, entry.vni, entry.mac.packed)
        if isinstance(entry, NeighEntry):
            return (2, entry.vni, entry.ip)
        if isinstance(entry, RouteEntry):
            return (3, entry.vrf, entry.prefix)
        if isinstance(entry, UnicastRouteEntry):
            return (4, entry.vrf, entry.prefix)
        return entry

    def _check(self, entry: DataplaneEntry, operation: Operation) -> EntryFailure | None:
        if isinstance(entry, UnicastRouteEntry):
            if self._vrfs is not None and entry.vrf not in self._vrfs:
                return EntryFailure(entry, operation, errno.ENODEV, f"VRF {entry.vrf!r} is not configured")
            return None
        vni = entry_vni(entry)
        if self._vnis is not None and vni not in self._vnis:
            return EntryFailure(entry, operation, errno.ENODEV, f"no device for VNI {vni}")
        return None

    async def apply(self, delta: DataplaneDelta) -> ApplyResult:
        failures: list[EntryFailure] = []
        added = removed = 0
        slots, slot_of = self._slots, self._slot
        for entry in delta.remove:
            if (failure := self._check(entry, Operation.REMOVE)) is not None:
                failures.append(failure)
                continue
            slot = slot_of(entry)
            if slots.get(slot) == entry:
                del slots[slot]
            removed += 1
        for entry in delta.add:
            if (failure := self._check(entry, Operation.ADD)) is not None:
                failures.append(failure)
                continue
            slots[slot_of(entry)] = entry
            added += 1
        return ApplyResult(added, removed, tuple(failures))

    async def reconcile(self, desired: Iterable[DataplaneEntry]) -> ApplyResult:
        wanted = set(desired)
        held = set(self._slots.values())
        return await self.apply(DataplaneDelta(add=tuple(wanted - held), remove=tuple(held - wanted)))

    async def installed(self) -> frozenset[DataplaneEntry]:
        return self.entries()

    async def close(self) -> None:
        return None

    def inject(self, event: LocalEvent) -> None:
        self._events.put_nowait(event)

    async def events(self) -> AsyncIterator[LocalEvent]:
        while True:
            yield await self._events.get()
