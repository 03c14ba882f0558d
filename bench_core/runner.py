"""One trial: build the problem and the optimizer, loop, time, evaluate, stop, and make its row.

Timing counts what a user pays for: optimizer steps with their forward and backward passes (or
solver iterations, plus setup for linear systems). Evaluation is excluded. On CUDA the clock
synchronizes the device before it is read, at the boundaries of timed segments only, so steps
stay asynchronous between evaluations. The first ``warmup_steps`` steps (default 1) are timed
apart and recorded, not counted in ``train_time_s``.
"""
from __future__ import annotations

import math
import random
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from . import provenance, store
from .problems import LinearSystemProblem, StopSolve, TrainingProblem
from .registry import Registry
from .suite import DTYPES, Trial

DEFAULT_EVAL_POINTS = 50
DEFAULT_WARMUP_STEPS = 1
DIVERGED_RESIDUAL = 1e12


@dataclass
class TrialContext:
    """What observers and metric functions see of a running trial."""

    trial: Trial
    registry: Registry
    device: torch.device
    dtype: torch.dtype
    problem: Any = None
    optimizer: Any = None  # a torch.optim.Optimizer, or a linear solver
    step: int = 0
    counters: dict = field(default_factory=dict)
    scratch: dict = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        """Add n to a counter of this trial."""
        self.counters[name] = self.counters.get(name, 0) + n


class Clock:
    """Wall clock that synchronizes the CUDA device before every reading."""

    def __init__(self, device: torch.device):
        self.sync = device.type == "cuda"
        self.device = device

    def now(self) -> float:
        """Seconds, after all queued device work has finished."""
        if self.sync:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


class _Stop(Exception):
    def __init__(self, status: str, message: str | None = None):
        super().__init__(message or status)
        self.status, self.message = status, message


class EvalSchedule:
    """The steps after which to evaluate: every k steps, or n points spaced geometrically
    between 1 and max_steps; step 0 and max_steps always."""

    def __init__(self, schedule: dict, max_steps: int):
        self.every = schedule.get("every")
        self.max_steps = max_steps
        self.points: set[int] = set()
        if self.every is None:
            n = schedule.get("points", DEFAULT_EVAL_POINTS)
            self.points = {int(round(s)) for s in np.geomspace(1, max(max_steps, 1), num=max(n, 2))}

    def __contains__(self, step: int) -> bool:
        if step == 0 or step == self.max_steps:
            return True
        return step % self.every == 0 if self.every else step in self.points


def targets_met(targets: dict, metrics: dict, registry: Registry) -> bool:
    """True when every target threshold is reached (direction from the metric's spec)."""
    if not targets:
        return False
    for name, threshold in targets.items():
        value = metrics.get(name)
        if value is None or not math.isfinite(value):
            return False
        if registry.higher_is_better(name):
            if value < threshold:
                return False
        elif value > threshold:
            return False
    return True


class _Recorder:
    """Timed segments, evaluations, curve points and target detection for one trial."""

    def __init__(self, ctx: TrialContext, clock: Clock):
        self.ctx, self.clock = ctx, clock
        self.train_time = 0.0
        self.eval_time = 0.0
        self.setup_time = 0.0
        self.warmup_time = 0.0
        self.segment_start: float | None = None
        self.curve: list[tuple] = []
        self.last_metrics: dict = {}
        self.time_to_target = None
        self.steps_to_target = None
        self.warnings: list[str] = []

    def start(self):
        self.segment_start = self.clock.now()

    def pause(self) -> None:
        now = self.clock.now()
        self.train_time += now - self.segment_start
        self.segment_start = None

    def elapsed(self) -> float:
        """Training time so far, without synchronizing (for budget checks)."""
        running = time.perf_counter() - self.segment_start if self.segment_start is not None else 0.0
        return self.setup_time + self.train_time + running

    def record(self, step: int, metrics: dict) -> None:
        t0 = time.perf_counter()
        t = self.setup_time + self.train_time
        for name, value in metrics.items():
            self.curve.append((step, t, name, float(value)))
        self.last_metrics = dict(metrics)
        self.ctx.step = step
        self.warnings += self.ctx.registry.call_observers(
            "bench_after_evaluation", trial=self.ctx, step=step, metrics=dict(metrics))
        self.eval_time += time.perf_counter() - t0

    def mark_target(self, step: int) -> None:
        if self.time_to_target is None:
            self.time_to_target = self.setup_time + self.train_time
            self.steps_to_target = step


# --------------------------------------------------------------------------- training
def _closure_for(ctx: TrialContext, problem: TrainingProblem, optimizer, requires: frozenset):
    """The step closure the optimizer's requirements ask for; counts its evaluations."""
    batch_box = [None]
    last_loss = [None]
    create_graph = "create_graph" in requires

    if "loss_only" in requires:
        def closure():
            with torch.no_grad():
                loss = problem.loss(batch_box[0])
            ctx.count("function_evals")
            last_loss[0] = loss
            return loss
    else:
        def closure():
            optimizer.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss = problem.loss(batch_box[0])
                loss.backward(create_graph=create_graph)
            ctx.count("forward")
            ctx.count("backward")
            last_loss[0] = loss
            return loss
    return closure, batch_box, last_loss


