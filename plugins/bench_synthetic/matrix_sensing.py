"""synthetic.matrix_sensing: over-parameterized, ill-conditioned low-rank matrix sensing.

As in "The Power of Preconditioning in Overparameterized Low-Rank Matrix Sensing" (Xu, Shen, Ma,
Chi): recover a rank-r PSD matrix M* = U diag(σ) Uᵀ (n×n, σ from 1 down to 1/condition) from m
linear measurements yᵢ = ⟨Aᵢ, M*⟩ with symmetric Gaussian Aᵢ, by fitting a factor X ∈ R^{n×k}
with k ≥ r (k > r: over-parameterized) from a small random start X₀ = α·N(0, 1/n):

    f(X) = 1/(4m) Σᵢ (⟨Aᵢ, XXᵀ⟩ − yᵢ)²

Plain gradient descent slows down by the condition number; preconditioned methods do not.
Metrics: ``loss`` (f) and ``rel_error`` = ‖XXᵀ − M*‖_F / ‖M*‖_F. Size: n (and r, k, m).
"""
from __future__ import annotations

import torch

import bench_core


class MatrixSensing(bench_core.TrainingProblem):
    """Burer–Monteiro factorized least squares for low-rank matrix sensing."""

    def __init__(self, seed: int, device, dtype, n: int = 20, rank: int = 3, k: int = 6,
                 condition: float = 100.0, measurements: int | None = None, init_scale: float = 1e-3,
                 stochastic_rounding: bool = False):
        if not 1 <= rank <= k <= n:
            raise ValueError(f"need 1 <= rank <= k <= n, got rank={rank}, k={k}, n={n}")
        m = int(measurements) if measurements is not None else 10 * n * rank
        gen = torch.Generator().manual_seed(seed)
        u, _ = torch.linalg.qr(torch.randn(n, rank, generator=gen, dtype=torch.float64))
        sigma = torch.logspace(0, -torch.log10(torch.tensor(float(condition))).item(), rank, dtype=torch.float64)
        m_star = (u * sigma) @ u.T
        g = torch.randn(m, n, n, generator=gen, dtype=torch.float64)
        a = ((g + g.transpose(1, 2)) / 2).reshape(m, n * n)
        y = a @ m_star.reshape(-1)
        x0 = init_scale * torch.randn(n, k, generator=gen, dtype=torch.float64) / n ** 0.5
        self.a, self.y = a.to(device, dtype), y.to(device, dtype)
        self.m_star = m_star.to(device, dtype)
        self.x = x0.to(device, dtype).requires_grad_(True)
        self.m = m
        self.stochastic_rounding = bool(stochastic_rounding)

    def parameters(self):
        """The factor X (n×k)."""
        return [self.x]

    def loss(self, batch):
        """f(X) = 1/(4m) Σ (⟨Aᵢ, XXᵀ⟩ − yᵢ)² (all measurements every step)."""
        r = self.a @ (self.x @ self.x.T).reshape(-1) - self.y
        return (r @ r) / (4 * self.m)

    def evaluate(self):
        """Loss and the relative recovery error of XXᵀ."""
        est = self.x @ self.x.T
        return {"loss": float(self.loss(None)),
                "rel_error": float(torch.linalg.matrix_norm(est - self.m_star)
                                   / torch.linalg.matrix_norm(self.m_star))}


def matrix_sensing_specs() -> list[bench_core.ProblemSpec]:
    """The matrix-sensing problem spec."""
    return [bench_core.ProblemSpec(
        name="synthetic.matrix_sensing", kind="training", factory=MatrixSensing,
        params={"n": 20, "rank": 3, "k": 6, "condition": 100.0, "measurements": None, "init_scale": 1e-3,
                "stochastic_rounding": False},
        targets={"rel_error": 1e-3}, budget={"max_steps": 1000}, reports=("loss", "rel_error"),
        description="Over-parameterized ill-conditioned low-rank matrix sensing, X Xᵀ ≈ M*; size: n.")]
