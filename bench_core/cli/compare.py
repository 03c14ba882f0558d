"""`bench compare BASE HEAD`: the comparison of two results directories as tables or JSON; exit 1
on a regression. Reads only the results (directions from the rows): no torch, no plugin."""
from __future__ import annotations

import json

from ..errors import BenchInputError
from ..formatting import fmt


def add_parser(sub) -> None:
    """Register `bench compare`."""
    p = sub.add_parser("compare", help="compare two results directories; exit 1 on a regression")
    p.add_argument("base", help="results directory of the baseline")
    p.add_argument("head", help="results directory to judge against it")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="smallest relative change reported as a regression or improvement (default 0.1)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level; for times, the chance that two runs of one suite flag "
                        "anything (default 0.05)")
    p.add_argument("--run-tolerance", type=float,
                   help="how far the machine-speed factor of two runs of one suite may drift on these "
                        "machines (e.g. 0.05, measured on A/A pairs): beyond it the change common to every "
                        "key is a regression or an improvement (default: not judged)")
    p.add_argument("--judge-loaded", action="store_true",
                   help="judge times even when a side ran with more load than CPUs")
    p.add_argument("--ignore", action="append", default=[], choices=["device", "dtype", "targets", "hparams"],
                   help="leave this field out of the key that matches trials (repeatable)")
    p.add_argument("--quantity", action="append", default=[],
                   help="compare only this quantity: success_rate, time_to_target_s, time_per_step_s, "
                        "steps_to_target or a metric name (repeatable; default: all)")
    p.add_argument("--all", action="store_true", help="show every quantity, not only success and times")
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
    if args.run_tolerance is not None and not args.run_tolerance >= 0:
        raise BenchInputError(f"--run-tolerance: expected a non-negative fraction such as 0.05, "
                              f"got {args.run_tolerance}")
    base, head = read_trials(args.base), read_trials(args.head)
    for name, df in ((args.base, base), (args.head, head)):
        if not len(df):
            raise BenchInputError(f"{name}: no trials in this results directory")
    result = compare(base, head, threshold=args.threshold, alpha=args.alpha, ignore=args.ignore,
                     quantities=args.quantity or None, run_tolerance=args.run_tolerance,
                     judge_loaded=args.judge_loaded)
    if not result.keys_shared:
        raise BenchInputError(f"{args.base} and {args.head}: no trial key in common (same problems, params, "
                              "optimizers, hparams, dtype, device, budget, targets, eval and threads); "
                              "see --ignore")
    if args.json:
        print(json.dumps({"base": args.base, "head": args.head, **result.to_dict()}, indent=1))
    else:
        print_comparison(result, args.base, args.head, wide_console(), show_all=args.all)
    return 1 if result.regressions else 0


def _ratio(c) -> str:
    if c.ratio is None:
        return "—"
    return f"×{fmt(c.ratio)}"


def _relative(c) -> str:
    """A time quantity's ratio over the run effect, with its simultaneous interval; else the
    ratio's interval."""
    if c.rel_ratio is not None:
        text = f"×{fmt(c.rel_ratio)}"
    elif c.kind == "time" or not c.ci:
        return "—"
    else:
        text = ""
    if c.ci:
        text += f" [{fmt(c.ci[0])}, {fmt(c.ci[1])}]"
    return text.strip()


def comparison_table(changes: list, title: str):
    """A rich Table of bench_core.compare.Change objects."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left")
    for name, justify in (("problem", "left"), ("optimizer", "left"), ("quantity", "left"),
                          ("base", "right"), ("head", "right"), ("head/base", "right"),
                          ("÷ run effect [CI] or [CI]", "right"), ("p", "right"), ("n", "right"),
                          ("verdict", "left"), ("test", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    colours = {"regression": "red", "improvement": "green", "changed": "yellow"}
    for c in changes:
        verdict = c.verdict
        if verdict in colours:
            verdict = f"[{colours[verdict]}]{verdict}[/{colours[verdict]}]"
        table.add_row(escape(c.problem), escape(c.optimizer), escape(c.quantity), fmt(c.base), fmt(c.head),
                      _ratio(c), _relative(c), "—" if c.p_value is None else f"{c.p_value:.3g}",
                      f"{c.n}{'' if c.paired else ' u'}", verdict, escape(c.test))
    return table


def print_comparison(cmp, base: str, head: str, console, show_all: bool = False) -> None:
    """Print `bench compare`: provenance, run effects, success and times per key (every quantity
    with show_all), then the flagged changes and a summary line."""
    from rich.markup import escape

    from ..compare import TIME_QUANTITIES

    console.print(f"base: {escape(base)}  head: {escape(head)}  keys shared: {cmp.keys_shared}, "
                  f"only in base: {cmp.keys_only_base}, only in head: {cmp.keys_only_head}", highlight=False)
    for side, prov in (("base", cmp.base_provenance), ("head", cmp.head_provenance)):
        for p in prov:
            load = "" if p["load_avg"] is None else f", load {p['load_avg']:.1f} on {p['cpu_count']} CPUs"
            console.print(f"  {side}: commit {escape(str(p['git_commit'])[:10])}"
                          f"{'+dirty' if p['git_dirty'] == 'True' else ''} on {escape(str(p['host']))} "
                          f"({escape(str(p['cpu_model']))}, torch {escape(str(p['torch_version']))}{load}): "
                          f"{p['trials']} trials", highlight=False)
    for note in cmp.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    for e in cmp.run_effects:
        console.print(f"run effect of {e.quantity} (machine-speed factor, median head/base over {e.n} key(s)): "
                      f"×{fmt(e.ratio)}, {e.verdict}: {escape(e.test)}", highlight=False)
    main = [c for c in cmp.changes if c.quantity == "success_rate" or c.quantity in TIME_QUANTITIES]
    console.print(comparison_table(cmp.changes if show_all else main,
                                   "all quantities" if show_all else "success rate and times"))
    flagged = cmp.flagged
    if flagged:
        console.print(comparison_table(flagged, f"flagged: beyond the noise and ±{cmp.threshold:.0%}, or "
                                                "deterministic values that changed"))
    changed = sum(c.verdict == "changed" for c in cmp.changes)
    console.print(f"{len(cmp.regressions)} regression(s), {len(cmp.improvements)} improvement(s), "
                  f"{changed} changed (alpha {cmp.alpha}, threshold {cmp.threshold:.0%}; ratios are "
                  f"head/base, times also over the run effect; u = unpaired seeds)", highlight=False)
