"""Adapter exposing every torch.optim optimizer as ``torch.<lowercase class name>``."""
from __future__ import annotations

import inspect

import torch

import bench_core

#: Defaults that differ from torch's own, where torch's would make a poor baseline.
DEFAULTS = {
    "SGD": {"lr": 1e-2, "momentum": 0.9},
    "LBFGS": {"lr": 1.0, "line_search_fn": "strong_wolfe"},
    "Adam": {"lr": 1e-3},
    "AdamW": {"lr": 1e-3, "weight_decay": 1e-2},
}
#: μP learning-rate families (OptimizerSpec.scaling, rules and refusals in bench_core.lr_rules):
#: updates normalized per entry (Adam-type, sign-like; SparseAdam for sparse gradients) and plain
#: gradient steps; the others refuse μP with their family's reason ("unverified" for a class
#: a later torch adds).
SCALING = {**dict.fromkeys(["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "RMSprop", "Rprop",
                            "SparseAdam"], "adam"),
           "SGD": "sgd", "ASGD": "sgd", "Adadelta": "switching", "Adafactor": "relative",
           "LBFGS": "quasi_newton", "Muon": "orthogonalized"}
LR_SPACE = {"LBFGS": bench_core.LogUniform(1e-2, 1.0), "Adadelta": bench_core.LogUniform(1e-2, 10.0)}


def torch_optimizer_classes() -> dict[str, type]:
    """Every public torch.optim.Optimizer subclass, keyed by class name."""
    return {name: cls for name, cls in vars(torch.optim).items()
            if inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)
            and cls is not torch.optim.Optimizer and not name.startswith("_")}


def torch_optimizer_specs() -> list[bench_core.OptimizerSpec]:
    """One OptimizerSpec per torch.optim optimizer."""
    specs = []
    for name, cls in sorted(torch_optimizer_classes().items()):
        doc = (inspect.getdoc(cls) or "").split("\n")[0]
        specs.append(bench_core.OptimizerSpec(
            name=f"torch.{name.lower()}", factory=cls, defaults=dict(DEFAULTS.get(name, {})),
            search_space={"lr": LR_SPACE.get(name, bench_core.LogUniform(1e-5, 1.0))},
            description=f"torch.optim.{name}: {doc}", scaling=SCALING.get(name, "unverified")))
    return specs
