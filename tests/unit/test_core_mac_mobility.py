"""MAC mobility and duplicate detection (RFC 7432 §15, FRR zebra behaviour)."""

from __future__ import annotations

from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.extcommunity import MacMobility
from evpn.config import DuplicateDetection
from evpn.dataplane_state import FdbEntry
from evpn.events import LocalMacAged, LocalMacLearned
from evpn.notices import MacDuplicate, MacDuplicateCleared, MacFrozen, MacMoved, StickyMacConflict
from tests.unit.core_helpers import (
    PEER,
    VTEP_A,
    VTEP_B,
    VTEP_C,
    advertised,
    announce,
    config,
    mac,
    started,
    t2,
    t2_attrs,
    withdraw,
    withdrawn,
)

M = mac(1)


def _local_seq(out: object) -> list[tuple[int, bool]]:
    res = []
    for route, attrs, nh in advertised(out):  # type: ignore[arg-type]
        if isinstance(route, MacIpRoute) and route.mac == M and route.ip is None:
            mm = attrs.mac_mobility
            assert nh == VTEP_A
            res.append((mm.sequence, mm.sticky) if mm else (0, False))
    return res


def test_rfc7432_s15_1_local_learn_of_remote_mac_uses_remote_seq_plus_one() -> None:
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=4), t2(VTEP_B, M)), 1))
    assert FdbEntry(110, M, VTEP_B) in ap.entries
    out = ap.apply(core.handle(LocalMacLearned(110, M), 2))
    assert _local_seq(out) == [(5, False)]
    assert FdbEntry(110, M, VTEP_B) in out.dataplane.remove
    assert MacMoved(110, M, VTEP_B, None, 5) in out.notices


def test_rfc7432_s15_1_higher_remote_seq_withdraws_our_local_route() -> None:
    core, ap = started(config())
    ap.apply(core.handle(LocalMacLearned(110, M), 1))
    out = ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=1), t2(VTEP_B, M)), 2))
    assert [r for r in withdrawn(out) if isinstance(r, MacIpRoute) and r.mac == M]
    assert out.dataplane.add == (FdbEntry(110, M, VTEP_B),)
    assert MacMoved(110, M, None, VTEP_B, 1) in out.notices
    assert core.mac_table(110).rows[0].kind == "remote"


def test_rfc7432_s15_1_lower_remote_seq_is_ignored() -> None:
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=3), t2(VTEP_B, M)), 0))
    ap.apply(core.handle(LocalMacLearned(110, M), 1))  # local seq 4
    out = ap.apply(core.handle(announce(PEER, VTEP_C, t2_attrs(seq=2), t2(VTEP_C, M)), 2))
    assert not out.dataplane and not withdrawn(out)
    assert core.mac_table(110).rows[0].kind == "local"


def test_rfc7432_s15_1_equal_seq_lowest_vtep_wins_between_remotes() -> None:
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_C, t2_attrs(seq=2), t2(VTEP_C, M)), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=2), t2(VTEP_B, M)), 0))
    assert FdbEntry(110, M, VTEP_B) in ap.entries and FdbEntry(110, M, VTEP_C) not in ap.entries


def test_rfc7432_s15_1_equal_seq_local_vs_remote_lowest_vtep_wins() -> None:
    # our VTEP_A is lower than VTEP_B: we keep the MAC at equal sequence numbers
    core, ap = started(config())
    ap.apply(core.handle(LocalMacLearned(110, M), 0))
    out = ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=0), t2(VTEP_B, M)), 1))
    assert not out.dataplane
    # our VTEP_C is higher than VTEP_B: the remote wins
    core, ap = started(config(vtep=VTEP_C))
    ap.apply(core.handle(LocalMacLearned(110, M), 0))
    out = ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=0), t2(VTEP_B, M)), 1))
    assert out.dataplane.add == (FdbEntry(110, M, VTEP_B),)


