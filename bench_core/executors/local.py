"""The default executor: trials one after another in this process.

Plugin code runs in `bench` itself, so this executor has no watchdog: a hung step waits until
Ctrl-C (exit 130, the trial left to a later run), and ``--trial-timeout`` needs ``--jobs N``.
An exception from a trial, SystemExit included, is that trial's error (the runner); a trial
that kills the process (a segfault, ``os._exit``) ends `bench` with the process's status, but
its attempt stays recorded, and after two such attempts a later run records the trial as an
error instead of running it (see :mod:`bench_core.executors.attempts`).
"""
from __future__ import annotations

import sys
from typing import Callable

from ..registry import Registry, get_registry
from ..suite import Trial


class LocalExecutor:
    """Runs trials sequentially in the calling process; `log` hears about trials run again
    after they killed an earlier run (None: stderr; ``run_suite`` sets its progress bar)."""

    def __init__(self, registry: Registry | None = None, log: Callable[[str], None] | None = None):
        self.registry = registry
        self.log = log

    def run(self, trials: list[Trial], out: str, run_id: str,
            on_result: Callable[[dict | None], None], rerun_failed: bool = False) -> None:
        """Run each trial, write it, and report its row (None: claimed by another run)."""
        from . import execute_trial

        registry = self.registry or get_registry()
        log = self.log or (lambda message: print(message, file=sys.stderr))
        for trial in trials:
            on_result(execute_trial(trial, out, run_id, registry, rerun_failed=rerun_failed, log=log))
