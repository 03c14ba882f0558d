"""`bench show DIR...`: the leaderboard of one or more results directories, as a terminal table
(with the sweeps' and the ranking's summaries; the best ``--rows`` settings of each problem) or
as Markdown, CSV, LaTeX or JSON (every row), optionally restricted with ``--filter`` (the syntax
of ``bench run --filter``). It reads only the trial columns the analysis uses."""
from __future__ import annotations

from .rows import TABLE_ROWS, add_rows_argument, parse_rows

FORMATS = ("table", "markdown", "csv", "latex", "json")
#: Trial columns `bench show` reads: the analysis's, and the linear-solver scores' setup time.
COLUMNS = ("setup_time_s",)


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
    add_rows_argument(p, "settings", "--format csv or json")
    p.set_defaults(func=run_show_command)


def run_show_command(args) -> int:
    """Print the leaderboard (and, as a table, its summary) of the merged results directories."""
    import sys

    from ..analysis import ANALYSIS_COLUMNS, check_results_dirs, leaderboard
    from ..errors import BenchInputError
    from ..results import filter_trials
    from ..store import read_trials
    from .tables import print_leaderboard_and_summary, wide_console

    check_results_dirs(args.dirs)
    rows = parse_rows(getattr(args, "rows", str(TABLE_ROWS)))
    trials = read_trials(*args.dirs, columns=ANALYSIS_COLUMNS + COLUMNS)
    if args.filter:
        trials = filter_trials(trials, args.filter)
        if not len(trials):
            raise BenchInputError(f"--filter {' '.join(args.filter)}: no trial of {', '.join(args.dirs)} matches")
    compaction_hint(args.dirs)
    fmt = getattr(args, "format", "table")
    if fmt == "table":
        print_leaderboard_and_summary(trials, wide_console(), title=f"leaderboard ({', '.join(args.dirs)})",
                                      per_problem=rows)
        from ..solve_profiles import text_section
        sys.stdout.write(text_section(trials))  # "" unless the linear trials cover ≥ 2 systems
        return 0
    from .. import formatting

    writer = {"markdown": formatting.leaderboard_markdown, "csv": formatting.leaderboard_csv,
              "latex": formatting.leaderboard_latex, "json": formatting.leaderboard_json}[fmt]
    sys.stdout.write(writer(leaderboard(trials)))
    return 0


#: From this many per-trial files in a directory on, `bench show` suggests `bench compact`.
HINT_FILES = 5000


def compaction_hint(dirs) -> None:
    """One line on stderr for each directory of at least HINT_FILES per-trial files: reading them
    costs ~2 ms each, a compacted directory reads several times faster (docs/performance.md)."""
    import sys

    from ..store import per_trial_files

    for d in dirs:
        n = per_trial_files(d)
        if n >= HINT_FILES:
            print(f"note: {d} holds {n} per-trial files; `bench compact {d}` merges them, and reading "
                  "the directory is then several times faster", file=sys.stderr)
