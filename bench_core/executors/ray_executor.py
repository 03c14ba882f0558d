"""The Ray executor (`bench run --executor ray [--address ADDR]`): trials as Ray tasks.

With an address (``address=``, else the ``RAY_ADDRESS`` environment variable, as Ray's own
tools read it) the driver joins that Ray cluster; without one it starts a local Ray instance
(no dashboard). Each trial is a task asking for the resources its device setting needs: one GPU
(and one CPU) for ``cuda``, ``cpus_per_trial`` CPUs (default 1, which is also its torch thread
count) for ``cpu``. The task claims, runs and writes the trial itself, so the results directory
must be on storage that every node sees (it is, trivially, on one machine); the driver shows
progress. At most as many tasks are in flight as the cluster has slots, so a task starts soon
after it is submitted and the driver can enforce a deadline: ``max_seconds`` plus a grace
period, or ``trial_timeout`` (``bench run --trial-timeout``, default 3600 s) for a trial without
max_seconds. An overdue task is cancelled (its worker killed) and its trial recorded as
``timeout``. Ray
retries a task whose worker died once (``max_retries=1``); if it dies again the trial is
recorded as ``error``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable

from ..registry import Registry, get_registry
from ..store import claim_held
from ..suite import Trial
from . import (DEFAULT_TRIAL_TIMEOUT_S, available_cpus, execute_trial, forget_interrupted, kill_deadline,
               record_failure, registry_extensions, row_json, timeout_message, worker_setup)

DEFAULT_GRACE_S = 60.0
_REGISTRIES: dict = {}  # per worker process: registry per tuple of extension modules


def ray_trial(trial: dict, out: str, run_id: str, extensions: list, threads: int,
              rerun_failed: bool) -> str:
    """The Ray task: run one trial in a Ray worker and return its row as JSON."""
    key = (tuple(map(tuple, extensions)), threads)
    if key not in _REGISTRIES:
        _REGISTRIES[key] = worker_setup(threads, [tuple(e) for e in extensions])
    row = execute_trial(Trial.from_dict(trial), out, run_id, _REGISTRIES[key], rerun_failed=rerun_failed)
    return row_json(row)


def _resources(trial: Trial, cpus_per_trial: int) -> dict:
    if trial.device.startswith("cuda"):
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": cpus_per_trial}


def _wait_released(out: str, trial_id: str, timeout_s: float = 60.0) -> None:
    """Wait (a bounded time) until a cancelled task's worker is gone and its claim released."""
    end = time.monotonic() + timeout_s
    while claim_held(out, trial_id) and time.monotonic() < end:
        time.sleep(0.2)


class RayExecutor:
    """Runs trials as tasks on a Ray cluster (`address`, default ``$RAY_ADDRESS``), or on a
    local Ray instance."""

    def __init__(self, address: str | None = None, registry: Registry | None = None,
                 cpus_per_trial: int = 1, grace_s: float = DEFAULT_GRACE_S, retries: int = 1,
                 log: Callable[[str], None] | None = None,
                 trial_timeout: float = DEFAULT_TRIAL_TIMEOUT_S):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.registry = registry
        self.cpus_per_trial = cpus_per_trial
        self.grace_s = grace_s
        self.trial_timeout = trial_timeout
        self.retries = retries
        self.log = log

    def _connect(self):
        import ray

        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
            else:
                ray.init(num_cpus=available_cpus(), include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
        return ray

    def _slots(self, resources: dict, trial: Trial) -> int:
        if trial.device.startswith("cuda"):
            return max(1, int(resources.get("GPU", 0)))
        return max(1, int(resources.get("CPU", 1)) // self.cpus_per_trial)

    def run(self, trials: list[Trial], out: str, run_id: str,
            on_result: Callable[[dict | None], None], rerun_failed: bool = False) -> None:
        """Submit the trials as Ray tasks (no more than the cluster's slots at once); report
        each row as its task finishes."""
        if not trials:
            return
        ray = self._connect()
        out = os.path.abspath(out)
        extensions = registry_extensions(self.registry or get_registry())
        task = ray.remote(ray_trial)
        resources = ray.cluster_resources()
        pending = list(trials)
        running: dict = {}  # ObjectRef -> (trial, submitted at)
        try:
            while pending or running:
                while pending and len(running) < self._slots(resources, pending[0]):
                    trial = pending.pop(0)
                    options = {**_resources(trial, self.cpus_per_trial), "max_retries": self.retries}
                    threads = 1 if trial.device.startswith("cuda") else self.cpus_per_trial
                    ref = task.options(**options).remote(trial.to_dict(), out, run_id, extensions,
                                                         threads, rerun_failed)
                    running[ref] = (trial, time.monotonic())
                done, _ = ray.wait(list(running), num_returns=1, timeout=self._wait_timeout(running))
                for ref in done:
                    trial, _ = running.pop(ref)
                    on_result(self._result(ray, ref, trial, out, run_id, rerun_failed))
                for ref, (trial, submitted) in list(running.items()):
                    deadline = kill_deadline(trial, self.grace_s, self.trial_timeout)
                    elapsed = time.monotonic() - submitted
                    if deadline is not None and elapsed > deadline:
                        ray.cancel(ref, force=True)
                        running.pop(ref)
                        _wait_released(out, trial.trial_id)
                        message = timeout_message(trial, elapsed, self.grace_s, self.trial_timeout, "cancelled")
                        on_result(record_failure(trial, out, run_id, "timeout", message, rerun_failed))
        finally:  # tasks still running here (an exception, an interrupt) are cancelled
            for ref, (trial, _) in running.items():
                ray.cancel(ref, force=True)
                forget_interrupted(trial, out)

    def _wait_timeout(self, running: dict) -> float:
        now, left = time.monotonic(), [1.0]
        for trial, submitted in running.values():
            deadline = kill_deadline(trial, self.grace_s, self.trial_timeout)
            if deadline is not None:
                left.append(submitted + deadline - now)
        return max(0.05, min(left))

    def _result(self, ray, ref, trial: Trial, out: str, run_id: str, rerun_failed: bool) -> dict | None:
        try:
            return json.loads(ray.get(ref))
        except ray.exceptions.RayError as exc:  # the worker died (again), or the task failed
            message = f"Ray task failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            (self.log or (lambda m: print(m, file=sys.stderr)))(
                f"{trial.problem} {trial.label} seed={trial.seed}: {message}; recorded as error")
            return record_failure(trial, out, run_id, "error", message, rerun_failed)
