"""Run a whole suite into a results directory: skip complete trials, execute, show progress.

A trial whose files are damaged is not complete: its files are moved aside into
``DIR/quarantine/`` (under the trial's claim, see bench_core.store.quarantine_trial) and it runs
again; the run says so, one line per trial, on its console. Everything a plugin or a suite names
is shown literally (the progress bar interprets no markup).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Column

from .executors import Executor, get_executor
from .store import (claim_held, clean_stale_temps, completed_keys, completed_trial_ids, quarantine_trial,
                    trial_damage, trial_path)
from .suite import Suite


#: How often a run goes back to trials that another run held and left unfinished.
MAX_ROUNDS = 5


@dataclass
class RunSummary:
    """What a run did: how many trials it ran and skipped, and the rows it produced."""

    run_id: str
    out: str
    ran: int
    skipped: int
    rows: list
    #: trial_id of each trial whose result was reused from other code (--reuse-stale) -> the reused trial_id
    reused_stale: dict = field(default_factory=dict)
    #: trial ids of the suite's results in `out` (reused ones under their old ids)
    result_ids: set = field(default_factory=set)
    #: (why, the files' new paths) of each damaged trial moved into DIR/quarantine/ and run again
    quarantined: list = field(default_factory=list)


def new_run_id() -> str:
    """A sortable unique id for one invocation of `bench run`."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


def progress_bar(console: Console, disable: bool = False) -> Progress:
    """The progress bar of a run, one line at any width: suite name, bar, done/total, elapsed and
    remaining time always shown; the bar narrows on small terminals and the last trial's text
    (problem, setting, seed, status) is cut with "…" to what is left of the line. Names come
    from the suite and the plugins: shown literally, never read as rich markup."""
    bar_width = max(10, min(40, console.width // 4))
    columns = (TextColumn("{task.description}", style="bold", markup=False,
                          table_column=Column(no_wrap=True, overflow="ellipsis", max_width=24)),
               BarColumn(bar_width=bar_width), MofNCompleteColumn(table_column=Column(no_wrap=True)),
               TimeElapsedColumn(table_column=Column(no_wrap=True)), TextColumn("eta", style="dim"),
               TimeRemainingColumn(table_column=Column(no_wrap=True)),
               TextColumn("{task.fields[last]}", markup=False,
                          table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=1)))
    return Progress(*columns, console=console, transient=False, expand=True, disable=disable)


def run_suite(suite: Suite, out: str | Path, executor: Executor | None = None,
              console: Console | None = None, retry_failed: bool = False,
              reuse_stale: bool = False) -> RunSummary:
    """Run every trial of `suite` not already complete in `out`; write each as it finishes.

    Several runs may share `out`: each trial is claimed before it runs, trials another live run
    holds are waited for (and run here if that run dies before finishing them), so the call
    returns once every trial of the suite is complete in `out`. Temporary files left by dead
    writers are removed first, and the files of the suite's damaged trials are moved into
    ``DIR/quarantine/`` (one line each on `console`, then a count) so that they run again. A
    trial counts as complete only when written by the same code (its id holds the code
    fingerprint); with `reuse_stale`, a result of the same key and seed made by other code is
    reused instead, and the summary lists it.
    """
    out = str(out)
    executor = executor or get_executor("local")
    Path(out).mkdir(parents=True, exist_ok=True)
    clean_stale_temps(out)
    console = console or Console(stderr=True)
    done = completed_trial_ids(out) & {t.trial_id for t in suite.trials}
    quarantined = []
    for tid in sorted(done):
        if trial_damage(out, tid) is None:
            continue
        done.discard(tid)  # not complete: moved aside here, or being rerun by the claim's holder
        moved = quarantine_trial(out, tid)
        if moved is not None:
            quarantined.append(moved)
            console.print(f"warning: {moved[0]} (moved into {Path(out) / 'quarantine'}/; the trial runs "
                          "again)", markup=False, highlight=False, soft_wrap=True)
    if quarantined:
        console.print(f"{len(quarantined)} damaged trial(s) moved into {Path(out) / 'quarantine'}/: "
                      "they run again", markup=False, highlight=False, soft_wrap=True)
    if retry_failed:
        done -= _failed_ids(out, done)
    pending = [t for t in suite.trials if t.trial_id not in done]
    reused = {}
    if reuse_stale and pending:
        by_key = completed_keys(out)
        reused = {t.trial_id: by_key[(t.key_id, t.seed)] for t in pending if (t.key_id, t.seed) in by_key}
        pending = [t for t in pending if t.trial_id not in reused]
    seen, unique = set(), []
    for t in pending:  # identical entries in a suite run once
        if t.trial_id not in seen:
            seen.add(t.trial_id)
            unique.append(t)
    run_id = new_run_id()
    rows: list[dict] = []
    with progress_bar(console, disable=not unique) as progress:
        task = progress.add_task(suite.name, total=len(unique), last="")
        borrowed_log = hasattr(executor, "log") and executor.log is None
        if borrowed_log:  # the executor's messages go above the progress bar
            executor.log = lambda message: progress.console.print(message, highlight=False, markup=False,
                                                                  soft_wrap=True)

        def on_result(row: dict | None) -> None:
            if row is None:  # another run holds the trial, or finished it meanwhile
                return
            rows.append(row)
            progress.update(task, advance=1,
                            last=f"{row['status']}: {row['problem']} seed={row['seed']} {row['label']}")

        todo, rounds = unique, 0
        while todo and rounds < MAX_ROUNDS:
            rounds += 1
            kwargs = {"rerun_failed": True} if retry_failed else {}
            executor.run(todo, out, run_id, on_result, **kwargs)
            todo = _wait_for_other_runs(out, todo, {r["trial_id"] for r in rows}, progress, task)
            retry_failed = False  # a failure written during this run is final
        if borrowed_log:
            executor.log = None
    ran = len(rows)
    ids = {reused.get(t.trial_id, t.trial_id) for t in suite.trials}
    return RunSummary(run_id=run_id, out=out, ran=ran, skipped=len(suite.trials) - ran, rows=rows,
                      reused_stale=reused, result_ids=ids, quarantined=quarantined)


def _wait_for_other_runs(out: str, trials: list, ran_here: set, progress: Progress, task) -> list:
    """Wait while other live runs hold some of `trials` (those not in `ran_here`); return those
    still not complete. A trial is complete once its file exists and no live run holds its claim
    (a run holding it may be replacing a damaged file)."""
    by_id = {t.trial_id: t for t in trials}
    left = set(by_id) - ran_here
    while left:
        held = {tid for tid in left if claim_held(out, tid)}
        finished = {tid for tid in left - held if trial_path(out, tid).is_file()}
        progress.update(task, advance=len(finished))
        left -= finished
        if not held & left:
            break
        progress.update(task, last=f"waiting for {len(held & left)} trial(s) held by another run")
        time.sleep(0.5)
    return [by_id[tid] for tid in by_id if tid in left]


def _failed_ids(out: str, trial_ids: set) -> set[str]:
    """Those of `trial_ids` recorded in `out` with status error."""
    from .store import read_trials

    df = read_trials(out, trial_ids=trial_ids)
    return set(df.loc[df["status"] == "error", "trial_id"]) if len(df) else set()
