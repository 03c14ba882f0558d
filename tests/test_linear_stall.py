"""How a linear-system trial ends: ``stalled`` by the window rule (float32 CG at its rounding
floor, a scripted plateau) but not for converging or oscillating residuals; a solver's returned
iterate judged by the targets (a direct solve without any callback); and the iteration counters
kept for diverged, stalled and timed-out solves. All through bench_core.runner.run_trial."""
from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import bench_core
from bench_core.linear_loop import DEFAULT_STALL_WINDOW
from bench_core.registry import build_registry
from bench_core.runner import run_trial
from bench_core.suite import Trial


def _dense_solution(system) -> torch.Tensor:
    a = torch.from_numpy(system.scipy().toarray()).to(system.b.dtype)
    return torch.linalg.solve(a, system.b)


class DirectSolver:
    """A direct solve: the exact answer from a dense factorization, no callback at all."""

    def setup(self, system):
        self.a = torch.from_numpy(system.scipy().toarray()).to(system.b.dtype)

    def solve(self, b, x0, maxiter, callback):
        return torch.linalg.solve(self.a, b)


# Relative residual of iterate k, per script. x_k = (1 - r_k) x* has residual |r_k| exactly.
SCRIPTS = {
    "plateau": lambda k: max(0.5 ** k, 1e-3),  # reaches 1e-3 at k = 10, then stays there
    # best-so-far improves only every 10th iterate; the others spike 1000x above it
    "oscillating": lambda k: 0.9 ** k * (1.0 if k % 10 == 0 else 1e3),
    "diverging": lambda k: 3.0 * 10.0 ** k,  # 3e12 > DIVERGED_RESIDUAL at k = 12
    "halving": lambda k: 0.5 ** k,
}


class ScriptedSolver:
    """Calls back with iterates whose relative residual follows a script; with `then_exact`
    it returns the exact solution after that many callbacks (a final update with no callback)."""

    def __init__(self, script: str = "halving", then_exact: int = 0):
        self.script, self.then_exact = SCRIPTS[script], then_exact

    def setup(self, system):
        self.x_exact = _dense_solution(system)

    def solve(self, b, x0, maxiter, callback):
        for k in range(1, maxiter + 1):
            if k > self.then_exact > 0:
                return self.x_exact.clone()
            callback((1.0 - self.script(k)) * self.x_exact)
        return None


def _dense_spd(seed, device, dtype, n: int = 12):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    a = m @ m.T + n * np.eye(n)
    x = rng.standard_normal(n)
    system = bench_core.LinearSystem.from_scipy(sp.csr_matrix(a), x_exact=x, device=device,
                                                dtype=dtype, name="dense-spd")
    return bench_core.LinearSystemProblem([system])


@pytest.fixture(scope="module")
def registry():
    module = types.ModuleType("linear_stall_test_plugin")

    @bench_core.hookimpl
    def bench_optimizers():
        kinds = {"linear_system"}
        return [bench_core.OptimizerSpec("test.direct", DirectSolver, kinds=kinds),
                bench_core.OptimizerSpec("test.scripted", ScriptedSolver, kinds=kinds)]

    @bench_core.hookimpl
    def bench_problems():
        return [bench_core.ProblemSpec("test.dense_spd", "linear_system", _dense_spd, params={"n": 12})]

    module.bench_optimizers = bench_optimizers
    module.bench_problems = bench_problems
    return build_registry(plugins=[("linear_stall_test_plugin", module)])


def _run(registry, optimizer, *, problem="test.dense_spd", params=None, dtype="float64",
         budget=None, target=1e-10, hparams=None):
    spec = registry.problem(problem)
    trial = Trial(suite="t", problem=problem, params={**spec.params, **(params or {})},
                  kind="linear_system", optimizer=optimizer, hparams=hparams or {}, seed=0,
                  device="cpu", dtype=dtype, budget=budget or {"max_steps": 2000},
                  targets={"rel_residual": target}, eval={})
    row, curve = run_trial(trial, registry)
    return row, curve


def _assert_counted(row, iterations):
    assert row["steps"] == iterations, row
    assert row["counters"]["iterations"] == iterations, row["counters"]


