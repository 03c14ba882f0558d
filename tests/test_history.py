"""`bench history`: series matched on the trial key across commits, commits in git order, one
point per results directory (never pooled), seeds paired between consecutive points, times
against the run effect, SVG plot."""
from __future__ import annotations

import hashlib
import json
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from bench_core import history
from bench_core.cli import main
from bench_core.store import to_json, write_trial

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DIRECTIONS = {"loss": "min", "val_accuracy": "max"}


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


def _hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _write_run(out, commit, values, ended_at=T0, metric="loss", steps=None, problem="synthetic.quadratic",
               optimizer="torch.adamw", device="cpu", times=None, load=0.5, budget=None, directions=None):
    """A results directory with one trial per seed at `commit`: values[seed] of `metric`."""
    budget = budget or {"max_steps": 100}
    key_id = _hash([problem, optimizer, device, budget])
    code = commit[:8]
    for seed, value in enumerate(values):
        write_trial(out, {
            "schema_version": 2, "run_id": f"r-{out}", "trial_id": _hash([key_id, seed, code]),
            "key_id": key_id, "code_id": code, "suite": "s", "problem": problem, "problem_params": "{}",
            "kind": "training", "optimizer": optimizer, "hparams": "{}", "label": optimizer, "seed": seed,
            "device": device, "dtype": "float32", "threads": 1, "budget": to_json(budget),
            "targets": '{"loss": 1e-6}', "directions": to_json(directions or DIRECTIONS), "eval": "{}",
            "status": "ok", "steps": 100, "train_time_s": 1.0 if times is None else times[seed],
            "steps_to_target": None if steps is None else steps[seed], "time_to_target_s": None,
            "metrics": {"loss": 1.0, metric: value}, "counters": {}, "git_commit": commit, "git_dirty": False,
            "load_avg": load, "cpu_count": 2,
            "started_at": ended_at - timedelta(seconds=1), "ended_at": ended_at}, [])
    return str(out)


@pytest.fixture
def runs(tmp_path, repo):
    """Three results dirs, one per commit, written newest commit first (so ended_at order is
    the reverse of git order); the newest commit doubles the loss, the middle one is noise."""
    path, commits = repo
    losses = [[1.00, 1.02, 0.98], [1.01, 0.99, 1.00], [2.00, 2.03, 1.98]]
    dirs = []
    for i, (commit, loss) in enumerate(zip(commits, losses)):
        dirs.append(_write_run(tmp_path / f"run{i}", commit, loss, T0 - timedelta(hours=i),
                               steps=[100 + i, 100 + i, 100 + i]))
    return path, commits, dirs


def test_commits_in_git_order_and_jump_flagged(runs):
    path, commits, dirs = runs
    series, ordering = history.build_history(history.read_runs(*reversed(dirs)), "final", repo=path)
    assert ordering == "git"
    (s,) = series
    assert s.metric == "loss" and s.direction == "min"
    assert [p.commit for p in s.points] == commits
    assert [p.flag for p in s.points] == ["", "", "worse"]
    assert s.points[2].change == pytest.approx(2.0033 / 1.0 - 1, rel=1e-3)
    assert s.points[0].values == [1.00, 1.02, 0.98]
    assert [p.source for p in s.points] == dirs


def test_direction_is_the_recorded_one(tmp_path, repo):
    path, commits = repo
    up = {"loss": "max"}
    dirs = [_write_run(tmp_path / f"d{i}", c, [v, v + 0.01, v - 0.01], directions=up)
            for i, (c, v) in enumerate(zip(commits, [1.0, 1.0, 2.0]))]
    series, _ = history.build_history(history.read_runs(*dirs), "loss", repo=path)
    assert [p.flag for p in series[0].points] == ["", "", "better"]
    unknown = [_write_run(tmp_path / f"u{i}", c, [v, v + 0.01, v - 0.01], directions={"val_loss": "min"},
                          metric="score") for i, (c, v) in enumerate(zip(commits, [1.0, 1.0, 2.0]))]
    series, _ = history.build_history(history.read_runs(*unknown), "score", repo=path)
    p = series[0].points[2]
    assert series[0].direction is None and p.flag == "" and "not judged" in p.note  # never guessed


