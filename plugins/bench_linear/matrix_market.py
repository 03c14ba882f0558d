"""linear.matrix_market: a linear system from a user's Matrix Market file (.mtx, .mtx.gz, .mtx.bz2).

The file is read with scipy.io.mmread (scipy ≥ 1.12 reads through its bundled C++
fast_matrix_market, so the separate package adds nothing here). The right-hand
side is b = A x* with x* = 1 (``solution = "ones"``, the default) or a standard normal vector drawn
from the trial's seed (``solution = "random"``), so the relative error is always known.
Symmetry is read from the file's header (``symmetric``) or checked on the matrix; positive
definiteness is checked by a Cholesky factorization up to n = 2000 and otherwise left undeclared.

Coordinate and array (dense) files, real, integer or pattern entries, general or symmetric storage
are read. Every bad input (missing or unreadable file, not a Matrix Market file, a complex matrix,
non-square, 0×0 or all-zero, NaN/Inf entries) raises a ValueError with one line naming the file.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import bench_core

SOLUTIONS = ("ones", "random")
#: Up to this n definiteness is checked (dense Cholesky); above it only symmetry is declared.
DEFINITE_CHECK_MAX_N = 2000


def _fix_scipy_threadpoolctl_version() -> None:
    """Work around scipy's fast_matrix_market threadpoolctl controller (scipy 1.17), whose
    ``get_version`` returns the function ``_fmm_version`` instead of calling it: once mmread has
    loaded its core, ``threadpoolctl.threadpool_info()`` reports a function as a version and the
    runner's JSON record of the BLAS libraries (bench_core.threads.blas_info) fails. Replaces the
    method with one returning the string; a no-op where scipy has fixed it or lacks the class."""
    try:
        from scipy.io import _fast_matrix_market as fmm
    except ImportError:  # pragma: no cover - older scipy: pure-Python reader, no controller
        return
    ctl = getattr(fmm, "_FMMThreadPoolCtlController", None)
    version = getattr(fmm, "_fmm_version", None)
    if ctl is None or version is None or getattr(ctl, "_bench_fixed", False):
        return
    try:
        broken = callable(ctl.get_version(None))
    except Exception:  # noqa: BLE001 - an unexpected shape of the class: leave it alone
        return
    if broken:
        ctl.get_version = lambda self: str(version())
        ctl._bench_fixed = True


def _read(path: Path):
    """scipy.io.mmread (through scipy's bundled fast_matrix_market)."""
    from scipy.io import mmread

    _fix_scipy_threadpoolctl_version()
    return mmread(str(path))


def _header_symmetry(path: Path) -> str | None:
    """The symmetry field of the banner ("general", "symmetric", ...) or None."""
    from scipy.io import mminfo

    try:
        return str(mminfo(str(path))[5])
    except Exception:  # noqa: BLE001 - mmread's own error is the one reported
        return None


def read_matrix_market(path: str) -> sp.csr_matrix:
    """A square, nonempty, real sparse matrix from a Matrix Market file, as float64 CSR.

    Raises ValueError("<file>: <why>") on any bad input."""
    p = Path(path).expanduser()
    if not str(path):
        raise ValueError("linear.matrix_market: no file given (set params.path to a .mtx file)")
    if not p.is_file():
        raise ValueError(f"{p}: Matrix Market file not found")
    try:
        a = _read(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line about the file
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{p}: not a readable Matrix Market file ({why[:200]})") from None
    if not sp.issparse(a):
        a = np.asarray(a)
        if a.ndim != 2:
            raise ValueError(f"{p}: expected a matrix, got an array of shape {a.shape}")
    if np.iscomplexobj(a.data if sp.issparse(a) else a):
        raise ValueError(f"{p}: complex matrices are not supported (the solvers are real)")
    shape = tuple(a.shape)
    if shape[0] != shape[1]:
        raise ValueError(f"{p}: the matrix must be square, got {shape[0]}×{shape[1]}")
    if shape[0] == 0:
        raise ValueError(f"{p}: the matrix is empty (0×0)")
    try:
        a = sp.csr_matrix(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{p}: entries are not real numbers ({exc})") from None
    a.sum_duplicates()
    a.eliminate_zeros()
    if a.nnz == 0:
        raise ValueError(f"{p}: the matrix has no nonzero entries")
    if not np.isfinite(a.data).all():
        raise ValueError(f"{p}: the matrix has NaN or infinite entries")
    a.sort_indices()
    return a


def matrix_properties(a: sp.csr_matrix, header_symmetry: str | None = None) -> dict:
    """``symmetric`` (header or ‖A − Aᵀ‖ ≤ 1e-12‖A‖) and, for n ≤ DEFINITE_CHECK_MAX_N,
    ``spd`` / ``positive_definite`` from a Cholesky attempt."""
    if header_symmetry == "symmetric":
        symmetric = True
    elif header_symmetry == "skew-symmetric":
        symmetric = False
    else:
        diff = abs(a - a.T)
        symmetric = bool(diff.nnz == 0 or diff.max() <= 1e-12 * abs(a).max())
    out = {"symmetric": symmetric}
    if symmetric and a.shape[0] <= DEFINITE_CHECK_MAX_N:
        try:
            np.linalg.cholesky(a.toarray())
            out["spd"] = out["positive_definite"] = True
        except np.linalg.LinAlgError:
            out["spd"] = out["positive_definite"] = False
    elif not symmetric:
        out["spd"] = out["positive_definite"] = False
    return out


def matrix_market(seed: int, device, dtype, path: str = "",
                  solution: str = "ones") -> bench_core.LinearSystemProblem:
    """The system A x = b for the matrix in `path`, b = A x* (x* = 1 or seeded random)."""
    if solution not in SOLUTIONS:
        raise ValueError(f"linear.matrix_market: solution must be one of {', '.join(SOLUTIONS)},"
                         f" got {solution!r}")
    a = read_matrix_market(path)
    n = a.shape[0]
    x = np.ones(n) if solution == "ones" else np.random.default_rng(seed).standard_normal(n)
    if not math.isfinite(float(np.linalg.norm(a @ x))):
        raise ValueError(f"{path}: A x* overflows (entries too large for float64)")
    info = {"n": n, "path": str(path), "matrix": Path(path).name, "nnz": int(a.nnz),
            **matrix_properties(a, _header_symmetry(Path(path).expanduser()))}
    return bench_core.LinearSystemProblem([bench_core.LinearSystem.from_scipy(
        a, x_exact=x, device=device, dtype=dtype, name=f"mtx-{Path(path).name}", info=info)])


def matrix_market_problem_specs() -> list[bench_core.ProblemSpec]:
    """linear.matrix_market."""
    return [bench_core.ProblemSpec(
        name="linear.matrix_market", kind="linear_system", factory=matrix_market,
        params={"path": "", "solution": "ones"}, targets={"rel_residual": 1e-8},
        budget={"max_steps": 2000}, reports=("rel_residual", "rel_error"),
        description="A user's Matrix Market file (params.path), b = A x* with x* = 1 or seeded random.")]
