"""`bench report DIR... -o report.html`: one HTML page per set of results.

The page needs no network: figures are matplotlib's SVG (bench_core.figures) inlined in the page,
styles are inline, and a Content-Security-Policy forbids every fetch and every script except one
small inline script, allowed by its hash, that makes the leaderboard sortable (click a header) and
marks, once laid out, how many figures drew and how many of their texts fall outside their figure.
The page's data are the leaderboard and the trials as CSV, behind download links: inlined in the
page (base64 ``data:`` URIs) while a CSV is at most MAX_INLINE_CSV bytes, so a small study's page
is one self-contained file; a larger CSV is written beside the page (``report_files/trials.csv``
for ``report.html``) and linked from it. Every string that comes from a plugin or a suite (names,
params, error messages, hosts...) is HTML-escaped.

Tables show the best `per_problem` settings of each problem (``bench report --rows``; the
leaderboard's order) and say how many they leave out; the CSVs hold every setting and every trial.

Sections: ranking and performance profiles; the sortable leaderboard with provenance and the CSV
downloads; per problem, the convergence curves of every metric the problem reports (median over
seeds, band = range over seeds; each optimizer's best setting, and every setting when the suite
swept hyperparameters) against steps, the primary metric against time, time-to-target bars with
bootstrap 95% intervals, the final metrics (byte counts in MiB) and the hyperparameter sensitivity
of swept optimizers; the provenance of every run; failed, diverged, stalled and timed-out trials
with their messages.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from . import analysis, figures, scaling_figures, solve_profiles
from .cli.rows import TABLE_ROWS, first_per_problem
from .figures import aggregate_curve, index_curves  # noqa: F401  (public here too, as before)
from .formatting import LEADERBOARD_COLUMNS, fmt, status_counts
from .formatting import leaderboard_csv as _leaderboard_csv
from .store import write_atomically

MAX_FAILURES = 200
#: problems whose sections draw figures, at most (the first in page order); the sections of the
#: others keep their tables and say how to draw their figures (`bench plot`), so that the page of
#: a large study stays readable and quick to write
MAX_FIGURE_PROBLEMS = 6
#: figures a page draws at most: problems in page order draw all their figures while they fit
MAX_FIGURES = 24
#: settings one figure draws at most (curves, time-to-target bars), the best first; its title
#: says how many of how many
MAX_SETTINGS_DRAWN = 20
#: a CSV download of at most this many bytes is inlined in the page (a base64 data: URI); a larger
#: one is written beside the page and linked (a page of tens of MiB opens slowly, and Chromium has
#: long limited URLs to 2 MiB)
MAX_INLINE_CSV = 1 << 20

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1240px;
color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th{background:#f6f6f6}.muted{color:#777}.bad{color:#b00}.good{color:#070}
table.sortable th{cursor:pointer;user-select:none}table.sortable th::after{content:" ↕";color:#aaa}
table.sortable th[aria-sort=ascending]::after{content:" ↑";color:#222}
table.sortable th[aria-sort=descending]::after{content:" ↓";color:#222}
pre{white-space:pre-wrap;margin:0;font-size:12px;max-width:640px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:16px;margin:8px 0}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid #eee}
svg.chart *{stroke-linejoin:round;stroke-linecap:butt}
a.download{margin-right:16px}.scroll{overflow-x:auto;max-width:100%}
"""