def test_val_accuracy_rising_on_every_seed_is_flagged(tmp_path, repo):
    """The issue's example: the old unpaired test over pooled directories did not flag it."""
    path, commits = repo
    a = _write_run(tmp_path / "a", commits[0], [0.90, 0.91, 0.92], metric="val_accuracy")
    b = _write_run(tmp_path / "b", commits[1], [0.93, 0.95, 0.925], metric="val_accuracy")
    series, _ = history.build_history(history.read_runs(a, b), "val_accuracy", repo=path)
    p = series[0].points[1]
    assert p.flag == "better" and "3 paired seed(s), all moved the same way" in p.note
    assert p.change == pytest.approx(0.025 / 0.91, rel=1e-6)
    # on a GPU the values are not reproducible: the paired k-standard-error rule decides
    ga = _write_run(tmp_path / "ga", commits[0], [0.90, 0.91, 0.92], metric="val_accuracy", device="cuda")
    gb = _write_run(tmp_path / "gb", commits[1], [0.93, 0.94, 0.95], metric="val_accuracy", device="cuda")
    series, _ = history.build_history(history.read_runs(ga, gb), "val_accuracy", repo=path)
    assert series[0].points[1].flag == "better"  # identical paired differences: beyond any k


def test_k_applies_to_values_that_are_not_reproducible(tmp_path, repo):
    path, commits = repo
    a = _write_run(tmp_path / "a", commits[0], [1.0, 1.1, 0.9], device="cuda")
    b = _write_run(tmp_path / "b", commits[1], [1.3, 1.2, 1.25], device="cuda")
    assert history.build_history(history.read_runs(a, b), "loss", repo=path)[0][0].points[1].flag == "worse"
    series, _ = history.build_history(history.read_runs(a, b), "loss", repo=path, k=1000.0)
    assert series[0].points[1].flag == ""  # the noise over seeds swallows it
    ca = _write_run(tmp_path / "ca", commits[0], [1.0, 1.1, 0.9])
    cb = _write_run(tmp_path / "cb", commits[1], [1.3, 1.2, 1.25])
    series, _ = history.build_history(history.read_runs(ca, cb), "loss", repo=path, k=1000.0)
    assert series[0].points[1].flag == "worse"  # on the CPU: every seed got worse, a real change


def test_deterministic_metric_changes_flagged_beyond_rel_tol(runs):
    path, commits, dirs = runs
    series, _ = history.build_history(history.read_runs(*dirs), "steps_to_target", repo=path, rel_tol=0.001)
    assert [p.median for p in series[0].points] == [100, 101, 102]
    assert [p.flag for p in series[0].points] == ["", "worse", "worse"]  # no noise: any change
    series, _ = history.build_history(history.read_runs(*dirs), "steps_to_target", repo=path, rel_tol=0.05)
    assert [p.flag for p in series[0].points] == ["", "", ""]


def test_seeds_disagreeing_on_a_deterministic_change_is_changed(tmp_path, repo):
    path, commits = repo
    a = _write_run(tmp_path / "a", commits[0], [1.0, 1.0, 1.0])
    b = _write_run(tmp_path / "b", commits[1], [1.5, 0.8, 0.9])
    p = history.build_history(history.read_runs(a, b), "loss", repo=path)[0][0].points[1]
    assert p.flag == "changed" and "deterministic" in p.note


def test_directories_of_one_commit_are_points_compared_as_aa(tmp_path, repo):
    path, commits = repo
    a1 = _write_run(tmp_path / "a1", commits[0], [1.0, 1.1, 0.9], T0)
    a2 = _write_run(tmp_path / "a2", commits[0], [1.0, 1.1, 0.9], T0 + timedelta(minutes=5))
    b = _write_run(tmp_path / "b", commits[1], [1.2, 1.3, 1.1], T0 + timedelta(minutes=10))
    (s,) = history.build_history(history.read_runs(b, a2, a1), "loss", repo=path)[0]
    assert [(p.commit, p.source) for p in s.points] == [(commits[0], a1), (commits[0], a2), (commits[1], b)]
    assert [len(p.values) for p in s.points] == [3, 3, 3]  # never pooled into 6 values
    assert [p.flag for p in s.points] == ["", "", "worse"]
    odd = _write_run(tmp_path / "odd", commits[0], [1.3, 1.4, 1.2], T0 + timedelta(minutes=5))
    (s,) = history.build_history(history.read_runs(a1, odd), "loss", repo=path)[0]
    assert s.points[1].flag == "noise" and "same code" in s.points[1].note  # never better/worse


