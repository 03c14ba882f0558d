"""linear.deep_cd: the deep conjugate direction method of Kaneda, Akar, Chen, Kim & Teran, "A Deep
Conjugate Direction Method for Iteratively Solving Linear Systems" (ICML 2023).

The method: a network f approximates the action of A⁻¹ up to an unknown constant. Each iteration
proposes q = f(r_k / ‖r_k‖) from the residual, A-orthogonalizes it against the previous s
directions (s = ``memory``, 2 in the paper), and takes the exact line search along it:

    d_k = q − Σ_{i=k−s}^{k−1} (qᵀA d_i / d_iᵀA d_i) d_i,   α_k = d_kᵀr_k / d_kᵀA d_k,
    x_{k+1} = x_k + α_k d_k,   r_{k+1} = r_k − α_k A d_k.

The A-norm of the error decreases at every step whatever f returns (the line search is exact);
a direction with d_kᵀr_k = 0 is replaced by the residual (counted as ``fallbacks``). Training is
unsupervised, with the paper's loss: the L² difference between an input r and A f(r), with the
free constant solved for,

    ℓ(θ) = Σ_i min_c ‖r_i − c A f_θ(r_i)‖² / ‖r_i‖²,

on vectors r that weigh the low end of the spectrum (the paper's point: CG residuals that
remain are smooth): g, A⁻¹g and A⁻²g (normalized, g standard normal).

Our implementation: f is a small convolutional U-Net on the grid (three levels of average
pooling, a reach of ~60 points; grid-size agnostic) plus the identity, fed the residual in scaled
variables (r̃ = D^{-1/2} r, q = D^{-1/2} f) and the scaled stencil of A (as in ``learned_pcg``),
so one net serves constant and variable coefficients. Trained on Poisson-type systems: the
Poisson matrix and diffusion −∇·(κ∇u) with the training fields of ``learned_pcg`` on 16² and 32²
grids, deterministic per ``train_seed``; weights cached with a checksum (``trained_weights``),
training time reported apart (counter ``training_time_ms``, metric ``training_time_s``).
"""
from __future__ import annotations

import copy
import functools
import time

import numpy as np
import torch

import bench_core

from .base import Solver, SolverError
from .learned_pcg import (csr_from_stencil, diffusion_stencil, family_kappa, grid_stencil,
                          scaled_features, stencil_apply)

FORMAT_VERSION = 1


class DirectionNet(torch.nn.Module):
    """U-Net with `levels` average poolings: (residual, scaled stencil) (B, 10, n, n) -> a
    direction (B, n, n)."""

    def __init__(self, width: int = 16, levels: int = 3):
        super().__init__()

        def block(cin, cout):
            return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.GELU(),
                                       torch.nn.Conv2d(cout, cout, 3, padding=1), torch.nn.GELU())

        self.down = torch.nn.ModuleList([block(10 if i == 0 else width, width) for i in range(levels + 1)])
        self.up = torch.nn.ModuleList([block(2 * width, width) for _ in range(levels)])
        self.out = torch.nn.Conv2d(width, 1, 1)

    def forward(self, r: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """A direction for each residual r (B, n, n) of the systems with features (B, 9, n, n)."""
        pool = torch.nn.functional.avg_pool2d
        h = self.down[0](torch.cat([r[:, None], feats], dim=1))
        skips = []
        for block in self.down[1:]:
            skips.append(h)
            h = block(pool(h, 2, ceil_mode=True))
        for block, skip in zip(self.up, reversed(skips)):
            h = torch.nn.functional.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], dim=1))
        return self.out(h)[:, 0] + r  # the residual itself plus a learned correction


