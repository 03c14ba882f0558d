"""`bench compare BASE HEAD`: did HEAD get faster or slower, better or worse, beyond the noise?

**Matching.** Trials of the two results directories are matched on their key (``key_id``:
problem and params, optimizer and hyperparameters, dtype, device, budget, targets, evaluation
schedule and CPU threads) across code versions: comparing codes is what compare is for. With
``ignore`` (device, dtype, targets, hparams) those fields leave the key and the remaining key
fields match. Seeds pair the two sides on (key, seed). Where one directory holds results of
several codes for one key (a rerun after a code change sits beside the old rows), the rows of
the code that ran last are used. Directions ("min"/"max") come from the rows' recorded
``directions``, never from installed plugins: compare needs neither torch nor the registry.

**Deterministic quantities.** With fixed seeds on the CPU at a fixed thread count, the same code
computes the same numbers: statuses (the success rate), steps to target and final metrics. For
these an exact difference is a real change and no noise model is needed: values equal on every
paired seed are ``unchanged``; a difference is at least ``changed`` and is a ``regression`` or an
``improvement`` when the paired seeds agree on it (the paired t-test below is significant, or
the ratio is the same on every seed) and it lies beyond the threshold in the metric's recorded
direction. A key not on the CPU, or a paired seed that ended by ``timeout`` (a wall-clock budget,
so machine speed decides where it stops), makes them statistical: the paired t-test alone, as
for any noisy quantity.

**Time quantities** (``time_to_target_s``, and ``time_per_step_s`` = train_time_s / steps) carry
machine noise, and load that slows a whole run moves every seed together, so a paired test over
seeds takes a slower run for a slower optimizer. They are judged against the spread that
repeated runs show:

- *run effect*: for each key the geometric mean of its per-seed ratios head/base; the median of
  these over all matched keys (at least 3) is the machine-speed factor of this pair of runs.
  It is reported, and judged only when ``run_tolerance`` says how far two runs of one suite on
  these machines may drift (calibrated on A/A pairs, e.g. with benchmarks/aa_compare.py): beyond
  ×(1 + run_tolerance) the change common to every key is a regression or an improvement.
- *deviation*: each key's ratio divided by the run effect. Its noise is the seeds' spread pooled
  over all keys (the residuals of the per-seed log-ratios about their key's mean; N − K degrees of
  freedom for N paired seeds in K keys), divided by √(seeds of the key). A key is flagged when its
  deviation is significant at ``alpha`` *for the whole comparison* (Bonferroni over every time
  test made: two runs of one suite flag nothing with probability ≥ 1 − alpha) and lies beyond
  the threshold. The interval shown is the matching simultaneous interval of the deviation.
- *load*: the rows record the 1-minute load and the CPU count when each trial started. When a
  side's median load exceeds its CPUs (more runnable work than cores: timings include other
  jobs, whose bursts hit a key's seeds together and break the independence the bound assumes),
  time verdicts are withheld (``untested``) unless ``judge_loaded``.

This bound is what the A/A tests check (tests/test_compare.py): on synthetic pairs whose times
differ by a common factor in [0.5, 2] and per-seed lognormal noise, at most alpha of the pairs
flag anything, and one optimizer made 30% slower is flagged. docs/analysis.md records the rates
measured on real repeated runs.

**Other rules.** Paired seeds (≥ 2): geometric mean of per-seed ratios, Student-t 95% interval
of the mean log-ratio and the paired t-test on log-ratios (identical log-ratios on every seed:
p = 0 when they differ from 0, else 1); with 3 seeds the interval is wide (t = 4.3), the honest
answer; rank tests cannot reach p < 0.05 with fewer than 6 seeds. No shared seeds: ratio of
geometric means and Welch's t-test on logs. Values not all positive: ratio of medians and the
paired t-test on differences. Time and steps to target are compared over the seeds that reached
the target on both sides; the success rate is compared on its own (a target lost on every seed,
n ≥ 2, is a regression; a partial loss is tested with Fisher's exact test). Nothing is guessed
from a metric's name.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from .analysis import REACHED, first_metrics, primary_metric, setting_labels

#: The row columns that make up a trial's key (bench_core.trial.Trial.key).
KEY_FIELDS = ("problem", "problem_params", "optimizer", "hparams", "dtype", "device", "budget",
              "targets", "eval", "threads")
IGNORABLE = ("device", "dtype", "targets", "hparams")
TIME_QUANTITIES = ("time_to_target_s", "time_per_step_s")
LOWER_IS_BETTER = TIME_QUANTITIES + ("steps_to_target",)
#: Keys needed to tell a run effect (all keys) from a change of some keys.
MIN_KEYS_FOR_RUN_EFFECT = 3
TIMEOUT = "timeout"


@dataclass
class Change:
    """One quantity of one trial key, BASE against HEAD (or the run effect of a time quantity)."""

    problem: str
    optimizer: str
    quantity: str
    n: int  # paired seeds, or the smaller side when unpaired; keys for a run effect
    paired: bool
    base: float | None  # median over seeds
    head: float | None
    ratio: float | None  # HEAD / BASE
    ci: tuple | None  # interval of the ratio (of rel_ratio for time quantities)
    p_value: float | None
    test: str
    significant: bool
    verdict: str  # regression | improvement | changed | unchanged | untested
    key: dict = field(default_factory=dict)
    kind: str = ""  # success | deterministic | statistical | measured | time | run effect
    rel_ratio: float | None = None  # time quantities: ratio / run effect


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
    run_effects: list = field(default_factory=list)  # one Change per time quantity
    notes: list = field(default_factory=list)
    run_tolerance: float | None = None

    @property
    def regressions(self) -> list:
        """The changes for the worse beyond the noise and the threshold (run effects included)."""
        return [c for c in self.changes + self.run_effects if c.verdict == "regression"]

    @property
    def improvements(self) -> list:
        """The changes for the better beyond the noise and the threshold (run effects included)."""
        return [c for c in self.changes + self.run_effects if c.verdict == "improvement"]

    @property
    def flagged(self) -> list:
        """Regressions, improvements and deterministic values that changed."""
        return [c for c in self.changes + self.run_effects
                if c.verdict in ("regression", "improvement", "changed")]

    def to_dict(self) -> dict:
        """Plain data for --json."""
        d = asdict(self)
        d["regressions"] = len(self.regressions)
        d["improvements"] = len(self.improvements)
        d["changed"] = sum(c.verdict == "changed" for c in self.changes)
        return _clean(d)


def _clean(obj):
    """Replace non-finite floats by None (JSON has no inf/nan) and tuples by lists."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --------------------------------------------------------------------------- statistics
