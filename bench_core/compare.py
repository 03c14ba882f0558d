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

import functools
import json
import math
import statistics
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from .analysis import REACHED, primary_metric, setting_labels
from .groups import Groups, as_floats
from .paired import Paired, in_first_order, moments, pair, per_seed, seed_codes

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


@functools.lru_cache(maxsize=4096)
def _t_quantile(dof: float, level: float = 0.95) -> float:
    """The two-sided `level` quantile of Student's t."""
    return float(special.stdtrit(dof, 0.5 + level / 2.0))


def paired_log_ratio(base, head, level: float = 0.95) -> tuple[float, tuple | None, float | None, str]:
    """(ratio, interval, p, test) for paired positive values: geometric-mean ratio head/base,
    Student-t interval on the mean log-ratio and the paired t-test (see the module docstring)."""
    d = np.log(np.asarray(head, float)) - np.log(np.asarray(base, float))
    return log_ratio_test(float(d.mean()), float(d.std(ddof=1)) if len(d) >= 2 else 0.0, len(d), level)


def log_ratio_test(mean: float, sd: float, n: int, level: float = 0.95,
                   p: float | None = None) -> tuple[float, tuple | None, float | None, str]:
    """``paired_log_ratio`` from the log-ratios' mean, standard deviation (ddof 1) and count;
    `p`: the t-test's p-value when computed already (``t_test_p``, for many keys at once)."""
    if n < 2:
        return math.exp(mean), None, None, "single seed: untested"
    if sd <= 1e-12 * max(1.0, abs(mean)):
        p = 1.0 if abs(mean) <= 1e-12 else 0.0
        return math.exp(mean), (math.exp(mean), math.exp(mean)), p, "paired, identical ratios"
    se = sd / math.sqrt(n)
    half = _t_quantile(n - 1, level) * se
    return (math.exp(mean), (math.exp(mean - half), math.exp(mean + half)), _t_sf2(mean / se, n - 1) if p is None
            else p, "paired t-test on log-ratios")


