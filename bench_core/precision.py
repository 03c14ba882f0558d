"""Precision as a benchmark axis: stochastic rounding for bfloat16 parameters, and the comparison
of a trial with its float64 twin.

Following "Climate Modelling in Low-Precision: Effects of both Deterministic & Stochastic
Rounding" (Paxton et al.), a low-precision run is judged against the same run in float64 by

- the Wasserstein-1 distance between the distributions of their loss values along the trajectory
  (``scipy.stats.wasserstein_distance`` over the recorded ``loss`` curve points), and
- the relative difference of each final metric, |m − m₆₄| / |m₆₄|.

Twins share problem, problem params (``stochastic_rounding`` aside), optimizer, hparams and seed;
``compare_to_float64(DIR)`` (CLI: ``bench precision DIR``) pairs them in a results directory.

Stochastic rounding (SR): a training problem that sets ``self.stochastic_rounding = True`` (the
built-in ones take a ``stochastic_rounding`` param) gets an optimizer whose step runs in float32
on bfloat16 parameters and rounds the result back stochastically (``enable_stochastic_rounding``):
the value is rounded up or down to a neighbouring bfloat16 with probabilities proportional to the
distances, so the rounding is unbiased and small updates are not lost. In a suite::

    [[problems]]
    name = "vision.mnist_mlp"
    dtype = "bfloat16"
    params = { stochastic_rounding = true }
"""
from __future__ import annotations

import json
import math
import types
from pathlib import Path

import torch

SR_DTYPES = (torch.bfloat16,)
IGNORED_PARAMS = ("stochastic_rounding",)


