"""`bench show DIR...`: the leaderboard of one or more results directories, as a terminal table
(with the sweeps' and the ranking's summaries) or as Markdown, CSV, LaTeX or JSON, optionally
restricted with ``--filter`` (the syntax of ``bench run --filter``)."""
from __future__ import annotations

FORMATS = ("table", "markdown", "csv", "latex", "json")


def add_parser(sub) -> None:
    """Register `bench show`."""
    p = sub.add_parser("show", help="print the leaderboard of one or more results directories")
    p.add_argument("dirs", nargs="+", help="results directories")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (terminal, with summaries; the default), or the leaderboard alone as "
                        "markdown, csv, latex or json (full precision in csv and json)")
    p.add_argument("--filter", action="append", default=[],
                   help="keep trials matching problem=GLOB, optimizer=GLOB, seed=N or a bare GLOB "
                        "(repeatable: all must match)")
    p.set_defaults(func=run_show_command)


def run_show_command(args) -> int:
    """Print the leaderboard (and, as a table, its summary) of the merged results directories."""
    import sys

    from ..analysis import check_results_dirs, leaderboard
    from ..errors import BenchInputError
    from ..results import filter_trials
    from ..store import read_trials
    from .tables import print_leaderboard_and_summary, wide_console

    check_results_dirs(args.dirs)
    trials = read_trials(*args.dirs)
    if args.filter:
        trials = filter_trials(trials, args.filter)
        if not len(trials):
            raise BenchInputError(f"--filter {' '.join(args.filter)}: no trial of {', '.join(args.dirs)} matches")
    fmt = getattr(args, "format", "table")
    if fmt == "table":
        print_leaderboard_and_summary(trials, wide_console(), title=f"leaderboard ({', '.join(args.dirs)})")
        from ..solve_profiles import text_section
        sys.stdout.write(text_section(trials))  # "" unless the linear trials cover ≥ 2 systems
        return 0
    from .. import formatting

    writer = {"markdown": formatting.leaderboard_markdown, "csv": formatting.leaderboard_csv,
              "latex": formatting.leaderboard_latex, "json": formatting.leaderboard_json}[fmt]
    sys.stdout.write(writer(leaderboard(trials)))
    return 0
