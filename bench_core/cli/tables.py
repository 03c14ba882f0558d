"""Terminal tables shared by commands: the leaderboard (`bench run`, `bench show`), the ranking
and tuning summaries, and the console they print on. Every string from a plugin or a suite is
escaped for rich markup."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..formatting import fmt, status_counts

#: The width of piped output when ``COLUMNS`` is not set (a file or a pipe does not wrap lines).
PIPED_WIDTH = 200


def wide_console() -> Console:
    """A console for tables: ``COLUMNS`` when set (in a terminal or piped), else the terminal's
    width, else PIPED_WIDTH when output is not a terminal."""
    import os

    console = Console()
    if console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return console
    return Console(width=PIPED_WIDTH)


def setting_keys(rows: list[dict]) -> dict[str, str]:
    """Display keys for the settings of leaderboard rows: full label -> ``#n``, numbered in the
    labels' sorted order; a row whose label is its bare optimizer name needs none."""
    labels = sorted({r["optimizer"] for r in rows if r["optimizer"] != r.get("optimizer_name")})
    return {label: f"#{i}" for i, label in enumerate(labels, 1)}


def display_name(row: dict, keys: dict[str, str]) -> str:
    """The short name a table shows for a leaderboard row: optimizer name plus its settings key."""
    key = keys.get(row["optimizer"])
    return f"{row.get('optimizer_name') or row['optimizer']} {key}" if key else row["optimizer"]


def break_name(name: str, width: int, seps: str = "._") -> list[str]:
    """`name` in pieces of at most `width` characters, broken after one of `seps` where possible
    (a space where broken is dropped)."""
    pieces, rest = [], name
    while len(rest) > width:
        cut = max(rest.rfind(s, 0, width) for s in seps)
        cut = cut + 1 if cut > 0 else width
        pieces.append(rest[:cut].rstrip(" "))
        rest = rest[cut:].lstrip(" ")
    return pieces + [rest] if rest else pieces


def stacked_cells(pieces: list[str], n_rows: int) -> list[str]:
    """`pieces` over the cells of `n_rows` consecutive rows, one per row, the last row holding
    what remains (one piece a line)."""
    cells = pieces[:n_rows - 1] + ["\n".join(pieces[n_rows - 1:])]
    return cells + [""] * (n_rows - len(cells))


def table_width(widths: list[int]) -> int:
    """How wide a rich Table in the default box is with columns `widths` characters wide: each
    column's cells, a space either side and a border."""
    return sum(widths) + 3 * len(widths) + 1


def text_width(cells) -> int:
    """The widest line among `cells` (str or rich Text)."""
    return max([len(line) for c in cells for line in (c.plain if isinstance(c, Text) else c).split("\n")],
               default=0)


def footnote_keys(texts) -> dict[str, str]:
    """Letters for texts that repeat down a table, in order of first appearance: text -> a, b, …,
    z, aa, ab, …"""
    keys: dict[str, str] = {}
    for text in texts:
        if text not in keys:
            n, key = len(keys), ""
            while True:
                key = chr(ord("a") + n % 26) + key
                n = n // 26 - 1
                if n < 0:
                    break
            keys[text] = key
    return keys


def print_legend(console: Console, title: str, lines: list[Text]) -> None:
    """`title:` then one line per entry (each from ``legend_line``), under a table."""
    if lines:
        console.print(f"{title}:", highlight=False)
        for line in lines:
            console.print(line, highlight=False)


def legend_line(key: str, text: str) -> Text:
    """``key  text``: one entry of a legend under a table, the key in bold."""
    return Text.assemble((key, "bold"), "  ", text)


def _problem_cells(problem: str, metric: str | None, n_rows: int, width: int) -> list[str]:
    """The problem column's cells for a problem's `n_rows` rows: its name (broken to `width`)
    then its metric in parentheses, one piece per row, the last row holding what remains."""
    return stacked_cells(break_name(problem, width) + ([f"({metric})"] if metric else []), n_rows)


def _ci_text(pair) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return ""
    return f"[{fmt(pair[0])}, {fmt(pair[1])}]"


LEADERBOARD_CAPTION = ("medians over seeds{ci}; time s and steps: to the target, over the seeds "
                       "that reached it, else (dim) the whole run's; final: the metric named under "
                       "the problem")


