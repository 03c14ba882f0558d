"""Large results directories: how fast `bench show`, `report`, `compare` and `history` read them,
before and after `bench compact`, against DuckDB's own group-by on the same files (not a test;
prints a table).

    python benchmarks/large_results.py --trials 1000 10000 [--compacted-trials 100000] [--points 100] [--work DIR]
    python benchmarks/large_results.py --breakdown DIR   # where `bench show DIR` spends its time
    python benchmarks/large_results.py --file-costs DIR  # CPU per per-trial file: pyarrow, the store, DuckDB

For each size it writes two results directories (base and head: the same trials, the head 10%
slower) as `bench run` writes them (one Parquet file per trial and per curve, page checksums,
TRIAL_SCHEMA and CURVE_SCHEMA), straight with pyarrow (no trial runs), then times each command as
a subprocess (wall time, and peak memory from GNU time's %M) and, in the
same run, the anchor: DuckDB's group-by median of time to target per problem and label over
``DIR/trials/*.parquet`` (and a scan of the curves), in a subprocess too. Then it compacts both
directories and measures again. ``--compacted-trials`` sizes are written straight in the layout
`bench compact` leaves (writing 100,000 trial files one by one takes longer than the commands).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench_core.store import CURVE_SCHEMA, TRIAL_SCHEMA
from bench_core.trial import SCHEMA_VERSION

#: metrics each synthetic curve records, at `points` steps each (points // len(METRICS) per metric)
METRICS = ("loss", "val_loss", "grad_norm", "lr")


def study_shape(n_trials: int) -> tuple[int, int, int, int]:
    """(problems, optimizers, settings, seeds) whose product is `n_trials` (5 seeds, 10 optimizers)."""
    seeds, optimizers = 5, 10
    per = max(1, n_trials // (seeds * optimizers))
    problems = max(1, min(50, per))
    settings = max(1, per // problems)
    return problems, optimizers, settings, seeds


def _hash(value) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def trial_rows(n_trials: int, slower: float = 1.0, code: str = "c0de", seed: int = 0) -> list[dict]:
    """The rows of a synthetic study of about `n_trials` trials (80% reach the target); times
    multiplied by `slower`; the same keys and seeds for any `slower` (a head run of the same study)."""
    problems, optimizers, settings, seeds = study_shape(n_trials)
    rng = np.random.default_rng(seed)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for p in range(problems):
        for o in range(optimizers):
            for k in range(settings):
                hp = {"lr": 10.0 ** -(1 + k / max(1, settings))}
                key = _hash([p, o, k])
                for s in range(seeds):
                    t = float(rng.uniform(0.5, 3.0)) if rng.random() < 0.8 else None
                    t = t * slower if t else None
                    row = dict.fromkeys(TRIAL_SCHEMA.names)
                    row.update({
                        "schema_version": SCHEMA_VERSION, "run_id": "r-" + code, "trial_id": _hash([key, s, code]),
                        "key_id": key, "code_id": code, "suite": "large", "suite_hash": "h",
                        "problem": f"p{p}", "problem_params": "{}", "kind": "training",
                        "optimizer": f"opt{o}", "hparams": json.dumps(hp, sort_keys=True),
                        "label": f"opt{o}", "seed": s, "device": "cpu", "dtype": "float32", "threads": 1,
                        "budget": '{"max_steps": 100}', "targets": '{"loss": 0.001}',
                        "directions": '{"loss": "min", "val_loss": "min"}', "eval": "{}",
                        "status": "target_reached" if t else "ok", "steps": 100,
                        "train_time_s": (t or 5.0), "time_to_target_s": t,
                        "steps_to_target": int(t * 20) if t else None, "time_to_target_mode": "eval",
                        "metrics": [("loss", 1e-4 if t else 1e-2), ("val_loss", 0.1 + 0.01 * s)],
                        "counters": [("evals", 10)], "code": "{}", "git_commit": "c" * 40, "git_dirty": False,
                        "package_versions": "{}", "host": "h", "cpu_model": "cpu", "python_version": "3.12",
                        "torch_version": "2", "cpu_count": 2, "torch_threads": 1, "blas": "{}",
                        "load_avg": 0.5, "started_at": now, "ended_at": now})
                    rows.append(row)
    return rows


def _write_one(args) -> None:
    out, row, points = args
    tid = row["trial_id"]
    per = max(1, points // len(METRICS))
    steps = np.repeat(np.arange(per) * 10, len(METRICS))
    curve = pa.table({"trial_id": [tid] * len(steps), "step": steps, "time_s": steps * 0.01,
                      "metric": list(METRICS) * per, "value": np.exp(-0.01 * steps)}, schema=CURVE_SCHEMA)
    pq.write_table(curve, Path(out) / "curves" / f"{tid}.parquet", write_page_checksum=True)
    pq.write_table(pa.Table.from_pylist([row], schema=TRIAL_SCHEMA), Path(out) / "trials" / f"{tid}.parquet",
                   write_page_checksum=True)


def generate(out: str | Path, rows: list[dict], points: int = 100, jobs: int = 2) -> None:
    """Write `rows` and a curve of `points` points each into `out` as `bench run` lays them out."""
    out = Path(out)
    (out / "trials").mkdir(parents=True, exist_ok=True)
    (out / "curves").mkdir(parents=True, exist_ok=True)
    work = [(str(out), r, points) for r in rows]
    if jobs > 1:
        with Pool(jobs) as pool:
            pool.map(_write_one, work, chunksize=256)
    else:
        for w in work:
            _write_one(w)


def curve_table(trial_ids: list[str], points: int) -> pa.Table:
    """The curves of `trial_ids` (`points` points each, as _write_one writes them) as one table."""
    per = max(1, points // len(METRICS))
    steps = np.repeat(np.arange(per) * 10, len(METRICS))
    n = len(trial_ids)
    return pa.table({"trial_id": np.repeat(np.asarray(trial_ids, dtype=object), len(steps)),
                     "step": np.tile(steps, n), "time_s": np.tile(steps * 0.01, n),
                     "metric": np.tile(np.asarray(METRICS * per, dtype=object), n),
                     "value": np.tile(np.exp(-0.01 * steps), n)}, schema=CURVE_SCHEMA)


def generate_compacted(out: str | Path, rows: list[dict], points: int = 100) -> None:
    """Write `rows` and their curves into `out` as `bench compact` leaves them (generation 1),
    for sizes too large to write file by file here."""
    from bench_core import compaction, store

    out = Path(out)
    for sub in ("trials", "curves"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: r["trial_id"])
    pq.write_table(curve_table([r["trial_id"] for r in rows], points), store.compacted_path(out, "curves", 1),
                   row_group_size=compaction.CURVE_ROW_GROUP, write_page_checksum=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=TRIAL_SCHEMA), store.compacted_path(out, "trials", 1),
                   row_group_size=compaction.TRIAL_ROW_GROUP, write_page_checksum=True)
    store.set_current_generation(out, 1)
    store.ensure_root_note(out)


def measure(cmd: list[str], timeout: float = 900.0) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in GB, exit code) of `cmd` run as a subprocess, killed after
    `timeout` seconds (exit -9). The peak is /usr/bin/time's (GNU time, %M) where it is installed:
    a forked child's own rusage would count the parent's memory at fork time too. The child's
    CPU seconds (user + system, less sensitive to other jobs than the wall time) are kept in
    ``measure.cpu``."""
    import threading

    gnu_time = Path("/usr/bin/time").exists()
    argv = ["/usr/bin/time", "-f", "MAXRSS_KB %M", *cmd] if gnu_time else cmd
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = usage.ru_maxrss
    measure.cpu = usage.ru_utime + usage.ru_stime
    if gnu_time:
        lines = [ln for ln in err.splitlines() if ln.startswith("MAXRSS_KB ")]
        peak_kb = int(lines[-1].split()[1]) if lines else float("nan")
        err = "\n".join(ln for ln in err.splitlines() if not ln.startswith("MAXRSS_KB "))
    if proc.returncode not in (0, 1):
        print(f"  {' '.join(cmd[2:5])}: exit {proc.returncode}: {err.strip()[-300:]}", flush=True)
    return wall, peak_kb / 1024 ** 2, proc.returncode


