"""Adapter exposing pytorch-optimizer's whole catalogue as ``po.<name>``.

The catalogue is the library's own registry (``get_supported_optimizers`` / ``load_optimizer``);
each spec keeps the library's defaults and searches lr on a log scale around its default.
Optimizers that cannot run on a given problem (e.g. ones that only take 2-D parameters, or that
need distributed training) raise when built or stepped, and the runner records the trial as
status "error" with the library's message.
"""
from __future__ import annotations

import inspect

import bench_core

#: Optimizers whose step needs more than a plain gradient.
REQUIRES = {"adahessian": {"grad", "create_graph"}, "sophiah": {"grad", "create_graph"}}
#: Required constructor arguments the library gives no default for (our defaults).
EXTRA_DEFAULTS = {"ranger21": {"num_iterations": 1000}, "bsam": {"num_data": 1000}}

#: μP learning-rate family of each optimizer (OptimizerSpec.scaling; rules and refusals in
#: bench_core.lr_rules, the reasoning per family in docs/scaling.md). Read from each method's
#: update and checked by the update-size coordinate check (tests/test_mup_rules.py): entries of
#: Θ(1) per coordinate (Adam-normalized, sign-based, clipped like Sophia) take "adam"; plain
#: gradient steps "sgd"; a unit-Frobenius step per tensor "normalized"; steps already
#: width-independent by construction (Scion's operator-norm LMOs) "width_invariant".
SCALING = {
    **dict.fromkeys([
        "adabelief", "adagc", "adam", "adamax", "adamc", "adammini", "adamp", "adams", "adamw", "adamwsn",
        "adan", "adanorm", "adapnm", "adashift", "adatam", "ademamix", "adopt", "ano", "bcos", "came",
        "conda", "dash", "diffgrad", "dualadam", "emofact", "emolynx", "emonavi", "exadam", "fadam",
        "flashadamw", "focus", "grams", "grokfastadamw", "kron", "laprop", "lion", "mars", "nadam",
        "qhadam", "radam", "ranger", "ranger21", "rmsprop", "rose", "sara", "schedulefreeadamw",
        "schedulefreeradam", "signsgd", "simplifiedademamix", "sm3", "soap", "sophiah", "spam",
        "stableadamw", "stablespam", "tiger"], "adam"),
    **dict.fromkeys(["accsgd", "adai", "aggmo", "avagrad", "lomo", "msvag", "pid", "pnm", "qhm",
                     "scalableshampoo", "schedulefreesgd", "sgd", "sgdp", "sgdw", "tam"], "sgd"),
    "novograd": "normalized",
    **dict.fromkeys(["scion", "scionlight"], "width_invariant"),
    **dict.fromkeys(["adalite", "adalomo", "fromage", "lamb", "lars", "nero"], "relative"),
    **dict.fromkeys(["adamg", "dadaptadagrad", "dadaptadam", "dadaptadan", "dadaptlion", "dadaptsgd",
                     "prodigy"], "parameter_free"),
    **dict.fromkeys(["adago", "adamuon", "distributedmuon", "muon", "muonclip", "normuon"], "orthogonalized"),
    **dict.fromkeys(["adahessian", "apollodqn"], "curvature"),
    "lbfgs": "quasi_newton",
    **dict.fromkeys(["alig", "asgd"], "global_step"),
    **dict.fromkeys(["alice", "apollo", "fira", "galore", "lorarite"], "low_rank"),
    **dict.fromkeys(["amos", "sgdsai", "splus", "spectralsphere"], "own_scaling"),
    **dict.fromkeys(["adabound", "adadelta", "padam", "swats", "yogi"], "switching"),
    **dict.fromkeys(["a2grad", "adafactor", "ftrl", "srmm"], "ignores_lr"),
    **dict.fromkeys(["adamod", "adasmooth", "aida", "bsam", "demo", "gravity", "kate", "madgrad", "magma",
                     "racs", "shampoo", "vsgd"], "unverified"),
}


def _default_lr(cls) -> float | None:
    try:
        lr = inspect.signature(cls).parameters["lr"].default
    except (KeyError, TypeError, ValueError):
        return None
    return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 else None


def pytorch_optimizer_specs() -> list[bench_core.OptimizerSpec]:
    """One spec per optimizer of pytorch-optimizer (none if the library is not installed)."""
    try:
        from pytorch_optimizer import get_supported_optimizers, load_optimizer
    except ImportError:
        return []
    specs = []
    for name in sorted(get_supported_optimizers()):
        try:
            cls = load_optimizer(name)
        except Exception:  # a catalogue entry the library cannot load here: leave it out
            continue
        lr = _default_lr(cls)
        space = {"lr": bench_core.LogUniform(lr / 30, lr * 30)} if lr else {}
        doc = (inspect.getdoc(cls) or "").split("\n")[0]
        specs.append(bench_core.OptimizerSpec(
            name=f"po.{name}", factory=cls, defaults={**({"lr": lr} if lr else {}), **EXTRA_DEFAULTS.get(name, {})},
            search_space=space,
            requires=REQUIRES.get(name, {"grad"}), scaling=SCALING.get(name, "unverified"),
            description=f"pytorch-optimizer {cls.__name__}: {doc}"))
    return specs
