"""The `bench` command: list plugins' specs, run a suite, show a results directory."""
from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import BenchInputError
from .report import wide_console


def _cmd_list(args) -> int:
    from .registry import get_registry

    reg = get_registry()
    console = wide_console()
    sections = {"problems": reg.problems, "optimizers": reg.optimizers, "metrics": reg.metrics}
    wanted = [args.what] if args.what else list(sections)
    for what in wanted:
        table = Table(title=what, title_justify="left")
        for col in ("name", "kind", "plugin", "description"):
            table.add_column(col, overflow="fold")
        for name, spec in sorted(sections[what].items()):
            if what == "problems":
                kind = spec.kind
            elif what == "optimizers":
                kind = ",".join(sorted(spec.kinds))
                reqs = sorted(spec.requires - {"grad"})
                kind += f" [{','.join(reqs)}]" if reqs else ""
            else:
                kind = ("higher" if spec.higher_is_better else "lower") + " is better" + (
                    f", {spec.unit}" if spec.unit else "")
            table.add_row(name, escape(kind), spec.plugin, escape(spec.description.strip().split("\n")[0]))
        console.print(table)
    for err in reg.errors:
        console.print(f"[red]plugin {escape(err.plugin)} failed:[/red] {escape(err.message)}", highlight=False)
    return 0


def _cmd_run(args) -> int:
    from .analysis import leaderboard
    from .executors import get_executor
    from .report import print_leaderboard
    from .session import run_suite
    from .store import read_trials
    from .suite import load_suite

    suite = load_suite(args.suite, filters=args.filter)
    if not suite.trials:
        raise BenchInputError(f"{args.suite}: no trial left to run (check --filter and the optimizers' kinds)")
    out = args.out or f"results/{suite.name}"
    executor = get_executor(args.executor)
    summary = run_suite(suite, out, executor=executor, retry_failed=args.retry_failed)
    console = wide_console()
    if summary.skipped:
        console.print(f"{summary.skipped} trial(s) already complete in {out}: skipped")
    ids = {t.trial_id for t in suite.trials}
    df = read_trials(out)
    df = df[df["trial_id"].isin(ids)]
    print_leaderboard(leaderboard(df), console, title=f"{suite.name}: leaderboard ({out})")
    console.print(f"results: {out}/trials/*.parquet, {out}/curves/*.parquet")
    return 0


def _cmd_show(args) -> int:
    from pathlib import Path

    from .analysis import leaderboard
    from .report import print_leaderboard
    from .store import read_trials

    for d in args.dirs:
        if not (Path(d) / "trials").is_dir():
            raise BenchInputError(f"{d}: not a results directory (no trials/ folder)")
    df = read_trials(*args.dirs)
    print_leaderboard(leaderboard(df), wide_console(), title=f"leaderboard ({', '.join(args.dirs)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `bench` (sub-commands register here)."""
    parser = argparse.ArgumentParser(prog="bench", description="Benchmark optimizers and solvers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list problems, optimizers and metrics with their plugins")
    p.add_argument("what", nargs="?", choices=["problems", "optimizers", "metrics"])
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run a suite and print its leaderboard")
    p.add_argument("suite", help="suite file (TOML)")
    p.add_argument("--out", help="results directory (default: results/<suite name>)")
    p.add_argument("--filter", action="append", default=[],
                   help="keep trials matching problem=GLOB, optimizer=GLOB, seed=N or a bare GLOB")
    p.add_argument("--executor", default="local", help="where trials run (default: local)")
    p.add_argument("--retry-failed", action="store_true", help="rerun trials recorded with status error")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("show", help="print the leaderboard of one or more results directories")
    p.add_argument("dirs", nargs="+", help="results directories")
    p.set_defaults(func=_cmd_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bench` console script."""
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


if __name__ == "__main__":
    sys.exit(main())
