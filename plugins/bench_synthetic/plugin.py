"""Entry point of the bench_synthetic plugin: registers its problems and their metrics."""
from __future__ import annotations

import bench_core

from .kron_quadratic import kron_quadratic_specs
from .logreg import DigitsLogReg
from .quadratic import Quadratic
from .matrix_sensing import matrix_sensing_specs
from .noisy_quadratic import noisy_quadratic_specs
from .rosenbrock import rosenbrock_specs


@bench_core.hookimpl
def bench_problems():
    """synthetic.quadratic and synthetic.logreg."""
    return [
        bench_core.ProblemSpec(
            name="synthetic.quadratic", kind="training", factory=Quadratic,
            params={"dim": 100, "condition": 1e4, "noise": 0.0},
            targets={"loss": 1e-6}, budget={"max_steps": 2000}, reports=("loss", "dist_to_opt"),
            description="Convex quadratic with prescribed condition number; loss scaled to 1 at x=0."),
        bench_core.ProblemSpec(
            name="synthetic.logreg", kind="training", factory=DigitsLogReg,
            params={"batch_size": 128, "l2": 1e-4, "val_fraction": 0.2},
            targets={"val_accuracy": 0.95}, budget={"max_steps": 1000},
            reports=("loss", "val_loss", "val_accuracy"),
            description="Multinomial logistic regression on scikit-learn's digits."),
        *kron_quadratic_specs(),
        *matrix_sensing_specs(), *rosenbrock_specs(), *noisy_quadratic_specs(),
    ]


@bench_core.hookimpl
def bench_metrics():
    """Directions of the values these problems report."""
    return [
        bench_core.MetricSpec("loss", None, higher_is_better=False, description="training loss"),
        bench_core.MetricSpec("dist_to_opt", None, higher_is_better=False,
                              description="‖x − x*‖ / ‖x*‖"),
        bench_core.MetricSpec("rel_error", None, higher_is_better=False,
                              description="relative error of a recovered matrix or solution"),
        bench_core.MetricSpec("val_loss", None, higher_is_better=False, description="validation loss"),
        bench_core.MetricSpec("val_accuracy", None, higher_is_better=True, unit="fraction",
                              description="validation accuracy"),
    ]
