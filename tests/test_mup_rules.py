"""μP learning-rate rules for every optimizer family: each registered optimizer declares a rule
or a refusal (so a new one cannot slip through to SP scaling), refusals end the suite parse in
one line, the update size per role is width-independent under a declared rule (and is not under
a wrong one), and lm.modular_arithmetic reports the size and data counts of a scaling fit."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from bench_core.errors import BenchInputError
from bench_core.lr_rules import (
    LR_EXPONENTS,
    REFUSALS,
    SCALINGS,
    resolve_family,
    rule_error,
)
from bench_core.registry import build_registry
from bench_core.suite import parse_suite

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is a folder, not a package
from benchmarks import mup_update_check


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _training_specs(registry):
    return {n: s for n, s in registry.optimizers.items() if "training" in s.kinds}


# --------------------------------------------------------------------------- every optimizer
def test_every_registered_optimizer_declares_a_rule_or_a_refusal(registry):
    """Table-driven over the whole registry: a family from SCALINGS (never None), and under
    "mup" either a rule row or its family's one-line refusal reason."""
    specs = _training_specs(registry)
    assert len(specs) > 100  # torch, pytorch-optimizer, own implementations
    for name, spec in specs.items():
        assert spec.scaling in SCALINGS, f"{name} declares no μP family"
        error = rule_error("mup", spec.scaling, spec.defaults)
        family = resolve_family(spec.scaling, spec.defaults)
        if family in REFUSALS:
            assert error and REFUSALS[family] in error and "\n" not in error, name
        else:
            assert error is None and ("mup", family) in LR_EXPONENTS, name


def test_family_table_of_the_pytorch_optimizer_adapter_matches_its_catalogue():
    """Every catalogue entry is classified explicitly (a new library version's optimizer shows
    here; at run time it would be refused as "unverified", never scaled as SP)."""
    pytest.importorskip("pytorch_optimizer")
    from bench_optim.pytorch_optimizer_adapter import SCALING
    from pytorch_optimizer import get_supported_optimizers
    assert set(SCALING) == set(get_supported_optimizers())
    assert set(SCALING.values()) <= set(SCALINGS)


@pytest.mark.parametrize("optimizer,family", [
    ("po.lion", "adam"), ("po.adan", "adam"), ("psgd.kron_whiten", "adam"), ("po.sophiah", "adam"),
    ("mfac", "sgd"), ("polyak", "sgd"), ("mezo", "sgd"), ("deepzero", "sgd"), ("po.novograd", "normalized"),
    ("po.lamb", "relative"), ("po.prodigy", "parameter_free"), ("adafisher", "curvature"),
    ("psgd.kron_newton", "curvature"), ("torch.lbfgs", "quasi_newton"), ("po.muon", "orthogonalized")])
def test_named_families(registry, optimizer, family):
    spec = registry.optimizer(optimizer)
    assert resolve_family(spec.scaling, spec.defaults) == family


def test_deepzero_with_sampled_coordinates_is_refused():
    assert rule_error("mup", "zeroth", {"n_coords": 0}) is None
    assert "n_coords" in rule_error("mup", "zeroth", {"n_coords": 100})


def test_a_refusing_family_ends_the_parse_in_one_line(registry):
    entry = {"name": "vision.digits_mlp", "params": {"parametrization": "mup"}}
    with pytest.raises(BenchInputError) as info:
        parse_suite({"problems": [entry], "optimizers": [{"name": "po.lamb"}]}, "s.toml", registry)
    text = str(info.value)
    assert "optimizers[0].name: po.lamb on vision.digits_mlp: no μP learning-rate rule (family 'relative')" in text
    assert "\n" not in text
    ok = parse_suite({"problems": [entry], "optimizers": [{"name": "po.lion"}, {"name": "mezo"}]}, "s.toml", registry)
    assert {t.optimizer for t in ok.trials} == {"po.lion", "mezo"}


# --------------------------------------------------------------------------- update-size check
def _spread(registry, optimizer, family, lr):
    """max/min over widths 64 and 256 of the update size per role (benchmarks/mup_update_check.py)."""
    return mup_update_check.spread(registry, optimizer, LR_EXPONENTS[("mup", family)], lr)


@pytest.mark.parametrize("optimizer,family,wrong,lr", [
    ("po.lion", "adam", "sgd", 1e-4),            # sign-based update: Adam's rule
    ("torch.sgd", "sgd", "adam", 1e-2),          # Table 3's SGD column
    ("polyak", "sgd", "kfac", 1.0),              # Polyak step in the μP metric; all-zero row: plain SPS
    ("po.novograd", "normalized", "adam", 1e-3),  # unit-Frobenius step per tensor
])
def test_update_size_per_role_is_width_independent_under_the_rule(registry, optimizer, family, wrong, lr):
    """Update-size coordinate check, widths 64 and 256: within 2x for every role under the
    declared rule (the zero-initialized readout's drifts about 1.4x under every rule at these
    widths); a wrong rule spreads some role by more than 2.8x (a unit exponent error: 4x)."""
    assert registry.optimizer(optimizer).scaling == family
    right = _spread(registry, optimizer, family, lr)
    assert max(right.values()) < 2.0, right
    wrong_spread = _spread(registry, optimizer, wrong, lr)
    assert max(wrong_spread.values()) > 2.8, wrong_spread


# --------------------------------------------------------------------------- modular arithmetic
def test_modular_arithmetic_reports_size_and_data_counts(registry):
    spec = registry.problem("lm.modular_arithmetic")
    assert {"n_params", "train_samples", "train_tokens"} <= set(spec.reports)

    def build(**kw):
        return spec.factory(seed=0, device="cpu", dtype=torch.float32, **{**spec.params, "p": 7, "d": 16,
                                                                          "heads": 2, **kw})
    small = build()
    with torch.no_grad():
        first = small.evaluate()
    assert first["n_params"] == sum(p.numel() for p in small.model.parameters())
    assert build(d=32).evaluate()["n_params"] > first["n_params"]
    assert first["train_samples"] == first["train_tokens"] == 0
    n = len(small.y_train)
    for step in (1, 2, 3):  # full-batch steps: the whole training set each
        small.batch(step)
    with torch.no_grad():
        after = small.evaluate()
    assert after["train_samples"] == 3 * n and after["train_tokens"] == 3 * 3 * n
    mini = build(batch_size=5)
    for step in (1, 2):
        mini.batch(step)
    with torch.no_grad():
        assert mini.evaluate()["train_samples"] == 2 * 5
