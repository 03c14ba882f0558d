"""linear.cg: the conjugate gradient method (Hestenes & Stiefel, "Methods of Conjugate Gradients
for Solving Linear Systems", 1952) for symmetric positive definite A, in torch (CPU or CUDA).

    r0 = b − A x0,  p0 = r0
    α = rᵀr / pᵀAp,  x += α p,  r_new = r − α A p
    β = r_newᵀr_new / rᵀr,  p = r_new + β p
"""
from __future__ import annotations

import torch

import bench_core


class ConjugateGradient:
    """Plain CG; one matrix-vector product per iteration."""

    def __init__(self):
        self.system = None
        self.bench_counters = {"matvecs": 0}

    def setup(self, system: bench_core.LinearSystem) -> None:
        """Keep the operator."""
        self.system = system

    def solve(self, b: torch.Tensor, x0: torch.Tensor, maxiter: int, callback) -> torch.Tensor:
        """Iterate from x0 for at most maxiter iterations, calling callback(x) after each."""
        matvec = self.system.matvec
        x = x0.clone()
        r = b - matvec(x)
        self.bench_counters["matvecs"] += 1
        p = r.clone()
        rr = torch.dot(r, r)
        for _ in range(maxiter):
            ap = matvec(p)
            self.bench_counters["matvecs"] += 1
            alpha = rr / torch.dot(p, ap)
            x.add_(alpha * p)
            r.sub_(alpha * ap)
            rr_new = torch.dot(r, r)
            callback(x)
            p.mul_(rr_new / rr).add_(r)
            rr = rr_new
        return x
