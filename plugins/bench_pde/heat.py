"""pde.heat_sequence: implicit (backward Euler) time stepping of the heat equation
u_t = ∇·(κ(t) ∇u) + f on the unit square, zero Dirichlet boundary, n×n interior grid.

Step k solves (I + dt_k κ_k L) u_k = u_{k−1} + dt_k f, L the 5-point Laplacian over h², so
the sequence of matrices changes with the time step and the diffusivity (``vary``: "dt",
"kappa" or "both", drawn log-uniformly per seed within the given ranges). The right-hand sides
follow the exact discrete trajectory (each u_k solved directly), so every system has a known
exact solution whatever the solver did on the previous one. Each system's ``info["context"]``
is c_k = dt_k κ_k / h², the scalar that fixes the matrix (I + c_k h² L): the structural
information a contextual bandit may use ("Learning to Relax", Khodak et al.).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

import bench_core

from .poisson import make_system, poisson2d_matrix


def heat_sequence(seed: int, device, dtype, n: int = 32, steps: int = 20, vary: str = "both",
                  dt_range: tuple = (1e-4, 1e-2), kappa_range: tuple = (0.1, 10.0)
                  ) -> bench_core.LinearSystemProblem:
    """A sequence of `steps` backward-Euler systems with changing dt and/or κ."""
    if vary not in ("dt", "kappa", "both"):
        raise ValueError(f"vary must be 'dt', 'kappa' or 'both', got {vary!r}")
    if n < 2 or steps < 1:
        raise ValueError("need n >= 2 and steps >= 1")
    rng = np.random.default_rng(seed)
    lap = poisson2d_matrix(n)
    h = 1.0 / (n + 1)
    xs = (np.arange(1, n + 1) * h)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    u0 = (np.sin(np.pi * X) * np.sin(2 * np.pi * Y) + 0.3 * rng.standard_normal((n, n))).ravel()
    f = (10 * np.exp(-50 * ((X - 0.3) ** 2 + (Y - 0.6) ** 2))).ravel()

    def loguniform(lo_hi, size):
        lo, hi = np.log(lo_hi[0]), np.log(lo_hi[1])
        return np.exp(rng.uniform(lo, hi, size))

    dts = loguniform(dt_range, steps) if vary in ("dt", "both") else np.full(steps, np.sqrt(np.prod(dt_range)))
    kappas = (loguniform(kappa_range, steps) if vary in ("kappa", "both")
              else np.full(steps, np.sqrt(np.prod(kappa_range))))
    eye = sp.identity(n * n, format="csr")

    def systems():
        u = u0
        for k in range(steps):
            a = (eye + dts[k] * kappas[k] * lap).tocsr()
            u_next = sla.spsolve(a.tocsc(), u + dts[k] * f)
            system = make_system(a, u_next, device, dtype, f"heat-{n}-step{k}", {
                "n": n, "symmetric": True, "spd": True, "grid": (n, n), "step": k,
                "dt": float(dts[k]), "kappa": float(kappas[k]),
                "context": float(dts[k] * kappas[k] / h**2)})
            yield system
            u = u_next

    return bench_core.LinearSystemProblem(systems)


def heat_problem_specs() -> list[bench_core.ProblemSpec]:
    """pde.heat_sequence."""
    return [bench_core.ProblemSpec(
        name="pde.heat_sequence", kind="linear_system", factory=heat_sequence,
        params={"n": 32, "steps": 20, "vary": "both"}, targets={"rel_residual": 1e-8},
        budget={"max_steps": 20000}, reports=("rel_residual", "rel_error"),  # every step's x* is known
        description="Backward-Euler heat equation: a sequence of systems I + dt κ L with "
                    "changing dt and κ (for solvers that learn across instances).")]
