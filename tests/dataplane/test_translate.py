"""Kernel messages -> local-learning events, without a kernel (decoded messages built by hand)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from dataplane import rtnl
from dataplane.interface import LinkChanged
from dataplane.translate import EventTranslator
from evpn.events import LocalMacAged, LocalMacLearned, LocalNeighLearned, LocalNeighRemoved
from evpn.mac import MacAddress

UP = rtnl.IFF_UP | rtnl.IFF_LOWER_UP
BR, VX, PE, OTHER = 10, 11, 12, 20
MAC = MacAddress.from_text("02:aa:00:00:00:03")
IP = ipaddress.ip_address("192.170.1.3")
IP6 = ipaddress.ip_address("fd00::3")


def translator() -> EventTranslator:
    t = EventTranslator({"br-pe-110": 110}, {"br-pe-110": 110, "vni110": 110, "pe-e-110": 110})
    for link in (
        rtnl.Link(False, BR, UP, "br-pe-110", None, "bridge", None),
        rtnl.Link(False, VX, UP, "vni110", BR, "vxlan", None),
        rtnl.Link(False, PE, UP, "pe-e-110", BR, "veth", None),
        rtnl.Link(False, OTHER, UP, "other", None, "bridge", None),
    ):
        assert t.feed(link) == []
    return t


def fdb(
    port: int,
    *,
    deleted: bool = False,
    flags: int = 0,
    state: int = rtnl.NUD_REACHABLE,
    mac: MacAddress = MAC,
) -> rtnl.Neigh:
    return rtnl.Neigh(deleted, rtnl.AF_BRIDGE, port, state, flags, mac.packed, None, BR)


def neigh(
    ip: rtnl.IPAddress, state: int, *, deleted: bool = False, flags: int = 0, dev: int = BR
) -> rtnl.Neigh:
    family = 2 if ip.version == 4 else 10
    return rtnl.Neigh(deleted, family, dev, state, flags, MAC.packed, ip, None)


def test_local_mac_learned_once_moved_and_aged() -> None:
    t = translator()
    assert t.feed(fdb(PE)) == [LocalMacLearned(110, MAC)]
    assert t.feed(fdb(PE)) == []  # refresh is no news
    assert t.feed(fdb(PE, deleted=True)) == [LocalMacAged(110, MAC)]
    assert t.feed(fdb(PE, deleted=True)) == []


def test_ours_vxlan_ports_permanent_and_foreign_bridges_are_not_local() -> None:
    t = translator()
    assert t.feed(fdb(PE, flags=rtnl.NTF_EXT_LEARNED)) == []
    assert t.feed(fdb(VX)) == []
    assert t.feed(fdb(PE, state=rtnl.NUD_PERMANENT)) == []
    assert (
        t.feed(rtnl.Neigh(False, rtnl.AF_BRIDGE, OTHER, rtnl.NUD_REACHABLE, 0, MAC.packed, None, OTHER)) == []
    )
    multicast = MacAddress.from_text("01:00:5e:00:00:01")
    assert t.feed(fdb(PE, mac=multicast)) == []


def test_local_mac_taken_over_by_a_remote_entry_is_aged() -> None:
    t = translator()
    t.feed(fdb(PE))
    assert t.feed(fdb(VX, flags=rtnl.NTF_EXT_LEARNED)) == [LocalMacAged(110, MAC)]


def test_neighbours_learned_on_change_removed_when_failed_or_deleted() -> None:
    t = translator()
    assert t.feed(neigh(IP, rtnl.NUD_REACHABLE)) == [LocalNeighLearned(110, IP, MAC)]
    assert t.feed(neigh(IP, rtnl.NUD_STALE)) == []
    assert t.stale() == [(BR, IP)]
    assert t.feed(neigh(IP, rtnl.NUD_REACHABLE)) == []
    assert t.stale() == []
    assert t.feed(neigh(IP, rtnl.NUD_FAILED)) == [LocalNeighRemoved(110, IP)]
    assert t.feed(neigh(IP6, rtnl.NUD_REACHABLE)) == [LocalNeighLearned(110, IP6, MAC)]
    assert t.feed(neigh(IP6, 0, deleted=True)) == [LocalNeighRemoved(110, IP6)]
    link_local = ipaddress.ip_address("fe80::1")
    assert t.feed(neigh(link_local, rtnl.NUD_REACHABLE)) == []
    assert t.feed(neigh(IP, rtnl.NUD_REACHABLE, dev=OTHER)) == []


def test_multicast_groups_on_the_svi_are_not_hosts() -> None:
    """The kernel's NOARP entries for multicast groups (IGMP 224.0.0.22, MLD ff02::16) are never advertised."""
    t = translator()
    for group, group_mac in (("224.0.0.22", "01:00:5e:00:00:16"), ("ff02::16", "33:33:00:00:00:16")):
        dst = ipaddress.ip_address(group)
        message = rtnl.Neigh(False, 2 if dst.version == 4 else 10, BR, rtnl.NUD_NOARP, 0,
                             MacAddress.from_text(group_mac).packed, dst, None)  # fmt: skip
        assert t.feed(message) == []
    assert t.feed(neigh(IP, rtnl.NUD_REACHABLE)) == [LocalNeighLearned(110, IP, MAC)]


