"""Shared helpers (no tests) for the executor, crash-safety and tuning tests: the scale test
plugin (tests/fixtures/scale_plugin) installed into a folder or registered in-process."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import bench_core

SCALE_PLUGIN = Path(__file__).parent / "fixtures" / "scale_plugin"


def install_scale_plugin(target: Path) -> Path:
    """pip-install the scale plugin (with its entry point) into `target`, for PYTHONPATH."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(SCALE_PLUGIN)],
                   check=True, capture_output=True)
    return target


def use_scale_registry(monkeypatch):
    """Make the process-wide registry the installed plugins plus the scale plugin (importable by
    spawned workers through sys.path). Undo with bench_core.set_registry(None)."""
    monkeypatch.syspath_prepend(str(SCALE_PLUGIN))
    module = importlib.import_module("bench_scale_plugin")
    registry = bench_core.build_registry(plugins=[("scale", module)])
    bench_core.set_registry(registry)
    return registry
