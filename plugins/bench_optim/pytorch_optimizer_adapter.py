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
            requires=REQUIRES.get(name, {"grad"}),
            description=f"pytorch-optimizer {cls.__name__}: {doc}"))
    return specs
