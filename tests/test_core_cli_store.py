"""End to end through the `bench` CLI: results readable by pandas/pyarrow/DuckDB, resume, plugins."""
from __future__ import annotations

import json

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest

from bench_core.store import TRIAL_SCHEMA, read_curves, read_trials
from conftest import run_bench

SUITE = """
name = "tiny"
seeds = [0, 1]
[[problems]]
name = "synthetic.quadratic"
params = { dim = 10, condition = 10.0 }
budget = { max_steps = 300 }
target = { loss = 1e-6 }
[[problems]]
name = "ext.sphere"
budget = { max_steps = 100 }
[[problems]]
name = "pde.poisson2d"
params = { n = 8 }
dtype = "float64"
[[optimizers]]
name = "torch.sgd"
hparams = { lr = 0.3 }
[[optimizers]]
name = "ext.signsgd"
hparams = { lr = 0.05 }
[[optimizers]]
name = "linear.cg"
"""


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, plugin_site):
    tmp = tmp_path_factory.mktemp("run")
    (tmp / "tiny.toml").write_text(SUITE)
    proc = run_bench("run", "tiny.toml", "--out", "res", cwd=tmp, pythonpath=plugin_site)
    return tmp, proc


def test_run_prints_a_leaderboard_and_writes_parquet(first_run):
    tmp, proc = first_run
    assert proc.returncode == 0, proc.stderr
    assert "tiny: leaderboard" in proc.stdout
    for name in ("synthetic.quadratic", "ext.sphere", "pde.poisson2d", "torch.sgd(", "ext.signsgd(", "linear.cg"):
        assert name in proc.stdout
    assert len(list((tmp / "res" / "trials").glob("*.parquet"))) == 2 * 4 + 2
    assert not list((tmp / "res").rglob("*.tmp"))


def test_external_plugin_runs_through_bench_run(first_run):
    tmp, _ = first_run
    df = read_trials(tmp / "res")
    ext = df[(df.problem == "ext.sphere") & (df.optimizer == "ext.signsgd")]
    assert len(ext) == 2 and set(ext.status) == {"target_reached"}
    assert set(df.status) <= {"ok", "target_reached"}


def test_results_are_read_as_they_are_by_pandas_pyarrow_duckdb(first_run):
    tmp, _ = first_run
    trials = tmp / "res" / "trials"
    frame = pd.read_parquet(trials)
    assert len(frame) == 10 and list(frame.columns) == TRIAL_SCHEMA.names
    table = ds.dataset(trials, format="parquet").to_table()
    assert table.num_rows == 10
    rows = duckdb.sql(f"select problem, optimizer, status, metrics['loss'] as loss "
                      f"from read_parquet('{trials}/*.parquet') where problem = 'synthetic.quadratic'").fetchall()
    assert len(rows) == 4 and all(r[3] is not None for r in rows)
    curves = duckdb.sql(f"select count(distinct trial_id) from read_parquet('{tmp}/res/curves/*.parquet')").fetchall()
    assert curves[0][0] == 10
    row = frame.iloc[0]
    for column in ("git_commit", "package_versions", "host", "cpu_model", "started_at", "ended_at"):
        assert row[column] is not None
    assert json.loads(row["package_versions"])["torch"]
    assert len(read_curves(tmp / "res")) > 10


def test_show_prints_the_same_leaderboard(first_run, plugin_site):
    tmp, proc = first_run
    shown = run_bench("show", "res", cwd=tmp, pythonpath=plugin_site)
    assert shown.returncode == 0
    body = lambda text: [l for l in text.splitlines() if l.startswith("│")]  # noqa: E731
    assert body(shown.stdout) == body(proc.stdout)


def test_rerun_skips_complete_trials(first_run, plugin_site):
    tmp, _ = first_run
    before = {p.name: p.stat().st_mtime_ns for p in (tmp / "res" / "trials").glob("*.parquet")}
    proc = run_bench("run", "tiny.toml", "--out", "res", cwd=tmp, pythonpath=plugin_site)
    assert proc.returncode == 0, proc.stderr
    assert "10 trial(s) already complete" in proc.stdout
    after = {p.name: p.stat().st_mtime_ns for p in (tmp / "res" / "trials").glob("*.parquet")}
    assert after == before
    # a trial removed from the directory is the only one run again
    victim = sorted(before)[0]
    (tmp / "res" / "trials" / victim).unlink()
    proc = run_bench("run", "tiny.toml", "--out", "res", cwd=tmp, pythonpath=plugin_site)
    assert "9 trial(s) already complete" in proc.stdout
    assert (tmp / "res" / "trials" / victim).exists()
    assert len(read_trials(tmp / "res")) == 10


def test_list_shows_plugins_and_broken_ones(plugin_site, tmp_path):
    proc = run_bench("list", cwd=tmp_path, pythonpath=plugin_site)
    assert proc.returncode == 0
    assert "ext.signsgd" in proc.stdout and "torch.adamw" in proc.stdout and "bench_optim" in proc.stdout
    assert "plugin broken_import failed" in proc.stdout and "ModuleNotFoundError" in proc.stdout
    assert "plugin broken_hook failed" in proc.stdout and "broken on purpose" in proc.stdout


def test_bad_input_through_the_real_cli_has_no_traceback(tmp_path):
    (tmp_path / "s.toml").write_text(SUITE.replace("torch.sgd", "torch.sdg"))
    proc = run_bench("run", "s.toml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "bench: error: s.toml: optimizers[0].name: unknown optimizer 'torch.sdg' (did you mean 'torch.sgd'?)"]
    assert not (tmp_path / "results").exists()
