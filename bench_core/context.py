"""What a running trial knows (TrialContext), and building its problem from the spec."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .registry import Registry
from .suite import Trial


@dataclass
class TrialContext:
    """What observers and metric functions see of a running trial."""

    trial: Trial
    registry: Registry
    device: torch.device
    dtype: torch.dtype
    problem: Any = None
    optimizer: Any = None  # a torch.optim.Optimizer, or a linear solver
    step: int = 0
    counters: dict = field(default_factory=dict)
    scratch: dict = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        """Add n to a counter of this trial."""
        self.counters[name] = self.counters.get(name, 0) + n



def build_problem(ctx: TrialContext, spec, expected: type):
    """Call the problem's factory, check what it returned, and seed every generator."""
    trial = ctx.trial
    problem = spec.factory(seed=trial.seed, device=ctx.device, dtype=ctx.dtype, **trial.params)
    if not isinstance(problem, expected):
        raise TypeError(f"problem {trial.problem!r} factory returned {type(problem).__name__},"
                        f" not a bench_core.{expected.__name__}")
    ctx.problem = problem
    seed_everything(trial.seed)
    return problem


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random alike."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


