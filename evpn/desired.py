"""The dataplane delta of one core call.

Each MAC-VRF and IP-VRF owns the entries it installs and never installs one twice (one FDB entry per MAC,
one neighbour per IP, one route per prefix; entries shared by several routes, such as a VTEP's Router's MAC
or a flood entry, are reference counted by their VRF). So this journal only records adds and removes, in
order, and folds them once per call: an entry added then removed within one call cancels out. Hashing an
entry (a dataclass holding ``ipaddress`` objects) costs about a microsecond, so the hot path appends to a
list, and entries are hashed only when one call both adds and removes (to fold them). The full desired state is read back from the VRFs.
"""

from __future__ import annotations

from collections.abc import Callable

from evpn.dataplane_state import DataplaneDelta, DataplaneEntry


class DeltaJournal:
    """Adds and removes since the last ``take_delta``."""

    __slots__ = ("_adds", "_removes", "add", "remove")

    def __init__(self) -> None:
        self._adds: list[DataplaneEntry] = []
        self._removes: list[DataplaneEntry] = []
        # the lists' own append methods: recording an entry costs no Python-level call (hot path)
        self.add: Callable[[DataplaneEntry], None] = self._adds.append
        """Record an entry installed."""
        self.remove: Callable[[DataplaneEntry], None] = self._removes.append
        """Record an entry removed."""

    def take_delta(self) -> DataplaneDelta:
        """The net changes since the previous call. For one entry, adds and removes alternate, so the net
        count (adds - removes) is -1, 0 or +1."""
        if not self._adds and not self._removes:
            return _EMPTY
        adds, removes = tuple(self._adds), tuple(self._removes)
        self._adds.clear()  # in place: ``add`` and ``remove`` are bound to these lists
        self._removes.clear()
        if not removes:  # the VRFs never add an entry twice without removing it in between
            return DataplaneDelta(adds, ())
        if not adds:
            return DataplaneDelta((), removes)
        net: dict[DataplaneEntry, int] = dict.fromkeys(removes, 0)
        for entry in removes:
            net[entry] -= 1
        for entry in adds:
            net[entry] = net.get(entry, 0) + 1
        return DataplaneDelta(
            tuple(e for e, n in net.items() if n > 0), tuple(e for e, n in net.items() if n < 0)
        )


_EMPTY = DataplaneDelta()
