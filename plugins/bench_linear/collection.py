"""linear.collection: an offline collection of named linear systems, one problem per name.

What solver papers test, built here without downloading anything: every matrix is generated
deterministically by this module (fixed structure seeds) or read from what an installed package
ships (pyamg's gallery functions and its example data). The problem's param `matrix` names one
system; `collection_names()` lists them all, `collection_entry(name)` gives one entry with its
declared properties:

- ``symmetric``, ``positive_definite`` (tests check both: ‖A − Aᵀ‖ and an inertia count),
- ``dimension``: the number of unknowns n (A is n×n); ``space_dim``: 1, 2 or 3 for grids and
  meshes, None for algebraic matrices,
- ``family`` (the table below), ``source`` (who generates it), ``condition`` where the
  construction prescribes it.

Families: Poisson 2-D/3-D (pyamg.gallery.poisson, the 9-point FE stencil), rotated anisotropic
diffusion 2-D/3-D (pyamg.gallery.diffusion_stencil_2d/3d), jumping coefficients 2-D/3-D
(checkerboards and smooth log-normal fields; our own finite differences with harmonic face
means), linear elasticity (pyamg.gallery.linear_elasticity, Q1), the real matrices pyamg ships
(its example data), SPD matrices with prescribed condition numbers 1e2..1e10 (dense Q diag Qᵀ and
sparse random Jacobi rotations of a diagonal, as MATLAB's sprandsym), Higham's test matrices
(Lehmer, KMS, Pascal, MIN(i,j), Moler, prolate, Pei, Hilbert, Wathen, Wilkinson, Fiedler,
Clement, Dorr, Grcar, Frank, Parter, Lotkin: our own implementations of Higham's definitions,
checked against the `rogues` package in the tests when it is installed), symmetric indefinite
shifted Laplacians, and nonsymmetric convection–diffusion (2-D/3-D, upwind and central) and
pure advection (pyamg.gallery.advection_2d) for GMRES/BiCGSTAB.

Each system draws its exact solution x* from the trial's seed and sets b = A x*; the matrix does
not depend on the seed.
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

import bench_core

#: The solver groups a suite file runs: SPD, symmetric but not definite, nonsymmetric.
GROUPS = ("spd", "symmetric_indefinite", "nonsymmetric")


@dataclass(frozen=True)
class CollectionEntry:
    """One named system of the collection and its declared properties."""

    name: str
    family: str
    symmetric: bool
    positive_definite: bool
    dimension: int  # number of unknowns n
    space_dim: int | None
    source: str
    description: str
    build: Callable[[], sp.spmatrix] = field(repr=False, compare=False)
    condition: float | None = None  # prescribed by the construction (2-norm condition number)

    @property
    def group(self) -> str:
        """The solver group: spd, symmetric_indefinite (symmetric, indefinite or singular) or
        nonsymmetric."""
        if not self.symmetric:
            return "nonsymmetric"
        return "spd" if self.positive_definite else "symmetric_indefinite"

    def matrix(self) -> sp.csr_matrix:
        """A as scipy CSR (float64), built once per process."""
        return _matrix(self.name)

    def info(self) -> dict:
        """The properties as the LinearSystem's ``info`` (solvers read ``symmetric``)."""
        out = {"matrix": self.name, "family": self.family, "n": self.dimension,
               "space_dim": self.space_dim, "symmetric": self.symmetric,
               "spd": self.symmetric and self.positive_definite,
               "positive_definite": self.positive_definite, "source": self.source}
        if self.condition is not None:
            out["condition"] = self.condition
        return out

    def system(self, seed: int = 0, device="cpu", dtype=None) -> bench_core.LinearSystem:
        """The system A x = b with x* drawn from `seed` (standard normal) and b = A x*."""
        x = np.random.default_rng(seed).standard_normal(self.dimension)
        return bench_core.LinearSystem.from_scipy(
            self.matrix(), x_exact=x, device=device, dtype=dtype or torch.float64,
            name=f"collection-{self.name}", info=self.info())


# ---------------------------------------------------------------- builders: PDE stencils

def _kron_axis(op: sp.csr_matrix, axis: int, dim: int) -> sp.csr_matrix:
    """The n×n 1-D operator `op` acting along grid axis `axis` of an n^dim grid (C order)."""
    out = None
    for a in range(dim):
        term = op if a == axis else sp.identity(op.shape[0], format="csr")
        out = term if out is None else sp.kron(out, term, format="csr")
    return out


def _laplacian_1d(n: int) -> sp.csr_matrix:
    return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")


def poisson_matrix(n: int, dim: int) -> sp.csr_matrix:
    """The (2·dim+1)-point Laplacian on an n^dim grid, unscaled (pyamg.gallery.poisson)."""
    from pyamg.gallery import poisson

    return sp.csr_matrix(poisson((n,) * dim, format="csr"))


def stencil_matrix(stencil: np.ndarray, n: int) -> sp.csr_matrix:
    """A pyamg stencil on an n^d grid with zero Dirichlet boundary (pyamg.gallery.stencil_grid)."""
    from pyamg.gallery import stencil_grid

    return sp.csr_matrix(stencil_grid(stencil, (n,) * stencil.ndim, format="csr"))


