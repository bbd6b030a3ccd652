"""Packs many NLRIs sharing identical attributes into as few UPDATEs as the negotiated size allows.

The limit is 4096 bytes, or 65535 with the extended message capability (RFC 8654). MP_REACH_NLRI is put
first in the attribute list so a receiver can always locate the NLRI for treat-as-withdraw (RFC 7606 §5.1).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence

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


def _mp_header(value_len: int) -> int:
    """Flags, type and a 1-byte length, or a 2-byte one past 255 bytes (RFC 4271 §4.3 Extended Length)."""
    return 3 if value_len <= 255 else 4


def _chunks(encoded: Iterable[bytes], fits: Callable[[int], bool]) -> Iterator[bytes]:
    """Greedy fill: consecutive encoded NLRIs joined into the longest runs for which ``fits(run size)``."""
    run: list[bytes] = []
    size = 0
    for item in encoded:
        if run and not fits(size + len(item)):
            yield b"".join(run)
            run, size = [], 0
        if not fits(len(item)):
            raise InvalidValue("an NLRI does not fit in one UPDATE")
        run.append(item)
        size += len(item)
    if run:
        yield b"".join(run)


def _at_most(room: int) -> Callable[[int], bool]:
    return lambda n: n <= room


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
                out.extend(
                    frame(MessageType.UPDATE, head + run)
                    for run in _chunks(
                        map(encode_route, members), _at_most(self.max_size - HEADER_LEN - len(head))
                    )
                )
                continue
            attrs = dataclasses.replace(attributes, next_hop=None).encode(self.four_octet_as)
            nh = next_hop.packed
            if family is Family.IPV6_UNICAST and isinstance(next_hop, ipaddress.IPv4Address):
                # IPv4-mapped (RFC 4291 §2.5.5.2): 16 bytes (RFC 2545 §3)
                nh = b"\x00" * 10 + b"\xff\xff" + nh
            fixed = 5 + len(nh)  # AFI, SAFI, next hop length, next hop, reserved (RFC 4760 §3)
            room = self.max_size - HEADER_LEN - 4 - len(attrs)

            def fits(n: int, fixed: int = fixed, room: int = room) -> bool:
                return _mp_header(fixed + n) + fixed + n <= room

            for run in _chunks(map(encode_route, members), fits):
                block = encode_mp_reach(family, nh, run) + attrs
                out.append(frame(MessageType.UPDATE, b"\x00\x00" + len(block).to_bytes(2, "big") + block))
        return out

    def withdraw(self, routes: Sequence[Route]) -> list[bytes]:
        """UPDATEs withdrawing ``routes`` (IPv4 in the withdrawn field, others in MP_UNREACH_NLRI)."""
        out: list[bytes] = []
        for family, members in _group(routes).items():
            if family is Family.IPV4_UNICAST:
                for run in _chunks(map(encode_route, members), _at_most(self.max_size - HEADER_LEN - 4)):
                    out.append(frame(MessageType.UPDATE, len(run).to_bytes(2, "big") + run + b"\x00\x00"))
                continue
            room = self.max_size - HEADER_LEN - 4

            def fits_unreach(n: int, room: int = room) -> bool:
                return _mp_header(3 + n) + 3 + n <= room  # AFI, SAFI, NLRI (RFC 4760 §4)

            for run in _chunks(map(encode_route, members), fits_unreach):
                block = encode_mp_unreach(family, run)
                out.append(frame(MessageType.UPDATE, b"\x00\x00" + len(block).to_bytes(2, "big") + block))
        return out
