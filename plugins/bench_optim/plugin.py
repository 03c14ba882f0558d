"""Entry point of the bench_optim plugin: registers its optimizers with bench_core."""
from __future__ import annotations

import bench_core

from .torch_optim import torch_optimizer_specs


@bench_core.hookimpl
def bench_optimizers():
    """torch.optim's optimizers as torch.<name>."""
    return torch_optimizer_specs()
