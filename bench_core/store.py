"""Results on disk: a Parquet dataset that pandas, pyarrow.dataset, DuckDB and polars read as is.

    DIR/trials/<trial_id>.parquet   one row per trial (TRIAL_SCHEMA)
    DIR/curves/<trial_id>.parquet   long format: trial_id, step, time_s, metric, value
    DIR/trials/compacted-<gen>.parquet, DIR/curves/compacted-<gen>.parquet
                                    many trials' rows and curves, merged by `bench compact`
                                    (bench_core.compaction); DIR/.compaction names the current <gen>
    DIR/quarantine/trials|curves/   damaged files that `bench run` moved aside
    DIR/README.txt                  not Parquet, so that reading DIR itself as one dataset fails

Each file is written under a temporary name and renamed into place, curves first: a trial file
exists only once its trial is complete, so a rerun skips exactly the complete trials. Every file
has the same schema, so readers never drop columns. No pickle anywhere.

Crash safety: a temporary file is named ``.<file>.<host>-<pid>.<random>.tmp`` so that the next
run removes those of dead writers (``clean_stale_temps``) and never those of live ones. Runs
sharing a directory claim each trial before running it (``TrialClaim``: an exclusive ``flock`` on
``DIR/.claims/<trial_id>.lock``, which the kernel releases when its owner dies, even by SIGKILL),
so concurrent runs lose nothing and do not run the same trial twice.

Damage: files are checked when they are written (the temporary file is read back, with Parquet
page checksums, before the rename), so readers only check what costs nothing more than reading:
``read_trial_file`` and ``read_curve_file`` raise ``DamagedFile`` (its ``kind`` one of
``DAMAGE_KINDS``) for a file that is truncated, garbled, of another schema, holds several rows or
another trial's row. ``read_trials`` and ``read_curves`` skip such files and report each in one
line naming the file (``on_skip``), and read a trial seen twice once; a row of an older
bench-core is refused instead (BenchInputError: the whole directory needs its suite run again).
``quarantine_trial`` moves a damaged trial's files aside under the trial's claim, for
``bench run`` to run it again; ``bench verify`` (bench_core.integrity) reports a directory's
damage.

Compaction: a trial is written as its own file and may later live in a compacted file. Readers
take a trial's row from its own file when it has one (a trial rerun after compaction), else from
the compacted file of the current generation (the one ``DIR/.compaction`` names; others are
leftovers of an interrupted compaction, which the next one removes), so that each trial is read
once whatever the moment. Per-trial files are read by a few threads at once.
"""
from __future__ import annotations

import bisect
import errno
import fcntl
import functools
import os
import re
import socket
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
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


#: How a results file can be damaged (DamagedFile.kind): not a readable Parquet file; a Parquet
#: file of another schema (a foreign file, a curve file in trials/); a trial file without exactly
#: one row; a row whose trial_id is not its file name; a row of an older bench-core; a trial
#: already read from another file.
DAMAGE_KINDS = ("unreadable", "foreign", "rows", "wrong_id", "old_schema", "duplicate")

#: Exceptions pyarrow raises for a file that is not a sound Parquet file.
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError)


class DamagedFile(Exception):
    """A results file that cannot be used as it is: ``kind`` (one of DAMAGE_KINDS) says how, the
    message says why in a few words (without the file name: ``path`` holds it)."""

    def __init__(self, path: str | Path, kind: str, why: str):
        super().__init__(why)
        self.path, self.kind, self.why = Path(path), kind, why


def _writer_tag() -> str:
    """<host>-<pid> of this process, as temporary file names carry it."""
    return f"{socket.gethostname().replace('.', '_').replace('-', '_')}-{os.getpid()}"


