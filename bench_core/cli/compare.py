"""`bench compare BASE HEAD`: the comparison of two results directories as tables or JSON; exit 1
on a regression. Reads only the results (directions from the rows): no torch, no plugin."""
from __future__ import annotations

import json

from ..errors import BenchInputError
from ..formatting import fmt
from .rows import (
    TABLE_ROWS,
    add_rows_argument,
    first_per_problem,
    left_out_line,
    parse_rows,
)


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
    add_rows_argument(p, "keys", "--json")
    p.set_defaults(func=run_compare_command)


def run_compare_command(args) -> int:
    """Print (or --json) the comparison; 1 when a regression exists."""
    from ..analysis import check_results_dirs
    from ..compare import COLUMNS, compare
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
    rows = parse_rows(getattr(args, "rows", str(TABLE_ROWS)))
    base, head = read_trials(args.base, columns=COLUMNS), read_trials(args.head, columns=COLUMNS)
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
        print_comparison(result, args.base, args.head, wide_console(), show_all=args.all, per_problem=rows)
    return 1 if result.regressions else 0


def _ratio(c) -> str:
    if c.ratio is None:
        return "—"
    return f"×{fmt(c.ratio)}"


def _relative(c, intervals: bool = True) -> str:
    """A time quantity's ratio over the run effect, with its simultaneous interval; else the
    ratio's interval (intervals left out when `intervals` is false)."""
    if c.rel_ratio is not None:
        text = f"×{fmt(c.rel_ratio)}"
    elif c.kind == "time" or not c.ci or not intervals:
        return "—"
    else:
        text = ""
    if c.ci and intervals:
        text += f" [{fmt(c.ci[0])}, {fmt(c.ci[1])}]"
    return text.strip()


#: Columns of the comparison tables, in order.
COLUMNS = ("optimizer", "quantity", "base", "head", "ratio", "÷ run [CI]", "p", "n", "verdict")
#: What a narrow terminal leaves out, in this order, until the table fits its width.
OPTIONAL = ("intervals", "n", "medians")
_DROPS = {"intervals": (), "n": ("n",), "medians": ("base", "head")}
_COLOURS = {"regression": "red", "improvement": "green", "changed": "yellow"}
#: What the caption says of each column that is shown.
_CAPTION = {"base": "base, head: medians over seeds", "ratio": "ratio: head/base",
            "÷ run [CI]": "÷ run: a time's ratio over the run effect (the machine-speed factor)",
            "n": "n: seeds (u: unpaired)", "verdict": "after each verdict, the letter of its test (listed below)"}


def caption(columns: list[str], left_out) -> str:
    """The caption of a comparison table with `columns`, naming what was `left_out`."""
    parts = [_CAPTION[c] + (", [CI] its simultaneous interval, else the ratio's"
                            if c == "÷ run [CI]" and "intervals" not in left_out else "")
             for c in columns if c in _CAPTION]
    text = "; ".join(parts)
    return text + (f"; left out at this width: {', '.join(left_out)} (a wider COLUMNS or --json shows "
                   "them)" if left_out else "")


def setting_rows(changes: list) -> list[dict]:
    """Leaderboard-like rows (label and optimizer name) of changes, for ``setting_keys``."""
    return [{"optimizer": c.optimizer, "optimizer_name": c.key.get("optimizer", c.optimizer)} for c in changes]


def _groups(changes: list) -> list[tuple[str, str, list]]:
    """Consecutive changes of one problem and setting: (problem, setting label, changes)."""
    out: list = []
    for c in changes:
        if out and out[-1][:2] == (c.problem, c.optimizer):
            out[-1][2].append(c)
        else:
            out.append((c.problem, c.optimizer, [c]))
    return out


def _cells(c, keys: dict, tests: dict, left_out) -> dict:
    """The cells of one change by column (the optimizer cell left to the caller)."""
    from rich.text import Text

    from .tables import display_name

    verdict = Text(c.verdict, style=_COLOURS.get(c.verdict, ""))
    verdict.append(f" {tests[c.test]}", style="dim")
    return {"optimizer": display_name(setting_rows([c])[0], keys), "quantity": c.quantity,
            "base": fmt(c.base), "head": fmt(c.head), "ratio": _ratio(c),
            "÷ run [CI]": _relative(c, "intervals" not in left_out),
            "p": "—" if c.p_value is None else f"{c.p_value:.3g}", "n": f"{c.n}{'' if c.paired else ' u'}",
            "verdict": verdict}


def _columns(tables: list[list], keys: dict, tests: dict, left_out, rows: list | None = None) -> list[str]:
    """The columns shown with `left_out`: none of its parts, nor a column empty in every table
    (`rows`: the tables' cells, when made already)."""
    from .tables import text_width

    dropped = {col for part in left_out for col in _DROPS[part]}
    if rows is None:
        rows = [_cells(c, keys, tests, left_out) for changes in tables for c in changes]
    if all(r["÷ run [CI]"] == "—" for r in rows):
        dropped.add("÷ run [CI]")
    return [col for col in COLUMNS if col not in dropped and (col in ("optimizer", "quantity")
                                                               or text_width([r[col] for r in rows]) > 0)]


