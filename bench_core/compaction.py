"""Compaction of a results directory (`bench compact DIR`): per-trial files merged into two large ones.

``bench run`` writes each trial as its own pair of files (``trials/<id>.parquet``,
``curves/<id>.parquet``), which keeps a crash from costing more than the trial that was running,
but a study of 100,000 trials is then 200,000 small files, and reading them dominates every
analysis. ``compact(DIR)`` merges the sound per-trial files and the current compacted files into
one new generation ``trials/compacted-<gen>.parquet`` and ``curves/compacted-<gen>.parquet``
(rows in trial id order; row groups of TRIAL_ROW_GROUP rows and CURVE_ROW_GROUP points, for
scans), in this order:

1. read the per-trial files that no live run holds (a held trial is being written or rewritten:
   it stays as it is), and the current compacted files;
2. write the new curve file, then the new trial file, each under a temporary name, read back
   with its page checksums and its row count, then renamed into place;
3. write ``DIR/.compaction`` (the new generation): from here on readers use the new files;
4. remove the compacted files of other generations (trials first);
5. remove each merged per-trial file, under the trial's claim and only if it is still the file
   that was read (a run that rewrote it meanwhile keeps its new file, which readers prefer).

Readers (bench_core.store) take a trial from its own file when it has one, else from the current
generation, and read a directory again when a compaction moved files while they read it, so a
kill at any point loses no trial and shows none twice; the next compaction removes what an
interrupted one left. One compaction runs at a time per directory (an ``flock`` on
``DIR/.compact.lock``); runs writing into the directory meanwhile are not disturbed.
"""
from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import store
from .errors import BenchInputError
from .store import CURVE_SCHEMA, TRIAL_SCHEMA, DamagedFile

#: Rows per row group of a compacted trial file and points per row group of a compacted curve file.
TRIAL_ROW_GROUP = 65_536
CURVE_ROW_GROUP = 1 << 20
#: Per-trial files read and merged at a time (bounds memory: small tables cost more than their rows).
CHUNK = 2048

#: Called with the name of each step as compaction passes it ("read", "curves_written",
#: "trials_written", "generation_set", "old_removed", then "own_removed" after each merged trial's
#: files are removed): tests inject a crash there.
_STEP_HOOK = None


class CompactionBusy(Exception):
    """Another compaction holds the directory."""


@dataclass
class CompactionReport:
    """What ``compact`` did to one results directory."""

    out: Path
    generation: int = 0
    #: trials whose per-trial files were merged into the new generation
    merged: int = 0
    #: trials in the new compacted trial file, and curve points in the new compacted curve file
    trials: int = 0
    points: int = 0
    #: per-trial trial files left in place: held by a live run, damaged, without a sound curve,
    #: or rewritten while compacting
    left: int = 0
    #: files removed: per-trial files merged, compacted files of other generations, leftover curves
    removed: int = 0
    #: (file, why) of compacted files that were damaged and moved into DIR/quarantine/
    quarantined: list = field(default_factory=list)
    seconds: float = 0.0


def _step(name: str) -> None:
    if _STEP_HOOK is not None:
        _STEP_HOOK(name)


