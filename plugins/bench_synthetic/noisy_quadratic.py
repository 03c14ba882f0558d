"""synthetic.noisy_quadratic: the convex quadratic of quadratic.py with Gaussian gradient noise.

The noisy quadratic model of stochastic optimization: each step's gradient carries additive
noise of standard deviation ``noise`` (fixed per seed and step), evaluation is noise-free, so a
constant step size stalls at a noise floor that only averaging or a smaller step goes below.
"""
from __future__ import annotations

import bench_core

from .quadratic import Quadratic


def noisy_quadratic(seed: int, device, dtype, dim: int = 50, condition: float = 100.0, noise: float = 0.01,
                    stochastic_rounding: bool = False) -> Quadratic:
    """A Quadratic with gradient noise; `dim` is the size parameter."""
    problem = Quadratic(seed, device, dtype, dim=dim, condition=condition, noise=noise)
    problem.stochastic_rounding = bool(stochastic_rounding)
    return problem


def noisy_quadratic_specs() -> list[bench_core.ProblemSpec]:
    """The noisy-quadratic problem spec."""
    return [bench_core.ProblemSpec(
        name="synthetic.noisy_quadratic", kind="training", factory=noisy_quadratic,
        params={"dim": 50, "condition": 100.0, "noise": 0.01, "stochastic_rounding": False},
        targets={"loss": 2e-3}, budget={"max_steps": 1000}, reports=("loss", "dist_to_opt"),
        description="Quadratic (condition 100) with Gaussian gradient noise; size: dim.")]
