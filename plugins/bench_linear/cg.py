"""linear.cg and linear.pcg: the (preconditioned) conjugate gradient method (Hestenes & Stiefel,
"Methods of Conjugate Gradients for Solving Linear Systems", 1952) for symmetric positive
definite A, in torch (CPU or CUDA). One matrix-vector product and one preconditioner
application per iteration:

    r0 = b − A x0,  z0 = M⁻¹ r0,  p0 = z0
    α = rᵀz / pᵀAp,  x += α p,  r −= α A p,  z = M⁻¹ r
    β = r_newᵀz_new / rᵀz,  p = z + β p

An "iteration" is one pass of this loop, as in scipy.sparse.linalg.cg.
"""
from __future__ import annotations

import torch

import bench_core

from .base import Solver, SolverError
from .preconditioners import make_preconditioner


class ConjugateGradient(Solver):
    """CG, or PCG with a preconditioner from ``preconditioners.PRECONDITIONERS``."""

    name = "linear.cg"
    needs_symmetric = True

    def __init__(self, precond: str = "none", omega: float = 1.0, degree: int = 4,
                 operator: str = "auto", rtol: float = 0.0):
        super().__init__(operator, rtol)
        self.precond_name, self.omega, self.degree = precond, omega, degree
        if precond != "none":
            self.name = "linear.pcg"

    def _setup(self, system: bench_core.LinearSystem) -> None:
        self.precond = make_preconditioner(self.precond_name, system, self.omega, self.degree)

    def solve(self, b: torch.Tensor, x0: torch.Tensor, maxiter: int, callback) -> torch.Tensor:
        """Iterate from x0 for at most maxiter iterations, calling callback(x) after each.

        The scalars (α, β, pᵀAp) are read back as Python floats once per iteration: the
        breakdown check needs pᵀAp anyway, and in-place axpys with float weights avoid temporaries.
        """
        plain = self.precond_name == "none"
        apply = self.precond.apply
        stop = self.threshold(b) ** 2
        x = x0.clone()
        r = b - self.matvec(x)
        z = r if plain else apply(r)
        p = z.clone()
        rz = float(torch.dot(r, z))
        rr = rz if plain else float(torch.dot(r, r))
        for _ in range(maxiter):
            ap = self.matvec(p)
            pap = float(torch.dot(p, ap))
            if not pap > 0:
                if rr == 0.0:
                    callback(x)
                    return x
                raise SolverError(f"{self.name} breakdown: pᵀAp = {pap:.3g} ≤ 0 "
                                  "(the matrix is not positive definite)")
            alpha = rz / pap
            x.add_(p, alpha=alpha)
            r.add_(ap, alpha=-alpha)
            z = r if plain else apply(r)
            rz_new = float(torch.dot(r, z))
            rr = rz_new if plain else float(torch.dot(r, r))
            callback(x)
            if rr == 0.0 or (stop and rr <= stop):  # an exact solution (rz = 0 would divide by zero)
                return x
            p.mul_(rz_new / rz).add_(z)
            rz = rz_new
        return x
