"""Two and three ``Speaker`` objects in one process over loopback: sessions, remote MACs, MAC mobility,
hold-timer detection of a silent speaker, and graceful restart (RFC 4724) on both sides."""

from __future__ import annotations

import asyncio
import threading
from functools import partial

from dataplane.memory import MemoryDataplane
from evpn.config import GracefulRestartConfig
from evpn.dataplane_state import FdbEntry, FloodEntry
from evpn.events import EndOfRib, LocalMacAged, LocalMacLearned, PeerDown, PeerUp
from evpn.notices import MacMoved, StaleRoutesSwept
from evpn.outputs import RoutesToAdvertise
from speaker.speaker import DataplaneApplied, Speaker, SpeakerChange
from tests.speaker.conftest import (
    VNI,
    Node,
    all_established,
    behind,
    entries,
    eventually,
    fdb_vtep,
    mac,
    make_nodes,
    make_speaker,
    row,
)

M1, M2, M3 = mac(1), mac(2), mac(3)


async def test_two_speakers_remote_mac(speakers: list[Speaker]) -> None:
    nodes = make_nodes(2)
    a, b = (make_speaker(n, nodes) for n in nodes)
    speakers += [a, b]
    async with b.subscribe() as changes:
        await a.start()
        await b.start()
        await all_established([a, b])
        # type-3 of each other: a flood entry toward the other VTEP
        await eventually(lambda: FloodEntry(VNI, nodes[0].vtep) in entries(b), "b floods to a")
        await eventually(lambda: FloodEntry(VNI, nodes[1].vtep) in entries(a), "a floods to b")

        await a.inject(LocalMacLearned(VNI, M1))
        await eventually(lambda: fdb_vtep(b, M1) == nodes[0].vtep, "M1 behind a in b's dataplane")
        r = row(b, M1)
        assert r.kind == "remote" and r.vtep == nodes[0].vtep and r.remote_seq == 0
        assert row(a, M1).kind == "local"
        # the subscription saw the session, and the delta with its result
        seen: list[SpeakerChange] = []
        while not any(isinstance(c, DataplaneApplied) and FdbEntry(VNI, M1, nodes[0].vtep) in c.delta.add
                      for c in seen):  # fmt: skip
            seen.append(await changes.get(timeout=5))
        assert any(isinstance(c, PeerUp) for c in seen)
        applied = [c for c in seen if isinstance(c, DataplaneApplied)]
        assert all(c.result.ok for c in applied)
        assert FdbEntry(VNI, M1, nodes[0].vtep) in await b.installed()

        # aged on a: gone from b
        await a.inject(LocalMacAged(VNI, M1))
        await eventually(lambda: fdb_vtep(b, M1) is None, "M1 removed from b")
        assert row(b, M1) is None or row(b, M1).kind == "none"

    # the embedding API's read models
    assert {v.vni for v in a.vni_table()} == {VNI}
    assert any(p.peer is None for g in a.rib_by_rd() for p in g.paths)
    assert a.next_hops()[0].vtep == nodes[1].vtep


async def test_three_speakers_mac_move(speakers: list[Speaker]) -> None:
    nodes = make_nodes(3)
    s = [make_speaker(n, nodes) for n in nodes]
    speakers += s
    for spk in s:
        await spk.start()
    await all_established(s)

    moved: list[MacMoved] = []

    async with s[0].subscribe() as changes:
        await s[0].inject(LocalMacLearned(VNI, M1))
        for other in s[1:]:
            await eventually(partial(behind, other, M1, nodes[0].vtep), "M1 behind s1")
        # move to s2, then to s3: sequence numbers increase (RFC 7432 §15)
        for seq, (idx, spk) in enumerate([(1, s[1]), (2, s[2])], start=1):
            await spk.inject(LocalMacLearned(VNI, M1))
            assert row(spk, M1).kind == "local" and row(spk, M1).local_seq == seq
            for j, other in enumerate(s):
                if j == idx:
                    continue
                await eventually(
                    partial(behind, other, M1, nodes[idx].vtep),
                    f"M1 behind s{idx + 1} on s{j + 1}",
                )
                r = row(other, M1)
                assert r.kind == "remote" and r.remote_seq == seq, r
        # s1 gave up its local MAC when s2's higher sequence arrived
        with_timeout = asyncio.get_running_loop().time() + 2
        while asyncio.get_running_loop().time() < with_timeout:
            try:
                change = await changes.get(timeout=0.2)
            except TimeoutError:
                break
            if isinstance(change, MacMoved):
                moved.append(change)
    assert moved and moved[0].mac == M1 and moved[0].from_vtep is None and moved[0].sequence >= 1
    # the MemoryDataplane of s1 never held two FDB entries for M1
    assert len([e for e in entries(s[0]) if isinstance(e, FdbEntry) and e.mac == M1]) == 1