def _name_widths(changes: list, keys: dict, tests: dict, left_out, width: int) -> tuple[int, int, bool]:
    """(optimizer column width, quantity column width, whether the table fits) for `changes`
    with the parts `left_out` in a terminal `width` columns wide: the short names whole where
    they can be, problem names (on rows of their own) broken first, then quantities."""
    from .tables import table_width, text_width

    rows = [_cells(c, keys, tests, left_out) for c in changes]
    columns = _columns([changes], keys, tests, left_out, rows)
    fixed = [text_width([_header(col, left_out)] + [r[col] for r in rows]) for col in columns[2:]]
    room = width - table_width(fixed + [0, 0])
    name_w = text_width([r["optimizer"] for r in rows] + ["optimizer"])
    problem_w = text_width([c.problem for c in changes])
    quantity_w = text_width([c.quantity for c in changes] + ["quantity"])
    nw = min(max(name_w, problem_w), max(name_w, room - quantity_w), max(10, room - 8))
    qw = min(quantity_w, room - nw)
    return nw, qw, nw >= min(name_w, 16) and qw >= min(8, quantity_w)


def _header(col: str, left_out) -> str:
    return "÷ run" if col == "÷ run [CI]" and "intervals" in left_out else col


def comparison_layout(tables: list[list], width: int, keys: dict, tests: dict) -> tuple:
    """The parts of OPTIONAL the comparison tables (lists of Change) leave out to fit a terminal
    `width` columns wide, the same for every table: the first of none, intervals, intervals and
    n, ... with which each table fits."""
    for n in range(len(OPTIONAL) + 1):
        if all(_name_widths(t, keys, tests, OPTIONAL[:n], width)[2] for t in tables):
            break
    has_ci = any(c.ci for t in tables for c in t)
    return tuple(part for part in OPTIONAL[:n] if part != "intervals" or has_ci)


def comparison_table(changes: list, title: str, keys: dict, tests: dict, left_out=(), width: int = 200,
                     note: str | None = None):
    """A rich Table of bench_core.compare.Change objects for a terminal `width` columns wide, the
    parts `left_out` (from ``comparison_layout``) left out: a row naming each problem, then one
    row per quantity, each setting's short name (``keys``, from ``setting_keys``) on its first
    row, numbers never broken, and after each verdict the letter of its test (``tests``)."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from .stacked import stacked
    from .tables import break_name

    name_w, quantity_w, _ = _name_widths(changes, keys, tests, left_out, width)
    all_cells = [_cells(c, keys, tests, left_out) for c in changes]
    columns = _columns([changes], keys, tests, left_out, all_cells)
    next_cells = iter(all_cells)
    table = Table(title=escape(title), title_justify="left", caption=escape(note) if note else None,
                  caption_justify="left")
    for col in columns:
        table.add_column(_header(col, left_out), no_wrap=True,
                         justify="left" if col in ("optimizer", "quantity", "verdict") else "right")
    problem = None
    for i, (prob, _, group) in enumerate(_groups(changes)):
        if i:
            table.add_section()
        if prob != problem:
            table.add_row(Text("\n".join(break_name(prob, name_w, "._ ")), style="bold"))
            problem = prob
        rows = []
        for j, c in enumerate(group):
            cells = next(next_cells)
            name = "\n".join(break_name(cells["optimizer"], name_w, "._ ")) if j == 0 else ""
            quantity = "\n".join(break_name(c.quantity, quantity_w))
            rows.append([Text(name), Text(quantity), *[
                cells[col] if isinstance(cells[col], Text) else Text(cells[col]) for col in columns[2:]]])
        table.add_row(*stacked(rows))  # one row of multi-line cells: the same text, rendered faster
    return table


def print_comparison(cmp, base: str, head: str, console, show_all: bool = False,
                     per_problem: int | None = None) -> None:
    """Print `bench compare`: provenance, run effects, success and times per key (every quantity
    with show_all), then the flagged changes, fitted to the console's width, the settings
    behind the short names, the tests behind the letters, and a summary line. With
    `per_problem`, each table shows the first that many keys of each problem and says how many
    it leaves out."""
    from rich.markup import escape

    from ..compare import TIME_QUANTITIES
    from .tables import (
        footnote_keys,
        legend_line,
        print_legend,
        setting_keys,
        settings_legend,
    )

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
    main = cmp.changes if show_all else [c for c in cmp.changes
                                         if c.quantity == "success_rate" or c.quantity in TIME_QUANTITIES]
    flagged = cmp.flagged
    left = []
    for name, table in (("key(s)", main), ("flagged key(s)", flagged)):
        part = first_per_problem(table, per_problem, lambda c: c.problem, lambda c: c.optimizer)
        left.append(left_out_line(name, part[1], part[2], per_problem, "--json"))
        if name == "key(s)":
            main = part[0]
        else:
            flagged = part[0]
    shown = [t for t in (main, flagged) if t]
    keys = setting_keys(setting_rows([c for t in shown for c in t]))
    tests = footnote_keys(c.test for t in shown for c in t)
    left_out = comparison_layout(shown, console.width, keys, tests)
    if main:
        console.print(comparison_table(main, "all quantities" if show_all else "success rate and times",
                                       keys, tests, left_out, console.width,
                                       caption(_columns([main], keys, tests, left_out), left_out)))
    if left[0]:
        console.print(left[0], highlight=False)
    if flagged:
        console.print(comparison_table(flagged, f"flagged: beyond the noise and ±{cmp.threshold:.0%}, or "
                                                "deterministic values that changed", keys, tests, left_out,
                                       console.width))
    if left[1]:
        console.print(left[1], highlight=False)
    print_legend(console, "settings", settings_legend(keys))
    print_legend(console, "tests", [legend_line(key, text) for text, key in tests.items()])
    changed = sum(c.verdict == "changed" for c in cmp.changes)
    console.print(f"{len(cmp.regressions)} regression(s), {len(cmp.improvements)} improvement(s), "
                  f"{changed} changed (alpha {cmp.alpha}, threshold {cmp.threshold:.0%}; ratios are "
                  f"head/base, times also over the run effect; u = unpaired seeds)", highlight=False)
