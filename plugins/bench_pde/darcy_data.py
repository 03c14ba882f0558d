"""Darcy-flow data for the neural-operator problem: generated here, cached on disk with a checksum.

Each sample is a coefficient field a and the solution u of −∇·(a ∇u) = 1 on (0, 1)², u = 0 on the
boundary, on an s×s cell-centred grid, as in the Darcy benchmark of "Fourier Neural Operator for
Parametric Partial Differential Equations":

- a = 12 where a Gaussian random field is ≥ 0 and 3 elsewhere; the field has covariance
  (−Δ + τ²)^(−α) (τ = 3, α = 2), sampled in a cosine basis (``scipy.fft.idctn``).
- u comes from the classical 5-point finite-volume discretization (harmonic means of a on the
  faces, Dirichlet walls half a cell away), solved with ``scipy.sparse.linalg.spsolve``.

The data set depends only on (resolution, n_samples, data_seed). It is cached as an ``.npz``
(no pickle) under ``$BENCH_CORE_CACHE_DIR`` (default ``~/.cache/bench-core``) in ``darcy/``,
beside a ``.sha256`` file holding its checksum. A missing, unreadable or mismatching file is
regenerated, with a warning naming it; nothing is ever downloaded.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

CACHE_ENV = "BENCH_CORE_CACHE_DIR"
FORMAT_VERSION = 1


def cache_dir() -> Path:
    """The cache root: $BENCH_CORE_CACHE_DIR, else ~/.cache/bench-core."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "bench-core"


def gaussian_random_field(rng: np.random.Generator, s: int, tau: float = 3.0, alpha: float = 2.0) -> np.ndarray:
    """One s×s sample of a zero-mean Gaussian field with covariance (−Δ + τ²)^(−α) (Neumann cosines)."""
    from scipy.fft import idctn

    k = np.arange(s)
    lam = np.pi ** 2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau ** 2
    coef = rng.standard_normal((s, s)) * lam ** (-alpha / 2) * s
    coef[0, 0] = 0.0
    return idctn(coef, norm="ortho")


def solve_darcy(a: np.ndarray) -> np.ndarray:
    """u on the s×s cell centres for −∇·(a∇u) = 1, u = 0 on ∂(0,1)² (finite volumes, sparse direct)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    s = a.shape[0]
    h2 = 1.0 / s ** 2
    idx = np.arange(s * s).reshape(s, s)
    rows, cols, vals = [], [], []
    diag = np.zeros((s, s))
    for axis in (0, 1):  # interior faces between cell i and its neighbour along `axis`
        lo = a.take(np.arange(s - 1), axis=axis)
        hi = a.take(np.arange(1, s), axis=axis)
        t = 2 * lo * hi / (lo + hi) / h2
        i_lo = idx.take(np.arange(s - 1), axis=axis).ravel()
        i_hi = idx.take(np.arange(1, s), axis=axis).ravel()
        rows += [i_lo, i_hi]
        cols += [i_hi, i_lo]
        vals += [-t.ravel(), -t.ravel()]
        np.add.at(diag, tuple(np.unravel_index(i_lo, (s, s))), t.ravel())
        np.add.at(diag, tuple(np.unravel_index(i_hi, (s, s))), t.ravel())
    wall = 2 * a / h2  # Dirichlet wall half a cell from the boundary cells
    diag[0, :] += wall[0, :]
    diag[-1, :] += wall[-1, :]
    diag[:, 0] += wall[:, 0]
    diag[:, -1] += wall[:, -1]
    rows.append(idx.ravel())
    cols.append(idx.ravel())
    vals.append(diag.ravel())
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(s * s, s * s))
    return spsolve(A.tocsc(), np.ones(s * s)).reshape(s, s)


def generate(resolution: int, n_samples: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, u), each (n_samples, s, s) float64, deterministic in the arguments."""
    rng = np.random.default_rng([data_seed, resolution, n_samples])
    a = np.empty((n_samples, resolution, resolution))
    u = np.empty_like(a)
    for i in range(n_samples):
        a[i] = np.where(gaussian_random_field(rng, resolution) >= 0, 12.0, 3.0)
        u[i] = solve_darcy(a[i])
    return a, u


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # a shared cache, readable like any data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_path(resolution: int, n_samples: int, data_seed: int) -> Path:
    """Where the data set with these parameters is cached."""
    return cache_dir() / "darcy" / f"darcy_v{FORMAT_VERSION}_s{resolution}_n{n_samples}_seed{data_seed}.npz"


def _read(path: Path, resolution: int, n_samples: int) -> tuple[np.ndarray, np.ndarray] | str:
    """The cached arrays, or a sentence saying why the cache cannot be used."""
    if not path.exists():
        return "missing"
    check = path.with_suffix(".sha256")
    if not check.exists():
        return f"checksum file {check} missing"
    if check.read_text().strip() != _sha256(path):
        return "checksum mismatch"
    try:
        with np.load(path, allow_pickle=False) as z:
            a, u = z["a"], z["u"]
    except Exception as exc:  # a truncated or foreign file
        return f"unreadable ({type(exc).__name__}: {exc})"
    if a.shape != (n_samples, resolution, resolution) or u.shape != a.shape:
        return f"unexpected shapes {a.shape}, {u.shape}"
    return a, u


def load(resolution: int = 16, n_samples: int = 300, data_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The Darcy data set (a, u) from the cache, generating (and caching) it when missing or corrupted."""
    path = cache_path(resolution, n_samples, data_seed)
    got = _read(path, resolution, n_samples)
    if not isinstance(got, str):
        return got
    if got != "missing":
        warnings.warn(f"Darcy data cache {path} is corrupted ({got}); regenerating it", RuntimeWarning,
                      stacklevel=2)
    a, u = generate(resolution, n_samples, data_seed)
    _atomic_write_bytes(path, lambda fh: np.savez(fh, a=a, u=u))
    _atomic_write_bytes(path.with_suffix(".sha256"), lambda fh: fh.write((_sha256(path) + "\n").encode()))
    return a, u
