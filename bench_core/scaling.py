"""Scaling-law fits over a results directory, with bootstrap intervals (pure computation).

``bench scaling DIR`` (bench_core/cli/scaling.py) prints what ``analyze`` returns. The inputs
are the trial rows and curves (``bench_core.store.read_trials`` / ``read_curves``) of a size
study: a problem swept over a size parameter (``[[problems]] sweep = { d = [...] }``), possibly
over ``parametrization`` ("sp", "mup", "umup"), with optimizers swept over ``lr``. The problems
report their size and data as metrics: ``n_params`` (parameters N) and ``train_tokens`` or
``train_samples`` (data D seen so far); compute is C ≈ 6 N D (the usual forward + backward count
of a dense network, attention's sequence term left out).

Grouping. Rows are grouped by everything in their trial key (``bench_core.trial``) but the size
parameter(s), ``lr`` and the seed: problem, the other problem params (parametrization kept
apart), optimizer, the other hparams, dtype, device, budget, eval, targets and threads. The size
parameters are the numeric problem params that vary within a problem (found from the rows, no
plugin is known here); the width axis is used when exactly one varies. A (key_id, seed) run by
several code versions counts once (the latest row). Diverged trials count as an infinite loss
when the best lr is chosen and are left out of fits; errors are dropped. Each fit says how many
points (sizes, seeds) it was fit on.

Fits:

- ``size``: the final metric at the best lr per size against N (and against the width, and
  against C), a power law L = a x^-α + c (the offset c only with at least 4 sizes; else
  L = a x^-α), least squares on log L (scipy.optimize.least_squares).
- ``lr_transfer``: the best lr per width (the grid's argmin, refined by a parabola in log lr
  through its neighbours) and the slope of log lr* against log width, per parametrization:
  μP's claim is a slope ≈ 0, SP's best lr drifts ("Tensor Programs V").
- ``speedup``: each optimizer's speed-up over the baseline (torch.adamw) at its best lr, per size:
  the steps the baseline needs to reach its own final loss L*, over the steps the optimizer needs
  to reach L* (interpolated between evaluations); an optimizer that never reaches L* gets the
  baseline's steps to reach the optimizer's final loss over its own budget (< 1). The slope of
  log speed-up against log N says whether the advantage shrinks with size ("Fantastic
  pretraining optimizers and where to find them": 1.4x to 1.1x).
- ``chinchilla``: L(N, D) = E + A/N^α + B/D^β, "approach 3" of "Training Compute-Optimal Large
  Language Models", on end-of-run points: the baseline's trials under "sp" of one problem
  (same non-size params), budgets, schedules and lrs pooled, the best final metric per (N, D)
  cell (``chinchilla_points``). It needs runs that end at each token budget (several
  ``max_steps``, a schedule ending at each: the suite's part, suites/scaling.toml), not the
  intermediate evaluations of one long run. Fit as in "Chinchilla Scaling: A replication attempt"
  (Besiroglu et al.): Huber loss (δ = 1e-3) on log L of the log-sum-exp form, minimized from the
  best points of their grid of starts (Levenberg–Marquardt on the reweighted least squares of the
  Huber loss, vectorized over starts and bootstrap samples, in place of their L-BFGS), with a
  pairs bootstrap over the cells. Refused, with the reason and no numbers, below 3 sizes or 3
  budgets, or when a parameter sits at its bound (E below 1% of the lowest loss, α or β at 0 or 5).

Bootstrap: when a size (or cell) has several seeds, seeds are resampled within each size; with
one seed per size the points themselves are resampled (pairs bootstrap; degenerate resamples,
with fewer distinct sizes than parameters, are dropped). A fit on no more points than it has
parameters (a line through 2 points) is exact and gets no interval (nan, "n_boot" 0). Intervals are the 2.5 and 97.5
percentiles. Linear slopes are bootstrapped vectorized in numpy; nonlinear fits refit each sample.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

#: Key of the parametrization problem param (bench_core.parametrization's convention).
PARAMETRIZATION_KEY = "parametrization"
#: The metrics problems report for scaling fits: size, then data (first found).
SIZE_METRIC = "n_params"
DATA_METRICS = ("train_tokens", "train_samples")
HUBER_DELTA = 1e-3
_KEY_COLUMNS = ("problem", "optimizer", "dtype", "device", "budget", "eval", "targets", "threads")


# --------------------------------------------------------------------------- bootstrap core
def bootstrap_indices(strata, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) row indices of bootstrap samples of n rows whose stratum (e.g. size) is
    `strata`: rows resampled within each stratum when some stratum has several rows (seeds),
    else all rows resampled together (pairs bootstrap)."""
    strata = np.asarray(strata)
    n = len(strata)
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    if counts.max() <= 1:
        return rng.integers(0, n, size=(n_boot, n))
    out = np.empty((n_boot, n), dtype=np.int64)
    for k in range(len(counts)):
        members = np.flatnonzero(inverse == k)
        out[:, members] = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
    return out


