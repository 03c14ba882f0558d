"""`bench history`: one metric over git commits, from results directories of several commits.

Every trial row carries the commit it ran at (``git_commit``, ``git_dirty``). This module groups
the rows of several results directories by (problem, optimizer) and by commit, orders the commits
as git does (``git rev-list`` of the current repository when it knows them all, else by the time
the trials ended), summarizes the values over seeds, and flags the commits where the value moved
beyond the noise across seeds:

    flag commit B after A when  |mean_B − mean_A| > k · sqrt(s_A²/n_A + s_B²/n_B)
                          and  |mean_B − mean_A| > rel_tol · |mean_A|

(s: standard deviation over seeds, n: number of seeds with a value; k = 3 and rel_tol = 1 % by
default). A change in how many seeds reached the target is flagged too. For users without asv;
asv itself is configured in asv.conf.json (see docs/tracking.md).
"""
from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, field
from html import escape as xml_escape
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .analysis import primary_metric, problem_labels
from .errors import BenchInputError

COLUMN_METRICS = ("time_to_target_s", "steps_to_target", "train_time_s", "steps",
                  "setup_time_s", "eval_time_s")
FINAL = "final"  # the final value of the problem's target metric (its primary metric)
NO_COMMIT = "(no commit)"


@dataclass
class Point:
    """One commit of one series: the metric's values over seeds and their summary."""

    commit: str
    dirty: bool
    values: list
    seeds: int
    reached: int
    ended_at: object = None
    flag: str = ""  # "", "better", "worse" or "changed"
    change: float | None = None  # relative change of the mean against the previous point

    @property
    def key(self) -> str:
        """The commit as shown: short hash, '+dirty' when the work tree had changes."""
        short = self.commit[:10] if self.commit != NO_COMMIT else self.commit
        return short + ("+dirty" if self.dirty else "")

    @property
    def mean(self) -> float | None:
        """Mean over the seeds that have a value."""
        return float(np.mean(self.values)) if self.values else None

    @property
    def median(self) -> float | None:
        """Median over the seeds that have a value."""
        return float(np.median(self.values)) if self.values else None

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 with fewer than two values)."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0


@dataclass
class Series:
    """One (problem, optimizer) over commits, in commit order."""

    problem: str
    optimizer: str
    metric: str
    points: list = field(default_factory=list)


