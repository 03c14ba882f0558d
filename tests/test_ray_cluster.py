"""A study through a real local Ray head, joined by address as a user joins a cluster: the head
is started with ``ray start --head`` on 127.0.0.1 and stopped by benchmarks/_ray_head.py (the
helper benchmarks/ray_study.py uses); every trial is written once, a resume skips them, and
``RAY_ADDRESS`` alone points the executor at the head."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")  # an extra: bench-core[ray]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package

from bench_core.cli import main
from bench_core.executors import get_executor
from bench_core.session import run_suite
from bench_core.store import read_trials
from bench_core.suite import load_suite
from benchmarks._ray_head import local_ray_head
from benchmarks.ray_study import write_suite


@pytest.fixture(scope="module")
def head():
    """The address of a Ray head with 2 CPUs, for the whole module."""
    with local_ray_head(num_cpus=2) as address:
        yield address


def _files(out: Path) -> dict:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns
            for folder in ("trials", "curves") for p in (out / folder).iterdir()}


def test_trials_through_a_head_by_address_are_written_once_and_a_resume_skips_them(head, tmp_path):
    path = write_suite(tmp_path, trials=6, seeds=2, steps=3)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--executor", "ray", "--address", head]) == 0
    df = read_trials(out)
    assert sorted(df["trial_id"]) == sorted(t.trial_id for t in load_suite(path).trials)
    assert set(df["status"]) == {"ok"} and set(df["steps"]) == {3}
    files = _files(out)
    assert len([f for f in files if f.startswith("trials/")]) == 6  # one file per trial, no temporaries
    assert len([f for f in files if f.startswith("curves/")]) == 6

    again = run_suite(load_suite(path), out, executor=get_executor("ray", address=head))
    assert (again.ran, again.skipped) == (0, 6)
    assert _files(out) == files  # nothing rewritten


def test_ray_address_from_the_environment_joins_the_head(head, monkeypatch):
    ray.shutdown()  # the driver connects again, from RAY_ADDRESS alone (no trials: no new workers)
    monkeypatch.setenv("RAY_ADDRESS", head)
    get_executor("ray")._connect()
    assert ray.get_runtime_context().gcs_address.endswith(":" + head.rsplit(":", 1)[1])
    assert ray.cluster_resources()["CPU"] == 2
