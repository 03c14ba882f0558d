"""Statistics over seeds, performance profiles, ranking and the tuning summary, on synthetic
results whose answers are known; `bench show` on merged runs; `bench run` ends with `bench show`'s
leaderboard."""
from __future__ import annotations

import hashlib
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from bench_core import analysis
from bench_core.cli import main
from bench_core.cli.tables import leaderboard_table, print_leaderboard
from bench_core.store import read_trials, to_json, write_trial
from bench_core.trial import SCHEMA_VERSION


def row(problem="p.one", optimizer="opt.a", seed=0, ttt=1.0, status=None, hparams=None, params=None,
        targets=None, metrics=None, kind="training", error=None, host="h1", commit="a" * 40, steps=None):
    """A complete trial row; `ttt` None means the target was missed."""
    hparams = hparams or {}
    status = status or ("target_reached" if ttt is not None else "ok")
    reached = status == "target_reached"
    label = optimizer + (f"({', '.join(f'{k}={v}' for k, v in sorted(hparams.items()))})" if hparams else "")
    key = json.dumps([problem, params, optimizer, hparams, seed, host], sort_keys=True, default=str)
    what = json.dumps([problem, params, optimizer, hparams, targets], sort_keys=True, default=str)
    return {
        "schema_version": SCHEMA_VERSION, "key_id": hashlib.sha256(what.encode()).hexdigest()[:16],
        "code_id": "c0de", "threads": 1, "load_avg": 0.5, "directions": to_json(DIRECTIONS),
        "run_id": "run-" + host, "trial_id": hashlib.sha256(key.encode()).hexdigest()[:16], "suite": "synthetic",
        "problem": problem, "problem_params": to_json(params or {}), "kind": kind, "optimizer": optimizer,
        "hparams": to_json(hparams), "label": label, "seed": seed, "device": "cpu", "dtype": "float32",
        "budget": to_json({"max_steps": 100}), "targets": to_json(targets if targets is not None else {"loss": 1e-3}),
        "status": status, "error": error, "steps": steps if steps is not None else (int(ttt * 10) if reached else 100),
        "train_time_s": ttt if reached else 10.0, "time_to_target_s": ttt if reached else None,
        "steps_to_target": int(ttt * 10) if reached else None,
        "metrics": metrics if metrics is not None else {"loss": 1e-4 if reached else 1e-2},
        "counters": {}, "git_commit": commit, "git_dirty": False, "package_versions": to_json({"torch": "2"}),
        "host": host, "cpu_model": "cpu", "gpu_model": None, "python_version": "3.11", "torch_version": "2",
        "cpu_count": 2, "torch_threads": 2,
    }


DIRECTIONS = {"loss": "min", "val_loss": "min", "val_accuracy": "max", "test_auc": "max"}


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- statistics
def test_median_iqr_of_known_values():
    assert analysis.median_iqr([5, 1, 4, 2, 3]) == (3.0, 2.0, 4.0)
    assert analysis.median_iqr([None, float("nan"), 7]) == (7.0, 7.0, 7.0)
    assert analysis.median_iqr([]) == (None, None, None)


def test_bootstrap_interval_is_deterministic_and_brackets_the_median():
    vals = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    lo, hi = analysis.bootstrap_ci(vals)
    assert (lo, hi) == analysis.bootstrap_ci(vals)  # fixed seed
    assert 1.0 <= lo < 5.5 < hi <= 10.0
    assert analysis.bootstrap_ci([3.0]) == (3.0, 3.0)
    assert analysis.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert analysis.bootstrap_ci([]) == (None, None)
    # large sample of a known distribution: the interval of the median covers the true median
    rng = np.random.default_rng(1)
    lo, hi = analysis.bootstrap_ci(rng.normal(10.0, 1.0, size=400))
    assert lo < 10.0 < hi and hi - lo < 0.5


def test_wilson_interval_matches_the_textbook_values():
    lo, hi = analysis.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = analysis.wilson_interval(0, 3)
    assert lo == 0.0 and hi == pytest.approx(0.5615, abs=1e-4)
    assert analysis.wilson_interval(3, 3)[1] == 1.0


