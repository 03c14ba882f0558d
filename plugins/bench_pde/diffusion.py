"""Harder 2D elliptic problems on the unit square (zero Dirichlet boundary, n×n interior grid):

- pde.anisotropic: −∇·(K∇u) with K = R(θ) diag(1, ε) R(θ)ᵀ, 9-point finite differences
  (pyamg.gallery.diffusion_stencil_2d); SPD, hard for point smoothers when ε ≪ 1 or θ ∉ {0, π/2}.
- pde.jumping: −∇·(κ∇u) with κ piecewise constant on a checkerboard of `blocks`² squares,
  alternating 1 and `contrast`; 5-point stencil with harmonic means on faces; SPD.
- pde.convdiff: −Δu + Pe·w·∇u with w = (cos φ, sin φ), first-order upwind convection;
  nonsymmetric, an M-matrix for every Péclet number.

Each draws its exact solution x* per seed and sets b = A x*.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

import bench_core

from .poisson import laplacian_1d, make_system


def anisotropic_matrix(n: int, epsilon: float, theta: float) -> sp.csr_matrix:
    """The rotated anisotropic diffusion matrix, scaled by 1/h²."""
    from pyamg.gallery import diffusion_stencil_2d, stencil_grid

    stencil = diffusion_stencil_2d(epsilon=epsilon, theta=theta, type="FD")
    return sp.csr_matrix(stencil_grid(stencil, (n, n), format="csr")) * (n + 1) ** 2


def jumping_matrix(n: int, contrast: float, blocks: int) -> sp.csr_matrix:
    """−∇·(κ∇u) with a checkerboard κ ∈ {1, contrast}; face coefficients are harmonic means."""
    coords = (np.arange(n + 2) / (n + 1))  # grid points including the boundary
    cell = np.minimum((coords * blocks).astype(int), blocks - 1)
    kappa = np.where((cell[:, None] + cell[None, :]) % 2 == 0, 1.0, contrast)  # (n+2, n+2)
    idx = -np.ones((n + 2, n + 2), dtype=np.int64)
    idx[1:-1, 1:-1] = np.arange(n * n).reshape(n, n)
    rows, cols, vals = [], [], []
    diag = np.zeros((n + 2, n + 2))
    for di, dj in ((1, 0), (0, 1)):
        k0 = kappa[: n + 2 - di, : n + 2 - dj]
        k1 = kappa[di:, dj:]
        face = 2 * k0 * k1 / (k0 + k1)
        i0 = idx[: n + 2 - di, : n + 2 - dj]
        i1 = idx[di:, dj:]
        diag[: n + 2 - di, : n + 2 - dj] += face
        diag[di:, dj:] += face
        both = (i0 >= 0) & (i1 >= 0)
        rows += [i0[both], i1[both]]
        cols += [i1[both], i0[both]]
        vals += [-face[both], -face[both]]
    rows.append(np.arange(n * n))
    cols.append(np.arange(n * n))
    vals.append(diag[1:-1, 1:-1].ravel())
    a = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n * n, n * n))
    return (a * (n + 1) ** 2).tocsr()


def convdiff_matrix(n: int, peclet: float, angle: float) -> sp.csr_matrix:
    """−Δu + Pe (cos φ ∂x + sin φ ∂y) u, centred diffusion and upwind convection, over h²."""
    h = 1.0 / (n + 1)
    eye = sp.identity(n)
    forward = sp.diags([-np.ones(n - 1), np.ones(n)], [-1, 0])  # backward difference (wind > 0)
    backward = sp.diags([np.ones(n - 1), -np.ones(n)], [1, 0]) * -1  # forward difference (wind < 0)

    def upwind(w):
        return w * forward if w >= 0 else w * backward

    wx, wy = peclet * np.cos(angle), peclet * np.sin(angle)
    lap = (sp.kron(laplacian_1d(n), eye) + sp.kron(eye, laplacian_1d(n))) / h**2
    conv = (sp.kron(eye, upwind(wx)) + sp.kron(upwind(wy), eye)) / h
    return (lap + conv).tocsr()


def _solution(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n * n)


def anisotropic(seed: int, device, dtype, n: int = 64, epsilon: float = 0.01,
                theta: float = np.pi / 6) -> bench_core.LinearSystemProblem:
    """Rotated anisotropic diffusion (ε, θ)."""
    if n < 2 or epsilon <= 0:
        raise ValueError("need n >= 2 and epsilon > 0")
    return bench_core.LinearSystemProblem([make_system(
        anisotropic_matrix(n, epsilon, theta), _solution(seed, n), device, dtype,
        f"anisotropic-{n}-eps{epsilon:g}", {"n": n, "symmetric": True, "spd": True})])


def jumping(seed: int, device, dtype, n: int = 64, contrast: float = 1e4,
            blocks: int = 4) -> bench_core.LinearSystemProblem:
    """Diffusion with jumping coefficients (checkerboard, contrast)."""
    if n < 2 or contrast <= 0 or blocks < 1:
        raise ValueError("need n >= 2, contrast > 0, blocks >= 1")
    return bench_core.LinearSystemProblem([make_system(
        jumping_matrix(n, contrast, blocks), _solution(seed, n), device, dtype,
        f"jumping-{n}-c{contrast:g}", {"n": n, "symmetric": True, "spd": True})])


def convdiff(seed: int, device, dtype, n: int = 64, peclet: float = 100.0,
             angle: float = np.pi / 4) -> bench_core.LinearSystemProblem:
    """Convection–diffusion with Péclet number `peclet` (nonsymmetric)."""
    if n < 2:
        raise ValueError("need n >= 2")
    return bench_core.LinearSystemProblem([make_system(
        convdiff_matrix(n, peclet, angle), _solution(seed, n), device, dtype,
        f"convdiff-{n}-pe{peclet:g}", {"n": n, "symmetric": peclet == 0, "spd": peclet == 0})])


def diffusion_problem_specs() -> list[bench_core.ProblemSpec]:
    """pde.anisotropic, pde.jumping, pde.convdiff."""
    common = dict(kind="linear_system", targets={"rel_residual": 1e-8}, budget={"max_steps": 2000},
                  reports=("rel_residual", "rel_error"))  # x* is drawn per seed, so rel_error is known
    return [
        bench_core.ProblemSpec(
            name="pde.anisotropic", factory=anisotropic,
            params={"n": 64, "epsilon": 0.01, "theta": float(np.pi / 6)},
            description="Rotated anisotropic diffusion (ε, θ), 9-point FD (SPD).", **common),
        bench_core.ProblemSpec(
            name="pde.jumping", factory=jumping, params={"n": 64, "contrast": 1e4, "blocks": 4},
            description="Checkerboard jumping coefficients, 5-point FD, harmonic means (SPD).",
            **common),
        bench_core.ProblemSpec(
            name="pde.convdiff", factory=convdiff,
            params={"n": 64, "peclet": 100.0, "angle": float(np.pi / 4)},
            description="Convection–diffusion, upwind, Péclet number (nonsymmetric).", **common),
    ]
