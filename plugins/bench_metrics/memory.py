"""Peak memory of a trial and the bytes an optimizer keeps as state.

Peak memory on CUDA is ``torch.cuda.max_memory_allocated`` since the trial started. On the CPU it
is the highest resident set of the process during the trial minus the resident set at trial
start: the extra memory the trial needed. When the trial raised the process's high-water mark
(Linux VmHWM; the usual case for the first trial of a process or worker, and for any trial
that needs more than those before it), that mark is exact. Otherwise the value is the highest
resident set seen at the trial's evaluations and end, which can miss a spike inside a step.
Two exact alternatives cost too much to keep: resetting VmHWM through /proc/self/clear_refs
slowed every following step by about 6% on this project's machines, and a thread sampling
every 10 ms by about 9% (benchmarks/harness_overhead.py).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

_KEY = "bench_metrics.memory"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def start(trial) -> None:
    """Reset the CUDA peak, or remember the CPU baseline."""
    state = {"cuda": trial.device.type == "cuda"}
    if state["cuda"]:
        torch.cuda.synchronize(trial.device)
        torch.cuda.reset_peak_memory_stats(trial.device)
    else:
        state["rss"] = state["peak"] = _rss_bytes()
        state["hwm_kib"] = _status_kib("VmHWM")
    trial.scratch[_KEY] = state


def sample(trial) -> None:
    """Note the resident set now (called after each evaluation, outside the timed steps)."""
    state = trial.scratch.get(_KEY)
    if state and not state["cuda"]:
        state["peak"] = max(state["peak"], _rss_bytes())


def peak_memory_bytes(trial) -> float | None:
    """Peak extra memory the trial used (bytes), see the module docstring."""
    state = trial.scratch.get(_KEY)
    if state is None:
        return None
    if state["cuda"]:
        return float(torch.cuda.max_memory_allocated(trial.device))
    peak = max(state["peak"], _rss_bytes())
    hwm_kib = _status_kib("VmHWM")
    if hwm_kib is not None and state["hwm_kib"] is not None and hwm_kib > state["hwm_kib"]:
        peak = max(peak, hwm_kib * 1024)  # the trial set a new high-water mark: exact
    return float(max(peak - state["rss"], 0))


def _tensor_bytes(obj, seen: set) -> int:
    if isinstance(obj, torch.Tensor):
        key = (obj.untyped_storage().data_ptr(), obj.device) if obj.numel() else id(obj)
        if key in seen:
            return 0
        seen.add(key)
        return obj.untyped_storage().nbytes() if obj.numel() else 0
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v, seen) for v in obj)
    return 0


def optimizer_state_bytes(trial) -> float | None:
    """Bytes of tensors in the optimizer's state (its own ``state_bytes()`` if it has one)."""
    opt = trial.optimizer
    if opt is None:
        return None
    if callable(getattr(opt, "state_bytes", None)):
        return float(opt.state_bytes())
    if isinstance(opt, torch.optim.Optimizer):
        return float(_tensor_bytes(dict(opt.state), set()))
    return None