def test_metric_directions_and_selection_metric():
    assert analysis.higher_is_better("val_accuracy")
    assert analysis.higher_is_better("test_auc", {"test_auc": "max"})  # as the row recorded it
    assert not analysis.higher_is_better("test_auc")  # nobody declares it: never guessed from the name
    assert not analysis.higher_is_better("loss")
    assert not analysis.higher_is_better("rel_residual")
    m = {"loss": 1, "val_loss": 2, "val_accuracy": 0.9}
    assert analysis.selection_metric('{"val_accuracy": 0.95}', m) == "val_accuracy"
    assert analysis.selection_metric('{"loss": 0.1}', m) == "val_loss"
    assert analysis.selection_metric('{}', {"rel_residual": 1e-9}) == "rel_residual"


# --------------------------------------------------------------------------- leaderboard
def test_leaderboard_statistics_over_seeds():
    rows = [row(optimizer="opt.fast", seed=s, ttt=t) for s, t in enumerate([1.0, 2.0, 3.0, 4.0, 5.0])]
    rows += [row(optimizer="opt.flaky", seed=s, ttt=t) for s, t in enumerate([0.5, None, 0.7, None, None])]
    rows += [row(optimizer="opt.broken", seed=s, ttt=None, status="error", error="boom") for s in range(5)]
    board = analysis.leaderboard(frame(rows))
    assert [r["optimizer"] for r in board] == ["opt.fast", "opt.flaky", "opt.broken"]
    fast, flaky, broken = board
    assert fast["success_rate"] == 1.0 and fast["seeds"] == 5 and fast["n_seeds"] == 5
    assert fast["time_to_target_s"] == 3.0 and fast["time_to_target_iqr"] == (2.0, 4.0)
    assert fast["steps_to_target"] == 30.0
    lo, hi = fast["time_to_target_ci"]
    assert 1.0 <= lo <= 3.0 <= hi <= 5.0
    assert fast["cost"] == 3.0
    assert fast["metric"] == "loss" and fast["final_metric"] == pytest.approx(1e-4)
    assert fast["final_metrics"]["loss"]["median"] == pytest.approx(1e-4)
    assert flaky["success_rate"] == pytest.approx(0.4)
    assert flaky["time_to_target_s"] == pytest.approx(0.6)  # over the two seeds that reached it
    assert flaky["cost"] == math.inf  # the median seed missed
    assert broken["statuses"] == {"error": 5} and broken["errors"] == ["boom"] * 5
    assert broken["time_to_target_s"] is None and broken["time_to_target_ci"] == (None, None)
    assert fast["provenance"] == {"commits": ["aaaaaaaaaa"], "hosts": ["h1"]}


def test_primary_metric_comes_from_a_trial_that_recorded_metrics():
    rows = [row(seed=0, ttt=None, status="error", error="early", metrics={}),
            row(seed=1, ttt=1.0, metrics={"loss": 1e-4}), row(seed=2, ttt=2.0, metrics={"loss": 2e-4})]
    (r,) = analysis.leaderboard(frame(rows))
    assert r["metric"] == "loss" and r["final_metric"] == pytest.approx(1.5e-4)
    (s,) = analysis.settings_summary(frame(rows))
    assert s["selection_metric"] == "loss"


def test_leaderboard_orders_by_the_metric_direction_when_nobody_reaches_the_target():
    targets = {"val_accuracy": 0.99}
    rows = [row(optimizer="opt.worse", seed=0, ttt=None, targets=targets, metrics={"val_accuracy": 0.8}),
            row(optimizer="opt.better", seed=0, ttt=None, targets=targets, metrics={"val_accuracy": 0.9})]
    assert [r["optimizer"] for r in analysis.leaderboard(frame(rows))] == ["opt.better", "opt.worse"]


# --------------------------------------------------------------------------- profiles
def test_performance_profile_and_score_of_a_known_cost_table():
    costs = pd.DataFrame({"A": [1.0, 4.0, 1.0], "B": [2.0, 1.0, math.inf]}, index=["p1", "p2", "p3"])
    ratios = analysis.performance_ratios(costs)
    assert ratios["A"].tolist() == [1.0, 4.0, 1.0] and ratios["B"].tolist() == [2.0, 1.0, math.inf]
    taus, rho = analysis.performance_profile(costs, taus=[1.0, 1.5, 2.0, 3.9, 4.0])
    assert rho["A"].tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2 / 3, 1.0])
    assert rho["B"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3])
    scores = analysis.profile_scores(costs)
    assert scores["A"] == pytest.approx(2 / 3)  # (1 + 0 + 1) / 3
    assert scores["B"] == pytest.approx(5 / 9)  # (2/3 + 1 + 0) / 3
    # the exact area equals the numerical one
    taus, rho = analysis.performance_profile(costs, taus=np.linspace(1, 4, 30001))
    assert np.trapezoid(rho["B"], taus) / 3 == pytest.approx(5 / 9, abs=1e-3)


