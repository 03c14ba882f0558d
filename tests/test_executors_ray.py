"""The Ray executor on a real local Ray head (`ray start --head` on 127.0.0.1, 2 CPUs, no
dashboard), one head for the whole module: same trials and statuses as the local run, through
`bench run --executor ray --address`; a hung step cancelled and recorded as timeout."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from test_executors_support import SMALL, install_scale_plugin, use_scale_registry

pytest.importorskip("ray")  # an extra: bench-core[ray]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package

import bench_core
from bench_core.cli import main
from bench_core.executors import get_executor
from bench_core.executors.ray_executor import RayExecutor
from bench_core.session import run_suite
from bench_core.store import read_trials
from bench_core.suite import load_suite
from benchmarks._ray_head import local_ray_head

# A looser target than the process-pool tests, so that both statuses occur on Ray's workers too.
RAY_SUITE = SMALL.replace("target = { loss = 1e-4 }", "target = { loss = 1e-2 }")

@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A Ray head on 127.0.0.1 whose workers can import the scale test plugin; its address.
    Started and stopped by `benchmarks._ray_head` (its own processes only: `ray stop` would stop
    every Ray process of the machine, a user's included)."""
    site = install_scale_plugin(tmp_path_factory.mktemp("scale_site_ray"))
    python_path = f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    with local_ray_head(env={"PYTHONPATH": python_path}) as address:
        yield address


@pytest.fixture
def scale_registry(monkeypatch, tmp_path):
    registry = use_scale_registry(monkeypatch, tmp_path)
    yield registry
    bench_core.set_registry(None)


def test_ray_gives_the_local_trials_and_statuses(ray_head, scale_registry, write_suite, tmp_path):
    path = write_suite(RAY_SUITE)
    run_suite(load_suite(path), tmp_path / "local", executor=get_executor("local"))
    assert main(["run", str(path), "--out", str(tmp_path / "ray"), "--executor", "ray",
                 "--address", ray_head]) == 0
    local, remote = read_trials(tmp_path / "local"), read_trials(tmp_path / "ray")
    assert len(remote) == 8 and remote["trial_id"].is_unique
    assert dict(zip(remote["trial_id"], remote["status"])) == dict(zip(local["trial_id"], local["status"]))
    assert set(remote["status"]) == {"target_reached", "ok"}
    assert set(remote["torch_threads"]) == {1}


def test_ray_cancels_a_hung_step_and_records_timeout(ray_head, scale_registry, write_suite, tmp_path):
    suite = load_suite(write_suite("""
name = "hang"
[[problems]]
name = "scale.hang"
budget = { max_steps = 50, max_seconds = 1 }
[[problems]]
name = "scale.sphere"
budget = { max_steps = 5 }
[[optimizers]]
name = "torch.sgd"
"""))
    summary = run_suite(suite, tmp_path / "out", executor=RayExecutor(address=ray_head, grace_s=10.0))
    df = read_trials(tmp_path / "out").set_index("problem")
    assert summary.ran == 2
    assert df.loc["scale.hang", "status"] == "timeout"
    assert "exceeded max_seconds=1" in df.loc["scale.hang", "error"]
    assert df.loc["scale.sphere", "status"] == "ok"
    assert not any((tmp_path / "out" / "trials").glob(".*.tmp"))
