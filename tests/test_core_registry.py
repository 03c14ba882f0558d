"""The plugin contract: specs validate, entry points load, broken plugins are isolated, look-ups suggest."""
from __future__ import annotations

import importlib.metadata
import inspect
import types

import pytest
import torch

import bench_core
from bench_core.errors import AmbiguousNameError
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


def test_duplicate_names_are_ambiguous():  # neither plugin wins (tests/test_plugin_faults.py has more)
    spec = lambda: [bench_core.OptimizerSpec("dup.opt", torch.optim.SGD)]  # noqa: E731
    reg = build_registry(plugins=[("a", _plugin(bench_optimizers=spec)), ("b", _plugin(bench_optimizers=spec))],
                         entry_points=False)
    with pytest.raises(AmbiguousNameError, match="plugins a and b"):
        reg.optimizer("dup.opt")
    assert not reg.errors and reg.clashes[("optimizer", "dup.opt")].plugins == ["a", "b"]


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


# --------------------------------------------------------------------------- observers through pluggy
def _observer_plugin(events: list, label: str, **opts):
    """A plugin whose bench_trial_end appends `label` (a plain observer) with hookimpl `opts`."""
    module = types.ModuleType(f"observer_{label}")

    def bench_trial_end(trial, result):
        events.append(label)

    module.bench_trial_end = bench_core.hookimpl(**opts)(bench_trial_end)
    return module


def _wrapper_plugin(events: list, style: str):
    """A plugin whose bench_trial_end is an old-style (``hookwrapper``) or new-style (``wrapper``)
    wrapper that logs before and after the inner observers, with what its yield received."""
    module = types.ModuleType(f"{style}_plugin")
    if style == "hookwrapper":
        def bench_trial_end(trial, result):
            events.append("hookwrapper before")
            outcome = yield
            events.append(f"hookwrapper after {outcome.get_result()!r}")
    else:
        def bench_trial_end(trial, result):
            events.append("wrapper before")
            res = yield
            events.append(f"wrapper after {res!r}")
            return res
    module.bench_trial_end = bench_core.hookimpl(**{style: True})(bench_trial_end)
    return module


def test_both_wrapper_styles_run_around_the_other_observers():
    events: list = []
    plugins = [("old", _wrapper_plugin(events, "hookwrapper")), ("a", _observer_plugin(events, "a")),
               ("new", _wrapper_plugin(events, "wrapper")), ("b", _observer_plugin(events, "b"))]
    reg = build_registry(plugins=plugins, entry_points=False)
    assert not reg.errors, reg.errors
    assert reg.call_observers("bench_trial_end", trial=None, result={}) == []
    # pluggy: wrappers outermost, later-registered first; plain observers return None -> []
    assert events == ["wrapper before", "hookwrapper before", "b", "a", "hookwrapper after []", "wrapper after []"]


def test_tryfirst_and_trylast_order_the_observers():
    events: list = []
    plugins = [("first", _observer_plugin(events, "first", tryfirst=True)),
               ("middle", _observer_plugin(events, "middle")),
               ("last", _observer_plugin(events, "last", trylast=True))]
    # registered in the order that LIFO alone would call backwards for first/last
    reg = build_registry(plugins=plugins, entry_points=False)
    reg.call_observers("bench_trial_end", trial=None, result={})
    assert events == ["first", "middle", "last"]


def _raising(where: str):
    module = types.ModuleType(f"raising_{where}")
    if where == "plain":
        def bench_trial_end(trial, result):
            raise ValueError("observer bug")
        module.bench_trial_end = bench_core.hookimpl(bench_trial_end)
    elif where == "hookwrapper":
        def bench_trial_end(trial, result):
            yield
            raise ValueError("observer bug")
        module.bench_trial_end = bench_core.hookimpl(hookwrapper=True)(bench_trial_end)
    elif where == "wrapper setup":
        def bench_trial_end(trial, result):
            raise ValueError("observer bug")
            yield  # unreachable, makes it a generator
        module.bench_trial_end = bench_core.hookimpl(wrapper=True)(bench_trial_end)
    else:  # a wrapper that never yields
        def bench_trial_end(trial, result):
            return
            yield
        module.bench_trial_end = bench_core.hookimpl(wrapper=True)(bench_trial_end)
    return module


