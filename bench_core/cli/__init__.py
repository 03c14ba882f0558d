"""The `bench` command: list plugins' specs, run or tune a suite, and analyse results directories.

One module per command, each with its ``add_parser(sub)`` and its command function. A module
imports what its command needs only when the command runs, so building the parser (`bench
--help`) loads neither torch, nor the plugins, nor rich.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import BenchInputError
from ..threads import quiet_openmp
from . import check, compact, compare, history, list_cmd, plot, precision, report, run, scaling, show, sql, tune, verify

# in the order `bench --help` lists them
COMMANDS = (list_cmd, run, tune, show, sql, check, compare, report, plot, history, precision, verify, compact, scaling)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `bench` (each command module registers its sub-command)."""
    parser = argparse.ArgumentParser(prog="bench", description="Benchmark optimizers and solvers.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bench` console script."""
    quiet_openmp()  # before torch or numpy load their OpenMP runtime (bench_core.threads)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BenchInputError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
