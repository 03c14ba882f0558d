"""Entry point of the bench_linear plugin: registers its solvers."""
from __future__ import annotations

import bench_core

from .cg import ConjugateGradient


@bench_core.hookimpl
def bench_optimizers():
    """linear.cg."""
    return [bench_core.OptimizerSpec(
        name="linear.cg", factory=ConjugateGradient, kinds={"linear_system"}, requires=set(),
        description="Conjugate gradient (Hestenes–Stiefel), torch, CPU or CUDA.")]