def anisotropic_2d(n: int, epsilon: float, theta: float, kind: str = "FD") -> sp.csr_matrix:
    """−∇·(K∇u), K = R(θ) diag(1, ε) R(θ)ᵀ, pyamg's 9-point stencil (FD or FE)."""
    from pyamg.gallery import diffusion_stencil_2d

    return stencil_matrix(diffusion_stencil_2d(epsilon=epsilon, theta=theta, type=kind), n)


def anisotropic_3d(n: int, eps_y: float, eps_z: float, theta: float, phi: float,
                   psi: float) -> sp.csr_matrix:
    """Rotated 3-D anisotropic diffusion, pyamg's 27-point FD stencil."""
    from pyamg.gallery.diffusion import diffusion_stencil_3d

    return stencil_matrix(diffusion_stencil_3d(eps_y, eps_z, theta, phi, psi, type="FD"), n)


def diffusion_matrix(kappa: np.ndarray) -> sp.csr_matrix:
    """−∇·(κ∇u) by finite differences on the interior of a node grid (any dimension).

    ``kappa`` holds the coefficient on all (n+2)^d nodes, boundary included (zero Dirichlet);
    the coefficient on the face between two neighbours is their harmonic mean. Unscaled (h² A).
    """
    d, n = kappa.ndim, kappa.shape[0] - 2
    idx = -np.ones(kappa.shape, dtype=np.int64)
    idx[(slice(1, -1),) * d] = np.arange(n**d).reshape((n,) * d)
    diag = np.zeros(kappa.shape)
    rows, cols, vals = [], [], []
    for axis in range(d):
        lo = tuple(slice(0, -1) if a == axis else slice(None) for a in range(d))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(d))
        k0, k1 = kappa[lo], kappa[hi]
        face = 2 * k0 * k1 / (k0 + k1)
        diag[lo] += face
        diag[hi] += face
        i0, i1 = idx[lo], idx[hi]
        both = (i0 >= 0) & (i1 >= 0)
        rows += [i0[both], i1[both]]
        cols += [i1[both], i0[both]]
        vals += [-face[both], -face[both]]
    rows.append(np.arange(n**d))
    cols.append(np.arange(n**d))
    vals.append(diag[(slice(1, -1),) * d].ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n**d, n**d))


def checkerboard_kappa(n: int, dim: int, contrast: float, blocks: int) -> np.ndarray:
    """κ ∈ {1, contrast} alternating on a checkerboard of blocks^dim cubes, on (n+2)^dim nodes."""
    coords = np.arange(n + 2) / (n + 1)
    cell = np.minimum((coords * blocks).astype(int), blocks - 1)
    parity = sum(np.meshgrid(*([cell] * dim), indexing="ij")) % 2
    return np.where(parity == 0, 1.0, contrast)


def lognormal_kappa(n: int, dim: int, sigma: float, seed: int) -> np.ndarray:
    """κ = exp(σ g), g a smooth Gaussian field (white noise filtered over n/8 nodes, unit std)."""
    from scipy.ndimage import gaussian_filter

    g = gaussian_filter(np.random.default_rng(seed).standard_normal((n + 2,) * dim), (n + 2) / 8,
                        mode="wrap")
    g = (g - g.mean()) / g.std()
    return np.exp(sigma * g)


def convdiff_matrix(n: int, wind: tuple, scheme: str = "upwind") -> sp.csr_matrix:
    """h²(−Δu + w·∇u) on an n^d grid, d = len(wind); w = wind (the Péclet vector, unit length
    domain); convection by first-order upwind or central differences. Nonsymmetric when w ≠ 0."""
    h = 1.0 / (n + 1)
    lap = _laplacian_1d(n)
    back = sp.diags([-np.ones(n - 1), np.ones(n)], [-1, 0], format="csr")  # u_i − u_{i−1}
    fwd = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], format="csr")  # u_{i+1} − u_i
    central = sp.diags([-0.5 * np.ones(n - 1), 0.5 * np.ones(n - 1)], [-1, 1], format="csr")
    a = sp.csr_matrix((n ** len(wind),) * 2)
    for axis, w in enumerate(wind):
        a = a + _kron_axis(lap, axis, len(wind))
        if w == 0:
            continue
        d1 = central if scheme == "central" else (back if w > 0 else fwd)
        a = a + h * w * _kron_axis(d1, axis, len(wind))
    return a.tocsr()


# ---------------------------------------------------------------- builders: algebraic

