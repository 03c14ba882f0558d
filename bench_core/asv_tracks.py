"""asv track benchmarks for any suite file: ``make_tracks(SUITE)`` returns a class that asv
discovers in a benchmarks module, so a plugin author tracks their own suite with a few lines::

    # benchmarks/bench_mine.py
    from pathlib import Path
    from bench_core.asv_tracks import make_tracks

    SuiteTracks = make_tracks(Path(__file__).resolve().parent.parent / "suites" / "mine.toml")

The suite runs once per commit and environment through bench_core (asv's ``setup_cache``) into a
Parquet results directory; each ``track_*`` benchmark reads one value per (problem, optimizer)
from it: time to target, steps to target, final value of the target metric, fraction of failed
seeds. Every value is the median over the suite's seeds; a seed that missed the target counts as
infinitely slow, so the median is NaN (asv: "failed") when fewer than half the seeds reached it.
asv takes lower as better, so targets should be on lower-is-better metrics (loss, residual).

Each benchmark's ``version`` is derived from the suite file's content and the results schema
version (``suite_version``): editing the suite starts a new series, nothing is bumped by hand.
The suite must name each problem and optimizer once, without sweeps (one value per pair).

asv keys a setup cache by the module and line of its function, so call ``make_tracks`` once per
benchmarks module (the class's functions are attributed to the calling module).
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

from .selection import FAILED
from .trial import SCHEMA_VERSION

#: Endings that count as a failure (bench_core.selection.FAILED).
FAILED_STATUSES = FAILED

_MODULES_WITH_TRACKS: set = set()


def suite_version(path: str | Path) -> str:
    """The benchmarks' asv version: a hash of the suite file's bytes and the schema version."""
    return hashlib.sha256(Path(path).read_bytes() + f"schema {SCHEMA_VERSION}".encode()).hexdigest()[:12]


def suite_grid(path: str | Path) -> tuple[list[str], list[str]]:
    """(problem names, optimizer names) of the suite file, in file order: the asv parameter grid.
    ValueError when a name appears twice or an optimizer sweeps."""
    data = tomllib.loads(Path(path).read_text())
    problems = [p["name"] for p in data.get("problems", [])]
    optimizers = [o["name"] for o in data.get("optimizers", [])]
    for what, names in (("problems", problems), ("optimizers", optimizers)):
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: each of [[{what}]] may appear once in a tracked suite")
    if any("sweep" in o for o in data.get("optimizers", [])):
        raise ValueError(f"{path}: no sweep in a tracked suite (one value per problem and optimizer)")
    return problems, optimizers


def run_tracked_suite(out: str | Path, path: str | Path) -> str:
    """Run the suite through bench_core into the results directory `out` on one torch thread
    (steadier times; on a loaded machine several threads can be many times slower); return `out`."""
    import torch
    from rich.console import Console

    from .session import run_suite
    from .suite import load_suite

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


def make_tracks(suite_path: str | Path, name: str = "SuiteTracks", module: str | None = None,
                timeout: float = 900) -> type:
    """An asv benchmark class tracking the suite file `suite_path` (see the module docstring):
    parameters (problem, optimizer) from the file, ``track_time_to_target``,
    ``track_steps_to_target``, ``track_final_metric`` and ``track_failed_fraction``, each with
    the version ``suite_version(suite_path)``. `module`: the benchmarks module it is assigned
    in (default: the caller's); `timeout`: seconds for the whole suite's run."""
    path = Path(suite_path).resolve()
    problems, optimizers = suite_grid(path)
    version = suite_version(path)
    module = module or sys._getframe(1).f_globals.get("__name__", __name__)
    if module in _MODULES_WITH_TRACKS:
        raise ValueError(f"make_tracks: {module} has tracks already (asv keys the setup cache by module "
                         "and line: one make_tracks per benchmarks module)")
    _MODULES_WITH_TRACKS.add(module)

    def setup_cache(self):
        """Run the suite once per commit and environment; return the results directory."""
        return run_tracked_suite(Path(f"asv_results_{path.stem}").resolve(), self.suite_path)

    def setup(self, out, problem, optimizer):
        from .store import read_trials

        self.values = values_from_store(read_trials(out), problem, optimizer)
        if self.values is None:
            raise NotImplementedError(f"{optimizer} does not run on {problem} in {self.suite_path}")

    def track_time_to_target(self, out, problem, optimizer):
        """Median over seeds of the training time to the target (evaluation excluded)."""
        return self.values["time_to_target_s"]

    def track_steps_to_target(self, out, problem, optimizer):
        """Median over seeds of the steps (solver iterations) to the target."""
        return self.values["steps_to_target"]

    def track_final_metric(self, out, problem, optimizer):
        """Median over seeds of the final value of the problem's target metric (training loss,
        relative residual or error: lower is better)."""
        return self.values["final"]

    def track_failed_fraction(self, out, problem, optimizer):
        """Fraction of seeds that ended diverged, stalled, in error or timed out."""
        return self.values["failed"]

    units = {track_time_to_target: "seconds", track_steps_to_target: "steps",
             track_final_metric: "loss or residual", track_failed_fraction: "fraction"}
    for fn, unit in units.items():
        fn.unit, fn.version = unit, version
    setup_cache.timeout = timeout
    attrs = {"params": [problems, optimizers], "param_names": ["problem", "optimizer"], "timeout": timeout,
             "suite_path": str(path), "version": version, "__module__": module,
             "__doc__": f"Values of {path.name}, one per (problem, optimizer); pairs the suite does not "
                        "run (an optimizer of another kind) are skipped.",
             "setup_cache": setup_cache, "setup": setup, **{fn.__name__: fn for fn in units}}
    for fn in (setup_cache, setup, *units):
        fn.__module__ = module
        fn.__qualname__ = f"{name}.{fn.__name__}"
    return type(name, (), attrs)