# Runs once the page is parsed. (1) Counts the figures whose marks have a non-empty box and the
# texts that lie outside their figure, so a test (or a person) can see that the plots drew and
# that nothing is clipped. (2) Makes every table.sortable sortable: a click (or Enter) on a
# header sorts by that column (numbers by their data-v value, missing values last), again to
# reverse.
_SCRIPT = ("(function(){var s=document.querySelectorAll('svg.chart'),n=0,clip=0;"
           "s.forEach(function(c){var ok=false;c.querySelectorAll('path,use').forEach(function(p){"
           "var b=p.getBBox();if(b.width>0||b.height>0){ok=true;}});if(ok){n++;}"
           "var r=c.getBoundingClientRect();c.querySelectorAll('text').forEach(function(t){"
           "var b=t.getBoundingClientRect();if(b.width>0&&(b.left<r.left-1||b.right>r.right+1||"
           "b.top<r.top-1||b.bottom>r.bottom+1)){clip++;}});});"
           "var d=document.body;d.setAttribute('data-charts',String(s.length));"
           "d.setAttribute('data-charts-drawn',String(n));d.setAttribute('data-text-clipped',String(clip));"
           "function key(td){var v=td.getAttribute('data-v');if(v===''){return [1,0];}"
           "if(v!==null){var f=parseFloat(v);if(!isNaN(f)){return [0,f];}}"
           "return [0,td.textContent.toLowerCase()];}"
           "document.querySelectorAll('table.sortable').forEach(function(tb){var ths=tb.tHead.rows[0].cells;"
           "Array.prototype.forEach.call(ths,function(th,i){th.tabIndex=0;"
           "function sort(){var asc=th.getAttribute('aria-sort')!=='ascending';"
           "Array.prototype.forEach.call(ths,function(h){h.removeAttribute('aria-sort');});"
           "th.setAttribute('aria-sort',asc?'ascending':'descending');var body=tb.tBodies[0];"
           "var rows=Array.prototype.slice.call(body.rows);rows.sort(function(a,b){"
           "var x=key(a.cells[i]),y=key(b.cells[i]);if(x[0]!==y[0]){return x[0]-y[0];}"
           "var c=x[1]<y[1]?-1:(x[1]>y[1]?1:0);return asc?c:-c;});"
           "rows.forEach(function(r){body.appendChild(r);});}"
           "th.addEventListener('click',sort);th.addEventListener('keydown',function(e){"
           "if(e.key==='Enter'){sort();}});});});})();")


def _e(value) -> str:
    """HTML-escaped text of any value."""
    return escape("" if value is None else str(value), quote=True)


def _text(value) -> str:
    """str(value), with None and NaN as the empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def script_hash(script: str) -> str:
    """The CSP source that allows one inline script: 'sha256-<base64 digest>'."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"


def _csp() -> str:
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src {script_hash(_SCRIPT)}; base-uri 'none'; form-action 'none'")


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset(),
           keys: list[list] | None = None, sortable: bool = False) -> str:
    """An HTML table; cells are already-escaped HTML. `keys`: per row, per column, the number a
    sortable table sorts that cell by (None: missing, sorted last; a missing list: by its text)."""
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in header)

    def cell(i, c, key):
        attrs = " class=n" if i in numeric else ""
        if key is not _NOKEY:
            attrs += f' data-v="{"" if key is None or not math.isfinite(key) else repr(float(key))}"'
        return f"<td{attrs}>{c}</td>"
    body = "".join("<tr>" + "".join(cell(i, c, (keys[j][i] if keys and i < len(keys[j]) else _NOKEY))
                                    for i, c in enumerate(r)) + "</tr>" for j, r in enumerate(rows))
    cls = ' class="sortable"' if sortable else ""
    # a wide table scrolls inside its box instead of running off the page
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


_NOKEY = object()  # a cell sorted by its text


def _figure(fig, ids) -> str:
    """A matplotlib figure inlined as SVG (ids unique in the page; the figure is then closed)."""
    if fig is None:
        return ""
    svg = figures.to_svg(fig, f"f{next(ids)}")
    return re.sub(r"\s*<defs>\s*<style[^>]*>[^<]*</style>\s*</defs>", "", svg, count=1)  # in _CSS once


def _with_iqr(median, iqr) -> str:
    if median is None:
        return "—"
    text = _e(fmt(median))
    if iqr and iqr[0] is not None and iqr[1] is not None and iqr[0] != iqr[1]:
        text += f' <span class="muted">IQR {_e(fmt(iqr[0]))}–{_e(fmt(iqr[1]))}</span>'
    return text


def _ci(pair) -> str:
    if not pair or pair[0] is None or pair[1] is None:
        return "—"
    return f"[{_e(fmt(pair[0]))}, {_e(fmt(pair[1]))}]"


