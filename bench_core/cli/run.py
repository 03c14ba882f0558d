"""`bench run SUITE`: run a suite's trials into a results directory and print its leaderboard."""
from __future__ import annotations

from ..errors import BenchInputError
from .options import add_executor_options, make_executor


def add_parser(sub) -> None:
    """Register `bench run`."""
    p = sub.add_parser("run", help="run a suite and print its leaderboard")
    p.add_argument("suite", help="suite file (TOML)")
    p.add_argument("--out", help="results directory (default: results/<suite name>)")
    p.add_argument("--filter", action="append", default=[],
                   help="keep trials matching problem=GLOB, optimizer=GLOB, seed=N or a bare GLOB")
    add_executor_options(p)
    p.add_argument("--retry-failed", action="store_true", help="rerun trials recorded with status error")
    p.set_defaults(func=run_run_command)


def run_run_command(args) -> int:
    """Run the suite (skipping trials already complete), then print the leaderboard of its trials."""
    from ..session import run_suite
    from ..store import read_trials
    from ..suite import load_suite
    from .tables import print_leaderboard_and_summary, wide_console

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
    print_leaderboard_and_summary(df, console, title=f"{suite.name}: leaderboard ({out})")
    console.print(f"results: {out}/trials/*.parquet, {out}/curves/*.parquet")
    return 0
