"""Executors run a list of trials and report each finished trial's row.

Every executor calls ``execute_trial`` wherever the trial runs, so the worker itself writes the
trial's files into the results directory; the driver only shows progress.
"""
from __future__ import annotations

from typing import Callable, Protocol

from ..errors import BenchInputError
from ..registry import Registry, get_registry
from ..runner import run_trial
from ..store import write_trial
from ..suite import Trial


def execute_trial(trial: Trial, out: str, run_id: str, registry: Registry | None = None) -> dict:
    """Run one trial, write its files atomically into `out`, and return its row."""
    row, curve = run_trial(trial, registry or get_registry(), run_id=run_id)
    write_trial(out, row, curve)
    return row


class Executor(Protocol):
    """Runs trials; calls ``on_result(row)`` in the driver as each one finishes."""

    def run(self, trials: list[Trial], out: str, run_id: str,
            on_result: Callable[[dict], None]) -> None: ...


def get_executor(name: str, **options) -> Executor:
    """The executor called `name` ("local" for now)."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(**options)
    raise BenchInputError(f"--executor: unknown executor {name!r} (expected: local)")
