"""Plain views of EVPN routes for people and tools: JSON-ready dicts and one-line text (sans-IO, pure).

The text follows FRR's ``show bgp l2vpn evpn`` prefix notation (FRR ``lib/prefix.c``), e.g.
``[2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]:[32]:[10.0.0.1]``; RDs and RTs use FRR's ``ASN:N`` / ``IP:N`` forms.
VXLAN labels are shown as the raw 24-bit value carried on the wire (the VNI, RFC 8365 §5.1.3).
"""

from __future__ import annotations

from typing import Literal

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IPAddress,
    IpPrefixRoute,
    MacIpRoute,
    UnknownEvpnRoute,
)
from evpn.codec.extcommunity import Encapsulation, ExtCommunity, TunnelType
from evpn.codec.pmsi import PmsiTunnel, PmsiTunnelType
from evpn.route_target import RouteTarget

Action = Literal["announce", "withdraw"]
"""What an UPDATE did with a route."""

JsonDict = dict[str, object]


def route_labels(route: EvpnRoute) -> list[int]:
    """The label fields of a route as raw 24-bit integers, in wire order (none for types 3 and 4)."""
    if isinstance(route, MacIpRoute):
        return [route.label1] if route.label2 is None else [route.label1, route.label2]
    if isinstance(route, EthernetAdRoute | IpPrefixRoute):
        return [route.label]
    return []


def route_prefix_text(route: EvpnRoute) -> str:
    """The route in FRR's bracket notation (RD not included, as in FRR's prefix column)."""
    if isinstance(route, MacIpRoute):
        text = f"[2]:[{route.ethernet_tag}]:[48]:[{route.mac}]"
        if route.ip is not None:
            text += f":[{route.ip.max_prefixlen}]:[{route.ip}]"
        return text
    if isinstance(route, InclusiveMulticastRoute):
        return f"[3]:[{route.ethernet_tag}]:[{route.originator.max_prefixlen}]:[{route.originator}]"
    if isinstance(route, IpPrefixRoute):
        return f"[5]:[{route.ethernet_tag}]:[{route.prefix.prefixlen}]:[{route.prefix.network_address}]"
    if isinstance(route, EthernetAdRoute):
        return f"[1]:[{route.ethernet_tag}]:[{route.esi}]"
    if isinstance(route, EthernetSegmentRoute):
        return f"[4]:[{route.esi}]:[{route.originator.max_prefixlen}]:[{route.originator}]"
    return f"[{route.type_code}]:[{route.value.hex()}]"


def encapsulation_name(tunnel_type: int) -> str:
    """``vxlan`` for tunnel type 8 (RFC 8365 §5.1.3); other known types by name, unknown ones as digits."""
    try:
        return TunnelType(tunnel_type).name.lower()
    except ValueError:
        return str(tunnel_type)


def pmsi_to_dict(pmsi: PmsiTunnel) -> JsonDict:
    """PMSI Tunnel attribute (RFC 6514 §5) as ``tunnel_type``, ``label`` (raw 24 bits) and ``tunnel_id``."""
    tid = pmsi.tunnel_id
    return {
        "tunnel_type": pmsi.tunnel_type,
        "label": pmsi.label,
        "tunnel_id": tid.hex() if isinstance(tid, bytes) else str(tid),
    }