# --------------------------------------------------------------------------- sections
def _ranking_section(trials: pd.DataFrame, colours: dict, settings: list[dict], ids) -> str:
    profiles = analysis.performance_profiles(trials, settings=settings)
    ranks = analysis.ranking(trials, profiles=profiles)
    if not profiles:
        return ""
    out = ['<h2 id="ranking">Ranking and performance profiles</h2>',
           '<p class="muted">Cost of an optimizer on a problem: median time to target over seeds, a '
           'seed that missed counting as ∞; a swept optimizer is represented by its best setting. '
           'ρ(τ): fraction of problems solved within τ × the fastest. Score: area under ρ on '
           '[1, 4], normalized (AlgoPerf).</p>']
    out.append(_table(["kind", "rank", "optimizer", "score", "mean rank", "solved"],
                      [[_e(r["kind"]), str(r["rank"]), _e(r["solver"]), f"{r['score']:.3f}",
                        f"{r['mean_rank']:.2f}", f"{r['solved']}/{r['problems']}"] for r in ranks],
                      {1, 3, 4, 5}))
    charts = [_figure(figures.profile_figure([prof], colours), ids) for prof in profiles
              if len(prof["solvers"]) >= 2]
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    return "\n".join(out)


LEADERBOARD_CSV_COLUMNS = LEADERBOARD_COLUMNS


def leaderboard_csv(rows: list[dict]) -> str:
    """The leaderboard (``analysis.leaderboard`` rows) as CSV text, numbers at full precision,
    missing values empty (bench_core.formatting.leaderboard_csv)."""
    return _leaderboard_csv(rows)


#: the CSV downloads of a page (beside it when too large to inline)
CSV_FILES = ("leaderboard.csv", "trials.csv")

TRIALS_CSV_COLUMNS = ("problem", "setting", "optimizer", "hparams", "seed", "status", "steps", "train_time_s",
                      "time_to_target_s", "steps_to_target", "metrics", "error", "trial_id", "git_commit", "host")


_TRIALS_CSV_SOURCES = ("problem_label", "label", "optimizer", "hparams", "seed", "status", "steps", "train_time_s",
                       "time_to_target_s", "steps_to_target", "metrics", "error", "trial_id", "git_commit", "host")


def _csv_bytes(table: pa.Table) -> bytes:
    """`table` as CSV (pyarrow's writer: strings quoted, numbers at full precision, missing empty)."""
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()


def trials_csv_bytes(trials: pd.DataFrame) -> bytes:
    """One line per trial (labelled trials) as UTF-8 CSV (TRIALS_CSV_COLUMNS), by problem, setting
    and seed: status, steps, times (full precision; missing empty), final metrics (JSON), error."""
    columns = {}
    for name, source in zip(TRIALS_CSV_COLUMNS, _TRIALS_CSV_SOURCES):
        if name == "metrics":
            encode = json.JSONEncoder(default=str).encode  # one encoder: json.dumps(default=) makes one a call
            columns[name] = pa.array([encode(m if isinstance(m, dict) else {}) for m in trials[source].tolist()],
                                     pa.string())
        else:
            columns[name] = pa.array(trials[source], from_pandas=True)  # NaN and None: missing
    table = pa.table(columns).sort_by([("problem", "ascending"), ("setting", "ascending"), ("seed", "ascending")])
    return _csv_bytes(table)


def trials_csv(trials: pd.DataFrame) -> str:
    """``trials_csv_bytes`` as text."""
    return trials_csv_bytes(trials).decode("utf-8")


def _download(name: str, data: bytes, what: str, files: dict, files_dir: str) -> str:
    """A link that downloads the CSV `data`: from the page itself (a base64 data: URI, nothing
    fetched) when it is at most MAX_INLINE_CSV bytes, else from ``files_dir/name`` beside the
    page (`data` is then added to `files`, {path relative to the page: bytes}, for the writer)."""
    if len(data) <= MAX_INLINE_CSV:
        href = "data:text/csv;base64," + base64.b64encode(data).decode("ascii")
        return f'<a class="download" download="{_e(name)}" href="{href}">{_e(what)}</a>'
    path = f"{files_dir}/{name}"
    files[path] = data
    return (f'<a class="download" download="{_e(name)}" href="{_e(quote(path))}">{_e(what)}</a>'
            f'<span class="muted">(<code>{_e(path)}</code> beside the page, {len(data) / 2 ** 20:.1f} MiB)</span> ')


