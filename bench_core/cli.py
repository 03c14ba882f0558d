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
    from .report import print_leaderboard, print_summary
    from .session import run_suite
    from .store import read_trials
    from .suite import load_suite

    suite = load_suite(args.suite, filters=args.filter)
    if not suite.trials:
        raise BenchInputError(f"{args.suite}: no trial left to run (check --filter and the optimizers' kinds)")
    out = args.out or f"results/{suite.name}"
    executor = make_executor(args)
    summary = run_suite(suite, out, executor=executor, retry_failed=args.retry_failed)
    console = wide_console()
    if summary.skipped:
        console.print(f"{summary.skipped} trial(s) already complete in {out}: skipped")
    ids = {t.trial_id for t in suite.trials}
    df = read_trials(out)
    df = df[df["trial_id"].isin(ids)]
    print_leaderboard(leaderboard(df), console, title=f"{suite.name}: leaderboard ({out})")
    print_summary(df, console)
    console.print(f"results: {out}/trials/*.parquet, {out}/curves/*.parquet")
    return 0


def _cmd_tune(args) -> int:
    from .suite import load_suite
    from .tuning import tune, write_tuned

    suite = load_suite(args.suite, filters=args.filter)
    if not suite.trials:
        raise BenchInputError(f"{args.suite}: no trial left to tune (check --filter and the optimizers' kinds)")
    if args.budget < 1:
        raise BenchInputError(f"--budget: expected a positive number of trials, got {args.budget}")
    out = args.out or f"results/{suite.name}-tune"
    result = tune(suite, out, args.budget, method=args.method, seed=args.seed, eta=args.eta,
                  executor=make_executor(args))
    tuned = args.tuned or f"{out}/tuned.toml"
    write_tuned(result, tuned, suite)
    table = Table(title=f"{suite.name}: best setting per optimizer and problem ({args.method}, budget {args.budget})",
                  title_justify="left")
    for col in ("problem", "optimizer", "trials", "status", "metric", "hparams"):
        table.add_column(col, overflow="fold")
    for group, row, metric in result.best:
        value = (row.get("metrics") or {}).get(metric)
        table.add_row(group.base.problem, group.base.optimizer, str(len(set(group.trial_ids))), row["status"],
                      f"{metric}={value:.4g}" if value is not None else "—", escape(row["hparams"]))
    console = wide_console()
    console.print(table)
    console.print(f"tuned settings: {tuned} (include with hparams_from); trials: {out}/trials/*.parquet")
    return 0


def make_executor(args):
    """The executor that --executor, --jobs and --address ask for."""
    from .executors import get_executor

    if args.jobs is not None and args.jobs < 1:
        raise BenchInputError(f"--jobs: expected a positive number of worker processes, got {args.jobs}")
    name = args.executor
    if name == "local" and args.jobs is not None:
        name = "process"
    if args.address and name != "ray":
        raise BenchInputError("--address: only with --executor ray")
    if name == "process":
        return get_executor(name, jobs=args.jobs)
    if name == "ray":
        return get_executor(name, address=args.address)
    return get_executor(name)


def add_executor_options(p) -> None:
    """--executor, --jobs and --address, shared by `bench run` and `bench tune`."""
    p.add_argument("--executor", default="local", choices=["local", "process", "ray"],
                   help="where trials run: local (default), process (a worker pool), ray (a Ray cluster)")
    p.add_argument("--jobs", type=int, help="run trials in N worker processes (implies --executor process)")
    p.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")


def _cmd_show(args) -> int:
    from pathlib import Path

    from .analysis import leaderboard
    from .report import print_leaderboard, print_summary
    from .store import read_trials

    for d in args.dirs:
        if not (Path(d) / "trials").is_dir():
            raise BenchInputError(f"{d}: not a results directory (no trials/ folder)")
    df = read_trials(*args.dirs)
    console = wide_console()
    print_leaderboard(leaderboard(df), console, title=f"leaderboard ({', '.join(args.dirs)})")
    print_summary(df, console)
    return 0


def _cmd_compare(args) -> int:
    from .compare import run_compare_command

    return run_compare_command(args, wide_console())