def test_rfc7432_s15_2_remote_sticky_wins_and_local_learn_is_refused() -> None:
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(sticky=True), t2(VTEP_B, M)), 0))
    out = ap.apply(core.handle(LocalMacLearned(110, M), 1))
    assert StickyMacConflict(110, M, VTEP_B, None) in out.notices
    assert not advertised(out) and not out.dataplane
    assert FdbEntry(110, M, VTEP_B) in ap.entries


def test_rfc7432_s15_2_local_sticky_never_moves() -> None:
    core, ap = started(config())
    out = ap.apply(core.handle(LocalMacLearned(110, M, sticky=True), 0))
    assert _local_seq(out) == [(0, True)]
    out = ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=9), t2(VTEP_B, M)), 1))
    assert StickyMacConflict(110, M, None, VTEP_B) in out.notices
    assert not out.dataplane and not withdrawn(out)


def test_rfc7432_s15_1_sticky_beats_higher_sequence_between_remotes() -> None:
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_C, t2_attrs(sticky=True), t2(VTEP_C, M)), 0))
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=7), t2(VTEP_B, M)), 0))
    assert FdbEntry(110, M, VTEP_C) in ap.entries


def test_rfc7432_s15_remote_withdraw_falls_back_without_a_move() -> None:
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=1), t2(VTEP_B, M)), 0))
    ap.apply(core.handle(announce(PEER, VTEP_C, t2_attrs(seq=2), t2(VTEP_C, M)), 1))
    out = ap.apply(core.handle(withdraw(PEER, t2(VTEP_C, M)), 2))
    assert FdbEntry(110, M, VTEP_B) in out.dataplane.add
    assert not [n for n in out.notices if isinstance(n, MacMoved)]
    out = ap.apply(core.handle(withdraw(PEER, t2(VTEP_B, M)), 3))
    assert not ap.entries - {e for e in ap.entries if not isinstance(e, FdbEntry)}


def test_local_age_withdraws_and_installs_remaining_remote() -> None:
    """RFC 7432 §15: an aged local MAC is withdrawn; a remaining remote route takes over."""
    core, ap = started(config())
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=0), t2(VTEP_B, M)), 0))
    ap.apply(core.handle(LocalMacLearned(110, M), 1))
    assert FdbEntry(110, M, VTEP_B) not in ap.entries
    out = ap.apply(core.handle(LocalMacAged(110, M), 2))
    assert [r for r in withdrawn(out) if isinstance(r, MacIpRoute) and r.mac == M]
    assert FdbEntry(110, M, VTEP_B) in out.dataplane.add


def _bounce(core, ap, moves: int, t0: float = 0.0, seq0: int = 0):  # type: ignore[no-untyped-def]
    """Local learn / higher remote seq, alternating: each step is a move."""
    outs = []
    seq = seq0
    for i in range(moves):
        if i % 2 == 0:
            seq += 1
            outs.append(
                ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=seq), t2(VTEP_B, M)), t0 + i))
            )
        else:
            outs.append(ap.apply(core.handle(LocalMacLearned(110, M), t0 + i)))
            seq += 1
    return outs, seq


def test_duplicate_detection_five_moves_in_180s_stops_advertising() -> None:
    """FRR dup-addr-detection defaults: max-moves 5, time 180 s."""
    core, ap = started(config())
    ap.apply(core.handle(LocalMacLearned(110, M), 0))
    outs, _seq = _bounce(core, ap, 5)
    notices = [n for o in outs for n in o.notices]
    assert len([n for n in notices if isinstance(n, MacMoved)]) == 5
    assert MacDuplicate(110, M, 5) in notices
    assert core.mac_table(110).rows[0].duplicate
    # the next local learn (a 6th move) is not advertised while duplicate
    out = ap.apply(core.handle(LocalMacLearned(110, M), 10))
    assert core.mac_table(110).rows[0].kind == "local"
    assert not _local_seq(out)
    assert FdbEntry(110, M, VTEP_B) in out.dataplane.remove
    # the flag clears a window after detection (t=4); advertising resumes with seq 6
    assert not core.tick(183).notices
    out = ap.apply(core.tick(185))
    assert MacDuplicateCleared(110, M) in out.notices
    assert _local_seq(out) == [(6, False)]