def leaderboard_table(rows: list[dict], title: str = "Leaderboard", width: int = 200,
                      keys: dict[str, str] | None = None) -> Table:
    """A rich Table of leaderboard rows (from bench_core.analysis.leaderboard) laid out for a
    terminal `width` columns wide: one short name per setting (optimizer name plus the key of
    `keys`, from ``setting_keys``), the problem's name broken over its rows with the metric
    under it, numbers never wrapped; the bootstrap 95% interval of the time to target only
    where it fits."""
    keys = setting_keys(rows) if keys is None else keys
    for with_ci in (True, False):
        cells = _leaderboard_cells(rows, keys, with_ci)
        others = [max([len(h)] + [len(c[i].plain) for c in cells]) for i, h in enumerate(_HEADERS[1:], 1)]
        problem_width = max(10, min(28, width - table_width(others + [0])))
        if not with_ci or problem_width >= min(20, max(len(r["problem"]) for r in rows)):
            break
    caption = LEADERBOARD_CAPTION.format(ci=" [bootstrap 95% interval]" if with_ci else "")
    table = Table(title=escape(title), title_justify="left", show_lines=False,
                  caption=escape(caption), caption_justify="left")
    for name in _HEADERS:
        table.add_column(name, justify="left" if name in ("problem", "optimizer", "seeds") else "right",
                         no_wrap=name != "optimizer", overflow="fold")
    start = 0
    for i, (problem, prows) in enumerate(_by_problem(rows).items()):
        if i:
            table.add_section()
        metrics = {r["metric"] for r in prows}
        names = _problem_cells(problem, next(iter(metrics)) if len(metrics) == 1 else None, len(prows),
                               problem_width)
        for name, row_cells in zip(names, cells[start:start + len(prows)]):
            table.add_row(Text(name), *row_cells[1:])
        start += len(prows)
    return table


_HEADERS = ("problem", "optimizer", "seeds", "time s", "steps", "final")


def _by_problem(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r["problem"], []).append(r)
    return out


def _leaderboard_cells(rows: list[dict], keys: dict[str, str], with_ci: bool) -> list[list[Text]]:
    """The cells of each row, in the order of ``_by_problem`` (the problem cell left empty)."""
    out = []
    for prows in _by_problem(rows).values():
        shared = len({r["metric"] for r in prows}) == 1
        for r in prows:
            statuses = status_counts(r["statuses"])
            reached = r["time_to_target_s"] is not None
            style = "" if reached else "dim"
            time = fmt(r["time_to_target_s"] if reached else r["train_time_s"])
            if reached and with_ci and _ci_text(r.get("time_to_target_ci")):
                time += " " + _ci_text(r.get("time_to_target_ci"))
            steps = fmt(r["steps_to_target"] if reached else r["steps"])
            final = fmt(r["final_metric"]) if r["metric"] else "—"
            if r["metric"] and not shared:
                final = f"{r['metric']}={final}"
            out.append([Text(""), Text(display_name(r, keys)), Text(statuses), Text(time, style=style),
                        Text(steps, style=style), Text(final)])
    return out


def settings_legend(keys: dict[str, str]) -> list[Text]:
    """One line per settings key: ``#n  optimizer(hparams)``, the whole label as stored."""
    return [legend_line(key, label) for label, key in sorted(keys.items(), key=lambda kv: int(kv[1][1:]))]


def best_per_problem(rows: list[dict], per_problem: int | None) -> tuple[list[dict], int, int]:
    """(the first `per_problem` rows of each problem, rows left out, problems with rows left
    out); every row when `per_problem` is None. Leaderboard rows come best first per problem."""
    from .rows import first_per_problem

    return first_per_problem(rows, per_problem, lambda r: r["problem"])


def print_left_out(console: Console, what: str, left: int, problems: int, per_problem: int) -> None:
    """One line under a bounded table: how many rows it leaves out and how to see them all."""
    from .rows import left_out_line

    line = left_out_line(what, left, problems, per_problem, "bench show DIR --format csv or json")
    if line:
        console.print(line, highlight=False)


