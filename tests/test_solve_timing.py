"""How a linear solve is timed: by default a replay without evaluation repeats the evaluated
solve up to the same iteration counts and supplies the times; a replay that differs (a
non-deterministic solver) keeps the evaluated solve's times with a warning; "observed" skips it."""
from __future__ import annotations

import itertools
import types

import pytest
import torch

import bench_core
from bench_core import problems as problems_module
from bench_core.errors import BenchInputError
from bench_core.registry import build_registry
from bench_core.runner import run_trial
from bench_core.suite import Trial, parse_suite


class Richardson:
    """x ← x + ω (b − A x): deterministic, one callback per iteration."""

    def __init__(self, omega: float = 0.2):
        self.omega = omega

    def setup(self, system):
        self.a = torch.from_numpy(system.scipy().toarray()).to(system.b.dtype)

    def solve(self, b, x0, maxiter, callback):
        x = x0.clone()
        for _ in range(maxiter):
            x = x + self.omega * (b - self.a @ x)
            callback(x)
        return x


class Flaky(Richardson):
    """Returns early on every second construction: a replay cannot repeat its first solve."""

    draws = itertools.count()

    def __init__(self, omega: float = 0.2):
        super().__init__(omega)
        self.cut = 5 if next(Flaky.draws) % 2 else None

    def solve(self, b, x0, maxiter, callback):
        return super().solve(b, x0, min(maxiter, self.cut or maxiter), callback)


def _two_systems(seed, device, dtype, n: int = 6):
    """Two diagonally dominant systems solved in turn (a sequence problem)."""
    import numpy as np
    import scipy.sparse as sp

    systems = []
    for k in range(2):
        a = sp.diags([-1.0, 4.0 + k, -1.0], [-1, 0, 1], shape=(n, n)).tocsr()
        systems.append(bench_core.LinearSystem.from_scipy(a, x_exact=np.ones(n), device=device,
                                                          dtype=dtype, name=f"s{k}"))
    return bench_core.LinearSystemProblem(systems)


@pytest.fixture(scope="module")
def registry():
    module = types.ModuleType("solve_timing_test_plugin")

    @bench_core.hookimpl
    def bench_optimizers():
        kinds = {"linear_system"}
        return [bench_core.OptimizerSpec("test.richardson", Richardson, kinds=kinds),
                bench_core.OptimizerSpec("test.flaky", Flaky, kinds=kinds)]

    @bench_core.hookimpl
    def bench_problems():
        return [bench_core.ProblemSpec("test.two_systems", "linear_system", _two_systems, params={"n": 6})]

    module.bench_optimizers = bench_optimizers
    module.bench_problems = bench_problems
    return build_registry(plugins=[("solve_timing_test_plugin", module)])


def _run(registry, optimizer, timing=None, target=1e-8, max_steps=400):
    budget = {"max_steps": max_steps, **({"solve_timing": timing} if timing else {})}
    spec = registry.problem("test.two_systems")
    trial = Trial(suite="t", problem="test.two_systems", params=dict(spec.params), kind="linear_system",
                  optimizer=optimizer, hparams={}, seed=0, device="cpu", dtype="float64",
                  budget=budget, targets={"rel_residual": target}, eval={})
    return run_trial(trial, registry)


def test_replay_gives_the_times_and_leaves_everything_else_as_evaluated(registry, monkeypatch):
    calls = {"n": 0}
    measure = problems_module.LinearSystem.metrics

    def counted(self, x):
        calls["n"] += 1
        return measure(self, x)

    monkeypatch.setattr(problems_module.LinearSystem, "metrics", counted)
    replayed, curve = _run(registry, "test.richardson")
    evaluations = calls["n"]
    observed, observed_curve = _run(registry, "test.richardson", timing="observed")
    assert calls["n"] == 2 * evaluations  # the replay evaluates nothing
    assert replayed["status"] == observed["status"] == "target_reached"
    for key in ("steps", "steps_to_target"):
        assert replayed[key] == observed[key]
    assert replayed["metrics"]["rel_residual"] == observed["metrics"]["rel_residual"]
    assert [(s, m, v) for s, _, m, v in curve] == [(s, m, v) for s, _, m, v in observed_curve]
    # the times are the replay's: monotone, ending at setup + replayed solve = time to target
    times = [t for _, t, _, _ in curve]
    assert times == sorted(times) and times[0] >= 0
    assert replayed["time_to_target_s"] == pytest.approx(replayed["setup_time_s"] + replayed["train_time_s"])
    assert times[-1] == pytest.approx(replayed["time_to_target_s"])
    assert replayed["counters"]["observed_solve_us"] > 0
    assert not replayed["warnings"] or "replay" not in replayed["warnings"]


def test_a_replay_that_differs_keeps_the_evaluated_times_and_says_so(registry, monkeypatch):
    monkeypatch.setattr(Flaky, "draws", itertools.count())
    row, _ = _run(registry, "test.flaky")
    assert "the replay did not repeat the evaluated solve" in (row["warnings"] or "")
    assert row["train_time_s"] == pytest.approx(row["counters"]["observed_solve_us"] / 1e6, abs=2e-6)


def test_replay_covers_a_trial_ended_early(registry):
    row, curve = _run(registry, "test.richardson", target=1e-30, max_steps=30)  # budget, never the target
    assert row["status"] == "ok" and row["steps"] == 60  # 30 per system
    times = [t for _, t, _, _ in curve]
    assert times == sorted(times)
    assert "replay" not in (row["warnings"] or "")


def test_solve_timing_is_checked_in_the_suite():
    suite = {"name": "t", "problems": [{"name": "pde.poisson2d", "params": {"n": 8},
                                        "budget": {"max_steps": 10, "solve_timing": "sometimes"}}],
             "optimizers": [{"name": "linear.cg"}]}
    with pytest.raises(BenchInputError, match="solve_timing: expected one of replay, observed"):
        parse_suite(suite, "s.toml", bench_core.get_registry())
    suite["problems"][0]["budget"]["solve_timing"] = "observed"
    assert parse_suite(suite, "s.toml", bench_core.get_registry()).trials[0].budget.solve_timing == "observed"
