"""`bench history DIR...`: one metric over git commits as a table per (problem, optimizer), the
flagged commits, and an optional SVG plot."""
from __future__ import annotations

import math


def add_parser(sub) -> None:
    """Register `bench history`."""
    p = sub.add_parser("history", help="a metric over git commits from results dirs of several commits")
    p.add_argument("dirs", nargs="+", help="results directories (from runs at different commits)")
    p.add_argument("--metric", default="final",
                   help="final (the target metric's final value; default), time_to_target_s, "
                        "steps_to_target, train_time_s, steps, or a metric name such as loss")
    p.add_argument("--problem", help="only problems matching this glob")
    p.add_argument("--optimizer", help="only optimizers matching this glob")
    p.add_argument("--plot", help="write an SVG plot of the history to this file")
    p.add_argument("--k", type=float, default=3.0, help="noise threshold in standard errors (default 3)")
    p.add_argument("--rel-tol", type=float, default=0.01, help="smallest relative change flagged (default 0.01)")
    p.add_argument("--repo", default=".", help="git repository that orders the commits (default: .)")
    p.add_argument("--fail-on-worse", action="store_true", help="exit 1 when a commit is flagged worse")
    p.set_defaults(func=run_history_command)


def run_history_command(args) -> int:
    """Print (and plot) the metric over commits; 1 with --fail-on-worse when a commit is flagged
    worse, else 0."""
    from ..analysis import check_results_dirs
    from ..history import build_history, commit_subjects, select, write_svg
    from ..registry import get_registry
    from ..store import read_trials
    from .tables import wide_console

    check_results_dirs(args.dirs)
    df = select(read_trials(*args.dirs), args.metric, args.problem, args.optimizer)
    series, ordering = build_history(df, args.metric, repo=args.repo, k=args.k, rel_tol=args.rel_tol,
                                     higher_is_better=get_registry().higher_is_better)
    console = wide_console()
    commits = {p.commit for s in series for p in s.points}
    print_history(series, console, ordering, commit_subjects(commits, args.repo))
    flagged = [(s, p) for s in series for p in s.points if p.flag]
    for s, p in flagged:
        console.print(f"{p.key}: {s.problem} {s.optimizer} {s.metric} {p.flag}"
                      + (f" ({p.change:+.1%})" if p.change is not None and math.isfinite(p.change) else ""),
                      highlight=False, markup=False)
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
    """One table per series: commit, seeds (reached target), median, mean ± std, change, flag."""
    from rich.markup import escape
    from rich.table import Table

    subjects = subjects or {}
    for s in series:
        table = Table(title=f"{s.problem} · {s.optimizer} · {s.metric} (commits in {ordering} order)",
                      title_justify="left")
        for col, justify in (("commit", "left"), ("seeds (target)", "right"), ("median", "right"),
                             ("mean ± std", "right"), ("change", "right"), ("flag", "left"),
                             ("subject", "left")):
            table.add_column(col, justify=justify, overflow="fold")
        for p in s.points:
            style = {"worse": "red", "better": "green", "changed": "yellow"}.get(p.flag, "")
            flag = f"[{style}]{p.flag}[/{style}]" if style else ""
            change = "—" if p.change is None else (f"{p.change:+.1%}" if math.isfinite(p.change) else "new")
            table.add_row(p.key, f"{p.seeds} ({p.reached})", _fmt(p.median),
                          f"{_fmt(p.mean)} ± {_fmt(p.std)}" if p.values else "—", change, flag,
                          escape(subjects.get(p.commit, "")))
        console.print(table)
