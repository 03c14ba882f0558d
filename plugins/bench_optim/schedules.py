"""Learning-rate schedules for any optimizer, chosen through hyperparameters.

``with_schedule(spec)`` returns the spec with a factory that takes, besides the optimizer's own
hyperparameters, these keyword arguments (all prefixed ``schedule`` so that they clash with no
optimizer's own):

- ``schedule``: ``"none"`` (default: the optimizer is returned untouched), ``"cosine"`` or
  ``"sgdr"``.
- ``schedule_warmup`` (steps of linear warm-up from lr/warmup to lr, default 0),
  ``schedule_min_lr`` (floor as a fraction of lr, default 0).
- ``"cosine"``: ``schedule_steps`` (length of the cosine decay after warm-up, default 1000;
  set it to the budget's max_steps).
- ``"sgdr"``: ``schedule_period`` (steps of the first cycle, default 100) and ``schedule_mult``
  (each cycle this many times longer than the last, default 1) — "SGDR: Stochastic Gradient
  Descent with Warm Restarts" (Loshchilov & Hutter, 2017):
  η_t = η_min + ½ (η_max − η_min)(1 + cos(π T_cur / T_i)), restarting at T_cur = T_i.

The factor multiplies each group's initial lr before every step; the step count and the initial
lr live in the param groups (``schedule_step``, ``initial_lr``), so ``state_dict`` carries them.
Per-group learning rates (μP's per-role multipliers, ``bench_core.parametrization``) are
therefore kept: each group follows the schedule from its own initial lr.
"""
from __future__ import annotations

import dataclasses
import inspect
import math

SCHEDULES = ("none", "cosine", "sgdr")
KEYS = {"schedule": "none", "schedule_warmup": 0, "schedule_steps": 1000, "schedule_min_lr": 0.0,
        "schedule_period": 100, "schedule_mult": 1}


def lr_factor(step: int, schedule: str, schedule_warmup: int = 0, schedule_steps: int = 1000,
              schedule_min_lr: float = 0.0, schedule_period: int = 100, schedule_mult: int = 1) -> float:
    """The multiplier of the initial lr at `step` (0-based count of steps already taken)."""
    if schedule == "none":
        return 1.0
    if step < schedule_warmup:
        return (step + 1) / schedule_warmup
    t = step - schedule_warmup
    if schedule == "cosine":
        progress = min(t / max(schedule_steps, 1), 1.0)
    else:  # sgdr: find the position inside the current cycle
        period = schedule_period
        while t >= period:
            t -= period
            period *= schedule_mult
        progress = t / period
    return schedule_min_lr + (1 - schedule_min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def install_schedule(optimizer, **schedule_kwargs):
    """Make `optimizer.step` set each group's lr from its initial lr and the schedule first."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group.setdefault("schedule_step", 0)
    inner = optimizer.step

    def step(closure=None):
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * lr_factor(group["schedule_step"], **schedule_kwargs)
        loss = inner(closure)
        for group in optimizer.param_groups:
            group["schedule_step"] += 1
        return loss

    optimizer.step = step
    return optimizer


def with_schedule(spec):
    """`spec` with a factory that also takes the schedule hyperparameters (a new spec; the
    original is unchanged). ``inspect.unwrap(new.factory)`` is the original factory. Specs whose
    factory already takes one of those names, or that are not training optimizers, come back as
    they are."""
    if "training" not in spec.kinds:
        return spec
    try:
        sig = inspect.signature(spec.factory)
    except (TypeError, ValueError):
        return spec
    if any(k in sig.parameters for k in KEYS):
        return spec
    factory = spec.factory

    def scheduled(params, *args, schedule: str = "none", schedule_warmup: int = 0, schedule_steps: int = 1000,
                  schedule_min_lr: float = 0.0, schedule_period: int = 100, schedule_mult: int = 1, **kwargs):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        if min(schedule_warmup, schedule_mult - 1) < 0 or min(schedule_steps, schedule_period) < 1:
            raise ValueError("schedule_warmup >= 0, schedule_steps >= 1, schedule_period >= 1 and "
                             "schedule_mult >= 1 are required")
        optimizer = factory(params, *args, **kwargs)
        if schedule == "none":
            return optimizer
        return install_schedule(optimizer, schedule=schedule, schedule_warmup=schedule_warmup,
                                schedule_steps=schedule_steps, schedule_min_lr=schedule_min_lr,
                                schedule_period=schedule_period, schedule_mult=schedule_mult)

    params = [p for p in sig.parameters.values() if p.kind != p.VAR_KEYWORD]
    extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in KEYS.items()]
    var_kw = [p for p in sig.parameters.values() if p.kind == p.VAR_KEYWORD]
    positional = [p for p in params if p.kind != p.KEYWORD_ONLY]
    keyword_only = [p for p in params if p.kind == p.KEYWORD_ONLY]
    scheduled.__signature__ = sig.replace(parameters=positional + keyword_only + extra + var_kw)
    scheduled.__doc__ = factory.__doc__
    scheduled.__name__ = getattr(factory, "__name__", "scheduled")
    scheduled.__wrapped__ = factory  # inspect.unwrap(spec.factory) gives the optimizer's own factory
    return dataclasses.replace(spec, factory=scheduled)
