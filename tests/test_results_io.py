"""bench_core.read_results and `bench sql`: trials with dict maps, curves joined to their trial,
a results root read as one dataset, anything else refused in one line."""
from __future__ import annotations

import csv
import io

import pytest

import bench_core
from bench_core.cli import main
from bench_core.errors import BenchInputError
from bench_core.store import write_trial
from test_analysis import row


@pytest.fixture()
def root(tmp_path):
    for name, opt in (("a", "opt.a"), ("b", "opt.b")):
        for s in range(2):
            write_trial(tmp_path / name, row(optimizer=opt, seed=s, ttt=1.0 + s, host=name),
                        [(0, 0.0, "loss", 1.0), (10, 1.0 + s, "loss", 1e-4)])
    return tmp_path


def test_read_results_gives_dict_maps_and_joined_curves(root):
    trials, curves = bench_core.read_results(root / "a")
    assert len(trials) == 2 and all(isinstance(m, dict) for m in trials["metrics"])
    assert trials["metrics"].iloc[0]["loss"] == 1e-4
    assert len(curves) == 4
    assert {"problem", "optimizer", "label", "seed", "trial_id", "step", "value"} <= set(curves.columns)
    joined = curves.merge(trials[["trial_id", "seed", "optimizer"]], on="trial_id", suffixes=("", "_t"))
    assert (joined["seed"] == joined["seed_t"]).all() and (joined["optimizer"] == "opt.a").all()


def test_a_results_root_reads_as_one_dataset_and_other_dirs_are_refused(root, tmp_path_factory):
    res = bench_core.read_results(root)
    assert sorted(res.trials["optimizer"].unique()) == ["opt.a", "opt.b"] and len(res.curves) == 8
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(BenchInputError, match="not a results directory"):
        bench_core.read_results(empty)


def test_bench_sql_queries_trials_maps_and_curves(root, capsys):
    query = "select optimizer, count(*) n, max(metrics['loss']) loss from trials group by 1 order by 1"
    assert main(["sql", str(root), query, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows == [{"optimizer": "opt.a", "n": "2", "loss": "0.0001"}, {"optimizer": "opt.b", "n": "2", "loss": "0.0001"}]
    assert main(["sql", str(root / "b"), "select seed, max(time_s) t from curves group by 1 order by 1",
                 "--format", "json"]) == 0
    assert '"t":2.0' in capsys.readouterr().out.replace(" ", "")
    assert main(["sql", str(root), "select nope from trials"]) == 2
    assert "query:" in capsys.readouterr().err
