"""The plugin contract: specs validate, entry points load, broken plugins are isolated, look-ups suggest."""
from __future__ import annotations

import importlib.metadata
import inspect
import types

import pytest
import torch

import bench_core
from bench_core.registry import build_registry


def _plugin(**hooks):
    module = types.ModuleType("fake_plugin")
    for name, fn in hooks.items():
        setattr(module, name, bench_core.hookimpl(fn))
    return module


def test_builtin_plugins_come_from_entry_points():
    reg = build_registry()
    assert not reg.errors, reg.errors
    assert reg.optimizer("torch.adamw").plugin == "bench_optim"
    assert inspect.unwrap(reg.optimizer("torch.lbfgs").factory) is torch.optim.LBFGS  # under the schedule wrapper
    assert reg.problem("synthetic.quadratic").kind == "training"
    assert reg.problem("pde.poisson2d").kind == "linear_system"
    assert reg.optimizer("linear.cg").kinds == {"linear_system"}
    assert {"peak_memory_bytes", "optimizer_state_bytes"} <= set(reg.metrics)
    assert reg.higher_is_better("val_accuracy") and not reg.higher_is_better("loss")
    eps = {ep.name for ep in importlib.metadata.entry_points(group="bench_core")}
    assert {"bench_optim", "bench_synthetic", "bench_linear", "bench_pde", "bench_metrics"} <= eps


def test_every_torch_optim_optimizer_is_exposed():
    reg = build_registry()
    for name in ("sgd", "adam", "adamw", "lbfgs", "rmsprop", "adagrad", "nadam", "radam"):
        spec = reg.optimizer(f"torch.{name}")
        assert isinstance(spec.search_space["lr"], bench_core.LogUniform)


def test_unknown_names_suggest_the_nearest():
    reg = build_registry()
    with pytest.raises(bench_core.UnknownNameError, match="did you mean .torch.adam"):
        reg.optimizer("torch.adamq")
    with pytest.raises(bench_core.UnknownNameError, match="did you mean 'synthetic.quadratic'"):
        reg.problem("synthetic.quadratc")
    bench_core.set_registry(reg)
    try:
        assert bench_core.optimizer_spec("torch.sgd").name == "torch.sgd"
        assert bench_core.problem_spec("synthetic.logreg").name == "synthetic.logreg"
        assert bench_core.metric_spec("loss").name == "loss"
    finally:
        bench_core.set_registry(None)


def test_broken_plugins_are_reported_and_the_rest_still_work():
    good = importlib.metadata.EntryPoint("bench_optim", "bench_optim.plugin", "bench_core")
    missing = importlib.metadata.EntryPoint("ghost", "no_such_module_anywhere", "bench_core")
    raising = _plugin(bench_problems=lambda: 1 / 0)
    wrong_type = _plugin(bench_metrics=lambda: ["not a spec"])
    reg = build_registry(plugins=[("raising", raising), ("wrong", wrong_type)],
                         entry_point_list=[good, missing])
    by_plugin = {e.plugin: e.message for e in reg.errors}
    assert "ModuleNotFoundError" in by_plugin["ghost"]
    assert "ZeroDivisionError" in by_plugin["raising"]
    assert "not MetricSpec" in by_plugin["wrong"]
    assert reg.optimizer("torch.adam").plugin == "bench_optim"


def test_duplicate_names_are_reported():
    spec = lambda: [bench_core.OptimizerSpec("dup.opt", torch.optim.SGD)]  # noqa: E731
    reg = build_registry(plugins=[("a", _plugin(bench_optimizers=spec)), ("b", _plugin(bench_optimizers=spec))],
                         entry_points=False)
    assert reg.optimizer("dup.opt").plugin == "a"
    assert [e.plugin for e in reg.errors] == ["b"]


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "has space", "factory": torch.optim.SGD}, "without spaces"),
    ({"name": "x", "factory": torch.optim.SGD, "kinds": {"nonsense"}}, "unknown kinds"),
    ({"name": "x", "factory": torch.optim.SGD, "requires": {"telepathy"}}, "unknown requires"),
    ({"name": "x", "factory": torch.optim.SGD, "requires": {"grad", "loss_only"}}, "exclude"),
])
def test_optimizer_spec_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bench_core.OptimizerSpec(**kwargs)


def test_problem_spec_kinds_and_search_spaces():
    with pytest.raises(ValueError, match="kind must be"):
        bench_core.ProblemSpec("p", "regression", factory=lambda **k: None)
    assert bench_core.LogUniform(1e-4, 1.0).from_unit(0.5) == pytest.approx(1e-2)
    assert bench_core.Uniform(0.0, 2.0).from_unit(0.25) == pytest.approx(0.5)
    assert bench_core.Choice(["a", "b"]).from_unit(0.99) == "b"
    with pytest.raises(ValueError):
        bench_core.LogUniform(0.0, 1.0)
