"""Dataplane pieces that need no kernel: the in-memory dataplane, the rtnetlink codec, names, typed errors."""

from __future__ import annotations

import errno
import ipaddress
import socket

import pytest

from dataplane import rtnl
from dataplane.errors import PlumbingError, VrfUnsupportedError
from dataplane.interface import Dataplane, EventSource
from dataplane.layout import Layout, Namespaces, anycast_mac
from dataplane.memory import MemoryDataplane
from dataplane.monitor import Monitor
from dataplane.reconciler import KernelDataplane
from evpn.config import VrfBackend
from evpn.dataplane_state import DataplaneDelta, FdbEntry, FloodEntry, NeighEntry, RouteEntry
from evpn.mac import MacAddress
from tests.dataplane.conftest import leaf_config, red

MAC = MacAddress.from_text("aa:bb:cc:00:00:01")
VTEP2 = ipaddress.ip_address("100.65.0.2")
VTEP3 = ipaddress.ip_address("100.65.0.3")


def test_vrf_unsupported_message_names_the_fix() -> None:
    error = VrfUnsupportedError()
    assert isinstance(error, PlumbingError)
    assert str(error) == "kernel has no VRF support (CONFIG_NET_VRF); use vrf_backend: netns"


def test_anycast_mac_is_00f3_and_vni_plus_one() -> None:
    assert str(anycast_mac(110)) == "00:f3:00:00:00:6f"
    assert str(anycast_mac(0xFFFFFE)) == "00:f3:00:ff:ff:ff"


def test_layout_places_l2vni_of_a_vrf_in_the_vrf_namespace() -> None:
    config = leaf_config(1, l3=(red(1),))
    config = type(config)(
        underlay=config.underlay,
        l2vnis=(type(config.l2vnis[0])(name="x", vni=110, vrf="red"),),
        l3vnis=config.l3vnis,
        vrf_backend=VrfBackend.NETNS,
    )
    layout = Layout(config, Namespaces("r", "h", "r-{vrf}"))
    vnis = layout.vnis()
    assert (vnis[110].netns, vnis[110].svi, vnis[110].vxlan) == ("r-red", "br-pe-110", "vni110")
    assert (vnis[100].netns, vnis[100].l3) == ("r-red", True)
    assert layout.vrfs()["red"].table == 254
    assert layout.mtu() == 1450


async def test_memory_dataplane_applies_replaces_and_reconciles() -> None:
    dp: Dataplane = MemoryDataplane(vnis={110, 100})
    route = RouteEntry("red", 100, ipaddress.ip_network("10.1.0.0/24"), VTEP2)
    result = await dp.apply(
        DataplaneDelta(
            add=(FdbEntry(110, MAC, VTEP2), FloodEntry(110, VTEP2), NeighEntry(110, VTEP2, MAC), route)
        )
    )
    assert result.ok and result.added == 4
    await dp.apply(DataplaneDelta(add=(FdbEntry(110, MAC, VTEP3),)))  # a move replaces
    assert FdbEntry(110, MAC, VTEP3) in await dp.installed()
    assert FdbEntry(110, MAC, VTEP2) not in await dp.installed()
    result = await dp.apply(DataplaneDelta(add=(FloodEntry(999, VTEP2),)))
    assert [f.errno for f in result.failures] == [errno.ENODEV]
    result = await dp.reconcile({FloodEntry(110, VTEP3), route})
    assert await dp.installed() == {FloodEntry(110, VTEP3), route}


def test_rtnl_fdb_message_round_trip() -> None:
    raw = rtnl.fdb_message(
        rtnl.RTM_NEWNEIGH, rtnl.NLM_F_CREATE, 7, MAC.packed, VTEP2, rtnl.NTF_SELF, rtnl.NUD_REACHABLE
    )
    (decoded,) = rtnl.decode(raw)
    assert decoded == rtnl.Neigh(
        False, rtnl.AF_BRIDGE, 7, rtnl.NUD_REACHABLE, rtnl.NTF_SELF, MAC.packed, VTEP2, None
    )


def test_datagram_reader_reuses_its_buffer_and_decoded_values_survive_the_next_read() -> None:
    first = rtnl.fdb_message(
        rtnl.RTM_NEWNEIGH, rtnl.NLM_F_CREATE, 7, MAC.packed, VTEP2, rtnl.NTF_SELF, rtnl.NUD_REACHABLE
    )
    second = rtnl.fdb_message(rtnl.RTM_DELNEIGH, 0, 9, bytes(6), VTEP3, rtnl.NTF_SELF, rtnl.NUD_REACHABLE)
    reader = rtnl.DatagramReader(4096)
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with sender, receiver:
        sender.send(first)
        sender.send(second)
        (decoded,) = rtnl.decode(reader.read(receiver))
        view = reader.read(receiver)
        assert bytes(view) == second
        receiver.setblocking(False)
        with pytest.raises(BlockingIOError):
            reader.read(receiver)
    assert decoded == rtnl.Neigh(
        False, rtnl.AF_BRIDGE, 7, rtnl.NUD_REACHABLE, rtnl.NTF_SELF, MAC.packed, VTEP2, None
    )


