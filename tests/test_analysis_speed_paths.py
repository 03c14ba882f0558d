"""The fast paths of the analysis commands (issue 16): every group computed at once
(bench_core.groups) gives bitwise the numbers of one group at a time; reading only some columns
gives the same analysis as reading every column, before and after compaction; the terminal
tables of `bench show`, `compare` and `history` are bounded by --rows and say what they leave
out, while the machine formats keep every row."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench_core import analysis, compaction, compare, groups, history, store
from bench_core.cli import main
from bench_core.selection import setting_rank

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of the repository, not an installed package

from benchmarks.large_results import generate, trial_rows


def test_rank_quantiles_are_np_quantile_of_the_bootstrap_medians_bitwise():
    rng = np.random.default_rng(3)
    for n in range(2, 9):
        arr = np.round(rng.normal(size=(40, n)), 1)  # ties within rows
        arr[0] = np.arange(n)  # no ties
        draw = np.random.default_rng(0).integers(0, n, size=(groups.BOOTSTRAP_SAMPLES, n))
        lo, hi = groups._rank_quantiles(arr, draw, (0.025, 0.975))
        want = np.quantile(np.median(arr[:, draw], axis=2), [0.025, 0.975], axis=1)
        assert lo.tolist() == want[0].tolist() and hi.tolist() == want[1].tolist(), n


def random_trials(seed: int = 1) -> pd.DataFrame:
    """Trials of 3 problems x 2 optimizers x 3 settings, 1-11 seeds each, with misses, failures,
    ties, missing metrics and two directions."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(3):
        for o in range(2):
            for k in range(3):
                for s in range(int(rng.integers(1, 12))):
                    status = rng.choice(["target_reached", "ok", "diverged"], p=[0.6, 0.3, 0.1])
                    t = float(np.round(rng.uniform(1, 2), 1)) if status == "target_reached" else None
                    metrics = {} if rng.random() < 0.1 else {"loss": float(np.round(rng.uniform(0, 1), 2)),
                                                             "val_acc": float(rng.uniform(0, 1))}
                    rows.append({
                        "key_id": f"k{p}{o}{k}", "code_id": "c", "problem": f"p{p}", "problem_params": "{}",
                        "kind": "training", "optimizer": f"opt{o}", "hparams": json.dumps({"lr": 10.0 ** -k}),
                        "seed": s, "status": str(status), "error": "boom" if status == "diverged" else None,
                        "time_to_target_s": t, "steps_to_target": None if t is None else int(t * 10),
                        "train_time_s": float(rng.uniform(1, 3)), "steps": 50,
                        "metrics": metrics, "targets": '{"val_acc": 0.9}' if p == 2 else '{"loss": 0.1}',
                        "directions": '{"loss": "min", "val_acc": "max"}', "git_commit": "abc", "git_dirty": False,
                        "host": "h", "dtype": "float32", "device": "cpu", "threads": 1, "budget": "{}",
                        "eval": "{}", "load_avg": 0.5, "cpu_count": 2})
    return pd.DataFrame(rows)


def test_leaderboard_statistics_are_one_group_at_a_time_bitwise():
    trials = random_trials()
    board = {(r["problem"], r["optimizer_name"], r["hparams"]): r for r in analysis.leaderboard(trials)}
    for (p, o, hp), g in trials.groupby(["problem", "optimizer", "hparams"]):
        r = board[(p, o, hp)]
        hit = g["status"] == "target_reached"
        want = analysis._stats(g.loc[hit, "time_to_target_s"].tolist())
        assert (r["time_to_target_iqr"], r["time_to_target_ci"]) == ((want["q1"], want["q3"]),
                                                                     (want["ci_low"], want["ci_high"]))
        values = [m.get(r["metric"]) for m in g["metrics"]]
        want = analysis._stats(values)
        assert (r["final_metric"], r["final_metric_ci"]) == (want["median"], (want["ci_low"], want["ci_high"]))
        costs = [v if h else math.inf for v, h in zip(g["time_to_target_s"], hit)]
        assert r["cost"] == float(np.median(costs))
        assert r["statuses"] == dict(sorted(g["status"].value_counts().items(), key=lambda kv: (-kv[1], kv[0])))
        assert r["errors"] == [e for e in g["error"] if isinstance(e, str)]
        assert r["higher_is_better"] == (r["metric"] == "val_acc")


def test_a_bounded_leaderboard_is_the_full_one_cut_per_problem():
    from bench_core.cli.tables import best_per_problem, settings_left_out

    for seed in (1, 2, 3):
        trials = analysis.setting_labels(random_trials(seed))
        full = analysis.leaderboard(trials)
        for n in (1, 2, 4, 100):
            shown, left, problems = best_per_problem(full, n)
            assert analysis.leaderboard(trials, per_problem=n) == shown, (seed, n)
            assert settings_left_out(trials, n) == (left, problems), (seed, n)
    assert settings_left_out(trials, 2) == (12, 3)  # 6 settings on each of 3 problems