def _left_out(what: str, left: int, problems: int | None, per_problem: int | None) -> str:
    """The line under a bounded table (HTML): how many `what` it leaves out, of how many
    `problems` (None: of one problem's section), and where they all are."""
    if not left:
        return ""
    where = f" on {problems} problem(s)" if problems is not None else ""
    best = f"the best {per_problem} of each problem are" if problems is not None else f"the best {per_problem} are"
    return (f'<p class="muted">{left} more {_e(what)}{where} not shown ({best}): <code>bench report '
            '--rows all</code> shows every one; the leaderboard and trials CSVs hold them all.</p>')


def _leaderboard_section(rows: list[dict], trials: pd.DataFrame, per_problem: int | None,
                         files: dict, files_dir: str) -> str:
    """The leaderboard (its best `per_problem` settings per problem) and the CSV downloads."""
    board = leaderboard_csv(rows).encode("utf-8")
    out = ['<h2 id="leaderboard">Leaderboard</h2>',
           '<p class="muted">Medians over seeds with interquartile range; [bootstrap 95% interval, fixed '
           'seed]; time and steps over the seeds that reached the target; success rate with its Wilson '
           '95% interval. Click a column header to sort.</p>',
           "<p>" + _download("leaderboard.csv", board, "Download the leaderboard (CSV)", files, files_dir)
           + _download("trials.csv", trials_csv_bytes(trials), "Download every trial (CSV)", files, files_dir)
           + "</p>"]
    rows, left, cut = first_per_problem(rows, per_problem, lambda r: r["problem"])
    body, keys = [], []
    for r in rows:
        statuses = status_counts(r["statuses"])
        k = r["statuses"].get(analysis.REACHED, 0)
        success = (f"{k}/{r['seeds']} <span class=\"muted\">[{r['success_ci'][0]:.2f}, "
                   f"{r['success_ci'][1]:.2f}]</span>")
        metric = (f"{_e(r['metric'])} = {_with_iqr(r['final_metric'], r['final_metric_iqr'])}"
                  if r["metric"] else "—")
        prov = r.get("provenance", {})
        reached = r["time_to_target_s"] is not None
        body.append([_e(r["problem"]), _e(r["optimizer"]), _e(statuses), success,
                     _with_iqr(r["time_to_target_s"], r["time_to_target_iqr"]),
                     _ci(r["time_to_target_ci"]) if reached else "—",
                     _with_iqr(r["steps_to_target"], r["steps_to_target_iqr"]), metric,
                     _e(fmt(r["train_time_s"])),
                     _e(", ".join(prov.get("commits", []))), _e(", ".join(prov.get("hosts", [])))])
        keys.append([_NOKEY, _NOKEY, _NOKEY, r["success_rate"], r["time_to_target_s"],
                     r["time_to_target_ci"][0] if reached else None, r["steps_to_target"], r["final_metric"],
                     r["train_time_s"], _NOKEY, _NOKEY])
    out.append(_table(["problem", "optimizer", "status", "reached", "time→target s", "95% CI",
                       "steps→target", "final metric", "train s", "commit", "host"], body,
                      {3, 4, 5, 6, 7, 8}, keys=keys, sortable=True))
    out.append(_left_out("setting(s)", left, cut, per_problem))
    return "\n".join(out)


def _sensitivity_groups(psettings: list[dict]) -> dict:
    """{optimizer: its settings} of the optimizers that ran several settings on a problem."""
    groups: dict = {}
    for s in psettings:
        groups.setdefault(s["optimizer"], []).append(s)
    return {o: g for o, g in groups.items() if len(g) > 1}


