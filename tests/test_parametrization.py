"""Width parametrizations: the per-role learning-rate rules, param groups, the training loop's use
of them, schedules over per-group lrs, and the coordinate check (activation size after a few Adam
steps flat across widths under μP and u-μP, growing under SP)."""
from __future__ import annotations

import pytest
import torch

import bench_core
from bench_core.code_identity import trial_code
from bench_core.parametrization import LR_EXPONENTS, lr_multiplier, param_groups, rule_error
from bench_core.registry import build_registry
from bench_core.runner import run_trial
from bench_core.suite import Trial

WIDTHS = (64, 128, 256, 512)


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _mlp(width, parametrization, depth=2):
    return bench_core.problem_spec("vision.digits_mlp").factory(
        seed=0, device="cpu", dtype=torch.float32, width=width, depth=depth,
        parametrization=parametrization, base_width=64)


def _modular(width, parametrization):
    return bench_core.problem_spec("lm.modular_arithmetic").factory(
        seed=0, device="cpu", dtype=torch.float32, d=width, heads=4, layers=1, batch_size=64,
        parametrization=parametrization, base_width=32)


# --------------------------------------------------------------------------- rules and groups
def test_rules_follow_tensor_programs_v_table_3():
    m = 4.0
    adam = {r: lr_multiplier("mup", "adam", r, m) for r in bench_core.ROLES}
    assert adam == {"input": 1.0, "hidden": 0.25, "output": 0.25, "vector": 1.0}
    sgd = {r: lr_multiplier("mup", "sgd", r, m) for r in bench_core.ROLES}
    assert sgd == {"input": 4.0, "hidden": 1.0, "output": 0.25, "vector": 4.0}
    assert lr_multiplier("umup", "adam", "hidden", m) == 0.5
    assert all(lr_multiplier("mup", "kfac", r, m) == 1.0 for r in bench_core.ROLES)
    with pytest.raises(ValueError, match="no learning-rate rule"):
        lr_multiplier("umup", "kfac", "hidden", m)
    assert set(s for _, s in LR_EXPONENTS) <= set(bench_core.specs.SCALINGS) | {"muon_rms"}  # a resolved row


def test_rule_error_for_the_suite_parser():
    assert rule_error("sp", None) is None and rule_error("mup", "adam") is None
    assert "declares none" in rule_error("mup", None)
    assert "no learning-rate rule" in rule_error("umup", "shampoo", {"grafting": "none"})
    assert rule_error("umup", "shampoo", {}) is None  # Adam-grafted: Adam's rule
    assert "must be one of" in rule_error("mu", "adam")


def test_param_groups_cover_every_tensor_once_with_scaled_lrs():
    problem = _mlp(256, "mup")
    groups = param_groups(problem, "adam", {"lr": 0.01})
    flat = [p for g in groups for p in g["params"]]
    assert len(flat) == len(problem.parameters()) and {id(p) for p in flat} == {id(p) for p in problem.parameters()}
    lrs = {g["role"]: g["lr"] for g in groups if g["role"] != "vector"}
    assert lrs == pytest.approx({"input": 0.01, "hidden": 0.0025, "output": 0.0025})
    # shampoo grafted onto Adam (its default) takes Adam's row; ungrafted the Shampoo row
    assert {g["lr"] for g in param_groups(problem, "shampoo", {"lr": 0.01})} == {g["lr"] for g in groups}
    ungrafted = param_groups(problem, "shampoo", {"lr": 0.01, "grafting": "none"})
    assert {g["role"]: g["lr_multiplier"] for g in ungrafted}["output"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="declares none"):
        param_groups(problem, None, {"lr": 0.01})


