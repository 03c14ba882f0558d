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

from .selection import selection_metric as _selection_metric, setting_rank

REACHED = "target_reached"
FAILED = ("diverged", "stalled", "error", "timeout")
TAU_MAX = 4.0
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
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
    n_sets = df.groupby("problem")["problem_params"].transform("nunique").tolist()

    def label(problem, params_json, n):
        if n <= 1:
            return problem
        params = json.loads(params_json)
        return f"{problem}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
    return pd.Series([label(p, j, n) for p, j, n in zip(df["problem"], df["problem_params"], n_sets)],
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
             for k in zip(df["optimizer"], df["hparams"])]
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
    values are stacked and computed together (the bootstrap draws the same resampling indices
    for every list of a length, as ``bootstrap_ci`` does with its fixed seed)."""
    finite = [_finite_fast(v) for v in value_lists]
    out: list = [None] * len(finite)
    by_n: dict = {}
    for i, v in enumerate(finite):
        by_n.setdefault(len(v), []).append(i)
    alpha = (1.0 - 0.95) / 2.0
    for n, idx in by_n.items():
        if n == 0:
            for i in idx:
                out[i] = {"median": None, "q1": None, "q3": None, "ci_low": None, "ci_high": None}
            continue
        arr = np.stack([finite[i] for i in idx])
        q1, med, q3 = np.percentile(arr, [25, 50, 75], axis=1)
        lo, hi = arr[:, 0].copy(), arr[:, 0].copy()
        if bootstrap and n > 1:
            spread = ~np.all(arr == arr[:, :1], axis=1)
            rows = np.flatnonzero(spread)
            if len(rows):
                draw = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_SAMPLES, n))
                step = max(1, 4_000_000 // (BOOTSTRAP_SAMPLES * n))
                for k in range(0, len(rows), step):
                    part = rows[k:k + step]
                    stats = _bootstrap_medians(arr[part], draw)
                    lo[part], hi[part] = np.quantile(stats, [alpha, 1.0 - alpha], axis=1)
        for j, i in enumerate(idx):
            out[i] = {"median": float(med[j]), "q1": float(q1[j]), "q3": float(q3[j]),
                      "ci_low": float(lo[j]) if bootstrap else None, "ci_high": float(hi[j]) if bootstrap else None}
    return out


def _bootstrap_medians(arr: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """np.median(arr[g][draw], axis=1) for each row g of `arr` (G x n), in another order.

    The median of a resample depends only on the ranks of the values drawn, so for each order
    of ranks that occurs (at most n! of them) the ranks of the middle values of every resample
    are found once, and each row gathers its sorted values there: the same values as
    np.median's (the middle value, or the mean of the two middle ones), so the quantiles taken
    over them are the same. For large n, where orders rarely repeat, the resamples are sorted."""
    g, n = arr.shape
    if n > 8:
        return np.median(arr[:, draw], axis=2)
    order = np.argsort(arr, axis=1, kind="stable")
    ranked = np.take_along_axis(arr, order, axis=1)
    perms, inverse = np.unique(np.argsort(order, axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    lo = np.empty((len(perms), draw.shape[0]), dtype=np.intp)
    hi = np.empty_like(lo)
    for u, perm in enumerate(perms):
        r = np.sort(perm[draw], axis=1)
        lo[u], hi[u] = (r[:, n // 2], r[:, n // 2]) if n % 2 else (r[:, n // 2 - 1], r[:, n // 2])
    rows = np.arange(g)[:, None]
    low = ranked[rows, lo[inverse]]
    if n % 2:
        return low
    return (low + ranked[rows, hi[inverse]]) / 2.0


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


def _costs(g: dict, column: str = "time_to_target_s") -> list[float]:
    """A group's to-target costs over its seeds, a seed that missed the target counting as ∞."""
    return [float(v) if s == REACHED and v is not None and not pd.isna(v) else math.inf
            for s, v in zip(g["status"], g[column])]


def _cost(g: dict, column: str = "time_to_target_s") -> float:
    """Median over all seeds of a to-target cost, a seed that missed the target counting as ∞."""
    costs = _costs(g, column)
    return float(np.median(costs)) if costs else math.inf


_COLUMNS = ("problem_label", "label", "optimizer", "hparams", "kind", "seed", "status", "error",
            "time_to_target_s", "steps_to_target", "train_time_s", "steps", "metrics", "targets",
            "directions", "git_commit", "git_dirty", "host", "threads", "load_avg", "key_id", "code_id")


