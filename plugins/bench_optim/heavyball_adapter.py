"""Adapter exposing heavyball's optimizers as ``hb.<lowercase class name>`` (optional extra).

heavyball compiles its update functions with torch.compile by default; the adapter switches it
to eager mode (``heavyball.utils.compile_mode = None``) when a heavyball optimizer is built, so
that it runs on CPU and timings do not include compilation. Base classes and wrappers that need
another optimizer (``SAMWrapper``, ``SplitOpt``) are left out. Without heavyball installed
(``pip install bench-core[heavyball]``) there are no ``hb.*`` specs.
"""
from __future__ import annotations

import inspect

import torch

import bench_core

LEFT_OUT = {"PSGDBase", "SOAPBase", "SAMWrapper", "SplitOpt"}


def _eager_factory(cls):
    def factory(params, **hparams):
        import heavyball.utils

        heavyball.utils.compile_mode = None
        return cls(params, **hparams)

    factory.__signature__ = inspect.signature(cls)  # explicit keywords: the suite checks hparams
    factory.__name__ = cls.__name__
    factory.__doc__ = f"heavyball.{cls.__name__}, eager."
    return factory


def heavyball_specs() -> list[bench_core.OptimizerSpec]:
    """One spec per heavyball optimizer (none if heavyball is not installed)."""
    try:
        import heavyball
    except ImportError:
        return []
    specs = []
    for name in sorted(dir(heavyball)):
        cls = getattr(heavyball, name)
        if (not inspect.isclass(cls) or not issubclass(cls, torch.optim.Optimizer) or name in LEFT_OUT
                or name.startswith("_")):
            continue
        try:
            lr = inspect.signature(cls).parameters["lr"].default
        except (KeyError, TypeError, ValueError):
            lr = None
        ok = isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0
        specs.append(bench_core.OptimizerSpec(
            name=f"hb.{name.lower()}", factory=_eager_factory(cls), defaults={"lr": lr} if ok else {},
            search_space={"lr": bench_core.LogUniform(lr / 30, lr * 30)} if ok else {},
            scaling="unverified",  # heavyball is an optional extra: its updates are not checked under μP
            description=f"heavyball {name} (eager): {(inspect.getdoc(cls) or '').splitlines()[0] if inspect.getdoc(cls) else ''}"))
    return specs
