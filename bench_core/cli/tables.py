"""Terminal tables shared by commands: the leaderboard (`bench run`, `bench show`), the ranking
and tuning summaries, and the console they print on. Every string from a plugin or a suite is
escaped for rich markup."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..formatting import fmt

STATUS_SHORT = {"target_reached": "target", "ok": "ok", "diverged": "diverged", "stalled": "stalled",
                "error": "error", "timeout": "timeout"}


def wide_console() -> Console:
    """A console for tables: the terminal's width, or 200 columns when output is not a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _interval(pair) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return ""
    return f" [{fmt(pair[0])}, {fmt(pair[1])}]"


def leaderboard_table(rows: list[dict], title: str = "Leaderboard") -> Table:
    """A rich Table of leaderboard rows (from bench_core.analysis.leaderboard): medians over
    seeds, with the bootstrap 95% interval of the time to target in brackets."""
    table = Table(title=escape(title), title_justify="left", show_lines=False,
                  caption=escape("medians over seeds; [bootstrap 95% interval]; time and steps over the "
                                 "seeds that reached the target"), caption_justify="left")
    for name, justify in (("problem", "left"), ("optimizer", "left"), ("status (seeds)", "left"),
                          ("time→target s", "right"), ("steps→target", "right"),
                          ("final metric", "right"), ("train s", "right"), ("steps", "right")):
        table.add_column(name, justify=justify, overflow="fold")
    last_problem = None
    for r in rows:
        if last_problem is not None and r["problem"] != last_problem:
            table.add_section()
        statuses = ", ".join(f"{n} {STATUS_SHORT.get(s, s)}" for s, n in sorted(r["statuses"].items()))
        metric = f"{r['metric']}={fmt(r['final_metric'])}" if r["metric"] else "—"
        ttt = fmt(r["time_to_target_s"])
        if r["time_to_target_s"] is not None:
            ttt += _interval(r.get("time_to_target_ci"))
        table.add_row(escape(r["problem"]) if r["problem"] != last_problem else "", escape(r["optimizer"]),
                      escape(statuses), ttt, fmt(r["steps_to_target"]), escape(metric),
                      fmt(r["train_time_s"]), fmt(r["steps"]))
        last_problem = r["problem"]
    return table


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


def ranking_table(rows: list[dict]) -> Table:
    """A rich Table of bench_core.analysis.ranking rows."""
    table = Table(title="Ranking across problems (performance profile, τ ≤ 4)", title_justify="left",
                  caption="score: area under the Dolan–Moré profile, 1 = fastest to target everywhere",
                  caption_justify="left")
    for name, justify in (("kind", "left"), ("rank", "right"), ("optimizer", "left"), ("score", "right"),
                          ("mean rank", "right"), ("solved", "right")):
        table.add_column(name, justify=justify)
    last = None
    for r in rows:
        if last is not None and r["kind"] != last:
            table.add_section()
        table.add_row(escape(r["kind"]) if r["kind"] != last else "", str(r["rank"]), escape(r["solver"]),
                      f"{r['score']:.3f}", f"{r['mean_rank']:.2f}", f"{r['solved']}/{r['problems']}")
        last = r["kind"]
    return table


def tuning_table(rows: list[dict]) -> Table:
    """A rich Table of bench_core.analysis.tuning_summary rows."""
    table = Table(title="Hyperparameter sweeps: best setting per optimizer", title_justify="left",
                  caption="best: highest success rate, then fastest to target, then best validation "
                          "metric; reach: settings whose median seed reaches the target",
                  caption_justify="left")
    for name, justify in (("problem", "left"), ("optimizer", "left"), ("best setting", "left"),
                          ("chosen on", "right"), ("time→target s", "right"), ("reach", "right")):
        table.add_column(name, justify=justify, overflow="fold")
    for r in rows:
        chosen = f"{r['selection_metric']}={fmt(r['best_value'])}" if r["selection_metric"] else "—"
        table.add_row(escape(r["problem"]), escape(r["optimizer"]), escape(r["best_label"]), escape(chosen),
                      fmt(r["best_time_to_target_s"]), f"{r['settings_reaching_target']}/{r['settings']}")
    return table


def print_summary(trials, console: Console | None = None) -> None:
    """After the leaderboard: the sweeps' best settings when a suite swept hyperparameters, and
    the ranking across problems when some kind has several problems or optimizers."""
    from ..analysis import ranking, tuning_summary

    console = console or wide_console()
    if trials is None or len(trials) == 0:
        return
    tuning = tuning_summary(trials)
    if tuning:
        console.print(tuning_table(tuning))
    rows = ranking(trials)
    kinds = {}
    for r in rows:
        kinds.setdefault(r["kind"], []).append(r)
    shown = [r for k, rs in kinds.items() if len(rs) > 1 for r in rs]
    if shown:
        console.print(ranking_table(shown))


def conditions(trials) -> str:
    """" · threads T · load L–M on C cores": what could change the timings, for a title."""
    if not len(trials) or "threads" not in trials:
        return ""
    threads = sorted({int(t) for t in trials["threads"].dropna()})
    load = trials["load_avg"].dropna() if "load_avg" in trials else []
    cores = sorted({int(c) for c in trials["cpu_count"].dropna()}) if "cpu_count" in trials else []
    text = f" · threads {','.join(map(str, threads))}" if threads else ""
    if len(load):
        text += f" · load {load.min():.1f}–{load.max():.1f}"
        text += f" on {','.join(map(str, cores))} cores" if cores else ""
    return text


def print_leaderboard_and_summary(trials, console: Console, title: str) -> None:
    """The leaderboard of a trials DataFrame, then its summary (`bench run`, `bench show`)."""
    from ..analysis import leaderboard

    print_leaderboard(leaderboard(trials), console, title=f"{title}{conditions(trials)}")
    print_summary(trials, console)