DUCKDB = """
import sys, duckdb
d = sys.argv[1]
duckdb.sql(f"select problem, label, median(time_to_target_s) from read_parquet('{d}/trials/*.parquet') "
           "group by all").fetchall()
if len(sys.argv) > 2:
    duckdb.sql(f"select metric, count(*), min(value) from read_parquet('{d}/curves/*.parquet') "
               "group by all").fetchall()
"""


def bench_commands(base: Path, head: Path, work: Path, rows: str | None = None) -> list[tuple[str, list[str]]]:
    """(name, argv) of each timed command; `rows`: their --rows (default: the commands' own)."""
    bench = [sys.executable, "-m", "bench_core.cli"]
    more = ["--rows", rows] if rows else []
    return [
        ("duckdb group-by (trials)", [sys.executable, "-c", DUCKDB, str(base)]),
        ("duckdb trials + curves", [sys.executable, "-c", DUCKDB, str(base), "curves"]),
        ("bench show", bench + ["show", str(base), *more]),
        ("bench compare base head", bench + ["compare", str(base), str(head), *more]),
        ("bench history base head", bench + ["history", str(base), str(head), *more]),
        ("bench report", bench + ["report", str(base), "-o", str(work / "report.html")]),
    ]


def breakdown(d: str | Path) -> None:
    """Where `bench show DIR` spends its time, in process: wall and CPU seconds of each step."""
    t0, c0 = time.perf_counter(), time.process_time()

    def lap(name):
        nonlocal t0, c0
        t, c = time.perf_counter(), time.process_time()
        print(f"  {name:34s} wall {t - t0:6.2f} s  cpu {c - c0:6.2f} s", flush=True)
        t0, c0 = t, c
    import io

    from rich.console import Console

    from bench_core import analysis, store
    from bench_core.cli import show, tables
    lap("import (pandas, pyarrow, rich, analysis)")
    trials = store.read_trials(d, columns=analysis.ANALYSIS_COLUMNS + show.COLUMNS)
    lap("read_trials (the columns show uses)")
    trials = analysis.setting_labels(trials)
    lap("setting_labels")
    rows = analysis.leaderboard(trials)
    lap("leaderboard")
    console = Console(file=io.StringIO(), width=200)
    keys = tables.print_leaderboard(rows, console, per_problem=10)
    lap("print leaderboard (10 per problem)")
    tables.print_summary(trials, console, keys, 10)
    lap("summary: settings once, tuning, ranking")


