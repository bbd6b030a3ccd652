"""Extended communities used by EVPN (RFC 4360, RFC 7432 §7.5-7.8, RFC 9012 §4.1, RFC 9135 §8.1, RFC 9047).

Each community is 8 bytes: type, subtype, 6 bytes of value. Unknown ones are kept opaque and re-encoded
unchanged (RFC 4360 §2: optional transitive).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from evpn.errors import InvalidValue
from evpn.mac import MacAddress
from evpn.route_target import RouteTarget


class TunnelType(enum.IntEnum):
    """BGP Tunnel Encapsulation types (RFC 9012 §14, RFC 8365 §5.1.3)."""

    L2TPV3 = 1
    GRE = 2
    VXLAN = 8
    NVGRE = 9
    MPLS = 10
    MPLS_IN_GRE = 11
    VXLAN_GPE = 12
    MPLS_IN_UDP = 13
    GENEVE = 19


@dataclass(frozen=True, slots=True)
class Encapsulation:
    """Encapsulation extended community 0x03/0x0c (RFC 9012 §4.1); VXLAN is tunnel type 8."""

    tunnel_type: int

    @property
    def packed(self) -> bytes:
        return b"\x03\x0c\x00\x00\x00\x00" + self.tunnel_type.to_bytes(2, "big")

    def __str__(self) -> str:
        try:
            return f"ET:{TunnelType(self.tunnel_type).name.lower()}"
        except ValueError:
            return f"ET:{self.tunnel_type}"


@dataclass(frozen=True, slots=True)
class MacMobility:
    """MAC Mobility 0x06/0x00: sticky flag and sequence number (RFC 7432 §7.7)."""

    sequence: int
    sticky: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.sequence < 1 << 32:
            raise InvalidValue(f"MAC mobility sequence out of range: {self.sequence}")

    @property
    def packed(self) -> bytes:
        return (
            b"\x06\x00" + (b"\x01" if self.sticky else b"\x00") + b"\x00" + self.sequence.to_bytes(4, "big")
        )

    def __str__(self) -> str:
        return f"MM:{self.sequence}{', sticky MAC' if self.sticky else ''}"


@dataclass(frozen=True, slots=True)
class EsiLabel:
    """ESI Label 0x06/0x01: single-active flag and label (RFC 7432 §7.5)."""

    label: int
    single_active: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.label < 1 << 24:
            raise InvalidValue(f"ESI label out of range: {self.label}")

    @property
    def packed(self) -> bytes:
        flags = b"\x01" if self.single_active else b"\x00"
        return b"\x06\x01" + flags + b"\x00\x00" + self.label.to_bytes(3, "big")

    def __str__(self) -> str:
        return f"ESI-label-Rt:{'SA' if self.single_active else 'AA'}:{self.label}"


@dataclass(frozen=True, slots=True)
class EsImportRouteTarget:
    """ES-Import Route Target 0x06/0x02 (RFC 7432 §7.6)."""

    mac: MacAddress

    @property
    def packed(self) -> bytes:
        return b"\x06\x02" + self.mac.packed

    def __str__(self) -> str:
        return f"ES-Import-Rt:{self.mac}"


@dataclass(frozen=True, slots=True)
class RouterMac:
    """EVPN Router's MAC 0x06/0x03 (RFC 9135 §8.1)."""

    mac: MacAddress

    @property
    def packed(self) -> bytes:
        return b"\x06\x03" + self.mac.packed

    def __str__(self) -> str:
        return f"Rmac:{self.mac}"


@dataclass(frozen=True, slots=True)
class DefaultGateway:
    """Default Gateway 0x03/0x0d (RFC 7432 §7.8)."""

    @property
    def packed(self) -> bytes:
        return b"\x03\x0d\x00\x00\x00\x00\x00\x00"

    def __str__(self) -> str:
        return "Default Gateway"


@dataclass(frozen=True, slots=True)
class NdExtCommunity:
    """EVPN ARP/ND 0x06/0x08 (RFC 9047 §2): flags octet ``|    |I|P|O|R|``.

    R (Router, 0x01), O (Override, 0x02) and I (Immutable ARP/ND binding, bit 4 = 0x08) are RFC 9047's;
    P (0x04, bit 5) is the Proxy flag of draft-rbickhart-evpn-ip-mac-proxy-adv that FRR sets and reads.
    """

    router: bool = False
    override: bool = False
    immutable: bool = False
    proxy: bool = False

    @property
    def packed(self) -> bytes:
        flags = (
            (_ND_ROUTER if self.router else 0)
            | (_ND_OVERRIDE if self.override else 0)
            | (_ND_PROXY if self.proxy else 0)
            | (_ND_IMMUTABLE if self.immutable else 0)
        )
        return b"\x06\x08" + bytes((flags,)) + b"\x00" * 5

    def __str__(self) -> str:
        names = (
            ("Router Flag", self.router),
            ("Override", self.override),
            ("Proxy", self.proxy),
            ("Immutable", self.immutable),
        )
        return "ND:" + " ".join(name for name, on in names if on)


_ND_ROUTER = 0x01
_ND_OVERRIDE = 0x02
_ND_PROXY = 0x04
_ND_IMMUTABLE = 0x08


@dataclass(frozen=True, slots=True)
class UnknownExtCommunity:
    """Any other extended community, kept as its 8 bytes."""

    packed: bytes

    def __post_init__(self) -> None:
        if len(self.packed) != 8:
            raise InvalidValue("an extended community is 8 bytes")

    def __str__(self) -> str:
        return f"0x{self.packed.hex()}"


ExtCommunity = (
    RouteTarget
    | Encapsulation
    | MacMobility
    | EsiLabel
    | EsImportRouteTarget
    | RouterMac
    | DefaultGateway
    | NdExtCommunity
    | UnknownExtCommunity
)


def decode_ext_community(raw: bytes) -> ExtCommunity:
    """Decode one 8-byte extended community; never raises for an 8-byte input."""
    kind, sub = raw[0], raw[1]
    if sub == 0x02 and kind in (0x00, 0x01, 0x02):
        return RouteTarget.from_packed(raw)
    if kind == 0x06:
        if sub == 0x00:
            return MacMobility(int.from_bytes(raw[4:8], "big"), bool(raw[2] & 1))
        if sub == 0x01:
            return EsiLabel(int.from_bytes(raw[5:8], "big"), bool(raw[2] & 1))
        if sub == 0x02:
            return EsImportRouteTarget(MacAddress(raw[2:8]))
        if sub == 0x03:
            return RouterMac(MacAddress(raw[2:8]))
        if sub == 0x08:
            flags = raw[2]
            return NdExtCommunity(
                bool(flags & _ND_ROUTER),
                bool(flags & _ND_OVERRIDE),
                bool(flags & _ND_IMMUTABLE),
                bool(flags & _ND_PROXY),
            )
    elif kind == 0x03:
        if sub == 0x0C and raw[2:6] == b"\x00\x00\x00\x00":
            return Encapsulation(int.from_bytes(raw[6:8], "big"))
        if sub == 0x0D and raw[2:8] == b"\x00" * 6:
            return DefaultGateway()
    return UnknownExtCommunity(bytes(raw))


VXLAN_ENCAPSULATION = Encapsulation(TunnelType.VXLAN)