def paper_loss(net: DirectionNet, feats: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The mean over the batch of min_c ‖r − c Ã f(r)‖² / ‖r‖² (scaled variables)."""
    af = stencil_apply(feats, net(r, feats))
    ra = (r * af).sum(dim=(-2, -1))
    aa = (af * af).sum(dim=(-2, -1))
    rr = (r * r).sum(dim=(-2, -1))
    return (1 - ra ** 2 / (aa * rr)).mean()


def make_family(seed: int, per_size: int = 4, sizes=(16, 32), rhs: int = 6) -> list[tuple]:
    """Training batches, one per grid size: (features, r) float32 tensors; per size one Poisson
    matrix and per_size − 1 diffusion fields, each with `rhs` vectors g, A⁻¹g, A⁻²g (scaled,
    normalized). Deterministic in `seed`."""
    from scipy.sparse.linalg import splu

    batches = []
    for n in sizes:
        rng = np.random.default_rng([seed, n, FORMAT_VERSION, 7])
        feats, rs = [], []
        for i in range(per_size):
            kappa = np.ones((n + 2, n + 2)) if i == 0 else family_kappa(rng, n)
            s = diffusion_stencil(kappa)
            f, _, d = scaled_features(s)
            a = csr_from_stencil(s)
            lu = splu(a.tocsc())
            for c in range(rhs):
                v = rng.standard_normal(n * n)
                for _ in range(c % 3):
                    v = lu.solve(v)
                v = v / np.sqrt(d.ravel())  # r̃ = D^{-1/2} r
                feats.append(f)
                rs.append((v / np.linalg.norm(v)).reshape(n, n))
        batches.append(tuple(torch.tensor(np.stack(x), dtype=torch.float32) for x in (feats, rs)))
    return batches


def train(seed: int = 0, steps: int = 400, width: int = 16, per_size: int = 4, sizes=(16, 32),
          lr: float = 2e-3) -> tuple[DirectionNet, dict]:
    """Train a DirectionNet (deterministic per seed); (net, meta) with training_time_s (data
    generation included), the loss history and the final loss."""
    from .trained_weights import fit, one_thread

    with one_thread():
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        batches = make_family(seed, per_size, sizes)
        net = DirectionNet(width)
        history = fit(net, batches, paper_loss, steps, lr)
        with torch.no_grad():
            final = float(np.mean([float(paper_loss(net, *b)) for b in batches]))
    return net, {"training_time_s": time.perf_counter() - t0, "final_loss": final,
                 "loss_history": np.array(history), "steps": steps}


@functools.lru_cache(maxsize=8)
def trained_net(seed: int = 0, steps: int = 400, width: int = 16,
                grid: int = 32) -> tuple[DirectionNet, dict, bool]:
    """The trained DirectionNet (training grids grid/2 and grid) from the weight cache, trained
    and cached when missing; (net, meta, trained_now). Kept per process."""
    from . import trained_weights

    name = f"deep_cd_v{FORMAT_VERSION}_seed{seed}_steps{steps}_w{width}_g{grid}"

    def fit():
        net, meta = train(seed, steps, width, sizes=(max(4, grid // 2), max(4, grid)))
        return {k: v.detach().numpy() for k, v in net.state_dict().items()}, meta

    arrays, meta, now = trained_weights.load_or_train(name, fit)
    net = DirectionNet(width)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    net.eval()
    return net, {k: (float(v) if np.ndim(v) == 0 else v) for k, v in meta.items()}, now


class DeepCD(Solver):
    """DCDM: network directions, A-orthogonalized against the last `memory` ones."""

    name = "linear.deep_cd"
    needs_symmetric = True

    def __init__(self, memory: int = 2, train_seed: int = 0, train_steps: int = 400, width: int = 16,
                 train_grid: int = 32, operator: str = "auto", rtol: float = 0.0):
        super().__init__(operator, rtol)
        if memory < 0:
            raise ValueError("memory must be >= 0")
        self.memory = int(memory)
        self.net, self.meta, self.trained_now = trained_net(int(train_seed), int(train_steps),
                                                            int(width), int(train_grid))
        self.training_time_s = float(self.meta["training_time_s"])
        self.bench_counters.update(training_time_ms=int(round(1000 * self.training_time_s)),
                                   trained_now=int(self.trained_now), network_evals=0, fallbacks=0)
        self.directions: list = []  # (d, A d, dᵀA d) of the last solve's kept directions

    def _setup(self, system: bench_core.LinearSystem) -> None:
        feats, _, d = scaled_features(grid_stencil(system.scipy()))
        device = system.b.device
        self.n = d.shape[0]
        self.feats = torch.tensor(feats[None], dtype=torch.float32, device=device)
        self.inv_root = torch.from_numpy(1.0 / np.sqrt(d.ravel())).to(system.b)
        # the cached net is shared: a copy on another device (CUDA), the net itself on the CPU
        self.run_net = self.net if device.type == "cpu" else copy.deepcopy(self.net).to(device)

    def propose(self, r: torch.Tensor) -> torch.Tensor:
        """q = D^{-1/2} f(D^{-1/2} r / ‖·‖): the network's direction for residual r."""
        rt = (r * self.inv_root).to(torch.float32)
        rt = rt / torch.linalg.vector_norm(rt)
        with torch.no_grad():
            q = self.run_net(rt.view(1, self.n, self.n), self.feats).reshape(-1)
        self.bench_counters["network_evals"] += 1
        return q.to(r) * self.inv_root

    def solve(self, b, x0, maxiter, callback):
        """Iterate from x0, calling callback(x) after each iteration (one matvec, one net call)."""
        stop = self.threshold(b)
        x = x0.clone()
        r = b - self.matvec(x)
        kept: list = []
        self.directions = kept
        for _ in range(maxiter):
            rnorm = float(torch.linalg.vector_norm(r))
            if rnorm == 0.0:
                callback(x)
                return x
            d = self.propose(r)
            for dp, adp, dad in kept:
                d = d - (float(torch.dot(d, adp)) / dad) * dp
            dr = float(torch.dot(d, r))
            if not abs(dr) > 1e-14 * rnorm * float(torch.linalg.vector_norm(d)):
                self.bench_counters["fallbacks"] += 1
                d = r.clone()
                for dp, adp, dad in kept:
                    d = d - (float(torch.dot(d, adp)) / dad) * dp
                dr = float(torch.dot(d, r))
            ad = self.matvec(d)
            dad = float(torch.dot(d, ad))
            if not dad > 0:
                raise SolverError(f"{self.name} breakdown: dᵀAd = {dad:.3g} ≤ 0 "
                                  "(the matrix is not positive definite)")
            alpha = dr / dad
            x = x + alpha * d
            r = r - alpha * ad
            kept.append((d, ad, dad))
            if len(kept) > self.memory:
                kept.pop(0)
            callback(x)
            if stop and float(torch.linalg.vector_norm(r)) <= stop:
                return x
        return x


def deep_cd_specs() -> list[bench_core.OptimizerSpec]:
    """linear.deep_cd."""
    return [bench_core.OptimizerSpec(
        name="linear.deep_cd", factory=DeepCD, kinds={"linear_system"}, requires=set(),
        search_space={"memory": bench_core.Choice([1, 2, 4, 8])},
        description="Deep conjugate direction method (Kaneda et al. 2023): U-Net directions "
                    "A-orthogonalized against the last `memory`; 2-D grid operators; weights cached.")]