def test_problem_nobody_solves_scores_zero_for_everyone():
    costs = pd.DataFrame({"A": [1.0, math.inf], "B": [1.0, math.inf]}, index=["p1", "p2"])
    assert analysis.profile_scores(costs) == {"A": 0.5, "B": 0.5}


def test_ranking_from_trials_per_kind():
    rows = []
    for s in range(3):
        rows += [row(problem="p.one", optimizer="opt.a", seed=s, ttt=1.0 + 0.1 * s),
                 row(problem="p.one", optimizer="opt.b", seed=s, ttt=2.0 + 0.1 * s),
                 row(problem="p.two", optimizer="opt.a", seed=s, ttt=3.0),
                 row(problem="p.two", optimizer="opt.b", seed=s, ttt=1.0),
                 row(problem="p.three", optimizer="opt.a", seed=s, ttt=1.0),
                 row(problem="p.three", optimizer="opt.b", seed=s, ttt=None),
                 row(problem="lin.one", optimizer="solver.x", seed=s, ttt=1.0, kind="linear_system")]
    ranks = analysis.ranking(frame(rows))
    training = [r for r in ranks if r["kind"] == "training"]
    assert [r["solver"] for r in training] == ["opt.a", "opt.b"]
    a, b = training
    assert a["score"] == pytest.approx((1 + (4 - 3) / 3 + 1) / 3)  # ratios 1, 3, 1
    assert b["score"] == pytest.approx(((4 - 2.1 / 1.1) / 3 + 1 + 0) / 3)  # ratios 2.1/1.1, 1, ∞
    assert a["solved"] == 3 and b["solved"] == 2 and a["rank"] == 1 and b["rank"] == 2
    assert a["mean_rank"] == pytest.approx(4 / 3)
    assert [r["solver"] for r in ranks if r["kind"] == "linear_system"] == ["solver.x"]


# --------------------------------------------------------------------------- tuning
def test_tuning_summary_picks_the_best_setting_on_validation_and_counts_reaching_settings():
    targets = {"val_accuracy": 0.9}
    rows = []
    for s in range(3):
        rows += [
            row(optimizer="opt.a", hparams={"lr": 1.0}, seed=s, ttt=None, status="diverged", targets=targets,
                metrics={"val_accuracy": 0.1}, error="loss became nan"),
            row(optimizer="opt.a", hparams={"lr": 0.1}, seed=s, ttt=2.0, targets=targets,
                metrics={"val_accuracy": 0.91}),
            row(optimizer="opt.a", hparams={"lr": 0.01}, seed=s, ttt=5.0 if s else None, targets=targets,
                metrics={"val_accuracy": 0.93 if s else 0.85}),
            row(optimizer="opt.a", hparams={"lr": 0.001}, seed=s, ttt=None, targets=targets,
                metrics={"val_accuracy": 0.7}),
            row(optimizer="opt.b", seed=s, ttt=3.0, targets=targets, metrics={"val_accuracy": 0.95}),
        ]
    df = frame(rows)
    tuning = analysis.tuning_summary(df)
    assert len(tuning) == 1  # opt.b ran one setting only
    t = tuning[0]
    assert t["optimizer"] == "opt.a" and t["settings"] == 4
    assert t["best_label"] == "opt.a(lr=0.1)" and t["best_hparams"] == {"lr": 0.1}
    assert t["selection_metric"] == "val_accuracy" and t["best_value"] == pytest.approx(0.91)
    assert t["settings_reaching_target"] == 2 and t["sensitivity"] == 0.5
    settings = {r["label"]: r for r in analysis.settings_summary(df) if r["optimizer"] == "opt.a"}
    assert settings["opt.a(lr=0.01)"]["reaches_target"] and not settings["opt.a(lr=0.001)"]["reaches_target"]
    # the profile represents opt.a by its best setting: cost 2.0 against opt.b's 3.0
    costs = analysis.profile_costs(df)["training"]
    assert costs.loc["p.one", "opt.a"] == 2.0 and costs.loc["p.one", "opt.b"] == 3.0
    by_label = analysis.profile_costs(df, by="label")["training"]
    assert by_label.shape == (1, 5)


