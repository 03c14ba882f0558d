"""Figures of results with matplotlib: convergence curves, performance profiles, time to target,
hyperparameter sensitivity and history over commits.

Computing only: every function returns a ``matplotlib.figure.Figure`` (or, through ``to_svg``,
SVG text); nothing is shown and nothing is printed. Figures are built with the object-oriented
API, each on its own Agg canvas (no pyplot state, no display, the session's backend left as it
is), under one style (``STYLE``): 7 × 4.5 in, fonts of 10 pt or more, enough ticks, legends
outside the axes and labels and titles wrapped (never cut) so nothing is hidden or clipped, legend
entries ordered by score (leaderboard order for curves and times, profile score for
profiles), times in ms or s and byte counts in MiB. ``svg.fonttype`` is ``"none"``, so text stays
``<text>`` in SVG (searchable, and checkable for clipping).

Inputs are what ``bench_core.store`` reads, labelled by ``bench_core.analysis.setting_labels``
(``prepare`` does both); ``bench_core.html_report`` inlines these figures in its page and
``bench plot`` (bench_core/cli/plot.py) saves them as PDF, SVG or PNG.
"""
from __future__ import annotations

import io
import json
import math
import re
import textwrap
import warnings

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator

from . import analysis

CURVE_POINTS = 200
FIGSIZE = (7.0, 4.5)
MIB = 2.0 ** 20
LEGEND_WRAP = 30  # characters per legend line; longer labels wrap at ", " instead of being cut
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)))

#: The style of every figure (applied with ``matplotlib.rc_context`` while a figure is built and saved).
STYLE = {
    "figure.figsize": FIGSIZE, "figure.dpi": 100, "savefig.dpi": 200,
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10.5, "xtick.labelsize": 10,
    "ytick.labelsize": 10, "legend.fontsize": 10, "legend.title_fontsize": 10,
    "axes.grid": True, "axes.grid.which": "major", "grid.alpha": 0.35, "grid.linewidth": 0.6,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.7,
    "legend.frameon": False, "svg.fonttype": "none", "svg.hashsalt": "bench-core",
    "pdf.fonttype": 42, "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
}


# --------------------------------------------------------------------------- data
def subsample(n: int, limit: int) -> np.ndarray:
    """At most `limit` indices out of n, spread evenly, first and last kept."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def aggregate_curve(runs: list[tuple[np.ndarray, np.ndarray]], limit: int = CURVE_POINTS):
    """Median and range over seeds of curves sampled at different x: each seed's value at x is
    its last value at or before x (held after the seed stopped, e.g. once it reached the
    target). Returns (x, median, low, high) arrays on at most `limit` points."""
    runs = [(np.asarray(x, float), np.asarray(y, float)) for x, y in runs if len(x)]
    if not runs:
        return (np.array([]),) * 4
    grid = np.unique(np.concatenate([x for x, _ in runs]))
    grid = grid[subsample(len(grid), limit)]
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
    """{(curve_key, metric): {"step": array, "time_s": array, "value": array}}, split once.
    ``curve_key`` defaults to the trial id."""
    if curves is None or not len(curves):
        return {}
    if "curve_key" not in curves:
        curves = curves.assign(curve_key=curves["trial_id"].astype(str))
    cols = {c: curves[c].to_numpy() for c in ("step", "time_s", "value")}
    return {key: {c: v[idx] for c, v in cols.items()}
            for key, idx in curves.groupby(["curve_key", "metric"], sort=False).indices.items()}


def with_curve_key(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of trials or curve points with their ``curve_key``: the trial id, prefixed with
    ``source:`` when the frame has a ``source`` column (which results directory a row came from)."""
    df = df.copy()
    df["curve_key"] = (df["source"].astype(str) + ":" if "source" in df else "") + df["trial_id"].astype(str)
    return df


