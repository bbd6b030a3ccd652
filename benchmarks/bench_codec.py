"""Codec throughput: type-2 routes packed in UPDATEs, encoded and decoded, beside ExaBGP 5.0.15's decoder.

Run: ``.venv/bin/python -m benchmarks.bench_codec [--routes N] [--repeats K] [--json OUT]``

The routes are what FRR sends for symmetric IRB (RFC 9135): MAC+IPv4 type-2 routes with two labels (L2VNI,
L3VNI), one RD per L2VNI, and ORIGIN, AS_PATH, LOCAL_PREF and the extended communities RT, encapsulation
VXLAN (RFC 9012) and Router's MAC (RFC 9135 §8.1). They are packed with UpdatePacker into 4096-byte UPDATEs
and, separately, into 65535-byte ones (extended message, RFC 8654). Timed, per message size:

- ``encode``: routes -> UPDATE bytes (UpdatePacker.announce, including every NLRI encoding);
- ``decode``: UPDATE bytes -> Update objects (MessageDecoder.decode: header, attributes, every NLRI fully
  decoded into MacIpRoute values), with a fresh MessageDecoder per sample so its caches start cold;
- ``exabgp``: ExaBGP 5.0.15's own parser on the very same UPDATE bodies
  (``exabgp.bgp.message.Update.unpack_message`` with a ``Negotiated`` built from real OPENs announcing
  L2VPN/EVPN, 4-octet AS and extended message), fresh ``Negotiated`` per sample; every NLRI it returns is
  counted and the count asserted.

Both decoders keep every UPDATE they decode for the whole sample, as a RIB keeps what it receives, so the
heap grows as it would in a speaker, with the garbage collector enabled at its default thresholds (its full
collections over that growing heap are a large part of both decoders' cost). Each sample runs the three
one after another (interleaved, so drift hits all of them alike). Results are routes per second: median and
min-max of wall time, and the median of process CPU time (robust against other load on a shared machine).
Before timing, our decode is checked to give back exactly the routes encoded, and ExaBGP's NLRIs are checked
against them (RD, MAC, IP, first label: ExaBGP 5.0.15 keeps only the first label of a type-2 route). Checks
raise even under ``python -O``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import ipaddress
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from evpn.codec.attributes import AsPath, PathAttributes
from evpn.codec.capabilities import ExtendedMessage, FourOctetAs, Multiprotocol
from evpn.codec.evpn_nlri import MacIpRoute
from evpn.codec.extcommunity import VXLAN_ENCAPSULATION, RouterMac
from evpn.codec.messages import MAX_EXTENDED_MESSAGE, MAX_MESSAGE, MessageDecoder, Open, Update
from evpn.codec.packer import UpdatePacker
from evpn.mac import MacAddress
from evpn.route_distinguisher import RouteDistinguisher
from evpn.route_target import RouteTarget

LOCAL_AS = 65000
VTEP = ipaddress.IPv4Address("10.0.0.1")
ROUTER_MAC = MacAddress.from_text("02:42:ac:11:00:01")
L3VNI = 4001


def require(condition: object, message: object = "check failed") -> None:
    if not condition:
        raise RuntimeError(message)


# -- workload ----------------------------------------------------------------------------------------------
def build_workload(n_routes: int, n_vnis: int) -> list[tuple[PathAttributes, list[MacIpRoute]]]:
    """``n_routes`` MAC+IP type-2 routes spread over ``n_vnis`` L2VNIs, each with its own RD and RT."""
    groups: list[tuple[PathAttributes, list[MacIpRoute]]] = []
    per_vni = -(-n_routes // n_vnis)
    made = 0
    for v in range(n_vnis):
        vni = 100 + v
        rd = RouteDistinguisher.ipv4(VTEP, 2 + v)
        attrs = PathAttributes(
            as_path=AsPath(),
            local_pref=100,
            ext_communities=(
                RouteTarget.from_text(f"{LOCAL_AS}:{vni}"),
                RouteTarget.from_text(f"{LOCAL_AS}:{L3VNI}"),
                VXLAN_ENCAPSULATION,
                RouterMac(ROUTER_MAC),
            ),
        )
        count = min(per_vni, n_routes - made)
        base_ip = int(ipaddress.IPv4Address("10.0.0.0")) + (v << 16)
        routes = [
            MacIpRoute(
                rd,
                MacAddress.from_int(0x0A0000000000 + (v << 24) + i),
                ipaddress.IPv4Address(base_ip + 2 + i),
                vni,
                L3VNI,
            )
            for i in range(count)
        ]
        made += count
        groups.append((attrs, routes))
    return groups


def our_encode(
    packer: UpdatePacker, groups: Sequence[tuple[PathAttributes, list[MacIpRoute]]]
) -> list[bytes]:
    out: list[bytes] = []
    for attrs, routes in groups:
        out.extend(packer.announce(attrs, routes, VTEP))
    return out


def our_decode(messages: Sequence[bytes]) -> list[Update]:
    """Every UPDATE decoded and kept, as a RIB keeps what it receives (the heap grows as it would)."""
    decode = MessageDecoder().decode
    out: list[Update] = []
    for m in messages:
        update = decode(m)
        if not isinstance(update, Update):
            raise RuntimeError(f"not an UPDATE: {update!r}")
        out.append(update)
    return out


def count_ours(updates: Sequence[Update]) -> int:
    return sum(len(u.mp_reach.routes) for u in updates if u.mp_reach is not None)


# -- ExaBGP ------------------------------------------------------------------------------------------------
class ExaBgp:
    """Drives ExaBGP's UPDATE parser in-process on bodies (header stripped, as its reader passes them)."""

    def __init__(self) -> None:
        from exabgp.bgp.message import Open as XOpen
        from exabgp.bgp.message import Update as XUpdate
        from exabgp.bgp.message.direction import Direction
        from exabgp.bgp.message.open.capability import Negotiated
        from exabgp.environment import getenv
        from exabgp.logger import log

        # logging set up from the default environment, as ``exabgp`` (application/server.py) does it:
        # parser/routes debug logging is off, so each log.debug call is a cheap early return
        log.init(getenv())
        self.version = importlib.metadata.version("exabgp")
        caps = (Multiprotocol(25, 70), FourOctetAs(LOCAL_AS), ExtendedMessage())
        ours = Open(LOCAL_AS, 90, VTEP, caps).encode()
        theirs = Open(LOCAL_AS, 90, ipaddress.IPv4Address("10.0.0.2"), caps).encode()
        self._opens = (XOpen.unpack_message(ours[19:]), XOpen.unpack_message(theirs[19:]))
        self._negotiated_cls = Negotiated
        self._unpack = XUpdate.unpack_message
        self._direction = Direction.IN

    def negotiated(self) -> Any:
        neg = self._negotiated_cls({"capability": {"aigp": False}})
        neg.sent(self._opens[0])
        neg.received(self._opens[1])
        require(neg.asn4 and neg.msg_size == MAX_EXTENDED_MESSAGE and len(neg.families) == 1)
        return neg

    def decode(self, bodies: Sequence[bytes]) -> list[Any]:
        """Every UPDATE parsed and kept, like ``our_decode``."""
        neg = self.negotiated()
        unpack = self._unpack
        direction = self._direction
        return [unpack(body, direction, neg) for body in bodies]

    @staticmethod
    def count(updates: Sequence[Any]) -> int:
        return sum(len(u.nlris) for u in updates)

    def check(self, bodies: Sequence[bytes], routes: Sequence[MacIpRoute]) -> None:
        """ExaBGP read the same routes: MAC, IP, RD and first label of every NLRI, and the attributes."""
        neg = self.negotiated()
        parsed = [n for b in bodies for n in self._unpack(b, self._direction, neg).nlris]
        require(len(parsed) == len(routes), (len(parsed), len(routes)))
        for nlri, route in zip(parsed, routes, strict=True):
            require(nlri.CODE == 2)
            require(nlri.rd.pack() == route.rd.packed)
            require(nlri.mac.pack() == route.mac.packed)
            require(str(nlri.ip) == str(route.ip))
            # ExaBGP reads the first label only, as an MPLS label (top 20 bits of the 24-bit VNI field)
            require(nlri.label.pack() == route.label1.to_bytes(3, "big"))
        update = self._unpack(bodies[0], self._direction, neg)
        text = str(update.attributes)
        require("local-preference 100" in text and "encap:VXLAN" in text and "target:" in text, text)


