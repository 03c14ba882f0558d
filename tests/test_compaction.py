"""Compaction (`bench compact`, bench_core.compaction): per-trial files merged into compacted files
with no trial lost or doubled, whenever the compaction is killed and whatever runs beside it;
resume, verify and the analysis see the same trials before and after; reading the results root
as one dataset fails loudly.

Synthetic directories are written straight with pyarrow (benchmarks/large_results.py, as `bench
run` lays them out); the run-beside-compaction test runs a real `bench run`.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench_core import analysis, compaction, compare, history, store
from bench_core.cli import main
from bench_core.integrity import verify_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of the repository, not an installed package

from benchmarks.large_results import generate, trial_rows  # noqa: E402

N = 50  # 1 problem x 10 optimizers x 1 setting x 5 seeds (benchmarks.large_results.study_shape)


@pytest.fixture
def synthetic(tmp_path):
    """A results directory of N synthetic trials with curves (8 points each), per-trial files."""
    out = tmp_path / "res"
    generate(out, trial_rows(N), points=8, jobs=1)
    return out


def _state(*dirs):
    """(trials sorted by id, curves sorted) as the readers return them, and the trial ids seen."""
    trials, curves = store.read_trials(*dirs), store.read_curves(*dirs)
    return trials, curves


def _rows(out) -> list[dict]:
    """The trial rows of `out` as write_trial takes them (None for missing values)."""
    def clean(v):
        return None if v is pd.NaT or (isinstance(v, float) and math.isnan(v)) else v
    return [{k: clean(v) for k, v in r.items()} for r in store.read_trials(out).to_dict("records")]


def _assert_same(a, b):
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


# --------------------------------------------------------------------------- the basic contract
def test_compaction_keeps_every_trial_and_curve_and_leaves_two_files(synthetic, capsys):
    before = _state(synthetic)
    assert main(["compact", str(synthetic)]) == 0
    assert "generation 1: 50 trial(s), 400 curve point(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (synthetic / "trials").iterdir()) == ["compacted-000001.parquet"]
    assert sorted(p.name for p in (synthetic / "curves").iterdir()) == ["compacted-000001.parquet"]
    _assert_same(before, _state(synthetic))
    assert pq.ParquetFile(synthetic / "trials" / "compacted-000001.parquet").metadata.num_rows == N
    report = verify_dir(synthetic)
    assert report.clean and report.compacted_trials == N
    # a second compaction with nothing new rewrites one generation and removes the old one
    compaction.compact(synthetic)
    assert store.current_generation(synthetic) == 2
    assert sorted(p.name for p in (synthetic / "trials").iterdir()) == ["compacted-000002.parquet"]
    _assert_same(before, _state(synthetic))


def test_plain_readers_read_the_compacted_folders_as_datasets(synthetic):
    compaction.compact(synthetic)
    for sub, n in (("trials", N), ("curves", N * 8)):
        assert len(pd.read_parquet(synthetic / sub)) == n
        assert pq.read_table(synthetic / sub).num_rows == n
    import duckdb
    import polars

    got = duckdb.sql(f"select count(*), count(distinct trial_id) from '{synthetic}/trials/*.parquet'").fetchall()[0]
    assert got == (N, N)
    for sub, n in (("trials", N), ("curves", N * 8)):
        frame = polars.read_parquet(f"{synthetic}/{sub}/*.parquet")
        assert frame.height == n and frame["trial_id"].n_unique() == N


def test_reading_the_results_root_as_one_dataset_fails_loudly(synthetic):
    store.ensure_root_note(synthetic)  # bench run writes it with its first trial
    compaction.compact(synthetic)
    with pytest.raises(Exception, match="README.txt"):
        pd.read_parquet(synthetic)
    with pytest.raises(Exception, match="README.txt"):
        pq.read_table(synthetic)
    assert "DIR/trials" in (synthetic / store.ROOT_NOTE).read_text()


def test_new_trials_after_compaction_are_read_with_the_compacted_ones(synthetic, tmp_path):
    rows = trial_rows(N)
    first, later = rows[:30], rows[30:]
    out = tmp_path / "split"
    generate(out, first, points=8, jobs=1)
    compaction.compact(out)
    generate(out, later, points=8, jobs=1)  # a run after the compaction: per-trial files again
    _assert_same(_state(synthetic), _state(out))
    assert store.completed_trial_ids(out) == {r["trial_id"] for r in rows}
    compaction.compact(out)
    _assert_same(_state(synthetic), _state(out))


def test_a_trial_rewritten_after_compaction_is_read_from_its_own_file(synthetic):
    compaction.compact(synthetic)
    row = _rows(synthetic)[3]
    row.update(status="error", error="rerun", run_id="again")
    store.write_trial(synthetic, row, [(0, 0.0, "loss", 9.0)])
    trials, curves = _state(synthetic)
    assert len(trials) == N and trials.set_index("trial_id").loc[row["trial_id"], "error"] == "rerun"
    mine = curves[curves["trial_id"] == row["trial_id"]]
    assert mine["value"].tolist() == [9.0]
    assert store.read_trial_status(synthetic, row["trial_id"]) == ("error", "again")
    compaction.compact(synthetic)  # the rerun's row replaces the compacted one
    assert not store.trial_path(synthetic, row["trial_id"]).exists()
    _assert_same((trials, curves), _state(synthetic))


# --------------------------------------------------------------------------- crash safety
STEPS = ["read", "curves_written", "trials_written", "generation_set", "old_removed", "own_removed"]

KILLER = """
import os, signal, sys
from bench_core import compaction
step = sys.argv[2]
seen = []
def hook(name):
    seen.append(name)
    if name == step and (step != "own_removed" or seen.count(name) == 10):
        os.kill(os.getpid(), signal.SIGKILL)
