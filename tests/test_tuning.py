"""Tuning: each optimizer gets exactly its budget, the chosen setting is the best in the results,
Hyperband follows the paper's brackets and stays in the same step budget, suites include the
tuned file with hparams_from."""
from __future__ import annotations

import json

import pytest

from bench_core import BenchInputError, LogUniform, get_registry
from bench_core.cli import main
from bench_core.store import read_trials
from bench_core.suite import load_suite
from bench_core.tuning import (TunedSettings, bracket_cost, hyperband_brackets, hyperband_plan,
                               quasi_random_points, tune, write_tuned)

TINY = """
name = "tiny"
seeds = [0, 1]
[[problems]]
name = "synthetic.quadratic"
params = { dim = 8, condition = 10.0 }
budget = { max_steps = 9 }
target = { loss = 1e-12 }
[[optimizers]]
name = "torch.sgd"
[[optimizers]]
name = "torch.adam"
"""


def _final_loss(row) -> float:
    return row["metrics"]["loss"]


def test_random_search_spends_the_budget_and_writes_the_best_setting(write_suite, tmp_path):
    suite = load_suite(write_suite(TINY))
    out = tmp_path / "tune"
    result = tune(suite, out, budget=4)
    write_tuned(result, tmp_path / "tuned.toml", suite)
    df = read_trials(out)
    assert set(df["suite"]) == {"tiny-tune"} and set(df["seed"]) == {0}
    tuned = TunedSettings.load(tmp_path / "tuned.toml", "test").entries
    assert len(tuned) == 2
    for optimizer in ("torch.sgd", "torch.adam"):
        rows = df[df["optimizer"] == optimizer]
        assert len(rows) == 4 and rows["trial_id"].is_unique  # exactly the budget
        lrs = [json.loads(h)["lr"] for h in rows["hparams"]]
        space = get_registry().optimizer(optimizer).search_space["lr"]
        assert len(set(lrs)) == 4 and all(space.low <= lr <= space.high for lr in lrs)
        best = min(rows.to_dict("records"), key=_final_loss)
        entry = next(e for e in tuned if e["optimizer"] == optimizer)
        assert entry["trial_id"] == best["trial_id"]
        assert entry["hparams"] == json.loads(best["hparams"])
        assert entry["metric"] == "loss" and entry["value"] == pytest.approx(_final_loss(best))
        assert entry["trials"] == 4 and entry["planned_steps"] == 4 * 9

    # a suite includes the tuned file: each optimizer runs with its tuned setting per problem
    (tmp_path / "eval.toml").write_text(TINY.replace(
        'name = "torch.sgd"', 'name = "torch.sgd"\nhparams_from = "tuned.toml"').replace(
        'name = "torch.adam"', 'name = "torch.adam"\nhparams_from = "tuned.toml"\nhparams = { eps = 1e-7 }'))
    trials = load_suite(tmp_path / "eval.toml").trials
    by_opt = {e["optimizer"]: e["hparams"] for e in tuned}
    assert len(trials) == 4
    for t in trials:
        expected = dict(by_opt[t.optimizer], **({"eps": 1e-7} if t.optimizer == "torch.adam" else {}))
        assert {k: t.hparams[k] for k in expected} == expected


def test_a_suite_naming_a_tuned_file_without_the_problem_fails_clearly(write_suite, tmp_path):
    (tmp_path / "tuned.toml").write_text('[[tuned]]\noptimizer = "torch.sgd"\nproblem = "other.problem"\n'
                                         'hparams = { lr = 0.5 }\n')
    path = write_suite(TINY.replace('name = "torch.sgd"', 'name = "torch.sgd"\nhparams_from = "tuned.toml"'))
    with pytest.raises(BenchInputError, match=r"optimizers\[0\]\.hparams_from.*no tuned setting"):
        load_suite(path)
    path = write_suite(TINY.replace('name = "torch.sgd"', 'name = "torch.sgd"\nhparams_from = "nope.toml"'))
    with pytest.raises(BenchInputError, match="hparams_from: tuned file .*nope.toml not found"):
        load_suite(path)


def test_hyperband_brackets_match_the_paper():
    # Li et al., Table 1: R = 81, eta = 3
    brackets = hyperband_brackets(81, 3, max_rungs=5)
    assert brackets[0] == [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)]
    assert brackets[1] == [(34, 3), (11, 9), (3, 27), (1, 81)]
    assert brackets[2] == [(15, 9), (5, 27), (1, 81)]
    assert brackets[3] == [(8, 27), (2, 81)]
    assert brackets[4] == [(5, 81)]
    plan = hyperband_plan(9, 6 * 9)
    assert sum(bracket_cost(b) for b in plan) <= 6 * 9
    assert plan == [[(9, 1), (3, 3), (1, 9)], [(5, 3), (1, 9)]]


def test_hyperband_keeps_the_best_third_and_stays_in_the_step_budget(write_suite, tmp_path):
    suite = load_suite(write_suite(TINY.replace('[[optimizers]]\nname = "torch.sgd"\n', "")))
    result = tune(suite, tmp_path / "hb", budget=3, method="hyperband")
    df = read_trials(tmp_path / "hb")
    df["max_steps"] = [json.loads(b)["max_steps"] for b in df["budget"]]
    assert df["max_steps"].sum() <= 3 * 9  # same total steps as 3 full trials
    assert sorted(df["max_steps"]) == [1] * 9 + [3] * 3 + [9]
    first = df[df["max_steps"] == 1].sort_values("metrics", key=lambda s: s.map(lambda m: m["loss"]))
    promoted = set(df.loc[df["max_steps"] == 3, "hparams"])
    assert promoted == set(first["hparams"][:3])
    (group, row, metric), = result.best
    assert row["trial_id"] == df.loc[df["max_steps"] == 9, "trial_id"].item()


def test_quasi_random_points_are_seeded_and_in_the_space():
    space = {"lr": LogUniform(1e-4, 1.0)}
    a, b = quasi_random_points(space, 5, seed=1), quasi_random_points(space, 5, seed=1)
    assert a == b and a != quasi_random_points(space, 5, seed=2)
    assert all(1e-4 <= p["lr"] <= 1.0 for p in a)


def test_cli_tune_rejects_a_bad_budget(write_suite, tmp_path, capsys):
    path = write_suite(TINY)
    assert main(["tune", str(path), "--budget", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--budget" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
