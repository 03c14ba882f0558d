"""The accounting of one trial: its clock, timed segments, evaluation schedule, curve and targets.

Timing counts what a user pays for: optimizer steps with their forward and backward passes (or
solver iterations, plus setup for linear systems). Evaluation is excluded. On CUDA the clock
synchronizes the device before it is read, at the boundaries of timed segments only.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .context import TrialContext
from .registry import Registry

DEFAULT_EVAL_POINTS = 50


class Clock:
    """Wall clock that synchronizes the CUDA device before every reading."""

    def __init__(self, device: torch.device):
        self.sync = device.type == "cuda"
        self.device = device

    def now(self) -> float:
        """Seconds, after all queued device work has finished."""
        if self.sync:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


class Stop(Exception):
    """Ends a trial's loop with a status (diverged, timeout, stalled) and a message."""

    def __init__(self, status: str, message: str | None = None):
        super().__init__(message or status)
        self.status, self.message = status, message


class EvalSchedule:
    """The steps after which to evaluate: every k steps, or n points spaced geometrically
    between 1 and max_steps; step 0 and max_steps always."""

    def __init__(self, schedule: dict, max_steps: int):
        self.every = schedule.get("every")
        self.max_steps = max_steps
        self.points: set[int] = set()
        if self.every is None:
            n = schedule.get("points", DEFAULT_EVAL_POINTS)
            self.points = {int(round(s)) for s in np.geomspace(1, max(max_steps, 1), num=max(n, 2))}

    def __contains__(self, step: int) -> bool:
        if step == 0 or step == self.max_steps:
            return True
        return step % self.every == 0 if self.every else step in self.points


def targets_met(targets: dict, metrics: dict, registry: Registry) -> bool:
    """True when every target threshold is reached (direction from the metric's spec)."""
    if not targets:
        return False
    for name, threshold in targets.items():
        value = metrics.get(name)
        if value is None or not math.isfinite(value):
            return False
        if registry.higher_is_better(name):
            if value < threshold:
                return False
        elif value > threshold:
            return False
    return True


class Recorder:
    """Timed segments, evaluations, curve points and target detection for one trial."""

    def __init__(self, ctx: TrialContext, clock: Clock):
        self.ctx, self.clock = ctx, clock
        self.train_time = 0.0
        self.eval_time = 0.0
        self.setup_time = 0.0
        self.warmup_time = 0.0
        self.segment_start: float | None = None
        self.curve: list[tuple] = []
        self.last_metrics: dict = {}
        self.time_to_target = None
        self.steps_to_target = None
        self.warnings: list[str] = []

    def start(self):
        self.segment_start = self.clock.now()

    def pause(self) -> None:
        now = self.clock.now()
        self.train_time += now - self.segment_start
        self.segment_start = None

    def elapsed(self) -> float:
        """Training time so far, without synchronizing (for budget checks)."""
        running = time.perf_counter() - self.segment_start if self.segment_start is not None else 0.0
        return self.setup_time + self.train_time + running

    def record(self, step: int, metrics: dict) -> None:
        t0 = time.perf_counter()
        t = self.setup_time + self.train_time
        for name, value in metrics.items():
            self.curve.append((step, t, name, float(value)))
        self.last_metrics = dict(metrics)
        self.ctx.step = step
        self.warnings += self.ctx.registry.call_observers(
            "bench_after_evaluation", trial=self.ctx, step=step, metrics=dict(metrics))
        self.eval_time += time.perf_counter() - t0

    def mark_target(self, step: int) -> None:
        if self.time_to_target is None:
            self.time_to_target = self.setup_time + self.train_time
            self.steps_to_target = step


