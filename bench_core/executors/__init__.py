"""Executors run a list of trials and report each finished trial's row.

Every executor calls ``execute_trial`` wherever the trial runs, so the worker itself claims the
trial, runs it and writes its files into the results directory; the driver only shows progress.
``execute_trial`` also records the attempt while the trial runs (:mod:`.attempts`): a trial that
killed its process twice (a segfault, ``os._exit``, the out-of-memory killer) is recorded as an
error instead of being run a third time. This module also holds what the out-of-process
executors share: the failure row a driver writes for a trial whose worker was killed or died,
the watchdog deadline of a trial, the plugin modules a worker must register, and the thread
count per worker.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import types
from datetime import datetime
from typing import Callable, Protocol

from ..errors import BenchInputError
from ..threads import available_cpus
from ..registry import ENTRY_POINT_GROUP, Registry, build_registry, get_registry, set_registry
from ..runner import run_trial
from ..store import TrialClaim, claim_held, read_trial_status, write_trial
from ..trial import Trial, make_row
from . import attempts

EXECUTORS = ("local", "process", "ray")

#: Watchdog of a trial without max_seconds under the process and Ray executors (--trial-timeout).
DEFAULT_TRIAL_TIMEOUT_S = 3600.0


def execute_trial(trial: Trial, out: str, run_id: str, registry: Registry | None = None,
                  rerun_failed: bool = False, log: Callable[[str], None] | None = None) -> dict | None:
    """Claim one trial, run it, write its files atomically into `out`, and return its row.

    Returns None (and runs nothing) when another live process holds the trial's claim or the
    trial is already complete in `out` (with `rerun_failed`, a trial recorded as "error" by an
    earlier run is run again). A trial whose earlier attempts killed their process
    ``attempts.MAX_CRASHES`` times is recorded as an error without running; after fewer, `log`
    hears that it runs again.
    """
    claim = TrialClaim.acquire(out, trial.trial_id)
    if claim is None:
        return None
    with claim:
        if _complete(out, trial.trial_id, run_id, rerun_failed):
            return None
        crashed = attempts.crashes(out, trial.trial_id)
        if len(crashed) >= attempts.MAX_CRASHES:
            row = failure_row(trial, run_id, "error", attempts.crash_message(crashed))
            write_trial(out, row, [])
            attempts.clear(out, trial.trial_id)
            return row
        if crashed and log is not None:
            log(f"{trial.problem} {trial.label} seed={trial.seed} killed its process in an earlier run "
                f"({crashed[-1]}): running it again, attempt {len(crashed) + 1} of {attempts.MAX_CRASHES}")
        with attempts.attempt(out, trial.trial_id):
            row, curve = run_trial(trial, registry or get_registry(), run_id=run_id)
            write_trial(out, row, curve)
        return row


def _complete(out: str, trial_id: str, run_id: str, rerun_failed: bool) -> bool:
    state = read_trial_status(out, trial_id)
    if state is None:
        return False
    status, written_by = state
    return not (rerun_failed and status == "error" and written_by != run_id)


def record_failure(trial: Trial, out: str, run_id: str, status: str, error: str,
                   rerun_failed: bool = False) -> dict | None:
    """Write a row for a trial that could not finish in its worker (killed at its time limit,
    or its worker died); None when another process took the trial over meanwhile."""
    claim = TrialClaim.acquire(out, trial.trial_id)
    if claim is None:
        return None
    with claim:
        if _complete(out, trial.trial_id, run_id, rerun_failed):
            return None
        row = failure_row(trial, run_id, status, error)
        write_trial(out, row, [])
        attempts.clear(out, trial.trial_id)
        return row


def forget_interrupted(trial: Trial, out: str) -> None:
    """Forget the attempt of a trial whose worker the driver killed because the run was
    interrupted (not the trial's crash), unless some process holds the trial again."""
    if not claim_held(out, trial.trial_id):
        attempts.clear(out, trial.trial_id)


def failure_row(trial: Trial, run_id: str, status: str, error: str) -> dict:
    """The row of a trial that produced no result of its own (status timeout or error)."""
    from .. import provenance

    return make_row(trial, run_id, status, error, environment=provenance.provenance(trial.device))


def row_json(row: dict | None) -> str:
    """A row as JSON text (timestamps as ISO strings), to send it between processes."""
    return json.dumps(row, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def kill_deadline(trial: Trial, grace_s: float, trial_timeout: float | None) -> float | None:
    """Seconds after which a trial's worker is killed: max_seconds plus a grace period for
    setup and the last step, or `trial_timeout` (``bench run --trial-timeout``) for a trial
    without a time budget. The watchdog is no part of the trial's key: a budget in steps stays
    the same trial whatever the timeout."""
    max_seconds = trial.budget.max_seconds
    return trial_timeout if max_seconds is None else float(max_seconds) + grace_s


def timeout_message(trial: Trial, elapsed: float, grace_s: float, trial_timeout: float | None,
                    verb: str = "killed") -> str:
    """The error of a trial whose worker the watchdog stopped after `elapsed` seconds."""
    if trial.budget.max_seconds is not None:
        limit = f"max_seconds={trial.budget.max_seconds} (+{grace_s:g} s grace)"
    else:
        limit = f"the trial timeout of {trial_timeout:g} s (no max_seconds; bench run --trial-timeout)"
    return f"{verb} after {elapsed:.1f} s: exceeded {limit}; a step did not return"


def threads_per_worker(jobs: int) -> int:
    """Torch threads for each of `jobs` workers so that together they use every core once."""
    return max(1, available_cpus() // max(1, jobs))


def registry_extensions(registry: Registry) -> list[tuple[str, str]]:
    """(plugin name, module name) of the plugins of `registry` that did not come from entry
    points, so that a worker process can register them too. Plugins that are not modules
    cannot be sent to another process and are left out."""
    return [(name, plugin.__name__) for name, plugin in registry.manager.list_name_plugin()
            if name not in registry.entry_point_plugins and isinstance(plugin, types.ModuleType)]


def worker_setup(threads: int, extensions: list[tuple[str, str]]) -> Registry:
    """Prepare a worker process: its torch thread count and its registry (entry-point plugins
    plus the driver's extra plugin modules). Returns the registry."""
    import torch

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran
        pass
    if not extensions:
        return get_registry()
    ep_names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    extra = [(name, importlib.import_module(module)) for name, module in extensions
             if name not in ep_names]
    registry = build_registry(plugins=extra)
    set_registry(registry)
    return registry


class Executor(Protocol):
    """Runs trials; calls ``on_result(row)`` in the driver as each one finishes (``row`` is None
    for a trial another live run had claimed or had completed meanwhile)."""

    def run(self, trials: list[Trial], out: str, run_id: str,
            on_result: Callable[[dict | None], None], rerun_failed: bool = False) -> None: ...


def get_executor(name: str, **options) -> Executor:
    """The executor called `name`: "local", "process" (options: jobs) or "ray" (options: address)."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(**options)
    if name == "process":
        from .process import ProcessExecutor

        return ProcessExecutor(**options)
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(**options)
    raise BenchInputError(f"--executor: unknown executor {name!r} (expected: {', '.join(EXECUTORS)})")
