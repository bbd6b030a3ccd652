"""Configuration model of one speaker: underlay, L2VNIs and L3VNIs (OpenPERouter's objects, FRR's defaults).

Plain frozen values. Validation lives in ``evpn.config_validation``; loading from YAML belongs to the daemon.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

from evpn.codec.families import Family
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget, RouteTargetMatcher

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

DEFAULT_VXLAN_PORT = 4789


class PeerType(enum.Enum):
    """A neighbor given as ``internal`` or ``external`` instead of an ASN (FRR ``remote-as internal``)."""

    INTERNAL = "internal"
    EXTERNAL = "external"


class HostBridgeMode(enum.Enum):
    """OpenPERouter ``hostMaster``: a bridge we create and own, or an existing one we attach to."""

    MANAGED = "managed"
    EXTERNAL = "external"


class VrfBackend(enum.Enum):
    """How an L3VNI's VRF is realised: a kernel VRF device, or one network namespace per VRF (DESIGN §5)."""

    DEVICE = "device"
    NETNS = "netns"


@dataclass(frozen=True, slots=True)
class Timers:
    """BGP timers in seconds (FRR defaults: keepalive 60, hold 180, connect-retry 120)."""

    keepalive: int = 60
    hold_time: int = 180
    connect_retry: int = 120


@dataclass(frozen=True, slots=True)
class Neighbor:
    """A BGP neighbor; ``asn`` or ``peer_type`` says who it is."""

    address: IPAddress
    asn: int | None = None
    peer_type: PeerType | None = None
    port: int = 179
    password: str | None = None
    timers: Timers = field(default_factory=Timers)
    route_reflector_client: bool = False
    passive: bool = False
    families: tuple[Family, ...] = (Family.L2VPN_EVPN,)
    ebgp_multihop: int | None = None
    max_prefixes: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Underlay:
    """The node's own identity and its fabric sessions (OpenPERouter ``Underlay``)."""

    asn: int
    router_id: ipaddress.IPv4Address
    vtep_ipv4: ipaddress.IPv4Address | None = None
    vtep_ipv6: ipaddress.IPv6Address | None = None
    neighbors: tuple[Neighbor, ...] = ()
    interfaces: tuple[str, ...] = ()
    mtu: int = 1500
    cluster_id: ipaddress.IPv4Address | None = None

    @property
    def vtep(self) -> IPAddress:
        """The VTEP used as next hop and tunnel source (IPv4 when both are set)."""
        if self.vtep_ipv4 is not None:
            return self.vtep_ipv4
        if self.vtep_ipv6 is not None:
            return self.vtep_ipv6
        raise ValueError("underlay has no VTEP address")


@dataclass(frozen=True, slots=True)
class HostBridge:
    mode: HostBridgeMode = HostBridgeMode.MANAGED
    name: str | None = None


@dataclass(frozen=True, slots=True)
class L2Vni:
    """A stretched layer-2 segment (OpenPERouter ``L2VNI``); ``vrf`` names the L3VNI it routes through."""

    name: str
    vni: int
    vrf: str | None = None
    host_bridge: HostBridge | None = None
    gateway_ips: tuple[IPInterface, ...] = ()
    vxlan_port: int = DEFAULT_VXLAN_PORT
    rd: RouteDistinguisher | None = None
    import_rts: tuple[RouteTargetMatcher, ...] = ()
    export_rts: tuple[RouteTarget, ...] = ()
    advertise_gateway: bool = False


@dataclass(frozen=True, slots=True)
class L3Vni:
    """A routing domain (OpenPERouter ``L3VNI``): a VRF reached through an L3 VNI, symmetric IRB (RFC 9135)."""

    name: str
    vrf: str
    vni: int
    import_rts: tuple[RouteTargetMatcher, ...] = ()
    export_rts: tuple[RouteTarget, ...] = ()
    router_mac: MacAddress | None = None
    rd: RouteDistinguisher | None = None
    vxlan_port: int = DEFAULT_VXLAN_PORT


@dataclass(frozen=True, slots=True)
class DuplicateDetection:
    """FRR's ``dup-addr-detection``: ``max_moves`` within ``window`` seconds marks a MAC duplicate."""

    enabled: bool = True
    max_moves: int = 5
    window: int = 180
    freeze: bool = False
    freeze_time: int | None = None


@dataclass(frozen=True, slots=True)
class GracefulRestartConfig:
    """RFC 4724: our restart time and how long a peer's stale routes are kept (FRR: 120 s and 360 s)."""

    enabled: bool = True
    restart_time: int = 120
    stalepath_time: int = 360


@dataclass(frozen=True, slots=True)
class SpeakerConfig:
    underlay: Underlay
    l2vnis: tuple[L2Vni, ...] = ()
    l3vnis: tuple[L3Vni, ...] = ()
    duplicate_detection: DuplicateDetection = field(default_factory=DuplicateDetection)
    graceful_restart: GracefulRestartConfig = field(default_factory=GracefulRestartConfig)
    vrf_backend: VrfBackend = VrfBackend.DEVICE
    engine: str = "native"
    host_netns: str | None = None
    """Network namespace of the host side (``br-hs-<vni>``, ``host-e-<vni>``); None: the speaker's own."""

    def l3vni_for_vrf(self, vrf: str) -> L3Vni | None:
        for l3 in self.l3vnis:
            if l3.vrf == vrf:
                return l3
        return None
