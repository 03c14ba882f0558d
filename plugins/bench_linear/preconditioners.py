"""Preconditioners z = M⁻¹ r for the Krylov solvers, built once per matrix in ``setup``.

- ``jacobi``: M = D.
- ``ssor``: M = ω/(2−ω) (D/ω + L) (D/ω)⁻¹ (D/ω + U); applied as one forward and one backward
  SOR sweep from zero.
- ``ic0``: incomplete Cholesky with the sparsity of tril(A), M = L Lᵀ (with a diagonal shift
  α·diag(A) retried when a pivot breaks down, Manteuffel 1980).
- ``chebyshev``: the degree-k Chebyshev polynomial of A on [λmax/ratio, λmax] (λmax from a
  few power iterations), applied as k Chebyshev steps from zero; a fixed SPD polynomial.
- ``symmetric_poly``: the symmetric-polynomial preconditioner of Doikov & Rodomanov,
  "Polynomial Preconditioning for Gradient Methods" (2023): P_τ(A) = Σ_j (−1)^j σ_{τ−j} A^j, where
  σ_k are the elementary symmetric polynomials of A's eigenvalues (from exact traces, τ ≤ 2).
  The eigenvalues of P_τ A are λ_i · σ_τ(λ without λ_i): the gaps between the largest eigenvalues
  are cut without knowing the spectrum.
- ``amg_sa`` / ``amg_rs``: one V-cycle of a pyamg smoothed-aggregation / Ruge–Stüben hierarchy
  (on the host; the vector is moved there and back on other devices).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

import bench_core

from .operators import NUMPY_DTYPES, Operator, SORSweep, TriangularSweep, diagonal

PRECONDITIONERS = ("none", "jacobi", "ssor", "ic0", "chebyshev", "symmetric_poly", "amg_sa", "amg_rs")


class Identity:
    """M = I."""

    symmetric = True

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        return r


class Jacobi:
    """M = diag(A)."""

    symmetric = True

    def __init__(self, system: bench_core.LinearSystem):
        d = diagonal(system)
        if bool((d == 0).any()):
            raise ValueError("Jacobi preconditioner: the matrix has a zero on its diagonal")
        self.inv_d = 1.0 / d

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        return r * self.inv_d


class SSOR:
    """Symmetric SOR: one forward and one backward sweep from zero, scaled by (2−ω)."""

    symmetric = True

    def __init__(self, system: bench_core.LinearSystem, omega: float = 1.0):
        self.sweep = SORSweep(system, omega)
        self.scale = 2.0 - omega

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        z = torch.zeros_like(r)
        self.sweep.sweep(z, r, forward=True)
        self.sweep.sweep(z, r, forward=False)
        return z.mul_(self.scale)


def ic0_factor(a: sp.csr_matrix, shift: float = 0.0) -> sp.csr_matrix:
    """The IC(0) factor L (lower CSR, pattern of tril(A)) of A + shift·diag(A).

    Row-by-row (left-looking) on the sparsity of tril(A); a dense pattern is factorized exactly.
    Raises ArithmeticError when a pivot is not positive.
    """
    n = a.shape[0]
    low = sp.tril(a).tocsr()
    low.sort_indices()
    if low.nnz > 0.4 * n * (n + 1) / 2:  # (nearly) dense: IC(0) is the full Cholesky factor
        dense = a.toarray() + shift * np.diag(a.diagonal())
        try:
            return sp.csr_matrix(np.linalg.cholesky(dense))
        except np.linalg.LinAlgError as exc:
            raise ArithmeticError("non-positive pivot") from exc
    indptr, indices, data = low.indptr, low.indices, low.data.astype(np.float64).copy()
    rows: list[dict] = []
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        cols, vals = indices[lo:hi], data[lo:hi]
        row: dict = {}
        diag = None
        for j, v in zip(cols.tolist(), vals.tolist()):
            if j < i:
                rj = rows[j]
                s = v - sum(lv * rj[k] for k, lv in row.items() if k in rj)
                row[j] = s / rj[j]
            elif j == i:
                diag = v * (1.0 + shift)
        if diag is None:
            raise ArithmeticError(f"zero diagonal in row {i}")
        pivot = diag - sum(lv * lv for lv in row.values())
        if not pivot > 0:
            raise ArithmeticError(f"non-positive pivot in row {i}")
        row[i] = math.sqrt(pivot)
        rows.append(row)
        data[lo:hi] = [row[j] for j in cols.tolist()]
    return sp.csr_matrix((data, indices, indptr), shape=a.shape)


class IncompleteCholesky:
    """IC(0): M = L Lᵀ; applied as two triangular solves."""

    symmetric = True

    def __init__(self, system: bench_core.LinearSystem):
        a = system.scipy()
        self.shift = 0.0
        for shift in (0.0, 1e-3, 1e-2, 1e-1, 1.0):
            try:
                low = ic0_factor(a, shift)
                self.shift = shift
                break
            except ArithmeticError:
                continue
        else:
            raise ValueError("IC(0): the factorization broke down even with a diagonal shift "
                             "(is the matrix positive definite?)")
        self.lower = TriangularSweep(low, lower=True, like=system.b)
        self.upper = TriangularSweep(low.T.tocsr(), lower=False, like=system.b)

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        return self.upper.solve(self.lower.solve(r))


def power_lambda_max(op, like: torch.Tensor, steps: int = 30, seed: int = 0) -> float:
    """An estimate of λmax(A) by power iteration (A symmetric), with a 5% safety margin."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(like.shape, generator=g, dtype=torch.float64).to(like)
    v /= torch.linalg.vector_norm(v)
    lam = 0.0
    for _ in range(steps):
        w = op(v)
        lam = float(torch.dot(v, w))
        nrm = torch.linalg.vector_norm(w)
        if float(nrm) == 0.0:
            break
        v = w / nrm
    return 1.05 * lam