def test_ties_on_success_and_cost_are_broken_by_the_validation_metric():
    targets = {"val_loss": 0.0}  # never reached
    rows = [row(optimizer="opt.a", hparams={"lr": lr}, seed=0, ttt=None, targets=targets,
                metrics={"val_loss": v}) for lr, v in ((0.1, 0.5), (0.01, 0.2), (0.001, 0.9))]
    t = analysis.tuning_summary(frame(rows))[0]
    assert t["best_label"] == "opt.a(lr=0.01)" and t["settings_reaching_target"] == 0


# --------------------------------------------------------------------------- terminal
def test_terminal_table_escapes_markup_in_names():
    rows = analysis.leaderboard(frame([row(problem="[bold]p[/bold]", optimizer="[red]x", seed=0, ttt=1.0)]))
    buf = io.StringIO()
    print_leaderboard(rows, Console(file=buf, width=200, color_system=None), title="[t]")
    text = buf.getvalue()
    assert "[bold]p[/bold]" in text and "[red]x" in text and "[t]" in text
    assert leaderboard_table(rows).row_count == 1


def _table_lines(text: str) -> list[str]:
    """The leaderboard's table lines (between the first border and the caption)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return lines[start:end + 1]


def test_show_merges_directories(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, host in ((a, "h1"), (b, "h2")):
        for s in range(3):
            write_trial(d, row(seed=s, ttt=1.0 + s, host=host), [(0, 0.0, "loss", 1.0), (10, 1.0, "loss", 1e-4)])
    assert len(read_trials(a, b)) == 6
    assert main(["show", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "6 target" in out and "opt.a" in out
    assert main(["show", str(tmp_path / "missing")]) == 2


def test_run_ends_with_the_leaderboard_of_show(tmp_path, write_suite, capsys):
    suite = write_suite("""
name = "tiny"
seeds = [0, 1]
[[problems]]
name = "synthetic.quadratic"
params = { dim = 5, condition = 10.0 }
budget = { max_steps = 40 }
target = { loss = 1e-3 }
[[optimizers]]
name = "torch.sgd"
sweep = { lr = [0.1, 0.01] }
[[optimizers]]
name = "torch.adam"
hparams = { lr = 0.05 }
""")
    out = tmp_path / "res"
    assert main(["run", str(suite), "--out", str(out)]) == 0
    run_text = capsys.readouterr().out
    assert main(["show", str(out)]) == 0
    show_text = capsys.readouterr().out
    assert _table_lines(run_text)[1:] == _table_lines(show_text)[1:]  # same rows (titles differ)
    assert "best setting" in run_text and "best setting" in show_text  # the sweep's summary
    assert run_text[run_text.index("Hyperparameter sweeps"):].split("results:")[0].strip() == \
        show_text[show_text.index("Hyperparameter sweeps"):].strip()


def test_batched_statistics_equal_one_list_at_a_time():
    """leaderboard computes medians, IQRs and bootstrap intervals of all groups at once
    (analysis.batch_stats): bitwise the values of _stats on each list, ties, Nones and
    infinities included."""
    import numpy as np

    from bench_core import analysis

    rng = np.random.default_rng(3)
    lists = []
    for _ in range(400):
        n = int(rng.integers(0, 12))
        values = list(np.round(rng.normal(size=n), int(rng.integers(0, 3))))
        if n and rng.random() < 0.1:
            values[0] = None
        if n and rng.random() < 0.05:
            values[-1] = float("inf")
        lists.append(values)
    assert analysis.batch_stats(lists) == [analysis._stats(v) for v in lists]
    costs = [[float(x) for x in rng.choice([1.0, 2.5, np.inf], size=int(rng.integers(0, 7)))] for _ in range(100)]
    assert analysis.batch_medians(costs) == [float(np.median(c)) if c else math.inf for c in costs]