def route_to_dict(
    route: EvpnRoute, attributes: PathAttributes | None, next_hop: IPAddress | None, action: Action
) -> JsonDict:
    """One route as a JSON-ready dict; keys that do not apply to the route type or the UPDATE are omitted.

    Route keys: ``action``, ``type``, ``rd``, ``esi``, ``ethernet_tag``, ``mac``, ``ip``, ``prefix``,
    ``gateway_ip``, ``originator_ip``, ``labels``. Path keys (only when given): ``next_hop``,
    ``route_targets`` and ``default_gateway`` (always, as a list and a bool), and ``encapsulation``,
    ``router_mac``, ``mac_mobility``, ``pmsi`` when the UPDATE carries them.
    """
    out: JsonDict = {"action": action, "type": int(route.route_type)}
    if not isinstance(route, UnknownEvpnRoute):
        out["rd"] = str(route.rd)
        if not isinstance(route, InclusiveMulticastRoute):
            out["esi"] = str(route.esi)
        if not isinstance(route, EthernetSegmentRoute):
            out["ethernet_tag"] = route.ethernet_tag
        if isinstance(route, MacIpRoute):
            out["mac"] = str(route.mac)
            if route.ip is not None:
                out["ip"] = str(route.ip)
        elif isinstance(route, IpPrefixRoute):
            out["prefix"] = str(route.prefix)
            out["gateway_ip"] = str(route.gateway_ip)
        elif isinstance(route, InclusiveMulticastRoute | EthernetSegmentRoute):
            out["originator_ip"] = str(route.originator)
        labels = route_labels(route)
        if labels:
            out["labels"] = labels
    if next_hop is not None:
        out["next_hop"] = str(next_hop)
    if attributes is not None:
        out.update(_attributes_to_dict(attributes))
    return out


def _attributes_to_dict(attributes: PathAttributes) -> JsonDict:
    out: JsonDict = {"route_targets": [str(rt) for rt in attributes.route_targets]}
    encap = attributes.encapsulation
    if encap is not None:
        out["encapsulation"] = encapsulation_name(encap)
    rmac = attributes.router_mac
    if rmac is not None:
        out["router_mac"] = str(rmac)
    mobility = attributes.mac_mobility
    if mobility is not None:
        out["mac_mobility"] = {"sequence": mobility.sequence, "sticky": mobility.sticky}
    out["default_gateway"] = attributes.default_gateway
    if attributes.pmsi is not None:
        out["pmsi"] = pmsi_to_dict(attributes.pmsi)
    return out


def ext_community_text(community: ExtCommunity) -> str:
    """FRR's text for one extended community (``RT:65000:110``, ``ET:8``, ``Rmac:...``, ``MM:3``)."""
    if isinstance(community, Encapsulation):
        return f"ET:{community.tunnel_type}"
    if isinstance(community, RouteTarget):
        return f"RT:{community}"
    return str(community)


def pmsi_text(pmsi: PmsiTunnel) -> str:
    """``PMSI:IR:110:10.0.0.1`` (tunnel type, label as raw 24 bits, tunnel identifier)."""
    ir = pmsi.tunnel_type == PmsiTunnelType.INGRESS_REPLICATION
    kind = "IR" if ir else str(pmsi.tunnel_type)
    tid = pmsi.tunnel_id
    return f"PMSI:{kind}:{pmsi.label}:{tid.hex() if isinstance(tid, bytes) else tid}"


def route_to_text(
    route: EvpnRoute, attributes: PathAttributes | None, next_hop: IPAddress | None, action: Action
) -> str:
    """One line: action, FRR prefix notation, RD, ESI/gateway when set, labels, next hop, communities, PMSI."""
    parts = [action, route_prefix_text(route)]
    if not isinstance(route, UnknownEvpnRoute):
        parts += ["RD", str(route.rd)]
        if isinstance(route, MacIpRoute | IpPrefixRoute) and not route.esi.is_zero:
            parts += ["ESI", str(route.esi)]
    if isinstance(route, IpPrefixRoute) and route.gateway is not None:
        parts += ["gateway", str(route.gateway)]
    labels = route_labels(route)
    if labels:
        parts += ["label", "/".join(str(label) for label in labels)]
    if next_hop is not None:
        parts += ["nexthop", str(next_hop)]
    if attributes is not None:
        parts += [ext_community_text(c) for c in attributes.ext_communities]
        if attributes.pmsi is not None:
            parts.append(pmsi_text(attributes.pmsi))
    return " ".join(parts)
