"""`bench tune SUITE --budget N`: tune every optimizer of a suite on each problem under one budget."""
from __future__ import annotations

from ..errors import BenchInputError
from .options import add_executor_options, ensure_results_dir, make_executor


def add_parser(sub) -> None:
    """Register `bench tune`."""
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
    p.set_defaults(func=run_tune_command)


def run_tune_command(args) -> int:
    """Tune, write the tuned settings file, print the best setting per optimizer and problem.
    Names and hyperparameters from plugins and suites are printed literally (rich ``Text``)."""
    from rich.table import Table
    from rich.text import Text

    from ..suite import load_suite
    from ..tuning import tune, write_tuned
    from .tables import wide_console

    suite = load_suite(args.suite, filters=args.filter)
    if not suite.trials:
        raise BenchInputError(f"{args.suite}: no trial left to tune (check --filter and the optimizers' kinds)")
    if args.budget < 1:
        raise BenchInputError(f"--budget: expected a positive number of trials, got {args.budget}")
    out = args.out or f"results/{suite.name}-tune"
    ensure_results_dir(out)
    result = tune(suite, out, args.budget, method=args.method, seed=args.seed, eta=args.eta,
                  executor=make_executor(args))
    tuned = args.tuned or f"{out}/tuned.toml"
    write_tuned(result, tuned, suite)
    table = Table(title=Text(f"{suite.name}: best setting per optimizer and problem ({args.method}, "
                             f"budget {args.budget})"), title_justify="left")
    for col in ("problem", "optimizer", "trials", "status", "metric", "hparams"):
        table.add_column(col, overflow="fold")
    for group, row, metric in result.best:
        value = (row.get("metrics") or {}).get(metric)
        cells = (group.base.problem, group.base.optimizer, str(len(set(group.trial_ids))), row["status"],
                 f"{metric}={value:.4g}" if value is not None else "—", row["hparams"])
        table.add_row(*(Text(str(cell)) for cell in cells))
    console = wide_console()
    console.print(table)
    console.print(f"tuned settings: {tuned} (include with hparams_from); trials: {out}/trials/*.parquet",
                  markup=False, highlight=False)
    return 0
