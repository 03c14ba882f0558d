"""`bench report DIR... -o report.html`: one self-contained HTML page per set of results.

The page needs no network: charts are inline SVG drawn by bench_core.svgplot, styles are inline,
and a Content-Security-Policy forbids every fetch and every script except the one small inline
script (allowed by its hash) that marks, once laid out, how many charts drew. Every string that
comes from a plugin or a suite (names, params, error messages, hosts...) is HTML-escaped.

Sections: ranking and performance profiles; the leaderboard with provenance; per problem, the
convergence curves of the primary metric (median over seeds, band = range over seeds) against
steps and against time, time-to-target bars with bootstrap 95% intervals, and the hyperparameter
sensitivity of swept optimizers; the provenance of every run; failed, diverged, stalled and timed-out
trials with their messages.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import tempfile
import warnings
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from . import analysis, svgplot
from .formatting import fmt

CURVE_POINTS = 200
MAX_FAILURES = 200

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f6f6f6}.muted{color:#777}.bad{color:#b00}.good{color:#070}
pre{white-space:pre-wrap;margin:0;font-size:12px;max-width:640px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff;border:1px solid #eee}svg text{font-size:11px;fill:#333}
svg .title{font-size:12px;font-weight:600}svg .axis{font-size:11px;fill:#555}
svg .grid{stroke:#eee}svg .plotarea{fill:none;stroke:#ccc}svg .legend{font-size:11px}
svg .target{stroke:#b00;stroke-dasharray:4 3}svg .note{fill:#555}
"""

# Runs once the page is parsed: counts the charts whose marks have a non-empty box, so a test
# (or a person) can see that the plots drew.
_SCRIPT = ("(function(){var s=document.querySelectorAll('svg.chart'),n=0;"
           "s.forEach(function(c){var ok=false;c.querySelectorAll('path,circle').forEach(function(p){"
           "var b=p.getBBox();if(b.width>0||b.height>0){ok=true;}});if(ok){n++;}});"
           "document.body.setAttribute('data-charts',String(s.length));"
           "document.body.setAttribute('data-charts-drawn',String(n));})();")


def _e(value) -> str:
    """HTML-escaped text of any value."""
    return escape("" if value is None else str(value), quote=True)


def _text(value) -> str:
    """str(value), with None and NaN as the empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """An HTML table; cells are already-escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{c}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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


