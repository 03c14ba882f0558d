"""`import bench_core`, `bench --help` and the analysis commands load neither torch nor a plugin.

Each command runs in a fresh interpreter on a small results directory (made by `bench run` of a
tiny suite); afterwards the interpreter lists which of torch and the plugin packages (the modules
of the ``bench_core`` entry points) it imported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Runs `bench ARGS...` in this interpreter, then prints (last line of stderr) the exit code and
# which of torch and the plugins' top-level packages were imported.
PROBE = """
import importlib.metadata, json, sys
from bench_core.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:  # --help exits from argparse
    rc = exc.code
plugins = {ep.value.split(":")[0].split(".")[0] for ep in importlib.metadata.entry_points(group="bench_core")}
loaded = sorted({m.split(".")[0] for m in sys.modules} & ({"torch"} | plugins - {"bench_core"}))
print(json.dumps({"rc": rc, "loaded": loaded}), file=sys.stderr)
"""

SUITE = """
name = "tiny"
seeds = [0, 1]
device = "cpu"
dtype = "float32"

[[problems]]
name = "synthetic.quadratic"
params = { dim = 10, condition = 10.0 }
budget = { max_steps = 50 }
target = { loss = 0.01 }

[[optimizers]]
name = "torch.sgd"
hparams = { lr = 0.1 }
"""


def _probe(*args: str, cwd) -> tuple[subprocess.CompletedProcess, dict]:
    """Run `bench ARGS` through PROBE; the process and its {"rc", "loaded"} report."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.stderr.strip(), proc.stdout
    return proc, json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results directory `res` of a tiny suite (one problem, one optimizer, two seeds)."""
    tmp = tmp_path_factory.mktemp("cli_imports")
    (tmp / "tiny.toml").write_text(SUITE)
    proc = subprocess.run([sys.executable, "-m", "bench_core.cli", "run", "tiny.toml", "--out", "res"],
                          cwd=tmp, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return tmp


def test_import_bench_core_loads_no_torch():
    code = ("import sys, bench_core\n"
            "assert 'torch' not in sys.modules, 'import bench_core imported torch'\n"
            "assert set(bench_core.__all__) <= set(dir(bench_core))\n"
            "assert bench_core.OptimizerSpec.__module__ == 'bench_core.specs'\n"
            "assert 'torch' not in sys.modules, 'bench_core.OptimizerSpec imported torch'\n"
            "try:\n"
            "    bench_core.no_such_name\n"
            "except AttributeError:\n"
            "    pass\n"
            "else:\n"
            "    raise AssertionError('no AttributeError')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# Commands asserted torch-free and plugin-free: they read (compact: merge) results only. compare
# and history take metric directions from the rows' recorded `directions` column, never from the
# registry.
@pytest.mark.parametrize("args, expect", [
    (("--help",), "Benchmark optimizers and solvers."),
    (("show", "res"), "leaderboard (res)"),
    (("report", "res", "-o", "report.html"), "report: report.html"),
    (("compare", "res", "res"), "0 regression(s)"),
    (("history", "res"), "synthetic.quadratic"),
    (("sql", "res", "select optimizer, count(*) as trials from trials group by 1"), "torch.sgd"),
    (("compact", "res"), "res: generation 1: 2 trial(s)"),  # last: it rewrites res (readers follow)
], ids=["help", "show", "report", "compare", "history", "sql", "compact"])
def test_analysis_commands_load_no_torch_and_no_plugin(results, args, expect):
    proc, report = _probe(*args, cwd=results)
    assert report["rc"] == 0, proc.stderr
    assert expect in proc.stdout
    assert report["loaded"] == [], f"bench {' '.join(args)} imported {report['loaded']}"
