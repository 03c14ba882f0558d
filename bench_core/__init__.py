"""bench-core: a plugin-based benchmarking harness for optimizers and solvers.

The public API third-party plugins use::

    import bench_core

    @bench_core.hookimpl
    def bench_optimizers():
        return [bench_core.OptimizerSpec(name="mine.signsgd", factory=SignSGD,
                                         defaults={"lr": 1e-2},
                                         search_space={"lr": bench_core.LogUniform(1e-4, 1.0)})]
"""
from .errors import BenchInputError, UnknownNameError
from .hookspecs import hookimpl, hookspec
from .problems import (LinearSolver, LinearSystem, LinearSystemProblem, StopSolve, TrainingProblem, as_tensor,
                       csr_from_scipy)
from .registry import (Registry, build_registry, get_registry, metric_spec, optimizer_spec,
                       problem_spec, set_registry)
from .context import TrialContext
from .specs import Choice, LogUniform, MetricSpec, OptimizerSpec, ProblemSpec, Uniform

__version__ = "0.1.0"

__all__ = [
    "BenchInputError", "Choice", "LinearSolver", "LinearSystem", "LinearSystemProblem", "LogUniform",
    "MetricSpec", "OptimizerSpec", "ProblemSpec", "Registry", "StopSolve", "TrainingProblem",
    "TrialContext", "Uniform", "UnknownNameError", "as_tensor", "csr_from_scipy", "build_registry", "get_registry",
    "hookimpl", "hookspec", "metric_spec", "optimizer_spec", "problem_spec", "set_registry",
]
