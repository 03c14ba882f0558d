"""The trial runner: statuses, targets, budgets, timing split, closures per `requires`, counters, observers."""
from __future__ import annotations

import math
import time
import types

import pytest
import torch

import bench_core
from bench_core.registry import build_registry
from bench_core.code_identity import trial_code
from bench_core.runner import EvalSchedule, run_trial
from bench_core.suite import Trial


class Flaky(bench_core.TrainingProblem):
    """A one-parameter problem; `fail_at` makes loss() raise at that call, `sleep` slows each step."""

    def __init__(self, seed, device, dtype, fail_at: int = 0, sleep: float = 0.0):
        self.x = torch.ones(1, device=device, dtype=dtype, requires_grad=True)
        self.calls, self.fail_at, self.sleep = 0, fail_at, sleep
        self.model = torch.nn.Linear(1, 1)

    def parameters(self):
        return [self.x]

    def loss(self, batch):
        self.calls += 1
        if self.fail_at and self.calls >= self.fail_at:
            raise RuntimeError("boom at call %d" % self.calls)
        time.sleep(self.sleep)
        return (self.x ** 2).sum()

    def evaluate(self):
        return {"loss": float((self.x ** 2).sum())}


class Probe(torch.optim.Optimizer):
    """Records what the closure did: grad present, create_graph, model given."""

    def __init__(self, params, lr=0.1, model=None):
        super().__init__(params, {"lr": lr})
        self.model_seen = model
        self.seen = []
        self.bench_counters = {"hvp": 0}

    def step(self, closure):
        loss = closure()
        p = self.param_groups[0]["params"][0]
        self.seen.append((p.grad is not None, p.grad is not None and p.grad.requires_grad))
        if p.grad is not None:
            if p.grad.requires_grad:
                self.bench_counters["hvp"] += 1
            with torch.no_grad():
                p.sub_(self.param_groups[0]["lr"] * p.grad)
        return loss


probes: dict = {}


def _make_probe(requires):
    def factory(params, lr=0.1, **kw):
        opt = Probe(params, lr=lr, **kw)
        probes[tuple(sorted(requires))] = opt
        return opt
    return factory


def _plugin():
    module = types.ModuleType("runner_test_plugin")

    @bench_core.hookimpl
    def bench_problems():
        return [bench_core.ProblemSpec("test.flaky", "training", Flaky, params={"fail_at": 0, "sleep": 0.0})]

    @bench_core.hookimpl
    def bench_optimizers():
        return [bench_core.OptimizerSpec(f"test.probe_{'_'.join(sorted(r))}", _make_probe(r), requires=r)
                for r in ({"grad"}, {"loss_only"}, {"grad", "create_graph"}, {"grad", "model"})]

    seen = []

    @bench_core.hookimpl
    def bench_trial_start(trial):
        seen.append(("start", trial.trial.trial_id))

    @bench_core.hookimpl
    def bench_after_evaluation(trial, step, metrics):
        seen.append(("eval", step))

    @bench_core.hookimpl
    def bench_trial_end(trial, result):
        seen.append(("end", result["status"]))
        raise ValueError("observer bug")  # must become a warning, not an error

    module.bench_problems, module.bench_optimizers = bench_problems, bench_optimizers
    module.bench_trial_start, module.bench_after_evaluation = bench_trial_start, bench_after_evaluation
    module.bench_trial_end, module.seen = bench_trial_end, seen
    return module


@pytest.fixture(scope="module")
def plugin():
    return _plugin()


@pytest.fixture(scope="module")
def registry(plugin):
    return build_registry(plugins=[("runner_test", plugin)])


def trial(problem, optimizer, hparams=None, params=None, budget=None, targets=None, kind="training",
          dtype="float32", schedule=None, registry=None):
    spec = registry.problem(problem)
    opt = registry.optimizer(optimizer)
    return Trial(suite="t", problem=problem, params={**spec.params, **(params or {})}, kind=kind,
                 optimizer=optimizer, hparams={**opt.defaults, **(hparams or {})}, seed=0, device="cpu",
                 dtype=dtype, budget=budget or {"max_steps": 50}, targets=targets or {}, eval=schedule or {},
                 code=trial_code(registry, spec.plugin, opt.plugin))


def test_quadratic_reaches_target_and_stops(registry):
    t = trial("synthetic.quadratic", "torch.sgd", {"lr": 0.5}, {"dim": 10, "condition": 10.0},
              {"max_steps": 2000}, {"loss": 1e-8}, registry=registry)
    row, curve = run_trial(t, registry)
    assert row["status"] == "target_reached", row["error"]
    assert row["metrics"]["loss"] <= 1e-8
    assert row["steps_to_target"] == row["steps"] < 2000
    assert row["time_to_target_s"] == pytest.approx(row["train_time_s"])
    assert row["warmup_steps"] == 1 and row["warmup_time_s"] > 0 and row["eval_time_s"] > 0
    assert row["counters"]["forward"] == row["counters"]["backward"] == row["steps"]
    assert row["metrics"]["optimizer_state_bytes"] > 0  # momentum buffer, from bench_metrics
    assert "peak_memory_bytes" in row["metrics"]
    losses = [v for s, _, m, v in curve if m == "loss"]
    assert losses[0] == pytest.approx(1.0) and losses[-1] <= 1e-8
    assert row["git_commit"] and row["package_versions"] and row["cpu_model"]


