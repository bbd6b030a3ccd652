"""Core throughput and memory: received type-2 routes, their withdrawal, and MAC moves.

Run: ``.venv/bin/python -m benchmarks.bench_core [--routes N] [--moves M] [--repeats K] [--json OUT]``

Workloads (what a leaf hears from a route reflector, DESIGN §8): one iBGP peer announces N type-2 routes of
L2VNI 110 from 50 remote VTEPs, 100 routes per UPDATE sharing one PathAttributes (as the codec decodes
them), then withdraws them, 100 per UPDATE:

- ``mac_only``: MAC routes; each gives one remote FDB entry.
- ``mac_ip_irb``: MAC+IPv4 routes with label2 = L3VNI 100 and a Router's MAC (symmetric IRB, RFC 9135);
  each gives a remote FDB entry, an ARP-suppression neighbour and a host route in the VRF (plus the RMAC
  FDB entry and VTEP neighbour, shared per VTEP).

Moves: M remote MACs are learned locally (seq = remote + 1, our route advertised, remote FDB removed), then
move back to another VTEP with a higher sequence (our route withdrawn, FDB pointed at the new VTEP).

Timed: ``EvpnCore.handle`` only, CPU time (``time.process_time``, so other processes on a shared machine do
not count), best of K runs, garbage collector enabled as in a running speaker. Routes and events are built
beforehand (a decoder builds them anyway). Memory: tracemalloc peak during the announce phase, in a separate
run. A reference operation is timed too, to compare machines.

The collector's share: the core keeps one GC-tracked object per received route (its Path), so with
CPython's default thresholds the announce phase triggers about one full collection, which walks every tracked
object, the routes built beforehand included. By default the benchmark runs twice: with CPython's thresholds
and with the daemon's (``evpn-speaker run --gc-threshold``, generation 0 at 50,000, start-up objects frozen
by the daemon; only the threshold is set here).
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import sys
import time
import tracemalloc

from evpn.codec.attributes import PathAttributes
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION, ExtCommunity, MacMobility, RouterMac
from evpn.codec.families import Family
from evpn.config import L2Vni, L3Vni, Neighbor, SpeakerConfig, Underlay
from evpn.core import EvpnCore
from evpn.events import LocalMacLearned, PeerUp, RoutesReceived
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget
from speaker.cli_run import GC_THRESHOLD

PEER = ipaddress.IPv4Address("10.0.0.254")
VTEPS = 50
PER_UPDATE = 100


def _config() -> SpeakerConfig:
    return SpeakerConfig(
        underlay=Underlay(
            asn=64514,
            router_id=ipaddress.IPv4Address("10.0.0.1"),
            vtep_ipv4=ipaddress.IPv4Address("100.65.0.1"),
            neighbors=(Neighbor(PEER, asn=64514),),
        ),
        l2vnis=(L2Vni("l2", 110, vrf="red", gateway_ips=(ipaddress.IPv4Interface("192.170.0.1/16"),)),),
        l3vnis=(L3Vni("red", "red", 100),),
    )


def _attrs(vtep_index: int, seq: int = 0, irb: bool = True) -> PathAttributes:
    comms: list[ExtCommunity] = [RouteTarget.from_text("64518:110")]
    if irb:
        comms += [RouteTarget.from_text("64518:100"), VXLAN_ENCAPSULATION]
        comms.append(RouterMac(MacAddress.from_int(0x020000000000 + vtep_index)))
    else:
        comms.append(VXLAN_ENCAPSULATION)
    if seq:
        comms.append(MacMobility(seq))
    return PathAttributes(ext_communities=tuple(comms), local_pref=100)


def _vtep(i: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(0x64410000 + 10 + i)


def _route(rd: RouteDistinguisher, i: int, irb: bool) -> MacIpRoute:
    mac = MacAddress.from_int(0x0A0000000000 + i)
    if not irb:
        return MacIpRoute(rd, mac, None, 110)
    return MacIpRoute(rd, mac, ipaddress.IPv4Address(0xC0AA0000 + i + 2), 110, 100)


def _updates(n: int, irb: bool = True) -> tuple[list[RoutesReceived], list[RoutesReceived]]:
    announce: list[RoutesReceived] = []
    withdraw: list[RoutesReceived] = []
    attrs = [_attrs(v, irb=irb) for v in range(VTEPS)]
    rds = [RouteDistinguisher.ipv4(_vtep(v), 110) for v in range(VTEPS)]
    for start in range(0, n, PER_UPDATE):
        v = (start // PER_UPDATE) % VTEPS
        routes = tuple(_route(rds[v], i, irb) for i in range(start, min(start + PER_UPDATE, n)))
        announce.append(RoutesReceived(PEER, routes, attrs[v], _vtep(v)))
        withdraw.append(RoutesReceived(PEER, withdrawn=routes))
    return announce, withdraw


def _core() -> EvpnCore:
    core = EvpnCore(_config())
    core.start(0.0)
    core.handle(PeerUp(PEER, 64514, PEER, True, frozenset({Family.L2VPN_EVPN})), 0.0)
    return core


class _Ref:
    __slots__ = ("a", "b", "c")

    def __init__(self) -> None:
        self.a = 1
        self.b: list[int] = []
        self.c = None


def reference_ns() -> float:
    """CPU time of a reference operation (build one small slotted object holding a list), to compare
    machines: about 120 ns on a current desktop CPU."""
    best = float("inf")
    for _ in range(5):
        t = time.process_time()
        objs = [_Ref() for _ in range(100_000)]
        best = min(best, (time.process_time() - t) / 100_000 * 1e9)
        del objs
    return best


def _received(n: int, irb: bool, repeats: int) -> dict[str, float]:
    """Best of ``repeats`` runs (CPU time) of announcing then withdrawing ``n`` routes; then memory."""
    announce, withdraw = _updates(n, irb)
    best_in = best_out = float("inf")
    for _ in range(repeats):
        gc.collect()
        core = _core()
        t0 = time.process_time()
        for ev in announce:
            core.handle(ev, 1.0)
        t1 = time.process_time()
        for ev in withdraw:
            core.handle(ev, 2.0)
        t2 = time.process_time()
        assert core.desired_dataplane() == frozenset(), "withdrawal left entries behind"
        best_in, best_out = min(best_in, t1 - t0), min(best_out, t2 - t1)
    gc.collect()
    core = _core()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for ev in announce:
        core.handle(ev, 1.0)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "announce_us_per_route": best_in / n * 1e6,
        "withdraw_us_per_route": best_out / n * 1e6,
        "peak_bytes_per_route": (peak - base) / n,
        "retained_bytes_per_route": (current - base) / n,
    }


def _moves(moves: int) -> dict[str, float]:
    """Remote (seq 0) -> local (seq 1, advertised) -> remote elsewhere (seq 2, our route withdrawn)."""
    core = _core()
    m_announce, _ = _updates(moves)
    for ev in m_announce:
        core.handle(ev, 3.0)
    learn = [LocalMacLearned(110, MacAddress.from_int(0x0A0000000000 + i)) for i in range(moves)]
    attrs2 = _attrs(1, seq=2)
    rd = RouteDistinguisher.ipv4(_vtep(1), 110)
    back = [
        RoutesReceived(
            PEER, tuple(_route(rd, i, True) for i in range(s, min(s + PER_UPDATE, moves))), attrs2, _vtep(1)
        )
        for s in range(0, moves, PER_UPDATE)
    ]
    gc.collect()
    t0 = time.process_time()
    for i, lev in enumerate(learn):
        core.handle(lev, 4.0 + i * 1e-6)
    t1 = time.process_time()
    for ev in back:
        core.handle(ev, 5.0)
    t2 = time.process_time()
    return {"move_to_local_us": (t1 - t0) / moves * 1e6, "move_to_remote_us": (t2 - t1) / moves * 1e6}


def run(n: int, moves: int, repeats: int = 3, gc_threshold: int | None = None) -> dict[str, object]:
    """All workloads; ``gc_threshold`` sets the collector's generation-0 threshold for the run (a process
    setting a daemon may choose; the core itself never touches it)."""
    saved = gc.get_threshold()
    if gc_threshold is not None:
        gc.set_threshold(gc_threshold, 20, 100)
    try:
        return {
            "routes": n,
            "moves": moves,
            "gc_threshold": list(gc.get_threshold()),
            "reference_op_ns": reference_ns(),
            "mac_only": _received(n, irb=False, repeats=repeats),
            "mac_ip_irb": _received(n, irb=True, repeats=repeats),
            "moves_irb": _moves(moves),
        }
    finally:
        gc.set_threshold(*saved)


def _print(result: dict[str, object], routes: int, moves: int, repeats: int) -> None:
    print(
        f"python {sys.version.split()[0]}, reference op {result['reference_op_ns']:.0f} ns (desktop ~120 ns), "
        f"gc thresholds {result['gc_threshold']}"
    )
    print(f"{routes} received type-2 routes, 100 per UPDATE, CPU time, best of {repeats}:")
    for name in ("mac_only", "mac_ip_irb"):
        r = result[name]
        assert isinstance(r, dict)
        print(
            f"  {name:11} announce {r['announce_us_per_route']:6.2f} us/route  withdraw "
            f"{r['withdraw_us_per_route']:6.2f} us/route  peak {r['peak_bytes_per_route']:6.0f} B/route"
        )
    m = result["moves_irb"]
    assert isinstance(m, dict)
    print(
        f"{moves} MAC moves: remote->local {m['move_to_local_us']:.2f} us/move, "
        f"local->remote {m['move_to_remote_us']:.2f} us/move"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--routes", type=int, default=50_000)
    parser.add_argument("--moves", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=None,
        help="generation-0 GC threshold, e.g. 20000 (default: both CPython's and the daemon's, "
        f"`evpn-speaker run --gc-threshold`, {GC_THRESHOLD})",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    thresholds = [args.gc_threshold] if args.gc_threshold is not None else [None, GC_THRESHOLD]
    results = []
    for threshold in thresholds:
        result = run(args.routes, args.moves, args.repeats, threshold)
        _print(result, args.routes, args.moves, args.repeats)
        results.append(result)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results[0] if len(results) == 1 else results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