@pytest.mark.parametrize("where, message", [
    ("plain", "ValueError: observer bug"), ("hookwrapper", "ValueError: observer bug"),
    ("wrapper setup", "ValueError: observer bug"), ("no yield", "RuntimeError: wrapper did not yield"),
])
def test_a_raising_observer_is_a_warning_and_the_others_still_run(where, message):
    events: list = []
    plugins = [("a", _observer_plugin(events, "a")), ("bad", _raising(where)),
               ("b", _observer_plugin(events, "b")), ("wrap", _wrapper_plugin(events, "wrapper"))]
    reg = build_registry(plugins=plugins, entry_points=False)
    assert not reg.errors, reg.errors
    for _ in range(2):  # guarding is idempotent: a second call behaves the same
        events.clear()
        warnings = reg.call_observers("bench_trial_end", trial=None, result={})
        assert warnings == [f"bad.bench_trial_end: {message}"]
        assert events == ["wrapper before", "b", "a", "wrapper after []"]


def test_observer_arguments_and_a_bad_call_never_raise():
    seen = []
    module = types.ModuleType("watcher")
    module.bench_after_evaluation = bench_core.hookimpl(lambda trial, step, metrics: seen.append((step, metrics)))
    reg = build_registry(plugins=[("watcher", module)], entry_points=False)
    assert reg.call_observers("bench_after_evaluation", trial=None, step=3, metrics={"loss": 1.0}) == []
    assert seen == [(3, {"loss": 1.0})]
    with pytest.warns(UserWarning, match="metrics"):  # pluggy's own warning for a missing argument
        warnings = reg.call_observers("bench_after_evaluation", trial=None, step=4)
    assert len(warnings) == 1 and "bench_after_evaluation" in warnings[0]


def test_misspelled_hook_implementations_are_reported():
    module = types.ModuleType("typos")
    module.bench_optimizer = bench_core.hookimpl(lambda: None)
    module.bench_trial_ends = bench_core.hookimpl(lambda trial, result: None)
    module.bench_metrics = bench_core.hookimpl(lambda: [bench_core.MetricSpec("typos.m", None)])
    module.bench_helper = lambda: None  # not marked: pluggy does not take it for a hook
    module.bench_maybe = bench_core.hookimpl(optionalhook=True)(lambda: None)
    reg = build_registry(plugins=[("typos", module)], entry_points=False)
    messages = sorted(e.message for e in reg.errors if e.plugin == "typos")
    assert len(reg.errors) == 2
    assert "unknown hook 'bench_optimizer'" in messages[0] and "did you mean 'bench_optimizers'" in messages[0]
    assert "unknown hook 'bench_trial_ends'" in messages[1] and "'bench_trial_end'" in messages[1]
    assert reg.metric("typos.m").plugin == "typos"  # its correct hooks still work


# --------------------------------------------------------------------------- metric directions
def test_core_metrics_are_always_declared():
    reg = build_registry(entry_points=False)
    assert not reg.errors
    for name in ("loss", "val_loss", "test_loss", "train_loss", "rel_residual", "rel_error"):
        assert reg.direction(name) == "min" and not reg.higher_is_better(name)
        assert reg.metric(name).plugin == "bench_core" and reg.metric(name).fn is None
    for name in ("accuracy", "val_accuracy", "test_accuracy", "train_accuracy"):
        assert reg.direction(name) == "max" and reg.higher_is_better(name)
    assert reg.direction("no_such_metric") is None and not reg.higher_is_better("no_such_metric")


def test_plugin_declared_metrics_and_agreeing_redeclarations():
    decl = lambda: [bench_core.MetricSpec("mine.score", None, higher_is_better=True),
                    bench_core.MetricSpec("val_accuracy", None, higher_is_better=True),
                    bench_core.MetricSpec("loss", None)]
    reg = build_registry(plugins=[("mine", _plugin(bench_metrics=decl))], entry_points=False)
    assert not reg.errors, reg.errors
    assert reg.direction("mine.score") == "max" and reg.metric("mine.score").plugin == "mine"
    assert reg.direction("val_accuracy") == "max" and reg.direction("loss") == "min"


def test_a_conflicting_direction_is_an_error():
    decl = lambda: [bench_core.MetricSpec("loss", None, higher_is_better=True)]
    reg = build_registry(plugins=[("contrary", _plugin(bench_metrics=decl))], entry_points=False)
    assert [e.plugin for e in reg.errors] == ["contrary"]
    assert "'loss'" in reg.errors[0].message and "bench_core" in reg.errors[0].message
    assert reg.direction("loss") == "min"


def test_the_core_plugin_handed_on_again_is_not_a_duplicate():
    from bench_core import core_metrics
    reg = build_registry(plugins=[("bench_core", core_metrics)], entry_points=False)
    assert not reg.errors, reg.errors
