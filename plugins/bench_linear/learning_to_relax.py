"""linear.sor_bandit and linear.sor_contextual: SOR whose ω is chosen per instance of a sequence
by an online bandit, after Khodak, Chow, Balcan & Talwalkar, "Learning to Relax: Setting Solver
Parameters Across a Sequence of Linear System Instances" (ICLR 2024).

For each system of the sequence the policy picks ω from a grid of K values, SOR runs with it, and
the number of iterations it took (the only feedback; no extra matrix computations) updates the
policy. ``linear.sor_bandit`` uses Tsallis-INF, the bandit of the paper's experiments (``policy =
"exp3"``: Exp3), whose regret against the best fixed ω grows as √T; ``linear.sor_contextual`` uses
the paper's contextual bandit ChebCB (``bandits.ChebCB``: Chebyshev regression of the cost on the
system's scalar ``info["context"]``, degree 5, inverse gap weighting) on that context mapped from
``context_range`` onto [−1, 1], by default log-linearly from (1e-3, 1e3) (heat sequence: dt κ / h²;
1 when a system has none; the paper's diagonal offsets c: ``context_range = [-0.15, 0.65]``,
``log_context = false``), whose target is the instance-optimal ω.

After a trial, ``relax_report`` measures (outside the timed solve) every grid ω on every instance
to the trial's residual target and returns the totals: the bandit's iterations, the best fixed ω's,
the instance-optimal policy's, and the two regrets. bench_linear's metrics ``relax_*`` put them in
the trial row.
"""
from __future__ import annotations

import numpy as np
import torch

import bench_core

from .bandits import ChebCB, Exp3, TsallisINF
from .base import Solver, SolverError
from .operators import SORSweep

#: The paper's grid (its code's learning.m): 20 values from 1 to 1.95 in steps of 0.05.
DEFAULT_OMEGAS = tuple(float(w) for w in np.round(np.linspace(1.0, 1.95, 20), 3))
POLICIES = ("tsallis_inf", "exp3")


class BanditSOR(Solver):
    """SOR with ω picked per system by Tsallis-INF or Exp3 (or by ChebCB on the context)."""

    name = "linear.sor_bandit"

    def __init__(self, omegas=DEFAULT_OMEGAS, contextual: bool = False, horizon: int = 0,
                 degree: int = 5, seed: int = -1, operator: str = "auto", rtol: float = 0.0,
                 policy: str = "tsallis_inf", context_range=(1e-3, 1e3), log_context: bool = True):
        super().__init__(operator, rtol)
        if seed < 0:  # follow the trial's seed (the runner seeds numpy before building the solver)
            seed = int(np.random.randint(2**31 - 1))
        self.omegas = tuple(float(w) for w in omegas)
        if not self.omegas or any(not 0 < w < 2 for w in self.omegas):
            raise ValueError("omegas must be a non-empty list of values in (0, 2)")
        self.contextual = bool(contextual)
        if self.contextual:
            self.name = "linear.sor_contextual"
            self.policy = ChebCB(len(self.omegas), degree=degree, context_range=tuple(context_range),
                                 log_context=log_context, seed=seed)
        elif policy == "tsallis_inf":
            self.policy = TsallisINF(len(self.omegas), seed=seed)
        elif policy == "exp3":
            self.policy = Exp3(len(self.omegas), horizon=horizon or None, seed=seed)
        else:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.history: list[dict] = []  # per system: arm, omega, iterations, context
        self.bench_counters["sweeps"] = 0

    def _setup(self, system):
        context = system.info.get("context")  # without one (single systems) all contexts are 1
        self.context = float(context) if context is not None else 1.0
        self.arm = self.policy.choose(self.context)
        try:
            self.sweeper = SORSweep(system, self.omegas[self.arm])
        except ValueError as exc:
            raise SolverError(f"{self.name}: {exc}") from None

    def solve(self, b, x0, maxiter, callback):
        """SOR with this instance's ω; the iteration count is fed back when the solve ends."""
        stop = self.threshold(b)
        x = x0.clone().contiguous()
        b = b.contiguous()
        iters = 0
        try:
            for _ in range(maxiter):
                self.sweeper.sweep(x, b, forward=True)
                self.bench_counters["sweeps"] += 1
                iters += 1
                callback(x)
                if stop and float(torch.linalg.vector_norm(b - self.matvec(x))) <= stop:
                    break
        finally:
            self.policy.update(self.arm, iters, self.context)
            self.history.append({"arm": self.arm, "omega": self.omegas[self.arm],
                                 "iterations": iters, "context": self.context})
        return x


