"""synthetic.rosenbrock: the extended Rosenbrock function in `dim` dimensions.

f(x) = Σᵢ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)², minimized at x = (1, …, 1) with f = 0. The start is
the classic (−1.2, 1, −1.2, 1, …) plus a small Gaussian perturbation fixed per seed (std 0.1):
a curved, narrow valley that punishes poorly scaled steps. Metrics: ``loss`` (f) and
``dist_to_opt`` = ‖x − 1‖ / √dim.
"""
from __future__ import annotations

import torch

import bench_core


class Rosenbrock(bench_core.TrainingProblem):
    """The extended Rosenbrock function; a single parameter vector."""

    def __init__(self, seed: int, device, dtype, dim: int = 2, perturbation: float = 0.1,
                 stochastic_rounding: bool = False):
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        gen = torch.Generator().manual_seed(seed)
        start = torch.tensor([-1.2, 1.0], dtype=torch.float64).repeat((dim + 1) // 2)[:dim]
        start += perturbation * torch.randn(dim, generator=gen, dtype=torch.float64)
        self.x = start.to(device, dtype).requires_grad_(True)
        self.dim = dim
        self.stochastic_rounding = bool(stochastic_rounding)

    def parameters(self):
        """The point x."""
        return [self.x]

    def loss(self, batch):
        """The Rosenbrock function at x."""
        x = self.x
        return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()

    def evaluate(self):
        """f(x) and the scaled distance to the minimizer (1, …, 1)."""
        return {"loss": float(self.loss(None)),
                "dist_to_opt": float(torch.linalg.vector_norm(self.x - 1) / self.dim ** 0.5)}


def rosenbrock_specs() -> list[bench_core.ProblemSpec]:
    """The Rosenbrock problem spec."""
    return [bench_core.ProblemSpec(
        name="synthetic.rosenbrock", kind="training", factory=Rosenbrock,
        params={"dim": 2, "perturbation": 0.1, "stochastic_rounding": False},
        targets={"loss": 1e-3}, budget={"max_steps": 2000}, reports=("loss", "dist_to_opt"),
        description="Extended Rosenbrock function from a perturbed (−1.2, 1, …) start; size: dim.")]