def file_costs(d: str | Path, repeats: int = 2) -> None:
    """CPU milliseconds per per-trial file of DIR/trials (one thread unless said), interleaved
    `repeats` times: pyarrow opening a file (footer, schema), pyarrow reading the columns `bench
    show` uses (page checksums verified), the store's checked read of a file, `store.read_trials`
    by 1 and by 2 reader threads, and DuckDB (its own threads) reading the same columns, and
    its group-by (the anchor)."""
    import duckdb

    from bench_core import analysis, store
    from bench_core.cli import show

    files = store._own_files(Path(d) / "trials")
    names = [str(f) for f in files]
    wanted = list(analysis.ANALYSIS_COLUMNS + show.COLUMNS)
    columns = store._with_identity(wanted)

    def each(fn):
        return lambda: [fn(f) for f in names]

    def read_trials(threads):
        def run():
            store.READ_THREADS = threads
            store.read_trials(d, columns=wanted)
        return run
    steps = {
        "pyarrow: open a file": each(lambda f: pq.ParquetFile(f, page_checksum_verification=True).schema_arrow),
        "pyarrow: open + read the columns": each(lambda f: pq.ParquetFile(f, page_checksum_verification=True)
                                                 .read(columns=columns, use_threads=False)),
        "store.read_trial_file": each(lambda f: store.read_trial_file(f, columns=wanted)),
        "store.read_trials, 1 thread": read_trials(1),
        "store.read_trials, 2 threads": read_trials(2),
        "duckdb: read the same columns": lambda: duckdb.sql(f"select {', '.join(columns)} from read_parquet($f)",
                                                            params={"f": names}).fetchall(),
        "duckdb: group-by (anchor)": lambda: duckdb.sql("select problem, label, median(time_to_target_s) from "
                                                        "read_parquet($f) group by all", params={"f": names}).fetchall(),
    }
    threads = store.READ_THREADS
    print(f"{len(names)} per-trial files; load {os.getloadavg()[0]:.2f}; CPU ms per file (wall ms)", flush=True)
    for r in range(repeats):
        for name, fn in steps.items():
            c, t = time.process_time(), time.perf_counter()
            fn()
            print(f"  {r}  {name:34s} {(time.process_time() - c) / len(names) * 1e3:6.2f}"
                  f"  ({(time.perf_counter() - t) / len(names) * 1e3:6.2f})", flush=True)
    store.READ_THREADS = threads


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--compacted-trials", type=int, nargs="*", default=[],
                    help="sizes written straight as compacted directories (timed after compaction only)")
    ap.add_argument("--points", type=int, default=100, help="curve points per trial (default 100)")
    ap.add_argument("--work", help="where to write the directories (default: a temporary folder, removed)")
    ap.add_argument("--skip", nargs="*", default=[], help="commands to leave out, e.g. 'bench report'")
    ap.add_argument("--keep", action="store_true", help="keep the directories")
    ap.add_argument("--rows", default=None, help="pass --rows to show, compare and history (e.g. all)")
    ap.add_argument("--breakdown", metavar="DIR", help="only print where `bench show DIR` spends its time")
    ap.add_argument("--file-costs", metavar="DIR", help="only print the CPU cost per per-trial file of DIR")
    a = ap.parse_args(argv)
    if a.file_costs:
        file_costs(a.file_costs)
        return 0
    if a.breakdown:
        print(f"load: {os.getloadavg()[0]:.2f} (1 min)", flush=True)
        breakdown(a.breakdown)
        return 0
    root = Path(a.work or tempfile.mkdtemp(prefix="large-results-"))
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs", flush=True)
    for n, layout in [(n, "files") for n in a.trials] + [(n, "compacted") for n in a.compacted_trials]:
        work = root / f"n{n}-{layout}"
        shutil.rmtree(work, ignore_errors=True)
        base, head = work / "base", work / "head"
        t0 = time.perf_counter()
        write = generate if layout == "files" else generate_compacted
        write(base, trial_rows(n), a.points)
        write(head, trial_rows(n, slower=1.1, code="c0de2"), a.points)
        print(f"\n{n} trials ({layout}, {a.points} curve points each) x 2 directories written in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        for phase in (("per-trial files", "compacted") if layout == "files" else ("compacted",)):
            if phase == "compacted" and layout == "files":
                for d in (base, head):
                    wall, peak, rc = measure([sys.executable, "-m", "bench_core.cli", "compact", str(d)])
                    print(f"  bench compact {d.name}: {wall:.2f} s, {peak:.2f} GB (exit {rc})", flush=True)
            print(f"  {phase}: load {os.getloadavg()[0]:.2f}", flush=True)
            print(f"  {'command':28s} {'wall s':>8s} {'cpu s':>7s} {'peak GB':>8s} {'x duckdb':>9s}", flush=True)
            anchor = None
            for name, cmd in bench_commands(base, head, work, a.rows):
                if name in a.skip:
                    continue
                wall, peak, rc = measure(cmd)
                if anchor is None:
                    anchor = wall
                print(f"  {name:28s} {wall:8.2f} {measure.cpu:7.2f} {peak:8.2f} {wall / anchor:9.2f}", flush=True)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if not a.keep and not a.work:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