def test_moves_spread_beyond_the_window_are_not_duplicate() -> None:
    """RFC 7432 §15.1: only M moves within N seconds make a duplicate."""
    core, ap = started(config())
    ap.apply(core.handle(LocalMacLearned(110, M), 0))
    seq = 0
    notices = []
    for i in range(8):
        t = i * 100.0
        if i % 2 == 0:
            seq += 1
            out = core.handle(announce(PEER, VTEP_B, t2_attrs(seq=seq), t2(VTEP_B, M)), t)
        else:
            out = core.handle(LocalMacLearned(110, M), t)
            seq += 1
        notices += out.notices
    assert not [n for n in notices if isinstance(n, MacDuplicate)]


def test_duplicate_freeze_pins_the_mac_until_freeze_time() -> None:
    """RFC 7432 §15.1 + FRR freeze: a duplicate MAC stays put until the freeze expires."""
    dad = DuplicateDetection(max_moves=3, window=180, freeze=True, freeze_time=60)
    core, ap = started(config(dad=dad))
    ap.apply(core.handle(LocalMacLearned(110, M), 0))
    outs, seq = _bounce(core, ap, 3)
    notices = [n for o in outs for n in o.notices]
    assert MacFrozen(110, M, 2 + 60) in notices
    pinned = {e for e in ap.entries if isinstance(e, FdbEntry) and e.mac == M}
    # a newer remote route is ignored while frozen
    out = ap.apply(core.handle(announce(PEER, VTEP_C, t2_attrs(seq=seq + 5), t2(VTEP_C, M)), 10))
    assert not out.dataplane
    assert {e for e in ap.entries if isinstance(e, FdbEntry) and e.mac == M} == pinned
    assert core.mac_table(110).rows[0].frozen
    # freeze expires: the newest location is installed
    out = ap.apply(core.tick(62))
    assert MacDuplicateCleared(110, M) in out.notices
    assert FdbEntry(110, M, VTEP_C) in ap.entries


def test_permanent_freeze_needs_a_clear() -> None:
    """RFC 7432 §15.1 + FRR permanent freeze: only a clear releases it."""
    dad = DuplicateDetection(max_moves=2, window=180, freeze=True)
    core, ap = started(config(dad=dad))
    ap.apply(core.handle(LocalMacLearned(110, M), 0))
    outs, _ = _bounce(core, ap, 2)
    assert MacFrozen(110, M, None) in [n for o in outs for n in o.notices]
    assert not core.tick(10_000).notices
    out = ap.apply(core.clear_duplicate(110, M, 10_001))
    assert MacDuplicateCleared(110, M) in out.notices


def test_mac_mobility_community_only_when_seq_or_sticky() -> None:
    """RFC 7432 §7.7: seq 0 and not sticky: no MAC Mobility community."""
    core, ap = started(config())
    out = ap.apply(core.handle(LocalMacLearned(110, M), 0))
    [(_, attrs, _)] = [a for a in advertised(out) if isinstance(a[0], MacIpRoute)]
    assert attrs.mac_mobility is None
    out = ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(seq=1), t2(VTEP_B, M)), 1))
    out = ap.apply(core.handle(LocalMacLearned(110, M), 2))
    [(_, attrs, _)] = [a for a in advertised(out) if isinstance(a[0], MacIpRoute)]
    assert attrs.mac_mobility == MacMobility(2)


def test_mobility_is_o1_per_route_no_scan() -> None:
    """DESIGN §8: GoBGP's per-path scan made it O(N^2); here a move touches only its own MAC."""
    core, ap = started(config())
    routes = [t2(VTEP_B, mac(i)) for i in range(2000)]
    ap.apply(core.handle(announce(PEER, VTEP_B, t2_attrs(), *routes), 0))
    out = ap.apply(core.handle(LocalMacLearned(110, mac(7)), 1))
    assert out.dataplane.remove == (FdbEntry(110, mac(7), VTEP_B),) and not out.dataplane.add