def _groups(trials: pd.DataFrame, keys: list[str]):
    """(key, group) pairs in key order; a group maps each column to the list of its values
    (plain lists: much faster than a DataFrame per group). Rows are put in group order once,
    so each group's lists are slices."""
    df = trials if "group_id" in trials else setting_labels(trials)
    indices = df.groupby(keys, sort=False).indices
    ordered = sorted(indices, key=lambda k: tuple(str(x) for x in (k if isinstance(k, tuple) else (k,))))
    if not ordered:
        return
    order = np.concatenate([indices[k] for k in ordered]).tolist()
    cols = {}
    for c in _COLUMNS:
        if c in df:
            values = df[c].tolist()
            cols[c] = [values[i] for i in order]
    start = 0
    for key in ordered:
        end = start + len(indices[key])
        yield key, {c: v[start:end] for c, v in cols.items()}
        start = end


def first_metrics(metrics_list) -> dict:
    """The first non-empty metrics map of a group (a trial that failed early may have none)."""
    return next((m for m in metrics_list if isinstance(m, dict) and m), {})



def _where(values: list, mask: list) -> list:
    return [v for v, m in zip(values, mask) if m]


# --------------------------------------------------------------------------- leaderboard
def leaderboard(trials: pd.DataFrame) -> list[dict]:
    """One row per (problem, optimizer with hparams) over seeds.

    Keys: problem, optimizer (the label), optimizer_name, hparams, kind, seeds (trials),
    n_seeds (distinct seeds), statuses, success_rate, success_ci; time_to_target_s,
    steps_to_target (medians over the seeds that reached the target) with their ``*_iqr`` and
    ``*_ci`` (bootstrap 95%) pairs; metric (the primary metric), higher_is_better, final_metric
    (median over seeds) with final_metric_iqr and final_metric_ci; final_metrics (every metric
    recorded: {name: {median, q1, q3}}); train_time_s, steps; cost (the
    median time to target, a miss counting as ∞); errors; provenance (commits and hosts).
    Rows are ordered per problem: most successful first, then fastest to target, then best metric.
    """
    if trials is None or len(trials) == 0:
        return []
    rows, pending = [], []  # pending: per row, the value lists its statistics come from
    for (problem, label), g in _groups(trials, ["problem_label", "label"]):
        n = len(g["status"])
        metric = primary_metric(g["targets"][0], first_metrics(g["metrics"]))
        statuses: dict = {}
        for st in g["status"]:
            statuses[str(st)] = statuses.get(str(st), 0) + 1
        statuses = dict(sorted(statuses.items(), key=lambda kv: (-kv[1], kv[0])))
        reached = int(statuses.get(REACHED, 0))
        hit = [st == REACHED for st in g["status"]]
        names = sorted({k for m in g["metrics"] if isinstance(m, dict) for k in m})
        commits = sorted({str(c)[:10] + ("+dirty" if d is True else "")
                          for c, d in zip(g["git_commit"], g["git_dirty"]) if isinstance(c, str)})
        pending.append((_where(g["time_to_target_s"], hit), _where(g["steps_to_target"], hit),
                        [_final(m, metric) for m in g["metrics"]],
                        {name: [_final(m, name) for m in g["metrics"]] for name in names},
                        g["train_time_s"], g["steps"], _costs(g)))
        rows.append({
            "problem": problem, "optimizer": label, "optimizer_name": g["optimizer"][0],
            "hparams": g["hparams"][0], "kind": g["kind"][0],
            "seeds": n, "n_seeds": len(set(g["seed"])),
            "statuses": statuses, "success_rate": reached / n,
            "success_ci": wilson_interval(reached, n),
            "time_to_target_s": reached, "time_to_target_iqr": None, "time_to_target_ci": None,
            "steps_to_target": reached, "steps_to_target_iqr": None, "steps_to_target_ci": None,
            "metric": metric, "higher_is_better": group_direction(g, metric),
            "threads": sorted({int(t) for t in g["threads"] if t is not None and not pd.isna(t)}),
            "final_metric": None, "final_metric_iqr": None, "final_metric_ci": None,
            "final_metrics": None, "train_time_s": None, "steps": None, "cost": None,
            "errors": [e for e in g["error"] if isinstance(e, str) and e],
            "provenance": {"commits": commits,
                           "hosts": sorted({str(h) for h in g["host"] if isinstance(h, str)})},
        })
    # the statistics of every row at once (batch_stats: equal to one row at a time)
    ttt, stt, fin = (batch_stats([p[k] for p in pending]) for k in range(3))
    per_name = [(i, name) for i, p in enumerate(pending) for name in p[3]]
    finals = batch_stats([pending[i][3][name] for i, name in per_name], bootstrap=False)
    plain = batch_stats([p[4] for p in pending] + [p[5] for p in pending], bootstrap=False)
    costs = batch_medians([p[6] for p in pending])
    all_finals: list = [{} for _ in rows]
    for (i, name), st in zip(per_name, finals):
        all_finals[i][name] = {"median": st["median"], "q1": st["q1"], "q3": st["q3"]}
    for i, r in enumerate(rows):
        reached = r["time_to_target_s"]
        r.update({
            "time_to_target_s": ttt[i]["median"] if reached else None,
            "time_to_target_iqr": (ttt[i]["q1"], ttt[i]["q3"]), "time_to_target_ci": (ttt[i]["ci_low"], ttt[i]["ci_high"]),
            "steps_to_target": stt[i]["median"] if reached else None,
            "steps_to_target_iqr": (stt[i]["q1"], stt[i]["q3"]), "steps_to_target_ci": (stt[i]["ci_low"], stt[i]["ci_high"]),
            "final_metric": fin[i]["median"],
            "final_metric_iqr": (fin[i]["q1"], fin[i]["q3"]), "final_metric_ci": (fin[i]["ci_low"], fin[i]["ci_high"]),
            "final_metrics": all_finals[i],
            "train_time_s": plain[i]["median"], "steps": plain[len(rows) + i]["median"], "cost": costs[i]})

    def order(r):
        fm = r["final_metric"]
        fm = math.inf if fm is None else (-fm if r["higher_is_better"] else fm)
        return (r["problem"], -r["success_rate"],
                r["time_to_target_s"] if r["time_to_target_s"] is not None else math.inf, fm)
    rows.sort(key=order)
    return rows


