"""The default executor: trials one after another in this process."""
from __future__ import annotations

from typing import Callable

from ..registry import Registry, get_registry
from ..suite import Trial


class LocalExecutor:
    """Runs trials sequentially in the calling process."""

    def __init__(self, registry: Registry | None = None):
        self.registry = registry

    def run(self, trials: list[Trial], out: str, run_id: str,
            on_result: Callable[[dict | None], None], rerun_failed: bool = False) -> None:
        """Run each trial, write it, and report its row (None: claimed by another run)."""
        from . import execute_trial

        registry = self.registry or get_registry()
        for trial in trials:
            on_result(execute_trial(trial, out, run_id, registry, rerun_failed=rerun_failed))