def test_diverging_trial_is_recorded(registry):
    t = trial("synthetic.quadratic", "torch.sgd", {"lr": 50.0, "momentum": 0.0}, {"dim": 10},
              {"max_steps": 500}, registry=registry)
    row, _ = run_trial(t, registry)
    assert row["status"] == "diverged"
    assert "loss became" in row["error"] or "times its initial value" in row["error"]


def test_raising_trial_is_recorded_with_its_message(registry):
    row, _ = run_trial(trial("test.flaky", "test.probe_grad", params={"fail_at": 5}, registry=registry), registry)
    assert row["status"] == "error" and "boom at call 5" in row["error"]


def test_max_seconds_gives_timeout(registry):
    t = trial("test.flaky", "test.probe_grad", params={"sleep": 0.02},
              budget={"max_steps": 10_000, "max_seconds": 0.2, "warmup_steps": 1}, registry=registry)
    row, _ = run_trial(t, registry)
    assert row["status"] == "timeout"
    assert 3 <= row["steps"] < 100
    assert row["train_time_s"] == pytest.approx(0.2, abs=0.1)


def test_evaluation_time_is_excluded_from_training_time(registry, monkeypatch):
    slow_eval = Flaky.evaluate
    def evaluate(self):
        time.sleep(0.05)
        return slow_eval(self)
    monkeypatch.setattr(Flaky, "evaluate", evaluate)
    t = trial("test.flaky", "test.probe_grad", budget={"max_steps": 10}, schedule={"every": 1}, registry=registry)
    row, _ = run_trial(t, registry)
    assert row["status"] == "ok" and row["counters"]["evaluations"] == 11
    assert row["eval_time_s"] >= 0.5 and row["train_time_s"] < 0.1


@pytest.mark.parametrize("requires, grad, graph", [
    (("grad",), True, False), (("loss_only",), False, False), (("create_graph", "grad"), True, True),
    (("grad", "model"), True, False)])
def test_closure_follows_requires(registry, requires, grad, graph):
    row, _ = run_trial(trial("test.flaky", "test.probe_" + "_".join(requires), budget={"max_steps": 3},
                             registry=registry), registry)
    assert row["status"] == "ok", row["error"]
    opt = probes[requires]
    assert opt.seen == [(grad, graph)] * 3
    if "loss_only" in requires:
        assert row["counters"]["function_evals"] == 3 and "backward" not in row["counters"]
    if "create_graph" in requires:
        assert row["counters"]["hvp"] == 3  # the optimizer's own bench_counters reach the row
    assert (opt.model_seen is not None) == ("model" in requires)


def test_observers_are_called_and_their_errors_become_warnings(registry, plugin):
    plugin.seen.clear()
    row, _ = run_trial(trial("test.flaky", "test.probe_grad", budget={"max_steps": 4}, schedule={"every": 2},
                             registry=registry), registry)
    assert row["status"] == "ok"
    assert [s for s in plugin.seen] == [("start", row["trial_id"]), ("eval", 0), ("eval", 2), ("eval", 4), ("end", "ok")]
    assert "observer bug" in row["warnings"]


def test_lbfgs_calls_the_closure_many_times(registry):
    t = trial("synthetic.quadratic", "torch.lbfgs", params={"dim": 20, "condition": 100.0},
              budget={"max_steps": 20}, targets={"loss": 1e-9}, dtype="float64", registry=registry)
    row, _ = run_trial(t, registry)
    assert row["status"] == "target_reached"
    assert row["counters"]["forward"] > row["steps"]


def test_linear_cg_matches_scipy_iterations(registry):
    import numpy as np
    import scipy.sparse.linalg as spla
    from bench_pde.poisson import poisson2d_matrix

    t = trial("pde.poisson2d", "linear.cg", params={"n": 16}, budget={"max_steps": 500},
              targets={"rel_residual": 1e-8}, kind="linear_system", dtype="float64", registry=registry)
    row, curve = run_trial(t, registry)
    assert row["status"] == "target_reached"
    assert row["metrics"]["rel_residual"] <= 1e-8 and row["metrics"]["rel_error"] < 1e-6
    a = poisson2d_matrix(16)
    b = a @ np.random.default_rng(0).standard_normal(256)
    iters = []
    spla.cg(a, b, rtol=1e-8, maxiter=500, callback=lambda xk: iters.append(1))
    assert abs(row["steps"] - len(iters)) <= 1
    assert row["counters"]["iterations"] == row["steps"]
    residuals = [v for s, _, m, v in curve if m == "rel_residual"]
    assert residuals[0] == 1.0 and len(residuals) == row["steps"] + 1


def test_eval_schedule():
    every = EvalSchedule({"every": 10}, 35)
    assert [s for s in range(36) if s in every] == [0, 10, 20, 30, 35]
    geo = EvalSchedule({"points": 5}, 10_000)
    assert [s for s in range(10_001) if s in geo] == [0, 1, 10, 100, 1000, 10_000]
    assert not math.isnan(len(geo.points))


def test_cuda_clock_synchronizes_before_reading(monkeypatch):
    from bench_core.runner import Clock

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    clock = Clock(torch.device("cuda:0"))
    clock.now()
    clock.now()
    assert len(calls) == 2
    Clock(torch.device("cpu")).now()
    assert len(calls) == 2