def _t_sf2(t: float, dof: float) -> float:
    """Two-sided p-value of Student's t with `dof` degrees of freedom."""
    return float(2.0 * special.stdtr(dof, -abs(t)))


def _t_quantile(dof: float, level: float = 0.95) -> float:
    """The two-sided `level` quantile of Student's t."""
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


@dataclass
class Deviation:
    """One key's time ratio against the run effect (see ``time_deviations``)."""

    ratio: float  # head/base, geometric mean over the key's paired seeds
    rel_ratio: float  # ratio / run effect
    ci: tuple | None  # simultaneous (1 - alpha) interval of rel_ratio
    p_value: float | None  # Bonferroni-adjusted over `tests`
    n: int


def time_deviations(pairs: dict, alpha: float = 0.05, tests: int | None = None) -> tuple[float | None, dict]:
    """The run effect of one time quantity and each key's deviation from it.

    ``pairs``: {key: (base values, head values)}, positive and paired by seed. Returns
    (run effect, {key: Deviation}): the run effect is the median over keys of each key's
    geometric-mean ratio head/base (None with fewer than MIN_KEYS_FOR_RUN_EFFECT keys, and then
    no deviations); a deviation's noise is the per-seed log-ratios' spread about their key's
    mean, pooled over keys, over √(the key's seeds); its p-value is Bonferroni-adjusted over
    ``tests`` (default: the keys here), so that ``alpha`` bounds the chance that an A/A pair
    flags any of them. With no spare seeds (one seed per key) p_value and ci are None.
    """
    logs = {k: np.log(np.asarray(h, float)) - np.log(np.asarray(b, float)) for k, (b, h) in pairs.items()
            if len(b)}
    if len(logs) < MIN_KEYS_FOR_RUN_EFFECT:
        return None, {}
    means = {k: float(d.mean()) for k, d in logs.items()}
    run = float(np.median(list(means.values())))
    dof = sum(len(d) for d in logs.values()) - len(logs)
    pooled_var = sum(float(((d - d.mean()) ** 2).sum()) for d in logs.values()) / dof if dof > 0 else None
    tests = max(tests or len(logs), 1)
    out = {}
    for k, d in logs.items():
        delta = means[k] - run
        p = ci = None
        if pooled_var is not None:
            se = math.sqrt(pooled_var / len(d))
            if se <= 1e-12:
                p = 1.0 if abs(delta) <= 1e-12 else 0.0
                ci = (math.exp(delta), math.exp(delta))
            else:
                p = min(1.0, tests * _t_sf2(delta / se, dof))
                half = _t_quantile(dof, 1.0 - alpha / tests) * se
                ci = (math.exp(delta - half), math.exp(delta + half))
        out[k] = Deviation(ratio=math.exp(means[k]), rel_ratio=math.exp(delta), ci=ci, p_value=p, n=len(d))
    return math.exp(run), out


