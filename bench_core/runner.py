"""One trial: run its loop, catch how it ends, and make its row.

The loops live in training_loop.py and linear_loop.py, their accounting in accounting.py.
"""
from __future__ import annotations

import traceback
from datetime import datetime, timezone

import torch

from . import provenance, threads
from .accounting import Clock, EvalSchedule, Recorder, Stop  # noqa: F401  (EvalSchedule, Clock: public)
from .context import TrialContext
from .linear_loop import run_linear
from .registry import Registry
from .suite import DTYPES, Trial
from .training_loop import run_training
from .trial import make_row


def run_trial(trial: Trial, registry: Registry, run_id: str = "") -> tuple[dict, list]:
    """Run one trial to completion with its thread policy and return (row, curve). Never raises
    for a failing trial: an exception becomes status "error", a blown-up loss "diverged". Plugin
    code that raises SystemExit (or another BaseException) fails only its trial, the same way;
    KeyboardInterrupt alone stops the run (the trial is then not recorded)."""
    started = datetime.now(timezone.utc)
    load = threads.load_average()
    with threads.trial_threads(trial.threads):
        row, curve = _run(trial, registry, run_id)
    row.update(started_at=started, load_avg=load, ended_at=datetime.now(timezone.utc))
    return row, curve


def _run(trial: Trial, registry: Registry, run_id: str) -> tuple[dict, list]:
    device = torch.device(trial.device)
    ctx = TrialContext(trial=trial, registry=registry, device=device, dtype=DTYPES[trial.dtype])
    rec = Recorder(ctx, Clock(device), count_all=trial.budget.time_to_target == "all")
    error = None
    try:
        spec = registry.problem(trial.problem)
        opt_spec = registry.optimizer(trial.optimizer)
        run = run_training if spec.kind == "training" else run_linear
        status = run(ctx, rec, spec, opt_spec)
    except Stop as stop:
        status, error = stop.status, stop.message
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from plugin code included: this trial's error
        status = "error"
        error = f"{type(exc).__name__}: {exc}".strip()
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            error += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    if rec.segment_start is not None:
        rec.pause()

    counters = dict(ctx.counters)
    extra = getattr(ctx.optimizer, "bench_counters", None)
    if isinstance(extra, dict):
        counters.update({k: int(v) for k, v in extra.items()})
    measured = {
        "steps": ctx.step, "train_time_s": rec.train_time, "setup_time_s": rec.setup_time,
        "warmup_steps": min(trial.budget.warmup_steps, ctx.step) if trial.kind == "training" else 0,
        "warmup_time_s": rec.warmup_time, "eval_time_s": rec.eval_time,
        "time_to_target_s": rec.time_to_target, "steps_to_target": rec.steps_to_target,
        "metrics": dict(rec.last_metrics), "counters": counters,
    }
    row = make_row(trial, run_id, status, error, measured, provenance.provenance(trial.device))
    _metric_plugins(ctx, row, rec)
    rec.warnings += registry.call_observers("bench_trial_end", trial=ctx, result=row)
    row["warnings"] = "\n".join(rec.warnings) or None
    return row, rec.curve


def _metric_plugins(ctx: TrialContext, row: dict, rec: Recorder) -> None:
    wanted = ctx.trial.metrics
    for name, spec in ctx.registry.metrics.items():
        if spec.fn is None or (wanted is not None and name not in wanted):
            continue
        try:
            value = spec.fn(ctx)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            rec.warnings.append(f"metric {name}: {type(exc).__name__}: {exc}")
            continue
        if value is not None:
            row["metrics"][name] = float(value)
