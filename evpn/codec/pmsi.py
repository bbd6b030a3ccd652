"""PMSI Tunnel attribute, type 22 (RFC 6514 §5); for VXLAN the label is the VNI as is (RFC 8365 §5.1.3)."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from evpn.errors import InvalidValue


class PmsiTunnelType(enum.IntEnum):
    NO_TUNNEL = 0
    RSVP_TE_P2MP = 1
    MLDP_P2MP = 2
    PIM_SSM = 3
    PIM_SM = 4
    BIDIR_PIM = 5
    INGRESS_REPLICATION = 6
    MLDP_MP2MP = 7


@dataclass(frozen=True, slots=True)
class PmsiTunnel:
    """Flags, tunnel type, 24-bit label and tunnel identifier (the originating VTEP for ingress replication)."""

    tunnel_type: int
    label: int
    tunnel_id: ipaddress.IPv4Address | ipaddress.IPv6Address | bytes
    flags: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.label < 1 << 24:
            raise InvalidValue(f"PMSI label out of range: {self.label}")
        if not (0 <= self.flags < 256 and 0 <= self.tunnel_type < 256):
            raise InvalidValue("PMSI flags and tunnel type are one byte each")

    @classmethod
    def ingress_replication(cls, vni: int, vtep: ipaddress.IPv4Address | ipaddress.IPv6Address) -> PmsiTunnel:
        return cls(PmsiTunnelType.INGRESS_REPLICATION, vni, vtep)

    def encode(self) -> bytes:
        tid = self.tunnel_id if isinstance(self.tunnel_id, bytes) else self.tunnel_id.packed
        return bytes((self.flags, self.tunnel_type)) + self.label.to_bytes(3, "big") + tid

    @classmethod
    def decode(cls, raw: bytes) -> PmsiTunnel:
        """Decode; raises InvalidValue when shorter than the fixed part."""
        if len(raw) < 5:
            raise InvalidValue(f"PMSI tunnel attribute too short ({len(raw)} bytes)")
        tid_raw = bytes(raw[5:])
        tid: ipaddress.IPv4Address | ipaddress.IPv6Address | bytes
        if raw[1] == PmsiTunnelType.INGRESS_REPLICATION and len(tid_raw) in (4, 16):
            tid = ipaddress.ip_address(tid_raw)
        else:
            tid = tid_raw
        return cls(raw[1], int.from_bytes(raw[2:5], "big"), tid, raw[0])
