"""Shared helpers (no tests) for the executor, crash-safety and tuning tests: the scale test
plugin (tests/fixtures/scale_plugin) installed into a folder or registered in-process."""
from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import bench_core

SCALE_PLUGIN = Path(__file__).parent / "fixtures" / "scale_plugin"


#: A small suite for the executor tests: a builtin problem and the fixture plugin's problem.
SMALL = """
name = "small"
seeds = [0, 1]
[[problems]]
name = "synthetic.quadratic"
params = { dim = 10, condition = 10.0 }
budget = { max_steps = 60 }
target = { loss = 1e-4 }
[[problems]]
name = "scale.sphere"
budget = { max_steps = 20 }
[[optimizers]]
name = "torch.sgd"
hparams = { lr = 0.1 }
[[optimizers]]
name = "torch.adam"
hparams = { lr = 1e-2 }
"""


def install_scale_plugin(target: Path) -> Path:
    """pip-install the scale plugin (with its entry point) into `target`, for PYTHONPATH."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(SCALE_PLUGIN)],
                   check=True, capture_output=True)
    return target


def use_scale_registry(monkeypatch, tmp_path: Path):
    """Make the process-wide registry the installed plugins plus the scale plugin registered by
    hand (not an entry point: a copy of the package without metadata, importable by spawned
    workers through sys.path). Undo with bench_core.set_registry(None)."""
    copy = tmp_path / "scale_src"
    if not copy.exists():
        shutil.copytree(SCALE_PLUGIN / "bench_scale_plugin", copy / "bench_scale_plugin")
    monkeypatch.syspath_prepend(str(copy))
    sys.modules.pop("bench_scale_plugin", None)
    module = importlib.import_module("bench_scale_plugin")
    registry = bench_core.build_registry(plugins=[("scale", module)])
    bench_core.set_registry(registry)
    return registry
