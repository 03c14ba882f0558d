"""Faulty trials: a hung step without max_seconds ends at --trial-timeout under --jobs; SystemExit in
a step is that trial's error; Ctrl-C stops the run with exit 130 and the rerun runs the trial; a
trial that kills its process (SIGSEGV) is recorded as an error after it did so twice."""
from __future__ import annotations

import importlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import bench_core
from bench_core.cli import main
from bench_core.store import read_trials
from bench_core.suite import load_suite
from conftest import FIXTURES
from test_executors_support import use_scale_registry
from test_plugin_faults import install_fixture

FAULTY = FIXTURES / "faulty_plugin"

#: A quick trial that runs before the faulty one, to see the others still run.
QUICK = """
[[problems]]
name = "synthetic.quadratic"
params = { dim = 4, condition = 10.0 }
budget = { max_steps = 5 }
"""


def faulty_suite(problem: str, params: str = "") -> str:
    return f"""
name = "faulty"
{QUICK}
[[problems]]
name = "faulty.{problem}"
params = {{ {params} }}
budget = {{ max_steps = 5 }}
[[optimizers]]
name = "torch.sgd"
hparams = {{ lr = 0.1 }}
"""


def _by_problem(out: Path) -> dict:
    df = read_trials(out)
    return {row.problem: row for row in df.itertuples()}


@pytest.fixture
def scale_registry(monkeypatch, tmp_path):
    yield use_scale_registry(monkeypatch, tmp_path)
    bench_core.set_registry(None)


def test_a_hung_step_without_max_seconds_ends_at_the_trial_timeout(scale_registry, write_suite, tmp_path):
    suite = write_suite("""
name = "hang"
[[problems]]
name = "scale.hang"
budget = { max_steps = 50 }
[[optimizers]]
name = "torch.sgd"
hparams = { lr = 0.1 }
""")
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--jobs", "1", "--trial-timeout", "2"]) == 0
    rows = _by_problem(out)
    assert rows["scale.hang"].status == "timeout"
    assert "exceeded the trial timeout of 2 s (no max_seconds; bench run --trial-timeout)" in rows["scale.hang"].error
    # the watchdog is not part of the trial: same ids as the suite without the option
    assert set(read_trials(out)["trial_id"]) == {t.trial_id for t in load_suite(suite).trials}


@pytest.mark.parametrize("args, message", [
    (["--trial-timeout", "5"], "--trial-timeout: only with --jobs N or --executor process|ray"),
    (["--jobs", "1", "--trial-timeout", "0"], "--trial-timeout: expected a positive number of seconds, got 0"),
    (["--jobs", "1", "--trial-timeout", "nan"], "--trial-timeout: expected a positive number of seconds, got nan"),
])
def test_bad_trial_timeouts_are_refused(write_suite, tmp_path, capsys, args, message):
    suite = write_suite(f"name = \"t\"\n{QUICK}\n[[optimizers]]\nname = \"torch.sgd\"\n")
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), *args]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"bench: error: {message}")
    assert not (tmp_path / "out").exists()


def test_system_exit_in_a_step_is_that_trials_error(monkeypatch, write_suite, tmp_path):
    monkeypatch.syspath_prepend(str(FAULTY))
    bench_core.set_registry(bench_core.build_registry(
        plugins=[("faulty", importlib.import_module("bench_faulty_plugin"))]))
    try:
        out = tmp_path / "out"
        assert main(["run", str(write_suite(faulty_suite("exit"))), "--out", str(out)]) == 0
    finally:
        bench_core.set_registry(None)
    rows = _by_problem(out)
    assert rows["synthetic.quadratic"].status == "ok"
    assert rows["faulty.exit"].status == "error"
    assert rows["faulty.exit"].error.startswith("SystemExit: 3 (at ")
    assert not list((out / ".claims").glob("*.attempts"))


@pytest.fixture(scope="module")
def faulty_site(tmp_path_factory) -> Path:
    return install_fixture("faulty_plugin", tmp_path_factory.mktemp("faulty_site"))


def _bench_run(site: Path, suite: Path, out: Path) -> subprocess.CompletedProcess:
    """`python -m bench_core.cli run SUITE --out OUT` with the faulty plugin, no core files."""
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "bench_core.cli", "run", str(suite), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300, preexec_fn=_child_setup)


def _child_setup() -> None:
    """No core files; Ctrl-C as in a terminal (a shell's background job inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_run_with_130_and_the_rerun_runs_the_trial(faulty_site, write_suite, tmp_path):
    marker = tmp_path / "interrupted"
    suite, out = write_suite(faulty_suite("interrupt", f'marker = "{marker}"')), tmp_path / "out"
    first = _bench_run(faulty_site, suite, out)
    assert first.returncode == 130, first.stderr
    assert first.stderr.strip().splitlines()[-1] == "bench: interrupted"
    assert marker.exists() and set(_by_problem(out)) == {"synthetic.quadratic"}
    assert not list((out / ".claims").glob("*.attempts"))  # an interrupt is no crash
    second = _bench_run(faulty_site, suite, out)
    assert second.returncode == 0, second.stderr
    assert _by_problem(out)["faulty.interrupt"].status == "ok"


def test_a_trial_that_kills_its_process_twice_is_recorded_as_error(faulty_site, write_suite, tmp_path):
    suite, out = write_suite(faulty_suite("segfault")), tmp_path / "out"
    first = _bench_run(faulty_site, suite, out)
    assert first.returncode == -11, first.stderr  # a shell says 139
    assert set(_by_problem(out)) == {"synthetic.quadratic"}
    [attempts] = (out / ".claims").glob("*.attempts")  # the attempt that killed the process
    assert "Fatal Python error: Segmentation fault" in attempts.read_text()

    second = _bench_run(faulty_site, suite, out)
    assert second.returncode == -11, second.stderr
    assert ("faulty.segfault torch.sgd(lr=0.1, momentum=0.9) seed=0 killed its process in an earlier run (signal 11 (SIGSEGV, "
            "Segmentation fault) at ") in second.stderr
    assert "running it again, attempt 2 of 2" in second.stderr

    third = _bench_run(faulty_site, suite, out)
    assert third.returncode == 0, third.stderr
    row = _by_problem(out)["faulty.segfault"]
    assert row.status == "error"
    assert row.error.startswith("killed its process twice: signal 11 (SIGSEGV, Segmentation fault) at ")
    assert "bench_faulty_plugin/__init__.py:" in row.error and " in fault;" in row.error
    assert not attempts.exists()

