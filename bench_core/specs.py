"""The specs that plugins return: problems, optimizers, metrics, and search-space types.

A spec is plain data plus a factory; the harness never needs to know which plugin made it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .lr_rules import SCALINGS  # the μP families a spec may declare

#: Problem kinds the runner knows how to drive.
KINDS = ("training", "linear_system")
#: What an optimizer may ask the runner's closure to provide.
REQUIREMENTS = ("grad", "loss_only", "create_graph", "model")


# --------------------------------------------------------------------------- search spaces
@dataclass(frozen=True)
class LogUniform:
    """A positive hyperparameter searched on a log scale between `low` and `high`."""

    low: float
    high: float

    def __post_init__(self):
        if not (0 < self.low < self.high):
            raise ValueError(f"LogUniform needs 0 < low < high, got {self.low}, {self.high}")

    def from_unit(self, u: float) -> float:
        """Map u in [0, 1] to a value of this space."""
        return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))


@dataclass(frozen=True)
class Uniform:
    """A hyperparameter searched uniformly between `low` and `high`."""

    low: float
    high: float

    def __post_init__(self):
        if not self.low < self.high:
            raise ValueError(f"Uniform needs low < high, got {self.low}, {self.high}")

    def from_unit(self, u: float) -> float:
        """Map u in [0, 1] to a value of this space."""
        return float(self.low + u * (self.high - self.low))


@dataclass(frozen=True)
class Choice:
    """A hyperparameter that takes one of a few listed values."""

    options: tuple

    def __init__(self, options):
        object.__setattr__(self, "options", tuple(options))
        if not self.options:
            raise ValueError("Choice needs at least one option")

    def from_unit(self, u: float):
        """Map u in [0, 1] to one of the options."""
        return self.options[min(int(u * len(self.options)), len(self.options) - 1)]


SearchSpace = Mapping[str, "LogUniform | Uniform | Choice"]


# --------------------------------------------------------------------------- specs
@dataclass
class OptimizerSpec:
    """An optimizer (kind "training") or a linear solver (kind "linear_system").

    For training, ``factory(params, **hparams)`` returns a ``torch.optim.Optimizer``; with
    ``"model"`` in ``requires`` it is called as ``factory(params, model=module, **hparams)``.
    For linear systems, ``factory(**hparams)`` returns a solver with ``setup(system)`` (optional)
    and ``solve(b, x0, maxiter, callback)``; see ``bench_core.problems.LinearSolver``.

    ``requires`` tells the runner what the step closure must provide:
    ``grad`` (loss.backward()), ``loss_only`` (no backward pass, zeroth-order),
    ``create_graph`` (backward with create_graph=True, for Hessian-vector products),
    ``model`` (the factory gets the nn.Module).

    ``scaling`` names the optimizer's μP learning-rate family (one of ``SCALINGS``: "adam" for
    Adam-type updates, "sgd", "kfac", "shampoo", ...); on a problem with parametrization "mup" or
    "umup" the learning rate of each tensor is multiplied by its role's factor
    (``bench_core.parametrization``). A refusing family (``bench_core.lr_rules.REFUSALS``, e.g.
    "relative" for trust-ratio methods) says why there is no rule; None: nothing is declared.
    Either way such problems refuse the optimizer in one line when the suite is parsed.
    """

    name: str
    factory: Callable[..., Any]
    defaults: dict = field(default_factory=dict)
    search_space: dict = field(default_factory=dict)
    kinds: frozenset = frozenset({"training"})
    requires: frozenset = frozenset({"grad"})
    description: str = ""
    plugin: str = ""  # filled in by the registry
    scaling: str | None = None

    def __post_init__(self):
        if self.scaling is not None and self.scaling not in SCALINGS:
            raise ValueError(f"OptimizerSpec {self.name!r}: scaling must be None or one of {SCALINGS}, "
                             f"got {self.scaling!r}")
        self.kinds = frozenset(self.kinds)
        self.requires = frozenset(self.requires)
        _check_name(self.name, "OptimizerSpec")
        bad = self.kinds - set(KINDS)
        if bad:
            raise ValueError(f"OptimizerSpec {self.name!r}: unknown kinds {sorted(bad)}")
        bad = self.requires - set(REQUIREMENTS)
        if bad:
            raise ValueError(f"OptimizerSpec {self.name!r}: unknown requires {sorted(bad)}")
        if {"grad", "loss_only"} <= self.requires:
            raise ValueError(f"OptimizerSpec {self.name!r}: 'grad' and 'loss_only' exclude each other")


@dataclass
class ProblemSpec:
    """A benchmark problem.

    ``factory(seed=..., device=..., dtype=..., **params)`` returns a problem instance:
    a ``bench_core.TrainingProblem`` (kind "training") or a ``bench_core.LinearSystemProblem``
    (kind "linear_system"). ``params`` holds the default parameters, ``targets`` the default
    targets (metric -> threshold), ``budget`` the default budget (max_steps, max_seconds).
    """

    name: str
    kind: str
    factory: Callable[..., Any]
    params: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    description: str = ""
    budget: dict = field(default_factory=dict)
    reports: tuple = ()
    plugin: str = ""  # filled in by the registry

    def __post_init__(self):
        _check_name(self.name, "ProblemSpec")
        self.reports = tuple(self.reports)
        if self.kind == "linear_system" and "rel_residual" not in self.reports:
            self.reports = ("rel_residual",) + self.reports
        if self.kind not in KINDS:
            raise ValueError(f"ProblemSpec {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")


@dataclass
class MetricSpec:
    """A metric: its direction and unit, and how to compute it.

    With ``fn=None`` the spec only declares a value that problems report (its direction tells
    the runner how to compare it with a target). With a function, ``fn(trial)`` is called when a
    trial ends with the ``bench_core.TrialContext`` and returns a float, or None when the metric
    does not apply to that trial.
    """

    name: str
    fn: Callable[[Any], float | None] | None = None
    higher_is_better: bool = False
    unit: str = ""
    description: str = ""
    plugin: str = ""  # filled in by the registry

    def __post_init__(self):
        _check_name(self.name, "MetricSpec")


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"{what} name must be a non-empty string without spaces, got {name!r}")