def test_lr_default_from_factory_and_missing_roles_refused():
    problem = _mlp(128, "mup")
    groups = param_groups(problem, "adam", {}, factory=lambda params, lr=0.5: None)
    assert max(g["lr"] for g in groups) == 0.5
    tuples = [(p, role, 64 * m, 64) for p, role, m in problem.model.width_roles]
    problem.param_roles = lambda: tuples  # (param, role, fan_in, base_fan_in)
    assert sorted({g["lr"] for g in param_groups(problem, "adam", {"lr": 0.1})}) == pytest.approx([0.05, 0.1])
    problem.param_roles = lambda: tuples[:-1]
    with pytest.raises(ValueError, match="without a role"):
        param_groups(problem, "adam", {"lr": 0.1})


def test_sp_is_unchanged_and_roles_are_labelled():
    a, b = _mlp(64, "sp"), bench_core.problem_spec("vision.digits_mlp").factory(
        seed=0, device="cpu", dtype=torch.float32, width=64, depth=2)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    roles = [r.role for r in _modular(64, "sp").param_roles()]
    assert roles.count("input") == 2 and "output" not in roles  # SP ties the head to the embedding
    roles = {r.role for r in _modular(64, "mup").param_roles()}
    assert roles == set(bench_core.ROLES)


def test_schedule_keeps_per_group_lrs(registry):
    spec = registry.optimizer("torch.adam")
    problem = _mlp(256, "mup")
    opt = spec.factory(param_groups(problem, "adam", {"lr": 0.01}), lr=0.01, schedule="cosine",
                       schedule_steps=10)
    before = [g["lr"] for g in opt.param_groups]
    for step in range(5):
        opt.zero_grad()
        problem.loss(problem.batch(step + 1)).backward()
        opt.step()
    ratios = [g["lr"] / b for g, b in zip(opt.param_groups, before)]
    assert len(set(before)) > 1 and max(ratios) == pytest.approx(min(ratios)) and ratios[0] < 1


def _trial(registry, problem, optimizer, params, hparams):
    spec, opt = registry.problem(problem), registry.optimizer(optimizer)
    return Trial(suite="t", problem=problem, params={**spec.params, **params}, kind="training",
                 optimizer=optimizer, hparams={**opt.defaults, **hparams}, seed=0, device="cpu",
                 dtype="float32", budget={"max_steps": 3}, targets={}, eval={},
                 code=trial_code(registry, spec.plugin, opt.plugin))


def test_training_loop_builds_groups_or_refuses_in_one_line(registry):
    row, _ = run_trial(_trial(registry, "vision.digits_mlp", "torch.adam",
                              {"width": 128, "parametrization": "mup"}, {"lr": 1e-3}), registry)
    assert row["status"] == "ok", row["error"]
    row, _ = run_trial(_trial(registry, "vision.digits_mlp", "torch.lbfgs",
                              {"width": 128, "parametrization": "mup"}, {}), registry)
    assert row["status"] == "error"  # a refusing family ("quasi_newton"): its reason, in one line
    assert "torch.lbfgs on vision.digits_mlp" in row["error"] and "no μP learning-rate rule" in row["error"]
    assert "quasi_newton" in row["error"] and "\n" not in row["error"]


# --------------------------------------------------------------------------- coordinate check
def _coordinates(problem, parametrization, module, lr, steps, make_optimizer=None):
    """Mean |x| per coordinate of `module`'s output on a fixed batch after `steps` optimizer
    steps (Adam on the param groups of the "adam" rule unless `make_optimizer(problem)` builds
    another), and mean |x_steps - x_0| (the change training made)."""
    outputs = []
    handle = module(problem.model).register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    fixed = problem.batch(0)
    with torch.no_grad():
        problem.loss(fixed)
    if make_optimizer is not None:
        opt = make_optimizer(problem)
    else:
        params = problem.parameters() if parametrization == "sp" else param_groups(problem, "adam", {"lr": lr})
        opt = torch.optim.Adam(params, lr=lr)
    for step in range(1, steps + 1):
        opt.zero_grad()
        problem.loss(problem.batch(step)).backward()
        opt.step()
        del outputs[1:]
    with torch.no_grad():
        problem.loss(fixed)
    handle.remove()
    x0, x = outputs
    return float(x.abs().mean()), float((x - x0).abs().mean())


