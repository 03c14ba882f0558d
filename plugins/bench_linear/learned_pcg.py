"""linear.learned_pcg: CG preconditioned by a learned incomplete factor, after Li, Chen, Fan,
Kang & Li, "Learning Preconditioner for Conjugate Gradient PDE Solvers" (ICML 2023).

The method: a network maps a PDE instance to a lower-triangular factor L with a fixed sparsity
pattern (that of tril(A), the IC(0) pattern); M = L Lᵀ is used as the PCG preconditioner. It is
trained on a family of instances with the paper's data-driven loss

    ℓ(θ) = Σ_i ‖L_θ L_θᵀ x_i − b_i‖² / ‖b_i‖²,   A x_i = b_i,

where the x_i are solutions drawn from the problem distribution (here x = A⁻¹ g with g ~ N(0, I):
smooth, dominated by the low modes that slow CG down), rather than ‖LLᵀ − A‖_F.

Our implementation (a deviation from the paper, stated): the paper uses a graph network on the
matrix graph; here the instances are 2-D grid operators (a 3×3 stencil at most, row-major
unknowns), and the network is a small convolutional net on the grid, so it is grid-size
agnostic. Its input at each grid point is the symmetrically scaled stencil of A
(Ã = D^{-1/2} A D^{-1/2}: eight neighbour entries and the row sum); its output is the scaled factor
L̃ on the lower stencil entries present in A, in the form of the IC(0) recurrence: pivots
p_i = L̃_ii > 0 (softplus + 1e-3) and L̃_ij = ã_ij / p_j · (1 + c_ij) with learned corrections c;
L = D^{1/2} L̃. L is therefore nonsingular and M = L Lᵀ symmetric positive definite for every
input, so PCG stays valid whatever the network learned. The scale of M is left free in the loss
(min over c of ‖c LLᵀx − b‖²): PCG does not depend on it.

Training family (deterministic per ``train_seed``): diffusion −∇·(κ∇u) on n×n grids
(n ∈ {16, 24, 32}, 5-point, harmonic means on the faces, as ``pde.jumping``), with nodal κ
drawn as random block fields (2..8 blocks a side, values 10^U(0, 4)), checkerboards of random
contrast 10^U(0, 4), and Darcy-like two-phase fields (a smoothed Gaussian field thresholded to
{3, 12}, as ``pde.fno_darcy``). The held-out test is ``pde.jumping`` itself and grids larger
than trained on. Weights are cached with a checksum (``trained_weights``); the training time
is reported apart from the solve as the counter ``training_time_ms`` and the metric
``training_time_s`` (the time the cached weights took to train, whether trained now or
earlier), the factor build (network forward + CSR assembly) as the trial's setup time.
"""
from __future__ import annotations

import functools
import time

import numpy as np
import scipy.sparse as sp
import torch

import bench_core

from .base import SolverError
from .cg import ConjugateGradient
from .operators import TriangularSweep

# the 3×3 stencil offsets (di, dj), row-major; column (i+di, j+dj) of row (i, j)
OFFSETS = tuple((di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1))
CENTER = OFFSETS.index((0, 0))
LOWER = tuple(k for k, (di, dj) in enumerate(OFFSETS) if di < 0 or (di == 0 and dj < 0))
FORMAT_VERSION = 1
TRAIN_SIZES = (16, 24, 32)


# ----------------------------------------------------------------------------- grid stencils

def grid_stencil(a: sp.spmatrix) -> np.ndarray:
    """The (9, n, n) stencil S of a matrix on an n×n grid with row-major unknowns:
    S[k, i, j] = A[(i, j), (i + di, j + dj)] for OFFSETS[k]. Raises SolverError when A is not
    a 3×3-stencil operator on a square grid."""
    a = sp.coo_matrix(a)
    size = a.shape[0]
    n = int(round(size ** 0.5))
    if n * n != size or n < 2:
        raise SolverError(f"linear.learned_pcg needs a 2-D grid operator; {size} unknowns is not n²")
    ri, rj = np.divmod(a.row, n)
    ci, cj = np.divmod(a.col, n)
    di, dj = ci - ri, cj - rj
    if a.nnz and (np.abs(di).max() > 1 or np.abs(dj).max() > 1):
        raise SolverError("linear.learned_pcg needs a 3×3-stencil operator on a square grid; "
                          "this matrix couples unknowns farther apart")
    s = np.zeros((9, n, n))
    np.add.at(s, ((di + 1) * 3 + (dj + 1), ri, rj), a.data)
    if not (s[CENTER] > 0).all():
        raise SolverError("linear.learned_pcg needs a positive diagonal")
    return s


