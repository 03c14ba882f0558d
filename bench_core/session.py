"""Run a whole suite into a results directory: skip complete trials, execute, show progress."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .executors import Executor, get_executor
from .store import completed_trial_ids
from .suite import Suite


@dataclass
class RunSummary:
    """What a run did: how many trials it ran and skipped, and the rows it produced."""

    run_id: str
    out: str
    ran: int
    skipped: int
    rows: list


def new_run_id() -> str:
    """A sortable unique id for one invocation of `bench run`."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


def run_suite(suite: Suite, out: str | Path, executor: Executor | None = None,
              console: Console | None = None, retry_failed: bool = False) -> RunSummary:
    """Run every trial of `suite` not already complete in `out`; write each as it finishes."""
    out = str(out)
    executor = executor or get_executor("local")
    done = completed_trial_ids(out)
    if retry_failed:
        done -= _failed_ids(out)
    pending = [t for t in suite.trials if t.trial_id not in done]
    seen, unique = set(), []
    for t in pending:  # identical entries in a suite run once
        if t.trial_id not in seen:
            seen.add(t.trial_id)
            unique.append(t)
    run_id = new_run_id()
    rows: list[dict] = []
    Path(out).mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[last]}"))
    with Progress(*columns, console=console, transient=False,
                  disable=not unique) as progress:
        task = progress.add_task(suite.name, total=len(unique), last="")

        def on_result(row: dict) -> None:
            rows.append(row)
            progress.update(task, advance=1,
                            last=f"{row['problem']} {row['label']} seed={row['seed']}: {row['status']}")

        executor.run(unique, out, run_id, on_result)
    return RunSummary(run_id=run_id, out=out, ran=len(unique),
                      skipped=len(suite.trials) - len(unique), rows=rows)


def _failed_ids(out: str) -> set[str]:
    from .store import read_trials

    df = read_trials(out)
    return set(df.loc[df["status"] == "error", "trial_id"]) if len(df) else set()
