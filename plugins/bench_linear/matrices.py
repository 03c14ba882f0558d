"""Linear-system problems that are not discretized PDEs of our own:

- linear.spectrum: A = Q diag(λ) Qᵀ, SPD with a prescribed spectrum: n eigenvalues between 1 and
  `condition`, spaced geometrically, uniformly, or "clustered" (all in [1, 2] but a few large
  outliers, where Krylov methods shine); Q a random orthogonal matrix per seed (stored dense as CSR).
- linear.gallery: the real matrices pyamg's wheel ships (pyamg/gallery/example_data), by name:
  airfoil, bar, knot, unit_square, unit_cube, local_disc_galerkin_diffusion, recirc_flow.
  Read from the installed package; nothing is downloaded.

Each draws its exact solution x* per seed and sets b = A x*.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

import bench_core


GALLERY = ("airfoil", "bar", "knot", "unit_square", "unit_cube", "local_disc_galerkin_diffusion",
           "recirc_flow")
SPACINGS = ("geometric", "uniform", "clustered")


def _system(a: sp.csr_matrix, x: np.ndarray, device, dtype, name: str, info: dict):
    return bench_core.LinearSystem.from_scipy(a, x_exact=x, device=device, dtype=dtype, name=name, info=info)


def spectrum_eigenvalues(n: int, condition: float, spacing: str) -> np.ndarray:
    """The n eigenvalues of linear.spectrum."""
    if spacing == "geometric":
        return np.geomspace(1.0, condition, n)
    if spacing == "uniform":
        return np.linspace(1.0, condition, n)
    if spacing == "clustered":
        lam = np.linspace(1.0, 2.0, n)
        k = max(1, n // 100)
        lam[-k:] = np.geomspace(condition, condition / 10, k)[::-1]
        return lam
    raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")


def spectrum(seed: int, device, dtype, n: int = 400, condition: float = 1e4,
             spacing: str = "geometric") -> bench_core.LinearSystemProblem:
    """SPD matrix Q diag(λ) Qᵀ with a prescribed spectrum."""
    if n < 2 or condition < 1:
        raise ValueError("need n >= 2 and condition >= 1")
    rng = np.random.default_rng(seed)
    lam = spectrum_eigenvalues(n, condition, spacing)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q *= np.sign(np.diag(r))
    a = (q * lam) @ q.T
    a = (a + a.T) / 2
    return bench_core.LinearSystemProblem([_system(
        sp.csr_matrix(a), rng.standard_normal(n), device, dtype, f"spectrum-{n}-{spacing}",
        {"n": n, "symmetric": True, "spd": True, "condition": condition})])


def load_gallery(name: str) -> sp.csr_matrix:
    """One of pyamg's shipped example matrices as scipy CSR (float64)."""
    if name not in GALLERY:
        raise ValueError(f"unknown matrix {name!r}; pyamg ships {', '.join(GALLERY)}")
    from pyamg.gallery import load_example

    return sp.csr_matrix(load_example(name)["A"], dtype=np.float64)


def gallery(seed: int, device, dtype, matrix: str = "airfoil") -> bench_core.LinearSystemProblem:
    """A real matrix from pyamg's example data, with a random exact solution."""
    a = load_gallery(matrix)
    diff = abs(a - a.T)
    symmetric = bool(diff.nnz == 0 or diff.max() <= 1e-10 * abs(a).max())
    spd = symmetric
    if symmetric and a.shape[0] <= 2000:  # a Cholesky factorization exists iff A is SPD
        try:
            np.linalg.cholesky(a.toarray())
        except np.linalg.LinAlgError:
            spd = False
    x = np.random.default_rng(seed).standard_normal(a.shape[0])
    return bench_core.LinearSystemProblem([_system(
        a, x, device, dtype, f"gallery-{matrix}",
        {"n": a.shape[0], "symmetric": symmetric, "spd": spd, "matrix": matrix})])


def matrix_problem_specs() -> list[bench_core.ProblemSpec]:
    """linear.spectrum, linear.gallery."""
    return [
        bench_core.ProblemSpec(
            name="linear.spectrum", kind="linear_system", factory=spectrum,
            params={"n": 400, "condition": 1e4, "spacing": "geometric"},
            targets={"rel_residual": 1e-8}, budget={"max_steps": 2000},
            reports=("rel_residual", "rel_error"),
            description="SPD Q diag(λ) Qᵀ with a prescribed spectrum (condition number, spacing)."),
        bench_core.ProblemSpec(
            name="linear.gallery", kind="linear_system", factory=gallery,
            params={"matrix": "airfoil"}, targets={"rel_residual": 1e-8},
            budget={"max_steps": 2000}, reports=("rel_residual", "rel_error"),
            description="pyamg's shipped real matrices by name: " + ", ".join(GALLERY) + "."),
    ]
