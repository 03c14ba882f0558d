"""`bench run SUITE`: run a suite's trials into a results directory and print its leaderboard."""
from __future__ import annotations

from ..errors import BenchInputError
from .options import add_executor_options, ensure_results_dir, make_executor
from .rows import TABLE_ROWS, add_rows_argument, parse_rows


def add_parser(sub) -> None:
    """Register `bench run`."""
    p = sub.add_parser("run", help="run a suite and print its leaderboard")
    p.add_argument("suite", help="suite file (TOML)")
    p.add_argument("--out", help="results directory (default: results/<suite name>)")
    p.add_argument("--filter", action="append", default=[],
                   help="keep trials matching problem=GLOB, optimizer=GLOB, seed=N or a bare GLOB")
    add_executor_options(p)
    p.add_argument("--retry-failed", action="store_true", help="rerun trials recorded with status error")
    p.add_argument("--threads", type=int,
                   help="CPU threads per trial, for torch and the BLAS (default: the suite's, else 1)")
    p.add_argument("--reuse-stale", action="store_true",
                   help="reuse results of the same trials made by other code instead of rerunning them")
    p.add_argument("--compact", action="store_true",
                   help="merge the directory's per-trial files into compacted files at the end (bench compact)")
    add_rows_argument(p, "settings", "bench show OUT --format csv or json")
    p.set_defaults(func=run_run_command)


def run_run_command(args) -> int:
    """Run the suite (skipping trials already complete), then print the leaderboard of its trials.

    What went wrong with the plugins (failures, clashing names, renamed entry points) is printed
    once the suite is accepted, one warning line each on stderr, whether or not the suite uses
    them (a suite naming a clashing or missing name is refused in one line naming the plugins)."""
    import sys

    from ..registry import get_registry
    from ..session import run_suite
    from ..store import read_trials
    from ..suite import load_suite
    from ..threads import load_warning
    from .tables import print_leaderboard_and_summary, wide_console

    per_problem = parse_rows(getattr(args, "rows", str(TABLE_ROWS)))
    suite = load_suite(args.suite, filters=args.filter, threads=args.threads)
    if not suite.trials:
        raise BenchInputError(f"{args.suite}: no trial left to run (check --filter and the optimizers' kinds)")
    out = args.out or f"results/{suite.name}"
    executor = make_executor(args)
    ensure_results_dir(out)
    for line in get_registry().warnings():
        print(f"bench: warning: {line}", file=sys.stderr)
    console = wide_console()
    warning = load_warning(max(t.threads for t in suite.trials), args.jobs or 1)
    if warning:
        console.print(f"warning: {warning}", markup=False, highlight=False)
    summary = run_suite(suite, out, executor=executor, retry_failed=args.retry_failed,
                        reuse_stale=args.reuse_stale)
    if summary.reused_stale:
        console.print(f"{len(summary.reused_stale)} trial(s) reused from results of other code in {out} "
                      "(--reuse-stale): their rows say which code made them", markup=False)
    if summary.skipped - len(summary.reused_stale) > 0:
        console.print(f"{summary.skipped - len(summary.reused_stale)} trial(s) already complete in {out} "
                      "(same trial, same code): skipped", markup=False)
    if args.compact:
        from ..compaction import CompactionBusy, compact

        try:
            r = compact(out)
            console.print(f"compacted: {r.trials} trial(s) in {out}/trials/compacted-{r.generation:06d}.parquet",
                          markup=False, highlight=False)
        except CompactionBusy as exc:
            console.print(f"warning: {exc}: not compacted", markup=False, highlight=False)
    df = read_trials(out, trial_ids=summary.result_ids)
    print_leaderboard_and_summary(df, console, title=f"{suite.name}: leaderboard ({out})", per_problem=per_problem)
    console.print(f"results: {out}/trials/*.parquet, {out}/curves/*.parquet", markup=False, highlight=False)
    return 0