def _figure_plan(problem: str, sub: pd.DataFrame, curves: dict, prows: list[dict], psettings: list[dict],
                 colours: dict) -> tuple[list[str], list, list]:
    """(the metrics with curves, the builders of the section's figures, of its sensitivity
    figures): functions that draw one figure each (None when there is nothing to draw)."""
    metrics = figures.problem_metrics(sub, curves, problem)
    swept = bool(_sensitivity_groups(psettings))
    kw = {"rows": prows, "settings": psettings, "colours": colours, "max_settings": MAX_SETTINGS_DRAWN}

    def curves_of(m, x, every=False):
        return lambda: figures.curves_figure(sub, curves, [problem], m, x, every_setting=every, **kw)
    plan = []
    for i, m in enumerate(metrics):
        plan.append(curves_of(m, "step"))
        if i == 0:
            plan.append(curves_of(m, "time"))
            if swept:
                plan.append(curves_of(m, "step", every=True))
    if any(r["time_to_target_s"] is not None for r in prows):
        plan.append(lambda: figures.time_figure(prows, [problem], colours, max_settings=MAX_SETTINGS_DRAWN))
    sensitivity = [lambda g=g: figures.sensitivity_figure(g, [problem], colours)
                   for g in _sensitivity_groups(psettings).values()]
    return metrics, plan, sensitivity


def _problem_section(problem: str, sub: pd.DataFrame, curves: dict | None, prows: list[dict],
                     psettings: list[dict], colours: dict, anchor: str, ids, budget: int,
                     dirs: list[str], per_problem: int | None) -> tuple[str, int | None]:
    """(HTML, figures drawn or None when left out) of a problem's section: its trials `sub`, leaderboard rows `prows`
    and settings `psettings`; its figures drawn from the curve index `curves` when there are at
    most `budget` of them, else (or when `curves` is None) left out, naming the command that
    draws them; its tables hold its best `per_problem` settings."""
    targets = json.loads(sub["targets"].iloc[0] or "{}")
    swept = bool(_sensitivity_groups(psettings))
    metrics, plan, sensitivity = (_figure_plan(problem, sub, curves, prows, psettings, colours)
                                  if curves is not None else ([], [], []))  # None: its figures are left out
    drawn = curves is not None and len(plan) + len(sensitivity) <= budget
    head = (f'<h2 id="{anchor}">{_e(problem)}</h2><p class="muted">kind {_e(sub["kind"].iloc[0])}; '
            f'params {_e(sub["problem_params"].iloc[0])}; targets {_e(json.dumps(targets))}; '
            f'budget {_e(sub["budget"].iloc[0])}; ')
    if drawn:
        head += (f'curves of every metric the problem reports ({_e(", ".join(metrics)) or "none"})'
                 + ("; each swept optimizer's best setting, then every setting" if swept else "") + "</p>")
    else:
        command = f"bench plot {' '.join(dirs) or 'DIR'} --problem '{problem}' --kind curves|time|sensitivity"
        head += (f"figures left out (a page draws at most {MAX_FIGURES}, those of its first problems): "
                 f"<code>{_e(command)}</code> draws them.</p>")
    out = [head]
    charts = [_figure(build(), ids) for build in plan] if drawn else []
    if prows and not any(r["time_to_target_s"] is not None for r in prows):
        out.append('<p class="bad">No optimizer reached the target on this problem.</p>')
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    out.append(_final_metrics_table(prows, per_problem))
    sens = [_figure(build(), ids) for build in sensitivity] if drawn else []
    out.append(_sensitivity(psettings, sens, [r["optimizer"] for r in prows], per_problem))
    return "\n".join(out), (len(plan) + len(sensitivity) if drawn else None)