class ThreadSpeaker:
    """A speaker in its own thread and event loop, so that it can be frozen (the loop stops; sockets stay
    open, nothing is read or sent: a hung node) and later stopped for cleanup."""

    def __init__(self, node: Node, nodes: list[Node]) -> None:
        self.node, self.nodes = node, nodes
        self.loop = asyncio.new_event_loop()
        self.speaker: Speaker | None = None
        self.started = threading.Event()
        self.resume = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.started.wait(10):
            raise TimeoutError("thread speaker did not start")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.speaker = make_speaker(self.node, self.nodes)
            self.loop.run_until_complete(self.speaker.start())
        except BaseException as exc:
            self.error = exc
            self.started.set()
            return
        self.started.set()
        self.loop.run_forever()  # until freeze()
        self.resume.wait()
        self.loop.run_until_complete(self.speaker.stop())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def call(self, coro_factory: object) -> None:
        assert callable(coro_factory)
        asyncio.run_coroutine_threadsafe(coro_factory(), self.loop).result(10)

    def freeze(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    def close(self) -> None:
        if self.loop.is_running():
            self.freeze()
        self.resume.set()
        self.thread.join(15)


async def test_silent_speaker_detected_by_hold_timer(speakers: list[Speaker]) -> None:
    nodes = make_nodes(2)
    a = make_speaker(nodes[0], nodes)
    speakers.append(a)
    await a.start()
    victim = ThreadSpeaker(nodes[1], nodes)
    try:
        assert victim.speaker is not None
        spk = victim.speaker
        await all_established([a])
        victim.call(lambda: spk.inject(LocalMacLearned(VNI, M2)))
        await eventually(lambda: fdb_vtep(a, M2) == nodes[1].vtep, "M2 behind the victim")
        victim.freeze()  # no NOTIFICATION, no FIN: only the hold timer (3 s) can tell
        frozen_at = asyncio.get_running_loop().time()
        async with a.subscribe() as changes:
            down = None
            while down is None:
                change = await changes.get(timeout=8)
                if isinstance(change, PeerDown):
                    down = change
            elapsed = asyncio.get_running_loop().time() - frozen_at
            assert "hold" in down.reason.lower() and not down.graceful
            assert 1.5 < elapsed < 6.0, elapsed
        await eventually(lambda: fdb_vtep(a, M2) is None, "M2 removed after the hold timer", 3)
        assert FloodEntry(VNI, nodes[1].vtep) not in entries(a)
        assert row(a, M2) is None or row(a, M2).kind == "none"
    finally:
        victim.close()


async def test_graceful_restart_helper_and_restarting(speakers: list[Speaker]) -> None:
    """b restarts gracefully: a keeps b's entries (stale) until b's End-of-RIB, then sweeps M2 that b did not
    re-advertise; b's new instance keeps its old dataplane (a's M1/M3) until a's End-of-RIB, then drops M3
    that a aged meanwhile. No entry that survives ever flaps."""
    nodes = make_nodes(2)
    a = make_speaker(nodes[0], nodes)
    b = make_speaker(nodes[1], nodes)
    speakers += [a, b]
    await a.start()
    await b.start()
    await all_established([a, b])
    await b.inject(LocalMacLearned(VNI, mac(11)))
    await b.inject(LocalMacLearned(VNI, mac(12)))
    await a.inject(LocalMacLearned(VNI, M1))
    await a.inject(LocalMacLearned(VNI, M3))
    b_mac_kept, b_mac_gone = mac(11), mac(12)
    await eventually(lambda: fdb_vtep(a, b_mac_gone) == nodes[1].vtep, "b's MACs in a")
    await eventually(lambda: fdb_vtep(b, M3) == nodes[0].vtep, "a's MACs in b")
    old_dataplane = b.dataplane
    assert isinstance(old_dataplane, MemoryDataplane)

    a_changes = a.subscribe()
    a_seen: list[SpeakerChange] = []

    def a_down() -> list[PeerDown]:
        a_seen.extend(a_changes.drain())
        return [c for c in a_seen if isinstance(c, PeerDown)]

    await b.stop(graceful=True)  # no NOTIFICATION: a keeps b's routes as stale
    down = await eventually(a_down, "PeerDown on a")
    assert down[0].graceful
    await asyncio.sleep(1.0)  # well past a tick: nothing is removed while b restarts
    assert fdb_vtep(a, b_mac_kept) == nodes[1].vtep and fdb_vtep(a, b_mac_gone) == nodes[1].vtep
    assert FloodEntry(VNI, nodes[1].vtep) in entries(a)
    assert any(p.stale for g in a.rib_by_rd() for p in g.paths)
    await a.inject(LocalMacAged(VNI, M3))  # while b is away

    b2 = make_speaker(nodes[1], nodes, dataplane=old_dataplane, restarting=True)
    speakers.append(b2)
    await b2.inject(LocalMacLearned(VNI, b_mac_kept))  # re-learned before the sessions come up
    b2_changes = b2.subscribe()
    await b2.start()
    # restarting side: the old entries stay until a's End-of-RIB
    assert fdb_vtep(b2, M3) == nodes[0].vtep and fdb_vtep(b2, M1) == nodes[0].vtep
    await eventually(lambda: fdb_vtep(a, b_mac_gone) is None, "a swept b's stale M12", 10)
    await eventually(lambda: fdb_vtep(b2, M3) is None, "b2 dropped a's aged M3 after a's End-of-RIB", 10)
    assert fdb_vtep(a, b_mac_kept) == nodes[1].vtep
    assert fdb_vtep(b2, M1) == nodes[0].vtep

    def removed(changes: list[SpeakerChange], entry: FdbEntry) -> int | None:
        for i, c in enumerate(changes):
            if isinstance(c, DataplaneApplied) and (
                entry in c.delta.remove or (c.reconcile and entry not in c.delta.add)
            ):
                return i
        return None

    a_seen.extend(a_changes.drain())
    eor_a = next(i for i, c in enumerate(a_seen) if isinstance(c, EndOfRib))
    swept = next(i for i, c in enumerate(a_seen) if isinstance(c, StaleRoutesSwept))
    gone = removed(a_seen, FdbEntry(VNI, b_mac_gone, nodes[1].vtep))
    assert gone is not None and gone > eor_a and swept > eor_a
    assert removed(a_seen, FdbEntry(VNI, b_mac_kept, nodes[1].vtep)) is None  # no flap

    b2_seen = b2_changes.drain()
    eor_b2 = next(i for i, c in enumerate(b2_seen) if isinstance(c, EndOfRib))
    reconcile = next(i for i, c in enumerate(b2_seen) if isinstance(c, DataplaneApplied) and c.reconcile)
    assert reconcile > eor_b2
    assert removed(b2_seen[:reconcile], FdbEntry(VNI, M3, nodes[0].vtep)) is None
    assert removed(b2_seen, FdbEntry(VNI, M1, nodes[0].vtep)) is None  # no flap
    # b2 gave its table (with the re-learned MAC) to the engine when the session came up
    up_b2 = next(i for i, c in enumerate(b2_seen) if isinstance(c, PeerUp))
    assert any(
        isinstance(c, RoutesToAdvertise) and any(getattr(r, "mac", None) == b_mac_kept for r in c.routes)
        for c in b2_seen[up_b2:]
    )
    a_changes.close()
    b2_changes.close()


async def test_graceful_restart_timer_sweeps(speakers: list[Speaker]) -> None:
    """A peer that restarts gracefully and never comes back: its stale routes go at the restart timer."""
    nodes = make_nodes(2)
    gr = GracefulRestartConfig(restart_time=2, stalepath_time=10)
    a = make_speaker(nodes[0], nodes, gr=gr)
    b = make_speaker(nodes[1], nodes, gr=gr)
    speakers += [a, b]
    await a.start()
    await b.start()
    await all_established([a, b])
    await b.inject(LocalMacLearned(VNI, M2))
    await eventually(lambda: fdb_vtep(a, M2) == nodes[1].vtep, "M2 in a")
    await b.stop(graceful=True)
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(1.0)
    assert fdb_vtep(a, M2) == nodes[1].vtep  # kept as stale
    await eventually(lambda: fdb_vtep(a, M2) is None, "stale M2 swept at the restart timer", 5)
    assert 1.8 < asyncio.get_running_loop().time() - t0 < 4.0
    assert FloodEntry(VNI, nodes[1].vtep) not in entries(a)


async def test_bulk_local_learning_goes_out_packed(speakers: list[Speaker]) -> None:
    """500 MACs learned at once reach the peer in a few packed UPDATEs, not one UPDATE per MAC."""
    nodes = make_nodes(2)
    a, b = (make_speaker(n, nodes) for n in nodes)
    speakers += [a, b]
    await a.start()
    await b.start()
    await all_established([a, b])
    await eventually(lambda: FloodEntry(VNI, nodes[0].vtep) in entries(b), "b floods to a")
    before = next(s for s in b.peer_states() if str(s.peer) == nodes[0].address).messages_in
    macs = [mac(0x1000 + i) for i in range(500)]
    await a.inject_many(LocalMacLearned(VNI, m) for m in macs)
    await eventually(lambda: all(fdb_vtep(b, m) == nodes[0].vtep for m in macs), "500 MACs behind a in b")
    updates = next(s for s in b.peer_states() if str(s.peer) == nodes[0].address).messages_in - before
    assert updates <= 25, f"{updates} messages for 500 MACs"
