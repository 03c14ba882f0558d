"""Statistics over seeds for one or more results directories.

Everything here takes the trials DataFrame of ``bench_core.store.read_trials`` and returns plain
rows (lists of dicts), so the terminal tables, the HTML report and ``--json`` outputs share them:

- ``leaderboard``: per problem and optimizer setting, over seeds: success rate (Wilson interval),
  median, interquartile range and bootstrap 95% interval of time-to-target, steps-to-target and
  the final primary metric.
- ``performance_profiles`` / ``ranking``: Dolan–Moré performance profiles over the problems of
  one kind, with τ up to 4 as AlgoPerf, the area under each profile, and a ranking.
- ``settings_summary`` / ``tuning_summary``: when a suite swept hyperparameters, each setting's
  statistics, the best setting per optimizer (chosen on validation metrics), and how many
  settings reach the target.

Time-to-target statistics in the leaderboard are over the seeds that reached the target (the
success rate says how many did). Profiles and rankings need one cost per problem and optimizer:
the median over all seeds of the time to target, a seed that missed counting as infinite, so an
optimizer that misses on half the seeds or more has an infinite cost on that problem.
"""
from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from .groups import (
    BOOTSTRAP_SAMPLES,
    BOOTSTRAP_SEED,
    Groups,
    as_floats,
    group_codes,
    matrix_stats,
)
from .selection import FAILED
from .selection import selection_metric as _selection_metric

REACHED = "target_reached"
TAU_MAX = 4.0
#: The fields of a trial's key that a display label may need to tell two settings apart.
_KEY_FIELDS = ("hparams", "dtype", "device", "threads", "budget", "targets", "eval")


# --------------------------------------------------------------------------- metrics and labels
def primary_metric(targets_json: str, metrics: dict) -> str | None:
    """The metric a problem is judged on: its first target, else loss, else rel_residual."""
    targets = json.loads(targets_json or "{}")
    for name in list(targets) + ["loss", "rel_residual"]:
        if name in metrics:
            return name
    return next(iter(metrics), None)


def selection_metric(targets_json: str, metrics: dict) -> str | None:
    """The validation metric a hyperparameter setting is chosen on (bench_core.selection's rule),
    from a row's targets (JSON) and the metrics it reports."""
    return _selection_metric(json.loads(targets_json or "{}"), metrics)


def higher_is_better(metric: str, directions: dict | str | None = None) -> bool:
    """Whether higher is better for `metric`: from the directions a row recorded (its
    ``directions`` column, a dict or its JSON) when given, else from the installed plugins'
    MetricSpecs. An undeclared metric counts as lower-is-better; nothing is guessed from names."""
    if directions is not None:
        if isinstance(directions, str):
            directions = json.loads(directions or "{}")
        return directions.get(metric) == "max"
    from .registry import get_registry

    spec = get_registry().metrics.get(metric)
    return bool(spec is not None and spec.higher_is_better)


def group_direction(g: dict, metric: str | None) -> bool:
    """higher_is_better for `metric` from the recorded directions of a group's rows."""
    if not metric:
        return False
    for d in g.get("directions", []):
        if isinstance(d, str) and d:
            found = json.loads(d).get(metric)
            if found:
                return found == "max"
    return False


def problem_labels(df: pd.DataFrame) -> pd.Series:
    """The problem's name, with its params when one suite ran it with several param sets."""
    if not len(df):
        return pd.Series(dtype=str)
    pairs = df[["problem", "problem_params"]].dropna().drop_duplicates()
    several = set(pairs["problem"][pairs["problem"].duplicated(keep=False)].tolist())
    if not several:
        return pd.Series(df["problem"].tolist(), index=df.index, dtype=object)

    def label(problem, params_json):
        if problem not in several:
            return problem
        params = json.loads(params_json)
        return f"{problem}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
    memo: dict = {}
    return pd.Series([memo[k] if k in memo else memo.setdefault(k, label(*k))
                      for k in zip(df["problem"].tolist(), df["problem_params"].tolist())],
                     index=df.index, dtype=object)


