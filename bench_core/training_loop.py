"""The loop of a training trial: the step closure, warm-up, steps, evaluations, divergence."""
from __future__ import annotations

import math
import time

import torch

from .accounting import EvalSchedule, Recorder, Stop, targets_met
from .context import TrialContext, build_problem
from .problems import TrainingProblem



def closure_for(ctx: TrialContext, problem: TrainingProblem, optimizer, requires: frozenset):
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


def run_training(ctx: TrialContext, rec: Recorder, spec, opt_spec) -> str:
    """Drive a training problem: step, time, evaluate on schedule; return the status."""
    trial = ctx.trial
    problem = build_problem(ctx, spec, TrainingProblem)
    kwargs = dict(trial.hparams)
    params = problem.parameters()
    if getattr(problem, "parametrization", "sp") != "sp":  # μP / u-μP: per-role lr groups
        from .parametrization import param_groups
        try:
            params = param_groups(problem, opt_spec.scaling, kwargs, factory=opt_spec.factory)
        except ValueError as exc:
            raise Stop("error", f"{opt_spec.name} on {spec.name}: {exc}") from None
    if "model" in opt_spec.requires:
        kwargs["model"] = problem.model
    optimizer = opt_spec.factory(params, **kwargs)
    if getattr(problem, "stochastic_rounding", False):  # bfloat16 parameters, see precision.py
        from .precision import enable_stochastic_rounding
        enable_stochastic_rounding(optimizer, seed=trial.seed)
    ctx.optimizer = optimizer
    rec.warnings += ctx.registry.call_observers("bench_trial_start", trial=ctx)

    closure, batch_box, last_loss = closure_for(ctx, problem, optimizer, opt_spec.requires)
    budget = trial.budget
    max_steps, max_seconds = budget.max_steps, budget.max_seconds
    warmup = min(budget.warmup_steps, max_steps)
    schedule = EvalSchedule(trial.eval, max_steps)
    check_each_step = ctx.device.type != "cuda"
    divergence = _DivergenceRule(budget.divergence_factor)

    def evaluate(step: int) -> str | None:
        t0 = time.perf_counter()
        metrics = _evaluate_training(problem, optimizer)
        rec.eval_time += time.perf_counter() - t0
        ctx.count("evaluations")
        rec.record(step, metrics)
        if any(not math.isfinite(v) for k, v in metrics.items() if "loss" in k):
            return "diverged"
        if targets_met(trial.targets, metrics):
            rec.mark_target(step)
            return "target_reached"
        return None

    status = evaluate(0)
    if status:
        return status
    step = 0
    rec.in_warmup = warmup > 0
    rec.start()
    for step in range(1, max_steps + 1):
        ctx.step = step
        batch_box[0] = problem.batch(step)
        loss = optimizer.step(closure)
        if loss is None:
            loss = last_loss[0]
        if step == warmup:  # the warm-up steps are timed apart (a phase of their own)
            rec.pause()
            rec.in_warmup = False
            rec.start()
        if check_each_step and loss is not None:
            divergence.check(_loss_value(loss), step)
        over_time = max_seconds is not None and rec.elapsed() > max_seconds
        if step in schedule or over_time:
            rec.pause()
            if loss is not None:
                divergence.check(_loss_value(loss), step)
            status = evaluate(step)
            if status:
                return status
            if over_time:
                return "timeout"
            rec.start()
    if rec.segment_start is not None:
        rec.pause()
    return "ok"


class _DivergenceRule:
    """A training loss that is not finite, or above `factor` times the first step's loss (when
    that was positive: benchopt's rule), has diverged."""

    def __init__(self, factor: float):
        self.factor = factor
        self.initial: float | None = None

    def check(self, value: float, step: int) -> None:
        """Raise Stop("diverged") when `value` at `step` breaks the rule."""
        if not math.isfinite(value):
            raise Stop("diverged", f"loss became {value} at step {step}")
        if self.initial is None:
            self.initial = value
        elif self.initial > 0 and value > self.factor * self.initial:
            raise Stop("diverged", f"loss {value:.4g} at step {step} exceeds {self.factor:g} times "
                                   f"its initial value {self.initial:.4g}")


