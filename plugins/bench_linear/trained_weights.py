"""Trained network weights of bench_linear's learned solvers: produced by this plugin's own
training code, cached on disk with a checksum, never downloaded.

A cache entry is an ``.npz`` (no pickle) holding the model's tensors by name plus scalar metadata
(``meta:training_time_s``, ``meta:final_loss``, the loss history ...), beside a ``.sha256`` file
with its checksum, under ``$BENCH_CORE_CACHE_DIR`` (default ``~/.cache/bench-core``) in
``learned_linear/``. A missing, unreadable or mismatching entry is retrained (with a warning
naming it when it existed); the file is written atomically (temporary name, then rename).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

CACHE_ENV = "BENCH_CORE_CACHE_DIR"


def cache_root() -> Path:
    """The cache root: $BENCH_CORE_CACHE_DIR, else ~/.cache/bench-core."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "bench-core"


def entry_path(name: str) -> Path:
    """Where the weights called `name` (a file stem built from the training settings) live."""
    return cache_root() / "learned_linear" / f"{name}.npz"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(name: str) -> tuple[dict, dict] | str:
    """(arrays, meta) of a cached entry, or a sentence saying why it cannot be used."""
    path = entry_path(name)
    if not path.exists():
        return "missing"
    check = path.with_suffix(".sha256")
    if not check.exists():
        return f"checksum file {check} missing"
    if check.read_text().strip() != _digest(path):
        return "checksum mismatch"
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if not k.startswith("meta:")}
            meta = {k[5:]: z[k] for k in z.files if k.startswith("meta:")}
    except Exception as exc:  # a truncated or foreign file
        return f"unreadable ({type(exc).__name__}: {exc})"
    return arrays, meta


def write(name: str, arrays: dict, meta: dict) -> Path:
    """Cache `arrays` (name -> numpy array) with `meta` (name -> number or array); returns the path."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays, **{f"meta:{k}": np.asarray(v) for k, v in meta.items()})
    path = entry_path(name)
    _write_atomic(path, buf.getvalue())
    _write_atomic(path.with_suffix(".sha256"), (_digest(path) + "\n").encode())
    return path


def load_or_train(name: str, train) -> tuple[dict, dict, bool]:
    """(arrays, meta, trained_now): the cached entry `name`, or ``train()`` -> (arrays, meta),
    cached. A damaged entry is retrained with a warning naming it."""
    got = read(name)
    if not isinstance(got, str):
        return got[0], got[1], False
    if got != "missing":
        warnings.warn(f"learned-solver weights {entry_path(name)} are damaged ({got}); retraining",
                      RuntimeWarning, stacklevel=2)
    arrays, meta = train()
    write(name, arrays, meta)
    return arrays, meta, True


class one_thread:
    """Context: torch on one thread (training gives the same weights whatever the caller's setting)."""

    def __enter__(self):
        import torch

        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.threads)


def fit(net, batches: list, loss, steps: int, lr: float) -> list[float]:
    """Adam with a cosine learning-rate decay for `steps` steps, cycling through `batches`
    (``loss(net, *batch)`` is the objective); returns the loss history."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    history = []
    for step in range(steps):
        opt.zero_grad()
        value = loss(net, *batches[step % len(batches)])
        value.backward()
        opt.step()
        sched.step()
        history.append(float(value.detach()))
    return history