def label_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials with display labels (``analysis.setting_labels``) and a ``curve_key``."""
    return analysis.setting_labels(with_curve_key(trials))


def prepare(trials: pd.DataFrame, curves: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Trials with display labels (``analysis.setting_labels``) and a ``curve_key``, and the
    curve index (``index_curves``). With a ``source`` column on both frames (which results
    directory a row came from) a trial run in several directories keeps one curve per directory."""
    curves = curves if curves is not None else pd.DataFrame(columns=["trial_id", "step", "time_s", "metric", "value"])
    return label_trials(trials), index_curves(with_curve_key(curves))


def load(dirs) -> tuple[pd.DataFrame, dict]:
    """``prepare`` applied to the trials and curves of results directories (merged)."""
    from .store import read_curves, read_trials

    trials = pd.concat([read_trials(d).assign(source=i) for i, d in enumerate(dirs)], ignore_index=True)
    curves = pd.concat([read_curves(d).assign(source=i) for i, d in enumerate(dirs)], ignore_index=True)
    return prepare(trials, curves)


def problem_metrics(trials: pd.DataFrame, curve_index: dict, problem: str) -> list[str]:
    """The metrics with a curve on `problem`, its primary metric first, then by name."""
    sub = trials[trials["problem_label"] == problem]
    keys = set(sub["curve_key"])
    names = sorted({m for k, m in curve_index if k in keys})
    primary = analysis.primary_metric(sub["targets"].iloc[0], analysis.first_metrics(list(sub["metrics"]))) \
        if len(sub) else None
    return ([primary] if primary in names else []) + [m for m in names if m != primary]


def curve_labels(trials: pd.DataFrame, problem: str, every_setting: bool = False,
                 rows: list[dict] | None = None, settings: list[dict] | None = None) -> list[str]:
    """The settings drawn for `problem`, best first (leaderboard order): each optimizer's best
    setting, or with `every_setting` all of them."""
    rows = analysis.leaderboard(trials) if rows is None else rows
    order = [r["optimizer"] for r in rows if r["problem"] == problem]
    if every_setting:
        return order
    settings = analysis.settings_summary(trials) if settings is None else settings
    best = {s["label"] for s in settings if s["problem"] == problem and s["best"]}
    return [lab for lab in order if lab in best]


def _best_of(n_drawn: int, n: int) -> str:
    """"; the 20 best of 400" when a figure draws only the first `n_drawn` of `n` settings, else ""."""
    return f"; the {n_drawn} best of {n}" if n_drawn < n else ""


def colour_map(trials: pd.DataFrame) -> dict:
    """One colour per optimizer (sorted names); each setting (label) takes its optimizer's colour."""
    names = sorted(set(trials["optimizer"])) if len(trials) else []
    colours = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    if len(trials):
        pairs = trials[["label", "optimizer"]].drop_duplicates()  # a setting per label: few rows
        colours.update({lab: colours[opt] for lab, opt in zip(pairs["label"], pairs["optimizer"])})
    return colours


# --------------------------------------------------------------------------- units and axes
def time_unit(values) -> tuple[float, str]:
    """(factor, unit) to show times given in seconds: ms below one second, else s."""
    vals = [abs(v) for v in values if v is not None and np.isfinite(v)]
    return (1e3, "ms") if vals and max(vals) < 1.0 else (1.0, "s")


def metric_unit(metric: str) -> tuple[float, str]:
    """(factor, unit suffix) for a metric's values: byte counts (``*_bytes``) in MiB."""
    return (1.0 / MIB, "MiB") if metric.endswith("_bytes") else (1.0, "")


def metric_axis_label(metric: str) -> str:
    """A metric name as an axis label, with its unit ("peak_memory (MiB)")."""
    _, unit = metric_unit(metric)
    name = metric[: -len("_bytes")] if unit == "MiB" else metric
    return f"{name} ({unit})" if unit else name


def wants_log(values) -> bool:
    """A log axis suits positive values spanning two decades or more."""
    vals = [v for v in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(v)]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) >= 100


def _ticks(ax, xlog: bool = False, ylog: bool = False) -> None:
    """Enough ticks: about eight on a linear axis, every decade (with minor ticks) on a log one."""
    for axis, log in ((ax.xaxis, xlog), (ax.yaxis, ylog)):
        if log:
            axis.set_major_locator(LogLocator(base=10, numticks=12))
            axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10) * 0.1, numticks=12))
        else:
            axis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))


