"""The loop of a linear-system trial: setup, solver iterations through its callback, targets."""
from __future__ import annotations

import math
import time

import torch

from .accounting import EvalSchedule, Recorder, Stop, targets_met
from .context import TrialContext, build_problem
from .problems import LinearSystemProblem, StopSolve

DIVERGED_RESIDUAL = 1e12


def run_linear(ctx: TrialContext, rec: Recorder, spec, opt_spec) -> str:
    """Drive a linear-system problem: setup, solve each system, check targets; return the status."""
    trial = ctx.trial
    problem = build_problem(ctx, spec, LinearSystemProblem)
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
                stop = Stop("diverged", f"relative residual became {res:.3g} at iteration {total}")
            elif targets_met(trial.targets, metrics, ctx.registry):
                state["reached"] = True
                stop = StopSolve()
            elif max_seconds is not None and rec.elapsed() > max_seconds:
                stop = Stop("timeout")
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