def short_label(optimizer: str, hparams_json: str) -> str:
    """optimizer(hparams) with floats to 3 significant digits: for display only."""
    hparams = json.loads(hparams_json or "{}")
    if not hparams:
        return optimizer
    return f"{optimizer}({', '.join(f'{k}={_short(v)}' for k, v in sorted(hparams.items()))})"


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def setting_labels(df: pd.DataFrame, by_code: bool = True) -> pd.DataFrame:
    """`df` with ``problem_label``, ``group_id`` and a display ``label`` that is unique per group
    of what was run: the trial key (``key_id``) and, with `by_code`, the code (``code_id``).

    Labels are shortened for display; where two groups of one problem would show the same short
    label, the key fields in which they differ (whole hparams, dtype, device, threads, budget,
    targets, eval) are added, and the code fingerprint where only the code differs. Grouping by
    (problem_label, label) is then grouping by key (and code): nothing unlike is pooled."""
    df = df.copy()
    if not len(df):
        for col in ("problem_label", "group_id"):
            df[col] = pd.Series(dtype=object)
        return df
    df["problem_label"] = problem_labels(df)
    gid = df["key_id"].astype(str)
    if by_code:
        gid = gid + ":" + df["code_id"].astype(str)
    df["group_id"] = gid
    memo: dict = {}
    short = [memo[k] if k in memo else memo.setdefault(k, short_label(*k))
             for k in zip(df["optimizer"].tolist(), df["hparams"].tolist())]
    df["label"] = short
    firsts = df.assign(_short=short).drop_duplicates("group_id")
    clashing = firsts[firsts.duplicated(["problem_label", "_short"], keep=False)]
    relabel = {}
    for (_, _lab), clash in clashing.groupby(["problem_label", "_short"]):
        fields = [f for f in _KEY_FIELDS if f in clash and clash[f].astype(str).nunique() > 1]
        if by_code and not fields and clash["code_id"].nunique() > 1:
            fields = ["code_id"]
        for _, r in clash.iterrows():
            extra = ", ".join(f"{f}={r[f]}" for f in fields) or f"key={r['key_id'][:8]}"
            relabel[r["group_id"]] = f"{r['_short']} [{extra}]"
    if relabel:
        mapped = df["group_id"].map(relabel)
        df["label"] = mapped.where(mapped.notna(), df["label"])
    return df


# --------------------------------------------------------------------------- statistics
def _finite(values) -> np.ndarray:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return np.asarray(out, dtype=float)


