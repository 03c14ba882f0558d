"""`bench history`: one metric over git commits, from results directories of several commits.

**Series.** Trials are matched on their key (``key_id``: problem + params, optimizer + hparams,
dtype, device, budget, targets, evaluation schedule, threads) across commits: one series per
key, labelled as the leaderboard labels it.

**Points.** A point is one results directory (its ``source``; the run id when rows do not say)
at one commit (+dirty) and code, one value per seed. Two directories of one commit are two
points, never pooled into one sample. Points follow git's order of their commits (``git
rev-list`` of the repository when it knows them all, else the time their trials ended), then
their end time.

**Flags.** Each point is compared with the previous point of its series, seeds paired on
(key, seed), with the rules of bench_core.compare:

- deterministic values (final metrics, steps and steps to target on the CPU, no trial ended by
  timeout): equal on every paired seed, nothing to flag. A mean paired change beyond ``rel_tol``
  of the previous mean is ``better`` or ``worse`` (in the direction the rows recorded) when
  every paired seed moved the same way or the mean paired difference exceeds
  ``k`` standard errors; else it is ``changed`` (real, but the seeds disagree on its sign).
  A metric without a recorded direction (a metric plugin's measurement, such as peak memory)
  is shown, not judged.
- other values (not on the CPU, or a timeout): the mean paired difference beyond ``k`` standard
  errors and beyond ``rel_tol``.
- times (time_to_target_s, train_time_s, setup_time_s, eval_time_s): the ratio of the two points
  over the run effect of that pair of directories, i.e. the median ratio over every series they
  share (``compare.time_verdicts``: Bonferroni at ``alpha`` over those series), beyond ``rel_tol``;
  withheld when either directory ran with more load than CPUs (unless ``judge_loaded``).
- no seed in common: |mean_B − mean_A| > k · sqrt(s_A²/n_A + s_B²/n_B) and beyond ``rel_tol``.
- a change in how many seeds reached the target: ``changed``.

Two consecutive points of the same commit and code are an A/A pair: what would be flagged
between them is marked ``noise``, never better or worse (it says how far two runs of the same
code differ). For users without asv; asv itself is configured in asv.conf.json (docs/tracking.md).
"""
from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from html import escape as xml_escape
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import primary_metric, setting_labels
from .compare import oversubscribed_values, time_verdicts
from .errors import BenchInputError
from .groups import Groups, as_floats
from .paired import per_seed, seed_codes
from .store import write_atomically

COLUMN_METRICS = ("time_to_target_s", "steps_to_target", "train_time_s", "steps",
                  "setup_time_s", "eval_time_s")
TIME_METRICS = ("time_to_target_s", "train_time_s", "setup_time_s", "eval_time_s")
FINAL = "final"  # the final value of the problem's target metric (its primary metric)
NO_COMMIT = "(no commit)"


