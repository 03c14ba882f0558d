"""pde.pinn_poisson: a physics-informed network (PINN) for the 2D Poisson equation.

Motivated by "An operator preconditioning perspective on training in physics-informed machine
learning" (De Ryck, Bonnet, Mishra, Kovachki): training a PINN is governed by the conditioning of
the operator behind its residual loss, so it is a hard, ill-conditioned optimization problem.

Problem: −Δu = f on (0, 1)², u = 0 on the boundary, with the exact solution
u*(x, y) = sin(kπx) sin(kπy) and f = 2k²π² u*. A tanh MLP u_θ is trained on fixed collocation
points (random per seed) with the loss

    L(θ) = mean over interior points of ((Δu_θ + f) / (2k²π²))²  +  w · mean over boundary points of u_θ²

(Δu_θ by automatic differentiation). Metrics: ``loss`` and ``rel_l2_error`` = ‖u_θ − u*‖ / ‖u*‖
on a uniform 64×64 grid. Size: the network width and depth, and the number of points.
"""
from __future__ import annotations

import math

import torch
from torch import nn

import bench_core


class PoissonPINN(bench_core.TrainingProblem):
    """A tanh MLP fit to the residual of −Δu = f plus a boundary penalty."""

    def __init__(self, seed: int, device, dtype, width: int = 32, depth: int = 2, frequency: int = 1,
                 n_interior: int = 256, n_boundary: int = 64, boundary_weight: float = 1.0,
                 stochastic_rounding: bool = False):
        gen = torch.Generator().manual_seed(seed)
        self.k = int(frequency)
        self.scale = 2 * self.k ** 2 * math.pi ** 2
        interior = torch.rand(n_interior, 2, generator=gen, dtype=torch.float64)
        t = torch.rand(n_boundary, generator=gen, dtype=torch.float64)
        side = torch.arange(n_boundary) % 4
        bx = torch.where(side == 0, 0.0, torch.where(side == 1, 1.0, t))
        by = torch.where(side == 2, 0.0, torch.where(side == 3, 1.0, t))
        g = torch.linspace(0, 1, 64, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        as_t = lambda a: a.to(device=device, dtype=dtype)  # noqa: E731
        self.interior, self.boundary, self.grid = as_t(interior), as_t(torch.stack([bx, by], 1)), as_t(grid)
        self.f_scaled = as_t(self.exact(interior))  # f / (2k²π²) = u*
        self.u_grid = as_t(self.exact(grid))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers: list[nn.Module] = []
            d = 2
            for _ in range(depth):
                layers += [nn.Linear(d, width), nn.Tanh()]
                d = width
            layers.append(nn.Linear(d, 1))
            self.model = nn.Sequential(*layers).to(device=device, dtype=dtype)
        self.boundary_weight = float(boundary_weight)
        self.stochastic_rounding = bool(stochastic_rounding)

    def exact(self, xy: torch.Tensor) -> torch.Tensor:
        """u*(x, y) = sin(kπx) sin(kπy)."""
        return torch.sin(self.k * math.pi * xy[:, 0]) * torch.sin(self.k * math.pi * xy[:, 1])

    def _laplacian(self, xy: torch.Tensor) -> torch.Tensor:
        xy = xy.detach().requires_grad_(True)
        u = self.model(xy).squeeze(-1)
        (grad,) = torch.autograd.grad(u.sum(), xy, create_graph=True)
        lap = 0
        for i in range(2):
            (g2,) = torch.autograd.grad(grad[:, i].sum(), xy, create_graph=True)
            lap = lap + g2[:, i]
        return lap

    def loss(self, batch):
        """Scaled squared PDE residual at the interior points plus the boundary penalty."""
        residual = self._laplacian(self.interior) / self.scale + self.f_scaled
        u_b = self.model(self.boundary).squeeze(-1)
        return (residual ** 2).mean() + self.boundary_weight * (u_b ** 2).mean()

    def evaluate(self):
        """Loss (needs autograd for Δu) and the relative L2 error against the exact solution."""
        with torch.enable_grad():
            loss = float(self.loss(None).detach())
        u = self.model(self.grid).squeeze(-1)
        err = torch.linalg.vector_norm(u - self.u_grid) / torch.linalg.vector_norm(self.u_grid)
        return {"loss": loss, "rel_l2_error": float(err)}


def pinn_problem_specs() -> list[bench_core.ProblemSpec]:
    """The PINN problem spec."""
    return [bench_core.ProblemSpec(
        name="pde.pinn_poisson", kind="training", factory=PoissonPINN,
        params={"width": 32, "depth": 2, "frequency": 1, "n_interior": 256, "n_boundary": 64,
                "boundary_weight": 1.0, "stochastic_rounding": False},
        targets={"rel_l2_error": 0.02}, budget={"max_steps": 800}, reports=("loss", "rel_l2_error"),
        description="PINN (tanh MLP) for 2D Poisson with exact solution sin(kπx)sin(kπy); size: width, depth.")]


def learning_metric_specs() -> list[bench_core.MetricSpec]:
    """Directions of the values the PDE-learning problems report."""
    return [
        bench_core.MetricSpec("loss", None, higher_is_better=False, description="training loss"),
        bench_core.MetricSpec("rel_l2_error", None, higher_is_better=False,
                              description="relative L2 error of a learned solution against the reference"),
        bench_core.MetricSpec("val_rel_l2", None, higher_is_better=False,
                              description="mean relative L2 error on validation samples"),
    ]
