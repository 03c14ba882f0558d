"""What every bench_linear solver shares: input checks, the operator, counters, own stopping.

A solver object follows ``bench_core.LinearSolver``: ``setup(system)`` (checks, operator,
preconditioner) and ``solve(b, x0, maxiter, callback)`` calling ``callback(x)`` after every
iteration. Solvers never decide on their own to stop unless given ``rtol > 0`` (then they stop
when their own recursively updated residual estimate falls below rtol·‖b‖, as scipy's solvers
do); in the suites the runner's target decides, so iteration counts compare across solvers.
"""
from __future__ import annotations

import torch

import bench_core

from .operators import Operator, check_square, is_symmetric


class SolverError(ValueError):
    """A solver cannot handle this system (wrong shape, nonsymmetric, breakdown)."""


class Solver:
    """Base class: subclasses set ``name`` and the flags and implement ``_setup`` and ``solve``."""

    name = "linear.solver"
    needs_symmetric = False

    def __init__(self, operator: str = "auto", rtol: float = 0.0):
        self.operator = operator
        self.rtol = float(rtol)
        self.system = None
        self.bench_counters = {"matvecs": 0}

    def setup(self, system: bench_core.LinearSystem) -> None:
        """Check the system, build the operator and whatever the method needs."""
        try:
            check_square(system, self.name)
        except ValueError as exc:
            raise SolverError(str(exc)) from None
        if self.needs_symmetric and not is_symmetric(system):
            raise SolverError(f"{self.name} needs a symmetric matrix; {system.name or 'this system'}"
                              " is nonsymmetric (use linear.gmres or linear.bicgstab)")
        self.system = system
        self.op = Operator(system, self.operator)
        self._setup(system)

    def _setup(self, system: bench_core.LinearSystem) -> None:
        pass

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """A x, counted."""
        self.bench_counters["matvecs"] += 1
        return self.op(x)

    def threshold(self, b: torch.Tensor) -> float:
        """The absolute residual norm at which the solver stops on its own (0: never)."""
        return self.rtol * float(torch.linalg.vector_norm(b)) if self.rtol > 0 else 0.0

    def solve(self, b: torch.Tensor, x0: torch.Tensor, maxiter: int, callback) -> torch.Tensor:
        raise NotImplementedError
