"""Entry point of the bench_optim plugin: registers its optimizers with bench_core.

Each module contributes a function returning its OptimizerSpecs; add yours to SPEC_SOURCES.
"""
from __future__ import annotations

import bench_core

from .shampoo import shampoo_specs
from .soap import soap_specs
from .heavyball_adapter import heavyball_specs
from .own_specs import own_optimizer_specs
from .pytorch_optimizer_adapter import pytorch_optimizer_specs
from .schedulefree_adapter import schedulefree_specs
from .schedules import with_schedule
from .torch_optim import torch_optimizer_specs
from .psgd import psgd_specs
from .kfac import kfac_specs
from .mfac import mfac_specs
from .adafisher import adafisher_specs
from .muon import muon_specs

SPEC_SOURCES = [
    torch_optimizer_specs,
    own_optimizer_specs,
    pytorch_optimizer_specs,
    schedulefree_specs,
    heavyball_specs,
    shampoo_specs,
    soap_specs,
    psgd_specs,
    kfac_specs,
    mfac_specs,
    adafisher_specs,
    muon_specs,
]


@bench_core.hookimpl
def bench_optimizers():
    """Every optimizer of this plugin, each taking the schedule hparams (see schedules.py)."""
    return [with_schedule(spec) for source in SPEC_SOURCES for spec in source()]
