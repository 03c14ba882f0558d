"""Attempts of a trial that killed its process, so that a crashing trial is not run forever.

A segfault, ``os._exit`` or the out-of-memory killer ends the process running a trial before
any ``except`` can see it; with the local executor that process is `bench` itself. So each run
of a trial is recorded while it lasts, in ``DIR/.claims/<trial_id>.attempts`` (next to the claim,
written by the claim's holder):

- ``attempt(out, trial_id)`` appends a line ``attempt pid=... host=... started=...`` and points
  ``faulthandler`` at the file while the trial runs, so a fatal signal (SIGSEGV, SIGFPE,
  SIGABRT, SIGBUS, SIGILL) appends Python's "Fatal Python error: ..." report with the stack
  before the process dies. When the trial ends in any way Python sees (a row, an exception, a
  KeyboardInterrupt) the file is removed: only an attempt that killed its process stays.
- The next run of the trial reads ``crashes(out, trial_id)``: one line per attempt that killed
  its process (the signal and the innermost frame when faulthandler saw it). After
  ``MAX_CRASHES`` of them the trial is recorded as an error (``crash_message``) instead of being
  run again; ``clear`` removes the file once a row is written. An attempt killed by SIGKILL (by a
  person or the out-of-memory killer) counts too: nothing tells it apart from ``os._exit``.
"""
from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import signal
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

#: Attempts that killed their process after which a trial is recorded as error, not run again.
MAX_CRASHES = 2

#: faulthandler's names of the fatal signals it reports (CPython Modules/faulthandler.c).
_FATAL = {"Segmentation fault": signal.SIGSEGV, "Floating point exception": signal.SIGFPE,
          "Aborted": signal.SIGABRT, "Bus error": signal.SIGBUS, "Illegal instruction": signal.SIGILL}
_FRAME = re.compile(r'^\s*File "(?P<file>.+)", line (?P<line>\d+) in (?P<func>\S+)')


def attempts_path(out: str | Path, trial_id: str) -> Path:
    """Where the attempts of `trial_id` are recorded."""
    return Path(out) / ".claims" / f"{trial_id}.attempts"


@contextlib.contextmanager
def attempt(out: str | Path, trial_id: str):
    """Record one attempt of the trial while the block runs (fatal signals reported into the
    file), and remove the record when the block ends, however Python sees it end."""
    path = attempts_path(out, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_enabled = faulthandler.is_enabled()
    try:
        with open(path, "a") as fh:
            started = datetime.now(timezone.utc).isoformat(timespec="seconds")
            fh.write(f"attempt pid={os.getpid()} host={socket.gethostname()} started={started}\n")
            fh.flush()
            faulthandler.enable(file=fh, all_threads=False)
            try:
                yield
            finally:
                faulthandler.disable()
                if was_enabled and sys.__stderr__ is not None:
                    faulthandler.enable(file=sys.__stderr__)
    finally:
        clear(out, trial_id)


def clear(out: str | Path, trial_id: str) -> None:
    """Forget the trial's attempts (its row is written, or its run was interrupted)."""
    attempts_path(out, trial_id).unlink(missing_ok=True)


def crashes(out: str | Path, trial_id: str) -> list[str]:
    """One line per earlier attempt of the trial that killed its process, e.g.
    ``signal 11 (SIGSEGV, Segmentation fault) at plugin.py:12 in loss``."""
    try:
        text = attempts_path(out, trial_id).read_text(errors="replace")
    except FileNotFoundError:
        return []
    blocks = re.split(r"^(?=attempt )", text, flags=re.M)
    return [_describe(block) for block in blocks if block.startswith("attempt ")]


def _describe(block: str) -> str:
    fatal = re.search(r"^Fatal Python error: (.+)$", block, flags=re.M)
    if fatal is None:
        return "no fatal signal reported (os._exit, SIGKILL or the out-of-memory killer)"
    name = fatal.group(1).strip()
    sig = _FATAL.get(name)
    text = f"signal {int(sig)} ({sig.name}, {name})" if sig is not None else name
    for line in block[fatal.end():].splitlines():
        frame = _FRAME.match(line)
        if frame:
            return f"{text} at {frame['file']}:{frame['line']} in {frame['func']}"
    return text


def crash_message(crashed: list[str]) -> str:
    """The error of a trial not run again after `crashed` (lines of ``crashes``)."""
    times = "twice" if len(crashed) == 2 else f"{len(crashed)} times"
    causes = "; ".join(dict.fromkeys(crashed))
    return f"killed its process {times}: {causes}; not run again (bench run --retry-failed runs it)"
