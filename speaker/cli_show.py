"""``evpn-speaker show ...``, ``evpn-speaker clear evpn dup-addr vni VNI`` and ``evpn-speaker reload``: talk
to a running speaker over its control socket (``speaker.control``).

Exit code: 0 done, 1 the speaker answered with an error (or no answer), 2 cannot connect to the socket (or a
usage error).
"""

from __future__ import annotations

import argparse
import sys

from speaker.control import COMMANDS, DEFAULT_SOCKET, ControlConnectError, request

OK, DAEMON_ERROR, CANNOT_CONNECT = 0, 1, 2

_EPILOG = "commands:\n" + "\n".join(f"  {c}" for c in COMMANDS)


def _socket_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=DEFAULT_SOCKET,
        help=f"the speaker's control socket (default {DEFAULT_SOCKET})",
    )


def add_show_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``show WORDS... [--json] [--socket PATH]``."""
    parser = sub.add_parser(
        "show",
        help="show the state of a running speaker (FRR vtysh commands)",
        description="Run a vtysh-style show command on a running speaker, e.g. 'show evpn mac vni 110'.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("words", nargs="+", metavar="WORD", help="the command after 'show'")
    parser.add_argument("--json", action="store_true", help="JSON output (as FRR's '... json')")
    _socket_option(parser)
    return parser


def add_clear_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``clear evpn dup-addr vni VNI [mac MAC] [--json] [--socket PATH]``."""
    parser = sub.add_parser(
        "clear",
        help="clear duplicate-address state of a running speaker",
        description="Clear duplicate-detected MACs: 'clear evpn dup-addr vni VNI [mac MAC]'.",
    )
    parser.add_argument("words", nargs="+", metavar="WORD", help="the command after 'clear'")
    parser.add_argument("--json", action="store_true", help="JSON output")
    _socket_option(parser)
    return parser


def add_reload_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``reload [--socket PATH]``."""
    parser = sub.add_parser(
        "reload",
        help="make a running speaker reload its configuration",
        description="Ask a running speaker to reload its configuration file.",
    )
    parser.add_argument("--json", action="store_true", help="JSON output")
    _socket_option(parser)
    return parser


def _send(args: argparse.Namespace, command: str) -> int:
    try:
        reply = request(args.socket, command, as_json=args.json)
    except ControlConnectError as exc:
        print(f"evpn-speaker: {exc}", file=sys.stderr)
        return CANNOT_CONNECT
    except OSError as exc:  # connected, then no (complete) answer
        print(f"evpn-speaker: no answer from {args.socket}: {exc}", file=sys.stderr)
        return DAEMON_ERROR
    if not reply.ok:
        print(reply.error, file=sys.stderr)
        return DAEMON_ERROR
    output = reply.output
    sys.stdout.write(output if not output or output.endswith("\n") else output + "\n")
    return OK


def run_show(args: argparse.Namespace) -> int:
    return _send(args, " ".join(["show", *args.words]))


def run_clear(args: argparse.Namespace) -> int:
    return _send(args, " ".join(["clear", *args.words]))


def run_reload(args: argparse.Namespace) -> int:
    return _send(args, "reload")
