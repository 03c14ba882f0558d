"""Peak memory of a trial and the bytes an optimizer keeps as state.

Peak memory on CUDA is ``torch.cuda.max_memory_allocated`` since the trial started. On the CPU it
is the process's resident-set high-water mark (Linux VmHWM, reset at trial start through
/proc/self/clear_refs) minus the resident set at trial start: the extra memory the trial needed.
Where the mark cannot be reset, getrusage's lifetime maximum is used instead.
"""
from __future__ import annotations

import resource
from pathlib import Path

import torch

_KEY = "bench_metrics.memory"


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_cpu_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def start(trial) -> None:
    """Reset the peak counters at trial start and remember the baseline."""
    state = {"cuda": trial.device.type == "cuda"}
    if state["cuda"]:
        torch.cuda.synchronize(trial.device)
        torch.cuda.reset_peak_memory_stats(trial.device)
    else:
        state["reset"] = _reset_cpu_peak()
        state["rss_kib"] = _status_kib("VmRSS") or 0
    trial.scratch[_KEY] = state


def peak_memory_bytes(trial) -> float | None:
    """Peak memory the trial used (bytes), see the module docstring."""
    state = trial.scratch.get(_KEY)
    if state is None:
        return None
    if state["cuda"]:
        return float(torch.cuda.max_memory_allocated(trial.device))
    peak = _status_kib("VmHWM") if state["reset"] else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(max(peak - state["rss_kib"], 0) * 1024)


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
