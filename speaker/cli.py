"""The ``evpn-speaker`` command line: one argparse subcommand per module (``speaker.cli_<name>``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from speaker import cli_decode, cli_run, cli_show

USAGE_ERROR = 2


@dataclass(frozen=True, slots=True)
class Subcommand:
    """A subcommand: ``add_parser`` registers its arguments, ``run`` executes it and returns the exit code."""

    name: str
    add_parser: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("decode", cli_decode.add_parser, cli_decode.run),
    Subcommand("run", cli_run.add_parser, cli_run.run),
    Subcommand("show", cli_show.add_show_parser, cli_show.run_show),
    Subcommand("clear", cli_show.add_clear_parser, cli_show.run_clear),
    Subcommand("reload", cli_show.add_reload_parser, cli_show.run_reload),
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="evpn-speaker", description="A pure-Python BGP EVPN speaker.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS:
        command.add_parser(sub).set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``evpn-speaker``; returns the exit code (2 for usage errors, as argparse does)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else USAGE_ERROR
    run: Callable[[argparse.Namespace], int] = args._run
    try:
        return run(args)
    except BrokenPipeError:  # e.g. `evpn-speaker decode ... | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
