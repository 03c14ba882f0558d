"""bench_core's own metric declarations: the directions of the metrics every plugin shares.

Registered by :func:`bench_core.build_registry` as the built-in plugin ``"bench_core"``, before
any other plugin, so these directions are always known (also in registries built with
``entry_points=False``). A plugin may declare the same name again with the same direction (an
identical declaration is accepted); a plugin that declares one of them with the opposite
direction is reported as a plugin error.
"""
from __future__ import annotations

from .hookspecs import hookimpl
from .specs import MetricSpec

_SPLITS = (("", "training"), ("val_", "validation"), ("test_", "test"), ("train_", "training"))


def core_metric_specs() -> list[MetricSpec]:
    """The declarations (``fn=None``) of the shared metrics: losses, accuracies, relative residual
    and error, each with its direction, unit and a one-line description."""
    specs = []
    for prefix, split in _SPLITS:
        specs.append(MetricSpec(f"{prefix}loss", None, higher_is_better=False, description=f"{split} loss"))
        specs.append(MetricSpec(f"{prefix}accuracy", None, higher_is_better=True, unit="fraction",
                                description=f"{split} accuracy"))
    specs.append(MetricSpec("rel_residual", None, higher_is_better=False, description="‖b − Ax‖ / ‖b‖"))
    specs.append(MetricSpec("rel_error", None, higher_is_better=False,
                            description="relative error of the solution, ‖x − x*‖ / ‖x*‖"))
    return specs


@hookimpl
def bench_metrics():
    """The shared metric declarations (see :func:`core_metric_specs`)."""
    return core_metric_specs()
