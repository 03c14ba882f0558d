"""asv track benchmarks built on suites/asv.toml: the suite runs once through bench_core (in
``setup_cache``) into a Parquet results directory, and each ``track_*`` benchmark reads one value
per (problem, optimizer) from it: time-to-target, steps-to-target, final value of the target metric.

Every value is the median over the suite's seeds. A seed that did not reach the target counts as
infinitely slow for time- and steps-to-target, so the median is NaN (asv: "failed") when fewer
than half the seeds reached it. Every target in suites/asv.toml is on a lower-is-better metric
(loss, residual, error), as asv assumes lower is better.

The suite file and these benchmarks come from the current checkout; bench_core and the plugins
come from the commit asv installed. `version` is pinned so that history survives edits of this
file: bump TRACK_VERSION when you change suites/asv.toml or what a value means.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from bench_core.selection import FAILED
from bench_core.trial import SCHEMA_VERSION

SUITE = Path(__file__).resolve().parent.parent / "suites" / "asv.toml"
#: asv starts a new series when this changes: the suite file's content and the row layout's version.
TRACK_VERSION = hashlib.sha256(SUITE.read_bytes() + f"schema {SCHEMA_VERSION}".encode()).hexdigest()[:12]
#: Endings that count as a failure (bench_core.analysis.FAILED).
FAILED_STATUSES = FAILED


def suite_grid(path: str | Path = SUITE) -> tuple[list[str], list[str]]:
    """(problem names, optimizer names) of the suite file, in file order: the asv parameter grid."""
    data = tomllib.loads(Path(path).read_text())
    problems = [p["name"] for p in data.get("problems", [])]
    optimizers = [o["name"] for o in data.get("optimizers", [])]
    for what, names in (("problems", problems), ("optimizers", optimizers)):
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: each of [[{what}]] may appear once in the asv suite")
    if any("sweep" in o for o in data.get("optimizers", [])):
        raise ValueError(f"{path}: no sweep in the asv suite (one value per problem and optimizer)")
    return problems, optimizers


PROBLEMS, OPTIMIZERS = suite_grid()


def run_tracked_suite(out: str | Path, path: str | Path = SUITE) -> str:
    """Run the suite through bench_core into the results directory `out` on one torch thread
    (steadier times; on a loaded machine several threads can be many times slower); return `out`."""
    import torch
    from rich.console import Console

    from bench_core.session import run_suite
    from bench_core.suite import load_suite

    torch.set_num_threads(1)
    run_suite(load_suite(path), str(out), console=Console(quiet=True))
    return str(out)


def _median_or_nan(values: list[float]) -> float:
    """Median; NaN when it is infinite (more than half the seeds missed) or there is no value."""
    if not values:
        return math.nan
    values = sorted(values)
    n = len(values)
    mid = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2
    return mid if math.isfinite(mid) else math.nan


def values_from_store(trials, problem: str, optimizer: str) -> dict | None:
    """{"time_to_target_s", "steps_to_target", "final", "metric", "failed"} for one (problem, optimizer)
    from bench_core trial rows (a DataFrame from bench_core.store.read_trials); None when the
    suite has no trial for that pair (e.g. a linear solver on a training problem)."""
    rows = trials[(trials["problem"] == problem) & (trials["optimizer"] == optimizer)]
    if len(rows) == 0:
        return None
    metric = next(iter(json.loads(rows["targets"].iloc[0]) or {}), None)
    reached = rows["status"] == "target_reached"
    times = [float(t) if ok else math.inf for ok, t in zip(reached, rows["time_to_target_s"])]
    steps = [float(s) if ok else math.inf for ok, s in zip(reached, rows["steps_to_target"])]
    finals = [float((m or {}).get(metric, math.nan)) for m in rows["metrics"]]
    finals = [v for v in finals if math.isfinite(v)]
    failed = float(rows["status"].isin(FAILED_STATUSES).mean())
    return {"time_to_target_s": _median_or_nan(times), "steps_to_target": _median_or_nan(steps),
            "final": _median_or_nan(finals), "metric": metric, "failed": failed}


class SuiteTracks:
    """Values of suites/asv.toml, one per (problem, optimizer); pairs the suite does not run
    (an optimizer of another kind) are skipped."""

    params = [PROBLEMS, OPTIMIZERS]
    param_names = ["problem", "optimizer"]
    timeout = 900  # setup_cache runs the whole suite

    def setup_cache(self):
        """Run suites/asv.toml once per commit and environment; return the results directory."""
        return run_tracked_suite(Path("asv_suite_results").resolve(), SUITE)

    def setup(self, out, problem, optimizer):
        from bench_core.store import read_trials

        self.values = values_from_store(read_trials(out), problem, optimizer)
        if self.values is None:
            raise NotImplementedError(f"{optimizer} does not run on {problem} in suites/asv.toml")

    def track_time_to_target(self, out, problem, optimizer):
        """Median over seeds of the training time to the target (evaluation excluded)."""
        return self.values["time_to_target_s"]

    track_time_to_target.unit = "seconds"
    track_time_to_target.version = TRACK_VERSION

    def track_steps_to_target(self, out, problem, optimizer):
        """Median over seeds of the steps (solver iterations) to the target."""
        return self.values["steps_to_target"]

    track_steps_to_target.unit = "steps"
    track_steps_to_target.version = TRACK_VERSION

    def track_final_metric(self, out, problem, optimizer):
        """Median over seeds of the final value of the problem's target metric (training loss,
        relative residual or error: lower is better)."""
        return self.values["final"]

    track_final_metric.unit = "loss or residual"
    track_final_metric.version = TRACK_VERSION

    def track_failed_fraction(self, out, problem, optimizer):
        """Fraction of seeds that ended diverged, stalled, in error or timed out."""
        return self.values["failed"]

    track_failed_fraction.unit = "fraction"
    track_failed_fraction.version = TRACK_VERSION