def _lock(out: Path) -> int:
    fd = os.open(out / ".compact.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise CompactionBusy(f"{out}: another `bench compact` is compacting this directory") from None
    return fd


def _identity(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def compact(out: str | Path) -> CompactionReport:
    """Merge the per-trial files of results directory `out` into a new compacted generation
    (see the module docstring); safe beside runs writing into `out`, and against a kill at any
    point. Raises CompactionBusy when another compaction holds `out`, BenchInputError when `out`
    is not a results directory."""
    t0 = time.perf_counter()
    out = Path(out)
    if not (out / "trials").is_dir():
        raise BenchInputError(f"{out}: not a results directory (no trials/ folder)")
    (out / "curves").mkdir(exist_ok=True)
    fd = _lock(out)
    try:
        report = _compact(out)
    finally:
        os.close(fd)
    report.seconds = time.perf_counter() - t0
    return report


def _compact(out: Path) -> CompactionReport:
    report = CompactionReport(out)
    store.clean_stale_temps(out)
    store.ensure_root_note(out)
    old_gen = store.current_generation(out)
    generations = {g for sub in ("trials", "curves") for p in (out / sub).glob("compacted-*.parquet")
                   if (g := store.compacted_generation(p.name)) is not None}
    new_gen = max(generations | {old_gen}) + 1
    old_trials, old_curves = _old_generation(out, old_gen, report)

    # 1. the per-trial trial files that no live run holds, read and checked
    own_files = store._own_files(out / "trials")
    own_stems = {p.stem for p in own_files}
    candidates, rows, idents = [], [], {}
    for i in range(0, len(own_files), CHUNK):
        chunk = [p for p in own_files[i:i + CHUNK] if not store.claim_held(out, p.stem)]
        before = {p: (_identity(p), _identity(store.curve_path(out, p.stem))) for p in chunk}
        tables = []
        for p, result in zip(chunk, store._read_many(store.read_trial_file, chunk)):
            if isinstance(result, DamagedFile) or before[p][1] is None:
                continue  # damaged, or no curve: left for bench verify / bench run
            tables.append(result)
            candidates.append(p.stem)
            idents[p.stem] = before[p]
        if tables:
            rows.append(pa.concat_tables(tables).combine_chunks())
    own_rows = pa.concat_tables(rows) if rows else TRIAL_SCHEMA.empty_table()
    _step("read")

    # 2a. the curves: old generation's points (those not replaced) merged in trial order with the
    # merged trials' own curves; a trial whose own curve cannot be read is not merged
    merged = set(candidates)
    curve_tmp, n_points = _write_curves(out, old_curves, candidates, merged)
    try:
        _check(curve_tmp, CURVE_SCHEMA, n_points)
        os.replace(curve_tmp, store.compacted_path(out, "curves", new_gen))
    except BaseException:
        Path(curve_tmp).unlink(missing_ok=True)
        raise
    store._fsync_dir(out / "curves")
    _step("curves_written")

    # 2b. the trials: merged own rows, and the old generation's rows of trials not merged
    keep_own = pc.is_in(own_rows.column("trial_id"), value_set=pa.array(sorted(merged), pa.string()))
    parts = [own_rows.filter(keep_own)]
    if old_trials is not None:
        replaced = pc.is_in(old_trials.column("trial_id"), value_set=pa.array(sorted(merged), pa.string()))
        parts.append(old_trials.filter(pc.invert(replaced)))
    trials = pa.concat_tables(parts).combine_chunks()
    trials = trials.take(pc.sort_indices(trials, sort_keys=[("trial_id", "ascending")]))
    trial_target = store.compacted_path(out, "trials", new_gen)
    tmp = _temp(trial_target)
    try:
        pq.write_table(trials, tmp, row_group_size=TRIAL_ROW_GROUP, write_page_checksum=True)
        _fsync(tmp)
        _check(tmp, TRIAL_SCHEMA, trials.num_rows)
        store.read_compacted_trials(tmp, ["trial_id"])
        os.replace(tmp, trial_target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    store._fsync_dir(out / "trials")
    _step("trials_written")

    # 3. the new generation is current
    store.set_current_generation(out, new_gen)
    report.generation, report.trials, report.points = new_gen, trials.num_rows, n_points
    _step("generation_set")

    # 4. compacted files of other generations (trials first: a trial never outlives its curve)
    for sub in ("trials", "curves"):
        for p in sorted((out / sub).glob("compacted-*.parquet")):
            if store.compacted_generation(p.name) not in (None, new_gen):
                p.unlink(missing_ok=True)
                report.removed += 1
    _step("old_removed")

    # 5. the merged per-trial files, each under its trial's claim, if still the file that was read
    compacted_ids = set(trials.column("trial_id").to_pylist())
    for tid in sorted(merged):
        report.removed += _remove_own(out, tid, idents[tid])
        _step("own_removed")
    # leftover curves of compacted trials without an own trial file (a kill between the two
    # removals of step 5, or a rerun killed after its curve): the compacted curve is the trial's
    for p in store._own_files(out / "curves"):
        if p.stem in compacted_ids and p.stem not in merged and p.stem not in own_stems:
            report.removed += _remove_leftover_curve(out, p.stem)
    store._fsync_dir(out / "trials")
    store._fsync_dir(out / "curves")
    report.merged = len(merged)
    report.left = len(store._own_files(out / "trials"))
    return report


def _old_generation(out: Path, gen: int, report: CompactionReport) -> tuple[pa.Table | None, Path | None]:
    """(rows, curve file) of the current generation; damaged files are moved into DIR/quarantine/
    (their trials are then not complete, and `bench run` runs them again)."""
    if not gen:
        return None, None
    trial_file, curve_file = (store.compacted_path(out, sub, gen) for sub in ("trials", "curves"))
    try:
        rows = store.read_compacted_trials(trial_file)
        _check(curve_file, CURVE_SCHEMA, None)
        return rows, curve_file
    except DamagedFile as damage:
        if damage.kind == "old_schema":
            raise BenchInputError(f"{damage.path}: {damage.why}") from None
        for p in (trial_file, curve_file):
            if p.exists():
                report.quarantined.append((store._move_aside(out, p), damage.why))
        return None, None


def _temp(target: Path) -> str:
    fd, tmp = store.temp_file(target.parent, f".{target.name}.{store._writer_tag()}.")
    os.close(fd)
    return tmp


def _fsync(path: str) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _check(path, schema: pa.Schema, rows: int | None) -> None:
    """Read every page of a file just written (page checksums verified): DamagedFile unless it
    is of `schema` with `rows` rows (any number when None)."""
    pf = store._open(Path(path))
    if not pf.schema_arrow.equals(schema):
        raise DamagedFile(path, "foreign", "not of the schema it was written with")
    total = 0
    try:
        for i in range(pf.num_row_groups):
            total += pf.read_row_group(i).num_rows
    except store._READ_ERRORS as exc:
        raise DamagedFile(path, "unreadable", store._unreadable(exc)) from None
    if total != pf.metadata.num_rows or (rows is not None and total != rows):
        raise DamagedFile(path, "rows", f"holds {total} rows, {rows} were written")


def _write_curves(out: Path, old_curves: Path | None, candidates: list[str], merged: set) -> tuple[str, int]:
    """Write the new compacted curve file under a temporary name: the old generation's points of
    trials not in `merged`, and the own curve of each trial of `candidates` (sorted), all in trial
    id order. A candidate whose curve file cannot be read is dropped from `merged`. Returns (the
    temporary file, the number of points written)."""
    target = store.compacted_path(out, "curves", 0)
    tmp = _temp(target)
    own = iter(candidates)
    pending = next(own, None)
    buffer, buffered, written = [], 0, 0
    try:
        with pq.ParquetWriter(tmp, CURVE_SCHEMA, write_page_checksum=True) as writer:
            def emit(table: pa.Table, flush: bool = False) -> None:
                nonlocal buffered, written
                if table.num_rows:
                    buffer.append(table)
                    buffered += table.num_rows
                if buffer and (buffered >= CURVE_ROW_GROUP or flush):
                    whole = pa.concat_tables(buffer).combine_chunks()
                    writer.write_table(whole, row_group_size=CURVE_ROW_GROUP)
                    written += whole.num_rows
                    buffer.clear()
                    buffered = 0

            def own_upto(last: str | None) -> list[pa.Table]:
                """Own curves of the candidates up to trial id `last` (all when None)."""
                nonlocal pending
                ids = []
                while pending is not None and (last is None or pending <= last):
                    ids.append(pending)
                    pending = next(own, None)
                tables = []
                for i in range(0, len(ids), CHUNK):
                    paths = [store.curve_path(out, tid) for tid in ids[i:i + CHUNK]]
                    for tid, result in zip(ids[i:i + CHUNK], store._read_many(store.read_curve_file, paths)):
                        if isinstance(result, DamagedFile):
                            merged.discard(tid)
                        else:
                            tables.append(result)
                return tables

            if old_curves is not None:
                pf = store._open(old_curves)
                for batch in pf.iter_batches(batch_size=65_536):
                    if not batch.num_rows:
                        continue
                    last = batch.column(0)[batch.num_rows - 1].as_py()
                    mine = own_upto(last)  # before filtering: `merged` is final up to `last`
                    old = pa.Table.from_batches([batch])
                    if merged:
                        old = old.filter(pc.invert(pc.is_in(old.column("trial_id"),
                                                            value_set=pa.array(sorted(merged), pa.string()))))
                    part = pa.concat_tables([old, *mine]) if mine else old
                    if mine and part.num_rows:
                        part = part.take(pc.sort_indices(part, sort_keys=[("trial_id", "ascending")]))
                    emit(part)
            for table in own_upto(None):
                emit(table)
            emit(CURVE_SCHEMA.empty_table(), flush=True)
        _fsync(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp, written


def _remove_own(out: Path, tid: str, ident: tuple) -> int:
    """Remove trial `tid`'s own files (trial first) under its claim, each only if it is the file
    compaction read; the number removed (0 when a live run holds the trial)."""
    claim = store.TrialClaim.acquire(out, tid)
    if claim is None:
        return 0
    removed = 0
    with claim:
        trial_file, curve_file = store.trial_path(out, tid), store.curve_path(out, tid)
        if _identity(trial_file) != ident[0]:
            return 0  # rewritten since it was read: the new file stays, and readers prefer it
        trial_file.unlink()
        removed += 1
        if _identity(curve_file) == ident[1]:
            curve_file.unlink()
            removed += 1
    return removed


def _remove_leftover_curve(out: Path, tid: str) -> int:
    claim = store.TrialClaim.acquire(out, tid)
    if claim is None:
        return 0
    with claim:
        if store.trial_path(out, tid).exists():
            return 0
        store.curve_path(out, tid).unlink(missing_ok=True)
    return 1