compaction._STEP_HOOK = hook
compaction.compact(sys.argv[1])
"""


@pytest.mark.parametrize("step", STEPS)
def test_a_compaction_killed_at_any_step_loses_and_doubles_nothing(synthetic, step):
    # compacted once, then 20 trials rerun with other results: the killed compaction has old
    # rows to replace, old files to remove and own files to merge
    compaction.compact(synthetic)
    for i, row in enumerate(_rows(synthetic)[:20]):
        row.update(run_id="second", steps=1000 + i)
        store.write_trial(synthetic, row, [(1, 0.1, "loss", float(i))])
    before = _state(synthetic)
    proc = subprocess.run([sys.executable, "-c", KILLER, str(synthetic), step], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    after = _state(synthetic)
    _assert_same(before, after)  # nothing lost, nothing doubled, the rerun rows still win
    assert store.completed_trial_ids(synthetic) == set(before[0]["trial_id"])
    report = compaction.compact(synthetic)  # the next compaction finishes the job
    assert report.left == 0
    assert verify_dir(synthetic).clean
    _assert_same(before, _state(synthetic))


def test_a_reader_sees_every_trial_once_at_every_step(synthetic, monkeypatch):
    compaction.compact(synthetic)
    for row in _rows(synthetic)[:10]:
        row.update(run_id="second")
        store.write_trial(synthetic, row, [(1, 0.1, "loss", 1.0)])
    expected = _state(synthetic)
    seen = []

    def hook(name):
        seen.append(name)
        _assert_same(expected, _state(synthetic))
    monkeypatch.setattr(compaction, "_STEP_HOOK", hook)
    compaction.compact(synthetic)
    assert [s for s in dict.fromkeys(seen)] == STEPS and seen.count("own_removed") == 10


def test_a_failure_while_writing_leaves_the_directory_as_it_was(synthetic, monkeypatch):
    before = _state(synthetic)
    listing = sorted(p.name for p in (synthetic / "trials").iterdir())

    def hook(name):
        if name == "curves_written":
            raise OSError(28, "No space left on device")
    monkeypatch.setattr(compaction, "_STEP_HOOK", hook)
    with pytest.raises(OSError):
        compaction.compact(synthetic)
    assert sorted(p.name for p in (synthetic / "trials").iterdir()) == listing
    _assert_same(before, _state(synthetic))
    assert not list(synthetic.rglob("*.tmp"))


def test_one_compaction_at_a_time(synthetic, capsys):
    fd = compaction._lock(synthetic)
    try:
        assert main(["compact", str(synthetic)]) == 1
        assert "another `bench compact`" in capsys.readouterr().err
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- beside writers
def test_writers_and_rewriters_beside_compactions_lose_nothing(synthetic):
    """A thread writes new trials and rewrites compacted ones under their claims, as bench run's
    workers do, while compactions run one after the other."""
    compaction.compact(synthetic)
    rows = _rows(synthetic)
    fresh = [dict(r, trial_id=f"{i:016x}", seed=100 + i) for i, r in enumerate(rows[:25])]
    stop = threading.Event()

    def writer():
        for i, row in enumerate(fresh + rows[:25]):
            with store.TrialClaim.acquire(synthetic, row["trial_id"]):
                store.write_trial(synthetic, dict(row, run_id=f"w{i}"), [(i, 0.0, "loss", float(i))])
        stop.set()
    t = threading.Thread(target=writer)
    t.start()
    while not stop.is_set():
        compaction.compact(synthetic)
    t.join()
    trials, curves = _state(synthetic)
    assert len(trials) == N + 25 and trials["trial_id"].is_unique
    by_id = trials.set_index("trial_id")["run_id"]
    assert all(by_id[r["trial_id"]].startswith("w") for r in fresh + rows[:25])
    rewritten = curves[curves["trial_id"].isin({r["trial_id"] for r in rows[:25]})]
    assert len(rewritten) == 25  # each rewritten trial has its one new point, not its 8 old ones
    compaction.compact(synthetic)
    assert verify_dir(synthetic).clean
    pd.testing.assert_frame_equal(trials, store.read_trials(synthetic))


SUITE = """
name = "compact"
seeds = [0, 1, 2]
[[problems]]
name = "synthetic.quadratic"
params = { dim = 5 }
budget = { max_steps = 20 }
[[optimizers]]
name = "torch.sgd"
hparams = { lr = 0.1 }
[[optimizers]]
name = "torch.adam"
hparams = { lr = 0.01 }
"""


def test_a_run_beside_compactions_then_resume_skips_every_trial(tmp_path, capsys):
    suite = tmp_path / "compact.toml"
    suite.write_text(SUITE)
    out = tmp_path / "res"
    out.mkdir()
    (out / "trials").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "bench_core.cli", "run", str(suite), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    compactions = 0
    while proc.poll() is None:
        compaction.compact(out)
        compactions += 1
        time.sleep(0.3)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert compactions > 1
    trials = store.read_trials(out)
    assert len(trials) == 6 and trials["trial_id"].is_unique
    compaction.compact(out)
    assert verify_dir(out).clean and store._own_files(out / "trials") == []
    assert main(["run", str(suite), "--out", str(out), "--compact"]) == 0
    printed = capsys.readouterr().out
    assert "6 trial(s) already complete" in printed and "compacted: 6 trial(s)" in printed
    assert store._own_files(out / "trials") == []  # nothing ran again
    keys = store.completed_keys(out)
    assert len(keys) == 6 and set(keys.values()) == set(trials["trial_id"])
    pd.testing.assert_frame_equal(trials, store.read_trials(out))


# --------------------------------------------------------------------------- damage and verify
def test_verify_and_readers_report_a_damaged_compacted_file(synthetic, capsys):
    compaction.compact(synthetic)
    path = synthetic / "trials" / "compacted-000001.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 3: len(data) // 3 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    skipped = []
    df = store.read_trials(synthetic, on_skip=lambda p, why: skipped.append(p))
    assert skipped == [path] and len(df) == 0
    assert store.completed_trial_ids(synthetic) == set()  # its trials run again
    report = verify_dir(synthetic)
    assert [(f.path, f.kind) for f in report.findings] == [(path, "unreadable")]
    assert main(["compact", str(synthetic)]) == 0
    assert "damaged compacted file moved to" in capsys.readouterr().err
    assert (synthetic / "quarantine" / "trials" / path.name).is_file()


def test_verify_reports_a_leftover_generation(synthetic):
    compaction.compact(synthetic)
    left = synthetic / "trials" / "compacted-000007.parquet"
    left.write_bytes((synthetic / "trials" / "compacted-000001.parquet").read_bytes())
    assert [(f.path, f.kind) for f in verify_dir(synthetic).findings] == [(left, "leftover")]
    assert len(store.read_trials(synthetic)) == N  # readers take the current generation only
    compaction.compact(synthetic)
    assert store.current_generation(synthetic) == 8 and verify_dir(synthetic).clean


# --------------------------------------------------------------------------- analysis
def test_analysis_is_identical_before_and_after_compaction(tmp_path):
    base, head = tmp_path / "base", tmp_path / "head"
    generate(base, trial_rows(N), points=8, jobs=1)
    generate(head, trial_rows(N, slower=1.3, code="c0de2"), points=8, jobs=1)

    def results():
        b, h = store.read_trials(base), store.read_trials(head)
        series, ordering = history.build_history(history.read_runs(base, head), "time_to_target_s", repo=tmp_path)
        return (analysis.leaderboard(b), analysis.ranking(b), analysis.settings_summary(b),
                compare.compare(b, h).to_dict(), [repr(s) for s in series], ordering)
    before = results()
    compaction.compact(base)
    compaction.compact(head)
    assert repr(results()) == repr(before)


def test_bench_compact_loads_no_torch_and_no_plugin(synthetic):
    code = ("import sys; from bench_core.cli import main; rc = main(['compact', sys.argv[1]]); "
            "loaded = [m for m in ('torch', 'bench_optim', 'bench_linear') if m in sys.modules]; "
            "print('loaded:', loaded); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(synthetic)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "loaded: []" in proc.stdout and store.current_generation(synthetic) == 1


def test_compacted_files_read_for_some_trials_are_the_whole_file_filtered(tmp_path):
    ids = [f"t{i:03d}" for i in range(60)]
    curves = pa.table({"trial_id": [t for t in ids for _ in range(5)], "step": list(range(5)) * 60,
                       "time_s": [0.1] * 300, "metric": ["loss"] * 300, "value": [float(i) for i in range(300)]},
                      schema=store.CURVE_SCHEMA)
    path = tmp_path / "compacted-000001.parquet"
    pq.write_table(curves, path, row_group_size=40, write_page_checksum=True)  # 8 row groups
    for wanted in ({"t000", "t031", "t059"}, set(ids[10:12]), {"t0305", "zz"}, set()):
        got = store.read_compacted_curves(path, trial_ids=wanted)
        assert got.equals(curves.filter(pa.compute.is_in(curves.column("trial_id"),
                                                         value_set=pa.array(sorted(wanted), pa.string()))))
    assert store.read_compacted_curves(path, trial_ids={"t031"}).column("value").to_pylist() == [155.0, 156.0,
                                                                                                 157.0, 158.0, 159.0]
    rows = sorted(trial_rows(50)[:20], key=lambda r: r["trial_id"])
    trials = pa.Table.from_pylist(rows, schema=store.TRIAL_SCHEMA)
    tpath = tmp_path / "trials.parquet"
    pq.write_table(trials, tpath, row_group_size=3, write_page_checksum=True)
    some = set(trials.column("trial_id").to_pylist()[4:9])
    got = store.read_compacted_trials(tpath, ["problem"], trial_ids=some)
    assert got.column_names == ["problem"] and got.num_rows == 5
    assert store.read_compacted_trials(tpath, ["problem"], trial_ids={"none"}).num_rows == 0