def _check(results, parametrization, sp_growth):
    sizes, changes = zip(*results)
    for values in (sizes, changes):
        if parametrization == "sp":
            assert values[-1] / values[0] > sp_growth, values  # grows with width at a fixed Adam lr
        else:
            assert max(values) / min(values) < 1.5, values  # flat across widths


@pytest.mark.parametrize("parametrization", ["sp", "mup", "umup"])
def test_coordinate_check_mlp(parametrization):
    _check([_coordinates(_mlp(w, parametrization), parametrization, lambda m: m[3], 3e-3, 10) for w in WIDTHS],
           parametrization, sp_growth=2.0)


@pytest.mark.parametrize("parametrization", ["sp", "mup", "umup"])
def test_coordinate_check_transformer(parametrization):
    _check([_coordinates(_modular(w, parametrization), parametrization, lambda m: m.blocks[-1], 1e-2, 3)
            for w in (32, 64, 128, 256)], parametrization, sp_growth=5.0)


# --------------------------------------------------------------------------- Muon's rule
def _muon_coordinates(problem, module, lr, steps, scaling="muon", adjust="original"):
    """_coordinates with Muon (hidden matrices) + AdamW (the rest) on the μP param groups of
    `scaling`'s row (hparams adjust_lr_fn=`adjust`)."""
    from bench_optim.muon import Muon

    def make(problem):
        groups = param_groups(problem, scaling, {"lr": lr, "adjust_lr_fn": adjust})
        return Muon(groups, model=problem.model, lr=lr, adam_lr=lr / 10, adjust_lr_fn=adjust)
    return _coordinates(problem, "mup", module, lr, steps, make)


def test_muon_rule_rows_and_resolution():
    m = 4.0
    assert {r: lr_multiplier("mup", "muon", r, m) for r in bench_core.ROLES} == \
        {"input": 1.0, "hidden": 1.0, "output": 0.25, "vector": 1.0}
    assert lr_multiplier("mup", "muon_rms", "hidden", m) == 0.5
    assert lr_multiplier("umup", "muon", "hidden", m) == 2.0
    assert rule_error("mup", "muon", {}) is None and rule_error("umup", "muon", {}) is None
    assert bench_core.optimizer_spec("muon").scaling == "muon"
    from bench_core.parametrization import resolve_family
    assert resolve_family("muon", {"adjust_lr_fn": "match_rms_adamw"}) == "muon_rms"


MUON_WIDTHS = (32, 64, 128, 256)  # small: Newton–Schulz on 512² matrices is slow on a loaded CPU


@pytest.mark.parametrize("parametrization,adjust", [("mup", "original"), ("umup", "original")])
def test_muon_coordinate_check_mlp(parametrization, adjust):
    """Muon under its μP rule: hidden activations and their change after 5 steps flat across
    widths 32..256 (within 1.5x); under "mup" the same run with the hidden exponent off by +1 leaves
    that band (the change grows by more than 1.5x)."""
    from bench_core.parametrization import resolve_family

    family = resolve_family("muon", {"adjust_lr_fn": adjust})
    flat = [_muon_coordinates(_mlp(w, parametrization), lambda m: m[3], 0.02, 5, family, adjust)
            for w in MUON_WIDTHS]
    _check(flat, parametrization, sp_growth=None)
    if parametrization != "mup" or adjust != "original":
        return
    wrong = dict(LR_EXPONENTS[(parametrization, family)])
    wrong["hidden"] += 1.0
    key = (parametrization, "wrong_rule")
    LR_EXPONENTS[key] = wrong
    try:
        drift = [_muon_coordinates(_mlp(w, parametrization), lambda m: m[3], 0.02, 5, "wrong_rule", adjust)
                 for w in MUON_WIDTHS]
    finally:
        del LR_EXPONENTS[key]
    changes = [c for _, c in drift]
    assert changes[-1] / changes[0] > 1.5, changes