def t_test_p(mean: np.ndarray, sd: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The one-sample t-test's two-sided p-values (as ``log_ratio_test`` computes one) of many
    samples at once, from their means, standard deviations (ddof 1) and sizes."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * special.stdtr(n - 1, -np.abs(mean / (sd / np.sqrt(n))))


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
    d = head - base
    return difference_test(float(np.median(base)), float(np.median(head)), float(d.mean()) if len(d) else 0.0,
                           float(d.std(ddof=1)) if len(d) >= 2 else 0.0, len(d))


def difference_test(base_median: float, head_median: float, mean: float, sd: float,
                    n: int) -> tuple[float | None, tuple | None, float | None, str]:
    """``paired_difference`` from the medians, the differences' mean, standard deviation (ddof 1)
    and count."""
    mb, mh = base_median, head_median
    ratio = mh / mb if mb > 0 else (1.0 if mb == mh else None)
    if n < 2:
        return ratio, None, None, "single seed: untested"
    if sd == 0.0:
        return ratio, None, (1.0 if mean == 0 else 0.0), "paired, identical differences"
    return ratio, None, _t_sf2(mean / (sd / math.sqrt(n)), n - 1), "paired t-test on differences"


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


def time_deviations(pairs, alpha: float = 0.05, tests: int | None = None) -> tuple[float | None, dict]:
    """The run effect of one time quantity and each key's deviation from it.

    ``pairs``: {key: (base values, head values)}, positive and paired by seed (or a
    ``paired.Paired`` of them). Returns (run effect, {key: Deviation}): the run effect is the
    median over keys of each key's geometric-mean ratio head/base (None with fewer than
    MIN_KEYS_FOR_RUN_EFFECT keys, and then no deviations); a deviation's noise is the per-seed
    log-ratios' spread about their key's mean, pooled over keys, over √(the key's seeds); its
    p-value is Bonferroni-adjusted over ``tests`` (default: the keys here), so that ``alpha``
    bounds the chance that an A/A pair flags any of them. With no spare seeds (one seed per
    key) p_value and ci are None. Every key is computed at once (numpy), with the numbers of
    computing one key at a time.
    """
    pairs = pairs if isinstance(pairs, Paired) else Paired.from_dict(pairs)
    if len(pairs) < MIN_KEYS_FOR_RUN_EFFECT:
        return None, {}
    m = moments(pairs.codes, len(pairs), np.log(pairs.head) - np.log(pairs.base), median=False)
    run = float(np.median(m["mean"]))
    dof = len(pairs.codes) - len(pairs)
    pooled_var = sum(m["ss"].tolist()) / dof if dof > 0 else None
    tests = max(tests or len(pairs), 1)
    means, ns = m["mean"].tolist(), m["n"].tolist()
    if pooled_var is not None:
        se = np.sqrt(pooled_var / m["n"])
        delta = m["mean"] - run
        with np.errstate(divide="ignore", invalid="ignore"):
            p_all = np.minimum(1.0, tests * (2.0 * special.stdtr(dof, -np.abs(delta / se)))).tolist()
        half = (_t_quantile(dof, 1.0 - alpha / tests) * se).tolist()
        se = se.tolist()
    out = {}
    for i, k in enumerate(pairs.keys):
        delta = means[i] - run
        p = ci = None
        if pooled_var is not None:
            if se[i] <= 1e-12:
                p = 1.0 if abs(delta) <= 1e-12 else 0.0
                ci = (math.exp(delta), math.exp(delta))
            else:
                p = p_all[i]
                ci = (math.exp(delta - half[i]), math.exp(delta + half[i]))
        out[k] = Deviation(ratio=math.exp(means[i]), rel_ratio=math.exp(delta), ci=ci, p_value=p, n=ns[i])
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
    if "code_id" not in df or not len(df) or df.groupby("key_id", sort=False)["code_id"].nunique().max() <= 1:
        return df, 0
    end = pd.to_datetime(df["ended_at"], utc=True, errors="coerce").fillna(pd.Timestamp(0, tz="UTC"))
    last = df.assign(_end=end).groupby(["key_id", "code_id"])["_end"].max().reset_index()
    newest = last.sort_values("_end", kind="stable").groupby("key_id").tail(1)
    keep = set(zip(newest["key_id"], newest["code_id"]))
    mask = [(k, c) in keep for k, c in zip(df["key_id"], df["code_id"])]
    return df[mask], int(len(df) - sum(mask))


def _match_keys(df: pd.DataFrame, ignore) -> list[str]:
    """The key each row is matched on: key_id, or the remaining key fields with `ignore` (their
    JSON, made once per distinct combination)."""
    ignore = set(ignore)
    if not ignore:
        return [str(k) for k in df["key_id"].tolist()]
    fields = [f for f in KEY_FIELDS if f not in ignore]
    made: dict = {}
    out = []
    for values in zip(*[df[f].tolist() for f in fields]):
        text = made.get(values)
        if text is None:
            text = made[values] = json.dumps(dict(zip(fields, values)), sort_keys=True, default=str)
        out.append(text)
    return out


def _provenance(df: pd.DataFrame) -> list[dict]:
    """Distinct (commit, dirty, host, CPU, GPU, torch) with their trial counts, median load and CPUs."""
    cols = ["git_commit", "git_dirty", "host", "cpu_model", "gpu_model", "torch_version"]
    combined = np.zeros(len(df), dtype=np.int64)
    codes, texts = [], []
    for c in cols:
        code, uniques = pd.factorize(df[c])  # missing values: -1, shown as ""
        codes.append(code + 1)
        texts.append([""] + [str(u) for u in uniques])
        combined = combined * len(texts[-1]) + codes[-1]
    if not len(df):
        return []
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    groups = Groups(inverse.reshape(-1), len(first))
    loads, cpus = as_floats(df["load_avg"].tolist()), as_floats(df["cpu_count"].tolist())
    found = [(tuple(text[code[i]] for code, text in zip(codes, texts)), rows)
             for i, rows in zip(first.tolist(), groups.rows())]
    out = []
    for vals, rows in sorted(found, key=lambda item: item[0]):
        load, n_cpus = _median_load(loads[rows], cpus[rows])
        out.append({**dict(zip(cols, vals)), "trials": len(rows), "load_avg": load, "cpu_count": n_cpus})
    return out


def _median_load(loads, cpus) -> tuple[float | None, int | None]:
    """(median load, median CPU count) of the recorded values; Nones when none is recorded."""
    def median(values):
        vals = as_floats(values)
        vals = vals[~np.isnan(vals)]
        return float(np.median(vals)) if len(vals) else None
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
    cols = ["key_id", "code_id", *KEY_FIELDS]
    keys = pd.concat([base[cols], head[cols]], ignore_index=True).drop_duplicates("key_id")
    labelled = setting_labels(keys.reset_index(drop=True), by_code=False)
    return dict(zip(labelled["key_id"], zip(labelled["problem_label"], labelled["label"])))


@dataclass
class _Side:
    """One side's rows, coded for judging every shared key at once."""

    df: pd.DataFrame
    key: np.ndarray  # per row: the position of its key among the shared keys, -1 when not shared
    seed: np.ndarray  # per row: seed code (ordered as the seeds)
    n_keys: int
    n_seeds: int
    groups: Groups = None  # rows by key; group n_keys holds the rows of keys not shared
    timeout_ids: np.ndarray = None  # (key, seed) ids with a trial ended by timeout
    off_cpu: np.ndarray = None  # per key: a row not on the CPU
    metrics: list = None
    directions: tuple = None  # (code per row, the distinct recorded directions parsed, None: none)
    unshared: int = 0  # keys of this side that the other lacks

    def __post_init__(self):
        self.groups = Groups(np.where(self.key < 0, self.n_keys, self.key), self.n_keys + 1)
        status = self.df["status"].to_numpy(dtype=object)
        timed = (status == TIMEOUT) & (self.key >= 0)
        self.timeout_ids = np.unique(self.key[timed] * self.n_seeds + self.seed[timed])
        self.off_cpu = self.groups.count(self.df["device"].astype(str).to_numpy() != "cpu")[:-1] > 0
        self.metrics = self.df["metrics"].tolist()
        codes, uniques = pd.factorize(self.df["directions"])  # missing: -1, the last parsed
        self.directions = codes, [json.loads(d) if isinstance(d, str) and d else None for d in uniques] + [None]

    @property
    def reached(self) -> np.ndarray:
        """Per row: whether the trial reached its target."""
        return self.df["status"].to_numpy(dtype=object) == REACHED

    def values(self, quantity: str) -> tuple[np.ndarray, np.ndarray]:
        """(value per row, NaN where it has none; the rows that count): times and steps to
        target count only where the target was reached."""
        if quantity == "time_per_step_s":
            steps, t = as_floats(self.df["steps"].tolist()), as_floats(self.df["train_time_s"].tolist())
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(steps > 0, t / np.where(steps > 0, steps, 1.0), np.nan)
        elif quantity in ("time_to_target_s", "steps_to_target"):
            v = as_floats(self.df[quantity].tolist())
        else:
            v = as_floats([m.get(quantity) if isinstance(m, dict) else None for m in self.metrics])
        keep = np.isfinite(v)
        if quantity in ("time_to_target_s", "steps_to_target"):
            keep &= self.reached
        return v, keep

    def per_seed(self, quantity: str):
        """``paired.per_seed`` of `quantity` over the rows of shared keys."""
        v, keep = self.values(quantity)
        return per_seed(self.key, self.seed, v, keep, self.n_seeds)

    def first_row(self, mask=None) -> np.ndarray:
        """Per shared key, its first row (where `mask` holds), -1 when none."""
        return self.groups.first_index(mask)[:-1]


def _sides(base: pd.DataFrame, head: pd.DataFrame, ignore, labels: dict) -> tuple[_Side, _Side, list, list]:
    """(base side, head side, match key of each shared key, (problem label, setting label) of
    each), the shared keys ordered by their labels, then match key."""
    kb, kh = _match_keys(base, ignore), _match_keys(head, ignore)
    codes, uniques = pd.factorize(np.asarray(kb + kh, dtype=object))
    cb, ch = codes[:len(kb)], codes[len(kb):]
    first = Groups(cb, len(uniques)).first_index()
    both = np.zeros(len(uniques), dtype=bool)
    both[np.unique(cb)] = True
    both[np.setdiff1d(np.arange(len(uniques)), ch)] = False
    key_ids = base["key_id"].tolist()
    found = [(labels[key_ids[first[c]]], uniques[c], c) for c in np.flatnonzero(both).tolist()]
    found.sort(key=lambda x: (x[0][0], x[0][1], x[1]))
    position = np.full(len(uniques), -1, dtype=np.int64)
    position[[c for _, _, c in found]] = np.arange(len(found))
    (sb, sh), n_seeds = seed_codes(base["seed"].to_numpy(), head["seed"].to_numpy())
    sides = [_Side(df, position[c], s, len(found), n_seeds, unshared=len(np.unique(c)) - len(found))
             for df, c, s in ((base, cb, sb), (head, ch, sh))]
    return sides[0], sides[1], [k for _, k, _ in found], [lab for lab, _, _ in found]


def _direction(b: _Side, h: _Side, metric: str) -> list:
    """Per shared key: the recorded direction of `metric` ("min"/"max") of its first row (base
    rows first) that recorded one, None when none did."""
    if metric in LOWER_IS_BETTER:
        return ["min"] * b.n_keys
    found = []
    for side in (b, h):
        codes, parsed = side.directions
        values = [d.get(metric) if d else None for d in parsed]
        first = side.first_row(np.array([bool(v) for v in values], dtype=bool)[codes]).tolist()
        found.append([values[codes[i]] if i >= 0 else None for i in first])
    return [x if x is not None else y for x, y in zip(*found)]


def _ordered_quantities(b: _Side, h: _Side, targets: list, first: list) -> list[list[str]]:
    """Per shared key, the quantities after success and times: steps to target, the primary
    metric (from its first base row's targets and the first metrics reported, base rows first),
    then the other metrics its rows report, sorted."""
    names = [set() for _ in range(b.n_keys)]
    firsts = []
    for side in (b, h):
        for key, m in zip(side.key.tolist(), side.metrics):
            if key >= 0 and isinstance(m, dict):
                names[key].update(m)
        firsts.append(side.first_row(np.array([isinstance(m, dict) and bool(m) for m in side.metrics],
                                              dtype=bool)).tolist())
    out, made = [], {}
    for key in range(b.n_keys):
        fb, fh = firsts[0][key], firsts[1][key]
        metrics = b.metrics[fb] if fb >= 0 else h.metrics[fh] if fh >= 0 else {}
        found = (targets[first[key]], tuple(metrics), tuple(sorted(names[key])))
        if found not in made:  # primary_metric reads the targets' JSON: once per distinct case
            primary = primary_metric(found[0], metrics)
            made[found] = ["steps_to_target"] + ([primary] if primary else []) + sorted(names[key] - {primary})
        out.append(made[found])
    return out


def _on_cpu(b: _Side, h: _Side) -> np.ndarray:
    return ~(b.off_cpu | h.off_cpu)


def _timed_out(b: _Side, h: _Side, ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per shared key: whether one of its (key, seed) `ids` ended by timeout on a side."""
    hit = np.isin(ids, np.union1d(b.timeout_ids, h.timeout_ids))
    return np.bincount(keys[hit], minlength=b.n_keys) > 0


# --------------------------------------------------------------------------- per quantity
def _quantity_changes(b: _Side, h: _Side, quantity: str, alpha: float, threshold: float, infos: list) -> dict:
    """{key position: Change} of steps to target or a final metric, every shared key at once:
    deterministic or statistical (see the module docstring). A metric whose direction no row
    recorded is not one the problem reports but a metric plugin's measurement (peak memory,
    ...): shown with its test, not judged."""
    vb, vh = b.per_seed(quantity), h.per_seed(quantity)
    k = b.n_keys
    pk, ps, pb, ph = pair(vb, vh)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = moments(pk, k, np.log(ph) - np.log(pb), median=False)
    mb, mh, md = moments(pk, k, pb), moments(pk, k, ph), moments(pk, k, ph - pb, median=False)
    differs = np.bincount(pk, weights=pb != ph, minlength=k).astype(np.int64).tolist()
    exact_keys = (_on_cpu(b, h) & ~_timed_out(b, h, pk * b.n_seeds + ps, pk)).tolist()
    has = (np.bincount(vb.key, minlength=k) > 0) & (np.bincount(vh.key, minlength=k) > 0)
    directions = _direction(b, h, quantity)
    n_all = mb["n"].tolist()
    b_min, h_min, b_med, h_med = mb["min"].tolist(), mh["min"].tolist(), mb["median"].tolist(), mh["median"].tolist()
    l_mean, l_ss, d_mean, d_ss = logs["mean"].tolist(), logs["ss"].tolist(), md["mean"].tolist(), md["ss"].tolist()
    with np.errstate(invalid="ignore"):
        l_p = t_test_p(logs["mean"], np.sqrt(logs["ss"] / (logs["n"] - 1)), logs["n"]).tolist()
    out = {}
    for key in np.flatnonzero(has).tolist():
        direction, n = directions[key], n_all[key]
        exact = differ = False
        if n:
            exact, differ = direction is not None and exact_keys[key], differs[key]
            if exact and not differ:
                ratio = 1.0 if b_min[key] > 0 else None
                ci, p, test = ((1.0, 1.0) if ratio else None), 1.0, f"deterministic: equal on {n} seed(s)"
            elif min(b_min[key], h_min[key]) > 0:
                ratio, ci, p, test = log_ratio_test(l_mean[key], _sd(l_ss[key], n), n, p=l_p[key])
            else:
                ratio, ci, p, test = difference_test(b_med[key], h_med[key], d_mean[key], _sd(d_ss[key], n), n)
            med_b, med_h = b_med[key], h_med[key]
        else:
            bl, hl = in_first_order(vb, key), in_first_order(vh, key)
            if min(bl + hl) <= 0:
                continue
            ratio, ci, p, test = welch_log_ratio(bl, hl)
            n, med_b, med_h = min(len(bl), len(hl)), _median(bl), _median(hl)
        if direction is None:
            kind, significant, v = "measured", p is not None and p < alpha, "untested"
            test = f"no recorded direction (a metric plugin's measurement): not judged; {test}"
        else:
            kind = "deterministic" if exact else "statistical"
            significant, v = verdict(ratio, p, alpha, threshold, direction == "min")
            if exact and differ:
                test = f"deterministic: differs on {differ}/{n} seed(s); {test}"
                v = "changed" if v in ("unchanged", "untested") else v
        out[key] = Change(quantity=quantity, n=n, paired=bool(n_all[key]), base=med_b, head=med_h, ratio=ratio,
                          ci=ci, p_value=p, test=test, significant=significant, verdict=v, kind=kind, **infos[key])
    return out


def _sd(ss: float, n: int) -> float:
    """np.std(ddof=1) from the sum of squared deviations (0 below two values)."""
    return math.sqrt(ss / (n - 1)) if n >= 2 else 0.0


def _median(values: list) -> float:
    """The median of a few finite floats: the middle value, or the mean of the two middle ones."""
    return float(statistics.median(values))


def _success_changes(b: _Side, h: _Side, alpha: float, infos: list) -> list:
    """The share of seeds that reached the target, per shared key; deterministic on the CPU (see
    the module docstring). A seed run more than once succeeded when half its runs did."""
    k, ns = b.n_keys, b.n_seeds
    sides = []
    for side in (b, h):
        rows = side.key >= 0
        ids, inverse = np.unique(side.key[rows] * ns + side.seed[rows], return_inverse=True)
        hit = np.bincount(inverse, weights=side.reached[rows]) / np.bincount(inverse) >= 0.5
        sides.append((ids, hit, np.bincount(ids // ns, weights=hit, minlength=k).astype(np.int64).tolist(),
                      np.bincount(ids // ns, minlength=k).tolist()))
    (ids_b, hit_b, kb, nb), (ids_h, hit_h, kh, nh) = sides
    shared, ib, ih = np.intersect1d(ids_b, ids_h, assume_unique=True, return_indices=True)
    n_shared = np.bincount(shared // ns, minlength=k).tolist()
    differs = np.bincount(shared // ns, weights=hit_b[ib] != hit_h[ih], minlength=k).astype(np.int64).tolist()
    exact = (_on_cpu(b, h) & ~_timed_out(b, h, shared, shared // ns)).tolist()
    return [_success_change(kb[i], nb[i], kh[i], nh[i], n_shared[i], bool(n_shared[i]) and exact[i], differs[i],
                            alpha, infos[i]) for i in range(k)]


def _success_change(kb: int, nb: int, kh: int, nh: int, shared: int, exact: bool, differ: int, alpha: float,
                    info: dict) -> Change:
    """One key's success rate: `kb` of `nb` seeds reached the target in base, `kh` of `nh` in
    head; `shared` seeds in common, on which the outcome differs `differ` times."""
    rb, rh = kb / nb, kh / nh
    ratio = rh / rb if rb > 0 else (1.0 if rh == 0 else math.inf)
    if exact and not differ and rb == rh:
        return Change(quantity="success_rate", n=shared, paired=True, base=rb, head=rh, ratio=ratio,
                      ci=None, p_value=1.0, test=f"deterministic: same outcome on {shared} seed(s)",
                      significant=False, verdict="unchanged", kind="success", **info)
    if rh >= rb:
        p = 1.0 if rh == rb else fisher_one_sided(kh, nh, kb, nb)
        significant = p < alpha
        v = "improvement" if significant else "unchanged"
        test = "Fisher exact, one-sided"
    elif kh == 0 and kb == nb and nb >= 2:
        p, significant, v, test = 0.0, True, "regression", "target lost on every seed"
    else:
        p = fisher_one_sided(kb, nb, kh, nh)
        significant = p < alpha
        v = "regression" if significant else "unchanged"
        test = "Fisher exact, one-sided"
    if exact and differ:
        test = f"deterministic: outcome differs on {differ}/{shared} seed(s); {test}"
        if v == "unchanged":
            v = "changed"
    return Change(quantity="success_rate", n=min(nb, nh), paired=False, base=rb, head=rh,
                  ratio=ratio, ci=None, p_value=p, test=test, significant=significant,
                  verdict=v, kind="success", **info)


def _time_changes(b: _Side, h: _Side, quantity: str, infos: list) -> tuple[dict, Paired]:
    """({key position: Change}, paired values) of a time quantity, judged later: the ratio of
    geometric means over paired seeds (over all seeds when none is paired)."""
    vb, vh = b.per_seed(quantity), h.per_seed(quantity)
    k = b.n_keys
    pk, _, pb, ph = pair(vb, vh)
    with np.errstate(divide="ignore", invalid="ignore"):
        lb, lh = moments(pk, k, np.log(pb), median=False), moments(pk, k, np.log(ph), median=False)
    mb, mh = moments(pk, k, pb), moments(pk, k, ph)
    has = (np.bincount(vb.key, minlength=k) > 0) & (np.bincount(vh.key, minlength=k) > 0)
    n_all, positive = mb["n"].tolist(), (np.fmin(mb["min"], mh["min"]) > 0).tolist()
    lb_mean, lh_mean = lb["mean"].tolist(), lh["mean"].tolist()
    med_b, med_h = mb["median"].tolist(), mh["median"].tolist()
    out, paired_keys = {}, []
    for key in np.flatnonzero(has).tolist():
        n = n_all[key]
        if n:
            if not positive[key]:
                continue
            ratio, base, head = math.exp(lh_mean[key] - lb_mean[key]), med_b[key], med_h[key]
            paired_keys.append(key)
        else:
            bl, hl = in_first_order(vb, key), in_first_order(vh, key)
            if min(bl + hl) <= 0:
                continue
            ratio = math.exp(float(np.mean(np.log(hl))) - float(np.mean(np.log(bl))))
            n, base, head = min(len(bl), len(hl)), _median(bl), _median(hl)
        out[key] = Change(quantity=quantity, n=n, paired=bool(n_all[key]), base=base, head=head,
                          ratio=ratio, ci=None, p_value=None, test="", significant=False, verdict="untested",
                          kind="time", **infos[key])
    code = np.full(k, -1, dtype=np.int64)
    code[paired_keys] = np.arange(len(paired_keys))
    rows = code[pk] >= 0
    return out, Paired(paired_keys, code[pk][rows], pb[rows], ph[rows])


def time_verdicts(pairs: dict, alpha: float = 0.05, threshold: float = 0.1) -> tuple[dict, dict, int]:
    """The decisions compare makes on time quantities, from paired values alone.

    ``pairs``: {quantity: {key: (base values, head values)}} (or {quantity: ``paired.Paired``}).
    Returns ({quantity: run effect or None}, {quantity: {key: (Deviation, verdict)}}, tests):
    every key's deviation from its quantity's run effect with the verdict (regression,
    improvement, unchanged), the Bonferroni correction running over all `tests` deviations of
    all quantities."""
    tests = sum(len(p) for p in pairs.values() if len(p) >= MIN_KEYS_FOR_RUN_EFFECT)
    runs, judged = {}, {}
    for q, p in pairs.items():
        runs[q], devs = time_deviations(p, alpha, tests)
        judged[q] = {k: (d, verdict(d.rel_ratio, d.p_value, alpha, threshold, True)[1]) for k, d in devs.items()}
    return runs, judged, tests


def judge_times(changes: dict, pairs: dict, alpha: float, threshold: float,
                run_tolerance: float | None, withheld: str | None) -> list[Change]:
    """Judge the time Changes against their run effect (see the module docstring); return one
    run-effect Change per time quantity. ``changes``: {quantity: {key: Change}}; ``pairs``:
    {quantity: ``paired.Paired``}; ``withheld``: why time verdicts are withheld (a loaded
    machine), or None."""
    runs, judged, tests = time_verdicts(pairs, alpha, threshold)
    run_effects = []
    for q in TIME_QUANTITIES:
        run = runs[q]
        paired_keys = set(pairs[q].keys)
        judged_test = f"against the run effect ×{run:.3g}: pooled seed spread, Bonferroni over {tests} time tests" \
            if run is not None else ""
        for key, change in changes[q].items():
            dev, v = judged[q].get(key, (None, None))
            if withheld:
                change.test = "not judged: a side ran with more load than CPUs (see the note)"
            elif dev is None:
                change.test = ("unpaired seeds: untested" if key not in paired_keys else
                               f"fewer than {MIN_KEYS_FOR_RUN_EFFECT} keys: machine speed and code "
                               "cannot be told apart (see --run-tolerance)")
            else:
                change.rel_ratio, change.ci, change.p_value, change.verdict = dev.rel_ratio, dev.ci, dev.p_value, v
                change.significant = dev.p_value is not None and dev.p_value < alpha
                change.test = judged_test
        if not pairs[q]:
            continue
        keys = len(pairs[q])
        if run is None:  # fewer keys than a median needs: the common factor is their geometric mean
            p = pairs[q]
            mb, mh = moments(p.codes, keys, np.log(p.base)), moments(p.codes, keys, np.log(p.head))
            run = math.exp(float(np.mean((mh["mean"] - mb["mean"]).tolist())))
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
    Each quantity is computed for every key at once (numpy), with the numbers of computing one
    key at a time.

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
    b, h, shared, labels = _sides(base, head, ignore, _labels(base, head))
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
    key_fields = ([] if ignore else ["key_id"]) + [f for f in KEY_FIELDS if f not in set(ignore)]
    first = b.first_row().tolist()
    rows = base.iloc[first] if len(first) else base.iloc[:0]
    infos = [{"problem": lab[0], "optimizer": lab[1], "key": dict(zip(key_fields, values))}
             for lab, values in zip(labels, zip(*[rows[f].tolist() for f in key_fields]))]
    by_quantity = {}
    if wanted is None or "success_rate" in wanted:
        by_quantity["success_rate"] = dict(enumerate(_success_changes(b, h, alpha, infos)))
    time_pairs = {}
    for q in TIME_QUANTITIES:
        by_quantity[q], time_pairs[q] = ({}, Paired([], [], [], [])) if wanted is not None and q not in wanted \
            else _time_changes(b, h, q, infos)
    ordered = _ordered_quantities(b, h, base["targets"].tolist(), first)
    for q in {q for names in ordered for q in names}:
        if wanted is None or q in wanted:
            by_quantity[q] = _quantity_changes(b, h, q, alpha, threshold, infos)
    changes = [by_quantity[q][key] for key, names in enumerate(ordered)
               for q in ("success_rate", *TIME_QUANTITIES, *names) if key in by_quantity.get(q, ())]
    run_effects = judge_times({q: by_quantity[q] for q in TIME_QUANTITIES}, time_pairs, alpha, threshold,
                              run_tolerance, withheld)
    return Comparison(changes=changes, keys_shared=len(shared), keys_only_base=b.unshared, keys_only_head=h.unshared,
                      threshold=threshold, alpha=alpha, base_provenance=_provenance(base),
                      head_provenance=_provenance(head), run_effects=run_effects, notes=notes,
                      run_tolerance=run_tolerance)
