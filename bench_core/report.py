"""Terminal output: the leaderboard table (shared by `bench run` and `bench show`)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

STATUS_SHORT = {"target_reached": "target", "ok": "ok", "diverged": "diverged",
                "error": "error", "timeout": "timeout"}


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e7:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def leaderboard_table(rows: list[dict], title: str = "Leaderboard") -> Table:
    """A rich Table of leaderboard rows (from bench_core.analysis.leaderboard)."""
    table = Table(title=title, title_justify="left", show_lines=False)
    for name, justify in (("problem", "left"), ("optimizer", "left"), ("status (seeds)", "left"),
                          ("time→target s", "right"), ("steps→target", "right"),
                          ("final metric", "right"), ("train s", "right"), ("steps", "right")):
        table.add_column(name, justify=justify, overflow="fold")
    last_problem = None
    for r in rows:
        if last_problem is not None and r["problem"] != last_problem:
            table.add_section()
        statuses = ", ".join(f"{n} {STATUS_SHORT.get(s, s)}" for s, n in sorted(r["statuses"].items()))
        metric = f"{r['metric']}={_fmt(r['final_metric'])}" if r["metric"] else "—"
        table.add_row(r["problem"] if r["problem"] != last_problem else "", r["optimizer"], statuses,
                      _fmt(r["time_to_target_s"]), _fmt(r["steps_to_target"]), metric,
                      _fmt(r["train_time_s"]), _fmt(r["steps"]))
        last_problem = r["problem"]
    return table


def wide_console() -> Console:
    """A console for tables: the terminal's width, or 200 columns when output is not a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def print_leaderboard(rows: list[dict], console: Console | None = None, title: str = "Leaderboard") -> None:
    """Print the leaderboard, then one line per distinct error message."""
    console = console or wide_console()
    if not rows:
        console.print("no trials")
        return
    console.print(leaderboard_table(rows, title))
    errors = sorted({(r["problem"], r["optimizer"], e) for r in rows for e in r["errors"]})
    for problem, opt, err in errors[:20]:
        console.print(f"[red]{escape(problem)} {escape(opt)}:[/red] {escape(err)}", highlight=False)
