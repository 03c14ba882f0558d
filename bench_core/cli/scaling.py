"""`bench scaling DIR... [--json] [--plots OUTDIR]`: scaling-law fits of a size study.

Reads the rows and curves of results directories (``bench_core.store``), fits what
``bench_core.scaling.analyze`` fits (power laws against size and compute, the best learning
rate against width per parametrization, speed-ups over a baseline against size, L(N, D)) and
prints them as tables, each saying on how many points it was fit, or as JSON. ``--plots``
writes the figures (``bench_core.scaling_figures``) as PNG into OUTDIR.
"""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench scaling`."""
    p = sub.add_parser("scaling", help="scaling-law fits of a size study (power laws, lr transfer, speed-ups, L(N, D))")
    p.add_argument("dirs", nargs="+", help="results directories (merged)")
    p.add_argument("--metric", help="the metric fit (default: val_loss when the rows report it, else loss)")
    p.add_argument("--baseline", default="torch.adamw", help="the optimizer speed-ups are measured against "
                                                              "(default torch.adamw)")
    p.add_argument("--boot", type=int, default=300, help="bootstrap samples per fit (default 300)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--json", action="store_true", help="print the fits as JSON instead of tables")
    p.add_argument("--plots", metavar="OUTDIR", help="write the figures as PNG into OUTDIR")
    p.set_defaults(func=run_scaling_command)


def _ci(v) -> str:
    if v[0] is None or v[0] != v[0]:  # nan (JSON null): an exact fit on as many points as parameters
        return "none (exact fit)"
    return f"[{v[0]:.3g}, {v[1]:.3g}]"


def run_scaling_command(args) -> int:
    """Fit, then print tables (or JSON) and write the plots when asked."""
    import json
    import math

    from ..analysis import check_results_dirs
    from ..errors import BenchInputError
    from ..scaling import analyze
    from ..store import read_curves, read_trials

    check_results_dirs(args.dirs)
    if args.boot < 10:
        raise BenchInputError(f"--boot: expected at least 10 bootstrap samples, got {args.boot}")
    rows = read_trials(*args.dirs)
    if len(rows) and args.metric and not any(args.metric in m for m in rows["metrics"] if isinstance(m, dict)):
        raise BenchInputError(f"--metric {args.metric}: no trial reports it")
    result = analyze(rows, read_curves(*args.dirs), metric=args.metric, baseline=args.baseline,
                     n_boot=args.boot, seed=args.seed)
    paths = []
    if args.plots:
        from ..scaling_figures import write_figures
        from .options import ensure_results_dir

        ensure_results_dir(args.plots)
        paths = write_figures(result, args.plots)
    if args.json:
        clean = json.loads(json.dumps(result, default=float), parse_constant=lambda c: None)
        print(json.dumps(clean, indent=1, allow_nan=False, default=str))
        return 0
    _print_tables(result, paths, math)
    return 0


def _print_tables(result: dict, paths, math) -> None:
    from rich.markup import escape
    from rich.table import Table

    from .tables import wide_console

    console = wide_console()
    metric = result["metric"]
    if result["size"]:
        t = Table(title=f"{metric} at the best lr: L = a·x^-α (+ c)", title_justify="left")
        for col in ("group", "x", "α", "95% CI", "c", "95% CI ", "points (sizes)"):
            t.add_column(col, overflow="fold")
        for f in result["size"]:
            c = f"{f['c']:.3g}" if f["offset"] else "-"
            t.add_row(escape(f["label"]), f["axis"], f"{f['alpha']:.3f}", _ci(f["alpha_ci"]), c,
                      _ci(f["c_ci"]) if f["offset"] else "-", f"{f['n_points']} ({f['n_sizes']})")
        console.print(t)
    if result["lr_transfer"]:
        t = Table(title="best lr against width: slope of log2 lr* on log2 width (μP: ≈ 0)", title_justify="left")
        for col in ("group", "slope", "95% CI", "widths", "seeds", "lr* at grid edge"):
            t.add_column(col, overflow="fold")
        for f in result["lr_transfer"]:
            t.add_row(escape(f["label"]), f"{f['slope']:+.3f}", _ci(f["slope_ci"]), str(f["n_points"]),
                      str(f["seeds"]), str(f["at_grid_edge"]))
        console.print(t)
    if result["speedup"]:
        t = Table(title=f"speed-up over {result['baseline']} (steps to its final {metric}), "
                        "slope of log speed-up on log N", title_justify="left")
        for col in ("group", "speed-up by size (N: x)", "slope", "95% CI", "points (sizes)"):
            t.add_column(col, overflow="fold")
        for f in result["speedup"]:
            by_size = ", ".join(f"{n:,.0f}: {s:.2f}x" for n, s in f["speedups"])
            t.add_row(escape(f["label"]), by_size, f"{f['slope']:+.3f}", _ci(f["slope_ci"]),
                      f"{f['n_points']} ({f['n_sizes']})")
        console.print(t)
    ch = result.get("chinchilla")
    if ch:
        t = Table(title=f"L(N, D) = E + A/N^α + B/D^β ({escape(ch['label'])}; Huber on log L)", title_justify="left")
        for col in ("parameter", "value", "95% CI"):
            t.add_column(col)
        for k in ("E", "A", "B", "alpha", "beta"):
            t.add_row(k, f"{ch[k]:.4g}", _ci(ch["ci"][k]))
        a_opt = ch["a_opt"]
        t.add_row("N_opt ∝ C^a, a = β/(α+β)", "-" if math.isnan(a_opt) else f"{a_opt:.3f}", "")
        console.print(t)
        console.print(f"L(N, D) fit on {ch['n_points']} points at {ch['n_sizes']} sizes x {ch['n_budgets']} "
                      f"budgets; {ch['note']}",
                      markup=False, highlight=False, soft_wrap=True)
    if not (result["size"] or result["lr_transfer"] or result["speedup"] or ch):
        console.print("no size sweep to fit in these results", markup=False, highlight=False)
    for n in result["notes"]:
        console.print(f"note: {n}", markup=False, highlight=False, soft_wrap=True)
    for p in paths:
        console.print(f"plot: {p}", markup=False, highlight=False)