#: The process's umask, read once at import (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def temp_file(directory: str | Path, prefix: str) -> tuple[int, str]:
    """mkstemp in `directory`, with the permissions an ordinary new file gets (0666 less the
    umask) instead of mkstemp's 0600: results directories are shared (other users, a cluster)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_UMASK)
    return fd, tmp


def write_atomically(out: str | Path, write: Callable[[str], object], durable: bool = False) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file beside `out` (named with this writer's
    tag, with the permissions a new file gets), then rename it to `out`; nothing is left behind
    when `write` fails. `durable`: fsync the file before the rename and the folder after it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(out.parent, f".{out.name}.{_writer_tag()}.")
    os.close(fd)
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(out.parent)
    return out


def _atomic_write(table: pa.Table, path: Path, check: Callable[[Path], object]) -> None:
    """Write `table` to a temporary file beside `path`, read it back with `check` (which raises
    DamagedFile when it is not what was meant), then rename it to `path`, durably."""
    def write(tmp: str) -> None:
        pq.write_table(table, tmp, write_page_checksum=True)
        check(Path(tmp))

    write_atomically(path, write, durable=True)


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


def stale_temps(out: str | Path) -> list[Path]:
    """The temporary files that dead writers on this host left in `out` (trials/ and curves/).

    Temporary files of live writers, and of writers on other hosts, are not listed.
    """
    host = _writer_tag().rsplit("-", 1)[0]
    found = []
    for sub in ("trials", "curves"):
        d = Path(out) / sub
        if not d.is_dir():
            continue
        for tmp in sorted(d.glob(".*.tmp")):
            parts = tmp.name.split(".")  # "", stem, "parquet", "<host>-<pid>", random, "tmp"
            if len(parts) < 6:
                continue
            tag_host, _, pid = parts[-3].rpartition("-")
            if tag_host == host and pid.isdigit() and not pid_alive(int(pid)):
                found.append(tmp)
    return found


def clean_stale_temps(out: str | Path) -> list[Path]:
    """Remove the temporary files that dead writers on this host left in `out`; return them."""
    removed = stale_temps(out)
    for tmp in removed:
        tmp.unlink(missing_ok=True)
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


def curve_path(out: str | Path, trial_id: str) -> Path:
    """Where a trial's curve lives."""
    return Path(out) / "curves" / f"{trial_id}.parquet"


def write_trial(out: str | Path, row: dict, curve: list[tuple]) -> None:
    """Write a finished trial: its curve (rows of step, time_s, metric, value), then its row.

    Each file is read back before it is renamed into place; DamagedFile if it does not hold what
    was written (nothing is renamed then).
    """
    tid = row["trial_id"]
    ensure_root_note(out)
    curve_table = pa.table({
        "trial_id": [tid] * len(curve), "step": [c[0] for c in curve], "time_s": [c[1] for c in curve],
        "metric": [c[2] for c in curve], "value": [c[3] for c in curve]}, schema=CURVE_SCHEMA)
    _atomic_write(curve_table, curve_path(out, tid),
                  check=lambda tmp: _check_written_curve(tmp, len(curve)))
    full = {name: row.get(name) for name in TRIAL_SCHEMA.names}
    for key in ("metrics", "counters"):
        full[key] = list((full[key] or {}).items())
    _atomic_write(pa.Table.from_pylist([full], schema=TRIAL_SCHEMA), trial_path(out, tid),
                  check=lambda tmp: read_trial_file(tmp, trial_id=tid))


def _check_written_curve(path: Path, n_points: int) -> None:
    """A curve file just written: its schema, and its number of rows from the footer."""
    pf = _open(path)
    _curve_columns(path, pf.schema_arrow)
    if pf.metadata.num_rows != n_points:
        raise DamagedFile(path, "rows", f"holds {pf.metadata.num_rows} curve points, "
                                        f"{n_points} were written")


# --------------------------------------------------------------------------- reading one file
class Vanished(DamagedFile):
    """A file that was listed but no longer exists when opened (a compaction merged it meanwhile,
    or it was removed): kind "unreadable" for callers that read one file; directory readers list
    the directory again."""


def _open(path: Path) -> pq.ParquetFile:
    """A Parquet file, opened with its page checksums verified; DamagedFile when unreadable
    (Vanished when it does not exist)."""
    try:
        return pq.ParquetFile(path, page_checksum_verification=True)
    except FileNotFoundError:
        raise Vanished(path, "unreadable", "not a readable Parquet file (no such file)") from None
    except _READ_ERRORS as exc:
        if not os.path.exists(path):
            raise Vanished(path, "unreadable", "not a readable Parquet file (no such file)") from None
        raise DamagedFile(path, "unreadable", _unreadable(exc)) from None