def _loss_value(loss) -> float:
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def _evaluate_training(problem: TrainingProblem, optimizer) -> dict:
    switch = callable(getattr(optimizer, "eval", None)) and callable(getattr(optimizer, "train", None))
    if switch:  # schedule-free and similar optimizers evaluate at a different point
        optimizer.eval()
    try:
        with torch.no_grad():
            return {k: float(v) for k, v in problem.evaluate().items()}
    finally:
        if switch:
            optimizer.train()


def _run_training(ctx: TrialContext, rec: _Recorder, spec, opt_spec) -> str:
    trial = ctx.trial
    problem = _build_problem(ctx, spec, TrainingProblem)
    params = problem.parameters()
    kwargs = dict(trial.hparams)
    if "model" in opt_spec.requires:
        kwargs["model"] = problem.model
    optimizer = opt_spec.factory(params, **kwargs)
    if getattr(problem, "stochastic_rounding", False):  # bfloat16 parameters, see precision.py
        from .precision import enable_stochastic_rounding
        enable_stochastic_rounding(optimizer, seed=trial.seed)
    ctx.optimizer = optimizer
    rec.warnings += ctx.registry.call_observers("bench_trial_start", trial=ctx)

    closure, batch_box, last_loss = _closure_for(ctx, problem, optimizer, opt_spec.requires)
    max_steps = trial.budget["max_steps"]
    max_seconds = trial.budget.get("max_seconds")
    warmup = min(trial.budget.get("warmup_steps", DEFAULT_WARMUP_STEPS), max_steps)
    schedule = EvalSchedule(trial.eval, max_steps)
    check_each_step = ctx.device.type != "cuda"

    def evaluate(step: int) -> str | None:
        t0 = time.perf_counter()
        metrics = _evaluate_training(problem, optimizer)
        rec.eval_time += time.perf_counter() - t0
        ctx.count("evaluations")
        rec.record(step, metrics)
        if any(not math.isfinite(v) for k, v in metrics.items() if "loss" in k):
            return "diverged"
        if targets_met(trial.targets, metrics, ctx.registry):
            rec.mark_target(step)
            return "target_reached"
        return None

    status = evaluate(0)
    if status:
        return status
    step = 0
    rec.start()
    for step in range(1, max_steps + 1):
        batch_box[0] = problem.batch(step)
        loss = optimizer.step(closure)
        if loss is None:
            loss = last_loss[0]
        if step == warmup:  # the warm-up steps are timed apart, not counted as training time
            rec.pause()
            rec.warmup_time, rec.train_time = rec.train_time, 0.0
            rec.start()
        if check_each_step and loss is not None and not math.isfinite(_loss_value(loss)):
            ctx.step = step
            raise _Stop("diverged", f"loss became {_loss_value(loss)} at step {step}")
        over_time = max_seconds is not None and rec.elapsed() > max_seconds
        if step in schedule or over_time:
            rec.pause()
            if loss is not None and not math.isfinite(_loss_value(loss)):
                ctx.step = step
                raise _Stop("diverged", f"loss became {_loss_value(loss)} at step {step}")
            status = evaluate(step)
            if status:
                return status
            if over_time:
                return "timeout"
            rec.start()
    if rec.segment_start is not None:
        rec.pause()
    ctx.step = step
    return "ok"


