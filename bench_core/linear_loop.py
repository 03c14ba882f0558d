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

Timing (the budget's ``solve_timing``). Measuring every iterate (a sparse product and norms,
about an iteration's work) is excluded from the clock, yet it evicts the solver's data from the
caches, and the timed iteration after it ran 1.1-1.9x slower than in a bare loop
(benchmarks/thread_policy.py --eval-loop). So by default ("replay", benchopt's approach) the
evaluated solve decides what happened (iterations, metrics, status), and a fresh solver, seeded
alike, then solves the same systems again with a callback that only reads the clock and stops at
each system's observed iteration count; those times become train_time_s, the curve's time_s and
time_to_target_s (setup stays the evaluated run's). If the replay does not repeat the observed
run (another iteration count, an error: a non-deterministic solver) the evaluated run's times are
kept and a warning says so. ``solve_timing = "observed"`` skips the replay (half the wall time).
The evaluated run's solve time is kept in the counter ``observed_solve_us``.
"""
from __future__ import annotations

import math
import time
from collections import deque

import torch

from .accounting import EvalSchedule, Recorder, Stop, targets_met
from .context import TrialContext, build_problem, seed_everything
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


class SystemRun:
    """What the evaluated solve of one system did, for the replay: the counted setup time after
    this system's setup, the trial's iteration count before it, the curve's length before it, its
    iterations, whether the solver was called and whether it returned on its own."""

    def __init__(self, setup_time: float, first: int, curve_start: int):
        self.setup_time, self.first, self.curve_start = setup_time, first, curve_start
        self.iters, self.solved, self.returned = 0, False, False


def replay_solve_times(problem, make_solver, seed: int, runs: list, maxiter: int,
                       clock) -> list[list[float]] | str:
    """Solve the systems of `runs` again from x0 = 0 with a fresh solver and no evaluation, each
    up to its observed iteration count; per system, the solve time after each iteration (and,
    last, at the end of the solve). A string says why the replay differs from the evaluated run."""
    seed_everything(seed)
    solver = make_solver()
    times = []
    for system, run in zip(problem.systems(), runs):
        if callable(getattr(solver, "setup", None)):
            solver.setup(system)
        if not run.solved:
            times.append([0.0])
            continue
        stamps: list[float] = []

        def callback(xk, stamps=stamps, limit=run.iters):
            stamps.append(clock.now())
            if len(stamps) >= limit:
                raise StopSolve()

        returned = False
        t0 = clock.now()
        try:
            solver.solve(system.b, torch.zeros_like(system.b), maxiter, callback)
            returned = True
        except StopSolve:
            pass
        end = clock.now()
        if len(stamps) != run.iters or returned != run.returned:
            return (f"system {len(times)}: {len(stamps)} iterations"
                    f"{', returned' if returned else ''} against {run.iters} observed")
        times.append([t - t0 for t in stamps] + [(end if returned else stamps[-1]) - t0])
    if len(times) != len(runs):
        return f"{len(times)} systems against {len(runs)} observed"
    return times


def _retime(ctx: TrialContext, rec: Recorder, problem, opt_spec, runs: list, maxiter: int) -> None:
    """Replace the evaluated solve's times by a replay's (see the module docstring)."""
    observed = rec.train_time
    ctx.count("observed_solve_us", round(observed * 1e6))
    if not runs or (ctx.trial.budget.solve_timing or "replay") != "replay":
        return
    try:
        times = replay_solve_times(problem, lambda: opt_spec.factory(**ctx.trial.hparams), ctx.trial.seed,
                                   runs, maxiter, rec.clock)
    except Exception as exc:  # noqa: BLE001 - the evaluated run stands; say why
        times = f"{type(exc).__name__}: {exc}"
    if isinstance(times, str):
        rec.warnings.append(f"solve timing: the replay did not repeat the evaluated solve ({times});"
                            " times are the evaluated solve's")
        return
    before = 0.0  # replayed solve time of the systems before this one
    curve = rec.curve
    for index, (run, stamps) in enumerate(zip(runs, times)):
        end = runs[index + 1].curve_start if index + 1 < len(runs) else len(curve)
        base = run.setup_time + before
        for k in range(run.curve_start, end):
            step, _, name, value = curve[k]
            local = step - run.first
            t = stamps[-1] if local >= run.iters else (stamps[local - 1] if local > 0 else 0.0)
            curve[k] = (step, base + t, name, value)
        before += stamps[-1]
    rec.train_time = before


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
    runs: list[SystemRun] = []
    try:
        for index, system in enumerate(problem.systems()):
            ctx.count("systems")
            t0 = rec.clock.now()
            if callable(getattr(solver, "setup", None)):
                solver.setup(system)
            rec.setup_time += rec.clock.now() - t0
            run = SystemRun(rec.setup_time, total, len(rec.curve))
            runs.append(run)
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
                    run.solved = True
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
                run.iters, run.returned = state["iters"], returned
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
    except Stop:
        _retime(ctx, rec, problem, opt_spec, runs, maxiter)
        raise
    else:
        _retime(ctx, rec, problem, opt_spec, runs, maxiter)
    finally:
        ctx.step = total
        ctx.count("iterations", total)
    if all_reached:
        rec.mark_target(total)
        return "target_reached"
    return "ok"