def _finite_fast(values) -> np.ndarray:
    """_finite(values) through one numpy conversion where it can (None becomes NaN, then dropped)."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return _finite(values)
    return arr[np.isfinite(arr)] if arr.ndim == 1 else _finite(values)


def median_iqr(values) -> tuple[float | None, float | None, float | None]:
    """(median, first quartile, third quartile) of the finite values; Nones when there are none."""
    vals = _finite(values)
    if not len(vals):
        return None, None, None
    q1, med, q3 = np.percentile(vals, [25, 50, 75])
    return float(med), float(q1), float(q3)


def bootstrap_ci(values, stat=np.median, level: float = 0.95, n_boot: int = BOOTSTRAP_SAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of `stat` over the finite values, with a fixed seed so the
    same results give the same interval. With a single value the interval is that value; with
    few values it cannot be wider than their range, so read it as "the spread seen"."""
    vals = _finite(values)
    if not len(vals):
        return None, None
    if len(vals) == 1 or np.all(vals == vals[0]):
        return float(vals[0]), float(vals[0])
    rng = np.random.default_rng(seed)
    samples = vals[rng.integers(0, len(vals), size=(n_boot, len(vals)))]
    stats = stat(samples, axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval of a success rate (sound with few trials, unlike p ± 2σ)."""
    if n <= 0:
        return None, None
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12))


def _stats(values) -> dict:
    med, q1, q3 = median_iqr(values)
    lo, hi = bootstrap_ci(values)
    return {"median": med, "q1": q1, "q3": q3, "ci_low": lo, "ci_high": hi}


def batch_stats(value_lists: list, bootstrap: bool = True) -> list[dict]:
    """``_stats`` of each list of values (median, q1, q3 and, with `bootstrap`, ci_low and
    ci_high), equal to computing them one list at a time: lists with the same number of finite
    values are stacked and computed together (``groups.matrix_stats``: the bootstrap draws the
    same resampling indices for every list of a length, as ``bootstrap_ci`` does with its fixed
    seed)."""
    finite = [_finite_fast(v) for v in value_lists]
    out: list = [None] * len(finite)
    by_n: dict = {}
    for i, v in enumerate(finite):
        by_n.setdefault(len(v), []).append(i)
    for n, idx in by_n.items():
        if n == 0:
            for i in idx:
                out[i] = {"median": None, "q1": None, "q3": None, "ci_low": None, "ci_high": None}
            continue
        med, q1, q3, lo, hi = matrix_stats(np.stack([finite[i] for i in idx]), bootstrap)
        for j, i in enumerate(idx):
            out[i] = {"median": float(med[j]), "q1": float(q1[j]), "q3": float(q3[j]),
                      "ci_low": float(lo[j]) if bootstrap else None, "ci_high": float(hi[j]) if bootstrap else None}
    return out


def batch_medians(value_lists: list) -> list[float]:
    """np.median of each list (infinities allowed, as ``_cost`` uses), lists of one length together."""
    out: list = [None] * len(value_lists)
    by_n: dict = {}
    for i, v in enumerate(value_lists):
        by_n.setdefault(len(v), []).append(i)
    for n, idx in by_n.items():
        if n == 0:
            for i in idx:
                out[i] = math.inf
            continue
        med = np.median(np.asarray([value_lists[i] for i in idx], dtype=float), axis=1)
        for j, i in enumerate(idx):
            out[i] = float(med[j])
    return out


def _final(metrics, name):
    if not isinstance(metrics, dict) or name is None:
        return None
    return metrics.get(name)


def first_metrics(metrics_list) -> dict:
    """The first non-empty metrics map of a group (a trial that failed early may have none)."""
    return next((m for m in metrics_list if isinstance(m, dict) and m), {})


def _grouping(trials: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, Groups, list[tuple]]:
    """(labelled trials, their rows grouped by the columns `keys`, each group's key), groups in
    the order of their keys' text."""
    df = trials if "group_id" in trials else setting_labels(trials)
    codes, found = group_codes(df, keys)
    return df, Groups(codes, len(found)), found


def _plain(stats: dict) -> dict:
    """``Groups.stats`` arrays as lists of plain floats, None where a group had no values (NaN),
    with "iqr" and "ci": the (q1, q3) and (ci_low, ci_high) pairs of each group."""
    out = {k: [None if v != v else v for v in a.tolist()]  # noqa: PLR0124 (v != v: NaN, the fast way)
           for k, a in stats.items() if k != "n"}
    out["iqr"] = list(zip(out["q1"], out["q3"]))
    out["ci"] = list(zip(out["ci_low"], out["ci_high"]))
    return out


def _reached(df: pd.DataFrame) -> np.ndarray:
    return np.asarray([s == REACHED for s in df["status"].tolist()], dtype=bool)


def _group_metric(df: pd.DataFrame, grp: Groups, choose) -> list:
    """Per group, choose(targets JSON of its first row, its first non-empty metrics map),
    computed once per distinct (targets, metric names)."""
    metrics, targets = df["metrics"].tolist(), df["targets"].tolist()
    first = grp.first_index()
    first_m = grp.first_index([isinstance(m, dict) and bool(m) for m in metrics])
    memo: dict = {}
    out = []
    for f, fm in zip(first.tolist(), first_m.tolist()):
        m = metrics[fm] if fm >= 0 else {}
        key = (targets[f], tuple(m))
        if key not in memo:
            memo[key] = choose(targets[f], m)
        out.append(memo[key])
    return out


def _row_values(metrics: list, names: list) -> list:
    """Per row, its metrics map's value of `names[row]` (None where absent)."""
    return [m.get(n) if isinstance(m, dict) and n is not None else None for m, n in zip(metrics, names)]


class _Directions:
    """The recorded direction of a metric by the first of some rows that names it (as
    ``group_direction``), each rows' ``directions`` JSON parsed once."""

    def __init__(self, df: pd.DataFrame):
        self.texts = df["directions"].tolist()
        self.parsed: dict = {}

    def found(self, i: int, metric: str | None):
        """The direction row i records for `metric` ("min"/"max"), or None."""
        return self._lookup(self.texts[i], metric)

    def per_group(self, grp: Groups, metric_of: list) -> list[bool]:
        """Per group, whether its metric (`metric_of`) is higher-is-better by its rows (each
        distinct directions text and metric looked up once)."""
        memo: dict = {}
        hits = []
        for d, g in zip(self.texts, grp.codes.tolist()):
            key = (d, metric_of[g])
            if key not in memo:
                memo[key] = self._lookup(d, key[1])
            hits.append(memo[key])
        first = grp.first_index([bool(h) for h in hits])
        return [bool(i >= 0 and hits[i] == "max") for i in first.tolist()]

    def _lookup(self, d, metric: str | None):
        if not (isinstance(d, str) and d and metric):
            return None
        if d not in self.parsed:
            self.parsed[d] = json.loads(d)
        return self.parsed[d].get(metric)

    def of_rows(self, rows, metric: str | None) -> bool:
        """Whether `metric` is higher-is-better by the first of `rows` that names it."""
        return next((h for h in (self.found(i, metric) for i in rows) if h), None) == "max"


def _costs_per_row(values: list, hit: np.ndarray) -> np.ndarray:
    """A row's to-target cost: its value where it reached the target, else ∞ (a miss)."""
    v = as_floats(values)
    return np.where(np.asarray(hit, dtype=bool) & ~np.isnan(v), v, math.inf)


def _sorted_distinct(grp: Groups, values: list, mask=None) -> list[list]:
    return [sorted(v) for v in grp.distinct(values, mask)]


# --------------------------------------------------------------------------- leaderboard
#: The trial columns the leaderboard, the settings summary and the ranking read.
ANALYSIS_COLUMNS = ("problem", "problem_params", "key_id", "code_id", "kind", "optimizer", "hparams",
                    "label", "seed", "status", "error", "time_to_target_s", "steps_to_target",
                    "train_time_s", "steps", "metrics", "targets", "directions", "git_commit", "git_dirty",
                    "host", "dtype", "device", "threads", "budget", "eval", "load_avg", "cpu_count")


def leaderboard(trials: pd.DataFrame, per_problem: int | None = None) -> list[dict]:
    """One row per (problem, optimizer with hparams) over seeds.

    Keys: problem, optimizer (the label), optimizer_name, hparams, kind, seeds (trials),
    n_seeds (distinct seeds), statuses, success_rate, success_ci; time_to_target_s,
    steps_to_target (medians over the seeds that reached the target) with their ``*_iqr`` and
    ``*_ci`` (bootstrap 95%) pairs; metric (the primary metric), higher_is_better, final_metric
    (median over seeds) with final_metric_iqr and final_metric_ci; final_metrics (every metric
    recorded: {name: {median, q1, q3}}); train_time_s, steps; cost (the
    median time to target, a miss counting as ∞); errors; provenance (commits and hosts).
    Rows are ordered per problem: most successful first, then fastest to target, then best metric.
    Every group is computed at once (``bench_core.groups``), bitwise as one group at a time.
    With `per_problem`, only the first `per_problem` rows of each problem: the same rows as the
    full leaderboard's first ones, the others' statistics never computed (a terminal table).
    """
    if trials is None or len(trials) == 0:
        return []
    df, grp, found = _grouping(trials, ["problem_label", "label"])
    if per_problem is not None:
        shown = _first_groups(df, grp, found, per_problem)
        if len(shown) < len(found):
            df, grp, found = _grouping(df[np.isin(grp.codes, shown)], ["problem_label", "label"])
    codes = grp.codes
    metrics = df["metrics"].tolist()
    hit = _reached(df)
    metric_of = _group_metric(df, grp, primary_metric)
    hib = _Directions(df).per_group(grp, metric_of)
    first = grp.first_index().tolist()
    statuses = [dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
                for c in grp.value_counts([str(s) for s in df["status"].tolist()])]
    n_seeds = grp.n_distinct(df["seed"].tolist()).tolist()
    threads = df["threads"].tolist()
    threads = [sorted({int(t) for t in v}) for v in
               grp.distinct(threads, ~np.isnan(as_floats(threads)))]
    commits = [str(c)[:10] + ("+dirty" if d is True else "") if isinstance(c, str) else None
               for c, d in zip(df["git_commit"].tolist(), df["git_dirty"].tolist())]
    commits = _sorted_distinct(grp, commits, [c is not None for c in commits])
    hosts = df["host"].tolist()
    hosts = _sorted_distinct(grp, hosts, [isinstance(h, str) for h in hosts])
    errors: list = [[] for _ in found]
    error = df["error"].tolist()
    for i in grp.order.tolist():
        if isinstance(error[i], str) and error[i]:
            errors[codes[i]].append(error[i])
    memo: dict = {}
    names = [memo.setdefault(tuple(v), sorted({n for keys in v for n in keys})) for v in
             grp.distinct([tuple(m) if isinstance(m, dict) else () for m in metrics])]
    ttt = _plain(grp.stats(df["time_to_target_s"].tolist(), hit))
    stt = _plain(grp.stats(df["steps_to_target"].tolist(), hit))
    fin = _plain(grp.stats(_row_values(metrics, [metric_of[c] for c in codes.tolist()])))
    per_name = {}
    for name in sorted({n for ns in names for n in ns}):
        st = _plain(grp.stats([m.get(name) if isinstance(m, dict) else None for m in metrics], bootstrap=False))
        per_name[name] = [{"median": a, "q1": b, "q3": c} for a, b, c in zip(st["median"], st["q1"], st["q3"])]
    train = _plain(grp.stats(df["train_time_s"].tolist(), bootstrap=False))["median"]
    steps = _plain(grp.stats(df["steps"].tolist(), bootstrap=False))["median"]
    costs = grp.medians(_costs_per_row(df["time_to_target_s"].tolist(), hit)).tolist()
    n_rows, n_hit = grp.counts.tolist(), grp.count(hit).tolist()
    optimizer, hparams, kind = (df[c].tolist() for c in ("optimizer", "hparams", "kind"))
    wilson: dict = {}
    rows = []
    for g, (problem, label) in enumerate(found):
        n, reached, f = n_rows[g], n_hit[g], first[g]
        if (reached, n) not in wilson:
            wilson[(reached, n)] = wilson_interval(reached, n)
        rows.append({
            "problem": problem, "optimizer": label, "optimizer_name": optimizer[f],
            "hparams": hparams[f], "kind": kind[f],
            "seeds": n, "n_seeds": n_seeds[g],
            "statuses": statuses[g], "success_rate": reached / n,
            "success_ci": wilson[(reached, n)],
            "time_to_target_s": ttt["median"][g] if reached else None,
            "time_to_target_iqr": ttt["iqr"][g], "time_to_target_ci": ttt["ci"][g],
            "steps_to_target": stt["median"][g] if reached else None,
            "steps_to_target_iqr": stt["iqr"][g], "steps_to_target_ci": stt["ci"][g],
            "metric": metric_of[g], "higher_is_better": hib[g],
            "threads": threads[g],
            "final_metric": fin["median"][g],
            "final_metric_iqr": fin["iqr"][g], "final_metric_ci": fin["ci"][g],
            "final_metrics": {name: per_name[name][g] for name in names[g]},
            "train_time_s": train[g], "steps": steps[g], "cost": costs[g],
            "errors": errors[g],
            "provenance": {"commits": commits[g], "hosts": hosts[g]},
        })

    rows.sort(key=lambda r: _rank_key(r["problem"], r["success_rate"], r["time_to_target_s"],
                                      r["final_metric"], r["higher_is_better"]))
    return rows


def _rank_key(problem, success_rate: float, time_to_target, final_metric, higher_is_better: bool) -> tuple:
    """The leaderboard's order within a problem: most successful first, then fastest to target
    (a miss last), then best final metric (none last)."""
    fm = math.inf if final_metric is None else (-final_metric if higher_is_better else final_metric)
    return (problem, -success_rate, time_to_target if time_to_target is not None else math.inf, fm)


def _first_groups(df: pd.DataFrame, grp: Groups, found: list[tuple], per_problem: int) -> np.ndarray:
    """The codes of the groups that are the first `per_problem` leaderboard rows of their
    problem, from the same statistics (bitwise) that order the full leaderboard."""
    hit = _reached(df)
    metric_of = _group_metric(df, grp, primary_metric)
    hib = _Directions(df).per_group(grp, metric_of)
    ttt = _plain(grp.stats(df["time_to_target_s"].tolist(), hit, bootstrap=False))["median"]
    fin = _plain(grp.stats(_row_values(df["metrics"].tolist(), [metric_of[c] for c in grp.codes.tolist()]),
                           bootstrap=False))["median"]
    n_rows, n_hit = grp.counts.tolist(), grp.count(hit).tolist()
    keys = [_rank_key(problem, n_hit[g] / n_rows[g], ttt[g] if n_hit[g] else None, fin[g], hib[g])
            for g, (problem, _) in enumerate(found)]
    taken: dict = {}
    shown = []
    for g in sorted(range(len(found)), key=keys.__getitem__):
        problem = found[g][0]
        if taken.get(problem, 0) < per_problem:
            taken[problem] = taken.get(problem, 0) + 1
            shown.append(g)
    return np.asarray(sorted(shown), dtype=np.int64)


# --------------------------------------------------------------------------- tuning
def settings_summary(trials: pd.DataFrame) -> list[dict]:
    """One row per (problem, optimizer, setting): success rate, median time to target (over the
    seeds that reached it), cost, the selection (validation) metric's median final value, and
    ``best`` marking each optimizer's best setting on the problem, by the one rule of
    bench_core.selection (success rate, median steps to target, selection metric; the same
    numbers as ``selection.setting_rank``, every setting computed at once)."""
    if trials is None or len(trials) == 0:
        return []
    df, grp, found = _grouping(trials, ["problem_label", "optimizer", "label"])
    metrics = df["metrics"].tolist()
    targets = df["targets"].tolist()
    first = grp.first_index().tolist()
    first_m = grp.first_index([isinstance(m, dict) and bool(m) for m in metrics]).tolist()
    rows_of = grp.rows()
    # settings of one (problem, optimizer) are consecutive: its selection metric comes from its
    # first setting's targets and the first non-empty metrics over its settings in order
    outer: dict = {}
    for g, (problem, opt, _) in enumerate(found):
        outer.setdefault((problem, opt), []).append(g)
    metric_of, hib_of = [None] * len(found), [False] * len(found)
    directions = _Directions(df)
    memo: dict = {}
    for gs in outer.values():
        fm = next((first_m[g] for g in gs if first_m[g] >= 0), -1)
        m = metrics[fm] if fm >= 0 else {}
        key = (targets[first[gs[0]]], tuple(m))
        if key not in memo:
            memo[key] = selection_metric(key[0], m)
        hib = directions.of_rows(rows_of[gs[0]].tolist(), memo[key])
        for g in gs:
            metric_of[g], hib_of[g] = memo[key], hib
    codes = grp.codes.tolist()
    hit = _reached(df)
    values = _row_values(metrics, [metric_of[c] for c in codes])
    ok = [s not in FAILED for s in df["status"].tolist()]
    steps = [float(k) if h and k is not None and math.isfinite(float(k)) else math.inf
             for k, h in zip(df["steps_to_target"].tolist(), hit)]
    ttt = _plain(grp.stats(df["time_to_target_s"].tolist(), hit, bootstrap=False))["median"]
    sel = _plain(grp.stats(values, bootstrap=False))["median"]
    costs = grp.medians(_costs_per_row(df["time_to_target_s"].tolist(), hit)).tolist()
    used = np.asarray(ok) & np.isfinite(as_floats(values))
    rank_steps, rank_value = grp.medians(steps).tolist(), grp.medians(values, used).tolist()
    n_used = grp.count(used).tolist()
    n_rows, n_hit = grp.counts.tolist(), grp.count(hit).tolist()
    kind, hparams = df["kind"].tolist(), df["hparams"].tolist()
    parsed: dict = {}
    rows = []
    for gs in outer.values():
        group = []
        for g in gs:
            problem, opt, label = found[g]
            success = n_hit[g] / n_rows[g]
            value = rank_value[g]
            if n_used[g] and hib_of[g]:
                value = -value
            group.append(((-success, rank_steps[g], value, label), {
                "problem": problem, "optimizer": opt, "label": label, "kind": kind[first[g]],
                "hparams": dict(parsed[h] if (h := hparams[first[g]]) in parsed
                                else parsed.setdefault(h, json.loads(h or "{}"))), "seeds": n_rows[g],
                "success_rate": success, "reaches_target": bool(math.isfinite(costs[g])),
                "time_to_target_s": ttt[g], "cost": costs[g],
                "selection_metric": metric_of[g], "higher_is_better": hib_of[g],
                "selection_value": sel[g], "best": False}))
        group.sort(key=lambda rr: rr[0])
        group[0][1]["best"] = True
        rows += [r for _, r in group]
    return rows


def tuning_summary(trials: pd.DataFrame, settings: list[dict] | None = None) -> list[dict]:
    """Per problem and optimizer that ran with more than one hyperparameter setting: the number
    of settings, the best one (see ``settings_summary``), its cost and selection metric, and the
    sensitivity: how many settings reach the target (their median seed does, i.e. a finite cost).
    ``settings``: the output of ``settings_summary(trials)`` when the caller has it already."""
    rows = []
    settings = settings_summary(trials) if settings is None else settings
    groups: dict = {}
    for r in settings:
        groups.setdefault((r["problem"], r["optimizer"]), []).append(r)
    for (problem, opt), group in groups.items():
        if len(group) < 2:
            continue
        best = next(r for r in group if r["best"])
        n_reach = sum(r["reaches_target"] for r in group)
        rows.append({"problem": problem, "optimizer": opt, "settings": len(group),
                     "best_label": best["label"], "best_hparams": best["hparams"],
                     "selection_metric": best["selection_metric"],
                     "best_value": best["selection_value"], "best_success_rate": best["success_rate"],
                     "best_time_to_target_s": best["time_to_target_s"],
                     "settings_reaching_target": n_reach, "sensitivity": n_reach / len(group)})
    return rows


# --------------------------------------------------------------------------- profiles
def profile_costs(trials: pd.DataFrame, by: str = "optimizer",
                  settings: list[dict] | None = None) -> dict[str, pd.DataFrame]:
    """Cost tables for performance profiles, one per problem kind: problems × solvers, each cell
    the median time to target over seeds (a miss counts as ∞). With ``by="optimizer"`` each
    optimizer is represented on each problem by its best setting (``settings_summary``); with
    ``by="label"`` every setting is a solver of its own. A solver that did not run on a problem
    of its kind counts as a miss there. ``settings``: the output of ``settings_summary(trials)``
    when the caller has it already."""
    if trials is None or len(trials) == 0:
        return {}
    out = {}
    if by == "optimizer":
        cells = [(r["kind"], r["problem"], r["optimizer"], r["cost"])
                 for r in (settings if settings is not None else settings_summary(trials)) if r["best"]]
    elif by == "label":
        cells = [(r["kind"], r["problem"], r["optimizer"], r["cost"]) for r in leaderboard(trials)]
    else:
        raise ValueError(f"by must be 'optimizer' or 'label', not {by!r}")
    for kind in sorted({c[0] for c in cells}):
        sub = pd.DataFrame([c[1:] for c in cells if c[0] == kind], columns=["problem", "solver", "cost"])
        table = sub.pivot_table(index="problem", columns="solver", values="cost", aggfunc="min")
        out[kind] = table.fillna(math.inf).astype(float)
    return out


def performance_ratios(costs: pd.DataFrame) -> pd.DataFrame:
    """r[p, s] = cost[p, s] / min over solvers of cost[p, ·]; ∞ where s missed, or where every
    solver missed problem p."""
    best = costs.min(axis=1)
    ratios = costs.div(best.where(np.isfinite(best) & (best > 0)), axis=0)
    zero = best == 0  # a cost of exactly 0 (reached at step 0): the best solvers tie at ratio 1
    if zero.any():
        ratios.loc[zero] = np.where(costs.loc[zero] == 0, 1.0, math.inf)
    return ratios.fillna(math.inf)


def performance_profile(costs: pd.DataFrame, tau_max: float = TAU_MAX,
                        taus=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Dolan–Moré performance profile: for each solver s, ρ_s(τ) = fraction of problems with
    performance ratio r[p, s] ≤ τ, on τ from 1 to `tau_max` (256 points unless given)."""
    taus = np.linspace(1.0, tau_max, 256) if taus is None else np.asarray(taus, dtype=float)
    ratios = performance_ratios(costs)
    if not len(ratios):
        return taus, {s: np.zeros(len(taus)) for s in ratios.columns}
    rho = {s: (ratios[s].to_numpy()[:, None] <= taus[None, :]).mean(axis=0) for s in ratios.columns}
    return taus, rho


def profile_scores(costs: pd.DataFrame, tau_max: float = TAU_MAX) -> dict[str, float]:
    """Area under each solver's profile on [1, τ_max], normalized to [0, 1] (AlgoPerf's score):
    1 means fastest on every problem, 0 means never within τ_max of the fastest. Computed
    exactly: a problem with ratio r adds (τ_max − r) / (τ_max − 1) when r ≤ τ_max."""
    ratios = performance_ratios(costs)
    if not len(ratios):
        return {}
    part = ((tau_max - ratios.clip(lower=1.0)) / (tau_max - 1.0)).clip(lower=0.0)
    return {s: float(part[s].mean()) for s in ratios.columns}


def performance_profiles(trials: pd.DataFrame, tau_max: float = TAU_MAX, by: str = "optimizer",
                         settings: list[dict] | None = None) -> list[dict]:
    """Per problem kind: the problems, the performance profile of each solver, and its score."""
    out = []
    for kind, costs in profile_costs(trials, by, settings).items():
        taus, rho = performance_profile(costs, tau_max)
        out.append({"kind": kind, "problems": list(costs.index), "solvers": list(costs.columns),
                    "costs": costs, "taus": taus, "rho": rho, "scores": profile_scores(costs, tau_max)})
    return out


def ranking(trials: pd.DataFrame, tau_max: float = TAU_MAX, by: str = "optimizer",
            profiles: list[dict] | None = None) -> list[dict]:
    """Solvers ranked across problems, per kind: by area-under-profile score, then by mean rank
    over problems (rank 1 = fastest to target; misses share the last ranks). Keys: kind, rank,
    solver, score, mean_rank, solved (problems whose median seed reached the target), problems.
    ``profiles``: the output of ``performance_profiles`` when the caller has it already."""
    rows = []
    for prof in profiles if profiles is not None else performance_profiles(trials, tau_max, by):
        costs = prof["costs"]
        ranks = costs.rank(axis=1, method="average")
        solved = np.isfinite(costs).sum(axis=0)
        kind_rows = [{"kind": prof["kind"], "solver": s, "score": prof["scores"][s],
                      "mean_rank": float(ranks[s].mean()), "solved": int(solved[s]),
                      "problems": len(costs)} for s in costs.columns]
        kind_rows.sort(key=lambda r: (-r["score"], r["mean_rank"], r["solver"]))
        for i, r in enumerate(kind_rows, 1):
            r["rank"] = i
        rows += kind_rows
    return rows


def check_results_dirs(dirs) -> None:
    """Raise BenchInputError naming the first argument that is not a results directory."""
    from pathlib import Path

    from .errors import BenchInputError

    for d in dirs:
        if not (Path(d) / "trials").is_dir():
            raise BenchInputError(f"{d}: not a results directory (no trials/ folder)")