def _build_problem(ctx: TrialContext, spec, expected: type):
    """Call the problem's factory, check what it returned, and seed every generator."""
    trial = ctx.trial
    problem = spec.factory(seed=trial.seed, device=ctx.device, dtype=ctx.dtype, **trial.params)
    if not isinstance(problem, expected):
        raise TypeError(f"problem {trial.problem!r} factory returned {type(problem).__name__},"
                        f" not a bench_core.{expected.__name__}")
    ctx.problem = problem
    _seed_everything(trial.seed)
    return problem


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# --------------------------------------------------------------------------- linear systems
def _run_linear(ctx: TrialContext, rec: _Recorder, spec, opt_spec) -> str:
    trial = ctx.trial
    problem = _build_problem(ctx, spec, LinearSystemProblem)
    solver = opt_spec.factory(**trial.hparams)
    ctx.optimizer = solver
    rec.warnings += ctx.registry.call_observers("bench_trial_start", trial=ctx)

    maxiter = trial.budget["max_steps"]
    max_seconds = trial.budget.get("max_seconds")
    schedule = EvalSchedule(trial.eval or {"every": 1}, maxiter)
    total = 0
    all_reached = bool(trial.targets)
    for index, system in enumerate(problem.systems()):
        ctx.count("systems")
        t0 = rec.clock.now()
        if callable(getattr(solver, "setup", None)):
            solver.setup(system)
        rec.setup_time += rec.clock.now() - t0
        x0 = torch.zeros_like(system.b)
        first = system.metrics(x0)
        if index == 0:
            rec.record(0, first)
        state = {"iters": 0, "reached": targets_met(trial.targets, first, ctx.registry), "x": x0}

        def callback(xk, system=system, state=state):
            nonlocal total
            rec.pause()
            total += 1
            state["iters"] += 1
            state["x"] = xk
            t_eval = time.perf_counter()
            metrics = system.metrics(xk)
            rec.eval_time += time.perf_counter() - t_eval
            res = metrics["rel_residual"]
            stop = None
            if not math.isfinite(res) or res > DIVERGED_RESIDUAL:
                stop = _Stop("diverged", f"relative residual became {res:.3g} at iteration {total}")
            elif targets_met(trial.targets, metrics, ctx.registry):
                state["reached"] = True
                stop = StopSolve()
            elif max_seconds is not None and rec.elapsed() > max_seconds:
                stop = _Stop("timeout")
            elif state["iters"] >= maxiter:
                stop = StopSolve()
            if stop is not None or total in schedule:
                rec.record(total, metrics)
                state["recorded"] = total
            if stop is not None:
                raise stop
            rec.start()

        if not state["reached"]:
            rec.start()
            try:
                x = solver.solve(system.b, x0, maxiter, callback)
                if x is not None:
                    state["x"] = x
            except StopSolve:
                pass
            if rec.segment_start is not None:
                rec.pause()
        ctx.step = total
        if state.get("recorded") != total:  # the solver stopped on its own
            rec.record(total, system.metrics(state["x"]))
        rec.curve.append((total, rec.setup_time + rec.train_time, "system_iterations", float(state["iters"])))
        all_reached = all_reached and state["reached"]
    ctx.count("iterations", total)
    if all_reached:
        rec.mark_target(total)
        return "target_reached"
    return "ok"


# --------------------------------------------------------------------------- one trial
def run_trial(trial: Trial, registry: Registry, run_id: str = "") -> tuple[dict, list]:
    """Run one trial to completion and return (row, curve). Never raises for a failing trial:
    an exception becomes status "error", a non-finite loss status "diverged"."""
    started = datetime.now(timezone.utc)
    device = torch.device(trial.device)
    ctx = TrialContext(trial=trial, registry=registry, device=device, dtype=DTYPES[trial.dtype])
    rec = _Recorder(ctx, Clock(device))
    error = None
    try:
        spec = registry.problem(trial.problem)
        opt_spec = registry.optimizer(trial.optimizer)
        run = _run_training if spec.kind == "training" else _run_linear
        status = run(ctx, rec, spec, opt_spec)
    except _Stop as stop:
        status, error = stop.status, stop.message
    except (Exception, StopSolve) as exc:
        status = "error"
        error = f"{type(exc).__name__}: {exc}".strip()
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            error += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    if rec.segment_start is not None:
        rec.pause()

    metrics = dict(rec.last_metrics)
    counters = dict(ctx.counters)
    extra = getattr(ctx.optimizer, "bench_counters", None)
    if isinstance(extra, dict):
        counters.update({k: int(v) for k, v in extra.items()})
    row = {
        "run_id": run_id, "trial_id": trial.trial_id, "suite": trial.suite,
        "problem": trial.problem, "problem_params": store.to_json(trial.params), "kind": trial.kind,
        "optimizer": trial.optimizer, "hparams": store.to_json(trial.hparams), "label": trial.label,
        "seed": trial.seed, "device": trial.device, "dtype": trial.dtype,
        "budget": store.to_json(trial.budget), "targets": store.to_json(trial.targets),
        "status": status, "error": error, "steps": ctx.step,
        "train_time_s": rec.train_time, "setup_time_s": rec.setup_time,
        "warmup_steps": min(trial.budget.get("warmup_steps", DEFAULT_WARMUP_STEPS), ctx.step)
        if trial.kind == "training" else 0,
        "warmup_time_s": rec.warmup_time, "eval_time_s": rec.eval_time,
        "time_to_target_s": rec.time_to_target, "steps_to_target": rec.steps_to_target,
        "metrics": metrics, "counters": counters, **provenance.provenance(trial.device),
        "started_at": started,
    }
    _metric_plugins(ctx, row, rec)
    rec.warnings += registry.call_observers("bench_trial_end", trial=ctx, result=row)
    row["warnings"] = "\n".join(rec.warnings) or None
    row["ended_at"] = datetime.now(timezone.utc)
    return row, rec.curve


def _metric_plugins(ctx: TrialContext, row: dict, rec: _Recorder) -> None:
    wanted = ctx.trial.metrics
    for name, spec in ctx.registry.metrics.items():
        if spec.fn is None or (wanted is not None and name not in wanted):
            continue
        try:
            value = spec.fn(ctx)
        except Exception as exc:
            rec.warnings.append(f"metric {name}: {type(exc).__name__}: {exc}")
            continue
        if value is not None:
            row["metrics"][name] = float(value)
