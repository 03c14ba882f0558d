"""Where and with what a trial ran: git commit, package versions, host, CPU and GPU model."""
from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
from pathlib import Path

import torch

PACKAGES = ("bench-core", "torch", "numpy", "scipy", "pyarrow", "pluggy", "pytorch-optimizer",
            "pyamg", "schedulefree", "heavyball", "ray")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def git_state(directory: str | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree at `directory`: $BENCH_GIT_DIR, else the current
    directory, else bench_core's own checkout. (None, None) outside git."""
    candidates = [directory] if directory else [os.environ.get("BENCH_GIT_DIR"), os.getcwd(),
                                                str(Path(__file__).resolve().parent.parent)]
    for cand in candidates:
        if not cand:
            continue
        commit = _git(["rev-parse", "HEAD"], Path(cand))
        if commit:
            status = _git(["status", "--porcelain", "--untracked-files=no"], Path(cand))
            return commit, bool(status)
    return None, None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=None)
def package_versions() -> str:
    """JSON object of the versions of the packages that shape results, plus every plugin's."""
    versions = {name: _version(name) for name in PACKAGES}
    for ep in importlib.metadata.entry_points(group="bench_core"):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            versions[dist.metadata["Name"]] = dist.version
    return json.dumps({k: v for k, v in sorted(versions.items()) if v}, sort_keys=True)


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    """The CPU's model name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model(device: str) -> str | None:
    """The CUDA device's name, or None on CPU."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(dev)
    return None


def provenance(device: str) -> dict:
    """The provenance columns of a trial row."""
    commit, dirty = git_state()
    return {"git_commit": commit, "git_dirty": dirty, "package_versions": package_versions(),
            "host": socket.gethostname(), "cpu_model": cpu_model(), "gpu_model": gpu_model(device),
            "python_version": platform.python_version(), "torch_version": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
