"""Capabilities advertised in OPEN (RFC 5492) and those this speaker understands."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from evpn.errors import InvalidValue


class CapabilityCode(enum.IntEnum):
    MULTIPROTOCOL = 1  # RFC 4760 §8
    ROUTE_REFRESH = 2  # RFC 2918
    EXTENDED_MESSAGE = 6  # RFC 8654
    GRACEFUL_RESTART = 64  # RFC 4724 §3
    FOUR_OCTET_AS = 65  # RFC 6793
    ADD_PATH = 69  # RFC 7911 §4
    ENHANCED_ROUTE_REFRESH = 70  # RFC 7313


@dataclass(frozen=True, slots=True)
class Multiprotocol:
    afi: int
    safi: int
    code = CapabilityCode.MULTIPROTOCOL

    def encode_value(self) -> bytes:
        return self.afi.to_bytes(2, "big") + b"\x00" + bytes((self.safi,))


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    code = CapabilityCode.ROUTE_REFRESH

    def encode_value(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class EnhancedRouteRefresh:
    code = CapabilityCode.ENHANCED_ROUTE_REFRESH

    def encode_value(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class ExtendedMessage:
    code = CapabilityCode.EXTENDED_MESSAGE

    def encode_value(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class FourOctetAs:
    asn: int
    code = CapabilityCode.FOUR_OCTET_AS

    def encode_value(self) -> bytes:
        return self.asn.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class GracefulRestartFamily:
    afi: int
    safi: int
    forwarding_preserved: bool = False


@dataclass(frozen=True, slots=True)
class GracefulRestart:
    """RFC 4724 §3: R (restart state) and N (notification, RFC 8538) bits, restart time, per-family F bit."""

    restart_time: int
    restarting: bool = False
    notification: bool = False
    families: tuple[GracefulRestartFamily, ...] = ()
    code = CapabilityCode.GRACEFUL_RESTART

    def __post_init__(self) -> None:
        if not 0 <= self.restart_time < 4096:
            raise InvalidValue("graceful restart time must fit 12 bits")

    def encode_value(self) -> bytes:
        head = (0x8000 if self.restarting else 0) | (0x4000 if self.notification else 0) | self.restart_time
        out = head.to_bytes(2, "big")
        for fam in self.families:
            out += fam.afi.to_bytes(2, "big") + bytes((fam.safi, 0x80 if fam.forwarding_preserved else 0))
        return out


class AddPathMode(enum.IntEnum):
    RECEIVE = 1
    SEND = 2
    BOTH = 3


@dataclass(frozen=True, slots=True)
class AddPathFamily:
    afi: int
    safi: int
    mode: int


@dataclass(frozen=True, slots=True)
class AddPath:
    families: tuple[AddPathFamily, ...]
    code = CapabilityCode.ADD_PATH

    def encode_value(self) -> bytes:
        return b"".join(f.afi.to_bytes(2, "big") + bytes((f.safi, f.mode)) for f in self.families)


@dataclass(frozen=True, slots=True)
class UnknownCapability:
    type_code: int
    value: bytes

    @property
    def code(self) -> int:
        return self.type_code

    def encode_value(self) -> bytes:
        return self.value


Capability = (
    Multiprotocol
    | RouteRefresh
    | EnhancedRouteRefresh
    | ExtendedMessage
    | FourOctetAs
    | GracefulRestart
    | AddPath
    | UnknownCapability
)


def encode_capability(cap: Capability) -> bytes:
    value = cap.encode_value()
    if len(value) > 255:
        raise InvalidValue("capability value longer than 255 bytes")
    return bytes((int(cap.code), len(value))) + value


def decode_capability(code: int, value: bytes) -> Capability:
    """Decode one capability; a malformed known one raises InvalidValue."""
    n = len(value)
    if code == CapabilityCode.MULTIPROTOCOL:
        if n != 4:
            raise InvalidValue(f"multiprotocol capability length {n}")
        return Multiprotocol(int.from_bytes(value[:2], "big"), value[3])
    if code == CapabilityCode.ROUTE_REFRESH and n == 0:
        return RouteRefresh()
    if code == CapabilityCode.ENHANCED_ROUTE_REFRESH and n == 0:
        return EnhancedRouteRefresh()
    if code == CapabilityCode.EXTENDED_MESSAGE and n == 0:
        return ExtendedMessage()
    if code == CapabilityCode.FOUR_OCTET_AS:
        if n != 4:
            raise InvalidValue(f"4-octet AS capability length {n}")
        return FourOctetAs(int.from_bytes(value, "big"))
    if code == CapabilityCode.GRACEFUL_RESTART:
        if n < 2 or (n - 2) % 4:
            raise InvalidValue(f"graceful restart capability length {n}")
        head = int.from_bytes(value[:2], "big")
        fams = tuple(
            GracefulRestartFamily(
                int.from_bytes(value[i : i + 2], "big"), value[i + 2], bool(value[i + 3] & 0x80)
            )
            for i in range(2, n, 4)
        )
        return GracefulRestart(head & 0x0FFF, bool(head & 0x8000), bool(head & 0x4000), fams)
    if code == CapabilityCode.ADD_PATH:
        if n == 0 or n % 4:
            raise InvalidValue(f"add-path capability length {n}")
        return AddPath(
            tuple(
                AddPathFamily(int.from_bytes(value[i : i + 2], "big"), value[i + 2], value[i + 3])
                for i in range(0, n, 4)
            )
        )
    return UnknownCapability(code, bytes(value))