def test_series_match_on_the_trial_key(tmp_path, repo):
    path, commits = repo
    dirs = [_write_run(tmp_path / "a", commits[0], [1.0, 1.0, 1.0]),
            _write_run(tmp_path / "b", commits[1], [1.0, 1.0, 1.0]),
            _write_run(tmp_path / "c", commits[1], [5.0, 5.0, 5.0], budget={"max_steps": 10})]
    series, _ = history.build_history(history.read_runs(*dirs), "loss", repo=path)
    assert len(series) == 2  # same problem and optimizer, another budget: another key
    assert sorted(len(s.points) for s in series) == [1, 2]
    assert series[0].optimizer != series[1].optimizer  # labels tell the keys apart
    assert all(p.flag == "" for s in series for p in s.points)


def test_times_are_judged_against_the_run_effect(tmp_path, repo):
    path, commits = repo
    noise = [1.0, 1.02, 0.98]
    keys = [(p, o) for p in ("p.a", "p.b") for o in ("o.x", "o.y", "o.z")]

    def write(name, commit, factor, slow=None, load=0.5, end=T0):
        for problem, opt in keys:
            f = factor * (1.3 if opt == slow else 1.0)
            _write_run(tmp_path / name, commit, [1.0] * 3, end, problem=problem, optimizer=opt,
                       times=[f * n for n in noise], load=load)
        return str(tmp_path / name)

    a = write("a", commits[0], 1.0)
    b = write("b", commits[1], 2.0, end=T0 + timedelta(hours=1))  # a whole run twice slower
    c = write("c", commits[2], 2.0, slow="o.y", end=T0 + timedelta(hours=2))
    series, _ = history.build_history(history.read_runs(a, b, c), "train_time_s", repo=path)
    flags = {(s.problem, s.optimizer): [p.flag for p in s.points] for s in series}
    assert flags[("p.a", "o.x")] == ["", "", ""] and flags[("p.a", "o.y")] == ["", "", "worse"]
    assert flags[("p.b", "o.y")] == ["", "", "worse"]
    point = next(s for s in series if s.optimizer == "o.y").points[2]
    assert "over the run effect" in point.note
    # --optimizer chooses what is shown; the run effect is still taken over every series
    assert main(["history", a, b, c, "--metric", "train_time_s", "--optimizer", "o.y", "--repo", str(path),
                 "--fail-on-worse"]) == 1
    loaded = write("d", commits[2], 2.0, slow="o.y", load=4.0, end=T0 + timedelta(hours=2))
    series, _ = history.build_history(history.read_runs(a, b, loaded), "train_time_s", repo=path)
    assert all(p.flag == "" for s in series for p in s.points)
    assert "not judged: ran at load 4.0 on 2 CPUs" in series[0].points[2].note
    series, _ = history.build_history(history.read_runs(a, b, loaded), "train_time_s", repo=path,
                                      judge_loaded=True)
    assert any(p.flag == "worse" for s in series for p in s.points)


def test_unknown_commits_fall_back_to_end_time(runs, tmp_path):
    path, commits, dirs = runs
    assert history.git_order(commits, path) == commits
    assert history.git_order(commits + ["0" * 40], path) is None
    not_a_repo = tmp_path / "empty"
    not_a_repo.mkdir()
    series, ordering = history.build_history(history.read_runs(*dirs), "loss", repo=not_a_repo)
    assert ordering == "ended_at"
    assert [p.commit for p in series[0].points] == list(reversed(commits))


def test_flag_changes_counts_seeds_reaching_target():
    pts = [history.Point("a", False, {0: 1.0, 1: 1.0}, 2, 2), history.Point("b", False, {0: 1.0, 1: 1.0}, 2, 1)]
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
    assert main(["history", *dirs, "--alpha", "0"]) == 2


def test_a_commit_read_from_a_results_file_never_reaches_git_as_an_option(tmp_path):
    """A git_commit value such as --output=FILE (a hostile results file) is not passed to git;
    a real commit id is, after --end-of-options."""
    import subprocess

    from bench_core.history import commit_subjects, is_commit_id

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q",
                    "--allow-empty", "-m", "the subject"], check=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    target = tmp_path / "overwritten"
    hostile = [f"--output={target}", "-p", "HEAD", "", None]
    assert not any(is_commit_id(h) for h in hostile) and is_commit_id(head)
    assert commit_subjects([*hostile, head], repo) == {head: "the subject"}
    assert not target.exists()