# --------------------------------------------------------------------------- stochastic rounding
def stochastic_round(x: torch.Tensor, dtype: torch.dtype = torch.bfloat16,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """`x` rounded to bfloat16 stochastically: up or down to a neighbour with probability
    proportional to the distance to the other one (unbiased). Non-finite values round to nearest.

    Works on the float32 bit pattern: add a uniform random 16-bit integer to the low half, then
    truncate it; a carry into the high half is exactly a rounding away from zero.
    """
    if dtype not in SR_DTYPES:
        raise ValueError(f"stochastic rounding supports bfloat16 only, not {dtype}")
    x32 = x.detach().to(torch.float32).contiguous()
    bits = x32.view(torch.int32)
    noise = torch.randint(0, 1 << 16, bits.shape, dtype=torch.int32, device=x.device, generator=generator)
    rounded = ((bits + noise) & ~0xFFFF).view(torch.float32)
    return torch.where(torch.isfinite(x32), rounded, x32).to(dtype)


def enable_stochastic_rounding(optimizer: torch.optim.Optimizer, seed: int = 0) -> torch.optim.Optimizer:
    """Make `optimizer.step` update its bfloat16 parameters with stochastic rounding; returns it.

    During a step the bfloat16 parameters hold float32 copies (the step closure still sees
    bfloat16 values and produces bfloat16 gradients, which are cast up), so the update is computed
    in float32 and its optimizer state is float32; afterwards each parameter is stochastically
    rounded back to bfloat16. The random stream is fixed by `seed`. Parameters of other dtypes
    are left alone. The optimizer object stays the same (its state_dict, param groups and hooks).
    """
    params = [p for g in optimizer.param_groups for p in g["params"] if p.dtype in SR_DTYPES]
    if not params:
        return optimizer
    inner_step = optimizer.step
    gen_device = params[0].device
    generator = torch.Generator(device=gen_device).manual_seed(int(seed) + 0x5EED)

    def step(self, closure=None):
        saved = [p.data for p in params]  # bfloat16
        wide = [d.to(torch.float32) for d in saved]

        def to_wide():
            for p, w in zip(params, wide):
                p.data = w
                if p.grad is not None:
                    p.grad = p.grad.to(torch.float32)

        def wrapped():
            # the model computes in bfloat16 at the current float32 values, rounded to nearest
            current = [p.data for p in params]
            for p, c in zip(params, current):
                p.data = c.to(p_dtype)
            try:
                with torch.enable_grad():
                    loss = closure()
            finally:
                for p, c in zip(params, current):
                    p.data = c
                    if p.grad is not None:
                        p.grad = p.grad.to(torch.float32)
            return loss

        p_dtype = saved[0].dtype
        to_wide()
        try:
            loss = inner_step(wrapped if closure is not None else None)
        finally:
            for p in params:
                p.data = stochastic_round(p.data, p_dtype, generator)
                if p.grad is not None:
                    p.grad = p.grad.to(p_dtype)
        return loss

    optimizer.step = types.MethodType(step, optimizer)
    optimizer.bench_stochastic_rounding = True
    return optimizer


# --------------------------------------------------------------------------- float64 comparison
def wasserstein(u, v) -> float:
    """Wasserstein-1 distance between the empirical distributions of two value sequences."""
    from scipy.stats import wasserstein_distance

    u = [float(x) for x in u if math.isfinite(float(x))]
    v = [float(x) for x in v if math.isfinite(float(x))]
    if not u or not v:
        return math.nan
    return float(wasserstein_distance(u, v))


def relative_difference(value: float, reference: float) -> float:
    """|value − reference| / |reference| (absolute difference when the reference is 0)."""
    if value is None or reference is None:
        return math.nan
    diff = abs(float(value) - float(reference))
    return diff / abs(float(reference)) if reference != 0 else diff


def _twin_key(row) -> tuple:
    params = json.loads(row["problem_params"]) if row["problem_params"] else {}
    for key in IGNORED_PARAMS:
        params.pop(key, None)
    return (row["problem"], json.dumps(params, sort_keys=True), row["optimizer"],
            json.dumps(json.loads(row["hparams"]) if row["hparams"] else {}, sort_keys=True),
            int(row["seed"]), row["device"])


def compare_to_float64(*dirs: str | Path, curve_metric: str = "loss"):
    """One row per non-float64 trial that has a float64 twin in the results directories.

    Columns: problem, optimizer, seed, dtype, stochastic_rounding, trial_id, reference_trial_id,
    status, reference_status, ``wasserstein_<curve_metric>`` (between the two trials' recorded
    curve values of `curve_metric`), and ``reldiff_<metric>`` for every final metric both trials
    report. Returns a pandas DataFrame (empty when no pair is found).
    """
    import pandas as pd

    from .store import read_curves, read_trials

    trials = read_trials(*dirs)
    columns = ["problem", "optimizer", "seed", "dtype", "stochastic_rounding", "trial_id",
               "reference_trial_id", "status", "reference_status", f"wasserstein_{curve_metric}"]
    if trials.empty:
        return pd.DataFrame(columns=columns)
    trials = trials[trials["kind"] == "training"] if "kind" in trials else trials
    refs = {}
    for _, row in trials[trials["dtype"] == "float64"].iterrows():
        refs.setdefault(_twin_key(row), row)
    others = trials[trials["dtype"] != "float64"]
    if not refs or others.empty:
        return pd.DataFrame(columns=columns)
    curves = read_curves(*dirs)
    curves = curves[curves["metric"] == curve_metric]
    by_trial = {tid: group.sort_values("step")["value"].tolist() for tid, group in curves.groupby("trial_id")}
    out = []
    for _, row in others.iterrows():
        ref = refs.get(_twin_key(row))
        if ref is None:
            continue
        params = json.loads(row["problem_params"]) if row["problem_params"] else {}
        rec = {"problem": row["problem"], "optimizer": row["optimizer"], "seed": int(row["seed"]),
               "dtype": row["dtype"], "stochastic_rounding": bool(params.get("stochastic_rounding", False)),
               "trial_id": row["trial_id"], "reference_trial_id": ref["trial_id"],
               "status": row["status"], "reference_status": ref["status"],
               f"wasserstein_{curve_metric}": wasserstein(by_trial.get(row["trial_id"], []),
                                                          by_trial.get(ref["trial_id"], []))}
        mine, theirs = row["metrics"] or {}, ref["metrics"] or {}
        for name in sorted(set(mine) & set(theirs)):
            rec[f"reldiff_{name}"] = relative_difference(mine[name], theirs[name])
        out.append(rec)
    return pd.DataFrame(out, columns=None) if out else pd.DataFrame(columns=columns)