def csr_from_stencil(s: np.ndarray, keep=range(9)) -> sp.csr_matrix:
    """The matrix of a (9, n, n) stencil (only the offsets in `keep`), row-major unknowns."""
    n = s.shape[1]
    idx = np.arange(n * n).reshape(n, n)
    rows, cols, vals = [], [], []
    for k in keep:
        di, dj = OFFSETS[k]
        i0, i1 = max(0, -di), min(n, n - di)
        j0, j1 = max(0, -dj), min(n, n - dj)
        block = s[k, i0:i1, j0:j1]
        nz = block != 0
        rows.append(idx[i0:i1, j0:j1][nz])
        cols.append(idx[i0 + di:i1 + di, j0 + dj:j1 + dj][nz])
        vals.append(block[nz])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n * n, n * n))


def diffusion_stencil(kappa: np.ndarray) -> np.ndarray:
    """The 5-point stencil of −∇·(κ∇u) for a nodal κ on the (n+2)² grid with its boundary
    (zero Dirichlet), harmonic means on the faces, scaled by (n+1)²."""
    n = kappa.shape[0] - 2
    s = np.zeros((9, n, n))
    inner = kappa[1:-1, 1:-1]
    for (di, dj) in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        other = kappa[1 + di:n + 1 + di, 1 + dj:n + 1 + dj]
        face = 2 * inner * other / (inner + other)
        s[CENTER] += face
        k = OFFSETS.index((di, dj))
        s[k] = -face
    s[OFFSETS.index((-1, 0)), 0, :] = 0   # neighbours on the boundary are eliminated
    s[OFFSETS.index((1, 0)), -1, :] = 0
    s[OFFSETS.index((0, -1)), :, 0] = 0
    s[OFFSETS.index((0, 1)), :, -1] = 0
    return s * (n + 1) ** 2


def scaled_features(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (9, n, n), lower mask (4, n, n), diagonal (n, n)) of a stencil: the eight scaled
    neighbour entries Ã = D^{-1/2} A D^{-1/2} and the scaled row sum; the mask marks the lower
    entries present in A (the IC(0) pattern)."""
    d = s[CENTER]
    n = d.shape[0]
    root = np.sqrt(d)
    pad = np.pad(root, 1, constant_values=1.0)
    feats = np.zeros((9, n, n))
    for k, (di, dj) in enumerate(OFFSETS):
        if k == CENTER:
            continue
        feats[k] = s[k] / (root * pad[1 + di:n + 1 + di, 1 + dj:n + 1 + dj])
    feats[CENTER] = 1.0 + feats.sum(axis=0)  # the scaled row sum (≈ 0 inside, > 0 near walls)
    mask = np.stack([s[k] != 0 for k in LOWER]).astype(np.float64)
    return feats, mask, d


# ----------------------------------------------------------------------------- the network

class FactorNet(torch.nn.Module):
    """Convolutional net: scaled stencil (B, 9, n, n) -> scaled factor (diagonal (B, n, n),
    lower entries (B, 4, n, n)), the entries off A's pattern zeroed."""

    def __init__(self, width: int = 16, depth: int = 4):
        super().__init__()
        layers, channels = [], 9
        for _ in range(depth - 1):
            layers += [torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.GELU()]
            channels = width
        layers.append(torch.nn.Conv2d(channels, 1 + len(LOWER), 3, padding=1))
        self.body = torch.nn.Sequential(*layers)
        with torch.no_grad():  # start near the Jacobi factor: small outputs
            self.body[-1].weight.mul_(0.1)
            self.body[-1].bias.zero_()

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(diagonal, lower) of L̃ for a batch of scaled stencils, in the form of the IC(0)
        recurrence: pivots p > 0 (softplus) and l_ij = ã_ij / p_j · (1 + c_ij) with learned
        corrections c; p and c come from the net (p = 1, c = 0 at initialization)."""
        out = self.body(feats)
        pivot = torch.nn.functional.softplus(out[:, 0] + 0.5413) + 1e-3  # softplus(0.5413) = 1
        lower = []
        for c, k in enumerate(LOWER):
            di, dj = OFFSETS[k]
            neighbour = _shift(pivot, di, dj) + (1 - _shift(torch.ones_like(pivot), di, dj))
            lower.append(feats[:, k] / neighbour * (1 + out[:, 1 + c]) * mask[:, c])
        return pivot, torch.stack(lower, dim=1)


def _shift(z: torch.Tensor, di: int, dj: int) -> torch.Tensor:
    """out[..., i, j] = z[..., i + di, j + dj], zero outside the grid."""
    n, m = z.shape[-2:]
    p = torch.nn.functional.pad(z, (1, 1, 1, 1))
    return p[..., 1 + di:1 + di + n, 1 + dj:1 + dj + m]


def factor_apply(diag: torch.Tensor, lower: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L̃ L̃ᵀ y on the grid (batched), L̃ given by its diagonal and lower stencil entries."""
    u = diag * y  # u = L̃ᵀ y
    for c, k in enumerate(LOWER):
        di, dj = OFFSETS[k]
        u = u + _shift(lower[:, c] * y, -di, -dj)
    v = diag * u  # v = L̃ u
    for c, k in enumerate(LOWER):
        di, dj = OFFSETS[k]
        v = v + lower[:, c] * _shift(u, di, dj)
    return v


