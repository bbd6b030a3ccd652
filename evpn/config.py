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
    vrf: str | None = None
    """The VRF the session lives in (a host session); None: the default VRF (the router namespace)."""
    local_asn: int | None = None
    """Our ASN on this session (a host session's ``asn``); None: the underlay's."""
    allowas_in: int = 0
    """Accept routes whose AS_PATH holds our ASN up to this many times (FRR ``allowas-in N``)."""
    allowas_in_origin: bool = False
    """Accept routes whose AS_PATH holds our ASN only as the origin AS (FRR ``allowas-in origin``)."""


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
    announce_vtep: bool = True
    """Announce the VTEP as a /32 (/128) in IPv4 (IPv6) unicast to the neighbors that negotiate it, as
    OpenPERouter's ``network <vtep>/32`` does, so remote VTEPs need no other routing protocol."""
    nexthop_tracking: bool = False
    """Refuse EVPN paths whose next hop (the remote VTEP) has no route, as FRR does (``show evpn
    next-hops``). Routes come from BGP unicast and from the kernel's main table (``KernelRoutes`` events),
    so an embedding program without a dataplane leaves this off; configuration files turn it on."""
    nexthop_resolve_via_default: bool = True
    """A default route makes a next hop reachable (FRR ``ip nht resolve-via-default``, which OpenPERouter
    sets)."""

    @property
    def vtep(self) -> IPAddress:
        """The VTEP used as next hop and tunnel source (IPv4 when both are set)."""
        if self.vtep_ipv4 is not None:
            return self.vtep_ipv4
        if self.vtep_ipv6 is not None:
            return self.vtep_ipv6
        raise ValueError("underlay has no VTEP address")


@dataclass(frozen=True, slots=True)
class HostSession:
    """A BGP session with the node itself over a veth pair (OpenPERouter ``hostSession``).

    The router side of the veth takes the first host address of ``local_cidr_ipv4`` / ``local_cidr_ipv6``
    and the host side the address ``node_index`` further, as OpenPERouter's IPAM does; IPv4 and IPv6 each
    get their own session. ``asn`` is our ASN on the session; the host is ``host_asn`` or, given as
    ``host_type``, any internal or external AS.
    """

    asn: int
    host_asn: int | None = None
    host_type: PeerType | None = None
    local_cidr_ipv4: ipaddress.IPv4Network | None = None
    local_cidr_ipv6: ipaddress.IPv6Network | None = None
    node_index: int = 0
    hold_time: int = 180
    keepalive: int = 60

    def cidrs(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(c for c in (self.local_cidr_ipv4, self.local_cidr_ipv6) if c is not None)

    def router_side(self, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network) -> IPInterface:
        """Our end of the veth: the network address if it can be a host address (its last byte is not
        zero), else the first host (OpenPERouter ``ipam.vethIPsForFamily``)."""
        first = 0 if cidr.network_address.packed[-1] != 0 else 1
        return ipaddress.ip_interface(f"{cidr.network_address + first}/{cidr.prefixlen}")

    def host_side(self, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network) -> IPInterface:
        """The host's end: ``node_index`` + 1 past the router side."""
        address = self.router_side(cidr).ip + self.node_index + 1
        if address not in cidr:
            raise ValueError(f"node index {self.node_index} does not fit in {cidr}")
        return ipaddress.ip_interface(f"{address}/{cidr.prefixlen}")

    def neighbors(self, vrf: str | None) -> tuple[Neighbor, ...]:
        """The sessions towards the host: one per address family, in ``vrf`` (None: the default VRF)."""
        out: list[Neighbor] = []
        for cidr in self.cidrs():
            family = Family.IPV4_UNICAST if cidr.version == 4 else Family.IPV6_UNICAST
            out.append(
                Neighbor(
                    address=self.host_side(cidr).ip,
                    asn=self.host_asn,
                    peer_type=self.host_type if self.host_asn is None else None,
                    timers=Timers(keepalive=self.keepalive, hold_time=self.hold_time),
                    families=(family,),
                    vrf=vrf,
                    local_asn=self.asn,
                    allowas_in_origin=True,
                    description=f"host session{'' if vrf is None else ' in VRF ' + vrf}",
                )
            )
        return tuple(out)


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
    host_session: HostSession | None = None
    """BGP with the node in this VRF over ``host-<vni>``/``pe-<vni>``: its routes become type-5 routes,
    imported type-5 routes go to it (OpenPERouter ``L3VNI.hostSession``)."""


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
    passthrough: HostSession | None = None
    """OpenPERouter ``L3Passthrough``: a host session in the default VRF over ``pt-host``/``pt-ns``; its
    routes and the underlay's IPv4/IPv6 unicast routes are exchanged, without EVPN."""

    def neighbors(self) -> tuple[Neighbor, ...]:
        """Every BGP session: the underlay's, the passthrough host session, each L3VNI's host session."""
        out = list(self.underlay.neighbors)
        if self.passthrough is not None:
            out.extend(self.passthrough.neighbors(None))
        for l3 in self.l3vnis:
            if l3.host_session is not None:
                out.extend(l3.host_session.neighbors(l3.vrf))
        return tuple(out)

    def l3vni_for_vrf(self, vrf: str) -> L3Vni | None:
        for l3 in self.l3vnis:
            if l3.vrf == vrf:
                return l3
        return None