def git_order(commits, repo: str | Path | None = None) -> list[str] | None:
    """The commits ordered oldest first as in the repository's history (``git rev-list
    --topo-order --reverse --all``), or None when git is missing or does not know one of them."""
    commits = [c for c in commits if c and c != NO_COMMIT]
    if not commits:
        return []
    try:
        out = subprocess.run(["git", "rev-list", "--topo-order", "--reverse", "--all"],
                             cwd=repo or ".", capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    position = {c: i for i, c in enumerate(out.stdout.split())}
    if any(c not in position for c in commits):
        return None
    return sorted(set(commits), key=position.__getitem__)


def _values(group: pd.DataFrame, metric: str) -> list[float]:
    if metric in COLUMN_METRICS:
        raw = group[metric].tolist()
    else:
        name = metric
        raw = []
        for targets, metrics in zip(group["targets"], group["metrics"]):
            metrics = metrics or {}
            if metric == FINAL:
                name = primary_metric(targets, metrics)
            raw.append(metrics.get(name))
    out = []
    for v in raw:
        if v is None:
            continue
        v = float(v)
        if math.isfinite(v):
            out.append(v)
    return out


def build_history(trials: pd.DataFrame, metric: str = FINAL, repo: str | Path | None = None,
                  k: float = 3.0, rel_tol: float = 0.01,
                  higher_is_better: Callable[[str], bool] | None = None) -> tuple[list[Series], str]:
    """Group trial rows into series over commits and flag changes beyond the noise across seeds.

    ``metric``: a trial column (``time_to_target_s``, ``steps_to_target``, ``train_time_s``,
    ``steps``, ...), a metric name from the rows' ``metrics`` (``loss``, ``rel_residual``, ...),
    or ``final`` (the final value of each problem's target metric). Returns (series, ordering)
    where ordering says how commits were ordered: ``"git"`` or ``"ended_at"``.
    ``higher_is_better(metric_name)`` gives a metric's direction (default: lower is better);
    trial columns (times, steps) are always lower-is-better.
    """
    if trials is None or len(trials) == 0:
        return [], "git"
    df = trials.copy()
    df["problem_label"] = problem_labels(df)
    df["commit"] = df["git_commit"].fillna(NO_COMMIT)
    df["dirty"] = df["git_dirty"].fillna(False).astype(bool)
    order = git_order(df["commit"].unique(), repo)
    ordering = "git"
    if order is None:
        ordering = "ended_at"
        first_end = df.groupby("commit")["ended_at"].min().sort_values(kind="stable")
        order = list(first_end.index)
    rank = {c: i for i, c in enumerate(order)}
    rank[NO_COMMIT] = len(order)

    series = []
    for (problem, label), g in df.groupby(["problem_label", "label"], sort=True):
        name = metric
        if metric == FINAL:
            name = primary_metric(g["targets"].iloc[0], g["metrics"].iloc[0] or {}) or metric
        s = Series(problem=problem, optimizer=label, metric=name if metric == FINAL else metric)
        higher = bool(higher_is_better(name)) if higher_is_better and metric not in COLUMN_METRICS else False
        commits = sorted({(c, d) for c, d in zip(g["commit"], g["dirty"])},
                         key=lambda cd: (rank.get(cd[0], len(order)), cd[1]))
        for commit, dirty in commits:
            rows = g[(g["commit"] == commit) & (g["dirty"] == dirty)]
            s.points.append(Point(commit=commit, dirty=bool(dirty), values=_values(rows, metric),
                                  seeds=len(rows), reached=int((rows["status"] == "target_reached").sum()),
                                  ended_at=rows["ended_at"].max()))
        flag_changes(s.points, k=k, rel_tol=rel_tol, higher_is_better=higher)
        series.append(s)
    return series, ordering


def flag_changes(points: list[Point], k: float = 3.0, rel_tol: float = 0.01,
                 higher_is_better: bool = False) -> None:
    """Set ``change`` and ``flag`` on each point against the previous point that has a value."""
    prev = None
    for p in points:
        if prev is not None and p.mean is not None:
            delta = p.mean - prev.mean
            p.change = delta / abs(prev.mean) if prev.mean else (math.inf if delta else 0.0)
            noise = k * math.sqrt(prev.std ** 2 / len(prev.values) + p.std ** 2 / len(p.values))
            if abs(delta) > noise and abs(delta) > rel_tol * abs(prev.mean):
                p.flag = "better" if (delta > 0) == higher_is_better else "worse"
        if prev is not None and p.reached != prev.reached and not p.flag:
            p.flag = "changed"
        if p.mean is not None:
            prev = p


def commit_subjects(commits, repo: str | Path | None = None) -> dict:
    """{commit: subject line} for the commits git knows (empty when git is unavailable)."""
    out = {}
    for c in commits:
        if not c or c == NO_COMMIT:
            continue
        try:
            res = subprocess.run(["git", "log", "-1", "--format=%s", c], cwd=repo or ".",
                                 capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return out
        if res.returncode == 0:
            out[c] = res.stdout.strip()
    return out


# --------------------------------------------------------------------------- SVG plot
_W, _H, _ML, _MR, _MT, _MB = 720, 220, 80, 20, 30, 60


def _scale(values: list[float]) -> tuple[bool, float, float]:
    """(log scale?, low, high) for the y axis."""
    positive = [v for v in values if v > 0]
    log = len(positive) == len(values) and values and max(values) / min(values) > 100
    vals = [math.log10(v) for v in values] if log else values
    lo, hi = min(vals), max(vals)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
    pad = (hi - lo) * 0.08
    return bool(log), lo - pad, hi + pad


def history_svg(series: list[Series]) -> str:
    """An SVG document: one panel per series, the median over seeds per commit with the seeds'
    range as a bar; flagged commits drawn red (worse), green (better) or orange (changed)."""
    panels = [s for s in series if any(p.values for p in s.points)]
    height = _H * max(len(panels), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
             f'viewBox="0 0 {_W} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{_W}" height="{height}" fill="white"/>']
    colors = {"worse": "#d62728", "better": "#2ca02c", "changed": "#ff7f0e", "": "#1f77b4"}
    for i, s in enumerate(panels):
        y0 = i * _H
        pw, ph = _W - _ML - _MR, _H - _MT - _MB
        allv = [v for p in s.points for v in p.values]
        log, lo, hi = _scale(allv)
        n = len(s.points)

        def X(j):  # noqa: N802
            return _ML + (pw * (j + 0.5) / n)

        def Y(v):  # noqa: N802
            v = math.log10(v) if log else v
            return y0 + _MT + ph * (1 - (v - lo) / (hi - lo))

        parts.append(f'<text x="{_ML}" y="{y0 + 18}" font-size="13">'
                     f'{xml_escape(s.problem)} · {xml_escape(s.optimizer)} · {xml_escape(s.metric)}'
                     f'{" (log scale)" if log else ""}</text>')
        parts.append(f'<rect x="{_ML}" y="{y0 + _MT}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        for t in range(5):  # y ticks
            v = lo + (hi - lo) * t / 4
            label = f"{10 ** v:.3g}" if log else f"{v:.3g}"
            yy = y0 + _MT + ph * (1 - t / 4)
            parts.append(f'<line x1="{_ML - 4}" x2="{_ML}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#999"/>'
                         f'<text x="{_ML - 6}" y="{yy + 4:.1f}" text-anchor="end">{label}</text>')
        line = []
        for j, p in enumerate(s.points):
            x = X(j)
            parts.append(f'<text transform="translate({x:.1f},{y0 + _MT + ph + 12}) rotate(30)" '
                         f'font-family="monospace" font-size="10">{xml_escape(p.key)}</text>')
            if not p.values:
                continue
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{Y(min(p.values)):.1f}" '
                         f'y2="{Y(max(p.values)):.1f}" stroke="#aaa" stroke-width="3"/>')
            line.append(f"{x:.1f},{Y(p.median):.1f}")
        if line:
            parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#1f77b4"/>')
        for j, p in enumerate(s.points):
            if p.values:
                r = 5 if p.flag else 3
                parts.append(f'<circle cx="{X(j):.1f}" cy="{Y(p.median):.1f}" r="{r}" '
                             f'fill="{colors[p.flag]}"><title>{xml_escape(p.key)}: median '
                             f'{p.median:.4g} over {len(p.values)} seed(s){" — " + p.flag if p.flag else ""}'
                             f'</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_svg(series: list[Series], path: str | Path) -> None:
    """Write the history plot as an SVG file (atomically)."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(history_svg(series))
    os.replace(tmp, path)


def select(trials: pd.DataFrame, metric: str, problem: str | None = None,
           optimizer: str | None = None) -> pd.DataFrame:
    """Rows matching the problem/optimizer globs; BenchInputError when none do or the metric is unknown."""
    import fnmatch

    df = trials
    if problem:
        df = df[[fnmatch.fnmatchcase(p, problem) for p in df["problem"]]]
    if optimizer:
        df = df[[fnmatch.fnmatchcase(o, optimizer) or fnmatch.fnmatchcase(lbl, optimizer)
                 for o, lbl in zip(df["optimizer"], df["label"])]]
    if len(df) == 0:
        raise BenchInputError("--problem/--optimizer: no trial matches")
    if metric not in COLUMN_METRICS and metric != FINAL:
        known = {k for m in df["metrics"] if m for k in m}
        if metric not in known:
            names = ", ".join([FINAL, *COLUMN_METRICS, *sorted(known)])
            raise BenchInputError(f"--metric: unknown metric {metric!r} (known: {names})")
    return df
