"""synthetic.kron_quadratic: f(W) = ‖A W B − C‖²_F / ‖C‖²_F, a case where Kronecker-factored
preconditioning is exact.

A (m × m) and B (n × n) are ill-conditioned: A = U_A diag(a) V_Aᵀ, B = U_B diag(b) V_Bᵀ with random
rotations (fixed per seed) and singular values spaced geometrically in [condition^(−1/4), 1]. The
Hessian with respect to vec(W) is 2 (B Bᵀ) ⊗ (AᵀA) / ‖C‖², so its condition number is exactly
``condition``, and its inverse is a Kronecker product of an m × m and an n × n matrix: Shampoo-like
methods can precondition it exactly, coordinate-wise methods (Adam) cannot, since the rotations
hide the axes. C = A W* B with W* standard normal, so the minimum is 0 at W*, and W = 0 starts at
loss 1. With ``noise > 0`` each step's gradient gets additive Gaussian noise of that standard
deviation; evaluation is always noise-free.
"""
from __future__ import annotations

import torch

import bench_core


def _ill_conditioned(n: int, condition: float, gen: torch.Generator) -> torch.Tensor:
    u, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    s = torch.logspace(0, -0.25 * torch.log10(torch.tensor(float(condition))).item(), n, dtype=torch.float64)
    return (u * s) @ v.T


class KronQuadratic(bench_core.TrainingProblem):
    """Matrix least squares ‖A W B − C‖² with Kronecker-structured, ill-conditioned curvature."""

    def __init__(self, seed: int, device, dtype, m: int = 32, n: int = 32, condition: float = 1e4,
                 noise: float = 0.0):
        if m < 1 or n < 1 or condition < 1:
            raise ValueError("m and n must be >= 1 and condition >= 1")
        gen = torch.Generator().manual_seed(seed)
        a = _ill_conditioned(m, condition, gen)
        b = _ill_conditioned(n, condition, gen)
        w_star = torch.randn(m, n, generator=gen, dtype=torch.float64)
        c = a @ w_star @ b
        scale = float(c.square().sum()) ** -0.5  # f(0) = 1
        self.A = (a * scale ** 0.5).to(device, dtype)
        self.B = (b * scale ** 0.5).to(device, dtype)
        self.C = (c * scale).to(device, dtype)
        self.w_star = w_star.to(device, dtype)
        self.W = torch.zeros(m, n, device=device, dtype=dtype, requires_grad=True)
        self.noise, self.seed = float(noise), seed

    def parameters(self):
        """The single matrix parameter W."""
        return [self.W]

    def batch(self, step: int):
        """Gradient noise for this step (None without noise)."""
        if self.noise == 0:
            return None
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return (self.noise * torch.randn(self.W.shape, generator=gen)).to(self.W.device, self.W.dtype)

    def _loss(self, w):
        return (self.A @ w @ self.B - self.C).square().sum()

    def loss(self, batch):
        """‖A W B − C‖² (normalized), plus ⟨ξ, W⟩ with ξ the step's gradient noise."""
        value = self._loss(self.W)
        return value if batch is None else value + (batch * self.W).sum()

    def evaluate(self):
        """Noise-free loss and relative distance to W*."""
        return {"loss": float(self._loss(self.W.detach())),
                "dist_to_opt": float(torch.linalg.vector_norm(self.W.detach() - self.w_star)
                                     / torch.linalg.vector_norm(self.w_star))}


def kron_quadratic_specs() -> list[bench_core.ProblemSpec]:
    """The ``synthetic.kron_quadratic`` problem spec."""
    return [bench_core.ProblemSpec(
        name="synthetic.kron_quadratic", kind="training", factory=KronQuadratic,
        params={"m": 32, "n": 32, "condition": 1e4, "noise": 0.0},
        targets={"loss": 1e-6}, budget={"max_steps": 2000}, reports=("loss", "dist_to_opt"),
        description="‖A W B − C‖² / ‖C‖² with ill-conditioned A, B: Kronecker-factored curvature.")]
