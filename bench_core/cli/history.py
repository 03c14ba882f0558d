"""`bench history DIR...`: one metric over git commits as a table per trial key, the flagged
points, and an optional SVG plot. Reads only the results (directions from the rows): no torch,
no plugin."""
from __future__ import annotations

import math


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
    p.set_defaults(func=run_history_command)


def run_history_command(args) -> int:
    """Print (and plot) the metric over commits; 1 with --fail-on-worse when a commit is flagged
    worse, else 0."""
    from ..analysis import check_results_dirs
    from ..errors import BenchInputError
    from ..history import build_history, commit_subjects, read_runs, select, write_svg
    from .tables import wide_console

    check_results_dirs(args.dirs)
    if not 0 < args.alpha < 1:
        raise BenchInputError(f"--alpha: expected a level between 0 and 1, got {args.alpha}")
    trials = read_runs(*args.dirs)
    shown = set(select(trials, args.metric, args.problem, args.optimizer)["key_id"])
    # every series takes part in the run effect of times; the globs only choose what is shown
    series, ordering = build_history(trials, args.metric, repo=args.repo, k=args.k, rel_tol=args.rel_tol,
                                     alpha=args.alpha, judge_loaded=args.judge_loaded)
    series = [s for s in series if s.key_id in shown]
    console = wide_console()
    commits = {p.commit for s in series for p in s.points}
    print_history(series, console, ordering, commit_subjects(commits, args.repo))
    flagged = [(s, p) for s in series for p in s.points if p.flag]
    for s, p in flagged:
        console.print(f"{p.key} ({p.source}): {s.problem} {s.optimizer} {s.metric} {p.flag}"
                      + (f" ({p.change:+.1%})" if p.change is not None and math.isfinite(p.change) else "")
                      + (f": {p.note}" if p.note else ""), highlight=False, markup=False)
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


def print_history(series: list, console, ordering: str, subjects: dict | None = None) -> None:
    """One table per series: commit, directory, seeds (reached target), median, mean ± std,
    change against the previous point, flag, how it was compared, commit subject."""
    from rich.markup import escape
    from rich.table import Table

    subjects = subjects or {}
    for s in series:
        table = Table(title=escape(f"{s.problem} · {s.optimizer} · {s.metric} (commits in {ordering} order)"),
                      title_justify="left")
        for col, justify in (("commit", "left"), ("directory", "left"), ("seeds (target)", "right"),
                             ("median", "right"), ("mean ± std", "right"), ("change", "right"),
                             ("flag", "left"), ("compared", "left"), ("subject", "left")):
            table.add_column(col, justify=justify, overflow="fold")
        for p in s.points:
            style = {"worse": "red", "better": "green", "changed": "yellow", "noise": "magenta"}.get(p.flag, "")
            flag = f"[{style}]{p.flag}[/{style}]" if style else ""
            change = "—" if p.change is None else (f"{p.change:+.1%}" if math.isfinite(p.change) else "new")
            table.add_row(p.key, escape(p.source), f"{p.seeds} ({p.reached})", _fmt(p.median),
                          f"{_fmt(p.mean)} ± {_fmt(p.std)}" if p.by_seed else "—", change, flag,
                          escape(p.note), escape(subjects.get(p.commit, "")))
        console.print(table)
