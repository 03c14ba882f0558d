"""`bench compare BASE HEAD`: did HEAD get faster or slower to the target, better or worse?

Trials of the two results directories are matched on a key that leaves out where they ran
(host, commit, run): problem and params, optimizer and hyperparameters, dtype, device and
targets (fields can be dropped from the key with ``ignore``). Within one key, seeds pair the
two sides. For each key and each quantity (time to target, steps to target, every final metric
both sides recorded) we report the ratio HEAD / BASE:

- paired seeds (≥ 2): the geometric mean of the per-seed ratios, a Student-t 95% interval on the
  mean log-ratio, and the paired t-test on log-ratios. With 3 seeds the t interval is wide (t =
  4.3), which is the honest answer; rank tests (Wilcoxon, sign flips) cannot reach p < 0.05 with
  fewer than 6 seeds at all, so they would never flag anything. Identical log-ratios on every
  seed (a deterministic quantity) count as an exact change: p = 0 if they differ from 0, else 1.
- no shared seeds: the ratio of geometric means, Welch's t-test on the logs of both sides.
- a quantity that is not positive on both sides (a zero memory reading): the ratio of medians,
  and the t-test on paired differences.

A change is significant when p < alpha, and counts as a regression or an improvement when it is
significant and its ratio lies beyond the threshold (above 1 + t or below 1 / (1 + t)), in the
direction that is worse or better for that quantity. Time to target is compared over the seeds
that reached the target on both sides; the success rate is compared on its own: a target lost on
every seed (n ≥ 2) is a regression, a partial loss is tested with Fisher's exact test.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from .analysis import REACHED, first_metrics, higher_is_better, primary_metric, problem_labels

KEY_FIELDS = ("problem", "problem_params", "optimizer", "hparams", "dtype", "device", "targets")
LOWER_IS_BETTER = ("time_to_target_s", "steps_to_target")


@dataclass
class Change:
    """One quantity of one trial key, BASE against HEAD."""

    problem: str
    optimizer: str
    quantity: str
    n: int  # paired seeds, or the smaller side when unpaired
    paired: bool
    base: float | None  # median over seeds
    head: float | None
    ratio: float | None  # HEAD / BASE
    ci: tuple | None  # 95% interval of the ratio
    p_value: float | None
    test: str
    significant: bool
    verdict: str  # regression | improvement | unchanged | untested
    key: dict = field(default_factory=dict)


@dataclass
class Comparison:
    """Everything `bench compare` found."""

    changes: list
    keys_shared: int
    keys_only_base: int
    keys_only_head: int
    threshold: float
    alpha: float
    base_provenance: list
    head_provenance: list

    @property
    def regressions(self) -> list:
        """The significant changes for the worse beyond the threshold."""
        return [c for c in self.changes if c.verdict == "regression"]

    @property
    def improvements(self) -> list:
        """The significant changes for the better beyond the threshold."""
        return [c for c in self.changes if c.verdict == "improvement"]

    def to_dict(self) -> dict:
        """Plain data for --json."""
        d = asdict(self)
        d["regressions"] = len(self.regressions)
        d["improvements"] = len(self.improvements)
        return _clean(d)


def _clean(obj):
    """Replace non-finite floats by None (JSON has no inf/nan) and tuples by lists."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


# --------------------------------------------------------------------------- statistics
def _t_sf2(t: float, dof: float) -> float:
    """Two-sided p-value of Student's t with `dof` degrees of freedom."""
    return float(2.0 * special.stdtr(dof, -abs(t)))


def _t_quantile(dof: float, level: float = 0.95) -> float:
    return float(special.stdtrit(dof, 0.5 + level / 2.0))


def paired_log_ratio(base, head, level: float = 0.95) -> tuple[float, tuple | None, float | None, str]:
    """(ratio, interval, p, test) for paired positive values: geometric-mean ratio head/base,
    Student-t interval on the mean log-ratio and the paired t-test (see the module docstring)."""
    d = np.log(np.asarray(head, float)) - np.log(np.asarray(base, float))
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return math.exp(mean), None, None, "single seed: untested"
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):
        p = 1.0 if abs(mean) <= 1e-12 else 0.0
        return math.exp(mean), (math.exp(mean), math.exp(mean)), p, "paired, identical ratios"
    se = sd / math.sqrt(n)
    half = _t_quantile(n - 1, level) * se
    return (math.exp(mean), (math.exp(mean - half), math.exp(mean + half)), _t_sf2(mean / se, n - 1),
            "paired t-test on log-ratios")


