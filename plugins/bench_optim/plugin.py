"""Entry point of the bench_optim plugin: registers its optimizers with bench_core.

Each module contributes a function returning its OptimizerSpecs; add yours to SPEC_SOURCES.
"""
from __future__ import annotations

import bench_core

from .shampoo import shampoo_specs
from .soap import soap_specs
from .torch_optim import torch_optimizer_specs

SPEC_SOURCES = [
    torch_optimizer_specs,
    shampoo_specs,
    soap_specs,
]


@bench_core.hookimpl
def bench_optimizers():
    """Every optimizer of this plugin."""
    return [spec for source in SPEC_SOURCES for spec in source()]
