"""Results on disk: a Parquet dataset that pandas, pyarrow.dataset, DuckDB and polars read as is.

    DIR/trials/<trial_id>.parquet   one row per trial (TRIAL_SCHEMA)
    DIR/curves/<trial_id>.parquet   long format: trial_id, step, time_s, metric, value

Each file is written under a temporary name and renamed into place, curves first: a trial file
exists only once its trial is complete, so a rerun skips exactly the complete trials. Every file
has the same schema, so readers never drop columns. No pickle anywhere.

Crash safety: a temporary file is named ``.<file>.<host>-<pid>.<random>.tmp`` so that the next
run removes those of dead writers (``clean_stale_temps``) and never those of live ones. Runs
sharing a directory claim each trial before running it (``TrialClaim``: an exclusive ``flock`` on
``DIR/.claims/<trial_id>.lock``, which the kernel releases when its owner dies, even by SIGKILL),
so concurrent runs lose nothing and do not run the same trial twice.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import BenchInputError
from .trial import SCHEMA_VERSION, row_types, to_json  # noqa: F401  (to_json: public here too)

STATUSES = ("ok", "target_reached", "diverged", "stalled", "error", "timeout")

_ARROW = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
          "datetime": pa.timestamp("us", tz="UTC"), "Metrics": pa.map_(pa.string(), pa.float64()),
          "Counters": pa.map_(pa.string(), pa.int64())}
#: The schema of a trial row, derived from bench_core.trial.TrialRow.
TRIAL_SCHEMA = pa.schema([(name, _ARROW[typ]) for name, typ in row_types().items()])

CURVE_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("step", pa.int64()), ("time_s", pa.float64()),
    ("metric", pa.string()), ("value", pa.float64()),
])


def _writer_tag() -> str:
    """<host>-<pid> of this process, as temporary file names carry it."""
    return f"{socket.gethostname().replace('.', '_').replace('-', '_')}-{os.getpid()}"


def _atomic_write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: some file systems refuse to fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(out: str | Path) -> list[Path]:
    """Remove the temporary files that dead writers on this host left in `out`; return them.

    Temporary files of live writers, and of writers on other hosts, are left alone.
    """
    host = _writer_tag().rsplit("-", 1)[0]
    removed = []
    for sub in ("trials", "curves"):
        d = Path(out) / sub
        if not d.is_dir():
            continue
        for tmp in d.glob(".*.tmp"):
            parts = tmp.name.split(".")  # "", stem, "parquet", "<host>-<pid>", random, "tmp"
            if len(parts) < 6:
                continue
            tag_host, _, pid = parts[-3].rpartition("-")
            if tag_host == host and pid.isdigit() and not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


class TrialClaim:
    """An exclusive claim on one trial of a results directory, held by this process.

    ``TrialClaim.acquire(out, trial_id)`` returns a claim, or None when another live process
    holds it. The claim is an ``flock`` on ``DIR/.claims/<trial_id>.lock`` (the owner's pid is
    written in the file for people to read); the kernel drops it when the owner exits or is
    killed, so a claim is never left behind by a dead run. ``release()`` removes the file.
    """

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    @classmethod
    def acquire(cls, out: str | Path, trial_id: str) -> "TrialClaim | None":
        """Claim `trial_id` in `out`; None when a live process holds it."""
        path = Path(out) / ".claims" / f"{trial_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return None
                raise
            try:  # the previous owner may have removed the file between our open and flock
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{_writer_tag()}\n".encode())
                return cls(path, fd)
            os.close(fd)

    def release(self) -> None:
        """Give the claim up (remove the lock file, then unlock)."""
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim_held(out: str | Path, trial_id: str) -> bool:
    """Whether a live process holds the claim on `trial_id` in `out` right now."""
    path = Path(out) / ".claims" / f"{trial_id}.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return True
        raise
    finally:
        os.close(fd)
    return False


def trial_path(out: str | Path, trial_id: str) -> Path:
    """Where a trial's row lives."""
    return Path(out) / "trials" / f"{trial_id}.parquet"


