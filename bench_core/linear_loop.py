"""The loop of a linear-system trial: setup, solver iterations through its callback, targets.

Each system of the problem is solved from x0 = 0; the runner's callback measures the relative
residual of every iterate and ends the solve (StopSolve) when the targets are met or the
system's iteration budget is spent, or ends the trial (Stop) with a status:

- ``diverged``: the relative residual is not finite or exceeds DIVERGED_RESIDUAL;
- ``timeout``: the trial's timed work (setup and iterations) passed ``max_seconds``;
- ``stalled``: the best relative residual seen in the current system has not decreased by a
  relative factor DEFAULT_STALL_FACTOR (1e-3) over the last ``stall_window`` iterations
  (the budget's; by default max(100, sqrt(N) / 4) for N unknowns), i.e.
  ``best_now > best_W_ago * (1 - 1e-3)``.
  Comparing best-so-far values lets a non-monotone residual (CG's oscillates, GMRES restarts)
  spike without counting as stagnation; what the rule stops is a long plateau, such as float32
  CG stuck at its rounding floor. The window counts solver callbacks, which are cycles for
  scipy.gmres. Measured plateaus of the best residual in converging float64 CG on pde.poisson2d
  grow with n (about 8, 23, 54, 138 iterations at n = 64, 256, 512, 1024, i.e. N = n² unknowns),
  like CG's iteration count, which grows as sqrt(N) on such problems: hence the default window
  grows as sqrt(N) / 4 (256 at n = 1024), and 100 below N = 160,000.

A solver that returns on its own (a direct solve without any callback, or its own tolerance
before the runner's) has its returned x measured: when that meets the targets the system counts
as reached. The iteration counter and the step count are recorded however the trial ends.
"""
from __future__ import annotations

import math
import time
from collections import deque

import torch

from .accounting import EvalSchedule, Recorder, Stop, targets_met
from .context import TrialContext, build_problem
from .problems import LinearSystemProblem, StopSolve

DIVERGED_RESIDUAL = 1e12
DEFAULT_STALL_WINDOW = 100
DEFAULT_STALL_FACTOR = 1e-3


def default_stall_window(unknowns: int) -> int:
    """The stall window for a system of `unknowns` unknowns when the budget sets none."""
    return max(DEFAULT_STALL_WINDOW, math.ceil(math.sqrt(max(unknowns, 0)) / 4))


def _limits(trial) -> tuple[int, float | None, int | None]:
    """(max_steps, max_seconds, stall_window or None for the default) of a trial: the one place
    this loop reads its budget."""
    budget = trial.budget
    window = budget.stall_window
    if window is None:
        return budget.max_steps, budget.max_seconds, None
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"budget stall_window must be a positive integer, not {window!r}")
    return budget.max_steps, budget.max_seconds, window


def _targets(trial) -> tuple:
    """The trial's targets (bench_core.trial.Target, each with its direction): the one place
    this loop reads them."""
    return tuple(trial.targets)


class StallWatch:
    """The stagnation rule for one system: the best relative residual so far must decrease by a
    relative `factor` within every `window` iterations."""

    def __init__(self, initial: float, window: int, factor: float = DEFAULT_STALL_FACTOR):
        self.window, self.factor = window, factor
        self.best = initial if math.isfinite(initial) else math.inf
        self.best_at = 0
        self.history = deque([self.best], maxlen=window + 1)  # best after each of the last W+1 iterations

    def update(self, residual: float, iteration: int) -> str | None:
        """Take the residual of the next iterate (`iteration` is the trial's count, for the
        message); return the reason when the solve has stalled, else None."""
        if residual < self.best:
            self.best, self.best_at = residual, iteration
        self.history.append(self.best)
        if len(self.history) > self.window and self.best > self.history[0] * (1 - self.factor):
            return (f"best relative residual {self.best:.3g} at iteration {self.best_at}, no improvement"
                    f" by factor {self.factor:g} over the last {self.window} iterations")
        return None


def run_linear(ctx: TrialContext, rec: Recorder, spec, opt_spec) -> str:
    """Drive a linear-system problem: setup, solve each system, check targets; return the status.

    Raises Stop (diverged, timeout, stalled) to end the trial early; the iteration counter and
    ``ctx.step`` are recorded in every case."""
    trial = ctx.trial
    problem = build_problem(ctx, spec, LinearSystemProblem)
    solver = opt_spec.factory(**trial.hparams)
    ctx.optimizer = solver
    rec.warnings += ctx.registry.call_observers("bench_trial_start", trial=ctx)

    maxiter, max_seconds, stall_window = _limits(trial)
    targets = _targets(trial)
    schedule = EvalSchedule(trial.eval or {"every": 1}, maxiter)
    total = 0
    all_reached = bool(targets)
    try:
        for index, system in enumerate(problem.systems()):
            ctx.count("systems")
            t0 = rec.clock.now()
            if callable(getattr(solver, "setup", None)):
                solver.setup(system)
            rec.setup_time += rec.clock.now() - t0
            x0 = torch.zeros_like(system.b)
            first = system.metrics(x0)
            state = {"iters": 0, "reached": targets_met(targets, first), "x": x0}
            if index == 0:
                rec.record(0, first)
                state["recorded"] = (0, first)
            watch = StallWatch(first["rel_residual"], stall_window or default_stall_window(system.b.numel()))

            def callback(xk, system=system, state=state, watch=watch):
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
                stalled = watch.update(res, total)
                if not math.isfinite(res) or res > DIVERGED_RESIDUAL:
                    stop = Stop("diverged", f"relative residual became {res:.3g} at iteration {total}")
                elif targets_met(targets, metrics):
                    state["reached"] = True
                    stop = StopSolve()
                elif max_seconds is not None and rec.elapsed() > max_seconds:
                    stop = Stop("timeout")
                elif stalled:
                    stop = Stop("stalled", stalled)
                elif state["iters"] >= maxiter:
                    stop = StopSolve()
                if stop is not None or total in schedule:
                    rec.record(total, metrics)
                    state["recorded"] = (total, metrics)
                if stop is not None:
                    raise stop
                rec.start()

            returned = False
            try:
                if not state["reached"]:
                    rec.start()
                    try:
                        x = solver.solve(system.b, x0, maxiter, callback)
                        returned = True
                        if x is not None:
                            state["x"] = x
                    except StopSolve:
                        pass
            finally:
                if rec.segment_start is not None:
                    rec.pause()
                ctx.step = total
                rec.curve.append((total, rec.counted_time(), "system_iterations",
                                  float(state["iters"])))
            recorded = state.get("recorded")
            if returned or recorded is None or recorded[0] != total:
                # The solver stopped on its own: measure what it returned, and judge it by the targets.
                t_eval = time.perf_counter()
                metrics = system.metrics(state["x"])
                rec.eval_time += time.perf_counter() - t_eval
                if returned and targets_met(targets, metrics):
                    state["reached"] = True
                if recorded is None or recorded[0] != total or recorded[1] != metrics:
                    rec.record(total, metrics)
            all_reached = all_reached and state["reached"]
    finally:
        ctx.step = total
        ctx.count("iterations", total)
    if all_reached:
        rec.mark_target(total)
        return "target_reached"
    return "ok"
