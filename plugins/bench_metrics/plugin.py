"""Entry point of the bench_metrics plugin: memory metrics and the observers that feed them."""
from __future__ import annotations

import bench_core

from . import memory


@bench_core.hookimpl
def bench_metrics():
    """peak_memory_bytes and optimizer_state_bytes."""
    return [
        bench_core.MetricSpec("peak_memory_bytes", memory.peak_memory_bytes, higher_is_better=False,
                              unit="bytes", description="peak memory during the trial (CUDA allocator or CPU RSS)"),
        bench_core.MetricSpec("optimizer_state_bytes", memory.optimizer_state_bytes, higher_is_better=False,
                              unit="bytes", description="bytes of tensors held in optimizer state"),
    ]


@bench_core.hookimpl
def bench_trial_start(trial):
    """Reset peak-memory counters."""
    memory.start(trial)


@bench_core.hookimpl
def bench_after_evaluation(trial, step, metrics):
    """Sample the resident set (evaluations are outside the timed steps)."""
    memory.sample(trial)
