"""linear.jacobi, linear.sor, linear.ssor, linear.chebyshev: stationary and polynomial iterations.

With A = L + D + U (strict lower, diagonal, strict upper):
- weighted Jacobi:  x ← x + ω D⁻¹ (b − A x)
- SOR (Young, "Iterative Methods for Solving Partial Difference Equations of Elliptic Type",
  1950): (D/ω + L) x_new = b − (U + (1 − 1/ω) D) x; ω = 1 is Gauss–Seidel.
- SSOR: one forward and one backward SOR sweep per iteration.
- Chebyshev iteration (Golub & Varga, "Chebyshev semi-iterative methods...", 1961; Saad,
  "Iterative Methods for Sparse Linear Systems", Alg. 12.1) on [λmin, λmax] (from a short
  Lanczos run in setup unless given): θ = (λmax+λmin)/2, δ = (λmax−λmin)/2, σ = θ/δ,
  d0 = r0/θ; x += d; r −= A d; ρ_new = 1/(2σ − ρ); d = ρ_new ρ d + (2ρ_new/δ) r.
One iteration = one sweep (SOR), two sweeps (SSOR), one matvec (Jacobi, Chebyshev).
"""
from __future__ import annotations

import torch

import bench_core

from .base import Solver, SolverError
from .operators import SORSweep, diagonal


class Jacobi(Solver):
    """Weighted Jacobi iteration."""

    name = "linear.jacobi"

    def __init__(self, omega: float = 1.0, operator: str = "auto", rtol: float = 0.0):
        super().__init__(operator, rtol)
        self.omega = float(omega)

    def _setup(self, system):
        d = diagonal(system)
        if bool((d == 0).any()):
            raise SolverError("linear.jacobi needs a nonzero diagonal (the matrix has a zero on it)")
        self.scaled_inv_d = self.omega / d

    def solve(self, b, x0, maxiter, callback):
        """Iterate from x0, calling callback(x) after each sweep."""
        stop = self.threshold(b)
        x = x0.clone()
        for _ in range(maxiter):
            r = b - self.matvec(x)
            if stop and float(torch.linalg.vector_norm(r)) <= stop:
                return x
            x.addcmul_(self.scaled_inv_d, r)
            callback(x)
        return x


class SOR(Solver):
    """Successive over-relaxation with a fixed ω (or SSOR with ``symmetric=True``)."""

    name = "linear.sor"

    def __init__(self, omega: float = 1.5, symmetric: bool = False, operator: str = "auto",
                 rtol: float = 0.0):
        super().__init__(operator, rtol)
        if not 0 < omega < 2:
            raise ValueError(f"omega must lie in (0, 2), got {omega}")
        self.omega = float(omega)
        self.symmetric = bool(symmetric)
        if self.symmetric:
            self.name = "linear.ssor"
        self.bench_counters["sweeps"] = 0

    def _setup(self, system):
        try:
            self.sweeper = SORSweep(system, self.omega)
        except ValueError as exc:
            raise SolverError(f"{self.name}: {exc}") from None

    def solve(self, b, x0, maxiter, callback):
        """Iterate from x0, calling callback(x) after each (symmetric) sweep."""
        stop = self.threshold(b)
        x = x0.clone().contiguous()
        b = b.contiguous()
        for _ in range(maxiter):
            self.sweeper.sweep(x, b, forward=True)
            self.bench_counters["sweeps"] += 1
            if self.symmetric:
                self.sweeper.sweep(x, b, forward=False)
                self.bench_counters["sweeps"] += 1
            callback(x)
            if stop and float(torch.linalg.vector_norm(b - self.matvec(x))) <= stop:
                return x
        return x


def lanczos_bounds(op, like: torch.Tensor, steps: int = 40, seed: int = 0) -> tuple[float, float]:
    """The extreme Ritz values of a symmetric operator after `steps` Lanczos steps."""
    n = like.shape[0]
    steps = max(1, min(steps, n))
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(like.shape, generator=g, dtype=torch.float64).to(like)
    v /= torch.linalg.vector_norm(v)
    v_old = torch.zeros_like(v)
    alphas, betas = [], []
    beta = 0.0
    for k in range(steps):
        w = op(v) - beta * v_old
        alpha = float(torch.dot(w, v))
        w = w - alpha * v
        alphas.append(alpha)
        beta = float(torch.linalg.vector_norm(w))
        if beta <= 1e-12 * abs(alpha) or k == steps - 1:
            break
        betas.append(beta)
        v_old, v = v, w / beta
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        off = torch.tensor(betas, dtype=torch.float64)
        t += torch.diag(off, 1) + torch.diag(off, -1)
    ritz = torch.linalg.eigvalsh(t)
    return float(ritz[0]), float(ritz[-1])


class Chebyshev(Solver):
    """Chebyshev iteration for SPD A on an eigenvalue interval [lmin, lmax]."""

    name = "linear.chebyshev"
    needs_symmetric = True

    def __init__(self, lmin: float = 0.0, lmax: float = 0.0, lanczos_steps: int = 40,
                 operator: str = "auto", rtol: float = 0.0):
        super().__init__(operator, rtol)
        self.lmin, self.lmax, self.lanczos_steps = float(lmin), float(lmax), int(lanczos_steps)

    def _setup(self, system):
        lo, hi = self.lmin, self.lmax
        if lo <= 0 or hi <= 0:
            rlo, rhi = lanczos_bounds(self.op, system.b, self.lanczos_steps)
            self.bench_counters["matvecs"] += self.lanczos_steps
            lo = lo if lo > 0 else rlo
            hi = hi if hi > 0 else 1.05 * rhi
        if not 0 < lo < hi:
            raise SolverError(f"linear.chebyshev needs 0 < λmin < λmax, got [{lo:.3g}, {hi:.3g}] "
                              "(is the matrix positive definite?)")
        self.bounds = (lo, hi)

    def solve(self, b, x0, maxiter, callback):
        """Iterate from x0, calling callback(x) after each iteration."""
        stop = self.threshold(b)
        lo, hi = self.bounds
        theta, delta = (hi + lo) / 2, (hi - lo) / 2
        sigma = theta / delta
        rho = 1.0 / sigma
        x = x0.clone()
        r = b - self.matvec(x)
        d = r / theta
        for _ in range(maxiter):
            x.add_(d)
            r.sub_(self.matvec(d))
            callback(x)
            if stop and float(torch.linalg.vector_norm(r)) <= stop:
                return x
            rho_new = 1.0 / (2 * sigma - rho)
            d.mul_(rho_new * rho).add_(r, alpha=2 * rho_new / delta)
            rho = rho_new
        return x