# --------------------------------------------------------------------------- tuning
def settings_summary(trials: pd.DataFrame) -> list[dict]:
    """One row per (problem, optimizer, setting): success rate, median time to target (over the
    seeds that reached it), cost, the selection (validation) metric's median final value, and
    ``best`` marking each optimizer's best setting on the problem, by the one rule of
    bench_core.selection (success rate, median steps to target, selection metric)."""
    if trials is None or len(trials) == 0:
        return []
    rows, pending = [], []
    by_opt: dict = {}
    for (problem, opt, label), g in _groups(trials, ["problem_label", "optimizer", "label"]):
        by_opt.setdefault((problem, opt), []).append((label, g))
    for (problem, opt), settings in by_opt.items():
        first = settings[0][1]
        metric = selection_metric(first["targets"][0],
                                  first_metrics([m for _, g in settings for m in g["metrics"]]))
        hib = group_direction(first, metric)
        group = []
        for label, g in settings:
            n = len(g["status"])
            hit = [st == REACHED for st in g["status"]]
            values = [_final(m, metric) for m in g["metrics"]]
            group.append({
                "problem": problem, "optimizer": opt, "label": label, "kind": g["kind"][0],
                "hparams": json.loads(g["hparams"][0] or "{}"), "seeds": n,
                "success_rate": sum(hit) / n, "reaches_target": None,
                "time_to_target_s": _where(g["time_to_target_s"], hit),
                "cost": _costs(g), "selection_metric": metric, "higher_is_better": hib,
                "selection_value": values, "best": False,
                "_rank": setting_rank(g["status"], g["steps_to_target"], values, "max" if hib else "min", label)})
        pending.append(group)
    flat = [r for group in pending for r in group]
    stats = batch_stats([r["time_to_target_s"] for r in flat] + [r["selection_value"] for r in flat],
                        bootstrap=False)
    costs = batch_medians([r["cost"] for r in flat])
    for i, r in enumerate(flat):
        r.update(time_to_target_s=stats[i]["median"], selection_value=stats[len(flat) + i]["median"],
                 cost=costs[i], reaches_target=math.isfinite(costs[i]))
    for group in pending:
        group.sort(key=lambda r: r.pop("_rank"))
        group[0]["best"] = True
        rows += group
    return rows


def tuning_summary(trials: pd.DataFrame) -> list[dict]:
    """Per problem and optimizer that ran with more than one hyperparameter setting: the number
    of settings, the best one (see ``settings_summary``), its cost and selection metric, and the
    sensitivity: how many settings reach the target (their median seed does, i.e. a finite cost)."""
    rows = []
    settings = settings_summary(trials)
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