def sor_iterations(system: bench_core.LinearSystem, omega: float, rtol: float, maxiter: int) -> int:
    """Iterations SOR(ω) takes from x = 0 until ‖b − Ax‖ ≤ rtol ‖b‖ (the runner's criterion),
    or maxiter."""
    sweeper = SORSweep(system, omega)
    b = system.b.contiguous()
    x = torch.zeros_like(b)
    bn = float(torch.linalg.vector_norm(b))
    a = system.scipy()
    for k in range(1, maxiter + 1):
        sweeper.sweep(x, b, forward=True)
        r = b - torch.from_numpy(a @ x.cpu().double().numpy()).to(b)
        res = float(torch.linalg.vector_norm(r)) / bn
        if not np.isfinite(res) or res > 1e12:
            return maxiter
        if res <= rtol:
            return k
    return maxiter


def cost_table(systems, omegas, rtol: float, maxiter: int) -> np.ndarray:
    """iterations[t, a] of every grid ω on every instance."""
    return np.array([[sor_iterations(s, w, rtol, maxiter) for w in omegas] for s in systems])


def relax_report(ctx) -> dict | None:
    """Totals and regrets of a finished bandit-SOR trial (None for other solvers)."""
    solver = ctx.optimizer
    if not isinstance(solver, BanditSOR) or len(solver.history) < 2:
        return None  # only sequences have a regret to speak of
    if "relax" in ctx.scratch:
        return ctx.scratch["relax"]
    rtol = next((t.threshold for t in ctx.trial.targets if t.metric == "rel_residual"), 1e-8)
    maxiter = int(ctx.trial.budget.max_steps)
    systems = list(ctx.problem.systems())[: len(solver.history)]
    table = cost_table(systems, solver.omegas, rtol, maxiter)
    total = float(sum(h["iterations"] for h in solver.history))
    best_fixed = float(table.sum(axis=0).min())
    optimal = float(table.min(axis=1).sum())
    report = {
        "relax_total_iterations": total,
        "relax_best_fixed_iterations": best_fixed,
        "relax_best_fixed_omega": float(solver.omegas[int(table.sum(axis=0).argmin())]),
        "relax_instance_optimal_iterations": optimal,
        "relax_regret_fixed": total - best_fixed,
        "relax_regret_instance": total - optimal,
    }
    ctx.scratch["relax"] = report
    return report


def _metric(key: str):
    def fn(ctx):
        report = relax_report(ctx)
        return None if report is None else report[key]
    fn.__name__ = key
    return fn


def relax_metric_specs() -> list[bench_core.MetricSpec]:
    """The Learning-to-Relax totals, computed after a bandit-SOR trial (untimed)."""
    described = {
        "relax_total_iterations": "iterations the bandit's ω choices took over the sequence",
        "relax_best_fixed_iterations": "iterations of the best fixed ω of the grid (in hindsight)",
        "relax_best_fixed_omega": "that best fixed ω",
        "relax_instance_optimal_iterations": "iterations of the best ω per instance",
        "relax_regret_fixed": "bandit total − best fixed ω total",
        "relax_regret_instance": "bandit total − instance-optimal total",
    }
    return [bench_core.MetricSpec(k, _metric(k), higher_is_better=False, unit="iterations"
                                  if k != "relax_best_fixed_omega" else "", description=d)
            for k, d in described.items()]
