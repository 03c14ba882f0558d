"""Statistics over seeds: the leaderboard of a results directory (one row per problem and optimizer)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

REACHED = "target_reached"


def primary_metric(targets_json: str, metrics: dict) -> str | None:
    """The metric a problem is judged on: its first target, else loss, else rel_residual."""
    targets = json.loads(targets_json or "{}")
    for name in list(targets) + ["loss", "rel_residual"]:
        if name in metrics:
            return name
    return next(iter(metrics), None)


def problem_labels(df: pd.DataFrame) -> pd.Series:
    """The problem's name, with its params when one suite ran it with several param sets."""
    n_sets = df.groupby("problem")["problem_params"].transform("nunique")
    def label(row):
        if n_sets[row.name] <= 1:
            return row["problem"]
        params = json.loads(row["problem_params"])
        return f"{row['problem']}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
    return df.apply(label, axis=1) if len(df) else pd.Series(dtype=str)


def _median(values) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.median(vals)) if vals else None


def leaderboard(trials: pd.DataFrame) -> list[dict]:
    """One row per (problem, optimizer with hparams): seeds, status counts, success rate, and
    medians over seeds of time-to-target, steps-to-target, final primary metric and train time.
    Rows are ordered per problem: most successful first, then fastest to target."""
    if trials is None or len(trials) == 0:
        return []
    df = trials.copy()
    df["problem_label"] = problem_labels(df)
    rows = []
    for (problem, label), g in df.groupby(["problem_label", "label"], sort=True):
        metric = primary_metric(g["targets"].iloc[0], g["metrics"].iloc[0] or {})
        finals = [m.get(metric) if m else None for m in g["metrics"]]
        statuses = g["status"].value_counts().to_dict()
        reached = int(statuses.get(REACHED, 0))
        rows.append({
            "problem": problem, "optimizer": label, "kind": g["kind"].iloc[0], "seeds": len(g),
            "statuses": statuses, "success_rate": reached / len(g),
            "time_to_target_s": _median(g["time_to_target_s"]) if reached else None,
            "steps_to_target": _median(g["steps_to_target"]) if reached else None,
            "metric": metric, "final_metric": _median(finals),
            "train_time_s": _median(g["train_time_s"]), "steps": _median(g["steps"]),
            "errors": [e for e in g["error"] if isinstance(e, str) and e],
        })
    rows.sort(key=lambda r: (r["problem"], -r["success_rate"],
                             r["time_to_target_s"] if r["time_to_target_s"] is not None else math.inf,
                             r["final_metric"] if r["final_metric"] is not None else math.inf))
    return rows