def test_settings_summary_picks_the_best_setting_by_selection_setting_rank():
    trials = random_trials(2)
    summary = analysis.settings_summary(trials)
    labelled = analysis.setting_labels(trials)
    for (p, o), rows in pd.DataFrame(summary).groupby(["problem", "optimizer"]):
        ranks = {}
        for label, g in labelled[(labelled["problem_label"] == p) & (labelled["optimizer"] == o)].groupby("label"):
            metric = rows["selection_metric"].iloc[0]
            direction = "max" if rows["higher_is_better"].iloc[0] else "min"
            ranks[label] = setting_rank(g["status"].tolist(), g["steps_to_target"].tolist(),
                                        [m.get(metric) for m in g["metrics"]], direction, label)
        assert rows.loc[rows["best"], "label"].tolist() == [min(ranks, key=ranks.get)]
        assert rows["label"].tolist() == sorted(ranks, key=ranks.get)  # best first, by the one rule


N = 100  # 2 problems x 10 optimizers x 5 seeds


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed")
    base, head = root / "base", root / "head"
    generate(base, trial_rows(N), points=4, jobs=1)
    generate(head, trial_rows(N, slower=1.3, code="c0de2"), points=4, jobs=1)
    return root, base, head


def _analysis(base, head, root, columns: bool):
    cols = (lambda c: c) if columns else (lambda c: None)
    b = store.read_trials(base, columns=cols(analysis.ANALYSIS_COLUMNS))
    cb, ch = (store.read_trials(d, columns=cols(compare.COLUMNS)) for d in (base, head))
    series, _ = history.build_history(history.read_runs(base, head, columns=cols(history.COLUMNS)),
                                      "time_to_target_s", repo=root)
    return repr((analysis.leaderboard(b), analysis.settings_summary(b), analysis.ranking(b),
                 compare.compare(cb, ch).to_dict(), [repr(s) for s in series]))


def test_reading_only_the_columns_used_changes_nothing_before_and_after_compaction(dirs, tmp_path):
    import shutil

    root, base, head = dirs
    base, head = (Path(shutil.copytree(d, tmp_path / d.name)) for d in (base, head))
    every = _analysis(base, head, root, columns=False)
    assert _analysis(base, head, root, columns=True) == every
    for d in (base, head):
        compaction.compact(d)
    assert store.current_generation(base) == 1
    assert _analysis(base, head, root, columns=True) == every
    picked = store.read_trials(base, columns=["status", "metrics"])
    assert list(picked.columns) == ["trial_id", "status", "metrics"] and len(picked) == N
    with pytest.raises(ValueError, match="no trial column"):
        store.read_trials(base, columns=["colour"])


def test_show_compare_history_tables_are_bounded_by_rows(dirs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    _, base, head = dirs
    settings = len(analysis.leaderboard(store.read_trials(base)))  # 2 problems x 10 optimizers
    assert main(["show", str(base), "--rows", "1"]) == 0
    out = capsys.readouterr().out
    problems = len({r["problem"] for r in trial_rows(N)})
    assert f"{settings - problems} more setting(s) on {problems} problem(s) not shown" in out
    assert "--rows all shows every one" in out
    assert main(["show", str(base), "--rows", "all"]) == 0
    assert "not shown" not in capsys.readouterr().out
    assert main(["show", str(base), "--rows", "1", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == settings + 1  # every row, and the header
    assert main(["show", str(base), "--rows", "0"]) == 2
    assert "--rows: expected a positive number or 'all'" in capsys.readouterr().err
    main(["compare", str(base), str(head), "--rows", "1"])
    out = capsys.readouterr().out
    assert f"{settings - problems} more key(s) on {problems} problem(s) not shown" in out
    assert main(["history", str(base), str(head), "--metric", "time_to_target_s", "--rows", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{settings - 2 * problems} more series on {problems} problem(s) not shown" in out
    assert out.count("commits in") == 2 * problems  # one table per series shown


def test_bench_run_prints_a_leaderboard_bounded_by_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    suite = tmp_path / "rows.toml"
    suite.write_text('name = "rows"\nseeds = [0]\n[[problems]]\nname = "synthetic.quadratic"\n'
                     'params = { dim = 3 }\nbudget = { max_steps = 5 }\n[[optimizers]]\nname = "torch.sgd"\n'
                     'sweep = { lr = [0.1, 0.01, 0.001] }\n')
    assert main(["run", str(suite), "--out", str(tmp_path / "res"), "--rows", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 more setting(s) on 1 problem(s) not shown (the first 1 per problem are)" in out
    assert "bench show DIR --format csv or json gives them as data" in out
    assert main(["run", str(suite), "--out", str(tmp_path / "res"), "--rows", "all"]) == 0
    assert "not shown" not in capsys.readouterr().out


def test_show_suggests_compaction_for_many_per_trial_files(dirs, capsys, monkeypatch):
    from bench_core.cli import show

    _, base, _ = dirs
    n = store.per_trial_files(base)
    assert n == N  # every trial of the fixture is its own file
    monkeypatch.setattr(show, "HINT_FILES", n)
    assert main(["show", str(base)]) == 0
    assert f"note: {base} holds {n} per-trial files; `bench compact {base}` merges them" in capsys.readouterr().err
    monkeypatch.setattr(show, "HINT_FILES", n + 1)
    assert main(["show", str(base)]) == 0
    assert "bench compact" not in capsys.readouterr().err
    assert store.per_trial_files(base / "nowhere") == 0
