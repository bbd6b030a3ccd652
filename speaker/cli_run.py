"""``evpn-speaker run``: the daemon (:mod:`speaker.daemon`), run inside the router's network namespace.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT) or a valid ``--check``; 2 for a configuration file that
is not valid (its message, ``file:line: object: field: reason``, on stderr) or a bad option; 1 when the
daemon cannot start (plumbing or kernel errors, logged).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import sys
from pathlib import Path

from speaker.config_file import ConfigFileError
from speaker.control import DEFAULT_SOCKET
from speaker.daemon import ENGINES, Daemon, DaemonOptions
from speaker.logging_setup import LOG_FORMATS, LogSpecError, configure_logging, parse_log_spec

CONFIG_ERROR = 2
GC_THRESHOLD = 50_000


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` (``:PORT`` alone: every address)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not host.replace("-", "").replace(".", "").isalnum():
                raise argparse.ArgumentTypeError(f"{text!r}: bad host {host!r}") from None
    return host or "0.0.0.0", int(port)


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 or more")
    return int(text)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "run",
        help="run the speaker daemon (in the router's network namespace)",
        description="Run the EVPN speaker: plumbing, BGP sessions, kernel FDB/neighbours/routes. "
        "SIGTERM/SIGINT stop it (kernel entries kept for graceful restart unless --flush-on-exit); "
        "SIGHUP re-reads the configuration and applies only the differences.",
    )
    parser.add_argument("--config", required=True, type=Path, metavar="FILE", help="configuration (YAML)")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=DEFAULT_SOCKET,
        help=f"control socket (default {DEFAULT_SOCKET}; '' for none)",
    )
    parser.add_argument("--host-netns", metavar="NAME", help="namespace of the host side of L2VNIs")
    parser.add_argument("--node-index", type=int, metavar="N", help="node index (VTEP / router id CIDRs)")
    parser.add_argument("--engine", choices=ENGINES, help="session engine (default: the file's, native)")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text")
    parser.add_argument(
        "--log-level",
        default="info",
        metavar="LEVEL|component=LEVEL,...",
        help="e.g. info, or debug,dataplane=info,evpn.core=warning",
    )
    parser.add_argument("--metrics-address", type=parse_address, metavar="HOST:PORT")
    parser.add_argument(
        "--flush-on-exit",
        action="store_true",
        help="on stop, end sessions with Cease and remove every kernel entry the speaker installed",
    )
    parser.add_argument(
        "--gc-threshold",
        type=non_negative_int,
        default=GC_THRESHOLD,
        metavar="N",
        help=f"Python's generation-0 collector threshold (default {GC_THRESHOLD}; 0 keeps CPython's 700)",
    )
    return parser


def tune_gc(threshold: int) -> None:
    """The daemon's collector settings: every received route leaves a few tracked objects in the RIB, so
    CPython's default (a collection every 700 allocations, a full one as the heap grows by 25%) spends about
    a quarter of a MAC+IP route's core time walking the RIB. A larger generation-0 threshold makes the
    collections rare; ``gc.freeze`` takes the start-up objects (modules, configuration) out of them."""
    if threshold > 0:
        gc.set_threshold(threshold, 20, 100)
    gc.freeze()


def run(args: argparse.Namespace) -> int:
    try:
        spec = parse_log_spec(args.log_level)
    except LogSpecError as exc:
        print(f"evpn-speaker run: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    configure_logging(spec, args.log_format)
    options = DaemonOptions(
        config_path=args.config,
        node_index=args.node_index,
        host_netns=args.host_netns,
        engine=args.engine,
        socket_path=args.socket,
        metrics_address=args.metrics_address,
        flush_on_exit=args.flush_on_exit,
    )
    try:
        config = Daemon.load(options)
    except ConfigFileError as exc:
        print(f"evpn-speaker: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    if args.check:
        print(
            f"{args.config}: OK: AS {config.underlay.asn}, router id {config.underlay.router_id}, "
            f"{len(config.underlay.neighbors)} neighbor(s), {len(config.l2vnis)} L2VNI(s), "
            f"{len(config.l3vnis)} L3VNI(s)"
        )
        return 0
    tune_gc(args.gc_threshold)
    daemon = Daemon(options, config)
    return asyncio.run(daemon.run())