def verdict(ratio, p, alpha: float, threshold: float, lower_better: bool | None) -> tuple[bool, str]:
    """(significant, verdict) of a tested ratio: a significant ratio beyond ×(1 + threshold) is a
    regression or an improvement in the quantity's direction ("changed" when the direction is
    unknown); anything else is unchanged (untested without a p-value)."""
    if p is None:
        return False, "untested"
    significant = p < alpha
    if not significant or ratio is None:
        return significant, "unchanged"
    lr = math.log(ratio) if ratio > 0 else -math.inf
    if abs(lr) <= math.log1p(threshold):
        return significant, "unchanged"
    if lower_better is None:
        return significant, "changed"
    worse = lr > 0 if lower_better else lr < 0
    return significant, "regression" if worse else "improvement"


# --------------------------------------------------------------------------- rows
def latest_code(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`df` with, for each key, only the rows of the code whose trials ended last (a directory
    can hold one key's results of old and new code side by side); and how many rows were left out."""
    codes: dict = {}
    for key, code in zip(df["key_id"].tolist(), df["code_id"].tolist()) if "code_id" in df else ():
        codes.setdefault(key, set()).add(code)
    if all(len(c) <= 1 for c in codes.values()):
        return df, 0
    end = pd.to_datetime(df["ended_at"], utc=True, errors="coerce").fillna(pd.Timestamp(0, tz="UTC"))
    last = df.assign(_end=end).groupby(["key_id", "code_id"])["_end"].max().reset_index()
    newest = last.sort_values("_end", kind="stable").groupby("key_id").tail(1)
    keep = set(zip(newest["key_id"], newest["code_id"]))
    mask = [(k, c) in keep for k, c in zip(df["key_id"], df["code_id"])]
    return df[mask], int(len(df) - sum(mask))


def _match_keys(df: pd.DataFrame, ignore) -> list[str]:
    """The key each row is matched on: key_id, or the remaining key fields with `ignore`."""
    ignore = set(ignore)
    if not ignore:
        return [str(k) for k in df["key_id"]]
    fields = [f for f in KEY_FIELDS if f not in ignore]
    return [json.dumps({f: r[f] for f in fields}, sort_keys=True, default=str)
            for r in df[fields].to_dict("records")]


def _provenance(df: pd.DataFrame) -> list[dict]:
    """Distinct (commit, dirty, host, CPU, GPU, torch) with their trial counts, median load and CPUs."""
    cols = ["git_commit", "git_dirty", "host", "cpu_model", "gpu_model", "torch_version"]
    text = zip(*[["" if pd.isna(v) else str(v) for v in df[c].tolist()] for c in cols])
    loads, cpus = df["load_avg"].tolist(), df["cpu_count"].tolist()
    groups: dict = {}
    for i, vals in enumerate(text):
        groups.setdefault(vals, []).append(i)
    out = []
    for vals in sorted(groups):
        idx = groups[vals]
        load, n_cpus = _median_load([loads[i] for i in idx], [cpus[i] for i in idx])
        out.append({**dict(zip(cols, vals)), "trials": len(idx), "load_avg": load, "cpu_count": n_cpus})
    return out


def _median_load(loads, cpus) -> tuple[float | None, int | None]:
    """(median load, median CPU count) of the recorded values; Nones when none is recorded."""
    def median(values):
        vals = [float(v) for v in values if not pd.isna(v)]
        return float(np.median(vals)) if vals else None
    n_cpus = median(cpus)
    return median(loads), (int(n_cpus) if n_cpus is not None else None)


def _load(df: pd.DataFrame) -> tuple[float | None, int | None]:
    """(median 1-minute load, median CPU count) recorded by the rows; Nones when not recorded."""
    return _median_load(df["load_avg"].tolist() if "load_avg" in df else [],
                        df["cpu_count"].tolist() if "cpu_count" in df else [])


def oversubscribed(df: pd.DataFrame) -> str | None:
    """"load L on C CPUs" when the rows' median load exceeded their CPUs, else None."""
    return oversubscribed_values(*_load(df))


def oversubscribed_values(load: float | None, cpus: int | None) -> str | None:
    """oversubscribed from a (median load, median CPUs) pair, as ``_median_load`` returns it
    (for callers holding plain lists rather than a DataFrame per group)."""
    if load is None or not cpus or load <= cpus:
        return None
    return f"load {load:.1f} on {cpus} CPUs"


_GROUP_COLUMNS = ("seed", "status", "time_to_target_s", "steps_to_target", "train_time_s", "steps",
                  "metrics", "targets", "directions", "key_id") + KEY_FIELDS
#: The trial columns ``compare`` reads (`bench compare` reads only these).
COLUMNS = tuple(dict.fromkeys(_GROUP_COLUMNS + ("code_id", "ended_at", "git_commit", "git_dirty", "host",
                                                "cpu_model", "gpu_model", "torch_version", "load_avg",
                                                "cpu_count")))


def _labels(base: pd.DataFrame, head: pd.DataFrame) -> dict:
    """key_id -> (problem label, setting label), unique per key over both sides (display only)."""
    cols = ("key_id", "code_id") + KEY_FIELDS
    firsts: dict = {}
    for df in (base, head):
        for r in zip(*[df[c].tolist() for c in cols]):
            firsts.setdefault(r[0], r)
    keys = pd.DataFrame(list(firsts.values()), columns=list(cols))
    labelled = setting_labels(keys, by_code=False)
    return dict(zip(labelled["key_id"], zip(labelled["problem_label"], labelled["label"])))


def _groups(df: pd.DataFrame, ignore, labels: dict) -> dict:
    """{match key: {column: list of values}} (plain lists: fast per group), with the labels."""
    cols = {c: df[c].tolist() for c in _GROUP_COLUMNS}
    cols["problem_label"] = [labels[k][0] for k in cols["key_id"]]
    cols["label"] = [labels[k][1] for k in cols["key_id"]]
    index: dict = {}
    for i, key in enumerate(_match_keys(df, ignore)):
        index.setdefault(key, []).append(i)
    # rows put in group order once, so each group's lists are slices
    order = [i for idx in index.values() for i in idx]
    cols = {c: [v[i] for i in order] for c, v in cols.items()}
    out, start = {}, 0
    for key, idx in index.items():
        end = start + len(idx)
        out[key] = {c: v[start:end] for c, v in cols.items()}
        start = end
    return out


def _median(values: list) -> float:
    """np.median of a few finite floats, without numpy's per-call overhead: the middle value, or
    the mean (a + b) / 2 of the two middle ones, as np.median computes it."""
    return float(statistics.median(values))


def _value(g: dict, i: int, quantity: str):
    if quantity == "time_per_step_s":
        steps, t = g["steps"][i], g["train_time_s"][i]
        try:
            return float(t) / float(steps) if float(steps) > 0 else None
        except (TypeError, ValueError):
            return None
    if quantity in ("time_to_target_s", "steps_to_target"):
        return g[quantity][i]
    m = g["metrics"][i]
    return m.get(quantity) if isinstance(m, dict) else None


def _values(g: dict, quantity: str) -> dict:
    """seed -> value (median when a seed appears more than once, as with --ignore)."""
    only_reached = quantity in ("time_to_target_s", "steps_to_target")
    vals: dict = {}
    for i, seed in enumerate(g["seed"]):
        if only_reached and g["status"][i] != REACHED:
            continue
        try:
            v = float(_value(g, i, quantity))
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            vals.setdefault(int(seed), []).append(v)
    return {s: v[0] if len(v) == 1 else float(statistics.median(v)) for s, v in vals.items()}


def _timed_out(g: dict) -> set:
    return {int(s) for s, st in zip(g["seed"], g["status"]) if st == TIMEOUT}


def _deterministic(gb: dict, gh: dict, seeds) -> bool:
    """Whether the seeds' values are reproducible: CPU on both sides, no paired seed timed out."""
    on_cpu = all(str(d) == "cpu" for d in gb["device"] + gh["device"])
    return on_cpu and not (set(seeds) & (_timed_out(gb) | _timed_out(gh)))


def _direction(gb: dict, gh: dict, metric: str) -> str | None:
    """The recorded direction of `metric` ("min"/"max"), None when no row recorded one."""
    if metric in LOWER_IS_BETTER:
        return "min"
    for d in gb["directions"] + gh["directions"]:
        if isinstance(d, str) and d:
            found = json.loads(d).get(metric)
            if found:
                return found
    return None


# --------------------------------------------------------------------------- per quantity
def _compare_quantity(gb, gh, quantity, alpha, threshold, info) -> Change | None:
    """Steps to target or a final metric of one key: deterministic or statistical (see the
    module docstring). A metric whose direction no row recorded is not one the problem reports
    but a metric plugin's measurement (peak memory, ...): shown with its test, not judged."""
    vb, vh = _values(gb, quantity), _values(gh, quantity)
    if not vb or not vh:
        return None
    seeds = sorted(set(vb) & set(vh))
    direction = _direction(gb, gh, quantity)
    exact = differ = False
    if seeds:
        b, h = [vb[s] for s in seeds], [vh[s] for s in seeds]
        exact = direction is not None and _deterministic(gb, gh, seeds)
        differ = sum(x != y for x, y in zip(b, h))
        if exact and not differ:
            ratio = 1.0 if min(b) > 0 else None
            ci, p, test = ((1.0, 1.0) if ratio else None), 1.0, f"deterministic: equal on {len(seeds)} seed(s)"
        else:
            ratio, ci, p, test = paired_log_ratio(b, h) if min(b + h) > 0 else paired_difference(b, h)
        n = len(seeds)
    else:
        b, h = list(vb.values()), list(vh.values())
        if min(b + h) <= 0:
            return None
        ratio, ci, p, test = welch_log_ratio(b, h)
        n = min(len(b), len(h))
    if direction is None:
        kind, significant, v = "measured", p is not None and p < alpha, "untested"
        test = f"no recorded direction (a metric plugin's measurement): not judged; {test}"
    else:
        kind = "deterministic" if exact else "statistical"
        significant, v = verdict(ratio, p, alpha, threshold, direction == "min")
        if exact and differ:
            test = f"deterministic: differs on {differ}/{n} seed(s); {test}"
            v = "changed" if v in ("unchanged", "untested") else v
    return Change(quantity=quantity, n=n, paired=bool(seeds), base=_median(b), head=_median(h),
                  ratio=ratio, ci=ci, p_value=p, test=test, significant=significant, verdict=v, kind=kind, **info)


def _compare_success(gb, gh, alpha, info) -> Change:
    """The share of seeds that reached the target; deterministic on the CPU (see module docstring)."""
    def per_seed(g):
        runs: dict = {}
        for seed, status in zip(g["seed"], g["status"]):
            runs.setdefault(int(seed), []).append(status == REACHED)
        return {seed: sum(hits) / len(hits) >= 0.5 for seed, hits in runs.items()}
    sb, sh = per_seed(gb), per_seed(gh)
    kb, kh = sum(sb.values()), sum(sh.values())
    rb, rh = kb / len(sb), kh / len(sh)
    ratio = rh / rb if rb > 0 else (1.0 if rh == 0 else math.inf)
    seeds = sorted(set(sb) & set(sh))
    exact = bool(seeds) and _deterministic(gb, gh, seeds)
    differ = sum(sb[s] != sh[s] for s in seeds)
    if exact and not differ and rb == rh:
        return Change(quantity="success_rate", n=len(seeds), paired=True, base=rb, head=rh, ratio=ratio,
                      ci=None, p_value=1.0, test=f"deterministic: same outcome on {len(seeds)} seed(s)",
                      significant=False, verdict="unchanged", kind="success", **info)
    if rh >= rb:
        p = 1.0 if rh == rb else fisher_one_sided(kh, len(sh), kb, len(sb))
        significant = p < alpha
        v = "improvement" if significant else "unchanged"
        test = "Fisher exact, one-sided"
    elif kh == 0 and kb == len(sb) and len(sb) >= 2:
        p, significant, v, test = 0.0, True, "regression", "target lost on every seed"
    else:
        p = fisher_one_sided(kb, len(sb), kh, len(sh))
        significant = p < alpha
        v = "regression" if significant else "unchanged"
        test = "Fisher exact, one-sided"
    if exact and differ:
        test = f"deterministic: outcome differs on {differ}/{len(seeds)} seed(s); {test}"
        if v == "unchanged":
            v = "changed"
    return Change(quantity="success_rate", n=min(len(sb), len(sh)), paired=False, base=rb, head=rh,
                  ratio=ratio, ci=None, p_value=p, test=test, significant=significant,
                  verdict=v, kind="success", **info)


def _time_change(gb, gh, quantity, info) -> tuple[Change | None, tuple | None]:
    """A time quantity's Change, judged later, and its (base, head) paired values (None unpaired)."""
    vb, vh = _values(gb, quantity), _values(gh, quantity)
    if not vb or not vh:
        return None, None
    seeds = sorted(set(vb) & set(vh))
    if seeds:
        b, h = [vb[s] for s in seeds], [vh[s] for s in seeds]
        n, paired = len(seeds), True
    else:
        b, h = list(vb.values()), list(vh.values())
        n, paired = min(len(b), len(h)), False
    if min(b + h) <= 0:
        return None, None
    ratio = math.exp(float(np.mean(np.log(h))) - float(np.mean(np.log(b))))
    change = Change(quantity=quantity, n=n, paired=paired, base=_median(b), head=_median(h),
                    ratio=ratio, ci=None, p_value=None, test="", significant=False, verdict="untested",
                    kind="time", **info)
    return change, ((b, h) if paired else None)


def time_verdicts(pairs: dict, alpha: float = 0.05, threshold: float = 0.1) -> tuple[dict, dict, int]:
    """The decisions compare makes on time quantities, from paired values alone.

    ``pairs``: {quantity: {key: (base values, head values)}}. Returns ({quantity: run effect or
    None}, {quantity: {key: (Deviation, verdict)}}, tests): every key's deviation from its
    quantity's run effect with the verdict (regression, improvement, unchanged), the
    Bonferroni correction running over all `tests` deviations of all quantities."""
    tests = sum(len(p) for p in pairs.values() if len(p) >= MIN_KEYS_FOR_RUN_EFFECT)
    runs, judged = {}, {}
    for q, p in pairs.items():
        runs[q], devs = time_deviations(p, alpha, tests)
        judged[q] = {k: (d, verdict(d.rel_ratio, d.p_value, alpha, threshold, True)[1]) for k, d in devs.items()}
    return runs, judged, tests


def judge_times(changes: dict, pairs: dict, alpha: float, threshold: float,
                run_tolerance: float | None, withheld: str | None) -> list[Change]:
    """Judge the time Changes against their run effect (see the module docstring); return one
    run-effect Change per time quantity. ``changes``/``pairs``: {quantity: {key: ...}};
    ``withheld``: why time verdicts are withheld (a loaded machine), or None."""
    runs, judged, tests = time_verdicts(pairs, alpha, threshold)
    run_effects = []
    for q in TIME_QUANTITIES:
        run = runs[q]
        for key, change in changes[q].items():
            dev, v = judged[q].get(key, (None, None))
            if withheld:
                change.test = "not judged: a side ran with more load than CPUs (see the note)"
            elif dev is None:
                change.test = ("unpaired seeds: untested" if key not in pairs[q] else
                               f"fewer than {MIN_KEYS_FOR_RUN_EFFECT} keys: machine speed and code "
                               "cannot be told apart (see --run-tolerance)")
            else:
                change.rel_ratio, change.ci, change.p_value, change.verdict = dev.rel_ratio, dev.ci, dev.p_value, v
                change.significant = dev.p_value is not None and dev.p_value < alpha
                change.test = (f"against the run effect ×{run:.3g}: pooled seed spread, "
                               f"Bonferroni over {tests} time tests")
        if not pairs[q]:
            continue
        keys = len(pairs[q])
        if run is None:  # fewer keys than a median needs: the common factor is their geometric mean
            run = math.exp(float(np.mean([np.mean(np.log(h)) - np.mean(np.log(b)) for b, h in pairs[q].values()])))
        effect = Change(problem="(all keys)", optimizer=f"run effect over {keys} key(s)", quantity=q, n=keys,
                        paired=True, base=None, head=None, ratio=run, ci=None, p_value=None,
                        test="machine-speed factor: not judged (give --run-tolerance)", significant=False,
                        verdict="untested", kind="run effect")
        if run_tolerance is not None and not withheld:
            bound = math.log1p(run_tolerance)
            lr = math.log(run)
            effect.verdict = "regression" if lr > bound else ("improvement" if lr < -bound else "unchanged")
            effect.significant = effect.verdict != "unchanged"
            effect.test = f"machine-speed factor against --run-tolerance {run_tolerance:g}"
        elif withheld:
            effect.test = "machine-speed factor: not judged (a side ran with more load than CPUs)"
        run_effects.append(effect)
    return run_effects


# --------------------------------------------------------------------------- compare
def compare(base: pd.DataFrame, head: pd.DataFrame, threshold: float = 0.1, alpha: float = 0.05,
            ignore=(), quantities=None, run_tolerance: float | None = None,
            judge_loaded: bool = False) -> Comparison:
    """Compare two trials DataFrames (from ``read_trials``) key by key; see the module docstring.

    ``quantities``: compare only these (success_rate, time_to_target_s, time_per_step_s,
    steps_to_target or metric names); None compares everything. ``run_tolerance``: how far the
    machine-speed factor of two runs of one suite may drift on these machines (e.g. 0.05);
    None leaves it unjudged. ``judge_loaded``: judge time quantities even when a side ran on an
    oversubscribed machine."""
    bad = set(ignore) - set(IGNORABLE)
    if bad:
        raise ValueError(f"ignore: unknown key fields {sorted(bad)} (known: {', '.join(IGNORABLE)})")
    wanted = set(quantities) if quantities else None
    base, stale_b = latest_code(base)
    head, stale_h = latest_code(head)
    labels = _labels(base, head)
    gbs, ghs = _groups(base, ignore, labels), _groups(head, ignore, labels)
    shared = sorted(set(gbs) & set(ghs), key=lambda k: (gbs[k]["problem_label"][0], gbs[k]["label"][0], k))
    notes = []
    if stale_b or stale_h:
        notes.append(f"rows of older code left out (the newest code per key is compared): "
                     f"{stale_b} in base, {stale_h} in head")
    loaded = [f"{side} ran at {why}" for side, df in (("base", base), ("head", head))
              if (why := oversubscribed(df))]
    withheld = None
    if loaded and not judge_loaded:
        withheld = "; ".join(loaded) + " (timings include other work; --judge-loaded judges them anyway)"
        notes.append("time quantities not judged: " + withheld)
    changes = []
    time_changes = {q: {} for q in TIME_QUANTITIES}
    time_pairs = {q: {} for q in TIME_QUANTITIES}
    key_fields = ([] if ignore else ["key_id"]) + [f for f in KEY_FIELDS if f not in set(ignore)]
    for key in shared:
        gb, gh = gbs[key], ghs[key]
        info = {"problem": gb["problem_label"][0], "optimizer": gb["label"][0],
                "key": {f: gb[f][0] for f in key_fields}}
        if wanted is None or "success_rate" in wanted:
            changes.append(_compare_success(gb, gh, alpha, info))
        for q in TIME_QUANTITIES:
            if wanted is not None and q not in wanted:
                continue
            change, paired = _time_change(gb, gh, q, info)
            if change is not None:
                changes.append(change)
                time_changes[q][key] = change
                if paired is not None:
                    time_pairs[q][key] = paired
        names = {n for m in gb["metrics"] + gh["metrics"] if isinstance(m, dict) for n in m}
        primary = primary_metric(gb["targets"][0], first_metrics(gb["metrics"] + gh["metrics"]))
        ordered = ["steps_to_target"] + ([primary] if primary else []) + sorted(names - {primary})
        for quantity in ordered:
            if wanted is not None and quantity not in wanted:
                continue
            change = _compare_quantity(gb, gh, quantity, alpha, threshold, info)
            if change is not None:
                changes.append(change)
    run_effects = judge_times(time_changes, time_pairs, alpha, threshold, run_tolerance, withheld)
    return Comparison(changes=changes, keys_shared=len(shared), keys_only_base=len(set(gbs) - set(ghs)),
                      keys_only_head=len(set(ghs) - set(gbs)), threshold=threshold, alpha=alpha,
                      base_provenance=_provenance(base), head_provenance=_provenance(head),
                      run_effects=run_effects, notes=notes, run_tolerance=run_tolerance)
