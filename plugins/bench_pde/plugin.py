"""Entry point of the bench_pde plugin: registers its problems and the metrics they report.

Each module contributes a function returning its specs; add yours to PROBLEM_SOURCES or
METRIC_SOURCES.
"""
from __future__ import annotations

import bench_core

from .diffusion import diffusion_problem_specs
from .heat import heat_problem_specs
from .fno_darcy import fno_problem_specs
from .pinn import learning_metric_specs, pinn_problem_specs
from .poisson import poisson_problem_specs, residual_metric_specs

PROBLEM_SOURCES = [
    poisson_problem_specs,
    diffusion_problem_specs,
    heat_problem_specs,
    pinn_problem_specs,
    fno_problem_specs,
]

METRIC_SOURCES = [
    residual_metric_specs,
    learning_metric_specs,
]


@bench_core.hookimpl
def bench_problems():
    """Every problem of this plugin."""
    return [spec for source in PROBLEM_SOURCES for spec in source()]


@bench_core.hookimpl
def bench_metrics():
    """Every metric this plugin's problems report."""
    return [spec for source in METRIC_SOURCES for spec in source()]