# -- measurement -------------------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """One sample: wall and process CPU seconds; the previous results are freed and collected first.

    The CPU time is reported beside the wall time because this machine is shared: a sample descheduled by
    another process shows it as wall time only.
    """
    gc.collect()
    c = time.process_time()
    t = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t
    return wall, time.process_time() - c, result


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "exabgp": importlib.metadata.version("exabgp"),
    }


def summary(rates: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def run_size(
    max_size: int, groups: Sequence[tuple[PathAttributes, list[MacIpRoute]]], repeats: int, exa: ExaBgp
) -> dict[str, object]:
    routes = [r for _, rs in groups for r in rs]
    n = len(routes)
    packer = UpdatePacker(max_size)
    messages = our_encode(packer, groups)
    bodies = [m[19:] for m in messages]

    # correctness, outside the timings: our round trip is exact, ExaBGP sees every NLRI
    decoder = MessageDecoder()
    back = [r for m in messages for r in decoder.decode(m).announced_routes]  # type: ignore[union-attr]
    require(back == routes, "our decode does not give back the encoded routes")
    del back
    exa.check(bodies, routes)

    samples: dict[str, list[float]] = {"encode": [], "decode": [], "exabgp": []}
    cpu_samples: dict[str, list[float]] = {"encode": [], "decode": [], "exabgp": []}
    load_before = os.getloadavg()
    for _ in range(repeats):
        dt, cpu, encoded = timed(lambda: our_encode(packer, groups))
        require(encoded == messages)
        samples["encode"].append(n / dt)
        cpu_samples["encode"].append(n / cpu)
        del encoded
        dt, cpu, ours = timed(lambda: our_decode(messages))
        count = count_ours(ours)  # type: ignore[arg-type]
        require(count == n, (count, n))
        samples["decode"].append(n / dt)
        cpu_samples["decode"].append(n / cpu)
        del ours
        dt, cpu, theirs = timed(lambda: exa.decode(bodies))
        count = exa.count(theirs)  # type: ignore[arg-type]
        require(count == n, f"ExaBGP returned {count} NLRIs for {n} routes")
        samples["exabgp"].append(n / dt)
        cpu_samples["exabgp"].append(n / cpu)
        del theirs

    result = {k: summary(v) for k, v in samples.items()}
    cpu_result = {k: summary(v) for k, v in cpu_samples.items()}
    ratios = [o / x for o, x in zip(samples["decode"], samples["exabgp"], strict=True)]
    return {
        "max_message": max_size,
        "routes": n,
        "updates": len(messages),
        "routes_per_update": n / len(messages),
        "bytes": sum(len(m) for m in messages),
        "samples_routes_per_s": samples,
        "summary_routes_per_s": result,
        "samples_routes_per_cpu_s": cpu_samples,
        "summary_routes_per_cpu_s": cpu_result,
        "loadavg_before_after": [load_before, os.getloadavg()],
        "ratio_decode_ours_over_exabgp": {
            "of_medians": result["decode"]["median"] / result["exabgp"]["median"],
            "of_cpu_medians": cpu_result["decode"]["median"] / cpu_result["exabgp"]["median"],
            "per_sample": ratios,
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        },
    }


def fmt(s: dict[str, float], cpu: dict[str, float]) -> str:
    return f"{s['median']:>11,.0f}  ({s['min']:,.0f} - {s['max']:,.0f})    {cpu['median']:>11,.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--routes", type=int, default=100_000, help="type-2 routes (default 100000)")
    parser.add_argument("--repeats", type=int, default=5, help="samples per measurement (default 5)")
    parser.add_argument("--vnis", type=int, default=4, help="L2VNIs the routes are spread over (default 4)")
    parser.add_argument(
        "--sizes",
        default=f"{MAX_MESSAGE},{MAX_EXTENDED_MESSAGE}",
        help="comma-separated maximum UPDATE sizes (default 4096,65535)",
    )
    parser.add_argument("--json", metavar="OUT", help="write every sample and the summary as JSON")
    args = parser.parse_args(argv)
    if args.routes < 1 or args.repeats < 1 or args.vnis < 1:
        parser.error("--routes, --repeats and --vnis must be positive")

    info = machine()
    print(
        f"machine: {info['nproc']} CPU(s), {info['cpu']}, {info['implementation']} {info['python']}, "
        f"{info['platform']}"
    )
    print(
        f"workload: {args.routes:,} MAC+IPv4 type-2 routes, 2 labels, {args.vnis} VNI(s), "
        f"RT x2 + VXLAN encap + Router's MAC; {args.repeats} samples; ExaBGP {info['exabgp']}"
    )
    groups = build_workload(args.routes, args.vnis)
    exa = ExaBgp()
    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        run = run_size(size, groups, args.repeats, exa)
        runs.append(run)
        summ: Any = run["summary_routes_per_s"]
        cpu: Any = run["summary_routes_per_cpu_s"]
        ratio: Any = run["ratio_decode_ours_over_exabgp"]
        load: Any = run["loadavg_before_after"]
        print(
            f"\n{size}-byte UPDATEs: {run['updates']:,} UPDATEs, {run['routes_per_update']:.1f} routes each "
            f"(load average {load[0][0]:.2f} -> {load[1][0]:.2f})"
        )
        print("                  routes/s: wall median  (min - max)          CPU-time median")
        print(f"  ours encode     {fmt(summ['encode'], cpu['encode'])}")
        print(f"  ours decode     {fmt(summ['decode'], cpu['decode'])}")
        print(f"  ExaBGP decode   {fmt(summ['exabgp'], cpu['exabgp'])}")
        print(
            f"  decode ratio ours/ExaBGP: {ratio['of_medians']:.2f}x of wall medians "
            f"(per sample {ratio['min']:.2f}x - {ratio['max']:.2f}x), {ratio['of_cpu_medians']:.2f}x of CPU medians"
        )
    if args.json:
        report = {
            "benchmark": "bench_codec",
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": info,
            "args": vars(args),
            "runs": runs,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