def _cmd_report(args) -> int:
    from .html_report import run_report_command

    return run_report_command(args, wide_console())


def _cmd_history(args) -> int:
    from .history import run_history_command

    return run_history_command(args, wide_console())


def _cmd_precision(args) -> int:
    from .precision import run_precision_command

    return run_precision_command(args, wide_console())


def _cmd_check(args) -> int:
    from .testing import run_check_command

    return run_check_command(args, wide_console())


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
    add_executor_options(p)
    p.add_argument("--retry-failed", action="store_true", help="rerun trials recorded with status error")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("tune", help="tune every optimizer of a suite on each problem under one budget")
    p.add_argument("suite", help="suite file (TOML)")
    p.add_argument("--budget", type=int, required=True,
                   help="trials per optimizer and problem (hyperband: the same total steps)")
    p.add_argument("--method", choices=["random", "hyperband"], default="random",
                   help="quasi-random search (default) or Hyperband (successive halving)")
    p.add_argument("--eta", type=int, default=3, help="hyperband: keep 1/eta of the trials at each rung")
    p.add_argument("--seed", type=int, default=0, help="seed of the quasi-random sequence")
    p.add_argument("--out", help="results directory (default: results/<suite name>-tune)")
    p.add_argument("--tuned", help="where to write the tuned settings (default: <out>/tuned.toml)")
    p.add_argument("--filter", action="append", default=[], help="as for `bench run`")
    add_executor_options(p)
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("show", help="print the leaderboard of one or more results directories")
    p.add_argument("dirs", nargs="+", help="results directories")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("check", help="run the optimizer conformance kit on a registered optimizer")
    p.add_argument("name", help="optimizer name, e.g. torch.adamw, or a glob such as 'po.*'")
    p.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                   help="hyperparameter overriding the spec's default (value read as JSON; repeatable)")
    p.add_argument("--skip", action="append", default=[], metavar="CHECK", help="a check not to run (repeatable)")
    p.add_argument("--steps", type=int, default=50, help="length of the progress run (default 50)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("compare", help="compare two results directories; exit 1 on a significant regression")
    p.add_argument("base", help="results directory of the baseline")
    p.add_argument("head", help="results directory to judge against it")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="smallest relative change reported as a regression or improvement (default 0.1)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--ignore", action="append", default=[], choices=["device", "dtype", "targets", "hparams"],
                   help="leave this field out of the key that matches trials (repeatable)")
    p.add_argument("--quantity", action="append", default=[],
                   help="compare only this quantity: success_rate, time_to_target_s, steps_to_target or a "
                        "metric name (repeatable; default: all)")
    p.add_argument("--all", action="store_true", help="show every quantity, not only time to target")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("report", help="write a self-contained HTML report of results directories")
    p.add_argument("dirs", nargs="+", help="results directories (merged)")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--title", help="title of the page")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("history", help="a metric over git commits from results dirs of several commits")
    p.add_argument("dirs", nargs="+", help="results directories (from runs at different commits)")
    p.add_argument("--metric", default="final",
                   help="final (the target metric's final value; default), time_to_target_s, "
                        "steps_to_target, train_time_s, steps, or a metric name such as loss")
    p.add_argument("--problem", help="only problems matching this glob")
    p.add_argument("--optimizer", help="only optimizers matching this glob")
    p.add_argument("--plot", help="write an SVG plot of the history to this file")
    p.add_argument("--k", type=float, default=3.0, help="noise threshold in standard errors (default 3)")
    p.add_argument("--rel-tol", type=float, default=0.01, help="smallest relative change flagged (default 0.01)")
    p.add_argument("--repo", default=".", help="git repository that orders the commits (default: .)")
    p.add_argument("--fail-on-worse", action="store_true", help="exit 1 when a commit is flagged worse")
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser("precision", help="compare low-precision trials with their float64 twins")
    p.add_argument("dirs", nargs="+", help="results directories (merged)")
    p.add_argument("--metric", default="loss", help="curve metric for the Wasserstein distance (default loss)")
    p.set_defaults(func=_cmd_precision)
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