def interval(samples, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the finite bootstrap samples (nan, nan when there are none)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if not len(s):
        return (math.nan, math.nan)
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return (float(lo), float(hi))


@dataclass
class LineFit:
    """y = intercept + slope · x, with the slope's bootstrap interval."""

    slope: float
    intercept: float
    slope_ci: tuple
    n_points: int
    n_strata: int
    n_boot: int

    def as_dict(self) -> dict:
        """Plain data (JSON-able)."""
        return {"slope": self.slope, "intercept": self.intercept, "slope_ci": list(self.slope_ci),
                "n_points": self.n_points, "n_sizes": self.n_strata, "n_boot": self.n_boot}


def _slopes(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept along the last axis (nan where x does not vary)."""
    xm, ym = X.mean(-1, keepdims=True), Y.mean(-1, keepdims=True)
    sxx = ((X - xm) ** 2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 1e-12 * np.maximum(1.0, (xm[..., 0] ** 2)), ((X - xm) * (Y - ym)).sum(-1) / sxx, np.nan)
    return slope, ym[..., 0] - slope * xm[..., 0]


def line_fit(x, y, strata=None, n_boot: int = 1000, seed: int = 0) -> LineFit:
    """Least-squares line through (x, y) with a bootstrap interval on the slope (vectorized);
    `strata` (default: x) groups rows for the stratified resampling (see ``bootstrap_indices``)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    strata = x if strata is None else np.asarray(strata)
    if len(np.unique(x)) < 2:
        raise ValueError(f"a line needs at least 2 distinct x values, got {len(np.unique(x))}")
    slope, intercept = _slopes(x, y)
    if len(x) <= 2:  # a line through 2 points: no resample says anything about its spread
        return LineFit(float(slope), float(intercept), (math.nan, math.nan), len(x), len(np.unique(strata)), 0)
    idx = bootstrap_indices(strata, n_boot, np.random.default_rng(seed))
    boot, _ = _slopes(x[idx], y[idx])
    return LineFit(float(slope), float(intercept), interval(boot), len(x), len(np.unique(strata)), n_boot)


# --------------------------------------------------------------------------- power law
@dataclass
class PowerLawFit:
    """L = a · x^-alpha + c (c = 0 without offset), with bootstrap intervals."""

    a: float
    alpha: float
    c: float
    offset: bool
    alpha_ci: tuple
    c_ci: tuple
    n_points: int
    n_sizes: int
    n_boot: int

    def predict(self, x):
        """The fitted L at x."""
        return self.a * np.asarray(x, float) ** -self.alpha + self.c

    def as_dict(self) -> dict:
        """Plain data (JSON-able)."""
        return {"a": self.a, "alpha": self.alpha, "c": self.c, "offset": self.offset,
                "alpha_ci": list(self.alpha_ci), "c_ci": list(self.c_ci), "n_points": self.n_points,
                "n_sizes": self.n_sizes, "n_boot": self.n_boot}


def _batched_lm(P: np.ndarray, evaluate, project, iters: int, lam0: float = 1e-2, weights=None,
                ridge: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg–Marquardt on B problems at once: `evaluate(P)` gives (cost (B,), residuals
    (B, n), Jacobian (B, n, p)) at parameters P (B, p); `project` maps a step into the bounds;
    `weights(r)` (optional) reweights the residuals (iteratively reweighted least squares, e.g.
    for a Huber cost); a step is kept only when it lowers the cost. Returns (P, cost)."""
    P = P.astype(float).copy()
    lam = np.full(len(P), lam0)
    eye = np.eye(P.shape[1])
    cost, r, J = evaluate(P)
    for _ in range(iters):
        W = np.ones_like(r) if weights is None else weights(r)
        A = np.einsum("bni,bn,bnj->bij", J, W, J)
        g = np.einsum("bni,bn->bi", J, W * r)
        A_d = A + lam[:, None, None] * np.einsum("bii->bi", A)[:, :, None] * eye + ridge * eye
        trial = project(P + np.linalg.solve(A_d, -g[..., None])[..., 0])
        new_cost, new_r, new_J = evaluate(trial)
        better = np.isfinite(new_cost) & (new_cost < cost)
        P = np.where(better[:, None], trial, P)
        cost = np.where(better, new_cost, cost)
        r = np.where(better[:, None], new_r, r)
        J = np.where(better[:, None, None], new_J, J)
        lam = np.where(better, np.maximum(lam / 3, 1e-9), np.minimum(lam * 4, 1e12))
        if np.all(lam >= 1e12):
            break
    return P, cost


def _power_fit_batch(X: np.ndarray, Y: np.ndarray, offset: bool, iters: int = 60) -> np.ndarray:
    """(B, 3) of (log a, alpha, c) minimizing sum (log(a x^-alpha + c) - log y)² for each of B
    samples (rows of X, Y; x relative to a reference size), by a damped Gauss–Newton
    (Levenberg–Marquardt) run on all samples at once, c kept in [0, min y) and alpha >= 0."""
    lx, ly = np.log(X), np.log(Y)
    slope, intercept = _slopes(lx, ly)
    if not offset:
        return np.stack([intercept, -slope, np.zeros_like(slope)], axis=1)
    ymin = Y.min(axis=1)
    c = 0.5 * ymin
    s, i = _slopes(lx, np.log(Y - c[:, None]))
    p = np.stack([i, np.clip(-s, 1e-3, None), c], axis=1)
    p = np.where(np.isfinite(p), p, np.array([0.0, 0.5, 0.0]))

    def cost_jac(p):
        t = np.exp(p[:, :1] - p[:, 1:2] * lx)
        m = t + p[:, 2:3]
        r = np.log(m) - ly
        J = np.stack([t / m, -lx * t / m, 1.0 / m], axis=-1)
        return (r * r).sum(1), r, J

    def project(p):
        p[:, 1] = np.clip(p[:, 1], 0.0, 10.0)
        p[:, 2] = np.clip(p[:, 2], 0.0, ymin * (1 - 1e-9))
        return p
    return _batched_lm(p, cost_jac, project, iters)[0]


def power_law_fit(x, y, strata=None, offset: bool | None = None, n_boot: int = 300, seed: int = 0) -> PowerLawFit:
    """Fit L = a x^-alpha (+ c) to positive (x, y) by least squares on log L, with bootstrap
    intervals on alpha and c. `offset` None: with c when x has at least 4 distinct values.
    `strata` (default: x) as for ``line_fit``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = x[ok], y[ok]
    strata = x if strata is None else np.asarray(strata)[ok]
    sizes = len(np.unique(x))
    if offset is None:
        offset = sizes >= 4
    need = 3 if offset else 2
    if sizes < need:
        raise ValueError(f"a power law{' with offset' if offset else ''} needs at least {need} sizes, got {sizes}")
    ref = float(np.exp(np.log(x).mean()))
    la, alpha, c = (float(v) for v in _power_fit_batch((x / ref)[None], y[None], offset)[0])
    if len(x) <= need:  # as many points as parameters: an exact fit, no interval
        return PowerLawFit(math.exp(la) * ref ** alpha, alpha, c, offset, (math.nan, math.nan),
                           (math.nan, math.nan) if offset else (0.0, 0.0), len(x), sizes, 0)
    idx = bootstrap_indices(strata, n_boot, np.random.default_rng(seed))
    xs, ys = x[idx], y[idx]
    usable = np.array([len(np.unique(row)) >= need for row in xs])
    boot = _power_fit_batch(xs[usable] / ref, ys[usable], offset) if usable.any() else np.full((0, 3), np.nan)
    alphas, cs = boot[:, 1], boot[:, 2]
    a = math.exp(la)
    return PowerLawFit(a * ref ** alpha, alpha, c, offset, interval(alphas), interval(cs) if offset else (0.0, 0.0),
                       len(x), sizes, n_boot)


# --------------------------------------------------------------------------- Chinchilla form
@dataclass
class ChinchillaFit:
    """L(N, D) = E + A / N^alpha + B / D^beta, with bootstrap intervals."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    ci: dict
    n_points: int
    n_sizes: int
    n_boot: int

    def predict(self, N, D):
        """The fitted L at (N, D)."""
        return self.E + self.A / np.asarray(N, float) ** self.alpha + self.B / np.asarray(D, float) ** self.beta

    def as_dict(self) -> dict:
        """Plain data (JSON-able); ``a_opt`` = beta/(alpha+beta), the exponent of the
        compute-optimal N_opt ∝ C^a."""
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta,
                "a_opt": self.beta / (self.alpha + self.beta) if self.alpha + self.beta > 0 else math.nan,
                "ci": {k: list(v) for k, v in self.ci.items()}, "n_points": self.n_points,
                "n_sizes": self.n_sizes, "n_boot": self.n_boot}


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _lse_terms(p: np.ndarray, lN: np.ndarray, lD: np.ndarray) -> np.ndarray:
    """(..., n, 3) terms a - alpha log N, b - beta log D, e for parameters p (..., 5) =
    (a, b, e, alpha, beta)."""
    a, b, e, al, be = (p[..., i, None] for i in range(5))
    return np.stack([a - al * lN, b - be * lD, np.broadcast_to(e, (a - al * lN).shape)], axis=-1)


def _chinchilla_objective(p, lN, lD, lL, delta):
    t = _lse_terms(p, lN, lD)
    m = t.max(-1, keepdims=True)
    pred = (m + np.log(np.exp(t - m).sum(-1, keepdims=True)))[..., 0]
    r = pred - lL
    return _huber(r, delta).sum(-1)


_GRID = np.array(np.meshgrid([0.0, 5.0, 10.0, 15.0, 20.0, 25.0], [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
                             [-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.5, 2.0],
                             [0.0, 0.5, 1.0, 1.5, 2.0], indexing="ij")).reshape(5, -1).T


#: Bounds of (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta) in the L(N, D) fit.
_LM_LOW = np.array([-10.0, -10.0, -20.0, 0.0, 0.0])
_LM_HIGH = np.array([60.0, 60.0, 10.0, 5.0, 5.0])


def _chinchilla_lm(P: np.ndarray, lN: np.ndarray, lD: np.ndarray, lL: np.ndarray, delta: float,
                   iters: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """(B, 5) parameters (a, b, e, alpha, beta) minimizing the Huber loss of the log-sum-exp
    form for B problems at once (rows of lN, lD, lL) from starts P: Levenberg–Marquardt on the
    iteratively reweighted least squares of the Huber loss (weights min(1, δ/|r|)), a step
    taken only when it lowers the Huber loss."""
    def evaluate(P):
        t = _lse_terms(P, lN, lD)
        m = t.max(-1, keepdims=True)
        e = np.exp(t - m)
        pred = (m + np.log(e.sum(-1, keepdims=True)))[..., 0]
        w = e / e.sum(-1, keepdims=True)
        r = pred - lL
        J = np.stack([w[..., 0], w[..., 1], w[..., 2], -w[..., 0] * lN, -w[..., 1] * lD], axis=-1)
        return _huber(r, delta).sum(-1), r, J
    return _batched_lm(P, evaluate, lambda Q: np.clip(Q, _LM_LOW, _LM_HIGH), iters, lam0=1e-3,
                       weights=lambda r: np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300)), ridge=1e-10)


def chinchilla_fit(N, D, L, n_boot: int = 100, seed: int = 0, delta: float = HUBER_DELTA) -> ChinchillaFit:
    """Fit L = E + A/N^alpha + B/D^beta by Besiroglu et al.'s method (Huber loss on log L of the
    log-sum-exp form, minimized from the 16 best of a grid of starts, evaluated vectorized), with
    a pairs bootstrap over the (N, D, L) points (each sample refit from the full fit; all
    samples minimized at once by ``_chinchilla_lm``)."""
    N, D, L = (np.asarray(v, float) for v in (N, D, L))
    ok = np.isfinite(N) & np.isfinite(D) & np.isfinite(L) & (N > 0) & (D > 0) & (L > 0)
    N, D, L = N[ok], D[ok], L[ok]
    if len(np.unique(N)) < 2 or len(np.unique(D)) < 2 or len(N) < 6:
        raise ValueError(f"L(N, D) needs at least 2 sizes, 2 data budgets and 6 points, got "
                         f"{len(np.unique(N))} sizes, {len(np.unique(D))} budgets, {len(N)} points")
    lN, lD, lL = np.log(N), np.log(D), np.log(L)
    values = _chinchilla_objective(_GRID, lN, lD, lL, delta)
    starts = _GRID[np.argsort(values)[:16]]
    rep = lambda v, k: np.broadcast_to(v, (k, len(v)))
    fits, costs = _chinchilla_lm(starts, rep(lN, 16), rep(lD, 16), rep(lL, 16), delta)
    p = fits[int(np.argmin(costs))]
    idx = np.random.default_rng(seed).integers(0, len(N), size=(n_boot, len(N)))
    usable = np.array([len(np.unique(N[i])) >= 2 and len(np.unique(D[i])) >= 2 for i in idx])
    samples = np.full((n_boot, 5), np.nan)
    if usable.any():
        k = int(usable.sum())
        samples[usable], _ = _chinchilla_lm(np.broadcast_to(p, (k, 5)), lN[idx[usable]], lD[idx[usable]],
                                            lL[idx[usable]], delta)
    names = ("A", "B", "E", "alpha", "beta")
    trans = lambda k, v: np.exp(v) if k in ("A", "B", "E") else v
    ci = {k: interval(trans(k, samples[:, j])) for j, k in enumerate(names)}
    return ChinchillaFit(E=float(math.exp(p[2])), A=float(math.exp(p[0])), B=float(math.exp(p[1])),
                         alpha=float(p[3]), beta=float(p[4]), ci=ci, n_points=len(N),
                         n_sizes=len(np.unique(N)), n_boot=n_boot)


# --------------------------------------------------------------------------- curves
def steps_to_reach(steps, values, level: float) -> float:
    """The first step at which a (min-direction) curve reaches `level`, interpolated linearly
    between the evaluations around the crossing; nan when it never does."""
    s, v = np.asarray(steps, float), np.asarray(values, float)
    hit = np.flatnonzero(np.isfinite(v) & (v <= level))
    if not len(hit):
        return math.nan
    i = int(hit[0])
    if i == 0 or not np.isfinite(v[i - 1]) or v[i - 1] == v[i]:
        return float(s[i])
    return float(s[i - 1] + (s[i] - s[i - 1]) * (v[i - 1] - level) / (v[i - 1] - v[i]))


def speedup(base_steps, base_values, opt_steps, opt_values) -> float:
    """The optimizer's speed-up over the baseline from their curves (see the module docstring)."""
    target = float(base_values[-1])
    s_base = steps_to_reach(base_steps, base_values, target)
    s_opt = steps_to_reach(opt_steps, opt_values, target)
    if math.isfinite(s_opt) and s_opt > 0:
        return s_base / s_opt
    if math.isfinite(s_opt):  # reached at step 0
        return math.inf
    s_base_own = steps_to_reach(base_steps, base_values, float(opt_values[-1]))
    return s_base_own / float(opt_steps[-1]) if math.isfinite(s_base_own) else 0.0


def best_lr(lrs, losses) -> tuple[float, bool]:
    """(lr*, interior): the grid's argmin refined by a parabola in log lr through it and its two
    neighbours when it is interior (and the parabola opens upward); `losses` may hold inf."""
    lrs, losses = np.asarray(lrs, float), np.asarray(losses, float)
    order = np.argsort(lrs)
    lrs, losses = lrs[order], losses[order]
    i = int(np.argmin(losses))
    if i == 0 or i == len(lrs) - 1 or not np.all(np.isfinite(losses[i - 1:i + 2])):
        return float(lrs[i]), False
    x, y = np.log(lrs[i - 1:i + 2]), losses[i - 1:i + 2]
    c2, c1, _ = np.polyfit(x, y, 2)
    if c2 <= 0:
        return float(lrs[i]), True
    return float(np.exp(np.clip(-c1 / (2 * c2), x[0], x[2]))), True


# --------------------------------------------------------------------------- the study table
def _loads(text) -> dict:
    if isinstance(text, dict):
        return text
    return json.loads(text) if isinstance(text, str) and text else {}


def study_table(rows, metric: str | None = None):
    """One pandas row per usable trial: group, problem, parametrization, optimizer, size key and
    value, width, lr, seed, final metric, n_params, data, status, trial_id (see the module
    docstring for the grouping and what is dropped). Also returns notes (lines) on what it did."""
    import pandas as pd

    notes = []
    if rows is None or not len(rows):
        return pd.DataFrame(), metric, ["no trial rows"]
    df = rows[rows["kind"] == "training"].copy()
    df = df[df["status"] != "error"]
    if not len(df):
        return pd.DataFrame(), metric, ["no training trials without error"]
    df = df.sort_values("ended_at").drop_duplicates(["key_id", "seed"], keep="last")
    dropped = len(rows[rows["kind"] == "training"]) - len(df)
    if dropped:
        notes.append(f"{dropped} training rows left out (status error, or an older code's run of the same key and seed)")
    metrics = df["metrics"].map(lambda m: m if isinstance(m, dict) else {})
    if metric is None:
        metric = "val_loss" if any("val_loss" in m for m in metrics) else "loss"
    params = df["problem_params"].map(_loads)
    hparams = df["hparams"].map(_loads)
    size_keys = {}
    for problem, ps in params.groupby(df["problem"]):
        keys = set().union(*ps.map(set))
        varying = [k for k in sorted(keys) if k != PARAMETRIZATION_KEY
                   and len({json.dumps(p.get(k)) for p in ps}) > 1
                   and all(isinstance(p.get(k), (int, float)) and not isinstance(p.get(k), bool) for p in ps)]
        size_keys[problem] = varying
    out = []
    for (_, r), p, h, m in zip(df.iterrows(), params, hparams, metrics):
        keys = size_keys[r["problem"]]
        rest_p = {k: v for k, v in p.items() if k not in keys}
        rest_h = {k: v for k, v in h.items() if k != "lr"}
        group = json.dumps([rest_p, rest_h] + [str(r[c]) for c in _KEY_COLUMNS], sort_keys=True, default=str)
        value = m.get(metric, math.nan)
        if r["status"] == "diverged" or not (isinstance(value, (int, float)) and math.isfinite(value)):
            value = math.inf
        data = next((m[k] for k in DATA_METRICS if k in m), math.nan)
        out.append({"group": group, "problem": r["problem"], "parametrization": p.get(PARAMETRIZATION_KEY, "sp"),
                    "optimizer": r["optimizer"], "size_key": ",".join(keys),
                    "size": json.dumps([p.get(k) for k in keys]),
                    "width": float(p[keys[0]]) if len(keys) == 1 else math.nan,
                    "lr": float(h["lr"]) if isinstance(h.get("lr"), (int, float)) else math.nan,
                    "seed": int(r["seed"]), "final": value, "n_params": float(m.get(SIZE_METRIC, math.nan)),
                    "data": float(data), "status": r["status"], "trial_id": r["trial_id"],
                    "label": f"{r['problem']} [{p.get(PARAMETRIZATION_KEY, 'sp')}] {r['optimizer']}"})
    table = pd.DataFrame(out)
    steps = df["budget"].map(lambda b: _loads(b).get("max_steps")).to_numpy()
    several = table.groupby("problem")["group"].transform(lambda g: len(set(steps[g.index])) > 1)
    if several.any():  # (pandas' str column refuses `+=` of an empty selection)
        table.loc[several, "label"] += [f" ({steps[i]} steps)" for i in table.index[several]]
    return table, metric, notes


def _best_per_size(g):
    """Per size of one group: the lr with the lowest mean final metric over seeds and its rows."""
    best = []
    for size, s in g.groupby("size", sort=False):
        means = s.groupby("lr")["final"].mean()
        lr = float(means.idxmin()) if np.isfinite(means.min()) else math.nan
        best.append((size, lr, s[s["lr"] == lr] if math.isfinite(lr) else s.iloc[:0]))
    return best


def _curve_map(curves, metric: str) -> dict:
    """trial_id -> (steps, values) of `metric`."""
    if curves is None or not len(curves):
        return {}
    c = curves[curves["metric"] == metric].sort_values(["trial_id", "step"])
    return {tid: (g["step"].to_numpy(float), g["value"].to_numpy(float)) for tid, g in c.groupby("trial_id")}


def analyze(rows, curves=None, metric: str | None = None, baseline: str = "torch.adamw",
            n_boot: int = 300, seed: int = 0, chinchilla_parametrization: str = "sp") -> dict:
    """Every fit of the module docstring on a study's rows (and curves, for the speed-ups and
    L(N, D)), as plain data: {"metric", "notes", "size", "lr_transfer", "speedup", "chinchilla",
    "points"}; a fit that cannot be made is listed in "notes" with the reason."""
    table, metric, notes = study_table(rows, metric)
    result = {"metric": metric, "baseline": baseline, "notes": notes, "size": [], "lr_transfer": [],
              "speedup": [], "chinchilla": None, "chinchilla_refused": None, "points": {"size": [], "lr": [], "speedup": [], "chinchilla": []}}
    if not len(table):
        return result
    curve = _curve_map(curves, metric)
    best_rows = {}
    for gid, g in table.groupby("group", sort=False):
        label = g["label"].iloc[0]
        sizes = g["size"].nunique()
        if sizes < 2:
            continue
        best = _best_per_size(g)
        best_rows[gid] = best
        chosen = [r for _, lr, r in best if len(r) and np.isfinite(r["final"]).all()]
        if not chosen:
            notes.append(f"{label}: no size with a finite {metric}")
            continue
        pts = __import__("pandas").concat(chosen)
        for _, r in pts.iterrows():
            result["points"]["size"].append({"label": label, "n_params": r["n_params"], "width": r["width"],
                                             "compute": 6 * r["n_params"] * r["data"], "final": r["final"],
                                             "lr": r["lr"], "seed": int(r["seed"])})
        axes = [("n_params", pts["n_params"]), ("compute", 6 * pts["n_params"] * pts["data"])]
        if g["size_key"].iloc[0] and "," not in g["size_key"].iloc[0]:
            axes.append((g["size_key"].iloc[0], pts["width"]))
        for axis, x in axes:
            try:
                fit = power_law_fit(x.to_numpy(float), pts["final"].to_numpy(float), strata=pts["size"].to_numpy(),
                                    n_boot=n_boot, seed=seed)
            except ValueError as exc:
                notes.append(f"{label}: {metric} vs {axis}: {exc}")
                continue
            result["size"].append({"label": label, "problem": g["problem"].iloc[0],
                                   "parametrization": g["parametrization"].iloc[0],
                                   "optimizer": g["optimizer"].iloc[0], "axis": axis, **fit.as_dict()})
        # learning-rate transfer: lr* per width
        if g["lr"].nunique() >= 3 and g["width"].notna().all():
            _lr_transfer(g, label, result, notes, n_boot, seed)
    _speedups(table, best_rows, curve, baseline, result, notes, n_boot, seed)
    _chinchilla(table, baseline, chinchilla_parametrization, result, notes, n_boot, seed)
    return result


def _lr_transfer(g, label, result, notes, n_boot, seed) -> None:
    widths, lrs, interior = [], [], []
    for width, s in g.groupby("width"):
        means = s.groupby("lr")["final"].mean()
        if not np.isfinite(means.min()):
            continue
        lr, inner = best_lr(means.index.to_numpy(float), means.to_numpy(float))
        widths.append(width)
        lrs.append(lr)
        interior.append(inner)
        result["points"]["lr"].append({"label": label, "parametrization": g["parametrization"].iloc[0],
                                       "optimizer": g["optimizer"].iloc[0], "width": width, "lr_star": lr,
                                       "interior": inner, "grid": [[float(k), float(v)] for k, v in means.items()]})
    if len(set(widths)) < 2:
        notes.append(f"{label}: lr transfer needs 2 widths with a finite best lr")
        return
    lw, llr = np.log2(widths), np.log2(lrs)
    seeds = g["seed"].nunique()
    if seeds > 1:  # resample seeds within each (width, lr) cell, recompute lr* per width
        rng = np.random.default_rng(seed)
        boot = np.full(n_boot, np.nan)
        cells = {w: {lr: c["final"].to_numpy(float) for lr, c in s.groupby("lr")} for w, s in g.groupby("width")}
        for b in range(n_boot):
            ys = []
            for w in widths:
                grid = sorted(cells[w])
                means = [np.mean(rng.choice(cells[w][lr], len(cells[w][lr]))) for lr in grid]
                ys.append(math.log2(best_lr(grid, means)[0]) if np.isfinite(np.min(means)) else math.nan)
            ys = np.asarray(ys)
            if np.isfinite(ys).all():
                boot[b], _ = _slopes(lw, ys)
        fit = line_fit(lw, llr, n_boot=1, seed=seed)
        fit = LineFit(fit.slope, fit.intercept, interval(boot), len(widths), len(widths), n_boot)
    else:
        fit = line_fit(lw, llr, n_boot=n_boot, seed=seed)
    result["lr_transfer"].append({"label": label, "problem": g["problem"].iloc[0],
                                  "parametrization": g["parametrization"].iloc[0],
                                  "optimizer": g["optimizer"].iloc[0], "seeds": seeds,
                                  "at_grid_edge": int(len(interior) - sum(interior)), **fit.as_dict()})


def _speedups(table, best_rows, curve, baseline, result, notes, n_boot, seed) -> None:
    """Speed-up of each optimizer over `baseline` per size, and its slope against log N."""
    groups = table.drop_duplicates("group").set_index("group")
    # the baseline's group for a group: same problem, params and key parts, optimizer = baseline
    def partner_key(gid):
        rest_p, _, *cols = json.loads(gid)
        return json.dumps([rest_p, cols[0]] + cols[2:], sort_keys=True, default=str)
    by_partner = {}
    for gid in best_rows:
        if groups.loc[gid, "optimizer"] == baseline:
            by_partner.setdefault(partner_key(gid), gid)
    for gid, best in best_rows.items():
        opt = groups.loc[gid, "optimizer"]
        if opt == baseline:
            continue
        label = groups.loc[gid, "label"]
        base = by_partner.get(partner_key(gid))
        if base is None:
            notes.append(f"{label}: no {baseline} trials with the same problem settings: no speed-up")
            continue
        base_best = {size: r for size, _, r in best_rows[base]}
        xs, ys, strata = [], [], []
        for size, lr, r in best:
            b = base_best.get(size)
            if b is None or not len(b) or not len(r):
                continue
            for sd in sorted(set(r["seed"]) & set(b["seed"])):
                tb, to = b[b["seed"] == sd]["trial_id"].iloc[0], r[r["seed"] == sd]["trial_id"].iloc[0]
                if tb not in curve or to not in curve:
                    continue
                s = speedup(*curve[tb], *curve[to])
                n = float(r[r["seed"] == sd]["n_params"].iloc[0])
                result["points"]["speedup"].append({"label": label, "optimizer": opt, "n_params": n,
                                                    "size": size, "seed": sd, "speedup": s, "lr": lr})
                if math.isfinite(s) and s > 0 and math.isfinite(n):
                    xs.append(math.log(n))
                    ys.append(math.log(s))
                    strata.append(size)
        if len(set(xs)) < 2:
            notes.append(f"{label}: speed-up over {baseline} at fewer than 2 sizes: no slope")
            continue
        fit = line_fit(xs, ys, strata=strata, n_boot=n_boot, seed=seed)
        per_size = {}
        for x, y in zip(xs, ys):
            per_size.setdefault(x, []).append(y)
        result["speedup"].append({"label": label, "problem": groups.loc[gid, "problem"],
                                  "parametrization": groups.loc[gid, "parametrization"], "optimizer": opt,
                                  "speedups": [[math.exp(x), float(np.exp(np.mean(v)))] for x, v in sorted(per_size.items())],
                                  **fit.as_dict()})


#: L(N, D) needs end-of-run points at this many sizes and token budgets at least.
CHINCHILLA_MIN_SIZES = CHINCHILLA_MIN_BUDGETS = 3
#: An irreducible loss E below this fraction of the lowest loss is the fit's bound, not an estimate.
CHINCHILLA_E_FLOOR = 0.01


def chinchilla_points(table, baseline: str, parametrization: str) -> list[tuple[str, list]]:
    """End-of-run (N, D, L) cells of the baseline's trials under `parametrization`, per family:
    one problem with the same non-size params, dtype, device, targets and threads (its budgets,
    schedules and lrs pooled). Each cell (N, D) keeps the lowest final metric over its settings
    (mean over seeds): the run tuned for that budget. Families with token data first."""
    rows = table[(table["optimizer"] == baseline) & (table["parametrization"] == parametrization)
                 & np.isfinite(table["n_params"]) & np.isfinite(table["data"]) & (table["data"] > 0)]
    out = []
    for _, g in rows.groupby(rows["group"].map(_family_key), sort=False):
        best: dict = {}
        for (n, d, _, _), c in g.groupby(["n_params", "data", "group", "lr"], dropna=False):
            value = float(c["final"].mean())
            if math.isfinite(value) and value < best.get((n, d), math.inf):
                best[(n, d)] = value
        cells = [(n, d, v) for (n, d), v in sorted(best.items())]
        if cells:
            out.append((f"{g['problem'].iloc[0]} [{parametrization}] {baseline}", cells))
    return out


def _family_key(gid: str) -> str:
    rest_p, _, problem, _, dtype, device, _, _, targets, threads = json.loads(gid)
    return json.dumps([rest_p, problem, dtype, device, targets, threads], sort_keys=True)


def chinchilla_refusal(fit: ChinchillaFit, L) -> str | None:
    """Why the data cannot identify L(N, D) (a parameter at its bound), or None."""
    if fit.E < CHINCHILLA_E_FLOOR * float(np.min(L)):
        return (f"E = {fit.E:.2g} is at the fit's lower bound (below {CHINCHILLA_E_FLOOR:.0%} of the lowest "
                f"loss {np.min(L):.3g}): the data do not identify an irreducible loss")
    for name, value, low, high in (("alpha", fit.alpha, _LM_LOW[3], _LM_HIGH[3]),
                                   ("beta", fit.beta, _LM_LOW[4], _LM_HIGH[4])):
        if value <= low + 1e-3 or value >= high - 1e-3:
            return f"{name} = {value:.3g} is at the fit's bound [{low:g}, {high:g}]: not identified"
    return None


def _chinchilla(table, baseline, parametrization, result, notes, n_boot, seed) -> None:
    """L(N, D) on the end-of-run points (``chinchilla_points``), or a note saying why not."""
    families = chinchilla_points(table, baseline, parametrization)
    families.sort(key=lambda f: 0 if f[0].startswith("lm.") else 1)
    for label, cells in families:
        N, D, L = (np.array([c[i] for c in cells]) for i in range(3))
        sizes, budgets = len(np.unique(N)), len(np.unique(D))
        if sizes < 2 and budgets < 2:
            continue
        for n, d, v in cells:
            result["points"]["chinchilla"].append({"label": label, "N": n, "D": d, "L": v})
        if sizes < CHINCHILLA_MIN_SIZES or budgets < CHINCHILLA_MIN_BUDGETS:
            result["chinchilla_refused"] = (f"{label}: L(N, D) not fit: it needs end-of-run points at "
                                            f"{CHINCHILLA_MIN_SIZES} sizes and {CHINCHILLA_MIN_BUDGETS} token "
                                            f"budgets at least, got {sizes} sizes and {budgets} budgets")
            notes.append(result["chinchilla_refused"])
            return
        fit = chinchilla_fit(N, D, L, n_boot=n_boot, seed=seed)
        why = chinchilla_refusal(fit, L)
        if why:
            result["chinchilla_refused"] = f"{label}: L(N, D) not identified by these {len(L)} points: {why}"
            notes.append(result["chinchilla_refused"])
            return
        result["chinchilla"] = {"label": label, **fit.as_dict(), "n_budgets": budgets,
                                "note": "end-of-run points, the best setting per (N, D) cell; each run's "
                                        "schedule is the suite's to end at its budget"}
        if fit.ci["E"][0] < CHINCHILLA_E_FLOOR * float(L.min()):
            notes.append(f"{label}: L(N, D): E's interval reaches the fit's lower bound (0): treat E as unidentified")
        return
    notes.append(f"L(N, D): no {baseline} [{parametrization}] trials with a data metric "
                 f"({' or '.join(DATA_METRICS)}) at 2 or more sizes or budgets")
