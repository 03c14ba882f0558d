"""synthetic.quadratic: f(x) = ½ (x − x*)ᵀ H (x − x*) / f(0), H = Q diag(λ) Qᵀ.

λ spans [1/condition, 1] geometrically (so L = 1) and Q is a random rotation (fixed per seed),
so the condition number is exactly `condition` and no coordinate-wise method gets it for free.
x* is scaled so that the starting point x = 0 has loss 1. With ``noise > 0`` each step's gradient
gets additive Gaussian noise of that standard deviation (the batch), as in the noisy-quadratic
model of stochastic optimization; evaluation is always noise-free.
"""
from __future__ import annotations

import torch

import bench_core


class Quadratic(bench_core.TrainingProblem):
    """A convex quadratic with prescribed condition number and a known minimizer."""

    def __init__(self, seed: int, device, dtype, dim: int = 100, condition: float = 1e4,
                 noise: float = 0.0):
        if dim < 1 or condition < 1:
            raise ValueError("dim must be >= 1 and condition >= 1")
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        lam = torch.logspace(0, -torch.log10(torch.tensor(float(condition))).item(), dim, dtype=torch.float64)
        x_star = torch.randn(dim, generator=gen, dtype=torch.float64)
        x_star /= (0.5 * float(x_star @ (q @ (lam * (q.T @ x_star))))) ** 0.5  # f(0) = 1
        self.hessian = ((q * lam) @ q.T).to(device, dtype)
        self.x_star = x_star.to(device, dtype)
        self.x = torch.zeros(dim, device=device, dtype=dtype, requires_grad=True)
        self.noise, self.seed, self.dim = float(noise), seed, dim

    def parameters(self):
        """The single parameter vector x."""
        return [self.x]

    def batch(self, step: int):
        """Gradient noise for this step (None without noise)."""
        if self.noise == 0:
            return None
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return (self.noise * torch.randn(self.dim, generator=gen)).to(self.x.device, self.x.dtype)

    def _loss(self, x):
        d = x - self.x_star
        return 0.5 * d @ (self.hessian @ d)

    def loss(self, batch):
        """Quadratic loss, plus ⟨ξ, x⟩ with ξ the step's gradient noise."""
        value = self._loss(self.x)
        return value if batch is None else value + batch @ self.x

    def evaluate(self):
        """Noise-free loss and relative distance to the minimizer."""
        return {"loss": float(self._loss(self.x)),
                "dist_to_opt": float(torch.linalg.vector_norm(self.x - self.x_star)
                                     / torch.linalg.vector_norm(self.x_star))}