def _final_metrics_table(prows: list[dict], per_problem: int | None) -> str:
    """Every metric the trials recorded: median over seeds with its interquartile range (byte
    counts in MiB), of the first (best) `per_problem` settings of the problem's rows `prows`."""
    names = sorted({n for r in prows for n in r.get("final_metrics", {})})
    if not names:
        return ""
    prows, left, _ = first_per_problem(prows, per_problem, lambda r: r["problem"])

    def cell(r, n):
        f, _ = figures.metric_unit(n)
        st = r["final_metrics"].get(n, {})
        scaled = [None if st.get(k) is None else st[k] * f for k in ("median", "q1", "q3")]
        return _with_iqr(scaled[0], (scaled[1], scaled[2]))
    body = [[_e(r["optimizer"])] + [cell(r, n) for n in names] for r in prows]
    return ('<h3>Final metrics</h3><p class="muted">Median over seeds, interquartile range. '
            'Peak memory on CPU is the process\'s resident set, which other work on the host moves.</p>'
            + _table(["optimizer", *map(figures.metric_axis_label, names)], body, set(range(1, len(names) + 1)))
            + _left_out("setting(s)", left, None, per_problem))


def _sensitivity(psettings: list[dict], charts: list[str], order: list[str], per_problem: int | None) -> str:
    """The sensitivity of a problem's swept optimizers: their figures (`charts`, inline HTML)
    and a table of their settings, grouped by optimizer: every setting, or the first
    `per_problem` of them in the order `order` (the problem's settings, best first)."""
    groups = _sensitivity_groups(psettings)
    if not groups:
        return ""
    rank = {lab: i for i, lab in enumerate(order)}
    swept = sorted((s["label"] for g in groups.values() for s in g), key=lambda lab: rank.get(lab, len(rank)))
    shown = set(swept[:per_problem])  # [:None]: all
    left = len(swept) - len(shown)
    out = ["<h3>Hyperparameter sensitivity</h3>",
           '<p class="muted">Filled dot: the setting\'s median seed reaches the target. The '
           'best setting (★) has the highest success rate, then the shortest time to target, then the '
           'best validation metric.</p>']
    table = []
    for opt, group in groups.items():
        metric = group[0]["selection_metric"]
        for s in (s for s in group if s["label"] in shown):
            table.append([_e(opt), ("★ " if s["best"] else "") + _e(s["label"]),
                          f"{s['success_rate']:.0%}", _e(fmt(s["time_to_target_s"])),
                          f"{_e(metric)} = {_e(fmt(s['selection_value']))}"])
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    out.append(_table(["optimizer", "setting", "reached", "time→target s", "final"], table, {2, 3, 4}))
    out.append(_left_out("swept setting(s)", left, None, per_problem))
    return "\n".join(out)


def _provenance_section(trials: pd.DataFrame) -> str:
    cols = ["suite", "run_id", "git_commit", "git_dirty", "host", "cpu_model", "gpu_model", "device",
            "python_version", "torch_version", "package_versions"]
    rows = []
    counts: dict = {}  # the distinct rows first (a study has few), then their text
    for vals, n in trials.groupby(cols, sort=False, dropna=False).size().items():
        key = tuple(map(_text, vals))
        counts[key] = counts.get(key, 0) + n
    for vals, n in sorted(counts.items()):
        d = dict(zip(cols, vals))
        try:
            versions = ", ".join(f"{k} {v}" for k, v in json.loads(d["package_versions"]).items())
        except (ValueError, AttributeError):
            versions = d["package_versions"]
        commit = d["git_commit"] + (" (dirty)" if d["git_dirty"] == "True" else "")
        gpu = d["gpu_model"] or "—"
        rows.append([_e(d["suite"]), _e(d["run_id"]), _e(commit), _e(d["host"]), _e(d["cpu_model"]),
                     _e(gpu), _e(d["device"]), _e(f"python {d['python_version']}, torch {d['torch_version']}"),
                     f"<pre>{_e(versions)}</pre>", str(n)])
    return ('<h2 id="provenance">Provenance</h2>'
            + _table(["suite", "run", "commit", "host", "CPU", "GPU", "device", "python / torch",
                      "package versions", "trials"], rows, {9}))


