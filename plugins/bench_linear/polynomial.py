"""linear.poly_gm: the gradient method with adaptive polynomial preconditioning, after Doikov &
Rodomanov, "Polynomial Preconditioning for Gradient Methods" (2023), for SPD A, where the
objective is f(x) = ½ xᵀAx − bᵀx and its gradient is g = A x − b.

Each iteration takes the step x ← x − p(A) g with the polynomial p of degree < τ chosen
adaptively: the one that minimizes f along the low-dimensional Krylov subspace
x + span{g, A g, …, A^{τ−1} g} (the paper's adaptive search). With the basis
K = [g, Ag, …] (orthonormalized), c = (KᵀAK)⁻¹ Kᵀg and x ← x − K c. τ matvecs per iteration;
τ = 1 is steepest descent with exact line search. With ``precond`` (e.g. the paper's fixed
symmetric-polynomial preconditioner P_τ, ``symmetric_poly`` in preconditioners.py) the search
space is span{P g, (P A) P g, …}: degree=1 with precond="symmetric_poly" is the paper's
preconditioned Gradient Method with exact line search.
"""
from __future__ import annotations

import torch

from .base import Solver
from .preconditioners import make_preconditioner


class PolynomialGradient(Solver):
    """Gradient method, step p(A) g with p chosen per iteration over a degree-τ Krylov space."""

    name = "linear.poly_gm"
    needs_symmetric = True

    def __init__(self, degree: int = 4, precond: str = "none", precond_degree: int = 1,
                 operator: str = "auto", rtol: float = 0.0):
        super().__init__(operator, rtol)
        if degree < 1:
            raise ValueError("degree must be at least 1")
        self.degree = int(degree)
        self.precond_name, self.precond_degree = precond, int(precond_degree)

    def _setup(self, system):
        self.precond = make_preconditioner(self.precond_name, system, degree=self.precond_degree)

    def solve(self, b, x0, maxiter, callback):
        """Iterate from x0, calling callback(x) after each (τ-matvec) step."""
        stop = self.threshold(b)
        x = x0.clone()
        g = self.matvec(x) - b
        for _ in range(maxiter):
            gn = float(torch.linalg.vector_norm(g))
            if gn == 0.0 or (stop and gn <= stop):
                callback(x)
                return x
            basis, images = [], []
            v = self.precond.apply(g)
            v = v / torch.linalg.vector_norm(v)
            for _k in range(self.degree):
                av = self.matvec(v)
                basis.append(v)
                images.append(av)
                w = self.precond.apply(av)
                for q in basis:  # Gram–Schmidt keeps the small system well conditioned
                    w = w - torch.dot(w, q) * q
                wn = float(torch.linalg.vector_norm(w))
                if wn <= 1e-12 * gn:
                    break
                v = w / wn
            k = len(basis)
            # the k×k Gram matrix by dot products (a thin GEMM is slow on busy multi-threaded CPUs)
            gram = torch.tensor([[float(torch.dot(basis[i], images[j])) for j in range(k)]
                                 for i in range(k)], dtype=torch.float64)
            gram = (gram + gram.T) / 2
            rhs = torch.tensor([[float(torch.dot(q, g))] for q in basis], dtype=torch.float64)
            c = torch.linalg.lstsq(gram, rhs).solution[:, 0].tolist()
            for ci, q, aq in zip(c, basis, images):
                x = x - ci * q
                g = g - ci * aq
            callback(x)
        return x
