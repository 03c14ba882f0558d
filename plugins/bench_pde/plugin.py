"""Entry point of the bench_pde plugin: registers its problems."""
from __future__ import annotations

import bench_core

from .poisson import poisson2d


@bench_core.hookimpl
def bench_problems():
    """pde.poisson2d."""
    return [bench_core.ProblemSpec(
        name="pde.poisson2d", kind="linear_system", factory=poisson2d, params={"n": 64},
        targets={"rel_residual": 1e-8}, budget={"max_steps": 2000},
        description="2D Poisson, 5-point finite differences on an n×n grid (SPD).")]


@bench_core.hookimpl
def bench_metrics():
    """Directions of the values linear-system problems report."""
    return [
        bench_core.MetricSpec("rel_residual", None, higher_is_better=False, description="‖b − Ax‖ / ‖b‖"),
        bench_core.MetricSpec("rel_error", None, higher_is_better=False, description="‖x − x*‖ / ‖x*‖"),
    ]