# --------------------------------------------------------------------------- stalled
def test_float32_cg_at_its_rounding_floor_stalls_before_its_budget(registry):
    row, _ = _run(registry, "linear.cg", problem="pde.poisson2d", params={"n": 32}, dtype="float32")
    assert row["status"] == "stalled", (row["status"], row["error"])
    assert row["steps"] < 2000
    _assert_counted(row, row["steps"])
    assert f"no improvement by factor 0.001 over the last {DEFAULT_STALL_WINDOW} iterations" in row["error"]
    assert row["metrics"]["rel_residual"] > 1e-10
    # the budget's stall_window overrides the default window
    short, _ = _run(registry, "linear.cg", problem="pde.poisson2d", params={"n": 32}, dtype="float32",
                    budget={"max_steps": 2000, "stall_window": 20})
    assert short["status"] == "stalled" and short["steps"] < row["steps"]
    assert "over the last 20 iterations" in short["error"]


def test_a_plateau_stalls_exactly_one_window_after_its_last_improvement(registry):
    row, curve = _run(registry, "test.scripted", hparams={"script": "plateau"},
                      budget={"max_steps": 500, "stall_window": 20})
    assert row["status"] == "stalled"
    assert "best relative residual 0.001 at iteration 10" in row["error"]
    _assert_counted(row, 30)
    assert [v for _, _, m, v in curve if m == "system_iterations"] == [30.0]


@pytest.mark.parametrize("name,hparams", [("linear.cg", {}), ("scipy.cg", {}),
                                          ("linear.pcg", {"precond": "ic0"})])
def test_converging_float64_cg_is_not_stalled(registry, name, hparams):
    row, curve = _run(registry, name, problem="pde.poisson2d", params={"n": 64}, hparams=hparams)
    assert row["status"] == "target_reached", (row["status"], row["error"])
    residuals = [v for _, _, m, v in curve if m == "rel_residual"]
    if name == "linear.cg":  # CG's residual is not monotone, yet the best-so-far keeps improving
        assert any(b > a for a, b in zip(residuals, residuals[1:]))


def test_an_oscillating_residual_stalls_only_when_the_window_is_shorter_than_its_period(registry):
    row, _ = _run(registry, "test.scripted", hparams={"script": "oscillating"}, target=1e-6,
                  budget={"max_steps": 500, "stall_window": 10})
    assert row["status"] == "target_reached" and row["steps_to_target"] == 140
    row, _ = _run(registry, "test.scripted", hparams={"script": "oscillating"}, target=1e-6,
                  budget={"max_steps": 500, "stall_window": 9})
    assert row["status"] == "stalled"
    _assert_counted(row, 9)


# --------------------------------------------------------------------------- the returned iterate
def test_a_direct_solve_without_callback_reaches_the_target(registry):
    row, _ = _run(registry, "test.direct")
    assert row["status"] == "target_reached", (row["status"], row["error"])
    assert row["time_to_target_s"] is not None and row["time_to_target_s"] >= 0
    assert row["steps_to_target"] == 0
    _assert_counted(row, 0)
    assert row["metrics"]["rel_residual"] <= 1e-10


def test_a_final_update_after_the_last_callback_counts(registry):
    row, curve = _run(registry, "test.scripted", hparams={"then_exact": 5})
    assert row["status"] == "target_reached"
    assert row["steps_to_target"] == 5
    _assert_counted(row, 5)
    assert row["metrics"]["rel_residual"] <= 1e-10
    last_step, last_residual = [(s, v) for s, _, m, v in curve if m == "rel_residual"][-1]
    assert last_step == 5 and last_residual <= 1e-10  # the returned x, not the 5th callback's


def test_a_solver_stopping_on_its_own_tolerance_short_of_the_target_is_ok(registry):
    row, _ = _run(registry, "linear.cg", problem="pde.poisson2d", params={"n": 16}, hparams={"rtol": 1e-4})
    assert row["status"] == "ok", (row["status"], row["error"])
    assert row["time_to_target_s"] is None and row["steps_to_target"] is None
    assert 1e-10 < row["metrics"]["rel_residual"] <= 1e-4
    _assert_counted(row, row["steps"])
    assert row["steps"] > 0


# --------------------------------------------------------------------------- counters survive
def test_a_diverging_solver_keeps_its_iteration_counter(registry):
    row, _ = _run(registry, "test.scripted", hparams={"script": "diverging"})
    assert row["status"] == "diverged"
    assert "at iteration 12" in row["error"]
    _assert_counted(row, 12)


def test_a_timed_out_solver_keeps_its_iteration_counter(registry):
    row, _ = _run(registry, "test.scripted", budget={"max_steps": 500, "max_seconds": 1e-9})
    assert row["status"] == "timeout"
    _assert_counted(row, 1)


def test_a_bad_stall_window_is_a_clear_error(registry):
    row, _ = _run(registry, "test.scripted", budget={"max_steps": 50, "stall_window": 0})
    assert row["status"] == "error" and "stall_window" in row["error"]