def print_leaderboard(rows: list[dict], console: Console | None = None,
                      title: str = "Leaderboard", per_problem: int | None = None,
                      left_out: tuple[int, int] | None = None) -> dict[str, str]:
    """Print the leaderboard fitted to the console's width (the best `per_problem` settings of
    each problem when given, with a line saying how many are left out), the settings behind
    its short names, then one line per distinct error message; return the settings keys
    (label -> ``#n``). `left_out`: (settings, problems) left out when `rows` are already the
    first `per_problem` of each problem (``leaderboard(trials, per_problem)``)."""
    console = console or wide_console()
    if not rows:
        console.print("no trials")
        return {}
    if left_out is None:
        rows, left, problems = best_per_problem(rows, per_problem)
    else:
        left, problems = left_out
    keys = setting_keys(rows)
    console.print(leaderboard_table(rows, title, width=console.width, keys=keys))
    print_left_out(console, "setting(s)", left, problems, per_problem)
    print_legend(console, "settings", settings_legend(keys))
    errors = sorted({(r["problem"], r["optimizer"], e) for r in rows for e in r["errors"]})
    for problem, opt, err in errors[:20]:
        console.print(Text.assemble((f"{problem} {opt}:", "red"), " ", err), highlight=False)
    return keys


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


def tuning_table(rows: list[dict], keys: dict[str, str] | None = None, width: int = 200) -> Table:
    """A rich Table of bench_core.analysis.tuning_summary rows for a terminal `width` columns
    wide: the best setting as its settings key (from the leaderboard's ``setting_keys``; the
    whole label where it has none), numbers never wrapped, problem names broken after '.'."""
    keys = keys or {}
    table = Table(title="Hyperparameter sweeps: best setting per optimizer", title_justify="left",
                  caption="best: highest success rate, then fastest to target, then best validation "
                          "metric (chosen on); reach: settings whose median seed reaches the target",
                  caption_justify="left")
    for name in ("problem", "optimizer", "best", "chosen on", "time s", "reach"):
        table.add_column(name, justify="left" if name in ("problem", "optimizer", "best") else "right",
                         no_wrap=name not in ("problem", "best"), overflow="fold")
    problem_width = max(10, min(28, width // 4))
    for r in rows:
        chosen = f"{r['selection_metric']}={fmt(r['best_value'])}" if r["selection_metric"] else "—"
        table.add_row(Text("\n".join(break_name(r["problem"], problem_width))), Text(r["optimizer"]),
                      Text(keys.get(r["best_label"], r["best_label"])), Text(chosen),
                      Text(fmt(r["best_time_to_target_s"])),
                      Text(f"{r['settings_reaching_target']}/{r['settings']}"))
    return table


def print_summary(trials, console: Console | None = None, keys: dict[str, str] | None = None,
                  per_problem: int | None = None) -> None:
    """After the leaderboard: the sweeps' best settings when a suite swept hyperparameters (as
    the leaderboard's settings keys `keys`; the first `per_problem` optimizers of each problem
    when given), and the ranking across problems when some kind has several problems or
    optimizers. The settings summary is computed once for both."""
    from ..analysis import (
        performance_profiles,
        ranking,
        settings_summary,
        tuning_summary,
    )

    console = console or wide_console()
    if trials is None or len(trials) == 0:
        return
    settings = settings_summary(trials)
    tuning = tuning_summary(trials, settings)
    if tuning:
        shown, left, problems = best_per_problem(tuning, per_problem)
        console.print(tuning_table(shown, keys, console.width))
        print_left_out(console, "optimizer(s)", left, problems, per_problem)
    rows = ranking(trials, profiles=performance_profiles(trials, settings=settings))
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


def print_leaderboard_and_summary(trials, console: Console, title: str, per_problem: int | None = None) -> None:
    """The leaderboard of a trials DataFrame, then its summary (`bench run`, `bench show`); with
    `per_problem`, the tables show the best that many rows of each problem."""
    from ..analysis import leaderboard, setting_labels

    trials = setting_labels(trials)  # once, for the leaderboard and the summary
    keys = print_leaderboard(leaderboard(trials, per_problem), console, title=f"{title}{conditions(trials)}",
                             per_problem=per_problem, left_out=settings_left_out(trials, per_problem))
    print_summary(trials, console, keys, per_problem)


def settings_left_out(trials, per_problem: int | None) -> tuple[int, int]:
    """(settings, problems) a leaderboard of the first `per_problem` settings of each problem
    leaves out, from labelled trials (``analysis.setting_labels``)."""
    if per_problem is None or not len(trials):
        return 0, 0
    n = trials.drop_duplicates(["problem_label", "label"])["problem_label"].value_counts()
    over = n[n > per_problem]
    return int((over - per_problem).sum()), len(over)
