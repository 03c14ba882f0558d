"""`bench sql DIR... "select ..."`: a SQL query (DuckDB) over results directories.

The query sees two tables (bench_core.results.connect): ``trials``, one row per trial with every
column of the trial schema (``metrics`` and ``counters`` as MAPs: ``metrics['loss']``), and
``curves``, one row per curve point with its trial's problem, optimizer, hparams, label, seed,
dtype, status, key and code ids. The result prints as a table, or as CSV or JSON.
"""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench sql`."""
    p = sub.add_parser("sql", help="query results directories with SQL (DuckDB): tables trials and curves")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="results directories (or a results root)")
    p.add_argument("query", help='a SQL query, e.g. "select optimizer, median(time_to_target_s) '
                                 'from trials group by 1"')
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (the default), csv or json (records)")
    p.set_defaults(func=run_sql_command)


def run_sql_command(args) -> int:
    """Run the query over the directories' trials and curves and print its result."""
    import sys

    import duckdb

    from ..errors import BenchInputError
    from ..results import connect

    con = connect(*args.dirs)
    try:
        result = con.sql(args.query)
    except duckdb.Error as exc:
        raise BenchInputError(f"query: {str(exc).splitlines()[0]}") from None
    if result is None:
        return 0  # a statement without a result
    df = result.df()
    if args.format == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif args.format == "json":
        sys.stdout.write(df.to_json(orient="records", indent=1) + "\n")
    else:
        _print_table(df)
    return 0


def _print_table(df) -> None:
    """The result as a terminal table: numbers right-aligned, 6 significant digits, never wrapped."""
    from rich.table import Table
    from rich.text import Text

    from ..formatting import fmt
    from .tables import wide_console

    table = Table(caption=f"{len(df)} row(s)", caption_justify="left")
    numeric = [df[c].dtype.kind in "iuf" for c in df.columns]
    for c, num in zip(df.columns, numeric):
        table.add_column(str(c), justify="right" if num else "left", no_wrap=num, overflow="fold")
    for row in df.itertuples(index=False):
        table.add_row(*(Text(fmt(v, 6) if num else str(v)) for v, num in zip(row, numeric)))
    wide_console().print(table)
