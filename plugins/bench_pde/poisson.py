"""pde.poisson2d and pde.poisson3d: −Δu = f on the unit square / cube, zero Dirichlet boundary,
5-point and 7-point finite differences.

On an n^d interior grid with h = 1/(n+1), A = Σ_k I ⊗ … ⊗ T ⊗ … ⊗ I / h² with
T = tridiag(−1, 2, −1): symmetric positive definite, condition number ~ 4/(π² h²). The exact
discrete solution x* is drawn per seed and b = A x*, so the error against x* is known exactly.
This module also holds the helpers the other discretized problems of bench_pde share.
"""
from __future__ import annotations


import numpy as np
import scipy.sparse as sp

import bench_core


def laplacian_1d(n: int) -> sp.csr_matrix:
    """tridiag(−1, 2, −1) of size n (unscaled)."""
    return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).tocsr()


def poisson2d_matrix(n: int) -> sp.csr_matrix:
    """The 5-point Laplacian on an n×n interior grid, scaled by 1/h² (scipy CSR, float64)."""
    h = 1.0 / (n + 1)
    t, eye = laplacian_1d(n), sp.identity(n)
    return ((sp.kron(t, eye) + sp.kron(eye, t)) / h**2).tocsr()


def poisson3d_matrix(n: int) -> sp.csr_matrix:
    """The 7-point Laplacian on an n×n×n interior grid, scaled by 1/h² (scipy CSR, float64)."""
    h = 1.0 / (n + 1)
    t, eye = laplacian_1d(n), sp.identity(n)
    a = sp.kron(sp.kron(t, eye), eye) + sp.kron(sp.kron(eye, t), eye) + sp.kron(sp.kron(eye, eye), t)
    return (a / h**2).tocsr()


def make_system(a: sp.csr_matrix, x: np.ndarray, device, dtype, name: str,
                info: dict) -> bench_core.LinearSystem:
    """The system A x = b with b = A x (x is the exact solution), A kept as scipy CSR too.

    ``info`` describes the matrix for solvers: ``symmetric``, ``spd``, and ``grid`` (the
    interior grid shape) with ``stencil`` when a matrix-free stencil applies.
    """
    return bench_core.LinearSystem.from_scipy(a, x_exact=x, device=device, dtype=dtype, name=name, info=info)


def poisson2d(seed: int, device, dtype, n: int = 64) -> bench_core.LinearSystemProblem:
    """The 2D Poisson system with a random exact solution."""
    if n < 2:
        raise ValueError("n must be at least 2")
    x = np.random.default_rng(seed).standard_normal(n * n)
    return bench_core.LinearSystemProblem([make_system(
        poisson2d_matrix(n), x, device, dtype, f"poisson2d-{n}",
        {"n": n, "symmetric": True, "spd": True, "grid": (n, n), "stencil": "laplace",
         "h": 1.0 / (n + 1)})])


def poisson3d(seed: int, device, dtype, n: int = 16) -> bench_core.LinearSystemProblem:
    """The 3D Poisson system with a random exact solution."""
    if n < 2:
        raise ValueError("n must be at least 2")
    x = np.random.default_rng(seed).standard_normal(n**3)
    return bench_core.LinearSystemProblem([make_system(
        poisson3d_matrix(n), x, device, dtype, f"poisson3d-{n}",
        {"n": n, "symmetric": True, "spd": True, "grid": (n, n, n), "stencil": "laplace",
         "h": 1.0 / (n + 1)})])


def poisson_problem_specs() -> list[bench_core.ProblemSpec]:
    """pde.poisson2d, pde.poisson3d."""
    return [
        bench_core.ProblemSpec(
            name="pde.poisson2d", kind="linear_system", factory=poisson2d, params={"n": 64},
            targets={"rel_residual": 1e-8}, budget={"max_steps": 2000},
            reports=("rel_residual", "rel_error"),
            description="2D Poisson, 5-point finite differences on an n×n grid (SPD)."),
        bench_core.ProblemSpec(
            name="pde.poisson3d", kind="linear_system", factory=poisson3d, params={"n": 16},
            targets={"rel_residual": 1e-8}, budget={"max_steps": 2000},
            reports=("rel_residual", "rel_error"),
            description="3D Poisson, 7-point finite differences on an n×n×n grid (SPD)."),
    ]


def residual_metric_specs() -> list[bench_core.MetricSpec]:
    """Directions of the values linear-system problems report."""
    return [
        bench_core.MetricSpec("rel_residual", None, higher_is_better=False, description="‖b − Ax‖ / ‖b‖"),
        bench_core.MetricSpec("rel_error", None, higher_is_better=False, description="‖x − x*‖ / ‖x*‖"),
    ]
