"""Shared fixtures: a small suite writer and the fixture plugin packages pip-installed to a folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The fixture plugins (tests/fixtures/*_plugin), pip-installed into one folder for PYTHONPATH."""
    target = tmp_path_factory.mktemp("plugin_site")
    for name in ("ext_plugin", "broken_plugin"):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(target), str(FIXTURES / name)],
                       check=True, capture_output=True)
    return target


def run_bench(*args: str, cwd: Path, pythonpath: Path | None = None, timeout: int = 300):
    """Run the `bench` CLI in a subprocess; return the CompletedProcess (text)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "bench_core.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def write_suite(tmp_path):
    """Write a suite file from TOML text and return its path."""
    def write(text: str, name: str = "suite.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


@pytest.fixture
def one_thread():
    """torch on one thread for the test: on small problems extra threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
