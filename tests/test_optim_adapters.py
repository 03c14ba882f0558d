"""Library adapters of bench_optim: pytorch-optimizer (po.*), schedulefree (sf.*), heavyball (hb.*).

The whole po.* catalogue was run through the conformance kit once (docs/optimizers.md lists who
fails and why); here a representative sample is checked on every run, passing and failing.
"""
from __future__ import annotations

import importlib.util
import inspect

import pytest
import torch

import bench_core
from bench_core.testing import check_optimizer


pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: one thread is faster and steadier


def test_po_catalogue_is_complete_with_library_defaults():
    from pytorch_optimizer import get_supported_optimizers, load_optimizer

    reg = bench_core.get_registry()
    for name in get_supported_optimizers():
        spec = reg.optimizer(f"po.{name}")
        lr = getattr(inspect.signature(load_optimizer(name)).parameters.get("lr"), "default", None)
        if lr is None:  # a2grad, alig, ...: step sizes of their own, nothing to search
            assert "lr" not in spec.defaults and "lr" not in spec.search_space
            continue
        assert spec.defaults["lr"] == lr
        space = spec.search_space["lr"]
        assert space.low < lr < space.high
    assert reg.optimizer("po.adahessian").requires == {"grad", "create_graph"}


#: A representative sample: Adam family, sign methods, second-order (create_graph), Shampoo/SOAP/Kron.
PO_PASSING = ["po.adabelief", "po.adan", "po.lamb", "po.lion", "po.madgrad", "po.soap", "po.kron",
              "po.adahessian", "po.sophiah", "po.schedulefreeadamw"]
#: And some that fail, with the check and the reason (see docs/optimizers.md for the full list).
PO_FAILING = {
    "po.prodigy": ("param_groups", "per-group lr is not honoured"),      # d-adaptation: one global step
    "po.adashift": ("state_dict", "weights_only"),                        # keeps a deque in its state
    "po.spectralsphere": ("progress", "only supports 2D parameters"),
    "po.lomo": ("progress", "has no attribute 'parameters'"),             # takes the model, own backward
    "po.sgdw": ("progress", "expected a decrease"),                       # default lr 1e-4 is too small
}


@pytest.mark.parametrize("name", PO_PASSING)
def test_po_sample_passes_the_kit(name):
    assert check_optimizer(bench_core.optimizer_spec(name)).passed


@pytest.mark.parametrize("name", sorted(PO_FAILING))
def test_po_known_failures_are_reported_with_their_reason(name):
    check, message = PO_FAILING[name]
    report = check_optimizer(bench_core.optimizer_spec(name), raise_on_failure=False)
    failed = {r.name: r.message for r in report.failures}
    assert check in failed and message in failed[check], str(report)


def test_po_with_a_larger_lr_makes_progress():
    assert check_optimizer(bench_core.optimizer_spec("po.sgdw"), {"lr": 0.05}).passed


def test_sf_factories_return_train_mode_and_take_library_hparams():
    from bench_core.suite import parse_suite

    spec = bench_core.optimizer_spec("sf.adamw")
    x = torch.zeros(3, requires_grad=True)
    opt = spec.factory([x], lr=0.1, warmup_steps=5)
    assert opt.param_groups[0]["train_mode"]
    suite = parse_suite({"problems": [{"name": "synthetic.quadratic"}],
                         "optimizers": [{"name": "sf.sgd", "hparams": {"warmup_steps": 10, "momentum": 0.5}}]},
                        "s.toml", bench_core.get_registry())
    assert suite.trials[0].hparams["warmup_steps"] == 10
    with pytest.raises(bench_core.BenchInputError, match="warmup_step"):
        parse_suite({"problems": [{"name": "synthetic.quadratic"}],
                     "optimizers": [{"name": "sf.sgd", "hparams": {"warmup_step": 10}}]},
                    "s.toml", bench_core.get_registry())


HAS_HEAVYBALL = importlib.util.find_spec("heavyball") is not None


def test_heavyball_specs_follow_the_installation():
    names = [n for n in bench_core.get_registry().optimizers if n.startswith("hb.")]
    if HAS_HEAVYBALL:
        assert {"hb.adamw", "hb.soap", "hb.psgdkron", "hb.muon"} <= set(names)
    else:
        assert names == []


@pytest.mark.parametrize("name", ["hb.adamw", "hb.soap"])
def test_heavyball_sample_passes_the_kit_eagerly(name):
    if not HAS_HEAVYBALL:
        assert name not in bench_core.get_registry().optimizers
        return
    assert check_optimizer(bench_core.optimizer_spec(name)).passed
    import heavyball.utils

    assert heavyball.utils.compile_mode is None