def _orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def spectrum_values(n: int, condition: float, spacing: str) -> np.ndarray:
    """n eigenvalues in [1, condition]: "geometric", or "clustered" (in [1, 2] but n/100 outliers
    up to `condition`)."""
    if spacing == "geometric":
        return np.geomspace(1.0, condition, n)
    lam = np.linspace(1.0, 2.0, n)
    k = max(1, n // 100)
    lam[-k:] = np.geomspace(condition / 10, condition, k)
    return lam


def dense_spd(n: int, condition: float, spacing: str, seed: int) -> sp.csr_matrix:
    """Q diag(λ) Qᵀ with a seeded Haar-orthogonal Q (stored dense as CSR)."""
    q = _orthogonal(n, np.random.default_rng(seed))
    a = (q * spectrum_values(n, condition, spacing)) @ q.T
    return sp.csr_matrix((a + a.T) / 2)


def sparse_spd(n: int, condition: float, seed: int, rounds: int = 3) -> sp.csr_matrix:
    """diag(λ), λ geometric in [1, condition], rotated by `rounds` layers of n/2 disjoint random
    Jacobi rotations (G A Gᵀ, as MATLAB's sprandsym does): sparse (≈ 20 nonzeros per row for
    3 rounds) with exactly the prescribed spectrum. n must be even."""
    if n % 2:
        raise ValueError(f"sparse_spd pairs the unknowns: n must be even, got {n}")
    rng = np.random.default_rng(seed)
    a = sp.diags(spectrum_values(n, condition, "geometric")[rng.permutation(n)], format="csr")
    for _ in range(rounds):
        perm = rng.permutation(n)
        i, j = perm[0::2], perm[1::2]
        t = rng.uniform(0.0, 2 * np.pi, n // 2)
        c, s = np.cos(t), np.sin(t)
        g = sp.csr_matrix((np.concatenate([c, s, -s, c]),
                           (np.concatenate([i, i, j, j]), np.concatenate([i, j, i, j]))), shape=(n, n))
        a = (g @ a @ g.T).tocsr()
    return ((a + a.T) / 2).tocsr()


# Higham's test matrices (N. J. Higham, "The Test Matrix Toolbox for MATLAB", 1995), our own
# implementations of his definitions (tests compare them with the `rogues` port when installed).

def lehmer(n: int) -> np.ndarray:
    """A_ij = min(i, j) / max(i, j); SPD."""
    i = np.arange(1, n + 1)
    return np.minimum.outer(i, i) / np.maximum.outer(i, i)


def kms(n: int, rho: float) -> np.ndarray:
    """Kac–Murdock–Szegő Toeplitz matrix A_ij = ρ^|i−j|; SPD for 0 < ρ < 1."""
    i = np.arange(n)
    return rho ** np.abs(np.subtract.outer(i, i)).astype(float)


def pascal(n: int) -> np.ndarray:
    """Pascal matrix A_ij = C(i+j, i) (0-based); SPD, condition growing like 16^n."""
    from scipy.special import comb

    i = np.arange(n)
    return comb(np.add.outer(i, i), i[:, None], exact=False)


def scaled(a: np.ndarray) -> np.ndarray:
    """D^{-1/2} A D^{-1/2} with D = diag(A): unit diagonal, definiteness kept."""
    d = 1 / np.sqrt(np.diag(a))
    return d[:, None] * a * d[None, :]


def minij(n: int) -> np.ndarray:
    """A_ij = min(i, j) (1-based); SPD."""
    i = np.arange(1, n + 1)
    return np.minimum.outer(i, i).astype(float)


def moler(n: int, alpha: float = -1.0) -> np.ndarray:
    """Moler matrix UᵀU with U unit upper triangular, α above the diagonal; SPD, one tiny
    eigenvalue."""
    u = np.eye(n) + np.triu(np.full((n, n), alpha), 1)
    return u.T @ u


def prolate(n: int, w: float = 0.25) -> np.ndarray:
    """Prolate Toeplitz matrix: a_0 = 2w, a_k = sin(2πwk)/(πk); SPD, ill-conditioned."""
    from scipy.linalg import toeplitz

    k = np.arange(1, n)
    return toeplitz(np.concatenate([[2 * w], np.sin(2 * np.pi * w * k) / (np.pi * k)]))


def pei(n: int, alpha: float = 1.0) -> np.ndarray:
    """Pei matrix αI + 11ᵀ; SPD for α > 0."""
    return alpha * np.eye(n) + 1.0


def hilbert(n: int) -> np.ndarray:
    """Hilbert matrix 1/(i+j−1); SPD, notoriously ill-conditioned."""
    i = np.arange(1, n + 1)
    return 1.0 / (np.add.outer(i, i) - 1)


def wathen(rho: np.ndarray) -> sp.csr_matrix:
    """Wathen's consistent mass matrix of 8-node serendipity elements on an nx×ny grid with
    element densities `rho` (nx×ny); SPD, n = 3 nx ny + 2 nx + 2 ny + 1."""
    e1 = np.array([[6, -6, 2, -8], [-6, 32, -6, 20], [2, -6, 6, -6], [-8, 20, -6, 32]])
    e2 = np.array([[3, -8, 2, -6], [-8, 16, -8, 20], [2, -8, 3, -8], [-6, 20, -8, 16]])
    e = np.block([[e1, e2], [e2.T, e1]]) / 45.0
    nx, ny = rho.shape
    n = 3 * nx * ny + 2 * nx + 2 * ny + 1
    rows, cols, vals = [], [], []
    for j in range(ny):
        for i in range(nx):
            n0 = 3 * j * nx + 3 * nx + 2 * i + 2 * j + 4
            n3 = (3 * j + 2) * nx + 2 * j + i + 1
            n4 = 3 * j * nx + 2 * i + 2 * j
            nodes = np.array([n0, n0 - 1, n0 - 2, n3, n4, n4 + 1, n4 + 2, n3 + 1])  # 0-based
            rows.append(np.repeat(nodes, 8))
            cols.append(np.tile(nodes, 8))
            vals.append((e * rho[i, j]).ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n))


def wilkinson(n: int) -> np.ndarray:
    """Wilkinson's W_n⁺: tridiagonal, ones off the diagonal, |m|, …, 1, 0, 1, …, m on it
    (n = 2m+1); symmetric indefinite."""
    m = n // 2
    return np.diag(np.abs(np.arange(-m, m + 1)).astype(float)) + np.eye(n, k=1) + np.eye(n, k=-1)


def fiedler(n: int) -> np.ndarray:
    """Fiedler matrix |i − j|; symmetric with one positive and n−1 negative eigenvalues."""
    i = np.arange(1, n + 1)
    return np.abs(np.subtract.outer(i, i)).astype(float)


def clement(n: int, symmetric: bool) -> np.ndarray:
    """Clement matrix: tridiagonal, zero diagonal, eigenvalues ±(n−1), ±(n−3), …; symmetric
    (off-diagonals √(i(n−i))) or not (n−i below, i above). Nonsingular for even n."""
    z = np.arange(1, n, dtype=float)
    if symmetric:
        y = np.sqrt(z[::-1] * z)
        return np.diag(y, -1) + np.diag(y, 1)
    return np.diag(z[::-1], -1) + np.diag(z, 1)


def dorr(n: int, theta: float = 0.01) -> np.ndarray:
    """Dorr matrix: tridiagonal, row diagonally dominant, ill-conditioned (a singularly
    perturbed two-point boundary value problem); nonsymmetric."""
    h = 1.0 / (n + 1)
    m = (n + 1) // 2
    term = theta / h**2
    c, e = np.zeros(n), np.zeros(n)
    k = np.arange(1, m + 1)
    c[:m] = -term
    e[:m] = c[:m] - (0.5 - k * h) / h
    e[m:] = -term
    c[m:] = e[m:] + (0.5 - np.arange(m + 1, n + 1) * h) / h  # Higham's i = m+1..n (rogues has 1..m)
    d = -(c + e)
    return np.diag(c[1:], -1) + np.diag(d) + np.diag(e[:-1], 1)


def grcar(n: int, k: int = 3) -> np.ndarray:
    """Grcar Toeplitz matrix: −1 below the diagonal, 1 on it and k above; nonsymmetric, well
    conditioned, with a sensitive spectrum (hard for GMRES(m) restarts)."""
    return np.tril(np.triu(np.ones((n, n))), k) - np.eye(n, k=-1)


def frank(n: int) -> np.ndarray:
    """Frank matrix: upper Hessenberg, A_ij = n + 1 − max(i, j) for j ≥ i − 1; ill-conditioned
    eigenvalues, determinant 1."""
    i = np.arange(1, n + 1)
    return np.triu(n + 1 - np.maximum.outer(i, i), -1).astype(float)


def parter(n: int) -> np.ndarray:
    """Parter matrix 1/(i − j + 1/2), a Cauchy–Toeplitz matrix with singular values near π."""
    i = np.arange(1, n + 1)
    return 1.0 / (np.subtract.outer(i, i) + 0.5)


def lotkin(n: int) -> np.ndarray:
    """Lotkin matrix: the Hilbert matrix with its first row set to ones; nonsymmetric,
    ill-conditioned."""
    a = hilbert(n)
    a[0, :] = 1.0
    return a


def shifted_laplacian(n: int, shift: float) -> sp.csr_matrix:
    """2-D 5-point Laplacian − shift·I (unscaled): symmetric indefinite for shift above its
    smallest eigenvalue (a real Helmholtz-type operator)."""
    return (poisson_matrix(n, 2) - shift * sp.identity(n * n)).tocsr()


def elasticity(grid: tuple, nu: float, spacing: tuple | None = None) -> sp.csr_matrix:
    """pyamg.gallery.linear_elasticity: 2-D Q1 stiffness (E = 1e5, Poisson ratio ν)."""
    from pyamg.gallery import linear_elasticity

    return sp.csr_matrix(linear_elasticity(grid, spacing=spacing, nu=nu, format="csr")[0])


def advection(n: int, theta: float) -> sp.csr_matrix:
    """pyamg.gallery.advection_2d: first-order upwind (cos θ, sin θ)·∇u on an n×n point grid
    with the inflow boundary eliminated: (n−1)² unknowns."""
    from pyamg.gallery import advection_2d

    return sp.csr_matrix(advection_2d((n, n), theta=theta)[0])


def pyamg_example(name: str) -> sp.csr_matrix:
    """One of the real matrices pyamg ships (pyamg/gallery/example_data), as CSR."""
    from pyamg.gallery import load_example

    return sp.csr_matrix(load_example(name)["A"], dtype=np.float64)


# ---------------------------------------------------------------- the catalogue

def _fmt(x: float) -> str:
    """1e-03 → 1e-3, 100.0 → 100: compact numbers for names."""
    s = f"{x:g}"
    return s.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def _exp(x: float) -> str:
    """A power of ten as 1e2, 1e10 (condition numbers and contrasts in names)."""
    return f"1e{round(np.log10(x))}"


def _catalogue() -> list[CollectionEntry]:
    out: list[CollectionEntry] = []

    def add(name, family, build, n, space_dim, source, description, symmetric=True,
            positive_definite=True, condition=None):
        out.append(CollectionEntry(name=name, family=family, symmetric=symmetric,
                                   positive_definite=positive_definite, dimension=int(n),
                                   space_dim=space_dim, source=source, description=description,
                                   build=build, condition=condition))

    # Poisson: 5-/7-point (pyamg.gallery.poisson) and the 9-point FE stencil
    for n in (16, 32, 64, 100):
        add(f"poisson2d-{n}", "poisson", functools.partial(poisson_matrix, n, 2), n * n, 2,
            "pyamg.gallery.poisson", f"5-point Laplacian on a {n}×{n} grid")
    for n in (8, 12, 16, 21):
        add(f"poisson3d-{n}", "poisson", functools.partial(poisson_matrix, n, 3), n**3, 3,
            "pyamg.gallery.poisson", f"7-point Laplacian on a {n}³ grid")
    for n in (32, 64):
        add(f"poisson2d-fe9-{n}", "poisson", functools.partial(anisotropic_2d, n, 1.0, 0.0, "FE"),
            n * n, 2, "pyamg.gallery.diffusion_stencil_2d", f"9-point bilinear FE Laplacian, {n}×{n}")

    # rotated anisotropic diffusion, 2-D (FD: 5 angles × 4 ε; FE: 4) and 3-D
    for eps in (1e-1, 1e-2, 1e-3, 1e-4):
        for deg in (0, 15, 30, 45, 60):
            add(f"aniso2d-eps{_exp(eps)}-th{deg}", "anisotropic",
                functools.partial(anisotropic_2d, 48, eps, np.deg2rad(deg), "FD"), 48 * 48, 2,
                "pyamg.gallery.diffusion_stencil_2d",
                f"−∇·(K∇u), K = R(θ)diag(1, ε)R(θ)ᵀ, ε={_fmt(eps)}, θ={deg}°, 9-point FD, 48×48")
    for eps in (1e-2, 1e-4):
        for deg in (30, 45):
            add(f"aniso2d-fe-eps{_exp(eps)}-th{deg}", "anisotropic",
                functools.partial(anisotropic_2d, 48, eps, np.deg2rad(deg), "FE"), 48 * 48, 2,
                "pyamg.gallery.diffusion_stencil_2d",
                f"rotated anisotropic diffusion, ε={_fmt(eps)}, θ={deg}°, bilinear FE, 48×48")
    # (pyamg's rotated 27-point FD stencil is indefinite for two small ε and two rotations:
    # (45°, 45°) is used only with ε_y = 1)
    for ey, ez in ((1.0, 1e-2), (1e-2, 1e-2), (1.0, 1e-4), (1e-1, 1e-3)):
        for rot in ((0, 0, 0), (45, 0, 0)) + (((45, 45, 0),) if ey == 1.0 else ()):
            tag = {(0, 0, 0): "", (45, 0, 0): "-rot45", (45, 45, 0): "-rot45x45"}[rot]
            add(f"aniso3d-ey{'1' if ey == 1 else _exp(ey)}-ez{_exp(ez)}{tag}", "anisotropic",
                functools.partial(anisotropic_3d, 14, ey, ez, *np.deg2rad(rot)), 14**3, 3,
                "pyamg.gallery.diffusion_stencil_3d",
                f"3-D anisotropic diffusion diag(1, {_fmt(ey)}, {_fmt(ez)}), rotated by "
                f"{rot[0]}°/{rot[1]}°, 27-point FD, 14³")

    # jumping coefficients: checkerboards 2-D and 3-D, smooth log-normal fields
    for contrast in (1e2, 1e4, 1e6):
        for blocks in (2, 4, 8):
            add(f"jump2d-c{_exp(contrast)}-b{blocks}", "jumping",
                functools.partial(lambda c, b: diffusion_matrix(checkerboard_kappa(48, 2, c, b)),
                                  contrast, blocks), 48 * 48, 2, "bench_linear.collection",
                f"−∇·(κ∇u), κ ∈ {{1, {_fmt(contrast)}}} on a {blocks}×{blocks} checkerboard, 48×48")
        for blocks in (2, 4):
            add(f"jump3d-c{_exp(contrast)}-b{blocks}", "jumping",
                functools.partial(lambda c, b: diffusion_matrix(checkerboard_kappa(14, 3, c, b)),
                                  contrast, blocks), 14**3, 3, "bench_linear.collection",
                f"−∇·(κ∇u), κ ∈ {{1, {_fmt(contrast)}}} on a {blocks}³ checkerboard, 14³")
    for sigma in (1.0, 2.0, 3.0):
        add(f"lognormal2d-s{_fmt(sigma)}", "jumping",
            functools.partial(lambda s: diffusion_matrix(lognormal_kappa(64, 2, s, 7)), sigma),
            64 * 64, 2, "bench_linear.collection",
            f"−∇·(κ∇u), κ = exp({_fmt(sigma)}·g), g a smooth Gaussian field (seed 7), 64×64")
    add("lognormal3d-s2", "jumping",
        lambda: diffusion_matrix(lognormal_kappa(14, 3, 2.0, 7)), 14**3, 3, "bench_linear.collection",
        "−∇·(κ∇u), κ = exp(2g), g a smooth Gaussian field (seed 7), 14³")

    # linear elasticity, Q1 (pyamg)
    for g in (16, 32):
        for nu in (0.3, 0.45, 0.49):
            add(f"elasticity-{g}-nu{_fmt(nu)}", "elasticity",
                functools.partial(elasticity, (g, g), nu), 
                2 * g * g, 2, "pyamg.gallery.linear_elasticity",
                f"2-D linear elasticity, Q1 elements on a {g}×{g} grid, ν={nu}")
    add("elasticity-48-nu0.3", "elasticity",
        functools.partial(elasticity, (48, 48), 0.3), 2 * 48 * 48, 2,
        "pyamg.gallery.linear_elasticity", "2-D linear elasticity, Q1 elements on a 48×48 grid, ν=0.3")
    add("elasticity-32-thin", "elasticity",
        functools.partial(elasticity, (32, 32), 0.3, (1.0, 0.1)),
        2 * 32 * 32, 2, "pyamg.gallery.linear_elasticity",
        "2-D linear elasticity, 32×32 Q1 elements of aspect ratio 10, ν=0.3")

    # the real matrices pyamg ships (helmholtz_2D is complex and left out)
    shipped = {"airfoil": (260, True, True, 2), "bar": (600, True, True, 3), "knot": (239, True, True, 3),
               "unit_square": (191, True, False, 2), "unit_cube": (125, True, True, 3),
               "local_disc_galerkin_diffusion": (966, True, True, 2),
               "recirc_flow": (225, False, False, 2)}
    notes = {"unit_square": " (singular: a consistent semidefinite system)",
             "local_disc_galerkin_diffusion": " (symmetric to 1e-12 relative)",
             "recirc_flow": " (convection-dominated, nonsymmetric)"}
    for name, (n, sym, pd, dim) in shipped.items():
        add(f"pyamg-{name}", "pyamg_example", functools.partial(pyamg_example, name), n, dim,
            "pyamg example data", f"pyamg's shipped matrix {name!r}{notes.get(name, '')}",
            symmetric=sym, positive_definite=pd)

    # SPD with prescribed condition numbers 1e2..1e10
    for cond in (1e2, 1e4, 1e6, 1e8, 1e10):
        for spacing in ("geometric", "clustered"):
            add(f"spd-dense-{spacing}-k{_exp(cond)}", "spd_condition",
                functools.partial(dense_spd, 300, cond, spacing, 11), 300, None,
                "bench_linear.collection",
                f"Q diag(λ) Qᵀ, Q Haar-orthogonal (seed 11), λ {spacing} in [1, {_fmt(cond)}], n=300",
                condition=cond)
        for n in (1000, 2000):
            add(f"spd-sparse-{n}-k{_exp(cond)}", "spd_condition",
                functools.partial(sparse_spd, n, cond, 13), n, None, "bench_linear.collection",
                f"diag(λ) under 3 layers of random Jacobi rotations (seed 13), λ geometric in "
                f"[1, {_fmt(cond)}], n={n}", condition=cond)

    # Higham's test matrices
    def dense(f, *args):
        return functools.partial(lambda *a: sp.csr_matrix(f(*a)), *args)

    higham = "Higham's test matrices (own implementation)"
    for n in (100, 400):
        add(f"lehmer-{n}", "higham", dense(lehmer, n), n, None, higham, f"Lehmer matrix, n={n}")
        add(f"minij-{n}", "higham", dense(minij, n), n, None, higham, f"MIN(i,j), n={n}")
    for rho in (0.5, 0.9, 0.99):
        add(f"kms-200-r{_fmt(rho)}", "higham", dense(kms, 200, rho), 200, None, higham,
            f"Kac–Murdock–Szegő Toeplitz, ρ={rho}, n=200")
    for n in (8, 10):
        add(f"pascal-{n}-scaled", "higham", dense(lambda k: scaled(pascal(k)), n), n, None, higham,
            f"Pascal matrix scaled to unit diagonal, n={n}")
    for n in (10, 15):
        add(f"moler-{n}", "higham", dense(moler, n), n, None, higham, f"Moler matrix, n={n}")
    for n in (10, 14):
        add(f"prolate-{n}", "higham", dense(prolate, n), n, None, higham, f"prolate Toeplitz, w=1/4, n={n}")
    add("pei-200", "higham", dense(pei, 200), 200, None, higham, "Pei matrix I + 11ᵀ, n=200")
    for n in (6, 8):
        add(f"hilbert-{n}", "higham", dense(hilbert, n), n, None, higham, f"Hilbert matrix, n={n}")
    add("tridiag-1000", "higham", lambda: _laplacian_1d(1000), 1000, 1, higham,
        "tridiag(−1, 2, −1), the 1-D Laplacian, n=1000")
    for g in (10, 20, 30):
        add(f"wathen-{g}x{g}", "higham",
            functools.partial(lambda g: wathen(np.random.default_rng(17).integers(1, 100, (g, g))), g),
            3 * g * g + 4 * g + 1, 2, higham,
            f"Wathen FE mass matrix, {g}×{g} serendipity elements, densities seeded (17)")
    for n in (21, 101):
        add(f"wilkinson-{n}", "higham", dense(wilkinson, n), n, None, higham,
            f"Wilkinson W⁺, n={n} (symmetric indefinite)", positive_definite=False)
    add("fiedler-100", "higham", dense(fiedler, 100), 100, None, higham,
        "Fiedler |i − j|, n=100 (symmetric indefinite)", positive_definite=False)
    add("clement-sym-100", "higham", dense(clement, 100, True), 100, None, higham,
        "symmetric Clement, zero diagonal, eigenvalues ±1, ±3, …, ±99", positive_definite=False)
    add("clement-100", "higham", dense(clement, 100, False), 100, None, higham,
        "Clement, zero diagonal, nonsymmetric", symmetric=False, positive_definite=False)
    add("dorr-200", "higham", dense(dorr, 200), 200, None, higham,
        "Dorr, θ=0.01, tridiagonal, nonsymmetric, ill-conditioned", symmetric=False,
        positive_definite=False)
    add("grcar-200", "higham", dense(grcar, 200), 200, None, higham,
        "Grcar Toeplitz, k=3, nonsymmetric", symmetric=False, positive_definite=False)
    add("frank-12", "higham", dense(frank, 12), 12, None, higham,
        "Frank upper Hessenberg, n=12, nonsymmetric", symmetric=False, positive_definite=False)
    add("parter-100", "higham", dense(parter, 100), 100, None, higham,
        "Parter Cauchy–Toeplitz, n=100, nonsymmetric", symmetric=False, positive_definite=False)
    add("lotkin-8", "higham", dense(lotkin, 8), 8, None, higham,
        "Lotkin (Hilbert with a row of ones), n=8, nonsymmetric", symmetric=False,
        positive_definite=False)

    # symmetric indefinite: shifted Laplacians (real Helmholtz-type)
    for shift in (0.05, 0.2, 0.5):
        add(f"shifted-laplace2d-32-s{_fmt(shift)}", "shifted_laplacian",
            functools.partial(shifted_laplacian, 32, shift), 32 * 32, 2, "bench_linear.collection",
            f"5-point Laplacian − {shift}·I, 32×32 (symmetric indefinite)", positive_definite=False)

    # nonsymmetric convection–diffusion (upwind 2-D: 4 Péclet × 3 angles; central; 3-D)
    for pe in (1.0, 10.0, 100.0, 1000.0):
        for deg in (0, 30, 45):
            w = (pe * np.cos(np.deg2rad(deg)), pe * np.sin(np.deg2rad(deg)))
            add(f"convdiff2d-pe{_fmt(pe)}-th{deg}", "convection_diffusion",
                functools.partial(convdiff_matrix, 48, w, "upwind"), 48 * 48, 2,
                "bench_linear.collection",
                f"−Δu + w·∇u, |w| = Pe = {_fmt(pe)} at {deg}°, upwind, 48×48",
                symmetric=False, positive_definite=False)
    for pe in (10.0, 50.0):
        w = (pe / np.sqrt(2), pe / np.sqrt(2))
        add(f"convdiff2d-central-pe{_fmt(pe)}", "convection_diffusion",
            functools.partial(convdiff_matrix, 48, w, "central"), 48 * 48, 2, "bench_linear.collection",
            f"−Δu + w·∇u, Pe = {_fmt(pe)} at 45°, central differences, 48×48",
            symmetric=False, positive_definite=False)
    for pe in (10.0, 100.0, 1000.0):
        w = (pe / np.sqrt(3),) * 3
        add(f"convdiff3d-pe{_fmt(pe)}", "convection_diffusion",
            functools.partial(convdiff_matrix, 14, w, "upwind"), 14**3, 3, "bench_linear.collection",
            f"−Δu + w·∇u, Pe = {_fmt(pe)} along (1,1,1), upwind, 14³",
            symmetric=False, positive_definite=False)
    for deg in (22.5, 45, 67.5):
        add(f"advection2d-th{_fmt(deg)}", "advection",
            functools.partial(advection, 49, np.deg2rad(deg)),
            48 * 48, 2, "pyamg.gallery.advection_2d",
            f"pure advection (cos θ, sin θ)·∇u, θ={_fmt(deg)}°, upwind, 48×48",
            symmetric=False, positive_definite=False)
    return out


@functools.lru_cache(maxsize=1)
def _entries() -> dict[str, CollectionEntry]:
    entries = _catalogue()
    table = {e.name: e for e in entries}
    if len(table) != len(entries):  # pragma: no cover - a programming error caught by the tests
        raise RuntimeError("linear.collection: duplicate matrix names")
    return table


@functools.lru_cache(maxsize=8)
def _matrix(name: str) -> sp.csr_matrix:
    a = sp.csr_matrix(collection_entry(name).build(), dtype=np.float64)
    a.sum_duplicates()
    a.sort_indices()
    return a


def collection_names(group: str | None = None, family: str | None = None) -> list[str]:
    """The names of the collection's systems, in catalogue order; optionally only one solver
    group ("spd", "symmetric_indefinite", "nonsymmetric") or one family."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, got {group!r}")
    return [e.name for e in _entries().values()
            if (group is None or e.group == group) and (family is None or e.family == family)]


def collection_entries() -> list[CollectionEntry]:
    """Every entry of the collection, in catalogue order."""
    return list(_entries().values())


def collection_entry(name: str) -> CollectionEntry:
    """The entry named `name`; a ValueError naming the nearest names for an unknown one."""
    table = _entries()
    if name not in table:
        near = difflib.get_close_matches(str(name), list(table), n=3, cutoff=0.5)
        hint = f"; nearest: {', '.join(near)}" if near else ""
        raise ValueError(f"linear.collection: unknown matrix {name!r}{hint} "
                         f"({len(table)} systems; bench_linear.collection.collection_names() lists them)")
    return table[name]


def collection(seed: int, device, dtype, matrix: str = "poisson2d-32") -> bench_core.LinearSystemProblem:
    """The named system of the collection, x* drawn from the seed, b = A x*."""
    return bench_core.LinearSystemProblem([collection_entry(matrix).system(seed, device, dtype)])


#: The suites' stall window: converging CG plateaus for up to 249 iterations on the collection
#: (tridiag-1000; 161 on spd-sparse-1000-k1e6), measured with scipy's CG; the runner's default
#: of 100 stopped those before the target.
SUITE_STALL_WINDOW = 500


def suite_budget(entry: CollectionEntry) -> dict:
    """The budget a collection suite gives one system: max(2000, 4n) iterations (10n for the
    prescribed-condition family, whose CG needs up to 8n), capped at 20000; 20 s of timed work;
    a stall window of SUITE_STALL_WINDOW iterations."""
    per_unknown = 10 if entry.family == "spd_condition" else 4
    return {"max_steps": int(min(20000, max(2000, per_unknown * entry.dimension))), "max_seconds": 20,
            "stall_window": SUITE_STALL_WINDOW}


#: Per solver group: its suite file under suites/, what it holds, and its solvers as
#: (name, extra TOML line of the [[optimizers]] table).
SUITES = {
    "spd": ("linear_collection.toml", "the SPD systems",
            "CG, Jacobi-PCG, IC(0)-PCG, SA-AMG-CG and the learned PCG (2-D 3×3-stencil systems only: "
            "an error with its reason on the others)",
            (("linear.cg", ""), ("linear.pcg", 'sweep = { precond = ["jacobi", "ic0"] }'),
             ("pyamg.sa_cg", ""), ("linear.learned_pcg", ""))),
    "nonsymmetric": ("linear_collection_nonsym.toml", "the nonsymmetric systems",
                     "GMRES(30) and BiCGSTAB",
                     (("linear.gmres", "hparams = { restart = 30 }"), ("linear.bicgstab", ""))),
    "symmetric_indefinite": ("linear_collection_indefinite.toml",
                             "the symmetric systems that are not positive definite",
                             "MINRES and GMRES(30)",
                             (("linear.minres", ""), ("linear.gmres", "hparams = { restart = 30 }"))),
}


def suite_toml(group: str) -> str:
    """The whole suite file of one solver group (SUITES): header, one [[problems]] table per
    system of the group with its suite_budget and the target 1e-8, then the solvers."""
    if group not in SUITES:
        raise ValueError(f"group must be one of {', '.join(SUITES)}, got {group!r}")
    file, what, solver_text, solvers = SUITES[group]
    stem = file.removesuffix(".toml")
    lines = [
        f"# The offline matrix collection (linear.collection, issue 19): {what}, with {solver_text}.",
        "# float64 on the CPU, one seed, target ‖b − Ax‖/‖b‖ ≤ 1e-8 (the solvers' own tolerance is 0).",
        "# A suite runs every solver on every problem, so the collection is split by solver group:",
        "# " + ", ".join(f for f, *_ in SUITES.values()) + ".",
        '# Measured time: docs/linear.md ("The collection suites").',
        f"#   bench run suites/{file} --out results/{stem} --jobs 2",
        f"# Generated by: python -m bench_linear.collection {group} > suites/{file}",
        f'name = "{stem}"',
        f'description = "The offline matrix collection: {what}, with {solver_text}"',
        "seeds = [0]", 'device = "cpu"', 'dtype = "float64"', ""]
    for name in collection_names(group):
        b = suite_budget(collection_entry(name))
        lines += ["[[problems]]", 'name = "linear.collection"', f'params = {{ matrix = "{name}" }}',
                  "budget = { " + ", ".join(f"{k} = {v}" for k, v in b.items()) + " }",
                  "target = { rel_residual = 1e-8 }", ""]
    for solver, extra in solvers:
        lines += ["[[optimizers]]", f'name = "{solver}"'] + ([extra] if extra else []) + [""]
    return "\n".join(lines[:-1]) + "\n"


def collection_problem_specs() -> list[bench_core.ProblemSpec]:
    """linear.collection."""
    return [bench_core.ProblemSpec(
        name="linear.collection", kind="linear_system", factory=collection,
        params={"matrix": "poisson2d-32"}, targets={"rel_residual": 1e-8},
        budget={"max_steps": 2000}, reports=("rel_residual", "rel_error"),
        description=f"{len(_entries())} named systems (Poisson, anisotropic, jumping, elasticity, pyamg's"
                    " matrices, prescribed condition, Higham, convection–diffusion); param matrix.")]


if __name__ == "__main__":  # python -m bench_linear.collection GROUP > suites/FILE: regenerate a suite
    import sys

    sys.stdout.write(suite_toml(sys.argv[1] if len(sys.argv) > 1 else "spd"))