# --------------------------------------------------------------------------- curves
def aggregate_curve(runs: list[tuple[np.ndarray, np.ndarray]], limit: int = CURVE_POINTS):
    """Median and range over seeds of curves sampled at different x: each seed's value at x is
    its last value at or before x (held after the seed stopped, e.g. once it reached the
    target). Returns (x, median, low, high) arrays on at most `limit` points."""
    runs = [(np.asarray(x, float), np.asarray(y, float)) for x, y in runs if len(x)]
    if not runs:
        return (np.array([]),) * 4
    grid = np.unique(np.concatenate([x for x, _ in runs]))
    grid = grid[svgplot.subsample(len(grid), limit)]
    vals = np.full((len(runs), len(grid)), np.nan)
    for i, (x, y) in enumerate(runs):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        idx = np.searchsorted(x, grid, side="right") - 1
        ok = idx >= 0
        vals[i, ok] = y[idx[ok]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return grid, np.nanmedian(vals, axis=0), np.nanmin(vals, axis=0), np.nanmax(vals, axis=0)


def index_curves(curves: pd.DataFrame) -> dict:
    """{(curve_key, metric): {"step": array, "time_s": array, "value": array}}, split once."""
    if not len(curves):
        return {}
    cols = {c: curves[c].to_numpy() for c in ("step", "time_s", "value")}
    return {key: {c: v[idx] for c, v in cols.items()}
            for key, idx in curves.groupby(["curve_key", "metric"], sort=False).indices.items()}


def _curve_series(curve_index: dict, trials: pd.DataFrame, labels: list[str], metric: str,
                  xcol: str, colours: dict) -> list[dict]:
    series = []
    for label in labels:
        keys = trials.loc[trials["label"] == label, "curve_key"].unique()
        runs = [(c[xcol], c["value"]) for c in (curve_index.get((k, metric)) for k in keys) if c is not None]
        x, med, lo, hi = aggregate_curve(runs)
        if len(x):
            series.append({"name": f"{label} (n={len(runs)})", "x": x.tolist(), "y": med.tolist(),
                           "lo": lo.tolist(), "hi": hi.tolist(), "ci": colours.get(label, 0)})
    return series


# --------------------------------------------------------------------------- sections
def _ranking_section(trials: pd.DataFrame, colours: dict, settings: list[dict]) -> str:
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
    charts = []
    for prof in profiles:
        if len(prof["solvers"]) < 2:
            continue
        series = []
        for s in prof["solvers"]:
            x, y = svgplot.step_xy(prof["taus"], prof["rho"][s])
            series.append({"name": f"{s} (score {prof['scores'][s]:.2f})", "x": x, "y": y,
                           "ci": colours.get(s, 0)})
        charts.append(svgplot.line_chart(
            series, "τ (time to target / fastest)", "ρ(τ) fraction of problems",
            title=f"Performance profile: {prof['kind']} ({len(prof['problems'])} problems)",
            xlog=False, ylog=False, ylim=(-0.03, 1.03)))
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    return "\n".join(out)


def _leaderboard_section(rows: list[dict]) -> str:
    out = ['<h2 id="leaderboard">Leaderboard</h2>',
           '<p class="muted">Medians over seeds with interquartile range; [bootstrap 95% interval, fixed '
           'seed]; time and steps over the seeds that reached the target; success rate with its Wilson '
           '95% interval.</p>']
    body = []
    for r in rows:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(r["statuses"].items()))
        k = r["statuses"].get(analysis.REACHED, 0)
        success = (f"{k}/{r['seeds']} <span class=\"muted\">[{r['success_ci'][0]:.2f}, "
                   f"{r['success_ci'][1]:.2f}]</span>")
        metric = (f"{_e(r['metric'])} = {_with_iqr(r['final_metric'], r['final_metric_iqr'])}"
                  if r["metric"] else "—")
        prov = r.get("provenance", {})
        body.append([_e(r["problem"]), _e(r["optimizer"]), _e(statuses), success,
                     _with_iqr(r["time_to_target_s"], r["time_to_target_iqr"]),
                     _ci(r["time_to_target_ci"]) if r["time_to_target_s"] is not None else "—",
                     _with_iqr(r["steps_to_target"], r["steps_to_target_iqr"]), metric,
                     _e(fmt(r["train_time_s"])),
                     _e(", ".join(prov.get("commits", []))), _e(", ".join(prov.get("hosts", [])))])
    out.append(_table(["problem", "optimizer", "status", "reached", "time→target s", "95% CI",
                       "steps→target", "final metric", "train s", "commit", "host"], body,
                      {3, 4, 5, 6, 7, 8}))
    return "\n".join(out)


