"""Hypothesis strategies for every codec value, route, attribute, capability and message.

Every strategy produces values that round-trip exactly (decode(encode(x)) == x), so other tests can import
them for round-trip and mutation work.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from hypothesis import strategies as st

from evpn.codec.attributes import (
    AsPath,
    AsPathSegment,
    Origin,
    PathAttributes,
    SegmentType,
    UnknownAttribute,
)
from evpn.codec.capabilities import (
    AddPath,
    AddPathFamily,
    Capability,
    CapabilityCode,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAs,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
)
from evpn.codec.evpn_nlri import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    MacIpRoute,
    UnknownEvpnRoute,
)
from evpn.codec.extcommunity import (
    DefaultGateway,
    Encapsulation,
    EsiLabel,
    EsImportRouteTarget,
    ExtCommunity,
    MacMobility,
    NdExtCommunity,
    RouterMac,
    UnknownExtCommunity,
    decode_ext_community,
)
from evpn.codec.families import Family
from evpn.codec.messages import (
    DecodeOptions,
    Keepalive,
    Message,
    MpReach,
    MpUnreach,
    NotificationMessage,
    Open,
    RouteRefreshMessage,
    Update,
    encode_update,
    end_of_rib,
)
from evpn.codec.pmsi import PmsiTunnel, PmsiTunnelType
from evpn.esi import Esi
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget, RtFormat

# -- scalars -------------------------------------------------------------------------------------------
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u24 = st.integers(0, 0xFFFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
labels = u24  # VXLAN: the label field is the 24-bit VNI as is (RFC 8365 §5.1.3)

ipv4_addresses = st.builds(ipaddress.IPv4Address, u32)
ipv6_addresses = st.builds(ipaddress.IPv6Address, st.integers(0, (1 << 128) - 1))
ip_addresses = st.one_of(ipv4_addresses, ipv6_addresses)
nonzero_ipv4 = st.builds(ipaddress.IPv4Address, st.integers(1, 0xFFFFFFFF))
nonzero_ipv6 = st.builds(ipaddress.IPv6Address, st.integers(1, (1 << 128) - 1))


@st.composite
def ipv4_networks(draw: st.DrawFn) -> ipaddress.IPv4Network:
    length = draw(st.integers(0, 32))
    addr = draw(u32)
    return ipaddress.IPv4Network((addr, length), strict=False)


@st.composite
def ipv6_networks(draw: st.DrawFn) -> ipaddress.IPv6Network:
    length = draw(st.integers(0, 128))
    addr = draw(st.integers(0, (1 << 128) - 1))
    return ipaddress.IPv6Network((addr, length), strict=False)


ip_networks = st.one_of(ipv4_networks(), ipv6_networks())

# -- values --------------------------------------------------------------------------------------------
macs = st.builds(MacAddress, st.binary(min_size=6, max_size=6))
rds_as2 = st.builds(RouteDistinguisher.as2, u16, u32)
rds_ipv4 = st.builds(RouteDistinguisher.ipv4, ipv4_addresses, u16)
rds_as4 = st.builds(RouteDistinguisher.as4, u32, u16)
rds = st.one_of(rds_as2, rds_ipv4, rds_as4)

esis = st.one_of(
    st.builds(Esi, st.binary(min_size=10, max_size=10)),
    st.builds(Esi.arbitrary, st.binary(min_size=9, max_size=9)),
    st.builds(Esi.lacp, macs, u16),
    st.builds(Esi.bridge_protocol, macs, u16),
    st.builds(Esi.mac_based, macs, u24),
    st.builds(Esi.router_id, ipv4_addresses, u32),
    st.builds(Esi.as_based, u32, u32),
)

route_targets = st.one_of(
    st.builds(RouteTarget, st.just(RtFormat.AS2), u16, u32),
    st.builds(RouteTarget, st.just(RtFormat.IPV4), u32, u16),
    st.builds(RouteTarget, st.just(RtFormat.AS4), u32, u16),
)

# -- EVPN routes (RFC 7432 §7, RFC 9136 §3.1) ----------------------------------------------------------
ethernet_ad_routes = st.builds(EthernetAdRoute, rds, esis, u32, labels)
mac_ip_routes = st.builds(
    MacIpRoute,
    rd=rds,
    mac=macs,
    ip=st.one_of(st.none(), ipv4_addresses, ipv6_addresses),
    label1=labels,
    label2=st.one_of(st.none(), labels),
    esi=esis,
    ethernet_tag=u32,
)
inclusive_multicast_routes = st.builds(InclusiveMulticastRoute, rds, ip_addresses, u32)
ethernet_segment_routes = st.builds(EthernetSegmentRoute, rds, esis, ip_addresses)


@st.composite
def ip_prefix_routes(draw: st.DrawFn) -> IpPrefixRoute:
    v6 = draw(st.booleans())
    prefix = draw(ipv6_networks() if v6 else ipv4_networks())
    # An all-zero gateway is "no gateway" on the wire (RFC 9136 §3.1), so it decodes as None.
    gateway = draw(st.one_of(st.none(), nonzero_ipv6 if v6 else nonzero_ipv4))
    return IpPrefixRoute(draw(rds), prefix, draw(labels), gateway, draw(esis), draw(u32))


unknown_evpn_routes = st.builds(
    UnknownEvpnRoute, st.integers(0, 255).filter(lambda t: not 1 <= t <= 5), st.binary(max_size=255)
)
known_evpn_routes: st.SearchStrategy[EvpnRoute] = st.one_of(
    ethernet_ad_routes, mac_ip_routes, inclusive_multicast_routes, ethernet_segment_routes, ip_prefix_routes()
)
evpn_routes: st.SearchStrategy[EvpnRoute] = st.one_of(known_evpn_routes, unknown_evpn_routes)

# -- extended communities ------------------------------------------------------------------------------


def _is_unknown(raw: bytes) -> bool:
    return isinstance(decode_ext_community(raw), UnknownExtCommunity)


unknown_ext_communities = st.builds(
    UnknownExtCommunity, st.binary(min_size=8, max_size=8).filter(_is_unknown)
)
ext_communities: st.SearchStrategy[ExtCommunity] = st.one_of(
    route_targets,
    st.builds(Encapsulation, u16),
    st.builds(MacMobility, u32, st.booleans()),
    st.builds(EsiLabel, u24, st.booleans()),
    st.builds(EsImportRouteTarget, macs),
    st.builds(RouterMac, macs),
    st.just(DefaultGateway()),
    st.builds(NdExtCommunity, st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    unknown_ext_communities,
)

# -- PMSI (RFC 6514 §5) --------------------------------------------------------------------------------
pmsi_tunnels = st.one_of(
    st.builds(
        PmsiTunnel,
        st.just(PmsiTunnelType.INGRESS_REPLICATION),
        labels,
        ip_addresses,
        u8,
    ),
    st.builds(
        PmsiTunnel,
        u8.filter(lambda t: t != PmsiTunnelType.INGRESS_REPLICATION),
        labels,
        st.binary(max_size=20),
        u8,
    ),
)

# -- path attributes -----------------------------------------------------------------------------------
as_path_segments = st.builds(
    AsPathSegment, st.sampled_from(SegmentType), st.lists(u32, min_size=1, max_size=255).map(tuple)
)
as_paths = st.builds(AsPath, st.lists(as_path_segments, max_size=3).map(tuple))
_KNOWN_CODES = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 22}
unknown_attributes = st.builds(
    UnknownAttribute,
    # Optional transitive: passed on with the Partial bit set (RFC 4271 §5), which is how it decodes.
    st.just(0xE0),
    st.integers(0, 255).filter(lambda c: c not in _KNOWN_CODES and c != 0),
    st.binary(max_size=300),
)


@st.composite
def unknown_attribute_lists(draw: st.DrawFn) -> tuple[UnknownAttribute, ...]:
    items = draw(st.lists(unknown_attributes, max_size=3, unique_by=lambda a: a.type_code))
    return tuple(items)


path_attributes = st.builds(
    PathAttributes,
    origin=st.sampled_from(Origin),
    as_path=as_paths,
    next_hop=st.one_of(st.none(), ipv4_addresses),
    med=st.one_of(st.none(), u32),
    local_pref=st.one_of(st.none(), u32),
    atomic_aggregate=st.booleans(),
    aggregator=st.one_of(st.none(), st.tuples(u32, ipv4_addresses)),
    communities=st.lists(u32, max_size=5).map(tuple),
    originator_id=st.one_of(st.none(), ipv4_addresses),
    cluster_list=st.lists(ipv4_addresses, max_size=4).map(tuple),
    ext_communities=st.lists(ext_communities, max_size=6).map(tuple),
    pmsi=st.one_of(st.none(), pmsi_tunnels),
    unknown=unknown_attribute_lists(),
)

# -- capabilities (RFC 5492) ---------------------------------------------------------------------------
_KNOWN_CAPS = {int(c) for c in CapabilityCode}
capabilities: st.SearchStrategy[Capability] = st.one_of(
    st.builds(Multiprotocol, u16, u8),
    st.just(RouteRefresh()),
    st.just(EnhancedRouteRefresh()),
    st.just(ExtendedMessage()),
    st.builds(FourOctetAs, u32),
    st.builds(
        GracefulRestart,
        st.integers(0, 4095),
        st.booleans(),
        st.booleans(),
        st.lists(st.builds(GracefulRestartFamily, u16, u8, st.booleans()), max_size=4).map(tuple),
    ),
    st.builds(
        AddPath,
        st.lists(st.builds(AddPathFamily, u16, u8, st.integers(1, 3)), min_size=1, max_size=4).map(tuple),
    ),
    st.builds(UnknownCapability, u8.filter(lambda c: c not in _KNOWN_CAPS), st.binary(max_size=40)),
)

# -- messages ------------------------------------------------------------------------------------------
opens = st.builds(
    Open,
    my_as=u16,
    hold_time=st.one_of(st.just(0), st.integers(3, 0xFFFF)),
    bgp_id=nonzero_ipv4,
    capabilities=st.lists(capabilities, max_size=12).map(tuple),
)
keepalives = st.just(Keepalive())
notifications = st.builds(NotificationMessage, u8, u8, st.binary(max_size=64))
route_refreshes = st.builds(RouteRefreshMessage, u16, u8, st.integers(0, 2))


def _mp_attrs(draw: st.DrawFn) -> PathAttributes:
    return replace(draw(path_attributes), next_hop=None)


@st.composite
def evpn_updates(draw: st.DrawFn) -> Update:
    """EVPN announce via MP_REACH_NLRI and/or withdraw via MP_UNREACH_NLRI (RFC 4760, RFC 7432)."""
    fam = Family.L2VPN_EVPN
    reach_routes = draw(st.lists(evpn_routes, max_size=6).map(tuple))
    unreach_routes = draw(st.lists(evpn_routes, max_size=6).map(tuple))
    reach = None
    attrs = None
    if reach_routes:
        nh = draw(ip_addresses)
        reach = MpReach(fam.afi, fam.safi, (nh,), reach_routes)
        attrs = _mp_attrs(draw)
    unreach = MpUnreach(fam.afi, fam.safi, unreach_routes) if unreach_routes or reach is None else None
    return Update(attributes=attrs, mp_reach=reach, mp_unreach=unreach)


@st.composite
def ipv4_updates(draw: st.DrawFn) -> Update:
    """IPv4 unicast in the UPDATE body with NEXT_HOP (RFC 4271 §4.3)."""
    withdrawn = tuple(draw(st.lists(ipv4_networks(), max_size=8)))
    nlri = tuple(draw(st.lists(ipv4_networks(), max_size=8)))
    attrs = None
    if nlri:
        attrs = replace(draw(path_attributes), next_hop=draw(ipv4_addresses))
    return Update(withdrawn=withdrawn, attributes=attrs, nlri=nlri)


@st.composite
def ipv6_updates(draw: st.DrawFn) -> Update:
    """IPv6 unicast via MP_REACH/MP_UNREACH (RFC 4760, RFC 2545)."""
    fam = Family.IPV6_UNICAST
    reach_routes = tuple(draw(st.lists(ipv6_networks(), max_size=8)))
    unreach_routes = tuple(draw(st.lists(ipv6_networks(), max_size=8)))
    reach = None
    attrs = None
    if reach_routes:
        hops = draw(
            st.one_of(
                st.tuples(ipv6_addresses),
                st.tuples(ipv6_addresses, ipv6_addresses),
            )
        )
        reach = MpReach(fam.afi, fam.safi, hops, reach_routes)
        attrs = _mp_attrs(draw)
    unreach = MpUnreach(fam.afi, fam.safi, unreach_routes) if unreach_routes or reach is None else None
    return Update(attributes=attrs, mp_reach=reach, mp_unreach=unreach)


updates = st.one_of(evpn_updates(), ipv4_updates(), ipv6_updates())
messages: st.SearchStrategy[Message] = st.one_of(opens, updates, keepalives, notifications, route_refreshes)
families = st.sampled_from(Family)
end_of_rib_messages = families.map(end_of_rib)  # wire bytes (RFC 4724 §2)
decode_options = st.builds(DecodeOptions, st.booleans(), st.booleans(), st.sampled_from([4096, 65535]))


def encode_message(message: Message) -> bytes:
    """Encode any message object to wire bytes."""
    if isinstance(message, Update):
        return encode_update(message)
    return message.encode()
