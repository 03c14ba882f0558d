"""`bench report DIR... -o FILE`: write the self-contained HTML report of results directories."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench report`."""
    p = sub.add_parser("report", help="write a self-contained HTML report of results directories")
    p.add_argument("dirs", nargs="+", help="results directories (merged)")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--title", help="title of the page")
    p.set_defaults(func=run_report_command)


def run_report_command(args) -> int:
    """Write the page and say where."""
    from ..analysis import check_results_dirs
    from ..html_report import write_report
    from .tables import wide_console

    check_results_dirs(args.dirs)
    path = write_report(args.dirs, args.output, args.title)
    wide_console().print(f"report: {path}", highlight=False)
    return 0
