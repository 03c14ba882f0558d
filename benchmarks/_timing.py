"""Interleaved block timing shared by the step scripts (optimizer_step, train_step,
model_step_second_order): runners take turns block by block, so drifts in the machine's speed hit
all methods alike, and each method is reported by its median ms/step and the median of its
per-block ratios to the anchor (the first runner)."""
from __future__ import annotations

import statistics
import time

import torch


class TimedRunner:
    """One method; subclasses set ``label`` and ``device`` and implement ``one_step``."""

    label: str = ""
    device = torch.device("cpu")

    def one_step(self) -> None:
        """One step of the method (what is timed)."""
        raise NotImplementedError

    def run(self, steps: int, record: bool = True) -> None:
        """`steps` steps; appends ms/step to ``times`` when `record` (CUDA synchronized at both ends)."""
        if not hasattr(self, "times"):
            self.times: list[float] = []
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            self.one_step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if record:
            self.times.append((time.perf_counter() - t0) * 1e3 / steps)


def interleave(runners: list[TimedRunner], warmup: int, steps: int, repeats: int) -> None:
    """`warmup` untimed steps each, then `repeats` blocks of `steps` steps, method after method."""
    for r in runners:
        r.run(warmup, record=False)
    for rep in range(repeats):
        for r in runners:
            r.run(steps)
        print(f"  block {rep + 1}: " + ", ".join(f"{r.label} {r.times[-1]:.1f}" for r in runners), flush=True)


def print_table(runners: list[TimedRunner], ratio_header: str = "x AdamW") -> None:
    """Median ms/step and median per-block ratio to runners[0], one row per method."""
    anchor = runners[0]
    width = max(10, len(ratio_header) + 2)
    print(f"\n{'method':<24}{'ms/step':>10}{ratio_header:>{width}}")
    for r in runners:
        ratio = statistics.median(t / a for t, a in zip(r.times, anchor.times))
        print(f"{r.label:<24}{statistics.median(r.times):>10.1f}{ratio:>{width}.2f}")
