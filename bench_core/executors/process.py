"""The process-pool executor (`bench run --jobs N`): trials in N worker processes on this machine.

Workers are started with the "spawn" context (and kept for the executor's next run), set their
torch thread count so that together they use each core once, and claim, run and write their
trials themselves; the driver hands out one
trial at a time over a pipe (JSON text, no pickle) and shows progress. The driver also watches:
- a trial that runs past its deadline (a step that hangs, which the runner cannot interrupt
  in-process) gets its worker killed and is recorded as ``timeout``: ``max_seconds`` plus a
  grace period, or for a trial without max_seconds the ``trial_timeout`` (``bench run
  --trial-timeout``, default 3600 s), so every trial has one;
- a worker that dies (crash, out-of-memory killer) is reported and its trial retried once in a
  fresh worker; if it dies again the trial is recorded as ``error``;
- on an interrupt (Ctrl-C) the busy workers are killed and their trials left to a later run,
  their attempts not counted as crashes.
"""
from __future__ import annotations

import json
import multiprocessing
import signal
import sys
import time
from collections import Counter, deque
from multiprocessing.connection import wait
from typing import Callable

from ..registry import Registry, get_registry
from ..suite import Trial
from . import (DEFAULT_TRIAL_TIMEOUT_S, execute_trial, forget_interrupted, kill_deadline, record_failure,
               registry_extensions, row_json, threads_per_worker, timeout_message, worker_setup)

DEFAULT_GRACE_S = 60.0


