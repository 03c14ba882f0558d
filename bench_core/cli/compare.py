"""`bench compare BASE HEAD`: the comparison of two results directories as tables or JSON; exit 1
on a significant regression."""
from __future__ import annotations

import json

from ..errors import BenchInputError
from ..formatting import fmt


def add_parser(sub) -> None:
    """Register `bench compare`."""
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
    p.set_defaults(func=run_compare_command)


def run_compare_command(args) -> int:
    """Print (or --json) the comparison; 1 when a regression exists."""
    from ..analysis import check_results_dirs
    from ..compare import compare
    from ..store import read_trials
    from .tables import wide_console

    check_results_dirs([args.base, args.head])
    if not args.threshold >= 0:
        raise BenchInputError(f"--threshold: expected a non-negative fraction such as 0.1, got {args.threshold}")
    if not 0 < args.alpha < 1:
        raise BenchInputError(f"--alpha: expected a level between 0 and 1, got {args.alpha}")
    base, head = read_trials(args.base), read_trials(args.head)
    for name, df in ((args.base, base), (args.head, head)):
        if not len(df):
            raise BenchInputError(f"{name}: no trials in this results directory")
    result = compare(base, head, threshold=args.threshold, alpha=args.alpha, ignore=args.ignore,
                     quantities=args.quantity or None)
    if not result.keys_shared:
        raise BenchInputError(f"{args.base} and {args.head}: no trial key in common (same problems, params, "
                              "optimizers, hparams, dtype, device and targets); see --ignore")
    if args.json:
        print(json.dumps({"base": args.base, "head": args.head, **result.to_dict()}, indent=1))
    else:
        print_comparison(result, args.base, args.head, wide_console(), show_all=args.all)
    return 1 if result.regressions else 0


def _ratio(c) -> str:
    if c.ratio is None:
        return "—"
    text = f"×{fmt(c.ratio)}"
    if c.ci:
        text += f" [{fmt(c.ci[0])}, {fmt(c.ci[1])}]"
    return text


def comparison_table(changes: list, title: str):
    """A rich Table of bench_core.compare.Change objects."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left")
    for name, justify in (("problem", "left"), ("optimizer", "left"), ("quantity", "left"),
                          ("base", "right"), ("head", "right"), ("head/base [95% CI]", "right"),
                          ("p", "right"), ("n", "right"), ("verdict", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    colours = {"regression": "red", "improvement": "green"}
    for c in changes:
        verdict = c.verdict
        if verdict in colours:
            verdict = f"[{colours[verdict]}]{verdict}[/{colours[verdict]}]"
        table.add_row(escape(c.problem), escape(c.optimizer), escape(c.quantity), fmt(c.base), fmt(c.head),
                      _ratio(c), "—" if c.p_value is None else f"{c.p_value:.3g}",
                      f"{c.n}{'' if c.paired else ' u'}", verdict)
    return table


def print_comparison(cmp, base: str, head: str, console, show_all: bool = False) -> None:
    """Print `bench compare`: time to target per key, then the regressions and improvements."""
    from rich.markup import escape

    console.print(f"base: {escape(base)}  head: {escape(head)}  keys shared: {cmp.keys_shared}, "
                  f"only in base: {cmp.keys_only_base}, only in head: {cmp.keys_only_head}", highlight=False)
    for side, prov in (("base", cmp.base_provenance), ("head", cmp.head_provenance)):
        for p in prov:
            console.print(f"  {side}: commit {escape(str(p['git_commit'])[:10])}"
                          f"{'+dirty' if p['git_dirty'] == 'True' else ''} on {escape(str(p['host']))} "
                          f"({escape(str(p['cpu_model']))}, torch {escape(str(p['torch_version']))}): "
                          f"{p['trials']} trials", highlight=False)
    main = [c for c in cmp.changes if c.quantity in ("success_rate", "time_to_target_s")]
    console.print(comparison_table(cmp.changes if show_all else main,
                                   "all quantities" if show_all else "success rate and time to target"))
    flagged = cmp.regressions + cmp.improvements
    if flagged:
        console.print(comparison_table(flagged, f"significant changes beyond ±{cmp.threshold:.0%}"))
    console.print(f"{len(cmp.regressions)} regression(s), {len(cmp.improvements)} improvement(s) "
                  f"(alpha {cmp.alpha}, threshold {cmp.threshold:.0%}; ratios are head/base, "
                  f"u = unpaired seeds)", highlight=False)
