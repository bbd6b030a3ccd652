"""Shared builders for the core tests: configurations, peers, routes and a two-core in-memory wire."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import InclusiveMulticastRoute, IPAddress, IpPrefixRoute, MacIpRoute
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION, ExtCommunity, MacMobility, RouterMac
from evpn.codec.families import Family
from evpn.codec.pmsi import PmsiTunnel
from evpn.config import (
    DuplicateDetection,
    L2Vni,
    L3Vni,
    Neighbor,
    SpeakerConfig,
    Underlay,
)
from evpn.core import CoreOutput, EvpnCore
from evpn.dataplane_state import DataplaneEntry
from evpn.events import PeerUp, RoutesReceived
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget

V4 = ipaddress.IPv4Address
PEER = V4("10.0.0.254")
PEER2 = V4("10.0.0.253")
VTEP_A = V4("100.65.0.1")
VTEP_B = V4("100.65.0.2")
VTEP_C = V4("100.65.0.3")


def mac(n: int) -> MacAddress:
    return MacAddress.from_int(0x02AA00000000 + n)


def config(
    *,
    asn: int = 64514,
    router_id: str = "10.0.0.1",
    vtep: IPAddress = VTEP_A,
    l2: tuple[int, ...] = (110,),
    l3: bool = True,
    gateway: bool = True,
    neighbors: tuple[Neighbor, ...] = (),
    dad: DuplicateDetection | None = None,
    advertise_gateway: bool = False,
) -> SpeakerConfig:
    l3vnis = (L3Vni("red", "red", 100),) if l3 else ()
    l2vnis = tuple(
        L2Vni(
            f"l2-{vni}",
            vni,
            vrf="red" if l3 else None,
            gateway_ips=(ipaddress.ip_interface("192.170.1.1/24"),) if (l3 and gateway and i == 0) else (),
            advertise_gateway=advertise_gateway,
        )
        for i, vni in enumerate(l2)
    )
    return SpeakerConfig(
        underlay=Underlay(
            asn=asn,
            router_id=V4(router_id),
            vtep_ipv4=vtep,  # type: ignore[arg-type]
            neighbors=neighbors or (Neighbor(PEER, asn=asn),),
        ),
        l2vnis=l2vnis,
        l3vnis=l3vnis,
        duplicate_detection=dad or DuplicateDetection(),
    )


def peer_up(
    peer: IPAddress = PEER,
    *,
    ibgp: bool = True,
    asn: int = 64514,
    rr_client: bool = False,
    gr: bool = False,
    router_id: str | None = None,
) -> PeerUp:
    return PeerUp(
        peer,
        asn,
        V4(router_id) if router_id else peer,
        ibgp,
        frozenset({Family.L2VPN_EVPN}),
        route_reflector_client=rr_client,
        graceful_restart=gr,
    )


def rd_of(vtep: IPAddress, n: int = 110) -> RouteDistinguisher:
    return RouteDistinguisher.ipv4(str(vtep), n)


def t2_attrs(
    vni: int = 110,
    *,
    seq: int = 0,
    sticky: bool = False,
    asn: int = 64518,
    l3vni: int | None = None,
    rmac: MacAddress | None = None,
    local_pref: int | None = None,
) -> PathAttributes:
    comms: list[ExtCommunity] = [RouteTarget.from_text(f"{asn}:{vni}")]
    if l3vni is not None:
        comms.append(RouteTarget.from_text(f"{asn}:{l3vni}"))
    comms.append(VXLAN_ENCAPSULATION)
    if seq or sticky:
        comms.append(MacMobility(seq, sticky))
    if rmac is not None:
        comms.append(RouterMac(rmac))
    return PathAttributes(ext_communities=tuple(comms), local_pref=local_pref)


def t2(
    vtep: IPAddress, m: MacAddress, ip: IPAddress | None = None, vni: int = 110, l3vni: int | None = None
) -> MacIpRoute:
    return MacIpRoute(rd_of(vtep, vni), m, ip, vni, l3vni)


def t3(vtep: IPAddress, vni: int = 110) -> tuple[InclusiveMulticastRoute, PathAttributes]:
    attrs = PathAttributes(
        ext_communities=(RouteTarget.from_text(f"64518:{vni}"), VXLAN_ENCAPSULATION),
        pmsi=PmsiTunnel.ingress_replication(vni, vtep),
    )
    return InclusiveMulticastRoute(rd_of(vtep, vni), vtep), attrs


def t5(
    vtep: IPAddress,
    prefix: str,
    *,
    label: int = 100,
    rmac: MacAddress | None = None,
    gateway: IPAddress | None = None,
) -> tuple[IpPrefixRoute, PathAttributes]:
    comms: list[ExtCommunity] = [RouteTarget.from_text("64518:100"), VXLAN_ENCAPSULATION]
    if rmac is not None:
        comms.append(RouterMac(rmac))
    net = ipaddress.ip_network(prefix)
    return IpPrefixRoute(rd_of(vtep, 100), net, label, gateway), PathAttributes(ext_communities=tuple(comms))


def announce(peer: IPAddress, vtep: IPAddress, attrs: PathAttributes, *routes: object) -> RoutesReceived:
    return RoutesReceived(peer, announced=tuple(routes), attributes=attrs, next_hop=vtep)  # type: ignore[arg-type]


def withdraw(peer: IPAddress, *routes: object) -> RoutesReceived:
    return RoutesReceived(peer, withdrawn=tuple(routes))  # type: ignore[arg-type]


@dataclass
class Applied:
    """Applies every delta to a set, as a dataplane would, to check the sum of deltas."""

    entries: set[DataplaneEntry] = field(default_factory=set)

    def apply(self, out: CoreOutput) -> CoreOutput:
        d = out.dataplane
        assert not set(d.add) & set(d.remove), "an entry both added and removed"
        for e in d.remove:
            assert e in self.entries, f"removing {e} which is not installed"
            self.entries.discard(e)
        for e in d.add:
            assert e not in self.entries, f"adding {e} twice"
            self.entries.add(e)
        return out


def started(cfg: SpeakerConfig, now: float = 0.0) -> tuple[EvpnCore, Applied]:
    core = EvpnCore(cfg)
    applied = Applied()
    applied.apply(core.start(now))
    applied.apply(core.handle(peer_up(), now))
    return core, applied


def advertised(out: CoreOutput) -> list[tuple[object, PathAttributes, IPAddress]]:
    return [(r, a.attributes, a.next_hop) for a in out.advertise for r in a.routes]


def withdrawn(out: CoreOutput) -> list[object]:
    return [r for w in out.withdraw for r in w.routes]
