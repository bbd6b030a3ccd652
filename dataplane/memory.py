"""An in-memory dataplane with the kernel one's behaviour (ownership, VNIs it knows), for tests without root."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Iterable

from dataplane.interface import ApplyResult, EntryFailure, LocalEvent, Operation
from evpn.dataplane_state import DataplaneDelta, DataplaneEntry, FdbEntry, NeighEntry, RouteEntry


def entry_vni(entry: DataplaneEntry) -> int:
    return entry.l3vni if isinstance(entry, RouteEntry) else entry.vni


class MemoryDataplane:
    """Holds entries in a set. ``vnis`` (when given) are the VNIs with devices: others fail with ENODEV,
    as in the kernel. ``inject`` feeds the event stream."""

    def __init__(self, vnis: Iterable[int] | None = None) -> None:
        self._vnis = frozenset(vnis) if vnis is not None else None
        self._entries: set[DataplaneEntry] = set()
        self._events: asyncio.Queue[LocalEvent] = asyncio.Queue()
        self.applied: list[DataplaneDelta] = []

    def _check(self, entry: DataplaneEntry, operation: Operation) -> EntryFailure | None:
        if self._vnis is not None and entry_vni(entry) not in self._vnis:
            return EntryFailure(entry, operation, errno.ENODEV, f"no device for VNI {entry_vni(entry)}")
        return None

    async def apply(self, delta: DataplaneDelta) -> ApplyResult:
        self.applied.append(delta)
        failures: list[EntryFailure] = []
        added = removed = 0
        for entry in delta.remove:
            if (failure := self._check(entry, Operation.REMOVE)) is not None:
                failures.append(failure)
                continue
            self._entries.discard(entry)
            removed += 1
        for entry in delta.add:
            if (failure := self._check(entry, Operation.ADD)) is not None:
                failures.append(failure)
                continue
            if isinstance(entry, FdbEntry):  # one remote VTEP per (vni, mac): an add replaces
                self._entries -= {
                    e
                    for e in self._entries
                    if isinstance(e, FdbEntry) and (e.vni, e.mac) == (entry.vni, entry.mac)
                }
            elif isinstance(entry, NeighEntry):
                self._entries -= {
                    e
                    for e in self._entries
                    if isinstance(e, NeighEntry) and (e.vni, e.ip) == (entry.vni, entry.ip)
                }
            elif isinstance(entry, RouteEntry):
                self._entries -= {
                    e
                    for e in self._entries
                    if isinstance(e, RouteEntry) and (e.vrf, e.prefix) == (entry.vrf, entry.prefix)
                }
            self._entries.add(entry)
            added += 1
        return ApplyResult(added, removed, tuple(failures))

    async def reconcile(self, desired: Iterable[DataplaneEntry]) -> ApplyResult:
        wanted = set(desired)
        return await self.apply(
            DataplaneDelta(
                add=tuple(sorted(wanted - self._entries, key=repr)),
                remove=tuple(sorted(self._entries - wanted, key=repr)),
            )
        )

    async def installed(self) -> frozenset[DataplaneEntry]:
        return frozenset(self._entries)

    async def close(self) -> None:
        return None

    def inject(self, event: LocalEvent) -> None:
        self._events.put_nowait(event)

    async def events(self) -> AsyncIterator[LocalEvent]:
        while True:
            yield await self._events.get()
