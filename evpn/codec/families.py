"""Address families (RFC 4760 §3): AFI and SAFI pairs this speaker knows."""

from __future__ import annotations

import enum


class Afi(enum.IntEnum):
    IPV4 = 1
    IPV6 = 2
    L2VPN = 25


class Safi(enum.IntEnum):
    UNICAST = 1
    EVPN = 70


class Family(enum.Enum):
    """A known (AFI, SAFI) pair; FRR's names are used for text."""

    IPV4_UNICAST = (Afi.IPV4, Safi.UNICAST)
    IPV6_UNICAST = (Afi.IPV6, Safi.UNICAST)
    L2VPN_EVPN = (Afi.L2VPN, Safi.EVPN)

    @property
    def afi(self) -> int:
        return int(self.value[0])

    @property
    def safi(self) -> int:
        return int(self.value[1])

    @classmethod
    def lookup(cls, afi: int, safi: int) -> Family | None:
        return _BY_PAIR.get((afi, safi))

    def __str__(self) -> str:
        return {"IPV4_UNICAST": "ipv4 unicast", "IPV6_UNICAST": "ipv6 unicast", "L2VPN_EVPN": "l2vpn evpn"}[
            self.name
        ]


_BY_PAIR = {(f.afi, f.safi): f for f in Family}