def stencil_apply(feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Ã y on the grid (batched) from the scaled features (unit diagonal)."""
    out = y.clone()
    for k, (di, dj) in enumerate(OFFSETS):
        if k != CENTER:
            out = out + feats[:, k] * _shift(y, di, dj)
    return out


def paper_loss(net: FactorNet, feats, mask, y) -> torch.Tensor:
    """The mean over the batch of min_c ‖c L̃L̃ᵀ y − Ã y‖² / ‖Ã y‖²: the paper's
    ‖LLᵀx − b‖² / ‖b‖² in the scaled variables (y = D^{1/2} x, Ã y = D^{-1/2} b), with the
    scale c of M optimal per sample (PCG does not depend on the scale of M; without the free
    scale the loss is lowered by shrinking M, as measured in docs/linear.md)."""
    diag, lower = net(feats, mask)
    b = stencil_apply(feats, y)
    v = factor_apply(diag, lower, y)
    vb = (v * b).sum(dim=(-2, -1))
    vv = (v * v).sum(dim=(-2, -1))
    bb = (b * b).sum(dim=(-2, -1))
    return (1 - vb ** 2 / (vv * bb)).mean()


# ----------------------------------------------------------------------------- training family

def _smooth_field(rng: np.random.Generator, size: int, width: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.standard_normal((size, size)), width, mode="reflect")


def family_kappa(rng: np.random.Generator, n: int) -> np.ndarray:
    """One nodal coefficient field κ on the (n+2)² grid of the training family."""
    kind = rng.integers(3)
    coords = np.arange(n + 2) / (n + 1)
    if kind < 2:  # block fields: random values or a checkerboard of random contrast
        blocks = int(rng.integers(2, 9))
        cell = np.minimum((coords * blocks).astype(int), blocks - 1)
        if kind == 0:
            values = 10.0 ** rng.uniform(0, 4, size=(blocks, blocks))
            return values[cell[:, None], cell[None, :]]
        contrast = 10.0 ** rng.uniform(0, 4)
        return np.where((cell[:, None] + cell[None, :]) % 2 == 0, 1.0, contrast)
    field = _smooth_field(rng, n + 2, (n + 2) / 10)  # Darcy-like two-phase medium
    return np.where(field >= 0, 12.0, 3.0)


def make_family(seed: int, per_size: int, sizes=TRAIN_SIZES, rhs: int = 4) -> list[tuple]:
    """Training batches, one per grid size: (features, mask, y) float32 tensors with
    y = D^{1/2} x for `rhs` solutions x = A⁻¹ g (g standard normal) of each of `per_size`
    instances. Deterministic in `seed`."""
    from scipy.sparse.linalg import splu

    batches = []
    for n in sizes:
        rng = np.random.default_rng([seed, n, FORMAT_VERSION])
        feats, masks, ys = [], [], []
        for _ in range(per_size):
            s = diffusion_stencil(family_kappa(rng, n))
            f, m, d = scaled_features(s)
            lu = splu(csr_from_stencil(s).tocsc())
            g = rng.standard_normal((n * n, rhs))
            x = lu.solve(g)
            for c in range(rhs):
                feats.append(f)
                masks.append(m)
                ys.append(np.sqrt(d) * x[:, c].reshape(n, n))
        batches.append(tuple(torch.tensor(np.stack(v), dtype=torch.float32) for v in (feats, masks, ys)))
    return batches


def train(seed: int = 0, steps: int = 200, width: int = 16, depth: int = 4, per_size: int = 6,
          sizes=TRAIN_SIZES, lr: float = 3e-3) -> tuple[FactorNet, dict]:
    """Train a FactorNet on the family (deterministic per seed); returns (net, meta) with
    training_time_s (data generation included), the loss history and the final loss."""
    from .trained_weights import fit, one_thread

    with one_thread():
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        batches = make_family(seed, per_size, sizes)
        net = FactorNet(width, depth)
        history = fit(net, batches, paper_loss, steps, lr)
        with torch.no_grad():
            final = float(np.mean([float(paper_loss(net, *b)) for b in batches]))
    return net, {"training_time_s": time.perf_counter() - t0, "final_loss": final,
                 "loss_history": np.array(history), "steps": steps}


def train_sizes(grid: int) -> tuple[int, ...]:
    """The training grid sizes for the largest one: (grid/2, 3 grid/4, grid)."""
    return tuple(sorted({max(4, grid // 2), max(4, 3 * grid // 4), max(4, grid)}))


@functools.lru_cache(maxsize=8)
def trained_net(seed: int = 0, steps: int = 200, width: int = 16, depth: int = 4,
                grid: int = 32) -> tuple[FactorNet, dict, bool]:
    """The trained FactorNet for these settings (training grids ``train_sizes(grid)``) from the
    weight cache, trained and cached when missing; (net, meta, trained_now). Kept per process."""
    from . import trained_weights

    name = f"learned_pcg_v{FORMAT_VERSION}_seed{seed}_steps{steps}_w{width}_d{depth}_g{grid}"

    def fit():
        net, meta = train(seed, steps, width, depth, sizes=train_sizes(grid))
        return {k: v.detach().numpy() for k, v in net.state_dict().items()}, meta

    arrays, meta, now = trained_weights.load_or_train(name, fit)
    net = FactorNet(width, depth)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    net.eval()
    return net, {k: (float(v) if np.ndim(v) == 0 else v) for k, v in meta.items()}, now


# ----------------------------------------------------------------------------- the solver

def learned_factor(net: FactorNet, s: np.ndarray) -> sp.csr_matrix:
    """The lower-triangular factor L = D^{1/2} L̃ (CSR, float64) the net gives for stencil `s`."""
    feats, mask, d = scaled_features(s)
    with torch.no_grad():
        diag, lower = net(torch.tensor(feats[None], dtype=torch.float32),
                          torch.tensor(mask[None], dtype=torch.float32))
    out = np.zeros_like(s)
    root = np.sqrt(d)
    out[CENTER] = diag[0].double().numpy() * root
    for c, k in enumerate(LOWER):
        out[k] = lower[0, c].double().numpy() * root * mask[c]
    return csr_from_stencil(out, keep=(CENTER,) + LOWER)


class LearnedFactor:
    """M = L Lᵀ with the learned L; applied as two triangular solves."""

    symmetric = True

    def __init__(self, low: sp.csr_matrix, like: torch.Tensor):
        self.low = low
        self.lower = TriangularSweep(low, lower=True, like=like)
        self.upper = TriangularSweep(low.T.tocsr(), lower=False, like=like)

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        return self.upper.solve(self.lower.solve(r))


class LearnedPCG(ConjugateGradient):
    """PCG with the learned factor preconditioner (2-D grid operators with a 3×3 stencil)."""

    def __init__(self, train_seed: int = 0, train_steps: int = 200, width: int = 16, depth: int = 4,
                 train_grid: int = 32, operator: str = "auto", rtol: float = 0.0):
        super().__init__("learned", operator=operator, rtol=rtol)
        self.name = "linear.learned_pcg"
        self.net, self.meta, self.trained_now = trained_net(int(train_seed), int(train_steps),
                                                            int(width), int(depth), int(train_grid))
        self.training_time_s = float(self.meta["training_time_s"])
        self.bench_counters["training_time_ms"] = int(round(1000 * self.training_time_s))
        self.bench_counters["trained_now"] = int(self.trained_now)

    def _setup(self, system: bench_core.LinearSystem) -> None:
        self.precond = LearnedFactor(learned_factor(self.net, grid_stencil(system.scipy())), system.b)


def _learned_pcg(train_seed: int = 0, train_steps: int = 200, width: int = 16, depth: int = 4,
                 train_grid: int = 32, operator: str = "auto", rtol: float = 0.0):
    return LearnedPCG(train_seed, train_steps, width, depth, train_grid, operator, rtol)


def learned_pcg_specs() -> list[bench_core.OptimizerSpec]:
    """linear.learned_pcg."""
    return [bench_core.OptimizerSpec(
        name="linear.learned_pcg", factory=_learned_pcg, kinds={"linear_system"}, requires=set(),
        description="PCG with a learned incomplete factor M = LLᵀ (Li et al. 2023); 2-D grid "
                    "operators (3×3 stencil); trained on diffusion fields, weights cached.")]


def training_time_metric(ctx) -> float | None:
    """The training time of a learned solver's weights (None for other solvers)."""
    return getattr(ctx.optimizer, "training_time_s", None)


def learned_metric_specs() -> list[bench_core.MetricSpec]:
    """training_time_s: what a learned solver's weights cost to train, apart from the solve."""
    return [bench_core.MetricSpec(
        "training_time_s", training_time_metric, higher_is_better=False, unit="s",
        description="time the learned solver's weights took to train (data generation included; "
                    "cached weights report the time recorded when they were trained)")]
