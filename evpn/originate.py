"""Routes we originate and their attributes (RFC 7432 §7, RFC 8365 §5.1.3, RFC 9135, RFC 9136).

Every route carries its VNI's export RTs and the VXLAN Encapsulation community (RFC 8365 §5.1.3); type-2
routes carry MAC Mobility when the sequence is above 0 or the MAC is sticky (RFC 7432 §7.7); MAC+IP routes
of an L2VNI attached to an L3VNI carry label2 = L3VNI, the L3VNI's RTs and the Router's MAC (symmetric IRB,
RFC 9135 §5.1); type-3 carries a PMSI Tunnel of ingress replication (RFC 8365 §9); type-5 carries
label = L3VNI and the Router's MAC (RFC 9136 §4.4.1). Attribute objects are cached: routes with the same
treatment share one object, so they pack into one UPDATE.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from evpn.auto_ids import VniIds, anycast_gateway_mac, auto_router_mac, resolve_ids
from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import InclusiveMulticastRoute, IPAddress, IPNetwork, IpPrefixRoute, MacIpRoute
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION, DefaultGateway, ExtCommunity, MacMobility, RouterMac
from evpn.codec.pmsi import PmsiTunnel
from evpn.config import SpeakerConfig
from evpn.mac import MacAddress


class Originator:
    """Builds our routes for one configuration."""

    __slots__ = ("_attr_cache", "l2_ids", "l2_to_l3", "l3_by_vrf", "l3_ids", "router_macs", "vtep")

    def __init__(self, config: SpeakerConfig) -> None:
        self.vtep: IPAddress = config.underlay.vtep
        self.l2_ids, self.l3_ids = resolve_ids(config)
        self.l3_by_vrf: dict[str, int] = {l3.vrf: l3.vni for l3 in config.l3vnis}
        self.router_macs: dict[int, MacAddress] = {
            l3.vni: auto_router_mac(config, l3) for l3 in config.l3vnis
        }
        self.l2_to_l3: dict[int, int] = {}
        for l2 in config.l2vnis:
            if l2.vrf is not None and l2.vrf in self.l3_by_vrf:
                self.l2_to_l3[l2.vni] = self.l3_by_vrf[l2.vrf]
        self._attr_cache: dict[tuple[object, ...], PathAttributes] = {}

    def _attrs(
        self, key: tuple[object, ...], comms: tuple[ExtCommunity, ...], pmsi: PmsiTunnel | None = None
    ) -> PathAttributes:
        attrs = self._attr_cache.get(key)
        if attrs is None:
            if len(self._attr_cache) > 4096:
                self._attr_cache.clear()
            attrs = self._attr_cache[key] = PathAttributes(ext_communities=comms, pmsi=pmsi)
        return attrs

    def mac_ip(
        self, vni: int, mac: MacAddress, ip: IPAddress | None, seq: int, sticky: bool, gateway: bool = False
    ) -> tuple[MacIpRoute, PathAttributes]:
        """A type-2 route of a local MAC (``ip`` None) or MAC+IP (RFC 7432 §7.2)."""
        ids = self.l2_ids[vni]
        l3vni = self.l2_to_l3.get(vni) if ip is not None else None
        route = MacIpRoute(ids.rd, mac, ip, vni, l3vni)
        comms: list[ExtCommunity] = [*ids.export_rts]
        if l3vni is not None:
            comms.extend(self.l3_ids[l3vni].export_rts)
        comms.append(VXLAN_ENCAPSULATION)
        if seq > 0 or sticky:
            comms.append(MacMobility(seq, sticky))
        if l3vni is not None:
            comms.append(RouterMac(self.router_macs[l3vni]))
        if gateway:
            comms.append(DefaultGateway())
        return route, self._attrs(("t2", vni, l3vni, seq, sticky, gateway), tuple(comms))

    def imet(self, vni: int) -> tuple[InclusiveMulticastRoute, PathAttributes]:
        """The type-3 route of an L2VNI with ingress replication to our VTEP (RFC 7432 §7.3, RFC 8365 §9)."""
        ids = self.l2_ids[vni]
        route = InclusiveMulticastRoute(ids.rd, self.vtep, 0)
        pmsi = PmsiTunnel.ingress_replication(vni, self.vtep)
        return route, self._attrs(("t3", vni), (*ids.export_rts, VXLAN_ENCAPSULATION), pmsi)

    def prefix(self, l3vni: int, prefix: IPNetwork) -> tuple[IpPrefixRoute, PathAttributes]:
        """A type-5 route in an IP-VRF (RFC 9136 §3.1), label = L3VNI, no gateway (RFC 9136 §4.4.1)."""
        ids: VniIds = self.l3_ids[l3vni]
        route = IpPrefixRoute(ids.rd, prefix, l3vni)
        comms: tuple[ExtCommunity, ...] = (
            *ids.export_rts,
            VXLAN_ENCAPSULATION,
            RouterMac(self.router_macs[l3vni]),
        )
        return route, self._attrs(("t5", l3vni), comms)

    def prefix_from_host(self, l3vni: int, host: PathAttributes) -> PathAttributes:
        """Attributes of a type-5 route exported from a host-session route: those of ``prefix`` with the
        host route's ORIGIN and AS_PATH (FRR keeps them when it leaks a VRF route into EVPN)."""
        base = self.prefix(l3vni, ipaddress.IPv4Network("0.0.0.0/0"))[1]
        key = ("t5h", l3vni, host.origin, host.as_path)
        attrs = self._attr_cache.get(key)
        if attrs is None:
            if len(self._attr_cache) > 4096:
                self._attr_cache.clear()
            attrs = self._attr_cache[key] = dataclasses.replace(
                base, origin=host.origin, as_path=host.as_path
            )
        return attrs

    def gateway_mac(self, vni: int) -> MacAddress:
        return anycast_gateway_mac(vni)


def gateway_prefixes(config: SpeakerConfig) -> dict[tuple[int, IPNetwork], None]:
    """(L3VNI, subnet) of every L2VNI gateway IP: the subnets each node originates as type-5."""
    l3_by_vrf = {l3.vrf: l3.vni for l3 in config.l3vnis}
    out: dict[tuple[int, IPNetwork], None] = {}
    for l2 in config.l2vnis:
        if l2.vrf is None or l2.vrf not in l3_by_vrf:
            continue
        for gw in l2.gateway_ips:
            net: IPNetwork = gw.network
            if isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network):
                out[(l3_by_vrf[l2.vrf], net)] = None
    return out
