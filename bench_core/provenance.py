"""Where and with what a trial ran: package versions, host, CPU and GPU, threads and BLAS."""
from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import socket
from pathlib import Path

import torch

from . import threads
from .code_identity import installed_version

PACKAGES = ("bench-core", "torch", "numpy", "scipy", "pyarrow", "pluggy", "pytorch-optimizer",
            "pyamg", "schedulefree", "heavyball", "ray")


@functools.lru_cache(maxsize=None)
def package_versions() -> str:
    """JSON object of the versions of the packages that shape results, plus every plugin's."""
    versions = {name: installed_version(name) for name in PACKAGES}
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


def gpu_info(device: str) -> str | None:
    """JSON of the CUDA and cuDNN versions and the determinism flags, on a CUDA device."""
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        return None
    return json.dumps({"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                       "cudnn_deterministic": torch.backends.cudnn.deterministic,
                       "cudnn_benchmark": torch.backends.cudnn.benchmark,
                       "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                       "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}, sort_keys=True)


def provenance(device: str) -> dict:
    """The provenance columns of a trial row, read while the trial's thread policy is applied.
    Commits are in the trial's code identity (bench_core.code_identity), not read here."""
    return {"package_versions": package_versions(),
            "host": socket.gethostname(), "cpu_model": cpu_model(), "gpu_model": gpu_model(device),
            "python_version": platform.python_version(), "torch_version": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "blas": threads.blas_info(), "gpu_info": gpu_info(device)}
