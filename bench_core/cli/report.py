"""`bench report DIR... -o FILE [--rows N|all]`: write the HTML report of results directories
(one self-contained page; a large study's CSVs beside it, in FILE's ``<stem>_files`` folder)."""
from __future__ import annotations

from .rows import TABLE_ROWS


def add_parser(sub) -> None:
    """Register `bench report`."""
    p = sub.add_parser("report", help="write an HTML report of results directories (self-contained unless large)")
    p.add_argument("dirs", nargs="+", help="results directories (merged)")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--title", help="title of the page")
    p.add_argument("--rows", default=str(TABLE_ROWS), metavar="N|all",
                   help=f"the page's tables show the best N settings of each problem (default {TABLE_ROWS}) and "
                        "say how many they leave out; 'all' shows every one (the page's CSVs always hold every row)")
    p.set_defaults(func=run_report_command)


def run_report_command(args) -> int:
    """Write the page (and the files it links beside it, if any) and say where."""
    from ..analysis import check_results_dirs
    from ..html_report import write_report
    from .rows import parse_rows
    from .tables import wide_console

    per_problem = parse_rows(args.rows)
    check_results_dirs(args.dirs)
    path = write_report(args.dirs, args.output, args.title, per_problem)
    wide_console().print(f"report: {path}", highlight=False)
    return 0