def write_trial(out: str | Path, row: dict, curve: list[tuple]) -> None:
    """Write a finished trial: its curve (rows of step, time_s, metric, value), then its row."""
    tid = row["trial_id"]
    curve_table = pa.table({
        "trial_id": [tid] * len(curve), "step": [c[0] for c in curve], "time_s": [c[1] for c in curve],
        "metric": [c[2] for c in curve], "value": [c[3] for c in curve]}, schema=CURVE_SCHEMA)
    _atomic_write(curve_table, Path(out) / "curves" / f"{tid}.parquet")
    full = {name: row.get(name) for name in TRIAL_SCHEMA.names}
    for key in ("metrics", "counters"):
        full[key] = list((full[key] or {}).items())
    _atomic_write(pa.Table.from_pylist([full], schema=TRIAL_SCHEMA), trial_path(out, tid))


def completed_trial_ids(out: str | Path) -> set[str]:
    """Ids of the trials already written to `out`."""
    d = Path(out) / "trials"
    return {p.stem for p in d.glob("*.parquet")} if d.is_dir() else set()


def read_trials(*dirs: str | Path, trial_ids: set | None = None):
    """All trial rows of one or more results directories as a pandas DataFrame (only those
    in `trial_ids` when given).

    The ``metrics`` and ``counters`` maps become plain dicts; the JSON columns stay JSON text
    (see ``json.loads``). A row written by an older bench-core, without the trial model's key
    and code identity, is refused with one line naming its file (BenchInputError).
    """
    import pandas as pd

    frames = []
    for d in dirs:
        files = sorted((Path(d) / "trials").glob("*.parquet"))
        if trial_ids is not None:
            files = [f for f in files if f.stem in trial_ids]
        tables = [_read_row_file(f) for f in files]
        if tables:
            frames.append(pa.concat_tables(tables).to_pandas(maps_as_pydicts="strict"))
    if not frames:
        return pd.DataFrame(columns=TRIAL_SCHEMA.names)
    return pd.concat(frames, ignore_index=True)


def _read_row_file(path: Path) -> pa.Table:
    """One trial file, checked to be of this schema version."""
    names = pq.read_schema(path).names
    if "schema_version" not in names or "key_id" not in names:
        raise BenchInputError(f"{path}: written by an older bench-core (before schema version "
                              f"{SCHEMA_VERSION}, without key and code identity); run its suite again "
                              "(bench run reruns it) or move the file away")
    return pq.read_table(path, schema=TRIAL_SCHEMA)


def completed_keys(out: str | Path) -> dict:
    """(key_id, seed) -> trial_id of the trials written to `out` by any code (for --reuse-stale)."""
    d = Path(out) / "trials"
    found = {}
    for f in sorted(d.glob("*.parquet")) if d.is_dir() else []:
        if "key_id" not in pq.read_schema(f).names:
            continue
        row = pq.read_table(f, columns=["key_id", "seed"]).to_pylist()
        if row:
            found[(row[0]["key_id"], row[0]["seed"])] = f.stem
    return found


def read_curves(*dirs: str | Path):
    """All curve points of one or more results directories as a pandas DataFrame."""
    import pandas as pd

    tables = []
    for d in dirs:
        files = sorted((Path(d) / "curves").glob("*.parquet"))
        tables += [pq.read_table(f, schema=CURVE_SCHEMA) for f in files]
    if not tables:
        return pd.DataFrame(columns=CURVE_SCHEMA.names)
    return pa.concat_tables(tables).to_pandas()


def read_trial_status(out: str | Path, trial_id: str) -> tuple[str, str] | None:
    """(status, run_id) of a trial written to `out`, or None when it has no file."""
    path = trial_path(out, trial_id)
    if not path.is_file():
        return None
    row = pq.read_table(path, columns=["status", "run_id"]).to_pylist()[0]
    return row["status"], row["run_id"]
