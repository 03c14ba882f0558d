"""Sparse kernels the solvers share: matrix-vector products, triangular sweeps, diagonal.

Every kernel takes and returns torch tensors on the system's device. On the CPU the CSR
matrix-vector product and the sequential sweeps (SOR, triangular solves) run through scipy's
and pyamg's compiled kernels on zero-copy numpy views of the tensors (torch's CPU CSR kernels
are 3–5× slower here); elsewhere (CUDA) they use torch's CSR kernels (cuSPARSE SpMV and SpSV).
The solver code above these kernels is the same on every device.
"""
from __future__ import annotations


import numpy as np
import scipy.sparse as sp
import torch

import bench_core

NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32}


def host_path(t: torch.Tensor) -> bool:
    """True when the scipy/pyamg kernels can work on `t` in place (CPU, float32 or float64)."""
    return t.device.type == "cpu" and t.dtype in NUMPY_DTYPES


def torch_csr(a: sp.csr_matrix, device, dtype) -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor."""
    return bench_core.csr_from_scipy(a, device, dtype)


def check_square(system: bench_core.LinearSystem, solver: str) -> None:
    """Raise a clear ValueError unless A is square and matches b."""
    shape = tuple(system.A.shape)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{solver}: the matrix must be square, got shape {shape}")
    if shape[0] != system.n:
        raise ValueError(f"{solver}: b has {system.n} entries but A is {shape[0]}×{shape[1]}")


def is_symmetric(system: bench_core.LinearSystem, rtol: float = 1e-10) -> bool:
    """Whether A is symmetric: from ``system.info["symmetric"]`` when given, else checked."""
    if "symmetric" in system.info:
        return bool(system.info["symmetric"])
    a = system.scipy()
    diff = abs(a - a.T)
    scale = abs(a).max() if a.nnz else 1.0
    return bool(diff.nnz == 0 or diff.max() <= rtol * scale)


class Operator:
    """y = A x for one system: CSR (scipy kernel on CPU, torch CSR elsewhere) or matrix-free."""

    def __init__(self, system: bench_core.LinearSystem, kind: str = "csr"):
        """``kind``: "csr", "stencil" (Poisson only), or "auto" (the stencil where the problem
        declares one: 2× faster than scipy's CSR product on the CPU in benchmarks/linear_solvers.py)."""
        self.system = system
        b = system.b
        if kind == "auto":
            kind = "stencil" if system.info.get("stencil") == "laplace" and "h" in system.info else "csr"
        self.kind = kind
        if kind == "stencil":
            if system.info.get("stencil") != "laplace" or "grid" not in system.info:
                raise ValueError("operator='stencil' needs a Poisson problem (info stencil='laplace')")
            self.grid = tuple(system.info["grid"])
            self.scale = 1.0 / system.info["h"] ** 2
            self.apply = self._stencil
        elif kind != "csr":
            raise ValueError(f"operator must be 'csr', 'stencil' or 'auto', got {kind!r}")
        elif host_path(b) and system.A.layout == torch.sparse_csr:
            self.a = system.scipy().astype(NUMPY_DTYPES[b.dtype], copy=False)
            self.apply = self._scipy
        else:
            self.A = system.A
            self.apply = self._torch

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(x)

    def _scipy(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.a @ x.numpy())

    def _torch(self, x: torch.Tensor) -> torch.Tensor:
        return self.A @ x

    def _stencil(self, x: torch.Tensor) -> torch.Tensor:
        """The (2d)-point Laplacian applied on the grid with shifted slices, no matrix stored."""
        g = x.view(self.grid)
        y = g * (2.0 * len(self.grid))
        for axis in range(len(self.grid)):
            n = self.grid[axis]
            y.narrow(axis, 1, n - 1).sub_(g.narrow(axis, 0, n - 1))
            y.narrow(axis, 0, n - 1).sub_(g.narrow(axis, 1, n - 1))
        return y.mul_(self.scale).view(-1)


def diagonal(system: bench_core.LinearSystem) -> torch.Tensor:
    """The diagonal of A as a tensor like b."""
    return torch.from_numpy(np.asarray(system.scipy().diagonal(), dtype=np.float64)).to(system.b)


class TriangularSweep:
    """x ← solution of T x = r for a triangular CSR T (a Gauss–Seidel sweep over T).

    ``lower=True`` sweeps rows forward, else backward. On the CPU pyamg's compiled Gauss–Seidel
    kernel does the substitution (a sweep over a triangular matrix is exact substitution);
    elsewhere torch's sparse triangular solve (cuSPARSE).
    """

    def __init__(self, t: sp.csr_matrix, lower: bool, like: torch.Tensor):
        t = t.tocsr()
        t.sort_indices()
        self.lower = lower
        self.host = host_path(like)
        if self.host:
            dt = NUMPY_DTYPES[like.dtype]
            self.ap = t.indptr.astype(np.int32)
            self.aj = t.indices.astype(np.int32)
            self.ax = np.asarray(t.data, dtype=dt)
            self.n = t.shape[0]
        else:
            self.T = torch_csr(t, like.device, like.dtype)

    def solve(self, r: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Solve T x = r (into x when given; x must then be a contiguous tensor)."""
        if self.host:
            from pyamg import amg_core

            out = torch.zeros_like(r) if x is None else x
            rr = r.contiguous().numpy()
            if self.lower:
                amg_core.gauss_seidel(self.ap, self.aj, self.ax, out.numpy(), rr, 0, self.n, 1)
            else:
                amg_core.gauss_seidel(self.ap, self.aj, self.ax, out.numpy(), rr, self.n - 1, -1, -1)
            return out
        sol = torch.triangular_solve(r.unsqueeze(1), self.T, upper=not self.lower).solution.squeeze(1)
        if x is not None:
            x.copy_(sol)
            return x
        return sol


class SORSweep:
    """One SOR sweep for A = L + D + U with relaxation ω, in place on x:

        forward:  (D/ω + L) x_new = b − (U + (1 − 1/ω) D) x
        backward: (D/ω + U) x_new = b − (L + (1 − 1/ω) D) x

    On the CPU: pyamg's Gauss–Seidel kernel on A with its diagonal replaced by D/ω and right-hand
    side b + (1/ω − 1) D x, which is the same update row by row. Elsewhere: torch's sparse
    triangular solve plus one sparse product.
    """

    def __init__(self, system: bench_core.LinearSystem, omega: float):
        a = system.scipy().tocsr()
        a.sort_indices()
        self.a = a
        self.n = a.shape[0]
        self.d = diagonal(system)
        if bool((self.d == 0).any()):
            raise ValueError("SOR/SSOR/Gauss–Seidel need a nonzero diagonal (the matrix has a zero on it)")
        self.like = system.b
        self.host = host_path(system.b)
        if self.host:
            dt = NUMPY_DTYPES[system.b.dtype]
            self.ap, self.aj = a.indptr.astype(np.int32), a.indices.astype(np.int32)
            self.ax0 = np.asarray(a.data, dtype=dt)
            rows = np.repeat(np.arange(self.n), np.diff(a.indptr))
            self.diag_pos = np.flatnonzero(rows == a.indices)
            self.ax = self.ax0.copy()
        self.omega = None
        self.set_omega(omega)

    def set_omega(self, omega: float) -> None:
        """Change ω (cheap: rescales the stored diagonal)."""
        if not 0 < omega < 2:
            raise ValueError(f"omega must lie in (0, 2), got {omega}")
        if omega == self.omega:
            return
        self.omega = float(omega)
        if self.host:
            self.ax[self.diag_pos] = self.ax0[self.diag_pos] / omega
        else:
            dev, dt = self.like.device, self.like.dtype
            dw = sp.diags(self.a.diagonal())
            self.fwd_T = torch_csr(sp.tril(self.a, -1) + dw / omega, dev, dt)
            self.fwd_N = torch_csr(sp.triu(self.a, 1) + (1 - 1 / omega) * dw, dev, dt)
            self.bwd_T = torch_csr(sp.triu(self.a, 1) + dw / omega, dev, dt)
            self.bwd_N = torch_csr(sp.tril(self.a, -1) + (1 - 1 / omega) * dw, dev, dt)

    def sweep(self, x: torch.Tensor, b: torch.Tensor, forward: bool = True) -> torch.Tensor:
        """One sweep in place on x (x contiguous); returns x."""
        if self.host:
            from pyamg import amg_core

            rhs = (b + (1.0 / self.omega - 1.0) * self.d * x).numpy()
            start, stop, step = (0, self.n, 1) if forward else (self.n - 1, -1, -1)
            amg_core.gauss_seidel(self.ap, self.aj, self.ax, x.numpy(), rhs, start, stop, step)
            return x
        T, N = (self.fwd_T, self.fwd_N) if forward else (self.bwd_T, self.bwd_N)
        rhs = b - N @ x
        x.copy_(torch.triangular_solve(rhs.unsqueeze(1), T, upper=not forward).solution.squeeze(1))
        return x