def test_ext_learned_fdb_mac_reads_only_single_extern_learn_bridge_messages() -> None:
    def fdb(ntf: int, msg_type: int = rtnl.RTM_NEWNEIGH) -> bytes:
        return rtnl.fdb_message(msg_type, 0, 7, MAC.packed, None, ntf, rtnl.NUD_REACHABLE)

    ours = fdb(rtnl.NTF_EXT_LEARNED | rtnl.NTF_MASTER)
    assert rtnl.ext_learned_fdb_mac(ours) == MAC.packed
    assert rtnl.ext_learned_fdb_mac(fdb(rtnl.NTF_EXT_LEARNED, rtnl.RTM_DELNEIGH)) == MAC.packed
    assert rtnl.ext_learned_fdb_mac(memoryview(ours)) == MAC.packed
    assert rtnl.ext_learned_fdb_mac(fdb(rtnl.NTF_MASTER)) is None  # learned: decode it
    assert rtnl.ext_learned_fdb_mac(ours + ours) is None  # several messages: decode them
    neigh = rtnl.neigh_message(rtnl.RTM_NEWNEIGH, 0, 7, VTEP2, MAC.packed, rtnl.NTF_EXT_LEARNED, 0)
    assert rtnl.ext_learned_fdb_mac(neigh) is None  # an IP neighbour, not an FDB entry
    for cut in range(len(ours)):
        assert rtnl.ext_learned_fdb_mac(ours[:cut]) is None


def test_rtnl_unicast_route_message_round_trip() -> None:
    """No device, not onlink; an IPv6 next hop of an IPv4 prefix goes as RTA_VIA (RFC 8950)."""
    prefix = ipaddress.ip_network("10.10.0.0/16")
    for gateway in (ipaddress.ip_address("192.168.9.5"), ipaddress.ip_address("2001:db8:9::5")):
        raw = rtnl.unicast_route_message(rtnl.RTM_NEWROUTE, 0, prefix, gateway, 254, 201, 20)
        (decoded,) = rtnl.decode(raw)
        assert isinstance(decoded, rtnl.Route)
        assert (
            decoded.prefix,
            decoded.gateway,
            decoded.oif,
            decoded.flags,
            decoded.table,
            decoded.protocol,
        ) == (
            prefix,
            gateway,
            None,
            0,
            254,
            201,
        )


def test_layout_unicast_tables_and_host_veths() -> None:
    from tests.dataplane.conftest import PASSTHROUGH, red_with_session

    netns_config = leaf_config(1, l3=(red_with_session(1),), passthrough=PASSTHROUGH)
    layout = Layout(netns_config, Namespaces("r", "h", "r-{vrf}"))
    assert {k: (t.netns, t.table) for k, t in layout.unicast_tables().items()} == {
        "": ("r", 254),
        "red": ("r-red", 254),
    }
    veths = {(v.router, v.router_netns, v.host, v.host_netns, v.master) for v in layout.host_veths()}
    assert veths == {("pt-ns", "r", "pt-host", "h", None), ("pe-100", "r-red", "host-100", "h", None)}
    device = Layout(
        leaf_config(1, l3=(red_with_session(1),), backend=VrfBackend.DEVICE), Namespaces(None, None)
    )
    assert {k: (t.netns, t.table) for k, t in device.unicast_tables().items()} == {
        "": (None, 254),
        "red": (None, 100),
    }
    (veth,) = device.host_veths()
    assert (veth.router_netns, veth.host_netns, veth.master, veth.mtu) == (None, None, "red", 1450)


def test_rtnl_route_message_round_trip() -> None:
    """An IPv6 prefix through an IPv4 VTEP gets the IPv4-mapped next hop (IPv6 routes have no RTA_VIA)."""
    prefix = ipaddress.ip_network("2001:db8::/64")
    raw = rtnl.route_message(rtnl.RTM_NEWROUTE, 0, prefix, VTEP2, 9, 1000, 201)
    (decoded,) = rtnl.decode(raw)
    assert isinstance(decoded, rtnl.Route)
    assert (decoded.table, decoded.protocol, decoded.dst, decoded.dst_len, decoded.gateway, decoded.oif) == (
        1000,
        201,
        prefix.network_address,
        64,
        ipaddress.ip_address("::ffff:100.65.0.2"),
        9,
    )


async def test_kernel_dataplane_reports_a_missing_namespace_per_entry() -> None:
    layout = Layout(leaf_config(1), Namespaces("evpn-test-absent-r", "evpn-test-absent-h"))
    dp = KernelDataplane(layout)
    entry = FloodEntry(110, VTEP2)
    result = await dp.apply(DataplaneDelta(add=(entry,)))
    assert [(f.entry, f.errno) for f in result.failures] == [(entry, errno.ENOENT)]
    assert "evpn-test-absent-r" in result.failures[0].reason
    assert await dp.installed() == frozenset()
    await dp.close()


def test_implementations_satisfy_the_protocols() -> None:
    """Checked by mypy (strict) on this file; constructing them does no I/O."""
    layout = Layout(leaf_config(1), Namespaces("r", "h"))
    dataplanes: list[Dataplane] = [MemoryDataplane(), KernelDataplane(layout)]
    sources: list[EventSource] = [MemoryDataplane(), Monitor(layout)]
    assert len(dataplanes) == len(sources) == 2
