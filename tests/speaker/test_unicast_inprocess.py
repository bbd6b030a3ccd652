"""Two speakers over loopback with IPv4 unicast beside EVPN (issue #8): each announces its VTEP /32, the
other programs it as an underlay route, and next-hop tracking holds EVPN routes until the VTEP resolves."""

from __future__ import annotations

import dataclasses
import ipaddress

from evpn.codec.families import Family
from evpn.dataplane_state import UnicastRouteEntry
from evpn.events import LocalMacLearned
from speaker.speaker import Speaker
from tests.speaker.conftest import (
    VNI,
    Node,
    all_established,
    entries,
    eventually,
    fdb_vtep,
    mac,
    make_nodes,
    node_config,
)

BOTH = (Family.IPV4_UNICAST, Family.L2VPN_EVPN)


def _unicast_speaker(node: Node, nodes: list[Node]) -> Speaker:
    """The usual loopback speaker, its neighbors negotiating IPv4 unicast too, next-hop tracking on."""
    cfg = node_config(node, nodes)
    neighbors = tuple(dataclasses.replace(n, families=BOTH) for n in cfg.underlay.neighbors)
    underlay = dataclasses.replace(cfg.underlay, neighbors=neighbors, nexthop_tracking=True)
    return Speaker(
        dataclasses.replace(cfg, underlay=underlay),
        listen_address=node.address,
        listen_port=node.port,
        name=f"s{node.index + 1}",
        engine_options={"initial_backoff": 0.1, "connect_timeout": 2.0},
        tick_interval=0.2,
    )


async def test_vtep_routes_make_evpn_routes_resolvable(speakers: list[Speaker]) -> None:
    nodes = make_nodes(2)
    a, b = (_unicast_speaker(n, nodes) for n in nodes)
    speakers += [a, b]
    await a.start()
    await b.start()
    await all_established([a, b])
    a_vtep = ipaddress.ip_network(f"{nodes[0].vtep}/32")
    # b learns a's VTEP /32 over IPv4 unicast, next hop a's session address, into the main table
    route = UnicastRouteEntry("", a_vtep, ipaddress.IPv4Address(nodes[0].address))
    await eventually(lambda: route in entries(b), "a's VTEP /32 in b's main table")
    # a local MAC on a: b resolves a's VTEP through that route and installs the MAC
    await a.inject(LocalMacLearned(VNI, mac(1)))
    await eventually(lambda: fdb_vtep(b, mac(1)) == nodes[0].vtep, "a's MAC behind a in b's FDB")
    row = next(r for r in b.next_hops() if r.vtep == nodes[0].vtep)
    assert row.reachable is True and row.via == a_vtep and row.held == 0
