"""The Ray executor on a real local Ray head (`ray start --head` on 127.0.0.1, 2 CPUs, no
dashboard), one head for the whole module: same trials and statuses as the local run, through
`bench run --executor ray --address`; a hung step cancelled and recorded as timeout."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import ray

import bench_core
from bench_core.cli import main
from bench_core.executors import get_executor
from bench_core.executors.ray_executor import RayExecutor
from bench_core.session import run_suite
from bench_core.store import read_trials
from bench_core.suite import load_suite
from test_executors_support import SMALL, install_scale_plugin, use_scale_registry

# A looser target than the process-pool tests, so that both statuses occur on Ray's workers too.
RAY_SUITE = SMALL.replace("target = { loss = 1e-4 }", "target = { loss = 1e-2 }")

RAY = str(Path(sys.executable).parent / "ray")



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A Ray head on 127.0.0.1 whose workers can import the scale test plugin; its address."""
    site = install_scale_plugin(tmp_path_factory.mktemp("scale_site_ray"))
    port = _free_port()
    # Token authentication off on both sides: a local ray.init() elsewhere may have left a token
    # in ~/.ray/auth_token, which would otherwise switch the head to token mode.
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               RAY_USAGE_STATS_ENABLED="0")
    subprocess.run([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                    "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false",
                    "--object-store-memory=100000000", "--disable-usage-stats"],
                   env=env, check=True, capture_output=True, timeout=300)
    address = f"127.0.0.1:{port}"
    try:
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


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
