"""bench-core: a plugin-based benchmarking harness for optimizers and solvers.

The public API third-party plugins use::

    import bench_core

    @bench_core.hookimpl
    def bench_optimizers():
        return [bench_core.OptimizerSpec(name="mine.signsgd", factory=SignSGD,
                                         defaults={"lr": 1e-2},
                                         search_space={"lr": bench_core.LogUniform(1e-4, 1.0)})]

``import bench_core`` is light: the names below are imported from their modules on first use
(PEP 562), so code that only reads results (``bench show``, ``bench compare``...) never loads
torch.
"""
from __future__ import annotations

import importlib

from .errors import AmbiguousNameError, BenchInputError, UnknownNameError
from .threads import quiet_openmp as _quiet_openmp

_quiet_openmp()  # idle OpenMP threads sleep: set before torch loads, for `bench` and library users alike
from .hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

# public name -> the submodule that defines it, imported on first access
_LAZY = {
    **dict.fromkeys(["LinearSolver", "LinearSystem", "LinearSystemProblem", "ParamRole", "ROLES", "StopSolve",
                     "TrainingProblem", "as_tensor", "csr_from_scipy"], "problems"),
    **dict.fromkeys(["PARAMETRIZATIONS", "ScaledLinear", "param_groups"], "parametrization"),
    **dict.fromkeys(["Registry", "build_registry", "get_registry", "metric_spec", "optimizer_spec",
                     "problem_spec", "set_registry"], "registry"),
    "TrialContext": "context",
    **dict.fromkeys(["Results", "read_results"], "results"),
    **dict.fromkeys(["Choice", "LogUniform", "MetricSpec", "OptimizerSpec", "ProblemSpec", "Uniform"], "specs"),
}

__all__ = [
    "AmbiguousNameError", "BenchInputError", "Choice", "LinearSolver", "LinearSystem", "LinearSystemProblem", "LogUniform",
    "MetricSpec", "OptimizerSpec", "PARAMETRIZATIONS", "ParamRole", "ProblemSpec", "ROLES", "Registry",
    "ScaledLinear", "StopSolve", "TrainingProblem",
    "TrialContext", "Uniform", "UnknownNameError", "as_tensor", "csr_from_scipy", "build_registry", "get_registry",
    "hookimpl", "hookspec", "metric_spec", "optimizer_spec", "param_groups", "problem_spec", "set_registry",
    "Results", "read_results",
]


def __getattr__(name: str):
    """Import a public name from its submodule on first access and cache it here."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazy public ones included."""
    return sorted(set(globals()) | set(__all__))