def _unreadable(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"not a readable Parquet file ({text})"


def _read(path: Path, pf: pq.ParquetFile) -> pa.Table:
    """Every column of a small (per-trial) file, in this thread: its columns read by pyarrow's
    thread pool would cost twice the CPU time (the files are read by READ_THREADS at once)."""
    try:
        return pf.read(use_threads=False)
    except _READ_ERRORS as exc:
        raise DamagedFile(path, "unreadable", _unreadable(exc)) from None


def _trial_columns(path: Path, schema: pa.Schema) -> None:
    """DamagedFile unless `schema` is TRIAL_SCHEMA (old_schema for a row of an older bench-core)."""
    if schema.equals(TRIAL_SCHEMA):
        return
    names = set(schema.names)
    if names == set(CURVE_SCHEMA.names):
        raise DamagedFile(path, "foreign", "a curve file, not a trial row (curves belong in curves/)")
    if {"trial_id", "run_id", "status"} <= names and not {"schema_version", "key_id"} <= names:
        raise DamagedFile(path, "old_schema",
                          f"written by an older bench-core (before schema version {SCHEMA_VERSION}, "
                          "without key and code identity); run its suite again (bench run reruns it) "
                          "or move the file away")
    missing = [n for n in TRIAL_SCHEMA.names if n not in names]
    extra = [n for n in schema.names if n not in TRIAL_SCHEMA.names]
    if missing or extra:
        what = ", ".join(filter(None, [f"missing {_few(missing)}" if missing else "",
                                       f"extra {_few(extra)}" if extra else ""]))
        raise DamagedFile(path, "foreign", f"not a bench-core trial file (columns: {what})")
    wrong = [f.name for f in TRIAL_SCHEMA if not schema.field(f.name).type.equals(f.type)]
    raise DamagedFile(path, "foreign", f"not a bench-core trial file (column types differ: {_few(wrong)})")


def _curve_columns(path: Path, schema: pa.Schema) -> None:
    """DamagedFile unless `schema` is CURVE_SCHEMA."""
    if schema.equals(CURVE_SCHEMA):
        return
    if "schema_version" in schema.names or "key_id" in schema.names:
        raise DamagedFile(path, "foreign", "a trial row, not a curve (trial rows belong in trials/)")
    raise DamagedFile(path, "foreign", f"not a bench-core curve file (columns: {_few(schema.names)})")


def _few(names: list) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _with_identity(columns) -> list[str] | None:
    """`columns` (None: all) with the two a reader checks (schema_version, trial_id) added."""
    return None if columns is None else list(dict.fromkeys(["schema_version", "trial_id", *columns]))


def read_trial_file(path: str | Path, trial_id: str | None = None, columns=None) -> pa.Table:
    """The one row of a trial file, checked: readable (page checksums too), of TRIAL_SCHEMA and
    this schema version, one row, whose trial_id is `trial_id` (default: the file's stem).
    ``columns``: read only these (with schema_version and trial_id, which are checked); the
    page checksums are then verified for the columns read.

    Raises DamagedFile (kind old_schema for a row of an older bench-core).
    """
    path = Path(path)
    pf = _open(path)
    _trial_columns(path, pf.schema_arrow)
    if pf.metadata.num_rows != 1:
        raise DamagedFile(path, "rows", f"holds {pf.metadata.num_rows} rows (a trial file holds one)")
    try:
        table = pf.read(columns=_with_identity(columns), use_threads=False)  # as _read
    except _READ_ERRORS as exc:
        raise DamagedFile(path, "unreadable", _unreadable(exc)) from None
    version, tid = table.column("schema_version")[0].as_py(), table.column("trial_id")[0].as_py()
    if version != SCHEMA_VERSION:
        kind = "old_schema" if version is not None and version < SCHEMA_VERSION else "foreign"
        raise DamagedFile(path, kind, f"schema version {version} (this bench-core reads {SCHEMA_VERSION})")
    expected = path.stem if trial_id is None else trial_id
    if tid != expected:
        raise DamagedFile(path, "wrong_id", f"holds the row of trial {tid}, but its name says {expected} "
                                            "(a copied or renamed file)")
    return table if columns is None else table.select(list(columns))


def read_curve_file(path: str | Path, trial_id: str | None = None) -> pa.Table:
    """A curve file, checked: readable (page checksums too), of CURVE_SCHEMA, every point of trial
    `trial_id` (default: the file's stem). Raises DamagedFile."""
    path = Path(path)
    pf = _open(path)
    _curve_columns(path, pf.schema_arrow)
    table = _read(path, pf)
    expected = path.stem if trial_id is None else trial_id
    others = sorted(map(str, set(table.column("trial_id").unique().to_pylist()) - {expected}))
    if others:
        raise DamagedFile(path, "wrong_id", f"holds points of trial(s) {_few(others)}, "
                                            f"not only of {expected}")
    return table


# --------------------------------------------------------------------------- compacted files
_COMPACTED = re.compile(r"compacted-(\d+)\.parquet")
#: DIR/.compaction: the generation of the current compacted files (written by bench_core.compaction).
COMPACTION_FILE = ".compaction"
#: DIR/README.txt: not Parquet, so that reading the results root as one dataset fails loudly
#: (pandas and pyarrow name this file) instead of mixing trial rows and curve points.
ROOT_NOTE = "README.txt"
ROOT_NOTE_TEXT = """This is a bench-core results directory, not one Parquet dataset: read its parts.
  DIR/trials   one row per trial       pandas.read_parquet("DIR/trials")
  DIR/curves   curve points (long)     pandas.read_parquet("DIR/curves")
A trial is written as DIR/trials/<trial_id>.parquet and its curve as DIR/curves/<trial_id>.parquet;
`bench compact DIR` merges them into DIR/trials/compacted-<gen>.parquet and
DIR/curves/compacted-<gen>.parquet. During a compaction, or after one was interrupted, a plain
reader of DIR/trials may see a trial twice: bench_core.store.read_trials reads each trial once.
"""
#: How often a directory reader lists a directory again when a compaction moved files meanwhile.
_RETRIES = 20
#: Per-trial files read by this many threads at once (pyarrow releases the GIL while it reads;
#: more threads than cores only contend for the GIL). `python benchmarks/large_results.py
#: --file-costs DIR` times 1 and 2 threads.
READ_THREADS = max(1, min(4, os.cpu_count() or 1))


def ensure_root_note(out: str | Path) -> None:
    """Write DIR/README.txt (ROOT_NOTE_TEXT) unless it exists."""
    path = Path(out) / ROOT_NOTE
    if path.exists():
        return
    write_atomically(path, lambda tmp: Path(tmp).write_text(ROOT_NOTE_TEXT))


def compacted_generation(name: str) -> int | None:
    """The generation of a compacted file's name (``compacted-000003.parquet`` -> 3), else None."""
    m = _COMPACTED.fullmatch(name)
    return int(m.group(1)) if m else None


def compacted_path(out: str | Path, sub: str, generation: int) -> Path:
    """DIR/<sub>/compacted-<generation>.parquet (sub: "trials" or "curves")."""
    return Path(out) / sub / f"compacted-{generation:06d}.parquet"


def current_generation(out: str | Path) -> int:
    """The generation of DIR's current compacted files, as DIR/.compaction says; 0 when DIR was
    never compacted. A compacted file of another generation is a leftover of an interrupted
    compaction: its trials are in per-trial files or in the current generation, and readers skip it."""
    path = Path(out) / COMPACTION_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0
    if not text.strip().isdigit():
        raise BenchInputError(f"{path}: expected the generation number of the compacted files, "
                              f"found {text.strip()[:40]!r}; `bench compact {out}` rewrites it")
    return int(text.strip())


def set_current_generation(out: str | Path, generation: int) -> None:
    """Write DIR/.compaction atomically (temporary file, fsync, rename, fsync of DIR)."""
    write_atomically(Path(out) / COMPACTION_FILE, lambda tmp: Path(tmp).write_text(f"{generation}\n"),
                     durable=True)


def _own_files(folder: Path) -> list[Path]:
    """The per-trial *.parquet files of `folder`, sorted by name (compacted files left out)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if compacted_generation(p.name) is None)


def per_trial_files(out: str | Path) -> int:
    """How many per-trial files `out`/trials holds (trials not yet merged by `bench compact`)."""
    return len(_own_files(Path(out) / "trials"))


def _read_compacted_rows(path: Path, pf: pq.ParquetFile, columns: list[str] | None,
                         trial_ids: set | None) -> pa.Table:
    """The rows of an open compacted file (only `columns`, which include trial_id, when given);
    with `trial_ids`, only their rows, read one row group at a time (page checksums verified for
    what is read): a row group whose trial_id statistics leave out every id is not read, and no
    more than one row group's rows are held unfiltered at once."""
    try:
        if trial_ids is None:
            return pf.read(columns=columns)
        ids = sorted(trial_ids)
        wanted = pa.array(ids, pa.string())
        leaf = next(j for j in range(pf.metadata.num_columns) if pf.metadata.schema.column(j).path == "trial_id")
        parts = []
        for i in range(pf.metadata.num_row_groups):
            stats = pf.metadata.row_group(i).column(leaf).statistics
            if stats is not None and stats.has_min_max:
                first = bisect.bisect_left(ids, stats.min)
                if first == len(ids) or ids[first] > stats.max:
                    continue
            part = pf.read_row_group(i, columns=columns)
            parts.append(part.filter(pc.is_in(part.column("trial_id"), value_set=wanted)))
        empty = pf.schema_arrow.empty_table()
        return pa.concat_tables(parts) if parts else (empty if columns is None else empty.select(columns))
    except _READ_ERRORS as exc:
        raise DamagedFile(path, "unreadable", _unreadable(exc)) from None


def read_compacted_trials(path: str | Path, columns: list[str] | None = None,
                          trial_ids: set | None = None) -> pa.Table:
    """The rows of a compacted trial file (only those of `trial_ids` when given), checked:
    readable (page checksums too), of TRIAL_SCHEMA and this schema version, each trial once.
    Raises DamagedFile (kind old_schema for rows of an older bench-core; Vanished when the file
    is gone)."""
    path = Path(path)
    pf = _open(path)
    _trial_columns(path, pf.schema_arrow)
    table = _read_compacted_rows(path, pf, _with_identity(columns), trial_ids)
    others = set(table.column("schema_version").unique().to_pylist()) - {SCHEMA_VERSION}
    if others:
        version = min((v for v in others if v is not None), default=None)
        kind = "old_schema" if version is not None and version < SCHEMA_VERSION else "foreign"
        raise DamagedFile(path, kind, f"schema version {version} (this bench-core reads {SCHEMA_VERSION})")
    if pc.count_distinct(table.column("trial_id")).as_py() != table.num_rows:
        raise DamagedFile(path, "rows", "holds a trial twice (a compacted file holds each trial once)")
    return table if columns is None else table.select(list(columns))


def read_compacted_curves(path: str | Path, trial_ids: set | None = None) -> pa.Table:
    """The points of a compacted curve file (only those of `trial_ids` when given), checked:
    readable (page checksums too), of CURVE_SCHEMA. Raises DamagedFile (Vanished when the file
    is gone)."""
    path = Path(path)
    pf = _open(path)
    _curve_columns(path, pf.schema_arrow)
    return _read_compacted_rows(path, pf, None, trial_ids)


_INDEX: dict = {}


def _compacted_index(path: Path) -> tuple[pa.Table, dict] | None:
    """(trial_id, key_id, seed, status, run_id of every row, trial_id -> row) of a compacted trial
    file, cached while the file is unchanged; None when it is absent or damaged."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _INDEX:
        try:
            # every page read (checksums verified): a file readers skip must not count as complete
            table = read_compacted_trials(path).select(["trial_id", "key_id", "seed", "status", "run_id"])
        except DamagedFile:
            return None
        if len(_INDEX) > 16:
            _INDEX.clear()
        _INDEX[key] = (table, {tid: i for i, tid in enumerate(table.column("trial_id").to_pylist())})
    return _INDEX[key]


def compacted_trial_ids(out: str | Path) -> set[str]:
    """Ids of the trials in DIR's current compacted trial file (none when DIR was never compacted
    or the file is damaged)."""
    for _ in range(_RETRIES):
        gen = current_generation(out)
        if not gen:
            return set()
        index = _compacted_index(compacted_path(out, "trials", gen))
        if index is not None or current_generation(out) == gen:
            return set(index[1]) if index else set()
    return set()


# --------------------------------------------------------------------------- reading directories
def warn_skipped(path: Path, why: str) -> None:
    """The default ``on_skip`` of the readers: one line on stderr naming the file and why."""
    print(f"warning: {path}: {why} (skipped)", file=sys.stderr)


class _Moved(Exception):
    """Files of a directory moved while it was read (a compaction): read it again."""


def _read_many(read_file, files: list[Path]) -> list:
    """read_file(f) for each file (a table, or the DamagedFile it raised), by a few threads."""
    def one(f):
        try:
            return read_file(f)
        except DamagedFile as damage:
            return damage
    if len(files) < 64 or READ_THREADS == 1:
        return [one(f) for f in files]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return list(pool.map(one, files))


def _read_one_dir(d: Path, sub: str, read_file, read_compacted, trial_ids: set | None) -> tuple[list, list, list]:
    """(own, compacted, damage) of one directory: own: [(file, table)] of its sound per-trial
    files; compacted: [(file, table)] of the current compacted file's rows that have no per-trial
    file; damage: DamagedFile of each file that cannot be used. Raises _Moved when a compaction
    moved files meanwhile."""
    gen = current_generation(d)
    files = [f for f in _own_files(d / sub) if trial_ids is None or f.stem in trial_ids]
    own, damage = [], []
    for f, result in zip(files, _read_many(read_file, files)):
        if isinstance(result, Vanished):
            raise _Moved
        if isinstance(result, DamagedFile):
            if result.kind == "old_schema":
                raise BenchInputError(f"{f}: {result.why}") from None
            damage.append(result)
        else:
            own.append((f, result))
    compacted = []
    if gen:
        path = compacted_path(d, sub, gen)
        try:
            table = read_compacted(path, trial_ids=trial_ids)
        except Vanished:
            if current_generation(d) != gen:
                raise _Moved from None
            damage.append(DamagedFile(path, "unreadable", f"missing (named by {COMPACTION_FILE})"))
            table = None
        except DamagedFile as bad:
            if bad.kind == "old_schema":
                raise BenchInputError(f"{path}: {bad.why}") from None
            damage.append(bad)
            table = None
        if table is not None:
            listed = pa.array([f.stem for f in files], pa.string())
            keep = pc.invert(pc.is_in(table.column("trial_id"), value_set=listed))
            if trial_ids is not None:
                keep = pc.and_(keep, pc.is_in(table.column("trial_id"), value_set=pa.array(sorted(trial_ids),
                                                                                            pa.string())))
            compacted.append((path, table.filter(keep)))
    if current_generation(d) != gen:
        raise _Moved
    return own, compacted, damage


def _sorted_by_trial(tables: list[pa.Table], mixed: bool) -> pa.Table:
    """The tables as one, ordered by trial_id (stable: a trial's rows keep their order) when
    `mixed` (per-trial and compacted rows together); each part is in trial order already."""
    table = pa.concat_tables(tables)
    if mixed and table.num_rows:
        table = table.take(pc.sort_indices(table, sort_keys=[("trial_id", "ascending")]))
    return table


def _read_dirs(dirs, sub: str, read_file, read_compacted, on_skip,
               trial_ids: set | None = None) -> tuple[list, list]:
    """(tables, skipped) of `dirs`: each trial once, from its own file ``DIR/<sub>/<id>.parquet``
    when it has one, else from the current compacted file (only those in `trial_ids` when given);
    one table per directory, in trial id order.

    A damaged file, or a trial already read from an earlier directory, is skipped: ``on_skip(path,
    why)`` hears it (default warn_skipped, then a count on stderr), and `skipped` lists (file, why).
    A row of an older bench-core raises BenchInputError naming its file. A directory that a
    compaction changes while it is read is read again.
    """
    tables, skipped, seen = [], [], {}

    def skip(damage: DamagedFile) -> None:
        skipped.append((str(damage.path), damage.why))
        (on_skip or warn_skipped)(damage.path, damage.why)

    for d in map(Path, dirs):
        for _ in range(_RETRIES):
            try:
                own, compacted, damage = _read_one_dir(d, sub, read_file, read_compacted, trial_ids)
                break
            except _Moved:
                continue
        else:
            raise BenchInputError(f"{d}: its files kept moving while being read (a compaction running "
                                  "in a loop?); read it again")
        for bad in damage:
            skip(bad)
        parts = []
        for f, table in own:
            if f.stem in seen:
                skip(DamagedFile(f, "duplicate", f"trial {f.stem} already read from {seen[f.stem]} "
                                                 "(counted once)"))
                continue
            seen[f.stem] = f
            parts.append(table)
        n_own = len(parts)
        for path, table in compacted:
            ids = table.column("trial_id").to_pylist()
            dup = [tid for tid in dict.fromkeys(ids) if tid in seen]
            if dup:
                skip(DamagedFile(path, "duplicate", f"{len(dup)} trial(s) already read from {seen[dup[0]]}"
                                                    f"{' and others' if len(dup) > 1 else ''} (counted once)"))
                table = table.filter(pc.invert(pc.is_in(table.column("trial_id"),
                                                        value_set=pa.array(dup, pa.string()))))
                ids = table.column("trial_id").to_pylist()
            for tid in ids:
                seen.setdefault(tid, path)
            parts.append(table)
        if parts:
            tables.append(_sorted_by_trial(parts, mixed=n_own > 0 and len(parts) > n_own))
    if skipped and on_skip is None:
        print(f"warning: {len(skipped)} damaged file(s) skipped; `bench verify {' '.join(map(str, dirs))}` "
              "lists the damage, `bench run` reruns damaged trials", file=sys.stderr)
    return tables, skipped


def completed_trial_ids(out: str | Path) -> set[str]:
    """Ids of the trials with a file in `out` (their own file, by file name: a damaged file
    counts too; or a row in the current compacted file)."""
    return {p.stem for p in _own_files(Path(out) / "trials")} | compacted_trial_ids(out)


def read_trials(*dirs: str | Path, trial_ids: set | None = None,
                on_skip: Callable[[Path, str], None] | None = None, columns=None):
    """All trial rows of one or more results directories as a pandas DataFrame (only those
    in `trial_ids` when given), ordered by directory, then trial id.

    The ``metrics`` and ``counters`` maps become plain dicts; the JSON columns stay JSON text
    (see ``json.loads``). A trial's row comes from its own file when it has one, else from the
    directory's compacted file. A file that cannot be used (see DamagedFile) is skipped and
    reported: ``on_skip(path, why)`` is called for it, by default printing one line on stderr
    (then a count). A trial read from two directories counts once; the second file is reported
    as a duplicate. ``df.attrs["skipped"]`` lists (file, why) of every skipped file. A row
    written by an older bench-core, without the trial model's key and code identity, is refused
    with one line naming its file (BenchInputError). ``columns``: only these columns (faster:
    the analysis commands read what they use; each file's identity is still checked, and its
    page checksums for the columns read).
    """
    import pandas as pd

    if columns is not None:
        unknown = [c for c in columns if c not in TRIAL_SCHEMA.names]
        if unknown:
            raise ValueError(f"read_trials: no trial column(s) {', '.join(unknown)}")
        columns = [c for c in TRIAL_SCHEMA.names if c in set(columns) | {"trial_id"}]
    tables, skipped = _read_dirs(dirs, "trials", functools.partial(read_trial_file, columns=columns),
                                 functools.partial(read_compacted_trials, columns=columns), on_skip, trial_ids)
    if tables:
        df = pa.concat_tables(tables).combine_chunks().to_pandas(maps_as_pydicts="strict")
    else:
        df = pd.DataFrame(columns=TRIAL_SCHEMA.names if columns is None else columns)
    df.attrs["skipped"] = skipped
    return df


def completed_keys(out: str | Path) -> dict:
    """(key_id, seed) -> trial_id of the trials written to `out` by any code (for --reuse-stale);
    files that cannot be used (damaged, or of an older bench-core) are left out."""
    found = {}
    index = None
    gen = current_generation(out)
    if gen:
        index = _compacted_index(compacted_path(out, "trials", gen))
    if index is not None:
        cols = index[0].select(["key_id", "seed", "trial_id"]).to_pydict()
        found.update({(k, s): t for k, s, t in zip(cols["key_id"], cols["seed"], cols["trial_id"])})
    for f in _own_files(Path(out) / "trials"):
        try:
            row = read_trial_file(f).select(["key_id", "seed"]).to_pylist()[0]
        except DamagedFile:
            continue
        found[(row["key_id"], row["seed"])] = f.stem
    return found


def read_curves(*dirs: str | Path, trial_ids: set | None = None,
                on_skip: Callable[[Path, str], None] | None = None):
    """All curve points of one or more results directories as a pandas DataFrame (only those of
    the trials in `trial_ids` when given), ordered by directory, then trial id (a trial's points
    in the order written).

    A trial's points come from its own curve file when it has one, else from the directory's
    compacted curve file. A file that cannot be used is skipped and reported as ``read_trials``
    does (``on_skip``, ``df.attrs["skipped"]``); a trial's curve found in two directories is
    read once.
    """
    import pandas as pd

    tables, skipped = _read_dirs(dirs, "curves", read_curve_file, read_compacted_curves, on_skip, trial_ids)
    df = pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame(columns=CURVE_SCHEMA.names)
    df.attrs["skipped"] = skipped
    return df


def read_trial_status(out: str | Path, trial_id: str) -> tuple[str, str] | None:
    """(status, run_id) of a trial written to `out`, or None when it has no usable row (absent
    or damaged: the trial is then not complete, and its new files replace the damaged ones).
    Its own file counts when it has one, else its row in the current compacted file."""
    path = trial_path(out, trial_id)
    if path.is_file():
        try:
            row = read_trial_file(path).select(["status", "run_id"]).to_pylist()[0]
        except Vanished:  # merged by a compaction meanwhile: its row is in the compacted file
            return read_trial_status(out, trial_id)
        except DamagedFile:
            return None
        return row["status"], row["run_id"]
    for _ in range(_RETRIES):
        gen = current_generation(out)
        index = _compacted_index(compacted_path(out, "trials", gen)) if gen else None
        if index is not None or current_generation(out) == gen:
            break
    if index is None or trial_id not in index[1]:
        return None
    i = index[1][trial_id]
    return index[0].column("status")[i].as_py(), index[0].column("run_id")[i].as_py()


# --------------------------------------------------------------------------- damaged trials
def trial_damage(out: str | Path, trial_id: str) -> str | None:
    """Why the complete-looking trial `trial_id` of `out` cannot be used, naming the file: its
    trial file is damaged (read_trial_file), or its curve file is missing or has no sound footer
    of CURVE_SCHEMA; None when its files are sound. A trial that lives in the current compacted
    file (and has no own trial file) is sound: compaction merges only sound trials with their
    curves, and checks the files it writes."""
    path = trial_path(out, trial_id)
    if not path.exists() and trial_id in compacted_trial_ids(out):
        return None
    try:
        read_trial_file(path)
    except DamagedFile as damage:
        return f"{path}: {damage.why}"
    curve = curve_path(out, trial_id)
    if not curve.is_file():
        return f"{curve}: missing (the curve of {path.name})"
    try:  # the footer only: curves are larger, and read_curves checks their pages
        _curve_columns(curve, _open(curve).schema_arrow)
    except DamagedFile as damage:
        return f"{curve}: {damage.why}"
    return None


def quarantine_trial(out: str | Path, trial_id: str) -> tuple[str, list[Path]] | None:
    """Move the files of trial `trial_id` of `out` aside into ``DIR/quarantine/`` when they are
    damaged (see trial_damage), so that the trial is no longer complete and runs again.

    Runs under the trial's claim and checks the damage again once it holds it, so a trial that
    another run is rewriting, or has just rewritten, is never moved. Returns (why, the new paths)
    when files were moved; None when the trial is sound, has no file, or another live process
    holds its claim (that process runs or checks it).
    """
    if not trial_path(out, trial_id).is_file():
        return None
    claim = TrialClaim.acquire(out, trial_id)
    if claim is None:
        return None
    with claim:
        why = trial_damage(out, trial_id) if trial_path(out, trial_id).is_file() else None
        if why is None:
            return None
        moved = [_move_aside(out, p) for p in (trial_path(out, trial_id), curve_path(out, trial_id))
                 if p.is_file()]
    return why, moved


def _move_aside(out: str | Path, path: Path) -> Path:
    """Rename `path` (in DIR/trials or DIR/curves) to DIR/quarantine/<trials|curves>/, keeping its
    name, with .1, .2, ... before the extension if that name is taken."""
    dest_dir = Path(out) / "quarantine" / path.parent.name
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest, n = dest_dir / path.name, 0
    while dest.exists():
        n += 1
        dest = dest_dir / f"{path.stem}.{n}{path.suffix}"
    os.rename(path, dest)
    _fsync_dir(path.parent)
    return dest
