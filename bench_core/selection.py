"""The one rule that picks a "best setting", used by `bench tune`, the leaderboard's settings
summary and the report alike.

Settings are ranked, best first, by
1. success rate: the fraction of seeds (trials) that reached the target, highest first;
2. the median over seeds of steps to target, a seed that missed counting as infinite: steps, not
   seconds, because with fixed seeds on the CPU steps are deterministic and time is not, so the
   choice does not flip with machine load;
3. the median final value of the selection metric (a validation metric), in its direction;
4. the label, so that ties resolve the same way every time.
"""
from __future__ import annotations

import math

import numpy as np

REACHED = "target_reached"
FAILED = ("diverged", "stalled", "error", "timeout")


def selection_metric(targets: dict, metric_names) -> str | None:
    """The metric a setting is chosen on: the target's metric when it is a ``val_*`` metric,
    else ``val_<target metric>``, else ``val_loss``, else any ``val_*`` metric, else the first
    target metric, else ``loss``, else ``rel_residual``, else None."""
    names = set(metric_names)
    for name in targets:
        if name.startswith("val_") and name in names:
            return name
    for name in [f"val_{t}" for t in targets] + ["val_loss"]:
        if name in names:
            return name
    vals = sorted(n for n in names if n.startswith("val_"))
    if vals:
        return vals[0]
    for name in list(targets) + ["loss", "rel_residual"]:
        if name in names:
            return name
    return sorted(names)[0] if names else None


def _finite(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and math.isfinite(float(v))


def setting_rank(statuses, steps_to_target, values, direction: str | None, label: str = "") -> tuple:
    """Sort key of one setting over its seeds (see the module docstring): statuses, steps to
    target and final selection-metric values are lists with one entry per seed."""
    n = max(len(statuses), 1)
    success = sum(s == REACHED for s in statuses) / n
    steps = [float(k) if s == REACHED and _finite(k) else math.inf for s, k in zip(statuses, steps_to_target)]
    median_steps = float(np.median(steps)) if steps else math.inf
    ok = [float(v) for s, v in zip(statuses, values) if s not in FAILED and _finite(v)]
    value = float(np.median(ok)) if ok else math.inf
    if ok and direction == "max":
        value = -value
    return (-success, median_steps, value, label)


def row_rank(row: dict, metric: str | None, direction: str | None) -> tuple:
    """Sort key of a single trial row, by the same rule."""
    value = (row.get("metrics") or {}).get(metric) if metric else None
    return setting_rank([row["status"]], [row.get("steps_to_target")], [value], direction,
                        row.get("label") or "")
