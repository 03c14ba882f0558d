"""The accounting of one trial: its clock, timed segments, evaluation schedule, curve and targets.

Timing counts what a user pays for: optimizer steps with their forward and backward passes (or
solver iterations, plus setup for linear systems). Evaluation is excluded. On CUDA the clock
synchronizes the device before it is read, at the boundaries of timed segments only.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .context import TrialContext
from .registry import Registry
from .trial import targets_met as trial_targets_met

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


def targets_met(targets, metrics: dict, registry: Registry | None = None) -> bool:
    """True when there are targets and every one (a bench_core.trial.Target, with its own
    direction) is met by `metrics`. `registry` is accepted for old callers and unused."""
    return trial_targets_met(targets, metrics)


class Recorder:
    """Timed phases, evaluations, curve points and target detection for one trial.

    Phases: setup (a linear solver's setup), warm-up (the first ``warmup_steps`` steps), training
    (the rest); evaluation is timed apart and never counted. ``counted_time()`` is what a curve
    point's time_s and time_to_target hold: setup + training, or with the budget's
    ``time_to_target = "all"`` (AlgoPerf's rule) setup + warm-up + training. It never decreases.
    """

    def __init__(self, ctx: TrialContext, clock: Clock, count_all: bool = False):
        self.ctx, self.clock = ctx, clock
        self.count_all = count_all
        self.in_warmup = False
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
        """Start a timed segment."""
        self.segment_start = self.clock.now()

    def pause(self) -> None:
        """End the timed segment; its time goes to warm-up or training."""
        now = self.clock.now()
        if self.in_warmup:
            self.warmup_time += now - self.segment_start
        else:
            self.train_time += now - self.segment_start
        self.segment_start = None

    def elapsed(self) -> float:
        """All timed work so far (setup, warm-up, training), without synchronizing: what the
        budget's max_seconds limits."""
        running = time.perf_counter() - self.segment_start if self.segment_start is not None else 0.0
        return self.setup_time + self.warmup_time + self.train_time + running

    def counted_time(self) -> float:
        """The time a curve point and time_to_target count (see the class docstring)."""
        return self.setup_time + self.train_time + (self.warmup_time if self.count_all else 0.0)

    def record(self, step: int, metrics: dict) -> None:
        """Add an evaluation's metrics to the curve and tell the observers."""
        t0 = time.perf_counter()
        t = self.counted_time()
        for name, value in metrics.items():
            self.curve.append((step, t, name, float(value)))
        self.last_metrics = dict(metrics)
        self.ctx.step = step
        self.warnings += self.ctx.registry.call_observers(
            "bench_after_evaluation", trial=self.ctx, step=step, metrics=dict(metrics))
        self.eval_time += time.perf_counter() - t0

    def mark_target(self, step: int) -> None:
        """The targets are met at `step` (the first time counts)."""
        if self.time_to_target is None:
            self.time_to_target = self.counted_time()
            self.steps_to_target = step