def _failures_section(trials: pd.DataFrame) -> str:
    bad = trials[trials["status"].isin(analysis.FAILED)]
    out = ['<h2 id="failures">Failed, diverged, stalled and timed-out trials</h2>']
    if not len(bad):
        out.append('<p class="good">None: every trial finished (reaching its target or its step budget).</p>')
        return "\n".join(out)
    rows = []
    for _, r in bad.sort_values(["problem_label", "label", "seed"]).head(MAX_FAILURES).iterrows():
        msg = r["error"] if isinstance(r["error"], str) else ""
        if isinstance(r["warnings"], str) and r["warnings"]:
            msg += ("\n" if msg else "") + "warnings: " + r["warnings"]
        rows.append([_e(r["problem_label"]), _e(r["label"]), _e(r["seed"]),
                     f'<span class="bad">{_e(r["status"])}</span>', _e(r["steps"]), f"<pre>{_e(msg)}</pre>"])
    out.append(_table(["problem", "optimizer", "seed", "status", "steps", "message"], rows, {2, 4}))
    if len(bad) > MAX_FAILURES:
        out.append(f'<p class="muted">… and {len(bad) - MAX_FAILURES} more.</p>')
    return "\n".join(out)


# --------------------------------------------------------------------------- page
def _drawn_keys(sub: pd.DataFrame, problem: str, rows: list[dict], settings: list[dict]) -> set:
    """The curve keys of the trials whose curves a problem's figures draw: those of the first
    MAX_SETTINGS_DRAWN settings of each curves figure (best per optimizer, every setting)."""
    labels = {lab for every in (False, True)
              for lab in figures.curve_labels(sub, problem, every, rows, settings)[:MAX_SETTINGS_DRAWN]}
    return set(sub.loc[sub["label"].isin(labels), "curve_key"])


def render_report(trials: pd.DataFrame, curves, sources: list[str] | None = None,
                  title: str = "bench report", per_problem: int | None = TABLE_ROWS) -> str:
    """The page of ``build_report`` (without the files a large study's page links beside it)."""
    return build_report(trials, curves, sources, title, per_problem)[0]


def build_report(trials: pd.DataFrame, curves, sources: list[str] | None = None,
                 title: str = "bench report", per_problem: int | None = TABLE_ROWS,
                 files_dir: str = "report_files") -> tuple[str, dict[str, bytes]]:
    """(the whole page as a string, the files it links to beside it: {path relative to the
    page, under `files_dir`: bytes}, empty unless a CSV is over MAX_INLINE_CSV bytes), from a
    trials DataFrame (``bench_core.store``) and the curve points: a DataFrame, or a function that
    reads the points of a set of ``curve_key``s (None: every curve) so that a large study reads
    only the curves its figures draw. When trials and points carry a ``source`` column (which
    results directory a row came from), a trial that ran in several directories keeps one curve
    per directory. Tables show the best `per_problem` settings of each problem (None: all)."""
    import itertools

    sources = sources or []
    files: dict[str, bytes] = {}
    read = curves if callable(curves) else None
    trials = figures.label_trials(trials)  # display labels unique per key and code, as the tables use
    rows = analysis.leaderboard(trials)
    settings = analysis.settings_summary(trials)
    colours = figures.colour_map(trials)  # one colour per optimizer, shared by its settings
    ids = itertools.count()
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    drawn = problems[:MAX_FIGURE_PROBLEMS]
    by_problem = dict(tuple(trials.groupby("problem_label", sort=False))) if len(trials) else {}
    rows_of = {p: [] for p in problems}
    for r in rows:
        rows_of[r["problem"]].append(r)
    settings_of: dict = {}
    for st in settings:
        settings_of.setdefault(st["problem"], []).append(st)
    keys = set().union(*(_drawn_keys(by_problem[p], p, rows_of[p], settings_of.get(p, [])) for p in drawn))
    points = read(keys) if read is not None else curves
    if points is not None and len(points):
        points = figures.with_curve_key(points)
        curve_index = figures.index_curves(points[points["curve_key"].isin(keys)])
    else:
        curve_index = {}
    anchors = {p: f"p{i}" for i, p in enumerate(problems)}
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = " · ".join(['<a href="#ranking">ranking</a>', '<a href="#leaderboard">leaderboard</a>']
                     + [f'<a href="#{anchors[p]}">{_e(p)}</a>' for p in problems]
                     + ['<a href="#provenance">provenance</a>', '<a href="#failures">failures</a>'])
    status_counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_csp())}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p>Results: {", ".join(f"<code>{_e(s)}</code>" for s in sources) or "—"}. '
        f'{len(trials)} trials ({_e(", ".join(f"{n} {s}" for s, n in sorted(status_counts.items())))}), '
        f'{len(problems)} problems. Generated {generated}.</p>',
        f"<p>{nav}</p>",
    ]
    limits = len(parts)  # where the line on what the figures leave out goes, once known
    if not rows:
        parts.append("<p>No trials.</p>")
    else:
        parts.append(_ranking_section(trials, colours, settings, ids))
        parts.append(solve_profiles.html_section(trials, lambda fig: _figure(fig, ids)))  # "" unless ≥ 2 linear systems
        if scaling_figures.has_size_sweep(trials):  # only then the scaling section needs every curve
            every = read(None) if read is not None else curves
            parts.append(scaling_figures.report_section(trials, every, lambda fig: _figure(fig, ids)))
        parts.append(_leaderboard_section(rows, trials, per_problem, files, files_dir))
        budget = MAX_FIGURES - sum(part.count('<svg class="chart"') for part in parts)
        shown = 0
        for p in problems:
            html, n = _problem_section(p, by_problem[p], curve_index if p in drawn else None, rows_of[p],
                                       settings_of.get(p, []), colours, anchors[p], ids, budget, sources,
                                       per_problem)
            parts.append(html)
            shown += n is not None
            budget = 0 if n is None else budget - n  # figures for the first problems only
        if shown < len(problems):
            parts.insert(limits, f'<p class="muted">Figures of the first {shown} of {len(problems)} problems: a page '
                         f'draws at most {MAX_FIGURES} figures (of the first {MAX_FIGURE_PROBLEMS} problems at most) '
                         f'and at most {MAX_SETTINGS_DRAWN} settings in one figure, the best first. The tables '
                         'cover every problem; each other problem\'s section names the <code>bench plot</code> '
                         'command that draws its figures.</p>')
        parts.append(_provenance_section(trials))
        parts.append(_failures_section(trials))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts), files


