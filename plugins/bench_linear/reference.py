"""Adapters that run the reference solvers under the same runner: scipy.sparse.linalg's cg, gmres,
bicgstab, minres, and pyamg's smoothed aggregation (SA) and Ruge–Stüben (RS) multigrid, alone
(one V-cycle per iteration) and as a CG preconditioner.

The solvers' own tolerance defaults to 0 (``rtol=0``) so that the runner's target decides when
to stop, as for our solvers; iteration counts then compare directly. They run on the host in
float64 (the system's scipy matrix); the runner moves x back to the problem's device to measure.

What one "iteration" (one callback) is:
- scipy.cg, scipy.bicgstab, scipy.minres: one iteration of the method (cg, minres: 1 matvec;
  bicgstab: 2), as ours.
- scipy.gmres: one restart cycle of `restart` Arnoldi steps (scipy calls back with x only once
  per cycle, ``callback_type='x'``); linear.gmres counts single Arnoldi steps instead. Compare
  them through the ``matvecs``-equivalent: steps × restart.
- pyamg.sa, pyamg.rs: one V-cycle; pyamg.sa_cg, pyamg.rs_cg: one preconditioned CG iteration
  (one V-cycle and one matvec).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as sla

import bench_core

from .base import SolverError
from .operators import check_square, is_symmetric


class _Reference:
    name = "scipy"
    needs_symmetric = False

    def __init__(self, rtol: float = 0.0):
        self.rtol = float(rtol)
        self.bench_counters = {}

    def setup(self, system: bench_core.LinearSystem) -> None:
        """Check the system and keep its scipy matrix."""
        try:
            check_square(system, self.name)
        except ValueError as exc:
            raise SolverError(str(exc)) from None
        if self.needs_symmetric and not is_symmetric(system):
            raise SolverError(f"{self.name} needs a symmetric matrix; {system.name or 'this system'}"
                              " is nonsymmetric")
        self.a = system.scipy()
        self._setup()

    def _setup(self) -> None:
        pass

    @staticmethod
    def host(v) -> np.ndarray:
        return v.detach().to("cpu").double().numpy().copy()


class ScipySolver(_Reference):
    """scipy.sparse.linalg.{cg, gmres, bicgstab, minres} with the runner's callback."""

    def __init__(self, method: str, rtol: float = 0.0, restart: int = 30):
        super().__init__(rtol)
        self.method = method
        self.name = f"scipy.{method}"
        self.needs_symmetric = method in ("cg", "minres")
        self.restart = int(restart)

    def solve(self, b, x0, maxiter, callback):
        """Run scipy's solver; its callback calls the runner's."""
        fn = getattr(sla, self.method)
        kw = {"rtol": self.rtol, "maxiter": maxiter, "callback": callback}
        if self.method != "minres":
            kw["atol"] = 0.0
        if self.method == "gmres":
            kw.update(restart=self.restart, callback_type="x")
        x, info = fn(self.a, self.host(b), self.host(x0), **kw)
        if info < 0:
            raise SolverError(f"{self.name} reported illegal input or breakdown (info={info})")
        return x


class PyamgSolver(_Reference):
    """pyamg multigrid (SA or RS), alone or accelerated by CG."""

    def __init__(self, method: str = "sa", accel: str = "", rtol: float = 0.0):
        super().__init__(rtol)
        if method not in ("sa", "rs"):
            raise ValueError("method must be 'sa' or 'rs'")
        self.method, self.accel = method, accel or None
        self.name = f"pyamg.{method}" + (f"_{accel}" if accel else "")
        self.needs_symmetric = self.accel == "cg"

    def _setup(self):
        import pyamg

        self.ml = (pyamg.smoothed_aggregation_solver(self.a) if self.method == "sa"
                   else pyamg.ruge_stuben_solver(self.a))
        self.bench_counters = {"levels": len(self.ml.levels)}

    def solve(self, b, x0, maxiter, callback):
        """Cycle (or run CG preconditioned by a V-cycle) with the runner's callback."""
        return self.ml.solve(self.host(b), x0=self.host(x0), tol=self.rtol, maxiter=maxiter,
                             accel=self.accel, callback=callback)


def _scipy_factory(method: str):
    def factory(rtol: float = 0.0, restart: int = 30):
        """A scipy.sparse.linalg solver adapter (``restart`` is used by gmres only)."""
        return ScipySolver(method, rtol, restart)
    return factory


def _pyamg_factory(method: str, accel: str):
    def factory(rtol: float = 0.0):
        """A pyamg multilevel solver adapter."""
        return PyamgSolver(method, accel, rtol)
    return factory


def reference_specs() -> list[bench_core.OptimizerSpec]:
    """scipy.cg, scipy.gmres, scipy.bicgstab, scipy.minres, pyamg.sa, pyamg.rs, pyamg.sa_cg, pyamg.rs_cg."""
    specs = []
    for method, what in (("cg", "conjugate gradient"), ("gmres", "restarted GMRES (iteration = cycle)"),
                         ("bicgstab", "BiCGSTAB"), ("minres", "MINRES")):
        specs.append(bench_core.OptimizerSpec(
            name=f"scipy.{method}", factory=_scipy_factory(method), kinds={"linear_system"},
            requires=set(), description=f"scipy.sparse.linalg {what} (reference)."))
    for method, label in (("sa", "smoothed aggregation"), ("rs", "Ruge–Stüben")):
        for accel in ("", "cg"):
            specs.append(bench_core.OptimizerSpec(
                name=f"pyamg.{method}" + (f"_{accel}" if accel else ""),
                factory=_pyamg_factory(method, accel), kinds={"linear_system"}, requires=set(),
                description=f"pyamg {label} multigrid" + (" as CG preconditioner" if accel else
                                                          ", one V-cycle per iteration") + " (reference)."))
    return specs