def _problem_section(problem: str, trials: pd.DataFrame, curves: dict, rows: list[dict],
                     settings: list[dict], colours: dict, anchor: str) -> str:
    prows = [r for r in rows if r["problem"] == problem]
    sub = trials[trials["problem_label"] == problem]
    metric = prows[0]["metric"] if prows else None
    targets = json.loads(sub["targets"].iloc[0] or "{}")
    psettings = [s for s in settings if s["problem"] == problem]
    per_optimizer: dict = {}
    for s in psettings:
        per_optimizer[s["optimizer"]] = per_optimizer.get(s["optimizer"], 0) + 1
    swept = any(n > 1 for n in per_optimizer.values())
    labels = ([s["label"] for s in psettings if s["best"]] if swept else [r["optimizer"] for r in prows])
    out = [f'<h2 id="{anchor}">{_e(problem)}</h2>',
           f'<p class="muted">kind {_e(sub["kind"].iloc[0])}; params {_e(sub["problem_params"].iloc[0])}; '
           f'targets {_e(json.dumps(targets))}; budget {_e(sub["budget"].iloc[0])}'
           + ("; curves show each swept optimizer's best setting" if swept else "") + "</p>"]
    charts = []
    if metric and len(curves):
        hline = targets.get(metric)
        for xcol, xlabel in (("step", "steps"), ("time_s", "training time (s)")):
            series = _curve_series(curves, sub, labels, metric, xcol, colours)
            if series:
                charts.append(svgplot.line_chart(
                    series, xlabel, metric, title=f"{metric} vs {xlabel} (median, range over seeds)",
                    hline=hline if isinstance(hline, (int, float)) else None))
    items = []
    for r in prows:
        k = r["statuses"].get(analysis.REACHED, 0)
        lo, hi = r["time_to_target_ci"]
        items.append({"name": r["optimizer"], "value": r["time_to_target_s"],
                      "lo": lo if r["time_to_target_s"] is not None else None,
                      "hi": hi if r["time_to_target_s"] is not None else None,
                      "note": f"{k}/{r['seeds']} reached" if k else f"target not reached (0/{r['seeds']})",
                      "ci": colours.get(r["optimizer_name"], 0)})
    if items and any(it["value"] is not None for it in items):
        charts.append(svgplot.interval_bars(items, "time to target (s): median, bootstrap 95% interval",
                                            title="Time to target"))
    elif items:
        out.append('<p class="bad">No optimizer reached the target on this problem.</p>')
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    out.append(_final_metrics_table(prows))
    out.append(_sensitivity(psettings, colours))
    return "\n".join(out)


def _final_metrics_table(prows: list[dict]) -> str:
    """Every metric the trials recorded: median over seeds with its interquartile range."""
    names = sorted({n for r in prows for n in r.get("final_metrics", {})})
    if not names:
        return ""
    body = [[_e(r["optimizer"])] + [_with_iqr(r["final_metrics"].get(n, {}).get("median"),
                                              (r["final_metrics"].get(n, {}).get("q1"),
                                               r["final_metrics"].get(n, {}).get("q3"))) for n in names]
            for r in prows]
    return ('<h3>Final metrics</h3><p class="muted">Median over seeds, interquartile range.</p>'
            + _table(["optimizer", *names], body, set(range(1, len(names) + 1))))


def _varying_hparam(group: list[dict]) -> str | None:
    """The single numeric hyperparameter that varies across the settings, if there is one."""
    keys = set().union(*(s["hparams"] for s in group))
    varying = [k for k in sorted(keys) if len({json.dumps(s["hparams"].get(k)) for s in group}) > 1]
    if len(varying) == 1 and all(isinstance(s["hparams"].get(varying[0]), (int, float))
                                 and not isinstance(s["hparams"].get(varying[0]), bool) for s in group):
        return varying[0]
    return None


def _sensitivity(psettings: list[dict], colours: dict) -> str:
    groups: dict = {}
    for s in psettings:
        groups.setdefault(s["optimizer"], []).append(s)
    groups = {o: g for o, g in groups.items() if len(g) > 1}
    if not groups:
        return ""
    out = ["<h3>Hyperparameter sensitivity</h3>",
           '<p class="muted">Filled dot: the setting\'s median seed reaches the target. The '
           'best setting (★) has the highest success rate, then the shortest time to target, then the '
           'best validation metric.</p>']
    charts, table = [], []
    for opt, group in groups.items():
        metric = group[0]["selection_metric"]
        hp = _varying_hparam(group)
        points = [{"series": opt, "x": s["hparams"][hp] if hp else s["label"], "y": s["selection_value"],
                   "filled": s["reaches_target"], "label": f"{s['label']}: {metric}={fmt(s['selection_value'])}",
                   "ci": colours.get(opt, 0)} for s in group]
        charts.append(svgplot.dot_chart(points, hp or "setting", f"final {metric}", categorical=hp is None,
                                        title=f"{opt}: {sum(s['reaches_target'] for s in group)}/"
                                              f"{len(group)} settings reach the target"))
        for s in group:
            table.append([_e(opt), ("★ " if s["best"] else "") + _e(s["label"]),
                          f"{s['success_rate']:.0%}", _e(fmt(s["time_to_target_s"])),
                          f"{_e(metric)} = {_e(fmt(s['selection_value']))}"])
    out.append(f'<div class="charts">{"".join(charts)}</div>')
    out.append(_table(["optimizer", "setting", "reached", "time→target s", "final"], table, {2, 3, 4}))
    return "\n".join(out)