def welch_log_ratio(base, head, level: float = 0.95) -> tuple[float, tuple | None, float | None, str]:
    """(ratio of geometric means, interval, p, test) for unpaired positive values (Welch)."""
    a, b = np.log(np.asarray(base, float)), np.log(np.asarray(head, float))
    mean = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return math.exp(mean), None, None, "unpaired, too few seeds: untested"
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se <= 1e-12 * max(1.0, abs(mean)):
        p = 1.0 if abs(mean) <= 1e-12 else 0.0
        return math.exp(mean), (math.exp(mean), math.exp(mean)), p, "unpaired, no spread"
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = _t_quantile(dof, level) * se
    return (math.exp(mean), (math.exp(mean - half), math.exp(mean + half)), _t_sf2(mean / se, dof),
            "Welch t-test on logs")


def paired_difference(base, head) -> tuple[float | None, tuple | None, float | None, str]:
    """For values that are not all positive: the ratio of medians (None when the base median
    is not positive) and the paired t-test on differences."""
    base, head = np.asarray(base, float), np.asarray(head, float)
    mb, mh = float(np.median(base)), float(np.median(head))
    ratio = mh / mb if mb > 0 else (1.0 if mb == mh else None)
    d = head - base
    if len(d) < 2:
        return ratio, None, None, "single seed: untested"
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return ratio, None, (1.0 if d.mean() == 0 else 0.0), "paired, identical differences"
    return ratio, None, _t_sf2(float(d.mean()) / (sd / math.sqrt(len(d))), len(d) - 1), \
        "paired t-test on differences"


def fisher_one_sided(k_base: int, n_base: int, k_head: int, n_head: int) -> float:
    """P(HEAD succeeds this rarely or more rarely | the same total successes): Fisher's exact
    test, one-sided, from the hypergeometric distribution."""
    total, succ = n_base + n_head, k_base + k_head
    denom = math.comb(total, succ)
    lo = max(0, succ - n_base)
    return sum(math.comb(n_head, k) * math.comb(n_base, succ - k) for k in range(lo, k_head + 1)) / denom


# --------------------------------------------------------------------------- matching
def _key_frame(df: pd.DataFrame, ignore=()) -> pd.DataFrame:
    fields = [f for f in KEY_FIELDS if f not in set(ignore)]
    df = df.copy()
    df["problem_label"] = problem_labels(df)
    df["_key"] = [json.dumps({f: r[f] for f in fields}, sort_keys=True, default=str)
                  for r in df[fields].to_dict("records")]
    return df


def _provenance(df: pd.DataFrame) -> list[dict]:
    cols = ["git_commit", "git_dirty", "host", "cpu_model", "gpu_model", "torch_version"]
    out = []
    text = df[cols].apply(lambda col: col.map(lambda v: "" if v is None or v != v else str(v)))
    for vals, g in text.groupby(cols, sort=True):
        out.append({**dict(zip(cols, vals)), "trials": len(g)})
    return out


def _groups(df: pd.DataFrame) -> dict:
    """{key: {column: list of values}} for the columns compare needs (lists: fast per group)."""
    cols = {c: df[c].tolist() for c in ("problem_label", "label", "seed", "status", "time_to_target_s",
                                         "steps_to_target", "metrics", "targets")}
    return {key: {c: [v[i] for i in idx] for c, v in cols.items()}
            for key, idx in df.groupby("_key", sort=False).indices.items()}


def _values(g: dict, quantity: str, only_reached: bool) -> dict:
    """seed -> value (median when a seed appears more than once, as in merged runs)."""
    vals: dict = {}
    for i, seed in enumerate(g["seed"]):
        if only_reached and g["status"][i] != REACHED:
            continue
        if quantity in LOWER_IS_BETTER:
            v = g[quantity][i]
        else:
            m = g["metrics"][i]
            v = m.get(quantity) if isinstance(m, dict) else None
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            vals.setdefault(int(seed), []).append(v)
    return {s: v[0] if len(v) == 1 else float(statistics.median(v)) for s, v in vals.items()}


def _verdict(ratio, p, alpha, threshold, lower_better) -> tuple[bool, str]:
    if p is None:
        return False, "untested"
    significant = p < alpha
    if not significant or ratio is None:
        return significant, "unchanged"
    bound = math.log1p(threshold)
    lr = math.log(ratio) if ratio > 0 else -math.inf
    if abs(lr) <= bound:
        return significant, "unchanged"
    worse = lr > 0 if lower_better else lr < 0
    return significant, "regression" if worse else "improvement"