def test_remote_mac_becoming_local_brings_its_ips() -> None:
    t = translator()
    assert t.feed(neigh(IP, rtnl.NUD_NOARP, flags=rtnl.NTF_EXT_LEARNED)) == []  # ours, remote
    assert t.feed(fdb(VX, flags=rtnl.NTF_EXT_LEARNED)) == []
    assert t.feed(fdb(PE)) == [LocalMacLearned(110, MAC), LocalNeighLearned(110, IP, MAC)]


def test_link_up_down_of_watched_devices() -> None:
    t = translator()
    assert t.feed(rtnl.Link(False, PE, 0, "pe-e-110", BR, "veth", None)) == [
        LinkChanged("pe-e-110", 110, False)
    ]
    assert t.feed(rtnl.Link(False, PE, UP, "pe-e-110", BR, "veth", None)) == [
        LinkChanged("pe-e-110", 110, True)
    ]
    assert t.feed(rtnl.Link(False, OTHER, 0, "other", None, "bridge", None)) == []


def test_resync_after_lost_notifications_reports_what_disappeared() -> None:
    t = translator()
    other = MacAddress.from_text("02:aa:00:00:00:04")
    t.feed(fdb(PE))
    t.feed(fdb(PE, mac=other))
    t.feed(neigh(IP, rtnl.NUD_STALE))
    t.begin_sync()  # the dump shows only ``other``: MAC and neighbour of MAC were lost meanwhile
    assert t.feed(fdb(PE, mac=other)) == []
    assert t.end_sync() == [LocalMacAged(110, MAC), LocalNeighRemoved(110, IP)]
    assert t.stale() == []
    assert t.end_sync() == []


def test_concerns_only_macs_that_are_local_somewhere() -> None:
    t = translator()
    other = MacAddress.from_text("02:aa:00:00:00:04")
    assert not t.concerns(MAC.packed)
    t.feed(fdb(PE))
    t.feed(fdb(PE, mac=other))
    assert t.concerns(MAC.packed) and t.concerns(other.packed)
    t.feed(fdb(VX, flags=rtnl.NTF_EXT_LEARNED))  # MAC moved away
    assert not t.concerns(MAC.packed)
    t.begin_sync()
    t.end_sync()  # ``other`` not in the dump: lost
    assert not t.concerns(other.packed)


_MACS = [MacAddress.from_text(f"02:aa:00:00:00:0{i}") for i in range(1, 4)]
_FDB_MESSAGES = st.builds(
    fdb,
    st.sampled_from([PE, VX, BR, 99]),
    deleted=st.booleans(),
    flags=st.sampled_from([0, rtnl.NTF_EXT_LEARNED, rtnl.NTF_SELF]),
    state=st.sampled_from([rtnl.NUD_REACHABLE, rtnl.NUD_PERMANENT, rtnl.NUD_NOARP]),
    mac=st.sampled_from(_MACS),
)


@given(st.lists(_FDB_MESSAGES, max_size=40))
def test_ext_learned_messages_the_monitor_skips_would_mean_nothing(messages: list[rtnl.Neigh]) -> None:
    """The monitor skips extern_learn FDB messages for MACs :meth:`concerns` rejects: feeding them must
    never produce an event, whatever came before; and :meth:`concerns` follows the reported local MACs."""
    t = translator()
    local: set[bytes] = set()
    for msg in messages:
        assert msg.lladdr is not None
        skipped = bool(msg.flags & rtnl.NTF_EXT_LEARNED) and not t.concerns(msg.lladdr)
        events = t.feed(msg)
        if skipped:
            assert events == []
        for event in events:
            if isinstance(event, LocalMacLearned):
                local.add(event.mac.packed)
            elif isinstance(event, LocalMacAged):
                local.discard(event.mac.packed)
        assert {mac.packed for mac in _MACS if t.concerns(mac.packed)} == local