def wrap(label: str, width: int = LEGEND_WRAP) -> str:
    """A long label on several lines, broken at spaces (a word longer than a line is split): never cut."""
    if len(label) <= width:
        return label
    return "\n".join(textwrap.wrap(label, width, break_on_hyphens=False)) or label


def _title(ax, text: str, n_panels: int) -> None:
    """A panel's title, wrapped to the panel's width (never cut, never past the figure's edge)."""
    ax.set_title(wrap(text, 42 if n_panels == 1 else 32))  # the axes' width, a legend beside them


def _gid(ax, prefix: str = "") -> None:
    """Mark the axis labels (``gid``) so a test can find them in the SVG."""
    ax.xaxis.label.set_gid(prefix + "xlabel")
    ax.yaxis.label.set_gid(prefix + "ylabel")


def new_figure(n_panels: int = 1, ncols: int = 2, size=None) -> tuple[Figure, list]:
    """A figure in the house style with `n_panels` axes (a grid of `ncols` columns), and the axes."""
    with matplotlib.rc_context(STYLE):
        if n_panels <= 1:
            fig = Figure(figsize=size or FIGSIZE, layout="constrained")
            axes = [fig.add_subplot()]
        else:
            ncols = min(ncols, n_panels)
            nrows = math.ceil(n_panels / ncols)
            fig = Figure(figsize=size or (FIGSIZE[0], 1.0 + 3.0 * nrows), layout="constrained")
            grid = fig.subplots(nrows, ncols, squeeze=False)
            axes = [a for row in grid for a in row]
            for extra in axes[n_panels:]:
                extra.set_visible(False)
            axes = axes[:n_panels]
        FigureCanvasAgg(fig)  # an Agg canvas: drawable (and measurable) without pyplot or a display
        fig._bench_style = dict(STYLE)  # saved with the same style
        return fig, axes


def _fit_titles(fig: Figure, axes: list) -> None:
    """Wrap each panel title narrower until, laid out, it lies within the figure; then keep that
    layout, so saving the figure draws it once without laying it out again (constrained layout
    measures every text: the most expensive step of a figure). Only the layout runs here, not a
    draw of every artist (the save draws them)."""
    for attempt in range(5):
        engine = fig.get_layout_engine()
        if engine is not None:
            engine.execute(fig)  # lays out (constrained layout), measuring every text; no drawing
        else:
            fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        wide = [ax.title for ax in axes if ax.title.get_text()
                and (ax.title.get_window_extent(renderer).x0 < fig.bbox.x0 - 0.5
                     or ax.title.get_window_extent(renderer).x1 > fig.bbox.x1 + 0.5)]
        if not wide or attempt == 4:
            break
        for t in wide:
            text = t.get_text()
            longest = max(len(line) for line in text.split("\n"))
            t.set_text(wrap(text.replace("\n", " "), max(8, int(longest * 0.8))))
    fig.set_layout_engine(None)  # the layout found above, kept when saved (no layout pass before saving)


