"""``--rows N|all`` of the analysis commands (`bench show`, `compare`, `history`): their terminal
tables show the first N settings (keys, series) of each problem and say how many they leave out;
the machine formats always hold every row. Imports nothing heavy (the parser is built at start)."""
from __future__ import annotations

#: Settings (keys, series) per problem a terminal table shows unless --rows says otherwise.
TABLE_ROWS = 10


def add_rows_argument(parser, what: str, data: str | None = None) -> None:
    """Register ``--rows`` on `parser`: `what` the table lists per problem (e.g. "settings"),
    `data` the option that gives every row as data (e.g. "--format csv or json"), if any."""
    parser.add_argument("--rows", default=str(TABLE_ROWS), metavar="N|all",
                        help=f"the terminal tables show the first N {what} of each problem (default "
                             f"{TABLE_ROWS}) and say how many they leave out; 'all' shows every one"
                             + (f" ({data} always holds every row)" if data else ""))


def parse_rows(text: str) -> int | None:
    """--rows: a positive count, or None for 'all'; BenchInputError otherwise."""
    from ..errors import BenchInputError

    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise BenchInputError(f"--rows: expected a positive number or 'all', got {text!r}")
    return int(text)


def first_per_problem(items: list, per_problem: int | None, problem, unit=None) -> tuple[list, int, int]:
    """(the items of the first `per_problem` units of each problem, units left out, problems with
    units left out); every item when `per_problem` is None. ``problem(item)`` names an item's
    problem, ``unit(item)`` its unit (a setting, a key; default: the item itself), consecutive
    items of one unit staying together."""
    if per_problem is None:
        return items, 0, 0
    shown, units, left, cut = [], {}, set(), set()
    for item in items:
        p, u = problem(item), (unit(item) if unit else id(item))
        units.setdefault(p, {})
        if u not in units[p]:
            units[p][u] = len(units[p])
        if units[p][u] < per_problem:
            shown.append(item)
        else:
            left.add((p, u))
            cut.add(p)
    return shown, len(left), len(cut)


def left_out_line(what: str, left: int, problems: int, per_problem: int, data: str | None = None) -> str | None:
    """The line under a bounded table: how many `what` it leaves out and how to see them all."""
    if not left:
        return None
    return (f"{left} more {what} on {problems} problem(s) not shown (the first {per_problem} per problem "
            f"are): --rows all shows every one" + (f", {data} gives them as data" if data else ""))
