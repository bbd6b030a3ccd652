"""Dataplane entries built on the core's hot path: the fast builders and keys give the same values as the
dataclass constructors and the ``ipaddress`` objects."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from evpn.codec.evpn_nlri import IPAddress, IPNetwork, MacIpRoute
from evpn.dataplane_state import (
    FdbEntry,
    NeighEntry,
    RouteEntry,
    fdb_entry,
    host_route,
    neigh_entry,
    route_entry,
)
from evpn.desired import DeltaJournal
from evpn.fast_ip import host_key, host_prefix, ip_key, prefix_key
from evpn.mac import MacAddress
from evpn.rib import route_key
from evpn.route_distinguisher import RouteDistinguisher
from tests.unit import strategies as s

FAST = settings(max_examples=200, deadline=None)


@FAST
@given(st.integers(0, 1 << 24), s.macs, s.ip_addresses, s.ip_networks)
def test_fast_builders_equal_the_constructors(
    vni: int, mac: MacAddress, ip: IPAddress, prefix: IPNetwork
) -> None:
    _same(fdb_entry(vni, mac, ip), FdbEntry(vni, mac, ip))
    _same(neigh_entry(vni, ip, mac), NeighEntry(vni, ip, mac))
    _same(route_entry("red", vni, prefix, ip), RouteEntry("red", vni, prefix, ip))


def _same(fast: Any, slow: Any) -> None:
    assert type(fast) is type(slow)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert not fast < slow and not slow < fast


@FAST
@given(s.ip_addresses, s.ip_networks)
def test_prefix_keys_are_one_per_prefix(ip: IPAddress, prefix: IPNetwork) -> None:
    assert host_prefix(ip) == host_route(ip)
    assert host_key(ip) == prefix_key(host_route(ip))
    assert ip_key(ip) == (int(ip) if ip.version == 4 else int(ip) | 1 << 128)
    assert (prefix_key(prefix) == host_key(ip)) == (prefix == host_route(ip))


def test_v4_and_v6_keys_differ() -> None:
    v4, v6 = ipaddress.IPv4Address("0.0.0.1"), ipaddress.IPv6Address("::1")
    assert ip_key(v4) != ip_key(v6) and host_key(v4) != host_key(v6)
    assert prefix_key(ipaddress.ip_network("0.0.0.0/0")) != prefix_key(ipaddress.ip_network("::/0"))


def test_journal_folds_and_starts_over() -> None:
    journal = DeltaJournal()
    mac = MacAddress.from_int(1)
    a = FdbEntry(1, mac, ipaddress.IPv4Address("192.0.2.1"))
    b = fdb_entry(1, mac, ipaddress.IPv4Address("192.0.2.2"))
    journal.add(a)
    journal.add(b)
    journal.remove(fdb_entry(1, mac, ipaddress.IPv4Address("192.0.2.1")))
    delta = journal.take_delta()
    assert delta.add == (b,) and delta.remove == ()
    assert not journal.take_delta()
    journal.remove(b)
    assert journal.take_delta().remove == (b,)


@FAST
@given(s.rds, s.macs, s.ip_addresses)
def test_type2_route_key_holds_the_address_as_an_int(
    rd: RouteDistinguisher, m: MacAddress, ip: IPAddress
) -> None:
    key = route_key(MacIpRoute(rd, m, ip, 110))
    assert key == (2, rd.packed, 0, m.packed, ip.version, int(ip))
    assert route_key(MacIpRoute(rd, m, None, 110))[4:] == (0, 0)


def test_prefix_keys_of_every_length_are_distinct() -> None:
    nets = [ipaddress.ip_network(f"10.0.0.0/{n}") for n in range(8, 33)]
    nets += [ipaddress.ip_network(f"2001:db8::/{n}") for n in range(32, 129)]
    nets += [
        ipaddress.ip_network("0.0.0.0/0"),
        ipaddress.ip_network("::/0"),
        ipaddress.ip_network("0.0.0.10/32"),
    ]
    assert len({prefix_key(n) for n in nets}) == len(nets)