def finish(fig: Figure, axes: list, legend: bool = True) -> Figure:
    """One legend for the figure, outside the axes (right of one panel, below several), its
    entries in the order they were first drawn (the callers draw best first); labels wrap, and
    so do panel titles until they fit the figure."""
    with matplotlib.rc_context(STYLE):
        handles, labels, seen = [], [], set()
        for ax in axes:
            _gid(ax)
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab.startswith("_") or lab in seen:
                    continue
                seen.add(lab)
                handles.append(h)
                labels.append(lab)
        if legend and handles:
            if len(axes) == 1 and len(handles) <= 14:
                fig.legend(handles, [wrap(lab) for lab in labels], loc="outside right upper")
            else:  # below the panels, as many columns as fit the figure's width
                labels = [wrap(lab, 40) for lab in labels]
                longest = max(len(line) for lab in labels for line in lab.split("\n"))
                fig.legend(handles, labels, loc="outside lower center",
                           ncols=max(1, min(3, len(handles), int(fig.get_figwidth() * 11) // (longest + 6))))
        _fit_titles(fig, axes)
    return fig


# --------------------------------------------------------------------------- drawing onto axes
def draw_curves(ax, trials: pd.DataFrame, curve_index: dict, problem: str, metric: str,
                x: str = "step", labels: list[str] | None = None, colours: dict | None = None,
                every_setting: bool = False) -> bool:
    """Median over seeds of `metric` against steps (``x="step"``) or training time
    (``x="time"``) for each setting in `labels` (best first), with the range over seeds as a band
    and the target as a dashed line. Returns whether anything was drawn."""
    sub = trials[trials["problem_label"] == problem]
    labels = curve_labels(trials, problem, every_setting) if labels is None else labels
    colours = colour_map(trials) if colours is None else colours
    xcol = "step" if x == "step" else "time_s"
    yf, _ = metric_unit(metric)
    drawn = []
    for label in labels:
        g = sub[sub["label"] == label]
        runs = [(c[xcol], c["value"]) for c in (curve_index.get((k, metric)) for k in g["curve_key"].unique())
                if c is not None]
        xs, med, lo, hi = aggregate_curve(runs)
        if len(xs):
            drawn.append((label, g["optimizer"].iloc[0], len(runs), xs, med * yf, lo * yf, hi * yf))
    if not drawn:
        return False
    xf, xunit = (1.0, "") if x == "step" else time_unit(np.concatenate([d[3] for d in drawn]))
    ylog = wants_log(np.concatenate([np.concatenate([d[4], d[5]]) for d in drawn]))
    style_of: dict = {}
    for label, opt, n, xs, med, lo, hi in drawn:
        k = style_of[opt] = style_of.get(opt, -1) + 1  # settings of one optimizer: one colour, own dash
        colour = colours.get(label, PALETTE[0])
        ax.plot(xs * xf, med, color=colour, linestyle=LINESTYLES[k % len(LINESTYLES)],
                linewidth=2.0 if k == 0 else 1.4, label=f"{label} (n={n})")
        if n > 1:
            band_lo, band_hi = (np.where(lo > 0, lo, np.nan), hi) if ylog else (lo, hi)
            ax.fill_between(xs * xf, band_lo, band_hi, color=colour, alpha=0.15, linewidth=0)
    targets = json.loads(sub["targets"].iloc[0] or "{}")
    target = targets.get(metric)
    if isinstance(target, (int, float)) and not isinstance(target, bool) and (target > 0 or not ylog):
        ax.axhline(target * yf, color="#b00", linestyle=(0, (4, 3)), linewidth=1.2, label="target")
    if ylog:
        ax.set_yscale("log")
    _ticks(ax, ylog=ylog)
    if x == "step":
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.set_xlabel("steps" if x == "step" else f"training time ({xunit})")
    ax.set_ylabel(metric_axis_label(metric))
    return True


def draw_profile(ax, prof: dict, colours: dict | None = None) -> None:
    """A Dolan–Moré performance profile (one entry of ``analysis.performance_profiles``): ρ(τ)
    as a step line per solver, best score first; ρ = 0 and ρ = 1 inside the frame."""
    colours = colours or {}
    solvers = sorted(prof["solvers"], key=lambda s: (-prof["scores"][s], s))
    for i, s in enumerate(solvers):
        ax.step(prof["taus"], prof["rho"][s], where="post", color=colours.get(s, PALETTE[i % len(PALETTE)]),
                linestyle=LINESTYLES[i % len(LINESTYLES)], label=f"{s} (score {prof['scores'][s]:.2f})")
    ax.set_xlim(1.0, float(prof["taus"][-1]))
    ax.set_ylim(-0.04, 1.04)
    _ticks(ax)
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_xlabel("τ (time to target / fastest)")
    ax.set_ylabel("ρ(τ): fraction of problems")


def draw_time(ax, rows: list[dict], problem: str, colours: dict | None = None) -> bool:
    """Median time to target with its bootstrap 95% interval per setting (leaderboard order,
    best on top); a setting that never reached the target is marked as such. Returns whether a
    setting reached the target."""
    colours = colours or {}
    prows = [r for r in rows if r["problem"] == problem]
    values = [r["time_to_target_s"] for r in prows if r["time_to_target_s"] is not None]
    if not values:
        return False
    f, unit = time_unit(values + [r["time_to_target_ci"][1] for r in prows if r["time_to_target_s"] is not None])
    ys = np.arange(len(prows))[::-1]
    for y, r in zip(ys, prows):
        k, n = r["statuses"].get(analysis.REACHED, 0), r["seeds"]
        colour = colours.get(r["optimizer_name"], PALETTE[0])
        if r["time_to_target_s"] is None:
            ax.text(0.01, y, f"target not reached (0/{n})", transform=ax.get_yaxis_transform(),
                    va="center", ha="left", color="#b00")
            continue
        v = r["time_to_target_s"] * f
        lo, hi = r["time_to_target_ci"]
        lo, hi = (v if lo is None else lo * f), (v if hi is None else hi * f)
        ax.barh(y, v, height=0.6, color=colour, alpha=0.8)
        ax.errorbar(v, y, xerr=[[max(v - lo, 0)], [max(hi - v, 0)]], color="#333", capsize=4, linewidth=1.2)
        ax.annotate(f"{k}/{n} reached", (max(hi, v), y), xytext=(6, 0), textcoords="offset points",
                    va="center", ha="left", color="#555")
    ax.set_yticks(ys, [wrap(r["optimizer"], 28) for r in prows])
    ax.set_ylim(-0.7, len(prows) - 0.3)
    ax.set_xlim(0, max(max(r["time_to_target_ci"][1] or 0 for r in prows) * f,
                       max(values) * f) * 1.35 or 1.0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8))
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"time to target ({unit}): median, bootstrap 95% interval")
    ax.set_ylabel("setting")
    return True


def varying_hparam(group: list[dict]) -> str | None:
    """The single numeric hyperparameter that varies across the settings, if there is one."""
    keys = set().union(*(s["hparams"] for s in group))
    varying = [k for k in sorted(keys) if len({json.dumps(s["hparams"].get(k)) for s in group}) > 1]
    if len(varying) == 1 and all(isinstance(s["hparams"].get(varying[0]), (int, float))
                                 and not isinstance(s["hparams"].get(varying[0]), bool) for s in group):
        return varying[0]
    return None


def draw_sensitivity(ax, group: list[dict], colour: str = PALETTE[0]) -> None:
    """One optimizer's settings on one problem (rows of ``analysis.settings_summary``): the
    final selection metric against the varying hyperparameter (or per setting); a filled dot
    when the setting's median seed reaches the target, a star on the best setting."""
    metric = group[0]["selection_metric"] or "metric"
    hp = varying_hparam(group)
    yf, _ = metric_unit(metric)
    if hp:
        group = sorted(group, key=lambda s: s["hparams"][hp])
        xs = np.array([float(s["hparams"][hp]) for s in group])
    else:
        xs = np.arange(len(group), dtype=float)
    ys = np.array([np.nan if s["selection_value"] is None else s["selection_value"] * yf for s in group])
    ax.plot(xs, ys, color=colour, linewidth=1.0, alpha=0.6)
    hit = np.array([s["reaches_target"] for s in group])
    ax.scatter(xs[hit], ys[hit], s=45, color=colour, zorder=3, label="reaches the target")
    ax.scatter(xs[~hit], ys[~hit], s=45, facecolors="white", edgecolors=colour, zorder=3,
               label="misses the target")
    best = [i for i, s in enumerate(group) if s["best"]]
    if best:
        ax.scatter(xs[best], ys[best], s=180, marker="*", color="#b8860b", zorder=4, label="best setting")
    xlog = bool(hp) and wants_log(xs)
    ylog = wants_log(ys)
    if xlog:
        ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    _ticks(ax, xlog=xlog, ylog=ylog)
    if not hp:
        ax.set_xticks(xs, [wrap(s["label"], 18) for s in group], rotation=30, ha="right")
    ax.set_xlabel(hp or "setting")
    ax.set_ylabel(f"final {metric_axis_label(metric)}")


def draw_history(ax, series, colour: str = PALETTE[0]) -> None:
    """One ``bench_core.history.Series``: median over seeds per commit with the seeds' range,
    flagged commits marked (red worse, green better)."""
    pts = series.points
    xs = np.arange(len(pts))
    med = np.array([np.nan if p.median is None else p.median for p in pts])
    lo = np.array([min(p.values) if p.values else np.nan for p in pts])
    hi = np.array([max(p.values) if p.values else np.nan for p in pts])
    yf, _ = metric_unit(series.metric) if series.metric != "final" else (1.0, "")
    ax.plot(xs, med * yf, marker="o", color=colour, label=f"{series.optimizer}: median over seeds")
    ax.fill_between(xs, lo * yf, hi * yf, color=colour, alpha=0.15, linewidth=0)
    for flag, c in (("worse", "#b00"), ("better", "#070"), ("changed", "#b8860b")):
        idx = [i for i, p in enumerate(pts) if p.flag == flag]
        if idx:
            ax.scatter(xs[idx], med[idx] * yf, s=90, facecolors="none", edgecolors=c, linewidths=2,
                       zorder=3, label=f"flagged {flag}")
    if wants_log(np.concatenate([lo, hi])):
        ax.set_yscale("log")
    ax.set_xticks(xs, [p.key for p in pts], rotation=30, ha="right")
    ax.set_xlim(-0.6, len(pts) - 0.4)
    ax.set_xlabel("commit")
    ax.set_ylabel(metric_axis_label(series.metric))


# --------------------------------------------------------------------------- whole figures
def curves_figure(trials: pd.DataFrame, curve_index: dict, problems: list[str], metric: str | None = None,
                  x: str = "step", every_setting: bool = False, rows=None, settings=None,
                  colours: dict | None = None, title: bool = True,
                  max_settings: int | None = None) -> Figure | None:
    """Convergence curves, one panel per problem: `metric` (default each problem's primary
    metric) against steps or time. None when no problem has a curve of that metric.
    `max_settings`: draw only the first (best) so many settings per panel, the title says so."""
    rows = analysis.leaderboard(trials) if rows is None else rows
    settings = analysis.settings_summary(trials) if settings is None else settings
    colours = colour_map(trials) if colours is None else colours
    jobs = []
    for p in problems:
        metrics = problem_metrics(trials, curve_index, p)
        m = metric or (metrics[0] if metrics else None)
        if m in metrics:
            jobs.append((p, m))
    if not jobs:
        return None
    fig, axes = new_figure(len(jobs))
    with matplotlib.rc_context(STYLE):
        for ax, (p, m) in zip(axes, jobs):
            labels = curve_labels(trials, p, every_setting, rows, settings)
            n_labels, labels = len(labels), labels[:max_settings]
            draw_curves(ax, trials, curve_index, p, m, x, labels, colours)
            if title:
                what = ("every setting" if every_setting else "best setting per optimizer") \
                    + _best_of(len(labels), n_labels)
                _title(ax, f"{p}: {m} (median, range over seeds; {what})" if len(jobs) == 1 else f"{p}: {m}",
                       len(jobs))
    return finish(fig, axes)


def profile_figure(profiles: list[dict], colours: dict | None = None, title: bool = True) -> Figure | None:
    """Performance profiles, one panel per problem kind (``analysis.performance_profiles``)."""
    if not profiles:
        return None
    fig, axes = new_figure(len(profiles))
    with matplotlib.rc_context(STYLE):
        for ax, prof in zip(axes, profiles):
            draw_profile(ax, prof, colours)
            if title:
                _title(ax, f"Performance profile: {prof['kind']} ({len(prof['problems'])} problems)", len(profiles))
    return finish(fig, axes)


def time_figure(rows: list[dict], problems: list[str], colours: dict | None = None,
                title: bool = True, max_settings: int | None = None) -> Figure | None:
    """Time to target per setting, one panel per problem where a setting reached the target.
    `max_settings`: only the first (best) so many settings per problem, the title says so."""
    problems = [p for p in problems if any(r["problem"] == p and r["time_to_target_s"] is not None for r in rows)]
    if not problems:
        return None
    n_settings = {p: sum(r["problem"] == p for r in rows) for p in problems}
    if max_settings is not None:
        rows = _first_per_problem(rows, max_settings)
    n_rows = max(sum(r["problem"] == p for r in rows) for p in problems)
    size = (FIGSIZE[0], max(2.6, 1.4 + 0.42 * n_rows)) if len(problems) == 1 else None
    fig, axes = new_figure(len(problems), ncols=1, size=size)
    with matplotlib.rc_context(STYLE):
        for ax, p in zip(axes, problems):
            draw_time(ax, rows, p, colours)
            if title:
                best = _best_of(sum(r["problem"] == p for r in rows), n_settings[p])
                _title(ax, f"Time to target on {p}" + (f" ({best[2:]} settings)" if best else ""), 1)
    return finish(fig, axes, legend=False)


def _first_per_problem(rows: list[dict], limit: int) -> list[dict]:
    """The first `limit` rows of each problem (leaderboard order: the best)."""
    seen: dict = {}
    out = []
    for r in rows:
        seen[r["problem"]] = seen.get(r["problem"], 0) + 1
        if seen[r["problem"]] <= limit:
            out.append(r)
    return out


def sensitivity_groups(settings: list[dict], problems: list[str]) -> list[tuple[str, str, list[dict]]]:
    """(problem, optimizer, settings) for every optimizer that ran several settings on a problem."""
    groups: dict = {}
    for s in settings:
        if s["problem"] in problems:
            groups.setdefault((s["problem"], s["optimizer"]), []).append(s)
    return [(p, o, g) for (p, o), g in groups.items() if len(g) > 1]


def sensitivity_figure(settings: list[dict], problems: list[str], colours: dict | None = None,
                       title: bool = True) -> Figure | None:
    """Hyperparameter sensitivity, one panel per swept (problem, optimizer)."""
    colours = colours or {}
    groups = sensitivity_groups(settings, problems)
    if not groups:
        return None
    fig, axes = new_figure(len(groups))
    with matplotlib.rc_context(STYLE):
        for i, (ax, (p, o, g)) in enumerate(zip(axes, groups)):
            draw_sensitivity(ax, g, colours.get(o, PALETTE[i % len(PALETTE)]))
            if title:
                n = sum(s["reaches_target"] for s in g)
                _title(ax, f"{o} on {p}: {n}/{len(g)} settings reach the target", len(groups))
    return finish(fig, axes)


def history_figure(series: list, title: bool = True) -> Figure | None:
    """A metric over commits (``bench_core.history.build_history``), one panel per series."""
    if not series:
        return None
    fig, axes = new_figure(len(series))
    with matplotlib.rc_context(STYLE):
        names = sorted({s.optimizer.split("(")[0].split(" [")[0] for s in series})
        for ax, s in zip(axes, series):
            draw_history(ax, s, PALETTE[names.index(s.optimizer.split("(")[0].split(" [")[0]) % len(PALETTE)])
            if title:
                _title(ax, f"{s.problem} · {s.optimizer}", len(series))
    return finish(fig, axes)


# --------------------------------------------------------------------------- output
def to_svg(fig: Figure, prefix: str = "fig") -> str:
    """The figure as an ``<svg>`` element to inline in HTML: no XML prolog, no metadata, every
    id (and reference to it) prefixed with `prefix` so several figures share a page, sized by
    CSS (``class="chart"``) with its viewBox kept."""
    buf = io.StringIO()
    with matplotlib.rc_context(getattr(fig, "_bench_style", STYLE)):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None,
                                                  "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg class="chart" role="img" \1', svg, count=1)
    return svg.strip()


def save(fig: Figure, path, fmt: str | None = None) -> None:
    """Write the figure to `path` as pdf, svg or png (from `fmt` or the file's suffix)."""
    with matplotlib.rc_context(getattr(fig, "_bench_style", STYLE)):
        fig.savefig(path, format=fmt, metadata={"Creator": "bench-core"} if fmt != "png" else None)
