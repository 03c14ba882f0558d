"""`bench history DIR...`: one metric over git commits as a table per trial key, the flagged
points, and an optional SVG plot. Reads only the results (directions from the rows): no torch,
no plugin."""
from __future__ import annotations

import math

from .rows import (
    TABLE_ROWS,
    add_rows_argument,
    first_per_problem,
    left_out_line,
    parse_rows,
)


def add_parser(sub) -> None:
    """Register `bench history`."""
    p = sub.add_parser("history", help="a metric over git commits from results dirs of several commits")
    p.add_argument("dirs", nargs="+", help="results directories (from runs at different commits; two "
                                           "directories of one commit are two points)")
    p.add_argument("--metric", default="final",
                   help="final (the target metric's final value; default), time_to_target_s, "
                        "steps_to_target, train_time_s, steps, or a metric name such as loss")
    p.add_argument("--problem", help="only problems matching this glob")
    p.add_argument("--optimizer", help="only optimizers matching this glob")
    p.add_argument("--plot", help="write an SVG plot of the history to this file")
    p.add_argument("--k", type=float, default=3.0,
                   help="noise threshold in standard errors of the paired differences (default 3)")
    p.add_argument("--rel-tol", type=float, default=0.01, help="smallest relative change flagged (default 0.01)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="times: the chance that two runs of the same code flag anything (default 0.05)")
    p.add_argument("--judge-loaded", action="store_true",
                   help="judge times even when a directory ran with more load than CPUs")
    p.add_argument("--repo", default=".", help="git repository that orders the commits (default: .)")
    p.add_argument("--fail-on-worse", action="store_true", help="exit 1 when a commit is flagged worse")
    add_rows_argument(p, "series (trial keys)")
    p.set_defaults(func=run_history_command)


def run_history_command(args) -> int:
    """Print (and plot) the metric over commits; 1 with --fail-on-worse when a commit is flagged
    worse, else 0."""
    from ..analysis import check_results_dirs
    from ..errors import BenchInputError
    from ..history import (
        COLUMNS,
        build_history,
        commit_subjects,
        read_runs,
        select,
        write_svg,
    )
    from .tables import wide_console

    check_results_dirs(args.dirs)
    if not 0 < args.alpha < 1:
        raise BenchInputError(f"--alpha: expected a level between 0 and 1, got {args.alpha}")
    rows = parse_rows(getattr(args, "rows", str(TABLE_ROWS)))
    trials = read_runs(*args.dirs, columns=COLUMNS)
    shown = set(select(trials, args.metric, args.problem, args.optimizer)["key_id"])
    # every series takes part in the run effect of times; the globs only choose what is shown
    series, ordering = build_history(trials, args.metric, repo=args.repo, k=args.k, rel_tol=args.rel_tol,
                                     alpha=args.alpha, judge_loaded=args.judge_loaded)
    series = [s for s in series if s.key_id in shown]
    console = wide_console()
    commits = {p.commit for s in series for p in s.points}
    shown, left, problems = first_per_problem(series, rows, lambda s: s.problem)
    print_history(shown, console, ordering, commit_subjects(commits, args.repo))
    if left:
        console.print(left_out_line("series", left, problems, rows), highlight=False)
    flagged = [(s, p) for s in series for p in s.points if p.flag]
    listed, left, problems = first_per_problem(flagged, rows, lambda sp: sp[0].problem, lambda sp: sp[0].key_id)
    for s, p in listed:
        console.print(f"{p.key} ({p.source}): {s.problem} {s.optimizer} {s.metric} {p.flag}"
                      + (f" ({p.change:+.1%})" if p.change is not None and math.isfinite(p.change) else "")
                      + (f": {p.note}" if p.note else ""), highlight=False, markup=False)
    if left:
        console.print(left_out_line("flagged series", left, problems, rows), highlight=False)
    if not flagged:
        console.print("no commit changed beyond the noise across seeds")
    if args.plot:
        write_svg(series, args.plot)
        console.print(f"plot: {args.plot}")
    return 1 if args.fail_on_worse and any(p.flag == "worse" for _, p in flagged) else 0


def _fmt(v) -> str:
    if v is None:
        return "—"
    return f"{v:.4g}"


#: Columns of a history table, in order; "mean ± std" is left out where it does not fit.
COLUMNS = ("commit", "directory", "seeds", "median", "mean ± std", "change", "flag")
_STYLES = {"worse": "red", "better": "green", "changed": "yellow", "noise": "magenta"}


def common_parent(sources: list[str]) -> str:
    """The directory that holds every results directory of `sources` ("" when none does, e.g. for
    run ids or a mix of absolute and relative paths)."""
    import os

    parents = [os.path.dirname(s.rstrip("/")) for s in sources]
    if not parents or "" in parents or len({os.path.isabs(p) for p in parents}) > 1:
        return ""
    common = os.path.commonpath(parents)
    return "" if common in ("", ".") else common


def _cells(p, notes: dict, parent: str) -> dict:
    """The cells of one point by column."""
    from rich.text import Text

    change = "—" if p.change is None else (f"{p.change:+.1%}" if math.isfinite(p.change) else "new")
    flag = Text(p.flag, style=_STYLES.get(p.flag, ""))
    if p.note:
        flag.append(f" {notes[p.note]}" if p.flag else notes[p.note], style="dim")
    source = p.source[len(parent):].lstrip("/") if parent else p.source
    return {"commit": p.key, "directory": source, "seeds": f"{p.seeds} ({p.reached})", "median": _fmt(p.median),
            "mean ± std": f"{_fmt(p.mean)} ± {_fmt(p.std)}" if p.by_seed else "—", "change": change, "flag": flag}


def history_layout(series: list, width: int, notes: dict, parent: str) -> tuple[tuple, int]:
    """(the columns left out, the directory column's width) for the history tables of `series`
    in a terminal `width` columns wide: numbers never broken, directories broken after '/', '-',
    '_' or '.', the "mean ± std" column left out when the directories would be narrower than
    their header."""
    from .tables import table_width, text_width

    rows = [_cells(p, notes, parent) for s in series for p in s.points]
    dir_w = text_width([r["directory"] for r in rows] + ["directory"])
    for left_out in ((), ("mean ± std",)):
        fixed = [text_width([c] + [r[c] for r in rows]) for c in COLUMNS if c != "directory" and c not in left_out]
        room = width - table_width(fixed + [0])
        if room >= min(dir_w, 9):  # "directory" whole
            break
    return left_out, max(1, min(dir_w, room))


def print_history(series: list, console, ordering: str, subjects: dict | None = None) -> None:
    """One table per series (commit, directory, seeds (reached target), median, mean ± std,
    change against the previous point, flag and the letter of how it was compared), fitted to
    the console's width; then how each letter compared and each commit's subject, once."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from .stacked import stacked
    from .tables import break_name, footnote_keys, legend_line, print_legend

    subjects = subjects or {}
    points = [p for s in series for p in s.points]
    notes = footnote_keys(p.note for p in points if p.note)
    parent = common_parent([p.source for p in points])
    left_out, dir_w = history_layout(series, console.width, notes, parent)
    explained = ["seeds: trials (that reached the target)",
                 "change: against the point before, over paired seeds",
                 "after each flag, the letter of how it was compared (listed below)"]
    if parent:
        explained.insert(0, f"directories in {parent}/")
    if left_out:
        explained.append(f"left out at this width: {', '.join(left_out)} (a wider COLUMNS or --plot shows the spread)")
    columns = [c for c in COLUMNS if c not in left_out]
    for i, s in enumerate(series):
        table = Table(title=escape(f"{s.problem} · {s.optimizer} · {s.metric} (commits in {ordering} order)"),
                      title_justify="left", caption="; ".join(explained) if i == len(series) - 1 else None,
                      caption_justify="left")
        for col in columns:
            table.add_column(col, justify="left" if col in ("commit", "directory", "flag") else "right",
                             no_wrap=True)
        rows = []
        for p in s.points:
            cells = _cells(p, notes, parent)
            cells["directory"] = "\n".join(break_name(cells["directory"], dir_w, "/-_."))
            rows.append([cells[c] if isinstance(cells[c], Text) else Text(cells[c]) for c in columns])
        if rows:
            table.add_row(*stacked(rows))  # one row of multi-line cells: the same text, rendered faster
        console.print(table)
    print_legend(console, "compared", [legend_line(key, note) for note, key in notes.items()])
    shown = {p.key: subjects[p.commit] for p in points if subjects.get(p.commit)}
    print_legend(console, "commits", [legend_line(key, subject) for key, subject in shown.items()])