def _worker_main(conn, threads: int, extensions: list) -> None:
    """A worker's loop: receive a trial as JSON, run it, answer with its row as JSON."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what an interrupt does
    registry = worker_setup(threads, extensions)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):  # the driver is gone
            return
        if not message:
            return
        request = json.loads(message)
        trial = Trial.from_dict(request["trial"])
        conn.send_bytes(b"started")  # the driver's clock for this trial starts now
        row = execute_trial(trial, request["out"], request["run_id"], registry,
                            rerun_failed=request["rerun_failed"])
        conn.send_bytes(row_json(row).encode())


class _Worker:
    """One worker process, its pipe, and the trial it is running."""

    def __init__(self, ctx, threads: int, extensions: list):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, threads, extensions), daemon=True)
        self.process.start()
        child.close()
        self.trial: Trial | None = None
        self.started: float | None = None  # when the worker began the trial (after its start-up)

    def send(self, trial: Trial, out: str, run_id: str, rerun_failed: bool) -> None:
        self.trial, self.started = trial, None
        self.conn.send_bytes(json.dumps({"trial": trial.to_dict(), "out": out, "run_id": run_id,
                                         "rerun_failed": rerun_failed}).encode())

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send_bytes(b"")
            except OSError:
                pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class ProcessExecutor:
    """Runs trials in `jobs` worker processes (default: one per core); a trial without
    max_seconds is killed after `trial_timeout` seconds."""

    def __init__(self, jobs: int | None = None, registry: Registry | None = None,
                 grace_s: float = DEFAULT_GRACE_S, threads: int | None = None, retries: int = 1,
                 log: Callable[[str], None] | None = None,
                 trial_timeout: float = DEFAULT_TRIAL_TIMEOUT_S):
        self.jobs = max(1, jobs or threads_per_worker(1))
        self.registry = registry
        self.grace_s = grace_s
        self.trial_timeout = trial_timeout
        self.threads = threads or threads_per_worker(self.jobs)
        self.retries = retries
        self.log = log  # where deaths are reported; None: stderr (run_suite sets its progress bar)
        self._workers: list[_Worker] = []  # kept between runs (e.g. the rounds of `bench tune`)
        self._extensions: list | None = None

    def _pool(self, ctx, extensions: list, wanted: int) -> list[_Worker]:
        """The live workers, started or restarted as needed (at least `wanted` of them)."""
        if extensions != self._extensions:
            self.close()
            self._extensions = extensions
        self._workers = [w for w in self._workers if w.process.is_alive()]
        while len(self._workers) < wanted:
            self._workers.append(_Worker(ctx, self.threads, extensions))
        return self._workers

    def close(self) -> None:
        """Stop the worker processes (they also end with the driver, being daemons)."""
        for w in self._workers:
            w.stop(kill=w.trial is not None)
        self._workers = []

    def run(self, trials: list[Trial], out: str, run_id: str,
            on_result: Callable[[dict | None], None], rerun_failed: bool = False) -> None:
        """Run the trials in the worker pool; report each row as it arrives."""
        if not trials:
            return
        ctx = multiprocessing.get_context("spawn")
        extensions = registry_extensions(self.registry or get_registry())
        queue = deque(trials)
        deaths: Counter = Counter()
        workers = self._pool(ctx, extensions, min(self.jobs, len(trials)))
        try:
            while queue or any(w.trial for w in workers):
                for i, w in enumerate(workers):
                    if w.trial is None and queue:
                        try:
                            w.send(queue[0], out, run_id, rerun_failed)
                            queue.popleft()
                        except OSError:  # the idle worker had died: start another
                            w.trial = None
                            workers[i] = self._replace(ctx, w, extensions)
                busy = [w for w in workers if w.trial is not None]
                if not busy:
                    continue
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                     timeout=self._wait_timeout(busy))
                for i, w in enumerate(workers):
                    if w.trial is None:
                        continue
                    if self._receive(w, on_result):
                        continue
                    if not w.process.is_alive():
                        workers[i] = self._replace(ctx, w, extensions)
                        self._died(w, queue, deaths, out, run_id, on_result, rerun_failed)
                    elif self._overdue(w):
                        workers[i] = self._replace(ctx, w, extensions, kill=True)
                        message = timeout_message(w.trial, time.monotonic() - w.started, self.grace_s,
                                                  self.trial_timeout)
                        on_result(record_failure(w.trial, out, run_id, "timeout", message, rerun_failed))
        finally:  # workers still busy here (an exception, an interrupt) are killed
            for w in [w for w in workers if w.trial is not None]:
                w.stop(kill=True)
                workers.remove(w)
                forget_interrupted(w.trial, out)

    @staticmethod
    def _receive(w: _Worker, on_result) -> bool:
        """Read the worker's messages; True once its trial's row has arrived."""
        try:
            while w.conn.poll():
                message = w.conn.recv_bytes()
                if message == b"started":
                    w.started = time.monotonic()
                    continue
                on_result(json.loads(message))
                w.trial = w.started = None
                return True
        except (EOFError, OSError):
            pass  # died while answering: the caller sees the dead process
        return False

    def _wait_timeout(self, busy: list[_Worker]) -> float | None:
        now = time.monotonic()
        left = [w.started + d - now for w in busy if w.started is not None
                and (d := kill_deadline(w.trial, self.grace_s, self.trial_timeout)) is not None]
        return max(0.0, min(left)) + 0.05 if left else None

    def _overdue(self, w: _Worker) -> bool:
        deadline = kill_deadline(w.trial, self.grace_s, self.trial_timeout)
        return (deadline is not None and w.started is not None
                and time.monotonic() - w.started > deadline)

    def _replace(self, ctx, w: _Worker, extensions: list, kill: bool = False) -> _Worker:
        w.stop(kill=kill)
        return _Worker(ctx, self.threads, extensions)

    def _report(self, message: str) -> None:
        (self.log or (lambda m: print(m, file=sys.stderr)))(message)

    def _died(self, w: _Worker, queue: deque, deaths: Counter, out: str, run_id: str,
              on_result, rerun_failed: bool) -> None:
        trial, code = w.trial, w.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if code == -signal.SIGKILL:
            how += ", possibly by the out-of-memory killer"
        deaths[trial.trial_id] += 1
        if deaths[trial.trial_id] <= self.retries:
            self._report(f"worker running {trial.problem} {trial.label} seed={trial.seed} died ({how});"
                     " retrying the trial once")
            queue.appendleft(trial)
        else:
            self._report(f"worker running {trial.problem} {trial.label} seed={trial.seed} died again ({how});"
                     " recorded as error")
            on_result(record_failure(trial, out, run_id, "error",
                                     f"worker process died {deaths[trial.trial_id]} times ({how})",
                                     rerun_failed))
