"""Crash safety: SIGKILL in the middle of a run, then a resume; two runs writing into one
directory at once; trial claims; temporary files of dead writers cleaned, of live ones kept."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import bench_core
from bench_core import store
from bench_core.session import run_suite
from bench_core.suite import load_suite
from test_executors_support import install_scale_plugin

SLOW = """
name = "slow"
seeds = [0, 1, 2, 3, 4, 5]
[[problems]]
name = "scale.sphere"
params = { sleep_s = 0.05 }
budget = { max_steps = 12 }
[[optimizers]]
name = "torch.sgd"
hparams = { lr = 0.1 }
"""


@pytest.fixture(scope="module")
def scale_site(tmp_path_factory) -> Path:
    return install_scale_plugin(tmp_path_factory.mktemp("scale_site"))


def _bench(args, site: Path, log: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               COLUMNS="200")
    if log is not None:
        env["BENCH_SCALE_LOG"] = str(log)
    return subprocess.Popen([sys.executable, "-m", "bench_core.cli", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _all_files_readable(out: Path) -> int:
    files = list((out / "trials").glob("*.parquet")) + list((out / "curves").glob("*.parquet"))
    for f in files:
        pq.read_table(f)
    return len(list((out / "trials").glob("*.parquet")))


def test_sigkill_loses_only_trials_in_flight_and_a_rerun_resumes(scale_site, write_suite, tmp_path,
                                                                   monkeypatch):
    suite_path, out = write_suite(SLOW), tmp_path / "out"
    proc = _bench([str(suite_path), "--out", str(out)], scale_site)
    deadline = time.monotonic() + 240
    while len(list((out / "trials").glob("*.parquet"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _all_files_readable(out)
    assert 2 <= done_before < 6
    # a dead writer's temporary file goes, a live writer's stays
    dead = out / "trials" / f".x.parquet.{store._writer_tag().rsplit('-', 1)[0]}-{proc.pid}.abc.tmp"
    live = out / "trials" / f".y.parquet.{store._writer_tag()}.abc.tmp"
    dead.write_bytes(b"partial")
    live.write_bytes(b"partial")

    monkeypatch.syspath_prepend(str(scale_site))  # the same installed plugin as the killed run's
    bench_core.set_registry(None)
    try:
        summary = run_suite(load_suite(suite_path), out)
    finally:
        bench_core.set_registry(None)
    assert summary.ran == 6 - done_before
    df = store.read_trials(out)
    assert len(df) == 6 and df["trial_id"].is_unique
    assert set(df["status"]) == {"ok"}
    assert not dead.exists() and live.exists()
    assert _all_files_readable(out) == 6


def test_two_concurrent_runs_into_one_directory_lose_nothing_and_run_each_trial_once(
        scale_site, write_suite, tmp_path):
    suite_path, out, log = write_suite(SLOW), tmp_path / "out", tmp_path / "starts.log"
    runs = [_bench([str(suite_path), "--out", str(out)], scale_site, log) for _ in range(2)]
    for run in runs:
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    df = store.read_trials(out)
    assert len(df) == 6 and df["trial_id"].is_unique
    started = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(started) == sorted(df["trial_id"])  # every trial ran exactly once


def test_a_claim_excludes_other_holders_until_released_or_its_owner_dies(tmp_path):
    claim = store.TrialClaim.acquire(tmp_path, "abc")
    assert claim is not None
    assert store.TrialClaim.acquire(tmp_path, "abc") is None
    assert store.claim_held(tmp_path, "abc")
    claim.release()
    assert not store.claim_held(tmp_path, "abc")
    # a holder killed with SIGKILL leaves a lock file, but no claim (the holder takes the claim's
    # flock the way TrialClaim does, without importing torch, to start fast)
    lock = tmp_path / ".claims" / "xyz.lock"
    code = ("import fcntl, os, time;"
            f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX);"
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert store.claim_held(tmp_path, "xyz")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / ".claims" / "xyz.lock").exists()
    assert not store.claim_held(tmp_path, "xyz")
    again = store.TrialClaim.acquire(tmp_path, "xyz")
    assert again is not None
    again.release()
