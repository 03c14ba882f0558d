"""`bench history`: commits in git order, changes beyond the noise across seeds flagged, SVG plot."""
from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from bench_core import history
from bench_core.cli import main
from bench_core.store import read_trials, write_trial


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A git repository with three commits; returns (path, [oldest, middle, newest])."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q")
    _git(path, "config", "user.email", "t@example.invalid")
    _git(path, "config", "user.name", "t")
    commits = []
    for i in range(3):
        _git(path, "commit", "-q", "--allow-empty", "-m", f"commit {i}")
        commits.append(_git(path, "rev-parse", "HEAD"))
    return path, commits


def _write_run(out, commit, losses, ended_at, steps=None, problem="synthetic.quadratic",
               optimizer="torch.adamw"):
    """A results directory with one trial per seed at `commit`, with these final losses."""
    for seed, loss in enumerate(losses):
        write_trial(out, {
            "run_id": "r", "trial_id": f"{commit[:8]}-{problem}-{optimizer}-{seed}", "suite": "s",
            "problem": problem, "problem_params": "{}", "kind": "training", "optimizer": optimizer,
            "hparams": "{}", "label": optimizer, "seed": seed, "device": "cpu", "dtype": "float32",
            "budget": "{}", "targets": '{"loss": 1e-6}', "status": "ok",
            "steps": 100, "train_time_s": 1.0, "steps_to_target": None if steps is None else steps[seed],
            "time_to_target_s": None, "metrics": {"loss": loss}, "counters": {},
            "git_commit": commit, "git_dirty": False,
            "started_at": ended_at - timedelta(seconds=1), "ended_at": ended_at}, [])
    return str(out)


@pytest.fixture
def runs(tmp_path, repo):
    """Three results dirs, one per commit, written newest commit first (so ended_at order is
    the reverse of git order); the newest commit doubles the loss, the middle one is noise."""
    path, commits = repo
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    losses = [[1.00, 1.02, 0.98], [1.01, 0.99, 1.00], [2.00, 2.03, 1.98]]
    dirs = []
    for i, (commit, loss) in enumerate(zip(commits, losses)):
        dirs.append(_write_run(tmp_path / f"run{i}", commit, loss, t0 - timedelta(hours=i),
                               steps=[100 + i, 100 + i, 100 + i]))
    return path, commits, dirs


def test_commits_in_git_order_and_jump_flagged(runs):
    path, commits, dirs = runs
    series, ordering = history.build_history(read_trials(*reversed(dirs)), "final", repo=path)
    assert ordering == "git"
    (s,) = series
    assert s.metric == "loss"
    assert [p.commit for p in s.points] == commits
    assert [p.flag for p in s.points] == ["", "", "worse"]
    assert s.points[2].change == pytest.approx(2.0033 / 1.0 - 1, rel=1e-3)
    assert s.points[0].values == [1.00, 1.02, 0.98]


def test_direction_and_threshold(runs):
    path, commits, dirs = runs
    trials = read_trials(*dirs)
    series, _ = history.build_history(trials, "loss", repo=path, higher_is_better=lambda m: True)
    assert [p.flag for p in series[0].points] == ["", "", "better"]
    series, _ = history.build_history(trials, "loss", repo=path, k=1000.0)  # noise swallows the jump
    assert [p.flag for p in series[0].points] == ["", "", ""]


def test_deterministic_metric_changes_flagged_beyond_rel_tol(runs):
    path, commits, dirs = runs
    series, _ = history.build_history(read_trials(*dirs), "steps_to_target", repo=path, rel_tol=0.001)
    assert [p.median for p in series[0].points] == [100, 101, 102]
    assert [p.flag for p in series[0].points] == ["", "worse", "worse"]  # no noise: any change
    series, _ = history.build_history(read_trials(*dirs), "steps_to_target", repo=path, rel_tol=0.05)
    assert [p.flag for p in series[0].points] == ["", "", ""]


def test_unknown_commits_fall_back_to_end_time(runs, tmp_path):
    path, commits, dirs = runs
    assert history.git_order(commits, path) == commits
    assert history.git_order(commits + ["0" * 40], path) is None
    not_a_repo = tmp_path / "empty"
    not_a_repo.mkdir()
    series, ordering = history.build_history(read_trials(*dirs), "loss", repo=not_a_repo)
    assert ordering == "ended_at"
    assert [p.commit for p in series[0].points] == list(reversed(commits))


def test_flag_changes_counts_seeds_reaching_target():
    pts = [history.Point("a", False, [1.0, 1.0], 2, 2), history.Point("b", False, [1.0, 1.0], 2, 1)]
    history.flag_changes(pts)
    assert [p.flag for p in pts] == ["", "changed"]


def test_cli_prints_plots_and_fails_on_worse(runs, tmp_path, capsys):
    path, commits, dirs = runs
    svg = tmp_path / "plot" / "history.svg"
    assert main(["history", *dirs, "--repo", str(path), "--plot", str(svg)]) == 0
    out = capsys.readouterr().out
    assert commits[2][:10] in out and "worse" in out and "commit 2" in out
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    circles = [c for c in root.iter() if c.tag.endswith("circle")]
    assert len(circles) == 3 and sum(c.get("fill") == "#d62728" for c in circles) == 1
    assert main(["history", *dirs, "--repo", str(path), "--fail-on-worse"]) == 1


def test_cli_bad_input(runs, tmp_path, capsys):
    path, commits, dirs = runs
    assert main(["history", str(tmp_path / "missing")]) == 2
    assert "not a results directory" in capsys.readouterr().err
    assert main(["history", *dirs, "--metric", "nope"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err
    assert main(["history", *dirs, "--problem", "pde.*"]) == 2
