"""The process-pool executor: same trials and statuses as the local run, a hung step killed and
recorded as timeout, a dying worker retried once, out-of-memory recorded as error, CLI options."""
from __future__ import annotations

import pytest

import bench_core
from bench_core.cli import main
from bench_core.executors import get_executor
from bench_core.executors.process import ProcessExecutor
from bench_core.session import run_suite
from bench_core.store import read_trials
from bench_core.suite import load_suite
from test_executors_support import SMALL, use_scale_registry



@pytest.fixture
def scale_registry(monkeypatch, tmp_path):
    registry = use_scale_registry(monkeypatch, tmp_path)
    yield registry
    bench_core.set_registry(None)


def _statuses(out) -> dict:
    df = read_trials(out)
    assert df["trial_id"].is_unique
    return dict(zip(df["trial_id"], df["status"]))


def test_process_pool_gives_the_local_trials_and_statuses(scale_registry, write_suite, tmp_path):
    suite = load_suite(write_suite(SMALL))
    local = run_suite(suite, tmp_path / "local", executor=get_executor("local"))
    pooled = run_suite(suite, tmp_path / "pool", executor=ProcessExecutor(jobs=2))
    assert local.ran == pooled.ran == 8
    expected = _statuses(tmp_path / "local")
    assert _statuses(tmp_path / "pool") == expected
    assert "ok" in set(expected.values())
    threads = set(read_trials(tmp_path / "pool")["torch_threads"])
    assert threads == {ProcessExecutor(jobs=2).threads}


def test_hung_step_is_killed_and_recorded_as_timeout_and_a_dead_worker_retried(
        scale_registry, write_suite, tmp_path):
    marker = tmp_path / "died-once"
    suite = load_suite(write_suite(f"""
name = "faults"
[[problems]]
name = "scale.hang"
budget = {{ max_steps = 50, max_seconds = 1 }}
[[problems]]
name = "scale.dies_once"
params = {{ marker = "{marker}" }}
budget = {{ max_steps = 5 }}
[[problems]]
name = "scale.dies"
budget = {{ max_steps = 5 }}
[[problems]]
name = "scale.oom"
budget = {{ max_steps = 5 }}
[[problems]]
name = "scale.sphere"
budget = {{ max_steps = 5 }}
[[optimizers]]
name = "torch.sgd"
hparams = {{ lr = 0.1 }}
"""))
    messages = []
    executor = ProcessExecutor(jobs=2, grace_s=1.0, log=messages.append)
    summary = run_suite(suite, tmp_path / "out", executor=executor)
    df = read_trials(tmp_path / "out").set_index("problem")
    assert summary.ran == 5
    assert df.loc["scale.hang", "status"] == "timeout"
    assert "exceeded max_seconds=1" in df.loc["scale.hang", "error"]
    assert df.loc["scale.dies_once", "status"] == "ok" and marker.exists()
    assert df.loc["scale.dies", "status"] == "error"
    assert "died 2 times" in df.loc["scale.dies", "error"]
    assert df.loc["scale.oom", "status"] == "error"
    assert "MemoryError" in df.loc["scale.oom", "error"]
    assert df.loc["scale.sphere", "status"] == "ok"
    # each death is reported: once for dies_once (retried), twice for dies (retried, then error)
    assert sum("retrying the trial once" in m for m in messages) == 2
    assert sum("recorded as error" in m for m in messages) == 1


def test_cli_rejects_bad_executor_options(write_suite, tmp_path, capsys):
    suite = write_suite(SMALL.replace("scale.sphere", "synthetic.quadratic"))
    assert main(["run", str(suite), "--out", str(tmp_path / "o"), "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err
    assert main(["run", str(suite), "--out", str(tmp_path / "o"), "--address", "127.0.0.1:1"]) == 2
    assert "--address" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
