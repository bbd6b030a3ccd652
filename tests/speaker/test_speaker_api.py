"""The embedding API's edges: argument checks, lifecycle, subscriptions, delta merging, restart deferral."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from dataplane.memory import MemoryDataplane
from evpn.config import L2Vni, SpeakerConfig, Underlay
from evpn.dataplane_state import DataplaneDelta, FdbEntry, FloodEntry
from evpn.events import LocalMacLearned, PeerUp
from speaker.engine import EndOfRibMode
from speaker.native_engine import NativeEngine
from speaker.speaker import DataplaneApplied, Speaker, merge_deltas
from tests.speaker.conftest import VNI, mac

V4 = ipaddress.IPv4Address


def lonely_config() -> SpeakerConfig:
    return SpeakerConfig(
        underlay=Underlay(asn=65000, router_id=V4("10.0.0.9"), vtep_ipv4=V4("10.1.0.9")),
        l2vnis=(L2Vni("l2", VNI),),
    )


async def test_lifecycle_and_subscription() -> None:
    spk = Speaker(lonely_config(), listen_address="127.0.0.1", listen_port=0)
    changes = spk.subscribe()
    async with spk:
        assert spk.running
        with pytest.raises(TypeError):
            await spk.inject(PeerUp(V4("1.2.3.4"), 1, V4("1.2.3.4"), True, frozenset()))  # type: ignore[arg-type]
        await spk.inject(LocalMacLearned(VNI, mac(1)))
        assert spk.mac_table(VNI).rows[0].kind == "local"
        first = await changes.get(timeout=2)
        assert isinstance(first, DataplaneApplied) and first.reconcile  # the start-up reconcile
        assert spk.peer_states() == []
        # the default event source is the in-memory dataplane (as the kernel monitor would report)
        assert isinstance(spk.dataplane, MemoryDataplane)
        spk.dataplane.inject(LocalMacLearned(VNI, mac(3)))
        for _ in range(100):
            if any(r.mac == mac(3) and r.kind == "local" for r in spk.mac_table(VNI).rows):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("event source not read")
    assert not spk.running
    assert [c async for c in changes] == []  # the subscription ended with the speaker
    with pytest.raises(RuntimeError):
        await spk.inject(LocalMacLearned(VNI, mac(2)))
    await spk.stop()  # idempotent


async def test_engine_must_be_manual_and_start_failure_cleans_up() -> None:
    config = lonely_config()
    with pytest.raises(ValueError):
        Speaker(config, engine=NativeEngine(config.underlay, end_of_rib_mode=EndOfRibMode.AUTO))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spk = Speaker(config, listen_address="127.0.0.1", listen_port=port)
        with pytest.raises(OSError):
            await spk.start()
    assert not spk.running
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("speaker-")]


async def test_restarting_without_neighbors_reconciles_at_once() -> None:
    dp = MemoryDataplane()
    stale = FdbEntry(VNI, mac(7), V4("10.1.0.7"))
    await dp.apply(DataplaneDelta(add=(stale,)))
    async with Speaker(
        lonely_config(), dataplane=dp, restarting=True, listen_address="127.0.0.1", listen_port=0
    ):
        assert stale not in await dp.installed()


def test_merge_deltas() -> None:
    a, b = FdbEntry(VNI, mac(1), V4("10.1.0.1")), FdbEntry(VNI, mac(1), V4("10.1.0.2"))
    f = FloodEntry(VNI, V4("10.1.0.1"))
    merged = merge_deltas([DataplaneDelta(add=(a, f)), DataplaneDelta(add=(b,), remove=(a,))])
    assert merged == DataplaneDelta(add=(f, b), remove=())
    back = merge_deltas([DataplaneDelta(add=(b,), remove=(a,)), DataplaneDelta(add=(a,), remove=(b,))])
    assert not back  # a move and its reversal: nothing to do


async def test_memory_dataplane_replaces_like_the_kernel() -> None:
    """``MemoryDataplane`` keeps one VTEP per (vni, mac); a stale remove leaves the newer entry; reconcile."""
    a, b = FdbEntry(VNI, mac(1), V4("10.1.0.1")), FdbEntry(VNI, mac(1), V4("10.1.0.2"))
    c, f = FdbEntry(VNI, mac(2), V4("10.1.0.1")), FloodEntry(VNI, V4("10.1.0.1"))
    dp = MemoryDataplane()
    await dp.apply(DataplaneDelta(add=(a, c, f)))
    assert await dp.installed() == {a, c, f}
    await dp.apply(DataplaneDelta(add=(b,)))  # replaces a: one VTEP per (vni, mac)
    assert await dp.installed() == {b, c, f}
    await dp.apply(DataplaneDelta(remove=(a,)))  # no longer there: b stays
    await dp.apply(DataplaneDelta(remove=(c,)))
    assert await dp.installed() == {b, f}
    result = await dp.reconcile([a, c])
    assert (result.added, result.removed) == (2, 2)
    assert await dp.installed() == {a, c}