@dataclass
class Point:
    """One results directory at one commit and code in a series: the metric's value per seed."""

    commit: str
    dirty: bool
    by_seed: dict  # seed -> value
    seeds: int  # trials
    reached: int  # trials that reached the target
    source: str = ""  # the results directory (or run id)
    code_id: str = ""
    ended_at: object = None
    exact: bool = True  # values reproducible: on the CPU, no trial ended by timeout
    loaded: str | None = None  # "load L on C CPUs" when the directory's runs were oversubscribed
    flag: str = ""  # "", "better", "worse", "changed" or "noise"
    change: float | None = None  # relative change against the previous point (paired seeds)
    note: str = ""  # how the previous point was compared

    @property
    def key(self) -> str:
        """The commit as shown: short hash, '+dirty' when the work tree had changes."""
        short = self.commit[:10] if self.commit != NO_COMMIT else self.commit
        return short + ("+dirty" if self.dirty else "")

    @property
    def run(self) -> tuple:
        """(source, commit, dirty): the run this point belongs to, shared by every series."""
        return self.source, self.commit, self.dirty

    @property
    def values(self) -> list:
        """The values, in seed order."""
        return [self.by_seed[s] for s in sorted(self.by_seed)]

    @property
    def mean(self) -> float | None:
        """Mean over the seeds that have a value."""
        return float(np.mean(self.values)) if self.by_seed else None

    @property
    def median(self) -> float | None:
        """Median over the seeds that have a value."""
        return float(np.median(self.values)) if self.by_seed else None

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 with fewer than two values)."""
        return float(np.std(self.values, ddof=1)) if len(self.by_seed) > 1 else 0.0


@dataclass
class Series:
    """One trial key over commits, in commit order."""

    problem: str
    optimizer: str
    metric: str
    points: list = field(default_factory=list)
    key_id: str = ""
    direction: str | None = None  # "min", "max", or None when no row recorded it


#: A git object id as a results file may hold it; nothing else read from a file reaches git.
_COMMIT_ID = re.compile(r"[0-9a-f]{4,64}")


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


#: The trial columns ``build_history`` and ``select`` use (`bench history` reads only these).
COLUMNS = ("run_id", "key_id", "code_id", "problem", "problem_params", "optimizer", "hparams", "label",
           "seed", "status", "device", "dtype", "threads", "budget", "targets", "eval", "metrics",
           "directions", "git_commit", "git_dirty", "ended_at", "load_avg", "cpu_count") + COLUMN_METRICS


def read_runs(*dirs: str | Path, columns=None) -> pd.DataFrame:
    """The trials of several results directories, each row with its directory as ``source``
    (only `columns` when given, e.g. COLUMNS)."""
    from .store import read_trials

    frames = [read_trials(d, columns=columns).assign(source=str(d)) for d in dirs]
    return pd.concat(frames, ignore_index=True) if frames else read_trials(columns=columns).assign(source=[])


def _row_values(df: pd.DataFrame, metric: str) -> np.ndarray:
    """The value of `metric` of each row (NaN where it has none): a trial column, a metric of
    the row's ``metrics``, or for ``final`` its primary metric (found once per distinct targets
    and metric names)."""
    if metric in COLUMN_METRICS:
        return as_floats(df[metric].tolist())
    made: dict = {}
    out = []
    for targets, metrics in zip(df["targets"].tolist(), df["metrics"].tolist()):
        metrics = metrics or {}
        out.append(metrics.get(_primary(made, targets, metrics) if metric == FINAL else metric))
    return as_floats(out)


def _primary(made: dict, targets: str, metrics: dict) -> str | None:
    """primary_metric, found once per distinct (targets, metric names) and kept in `made`."""
    case = (targets, tuple(metrics))
    if case not in made:
        made[case] = primary_metric(targets, metrics)
    return made[case]


def _by_seed(codes: np.ndarray, n_points: int, seeds: np.ndarray, values: np.ndarray) -> list[dict]:
    """Per point: {seed: value} of its finite values, seeds in the order they first appear; the
    median when a seed appears twice (one directory holding one key and seed twice cannot
    happen by bench run)."""
    (seed_code,), _ = seed_codes(seeds)
    distinct = np.unique(np.asarray(seeds, dtype=np.int64))
    found = per_seed(codes, seed_code, values, np.isfinite(values), len(distinct))
    order = np.lexsort((found.first, found.key))
    bounds = np.searchsorted(found.key[order], np.arange(n_points + 1)).tolist()
    seed_list, value_list = distinct[found.seed[order]].tolist(), found.value[order].tolist()
    return [dict(zip(seed_list[lo:hi], value_list[lo:hi])) for lo, hi in itertools.pairwise(bounds)]


def _direction(directions: list, name: str, metric: str) -> str | None:
    """The recorded direction of `name` in the first of `directions` (parsed rows) that has one;
    trial columns are lower-is-better."""
    if metric in COLUMN_METRICS:
        return "min"
    for d in directions:
        found = d.get(name) if d else None
        if found:
            return found
    return None


def _parsed(texts: list) -> list:
    """JSON texts parsed once per distinct text (None for a missing or empty one)."""
    made: dict = {}
    return [made[t] if t in made else made.setdefault(t, json.loads(t) if isinstance(t, str) and t else None)
            for t in texts]


def build_history(trials: pd.DataFrame, metric: str = FINAL, repo: str | Path | None = None,
                  k: float = 3.0, rel_tol: float = 0.01, alpha: float = 0.05,
                  judge_loaded: bool = False) -> tuple[list[Series], str]:
    """Group trial rows into series over commits and flag changes beyond the noise (see the
    module docstring).

    ``metric``: a trial column (``time_to_target_s``, ``steps_to_target``, ``train_time_s``,
    ``steps``, ...), a metric name from the rows' ``metrics`` (``loss``, ``val_accuracy``, ...),
    or ``final`` (the final value of each problem's target metric). Rows carry their directory
    in ``source`` (``read_runs``); without it each run id is a point. Directions come from the
    rows' recorded ``directions``; trial columns (times, steps) are lower-is-better. Returns
    (series, ordering) where ordering says how commits were ordered: ``"git"`` or ``"ended_at"``.
    Every point's values and counts are computed at once (numpy).
    """
    if trials is None or len(trials) == 0:
        return [], "git"
    df = setting_labels(trials, by_code=False)
    df["source"] = df["source"] if "source" in df else df["run_id"]
    df["commit"] = df["git_commit"].fillna(NO_COMMIT)
    df["dirty"] = df["git_dirty"].fillna(False).astype(bool)
    order = git_order(df["commit"].unique(), repo)
    ordering = "git"
    if order is None:
        ordering = "ended_at"
        first_end = df.groupby("commit")["ended_at"].min().sort_values(kind="stable")
        order = list(first_end.index)
    rank = {c: i for i, c in enumerate(order)}
    point_cols = ["key_id", "commit", "dirty", "code_id", "source"]
    codes = df.groupby(point_cols, sort=False, dropna=False).ngroup().to_numpy()  # in order of appearance
    n_points = int(codes.max()) + 1
    groups = Groups(codes, n_points)
    status = df["status"].to_numpy(dtype=object)
    reached = groups.count(status == "target_reached").tolist()
    exact = ((groups.count(df["device"].astype(str).to_numpy() != "cpu") == 0)
             & (groups.count(status == "timeout") == 0)).tolist()
    loads, cpus = (as_floats(df[c].tolist()) for c in ("load_avg", "cpu_count"))
    load = groups.medians(loads, ~np.isnan(loads)).tolist()
    n_cpus = groups.medians(cpus, ~np.isnan(cpus)).tolist()
    ends = df["ended_at"].groupby(codes).max().reindex(range(n_points)).tolist()
    by_seed = _by_seed(codes, n_points, df["seed"].to_numpy(), _row_values(df, metric))
    first = groups.first_index().tolist()
    lists = {c: df[c].tolist() for c in point_cols + ["problem_label", "label", "targets", "metrics"]}
    directions = _parsed(df["directions"].tolist())
    rows_of = groups.rows()
    series: dict = {}
    made: dict = {}
    for i, row in enumerate(first):
        key_id = lists["key_id"][row]
        s = series.get(key_id)
        if s is None:
            name = metric
            if metric == FINAL:
                name = _primary(made, lists["targets"][row], lists["metrics"][row] or {}) or metric
            s = series[key_id] = Series(problem=lists["problem_label"][row], optimizer=lists["label"][row],
                                        metric=name, key_id=key_id,
                                        direction=_direction([directions[r] for r in rows_of[i].tolist()],
                                                             name, metric))
        n_cpu = None if math.isinf(n_cpus[i]) else int(n_cpus[i])
        s.points.append(Point(
            commit=lists["commit"][row], dirty=bool(lists["dirty"][row]), by_seed=by_seed[i],
            seeds=int(groups.counts[i]), reached=reached[i], source=str(lists["source"][row]),
            code_id=str(lists["code_id"][row]), ended_at=None if pd.isna(ends[i]) else ends[i], exact=exact[i],
            loaded=oversubscribed_values(None if math.isinf(load[i]) else load[i], n_cpu)))
    out = sorted(series.values(), key=lambda s: (s.problem, s.optimizer, s.key_id))
    for s in out:
        s.points.sort(key=lambda p: (rank.get(p.commit, len(order)), p.dirty,
                                     pd.Timestamp(p.ended_at) if p.ended_at is not None else pd.Timestamp.min.tz_localize("UTC")))
    if metric in TIME_METRICS:
        flag_times(out, alpha=alpha, rel_tol=rel_tol, judge_loaded=judge_loaded)
    else:
        for s in out:
            flag_changes(s.points, k=k, rel_tol=rel_tol, direction=s.direction)
    return out, ordering


def _same_code(a: Point, b: Point) -> bool:
    return (a.commit, a.dirty, a.code_id) == (b.commit, b.dirty, b.code_id)


def _flag(delta: float, direction: str) -> str:
    return "better" if (delta > 0) == (direction == "max") else "worse"


def _judge_pair(prev: Point, p: Point, k: float, rel_tol: float, direction: str | None) -> tuple[str, float, str]:
    """(flag, relative change, note) of `p` against `prev` for a value that is not a time."""
    if direction is None:
        change = p.mean / prev.mean - 1.0 if prev.mean else None
        return "", change, "no recorded direction (a metric plugin's measurement): not judged"
    seeds = sorted(set(prev.by_seed) & set(p.by_seed))
    if not seeds:
        delta = p.mean - prev.mean
        change = delta / abs(prev.mean) if prev.mean else (math.inf if delta else 0.0)
        noise = k * math.sqrt(prev.std ** 2 / len(prev.by_seed) + p.std ** 2 / len(p.by_seed))
        moved = abs(delta) > noise and abs(delta) > rel_tol * abs(prev.mean)
        return (_flag(delta, direction) if moved else ""), change, "unpaired (no seed in common)"
    a = np.array([prev.by_seed[s] for s in seeds])
    d = np.array([p.by_seed[s] for s in seeds]) - a
    n, mean, base = len(d), float(d.mean()), float(a.mean())
    change = mean / abs(base) if base else (math.inf if mean else 0.0)
    if not d.any():
        return "", 0.0, f"equal on {n} paired seed(s)"
    if abs(mean) <= rel_tol * abs(base):
        return "", change, f"within rel_tol on {n} paired seed(s)"
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    beyond = n > 1 and (sd == 0.0 or abs(mean) > k * sd / math.sqrt(n))
    same_way = bool((d > 0).all() or (d < 0).all())
    if prev.exact and p.exact:
        note = f"deterministic, {n} paired seed(s)" + (", all moved the same way" if same_way else "")
        return (_flag(mean, direction) if same_way or beyond else "changed"), change, note
    return (_flag(mean, direction) if beyond else ""), change, f"paired over {n} seed(s), k = {k:g}"


def flag_changes(points: list[Point], k: float = 3.0, rel_tol: float = 0.01,
                 direction: str | None = "min") -> None:
    """Set ``change``, ``flag`` and ``note`` on each point against the previous point that has
    a value (a value that is not a time; see the module docstring)."""
    prev = None
    for p in points:
        flag = ""
        if prev is not None and p.by_seed:
            flag, p.change, p.note = _judge_pair(prev, p, k, rel_tol, direction)
        if prev is not None and not flag and p.reached != prev.reached:
            flag, p.note = "changed", f"{prev.reached} -> {p.reached} trials reached the target"
        if flag and prev is not None and _same_code(prev, p):
            flag, p.note = "noise", "same code as the previous point: " + p.note
        p.flag = flag
        if p.by_seed:
            prev = p


def flag_times(series: list[Series], alpha: float = 0.05, rel_tol: float = 0.01,
               judge_loaded: bool = False) -> None:
    """Flag time values: each pair of consecutive points against the run effect of their two
    directories over every series they share (``compare.time_verdicts``)."""
    transitions: dict = {}
    for s in series:
        prev = None
        for p in s.points:
            if prev is not None and p.by_seed:
                transitions.setdefault((prev.run, p.run), []).append((prev, p))
            if p.by_seed:
                prev = p
    for items in transitions.values():
        pairs = {}
        for i, (a, b) in enumerate(items):
            seeds = [x for x in sorted(set(a.by_seed) & set(b.by_seed)) if a.by_seed[x] > 0 and b.by_seed[x] > 0]
            if seeds:
                pairs[i] = ([a.by_seed[x] for x in seeds], [b.by_seed[x] for x in seeds])
        runs, judged, _ = time_verdicts({"t": pairs}, alpha, rel_tol)
        run, devs = runs["t"], judged["t"]
        for i, (a, b) in enumerate(items):
            flag = ""
            loaded = None if judge_loaded else (a.loaded or b.loaded)
            if loaded:
                b.note = f"not judged: ran at {loaded}"
            elif i not in devs:
                b.note = "no paired seeds" if i not in pairs else "fewer than 3 series: machine speed and code cannot be told apart"
            else:
                dev, verdict = devs[i]
                b.change = dev.ratio - 1.0
                b.note = f"×{dev.rel_ratio:.3g} over the run effect ×{run:.3g}"
                flag = {"regression": "worse", "improvement": "better"}.get(verdict, "")
            if i in pairs and b.change is None:
                lb, lh = np.log(pairs[i][0]), np.log(pairs[i][1])
                b.change = math.exp(float(lh.mean() - lb.mean())) - 1.0
            if not flag and b.reached != a.reached:
                flag = "changed"
            if flag and _same_code(a, b):
                flag, b.note = "noise", "same code as the previous point: " + b.note
            b.flag = flag


def is_commit_id(value) -> bool:
    """Whether `value` is a full or abbreviated hexadecimal git object id (4 to 64 digits): the
    only form of a value read from a results file that may reach git."""
    return isinstance(value, str) and _COMMIT_ID.fullmatch(value) is not None


def commit_subjects(commits, repo: str | Path | None = None) -> dict:
    """{commit: subject line} for the commits git knows (empty when git is unavailable). A value
    that is not a commit id (e.g. ``--output=FILE`` read from a results file) never reaches git."""
    out = {}
    for c in commits:
        if not is_commit_id(c):
            continue
        try:
            res = subprocess.run(["git", "log", "-1", "--format=%s", "--end-of-options", c, "--"], cwd=repo or ".",
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
    """An SVG document: one panel per series, the median over seeds per point with the seeds'
    range as a bar; flagged points drawn red (worse), green (better), orange (changed) or
    purple (noise: two runs of the same code differ)."""
    panels = [s for s in series if any(p.values for p in s.points)]
    height = _H * max(len(panels), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
             f'viewBox="0 0 {_W} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{_W}" height="{height}" fill="white"/>']
    colors = {"worse": "#d62728", "better": "#2ca02c", "changed": "#ff7f0e", "noise": "#9467bd", "": "#1f77b4"}
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
    write_atomically(path, lambda tmp: Path(tmp).write_text(history_svg(series)))


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
