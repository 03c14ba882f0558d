"""`bench precision DIR...`: each low-precision trial against its float64 twin, as a table."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench precision`."""
    p = sub.add_parser("precision", help="compare low-precision trials with their float64 twins")
    p.add_argument("dirs", nargs="+", help="results directories (merged)")
    p.add_argument("--metric", default="loss", help="curve metric for the Wasserstein distance (default loss)")
    p.set_defaults(func=run_precision_command)


def run_precision_command(args) -> int:
    """Print the float64 comparison as a table."""
    from rich.table import Table

    from ..analysis import check_results_dirs
    from ..precision import compare_to_float64
    from .tables import wide_console

    check_results_dirs(args.dirs)
    df = compare_to_float64(*args.dirs, curve_metric=args.metric)
    console = wide_console()
    if df.empty:
        console.print("no trial has a float64 twin (same problem, params, optimizer, hparams, seed)")
        return 0
    shown = ["problem", "optimizer", "seed", "dtype", "stochastic_rounding", f"wasserstein_{args.metric}"]
    shown += [c for c in df.columns if c.startswith("reldiff_")]
    table = Table(title="precision: each trial against its float64 twin", title_justify="left")
    for col in shown:
        table.add_column(col.replace("reldiff_", "Δrel "), overflow="fold")
    for _, row in df.sort_values(["problem", "optimizer", "dtype", "seed"]).iterrows():
        cells = []
        for col in shown:
            v = row.get(col)
            cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
        table.add_row(*cells)
    console.print(table)
    return 0