class ChebyshevPolynomial:
    """p(A) r: `degree` Chebyshev steps from zero on [λmax/ratio, λmax]."""

    symmetric = True

    def __init__(self, system: bench_core.LinearSystem, degree: int = 4, ratio: float = 30.0):
        self.op = Operator(system)
        hi = power_lambda_max(self.op, system.b)
        self.lo, self.hi, self.degree = hi / ratio, hi, int(degree)
        self.matvecs = 0

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        theta, delta = (self.hi + self.lo) / 2, (self.hi - self.lo) / 2
        sigma = theta / delta
        rho = 1.0 / sigma
        z = torch.zeros_like(r)
        res = r.clone()
        d = res / theta
        for k in range(self.degree):
            z.add_(d)
            if k == self.degree - 1:
                break
            res.sub_(self.op(d))
            self.matvecs += 1
            rho_new = 1.0 / (2 * sigma - rho)
            d.mul_(rho_new * rho).add_(res, alpha=2 * rho_new / delta)
            rho = rho_new
        return z


class SymmetricPolynomial:
    """P_τ(A) = Σ_{j=0}^{τ} (−1)^j σ_{τ−j} A^j (Doikov & Rodomanov), τ ∈ {1, 2}, scaled by 1/σ_τ."""

    symmetric = True

    def __init__(self, system: bench_core.LinearSystem, degree: int = 2):
        if degree not in (1, 2):
            raise ValueError("symmetric_poly: degree must be 1 or 2 (exact traces)")
        a = system.scipy()
        s1 = float(a.diagonal().sum())                  # tr A
        s2 = (s1 * s1 - float(a.multiply(a.T).sum())) / 2  # (tr² A − tr A²) / 2
        self.s1, self.s2 = s1, s2
        self.scale = 1.0 / (s1 if degree == 1 else s2)
        self.op = Operator(system)
        self.degree = degree
        self.matvecs = 0

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        # τ = 1: P r = σ1 r − A r;  τ = 2: P r = σ2 r + A (A r − σ1 r)
        ar = self.op(r)
        self.matvecs += 1
        if self.degree == 1:
            return (self.s1 * r - ar) * self.scale
        z = self.op(ar - self.s1 * r)
        self.matvecs += 1
        return (z + self.s2 * r) * self.scale


class AMG:
    """One pyamg V-cycle (smoothed aggregation or Ruge–Stüben) as M⁻¹."""

    symmetric = True

    def __init__(self, system: bench_core.LinearSystem, method: str = "sa"):
        import pyamg

        a = system.scipy()
        self.ml = (pyamg.smoothed_aggregation_solver(a) if method == "sa"
                   else pyamg.ruge_stuben_solver(a))
        self.m = self.ml.aspreconditioner(cycle="V")

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        host = r.detach().to("cpu", torch.float64).numpy()
        return torch.from_numpy(np.asarray(self.m @ host)).to(r)


def make_preconditioner(name: str, system: bench_core.LinearSystem, omega: float = 1.0,
                        degree: int = 4):
    """The preconditioner `name` (one of PRECONDITIONERS) for `system`."""
    if name == "none":
        return Identity()
    if name == "jacobi":
        return Jacobi(system)
    if name == "ssor":
        return SSOR(system, omega)
    if name == "ic0":
        return IncompleteCholesky(system)
    if name == "chebyshev":
        return ChebyshevPolynomial(system, degree)
    if name == "symmetric_poly":
        return SymmetricPolynomial(system, min(degree, 2))
    if name in ("amg_sa", "amg_rs"):
        return AMG(system, name[4:])
    raise ValueError(f"unknown preconditioner {name!r}; expected one of {', '.join(PRECONDITIONERS)}")


__all__ = ["PRECONDITIONERS", "make_preconditioner", "NUMPY_DTYPES"]
