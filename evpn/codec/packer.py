"""Packs many NLRIs sharing identical attributes into as few UPDATEs as the negotiated size allows.

The limit is 4096 bytes, or 65535 with the extended message capability (RFC 8654). MP_REACH_NLRI is put
first in the attribute list so a receiver can always locate the NLRI for treat-as-withdraw (RFC 7606 §5.1).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Iterator, Sequence

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import IPAddress
from evpn.codec.families import Family
from evpn.codec.messages import (
    HEADER_LEN,
    MAX_MESSAGE,
    MessageType,
    Route,
    encode_mp_reach,
    encode_mp_unreach,
    encode_route,
    family_of,
    frame,
)
from evpn.errors import InvalidValue

_MP_ATTR_HEADER = 4  # flags, type, 2-byte extended length


def _chunks(encoded: Iterable[bytes], room: int) -> Iterator[bytes]:
    """Greedy fill: consecutive encoded NLRIs joined into runs of at most ``room`` bytes."""
    run: list[bytes] = []
    size = 0
    for item in encoded:
        if size + len(item) > room and run:
            yield b"".join(run)
            run, size = [], 0
        if len(item) > room:
            raise InvalidValue("an NLRI does not fit in one UPDATE")
        run.append(item)
        size += len(item)
    if run:
        yield b"".join(run)


def _group(routes: Iterable[Route]) -> dict[Family, list[Route]]:
    groups: dict[Family, list[Route]] = {}
    for route in routes:
        groups.setdefault(family_of(route), []).append(route)
    return groups


class UpdatePacker:
    """Builds wire UPDATEs for one session; ``max_size`` is the negotiated maximum message size."""

    def __init__(self, max_size: int = MAX_MESSAGE, four_octet_as: bool = True) -> None:
        self.max_size = max_size
        self.four_octet_as = four_octet_as

    def announce(
        self, attributes: PathAttributes, routes: Sequence[Route], next_hop: IPAddress
    ) -> list[bytes]:
        """UPDATEs announcing ``routes`` with ``attributes`` and ``next_hop`` (VTEP for EVPN)."""
        out: list[bytes] = []
        for family, members in _group(routes).items():
            if family is Family.IPV4_UNICAST:
                if not isinstance(next_hop, ipaddress.IPv4Address):
                    raise InvalidValue("IPv4 unicast needs an IPv4 next hop")
                attrs = dataclasses.replace(attributes, next_hop=next_hop).encode(self.four_octet_as)
                head = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs
                room = self.max_size - HEADER_LEN - len(head)
                out.extend(
                    frame(MessageType.UPDATE, head + run) for run in _chunks(map(encode_route, members), room)
                )
                continue
            attrs = dataclasses.replace(attributes, next_hop=None).encode(self.four_octet_as)
            nh = next_hop.packed
            overhead = HEADER_LEN + 4 + len(attrs) + _MP_ATTR_HEADER + 5 + len(nh)
            for run in _chunks(map(encode_route, members), self.max_size - overhead):
                block = encode_mp_reach(family, nh, run) + attrs
                out.append(frame(MessageType.UPDATE, b"\x00\x00" + len(block).to_bytes(2, "big") + block))
        return out

    def withdraw(self, routes: Sequence[Route]) -> list[bytes]:
        """UPDATEs withdrawing ``routes`` (IPv4 in the withdrawn field, others in MP_UNREACH_NLRI)."""
        out: list[bytes] = []
        for family, members in _group(routes).items():
            if family is Family.IPV4_UNICAST:
                room = self.max_size - HEADER_LEN - 4
                for run in _chunks(map(encode_route, members), room):
                    out.append(frame(MessageType.UPDATE, len(run).to_bytes(2, "big") + run + b"\x00\x00"))
                continue
            room = self.max_size - HEADER_LEN - 4 - _MP_ATTR_HEADER - 3
            for run in _chunks(map(encode_route, members), room):
                block = encode_mp_unreach(family, run)
                out.append(frame(MessageType.UPDATE, b"\x00\x00" + len(block).to_bytes(2, "big") + block))
        return out