def _compare_quantity(gb, gh, quantity, alpha, threshold, info) -> Change | None:
    only_reached = quantity in LOWER_IS_BETTER
    vb, vh = _values(gb, quantity, only_reached), _values(gh, quantity, only_reached)
    if not vb or not vh:
        return None
    seeds = sorted(set(vb) & set(vh))
    lower_better = quantity in LOWER_IS_BETTER or not higher_is_better(quantity)
    if seeds:
        b, h = [vb[s] for s in seeds], [vh[s] for s in seeds]
        positive = min(b + h) > 0
        ratio, ci, p, test = paired_log_ratio(b, h) if positive else paired_difference(b, h)
        n, paired = len(seeds), True
    else:
        b, h = list(vb.values()), list(vh.values())
        if min(b + h) <= 0:
            return None
        ratio, ci, p, test = welch_log_ratio(b, h)
        n, paired = min(len(b), len(h)), False
    significant, verdict = _verdict(ratio, p, alpha, threshold, lower_better)
    return Change(quantity=quantity, n=n, paired=paired, base=float(np.median(b)),
                  head=float(np.median(h)), ratio=ratio, ci=ci, p_value=p, test=test,
                  significant=significant, verdict=verdict, **info)


def _compare_success(gb, gh, alpha, info) -> Change:
    def per_seed(g):
        runs: dict = {}
        for seed, status in zip(g["seed"], g["status"]):
            runs.setdefault(int(seed), []).append(status == REACHED)
        return {seed: sum(hits) / len(hits) >= 0.5 for seed, hits in runs.items()}
    sb, sh = per_seed(gb), per_seed(gh)
    kb, kh = sum(sb.values()), sum(sh.values())
    rb, rh = kb / len(sb), kh / len(sh)
    ratio = rh / rb if rb > 0 else (1.0 if rh == 0 else math.inf)
    if rh >= rb:
        p = 1.0 if rh == rb else fisher_one_sided(kh, len(sh), kb, len(sb))
        significant = p < alpha
        verdict = "improvement" if significant else "unchanged"
        test = "Fisher exact, one-sided"
    elif kh == 0 and kb == len(sb) and len(sb) >= 2:
        p, significant, verdict, test = 0.0, True, "regression", "target lost on every seed"
    else:
        p = fisher_one_sided(kb, len(sb), kh, len(sh))
        significant = p < alpha
        verdict = "regression" if significant else "unchanged"
        test = "Fisher exact, one-sided"
    return Change(quantity="success_rate", n=min(len(sb), len(sh)), paired=False, base=rb, head=rh,
                  ratio=ratio, ci=None, p_value=p, test=test, significant=significant,
                  verdict=verdict, **info)


def compare(base: pd.DataFrame, head: pd.DataFrame, threshold: float = 0.1, alpha: float = 0.05,
            ignore=(), quantities=None) -> Comparison:
    """Compare two trials DataFrames (from ``read_trials``) key by key; see the module docstring.
    ``quantities``: compare only these (e.g. ``["steps_to_target", "success_rate"]`` where
    timings are too noisy to gate on); None compares everything."""
    wanted = set(quantities) if quantities else None
    kb, kh = _key_frame(base, ignore), _key_frame(head, ignore)
    keys_b, keys_h = set(kb["_key"]), set(kh["_key"])
    gbs, ghs = _groups(kb), _groups(kh)
    shared = sorted(keys_b & keys_h, key=lambda k: (gbs[k]["problem_label"][0], gbs[k]["label"][0], k))
    changes = []
    for key in shared:
        gb, gh = gbs[key], ghs[key]
        info = {"problem": gb["problem_label"][0], "optimizer": gb["label"][0],
                "key": json.loads(key)}
        if wanted is None or "success_rate" in wanted:
            changes.append(_compare_success(gb, gh, alpha, info))
        metric_names = set()
        for m in gb["metrics"] + gh["metrics"]:
            if isinstance(m, dict):
                metric_names |= set(m)
        first = first_metrics(gb["metrics"] + gh["metrics"])
        primary = primary_metric(gb["targets"][0], first)
        ordered = list(LOWER_IS_BETTER) + ([primary] if primary else []) + sorted(metric_names - {primary})
        for quantity in ordered:
            if wanted is not None and quantity not in wanted:
                continue
            change = _compare_quantity(gb, gh, quantity, alpha, threshold, info)
            if change is not None:
                changes.append(change)
    return Comparison(changes=changes, keys_shared=len(shared), keys_only_base=len(keys_b - keys_h),
                      keys_only_head=len(keys_h - keys_b), threshold=threshold, alpha=alpha,
                      base_provenance=_provenance(base), head_provenance=_provenance(head))
