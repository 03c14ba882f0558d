"""`bench show DIR...`: the leaderboard of one or more results directories."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench show`."""
    p = sub.add_parser("show", help="print the leaderboard of one or more results directories")
    p.add_argument("dirs", nargs="+", help="results directories")
    p.set_defaults(func=run_show_command)


def run_show_command(args) -> int:
    """Print the leaderboard and summary of the merged results directories."""
    from ..analysis import check_results_dirs
    from ..store import read_trials
    from .tables import print_leaderboard_and_summary, wide_console

    check_results_dirs(args.dirs)
    print_leaderboard_and_summary(read_trials(*args.dirs), wide_console(),
                                  title=f"leaderboard ({', '.join(args.dirs)})")
    return 0
