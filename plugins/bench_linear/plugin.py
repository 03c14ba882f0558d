"""Entry point of the bench_linear plugin: registers its solvers, problems and metrics.

Each module contributes a function returning its specs; add yours to the lists below.
"""
from __future__ import annotations

import bench_core

from .collection import collection_problem_specs
from .deep_cd import deep_cd_specs
from .learned_pcg import learned_metric_specs, learned_pcg_specs
from .learning_to_relax import relax_metric_specs
from .matrices import matrix_problem_specs
from .matrix_market import matrix_market_problem_specs
from .reference import reference_specs
from .solvers import solver_specs

OPTIMIZER_SOURCES = [
    solver_specs,
    reference_specs,
    learned_pcg_specs,
    deep_cd_specs,
]

PROBLEM_SOURCES = [
    matrix_problem_specs,
    collection_problem_specs,
    matrix_market_problem_specs,
]

METRIC_SOURCES = [
    relax_metric_specs,
    learned_metric_specs,
]


@bench_core.hookimpl
def bench_optimizers():
    """Every solver of this plugin (ours and the scipy/pyamg adapters)."""
    return [spec for source in OPTIMIZER_SOURCES for spec in source()]


@bench_core.hookimpl
def bench_problems():
    """linear.spectrum, linear.gallery, linear.collection, linear.matrix_market."""
    return [spec for source in PROBLEM_SOURCES for spec in source()]


@bench_core.hookimpl
def bench_metrics():
    """The Learning-to-Relax totals and regrets; the learned solvers' training time."""
    return [spec for source in METRIC_SOURCES for spec in source()]
