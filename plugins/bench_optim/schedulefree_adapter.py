"""Adapter exposing the schedulefree package: ``sf.adamw``, ``sf.sgd``, ``sf.radam``.

Schedule-free optimizers evaluate at a different point than they train at; they must be in
train mode to step and in eval mode to be evaluated. The factories return them in train mode,
and the runner calls ``optimizer.eval()`` / ``optimizer.train()`` around every evaluation.
"""
from __future__ import annotations

import inspect

import bench_core

CLASSES = {"adamw": "AdamWScheduleFree", "sgd": "SGDScheduleFree", "radam": "RAdamScheduleFree"}
#: μP learning-rate family of each (OptimizerSpec.scaling, see bench_core.parametrization).
SCALING = {"adamw": "adam", "sgd": "sgd", "radam": "adam"}


def _train_mode_factory(cls):
    def factory(params, **hparams):
        optimizer = cls(params, **hparams)
        optimizer.train()
        return optimizer

    factory.__signature__ = inspect.signature(cls)  # explicit keywords: the suite checks hparams
    factory.__name__ = cls.__name__
    factory.__doc__ = f"{cls.__name__}, switched to train mode."
    return factory


def schedulefree_specs() -> list[bench_core.OptimizerSpec]:
    """sf.adamw, sf.sgd, sf.radam (none if schedulefree is not installed)."""
    try:
        import schedulefree
    except ImportError:
        return []
    specs = []
    for short, cls_name in CLASSES.items():
        cls = getattr(schedulefree, cls_name, None)
        if cls is None:
            continue
        lr = inspect.signature(cls).parameters["lr"].default
        specs.append(bench_core.OptimizerSpec(
            name=f"sf.{short}", factory=_train_mode_factory(cls), defaults={"lr": lr},
            search_space={"lr": bench_core.LogUniform(lr / 30, lr * 30)},
            description=f"schedulefree {cls_name} (Defazio et al.): no schedule needed, eval/train switched",
            scaling=SCALING[short]))
    return specs