def _curves_reader(dirs: list[str]):
    """A function of a set of curve keys (``source:trial_id``; None: all) that reads those
    curves of results directories (``source`` = the directory's index), as ``render_report`` asks."""
    from .store import read_curves

    def read(keys):
        frames = []
        for i, d in enumerate(dirs):
            ids = None if keys is None else {k.split(":", 1)[1] for k in keys if k.startswith(f"{i}:")}
            if ids is None or ids:
                frames.append(read_curves(d, trial_ids=ids).assign(source=i))
        return pd.concat(frames, ignore_index=True) if frames else None
    return read


def files_dir_of(out: str | Path) -> Path:
    """The folder beside the page `out` that holds the files it links (``report_files`` for
    ``report.html``)."""
    out = Path(out)
    return out.with_name(f"{out.stem}_files")


def write_report(dirs: list[str], out: str | Path, title: str | None = None,
                 per_problem: int | None = TABLE_ROWS) -> Path:
    """Read results directories and write the report page to `out` (the curves of the settings
    its figures draw only), and the CSVs too large to inline into ``files_dir_of(out)``: each
    file atomically, the files before the page, so the page never links a partial file; a CSV
    the new page inlines is removed from that folder afterwards (an older page's, now stale)."""
    from .store import read_trials

    out = Path(out)
    folder = files_dir_of(out)
    trials = pd.concat([read_trials(d).assign(source=i) for i, d in enumerate(dirs)], ignore_index=True)
    html, files = build_report(trials, _curves_reader(list(map(str, dirs))), [str(d) for d in dirs],
                               title or "bench report", per_problem, folder.name)
    for rel, data in files.items():
        write_atomically(out.parent / rel, lambda tmp, data=data: Path(tmp).write_bytes(data))
    write_atomically(out, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))
    for name in CSV_FILES:
        if f"{folder.name}/{name}" not in files:
            (folder / name).unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return out