def _provenance_section(trials: pd.DataFrame) -> str:
    cols = ["suite", "run_id", "git_commit", "git_dirty", "host", "cpu_model", "gpu_model", "device",
            "python_version", "torch_version", "package_versions"]
    rows = []
    keyed = trials[cols].apply(lambda col: col.map(_text))
    for vals, g in keyed.groupby(cols, sort=True):
        d = dict(zip(cols, vals))
        try:
            versions = ", ".join(f"{k} {v}" for k, v in json.loads(d["package_versions"]).items())
        except (ValueError, AttributeError):
            versions = d["package_versions"]
        commit = d["git_commit"] + (" (dirty)" if d["git_dirty"] == "True" else "")
        gpu = d["gpu_model"] or "—"
        rows.append([_e(d["suite"]), _e(d["run_id"]), _e(commit), _e(d["host"]), _e(d["cpu_model"]),
                     _e(gpu), _e(d["device"]), _e(f"python {d['python_version']}, torch {d['torch_version']}"),
                     f"<pre>{_e(versions)}</pre>", str(len(g))])
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
def render_report(trials: pd.DataFrame, curves: pd.DataFrame, sources: list[str] | None = None,
                  title: str = "bench report") -> str:
    """The whole page as a string, from a trials and a curves DataFrame (``bench_core.store``).
    When both carry a ``source`` column (which results directory a row came from), a trial
    that ran in several directories keeps one curve per directory."""
    sources = sources or []
    trials, curves = trials.copy(), curves.copy()
    for df in (trials, curves):  # a trial run twice (merged results) has one curve per source
        df["curve_key"] = (df["source"].astype(str) + ":" if "source" in df else "") + df["trial_id"].astype(str)
    trials = analysis.setting_labels(trials)  # display labels unique per key and code, as the tables use
    rows = analysis.leaderboard(trials)
    settings = analysis.settings_summary(trials)
    # one colour per optimizer; a setting (label) takes its optimizer's colour
    colours = {n: i for i, n in enumerate(sorted(set(trials["optimizer"])))} if len(trials) else {}
    if len(trials):
        colours.update({lab: colours[opt] for lab, opt in zip(trials["label"], trials["optimizer"])})
    problems = list(dict.fromkeys(r["problem"] for r in rows))
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
    if not rows:
        parts.append("<p>No trials.</p>")
    else:
        parts.append(_ranking_section(trials, colours, settings))
        curves = index_curves(curves)
        parts.append(_leaderboard_section(rows))
        for p in problems:
            parts.append(_problem_section(p, trials, curves, rows, settings, colours, anchors[p]))
        parts.append(_provenance_section(trials))
        parts.append(_failures_section(trials))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write_report(dirs: list[str], out: str | Path, title: str | None = None) -> Path:
    """Read results directories and write the report page to `out` atomically."""
    from .store import read_curves, read_trials

    trials = pd.concat([read_trials(d).assign(source=i) for i, d in enumerate(dirs)], ignore_index=True)
    curves = pd.concat([read_curves(d).assign(source=i) for i, d in enumerate(dirs)], ignore_index=True)
    html = render_report(trials, curves, [str(d) for d in dirs], title or "bench report")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
