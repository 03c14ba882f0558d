"""Issue 14 ("Trustworthy numbers"): one test per example of a wrong number that fae7822 printed
with no warning; each of those fails on fae7822 and passes with the trial model
(bench_core/trial.py). A few tests marked "guard" check an edge of a new rule (precedence, a
refused value, a control case) and already held on fae7822.

Covered elsewhere, not repeated here:
- linear solvers: a direct solve returning the answer without any callback ends target_reached:
  tests/test_linear_stall.py::test_a_direct_solve_without_callback_reaches_the_target (and the
  iteration counters of diverged and timed-out solves, in the same file);
- pluggy: a misspelled hook implementation is reported:
  tests/test_core_registry.py::test_misspelled_hook_implementations_are_reported (and observer
  wrappers and ordering, in the same file).

Timing is never asserted against the wall clock: the accounting tests replace the trial clock
with a virtual one that each loss evaluation advances by a known cost.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import bench_core
from bench_core import accounting, analysis, code_identity, selection, threads, tuning
from bench_core import registry as registry_module
from bench_core.cli import main
from bench_core.errors import BenchInputError
from bench_core.executors.local import LocalExecutor
from bench_core.registry import build_registry
from bench_core.runner import run_trial
from bench_core.session import run_suite
from bench_core.store import read_curves, read_trials, write_trial
from bench_core.suite import load_suite, parse_suite
from bench_core.trial import Target, Trial, make_row

# --------------------------------------------------------------------------- a test plugin
#: The virtual trial clock: bench_core.accounting.Clock.now reads it in the accounting tests.
CLOCK = [0.0]
#: Every Scalar problem built, last one last (to read what it saw inside its trial).
BUILT: list = []


def _threads_seen() -> tuple[int, list]:
    """torch's intra-op threads and the thread count of every BLAS/OpenMP library, right now."""
    return torch.get_num_threads(), sorted({lib["num_threads"] for lib in threadpool_info()})


class Scalar(bench_core.TrainingProblem):
    """x = 1 with loss x² (SGD with lr 0.5 reaches 0 in one step). Its first loss evaluation
    advances CLOCK by `first_cost`, each later one by `cost`: SOAP-like, an expensive step 1.
    It reports ``odd_score``, a metric no plugin declares a direction for, and records the
    threads it sees at its first loss evaluation."""

    def __init__(self, seed, device, dtype, first_cost: float = 100.0, cost: float = 1.0):
        self.x = torch.ones(1, device=device, dtype=dtype, requires_grad=True)
        self.first_cost, self.cost = first_cost, cost
        self.calls = 0
        self.threads_seen = None
        BUILT.append(self)

    def parameters(self):
        return [self.x]

    def loss(self, batch):
        self.calls += 1
        if self.threads_seen is None:
            self.threads_seen = _threads_seen()
        CLOCK[0] += self.first_cost if self.calls == 1 else self.cost
        return (self.x ** 2).sum()

    def evaluate(self):
        return {"loss": float((self.x ** 2).sum()), "odd_score": 1.0}


def _plugin():
    module = types.ModuleType("trust_test_plugin")

    @bench_core.hookimpl
    def bench_problems():
        return [bench_core.ProblemSpec("trust.scalar", "training", Scalar,
                                       params={"first_cost": 100.0, "cost": 1.0},
                                       reports=("loss", "odd_score"))]

    module.bench_problems = bench_problems
    return module


@pytest.fixture(scope="module")
def registry():
    reg = build_registry(plugins=[("trust_test_plugin", _plugin())])
    assert not [e for e in reg.errors if e.plugin == "trust_test_plugin"], reg.errors
    return reg


SGD = {"name": "torch.sgd", "hparams": {"lr": 0.5, "momentum": 0.0}}


def _trials(registry, *problems, optimizers=(SGD,), source="trust.toml", **top) -> list[Trial]:
    """The trials of a suite given as Python data (as TOML would give it)."""
    data = {"name": "trust", "problems": list(problems), "optimizers": list(optimizers), **top}
    return parse_suite(data, source, registry).trials


@pytest.fixture
def virtual_clock(monkeypatch):
    """Trial clocks read CLOCK instead of the wall clock."""
    CLOCK[0] = 0.0
    monkeypatch.setattr(accounting.Clock, "now", lambda self: CLOCK[0])
    return CLOCK


def _write(tmp_path: Path, text: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- threads
@pytest.mark.parametrize("n", [1, 2])
def test_a_trial_runs_with_its_thread_count_in_torch_and_the_blas_and_records_it(registry, n):
    with threadpool_limits(limits=n):  # what the BLAS libraries accept for n on this machine
        blas_expected = sorted({lib["num_threads"] for lib in threadpool_info()})
    outer = 3 - n  # the caller's setting differs from the trial's
    before = torch.get_num_threads()
    torch.set_num_threads(outer)
    try:
        with threadpool_limits(limits=outer):
            (trial,) = _trials(registry, {"name": "trust.scalar", "budget": {"max_steps": 2}}, threads=n)
            assert trial.threads == n
            row, _ = run_trial(trial, registry)
            assert torch.get_num_threads() == outer  # restored after the trial
        assert row["status"] in ("ok", "target_reached"), row["error"]
        assert BUILT[-1].threads_seen == (n, blas_expected)  # inside the trial
        assert row["threads"] == n and row["torch_threads"] == n
        blas = json.loads(row["blas"])
        assert blas and sorted({lib["num_threads"] for lib in blas}) == blas_expected
        assert {lib["user_api"] for lib in blas} >= {"blas"}
        assert row["load_avg"] is not None and row["load_avg"] >= 0
    finally:
        torch.set_num_threads(before)


def test_threads_come_from_the_suite_entry_or_override_and_are_part_of_the_key(registry):
    entry = {"name": "trust.scalar"}
    (default,) = _trials(registry, entry)
    (suite_wide,) = _trials(registry, entry, threads=2)
    (per_problem,) = _trials(registry, {**entry, "threads": 3}, threads=2)
    assert (default.threads, suite_wide.threads, per_problem.threads) == (1, 2, 3)  # default: 1 per trial
    assert len({default.key_id, suite_wide.key_id, per_problem.key_id}) == 3
    override = parse_suite({"name": "trust", "problems": [entry], "optimizers": [SGD], "threads": 2},
                           "trust.toml", registry, threads=4).trials  # bench run --threads
    assert override[0].threads == 4


QUAD_TOML = ('name = "t"\n[[problems]]\nname = "synthetic.quadratic"\nparams = { dim = 5 }\n'
             'budget = { max_steps = 2 }\n[[optimizers]]\nname = "torch.sgd"\n')


@pytest.fixture
def cli(registry, tmp_path, capsys, monkeypatch):
    """`bench` in this process, with the test registry: returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(registry_module, "_DEFAULT", registry)
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def test_bench_run_shows_the_thread_count_and_the_load_with_the_leaderboard(cli, tmp_path):
    # the issue: "torch_threads is in the row but shown nowhere"; README: "the leaderboard's
    # title shows them" (the thread count and the machine's load)
    path = _write(tmp_path, "threads = 2\n" + QUAD_TOML)
    code, out, err = cli("run", str(path), "--out", str(tmp_path / "out"))
    assert code == 0, err
    (row,) = read_trials(tmp_path / "out").to_dict("records")
    assert row["threads"] == 2 and row["torch_threads"] == 2
    flat = " ".join(out.split())
    assert re.search(r"threads\W{0,3}2\b", flat), out
    assert "load" in flat, out


def test_bench_run_threads_overrides_the_suites_threads(cli, tmp_path):
    # README: "threads = 1 ... (default 1; `bench run --threads N` overrides)"
    path = _write(tmp_path, "threads = 1\n" + QUAD_TOML)
    code, _, err = cli("run", str(path), "--out", str(tmp_path / "out"), "--threads", "2")
    assert code == 0, err
    (row,) = read_trials(tmp_path / "out").to_dict("records")
    assert row["threads"] == 2 and row["torch_threads"] == 2


def test_bench_run_warns_when_the_load_leaves_too_few_free_cores(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "load_average", lambda: 1000.0)
    warning = threads.load_warning(1)
    assert warning  # a load of 1000 leaves no free core on any machine
    code, out, err = cli("run", str(_write(tmp_path, QUAD_TOML)), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert warning in " ".join((out + " " + err).split())


def test_bench_run_reuse_stale_reuses_results_of_other_code_and_says_so(cli, tmp_path, monkeypatch):
    path, out = _write(tmp_path, QUAD_TOML), tmp_path / "out"
    assert cli("run", str(path), "--out", str(out))[0] == 0
    first = {p.stem for p in (out / "trials").glob("*.parquet")}
    _edit_bench_core(monkeypatch, "edited-source")
    code, stdout, err = cli("run", str(path), "--out", str(out), "--reuse-stale")
    assert code == 0, err
    assert {p.stem for p in (out / "trials").glob("*.parquet")} == first  # nothing ran
    assert re.search(r"reus|stale", stdout + err, re.IGNORECASE), stdout + err


_OPENMP_SCRIPT = """
import json, os, sys

at_torch_import = []


class Watch:  # notes OMP_WAIT_POLICY at the moment torch (and its OpenMP runtime) is imported
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not at_torch_import:
            at_torch_import.append(os.environ.get("OMP_WAIT_POLICY"))
        return None


sys.meta_path.insert(0, Watch())
from bench_core.cli import main

code = main(["run", "missing.toml"])
print(json.dumps([code, at_torch_import, os.environ.get("OMP_WAIT_POLICY"), os.environ.get("KMP_BLOCKTIME")]))
"""


def test_bench_tells_idle_openmp_threads_to_sleep_before_torch_loads(tmp_path):
    # bench_core/threads.py: "quiet_openmp() runs first thing in `bench`"; a user's own setting
    # (here KMP_BLOCKTIME) is kept.
    env = {k: v for k, v in os.environ.items() if k not in threads.QUIET_OPENMP}
    env["KMP_BLOCKTIME"] = "7"
    proc = subprocess.run([sys.executable, "-c", _OPENMP_SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    code, at_torch_import, policy, blocktime = json.loads(proc.stdout.strip().splitlines()[-1])
    assert code == 2  # the suite file is missing: bad input
    assert (policy, blocktime) == ("PASSIVE", "7")
    assert at_torch_import in ([], ["PASSIVE"])  # set before torch loaded, if it loaded at all


def test_bench_core_openmp_inherit_leaves_the_environment_alone():
    env = {k: v for k, v in os.environ.items() if k not in threads.QUIET_OPENMP}
    env[threads.OPT_OUT] = "inherit"
    script = "import os, bench_core; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('KMP_BLOCKTIME'))"
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "None"]


# --------------------------------------------------------------------------- dtype
def test_without_a_dtype_linear_systems_run_in_float64_and_training_in_float32(registry):
    trials = _trials(registry, {"name": "pde.poisson2d", "params": {"n": 8}},
                     {"name": "synthetic.quadratic", "params": {"dim": 5}},
                     optimizers=[{"name": "linear.cg"}, SGD])
    dtypes = {t.problem: t.dtype for t in trials}
    assert dtypes == {"pde.poisson2d": "float64", "synthetic.quadratic": "float32"}
    (cg,) = [t for t in trials if t.optimizer == "linear.cg"]
    row, _ = run_trial(Trial.from_dict({**cg.to_dict(), "targets": [Target("rel_residual", "min", 1e-12)]}),
                       registry)
    assert row["dtype"] == "float64"
    assert row["status"] == "target_reached", row["error"]  # float32 could not get there
    assert row["metrics"]["rel_residual"] <= 1e-12


def test_a_problem_entry_dtype_overrides_the_suites(registry):
    # guard: the precedence entry > suite > kind default
    trials = _trials(registry, {"name": "pde.poisson2d", "params": {"n": 8}, "dtype": "float64"},
                     {"name": "synthetic.quadratic", "params": {"dim": 5}},
                     optimizers=[{"name": "linear.cg"}, SGD], dtype="float32")
    assert {t.problem: t.dtype for t in trials} == {"pde.poisson2d": "float64", "synthetic.quadratic": "float32"}
    trials = _trials(registry, {"name": "synthetic.quadratic", "params": {"dim": 5}, "dtype": "float32"},
                     {"name": "pde.poisson2d", "params": {"n": 8}},
                     optimizers=[{"name": "linear.cg"}, SGD], dtype="float64")
    assert {t.problem: t.dtype for t in trials} == {"pde.poisson2d": "float64", "synthetic.quadratic": "float32"}


# --------------------------------------------------------------------------- target direction
BAD_TARGETS = [
    ("unreported", "synthetic.quadratic", "val_accuracy = 0.9",
     "problems[0].target.val_accuracy: problem 'synthetic.quadratic' does not report metric 'val_accuracy'"),
    ("unreported_test_accuracy", "synthetic.logreg", "test_accuracy = 0.99",
     "problems[0].target.test_accuracy: problem 'synthetic.logreg' does not report metric 'test_accuracy'"),
    ("no_direction", "trust.scalar", "odd_score = 0.5",
     "problems[0].target.odd_score: no plugin declares the direction of metric 'odd_score'"),
    ("nan", "synthetic.quadratic", "loss = nan", "problems[0].target.loss: expected a finite number"),
    ("inf", "synthetic.quadratic", "loss = inf", "problems[0].target.loss: expected a finite number"),
    ("minus_inf", "synthetic.quadratic", "loss = -inf", "problems[0].target.loss: expected a finite number"),
]


def _target_suite(problem: str, target: str) -> str:
    return (f'name = "t"\n[[problems]]\nname = "{problem}"\nbudget = {{ max_steps = 2 }}\n'
            f'target = {{ {target} }}\n[[optimizers]]\nname = "torch.sgd"\n')


@pytest.mark.parametrize("case, problem, target, message", BAD_TARGETS, ids=[b[0] for b in BAD_TARGETS])
def test_a_bad_target_is_refused_when_the_suite_is_parsed(registry, tmp_path, case, problem, target, message):
    path = _write(tmp_path, _target_suite(problem, target))
    with pytest.raises(BenchInputError) as info:
        load_suite(path, registry)
    assert str(path) in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case, problem, target, message", BAD_TARGETS, ids=[b[0] for b in BAD_TARGETS])
def test_a_bad_target_through_the_cli_is_exit_2_one_line_and_writes_nothing(
        registry, tmp_path, capsys, monkeypatch, case, problem, target, message):
    monkeypatch.setattr(registry_module, "_DEFAULT", registry)  # the CLI's registry knows trust.scalar
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, _target_suite(problem, target))
    code = main(["run", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message in err and str(path) in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "results").exists()


def test_a_higher_is_better_target_is_not_reached_at_step_0(registry, tmp_path):
    (trial,) = _trials(registry, {"name": "synthetic.logreg", "budget": {"max_steps": 2},
                                  "target": {"val_accuracy": 0.99}},
                       optimizers=[{"name": "torch.sgd", "hparams": {"lr": 1e-3}}])
    assert trial.targets == (Target("val_accuracy", "max", 0.99),)
    row, curve = run_trial(trial, registry)
    accuracy0 = [v for s, _, m, v in curve if m == "val_accuracy" and s == 0]
    assert accuracy0 and accuracy0[0] < 0.99  # the untrained model: nowhere near the target
    assert row["status"] == "ok", row["error"]
    assert row["steps"] == 2 and row["steps_to_target"] is None and row["time_to_target_s"] is None
    assert json.loads(row["directions"])["val_accuracy"] == "max"  # the direction used is recorded
    write_trial(tmp_path / "out", row, curve)
    (board,) = analysis.leaderboard(read_trials(tmp_path / "out"))
    assert board["metric"] == "val_accuracy" and board["higher_is_better"] is True
    assert board["success_rate"] == 0 and board["time_to_target_s"] is None


# --------------------------------------------------------------------------- code identity
def _quad_suite(registry, seeds=(0,)):
    return parse_suite({"name": "trust", "seeds": list(seeds),
                        "problems": [{"name": "synthetic.quadratic", "params": {"dim": 5},
                                      "budget": {"max_steps": 3}}],
                        "optimizers": [{"name": "torch.sgd", "hparams": {"lr": 0.1}}]},
                       "trust.toml", registry)


def _edit_bench_core(monkeypatch, tag: str):
    """Make the code identity see bench-core's source as edited (its source hash is `tag`)."""
    real = code_identity.component

    def edited(module_name):
        info = real(module_name)
        return {**info, "source_hash": tag} if module_name.split(".")[0] == "bench_core" else info
    monkeypatch.setattr(code_identity, "component", edited)


def test_trials_that_differ_only_in_their_code_share_the_key_not_the_id(registry):
    (trial,) = _quad_suite(registry).trials
    assert trial.code["bench_core"]["source_hash"]  # bench-core's code is in the identity
    assert trial.code["problem_plugin"]["module"] == "bench_synthetic"
    assert trial.code["optimizer_plugin"]["module"] == "bench_optim"
    code = json.loads(json.dumps(trial.code))
    code["optimizer_plugin"]["version"] = "9.9.9"  # a new version of the optimizer's plugin
    other = Trial.from_dict({**trial.to_dict(), "code": code})
    assert other.key_id == trial.key_id
    assert other.code_id != trial.code_id and other.trial_id != trial.trial_id


def test_a_rerun_after_a_code_change_runs_again_unless_stale_results_are_reused(registry, tmp_path, monkeypatch):
    out = tmp_path / "results"
    executor = LocalExecutor(registry)
    first = run_suite(_quad_suite(registry), out, executor=executor)
    assert (first.ran, first.skipped) == (1, 0)
    again = run_suite(_quad_suite(registry), out, executor=executor)
    assert (again.ran, again.skipped) == (0, 1)  # same code: complete

    _edit_bench_core(monkeypatch, "edited-source")
    edited = _quad_suite(registry)
    assert edited.trials[0].key_id == first.rows[0]["key_id"]
    rerun = run_suite(edited, out, executor=executor)
    assert (rerun.ran, rerun.skipped) == (1, 0)  # not "ran 0, skipped 1" with the old row shown
    assert rerun.reused_stale == {}
    ids = {p.stem for p in (out / "trials").glob("*.parquet")}
    assert ids == {first.rows[0]["trial_id"], rerun.rows[0]["trial_id"]}  # side by side
    both = read_trials(out)
    assert len(set(both["code_id"])) == 2
    board = analysis.leaderboard(both)  # old and new code: two rows, each seed counted once
    assert len(board) == 2 and [r["seeds"] for r in board] == [1, 1]
    assert len({r["optimizer"] for r in board}) == 2

    _edit_bench_core(monkeypatch, "edited-again")
    stale = _quad_suite(registry)
    reused = run_suite(stale, out, executor=executor, reuse_stale=True)
    assert reused.ran == 0 and reused.rows == []
    assert list(reused.reused_stale) == [stale.trials[0].trial_id]
    assert set(reused.reused_stale.values()) <= ids
    assert {p.stem for p in (out / "trials").glob("*.parquet")} == ids  # nothing new written


def _git(*args, cwd) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def test_the_recorded_commit_is_bench_cores_not_the_current_directorys(registry, tmp_path, monkeypatch):
    other = tmp_path / "other_repo"
    other.mkdir()
    _git("init", "-q", cwd=other)
    (other / "README").write_text("another project\n")
    _git("add", "README", cwd=other)
    _git("commit", "-q", "-m", "unrelated", cwd=other)
    other_commit = _git("rev-parse", "HEAD", cwd=other)
    monkeypatch.chdir(other)

    suite = _quad_suite(registry)
    summary = run_suite(suite, tmp_path / "results", executor=LocalExecutor(registry))
    (stored,) = read_trials(tmp_path / "results").to_dict("records")
    expected = suite.trials[0].code["bench_core"]["commit"]
    assert summary.rows[0]["git_commit"] == stored["git_commit"] == expected
    assert stored["git_commit"] != other_commit
    core_dir = Path(bench_core.__file__).resolve().parent
    inside_git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=core_dir, capture_output=True,
                                check=False).returncode == 0
    if inside_git:  # bench-core from a checkout: the commit is one of its repository's
        assert expected and _git("cat-file", "-t", expected, cwd=core_dir) == "commit"
    assert json.loads(stored["code"])["bench_core"]["commit"] == expected


EXT_PLUGIN = """
import torch
import bench_core


@bench_core.hookimpl
def bench_optimizers():
    return [bench_core.OptimizerSpec("ext.sgd", lambda params, lr=0.1: torch.optim.SGD(params, lr=lr),
                                     defaults={"lr": 0.1})]
"""


def _clear_code_identity_caches():
    for cached in (code_identity.source_hash, code_identity.git_state, code_identity._component):
        cached.cache_clear()


def test_a_third_party_plugin_is_identified_by_its_own_commit_and_source(tmp_path, monkeypatch):
    repo = tmp_path / "ext_repo"
    (repo / "trust_ext_optim").mkdir(parents=True)
    source = repo / "trust_ext_optim" / "__init__.py"
    source.write_text(EXT_PLUGIN)
    _git("init", "-q", cwd=repo)
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "ext plugin", cwd=repo)
    ext_commit = _git("rev-parse", "HEAD", cwd=repo)
    monkeypatch.syspath_prepend(str(repo))
    try:
        import trust_ext_optim

        reg = build_registry(plugins=[("trust_ext_optim", trust_ext_optim)])
        data = {"name": "trust", "problems": [{"name": "synthetic.quadratic", "params": {"dim": 5}}],
                "optimizers": [{"name": "ext.sgd"}]}
        (before,) = parse_suite(data, "trust.toml", reg).trials
        ext = before.code["optimizer_plugin"]
        assert ext["module"] == "trust_ext_optim" and ext["commit"] == ext_commit and ext["dirty"] is False
        assert before.code["bench_core"]["commit"] != ext_commit
        assert before.code["problem_plugin"]["module"] == "bench_synthetic"

        source.write_text(EXT_PLUGIN + "# an edit, not committed\n")  # edit, then rerun
        _clear_code_identity_caches()  # a new `bench run` is a new process
        (after,) = parse_suite(data, "trust.toml", reg).trials
        assert after.code["optimizer_plugin"]["dirty"] is True
        assert after.code["optimizer_plugin"]["source_hash"] != ext["source_hash"]
        assert after.key_id == before.key_id and after.trial_id != before.trial_id
    finally:
        sys.modules.pop("trust_ext_optim", None)
        _clear_code_identity_caches()


# --------------------------------------------------------------------------- pooling
def test_dtypes_and_close_learning_rates_are_never_pooled_and_labels_are_stored_whole(registry, tmp_path):
    entry = {"name": "synthetic.quadratic", "params": {"dim": 5}, "budget": {"max_steps": 2}}
    suite = parse_suite({"name": "trust", "seeds": [0, 1],
                         "problems": [{**entry, "dtype": "float32"}, {**entry, "dtype": "float64"}],
                         "optimizers": [{"name": "torch.sgd", "sweep": {"lr": [0.0012341, 0.0012349]}}]},
                        "trust.toml", registry)
    assert len(suite.trials) == 8
    out = tmp_path / "results"
    run_suite(suite, out, executor=LocalExecutor(registry))
    df = read_trials(out)
    board = analysis.leaderboard(df)
    assert len(board) == 4  # 2 dtypes x 2 learning rates
    for row in board:
        assert row["seeds"] == 2 and row["n_seeds"] == 2
    assert len({r["optimizer"] for r in board}) == 4  # display labels tell them apart
    assert sorted(json.loads(r["hparams"])["lr"] for r in board) == [0.0012341, 0.0012341, 0.0012349, 0.0012349]
    stored = set(df["label"])
    assert len(stored) == 2
    assert any("lr=0.0012341" in label for label in stored) and any("lr=0.0012349" in label for label in stored)
    assert set(df["dtype"]) == {"float32", "float64"} and df["key_id"].nunique() == 4


# --------------------------------------------------------------------------- one best-setting rule
def _synthetic_rows(tmp_path: Path) -> tuple[Path, list[Trial]]:
    """Hand-made rows of one problem and optimizer, four settings (one seed each):

    lr=0.1 reaches the target in 50 steps and 2.0 s; lr=0.2 in 80 steps but 1.0 s (the old
    `bench show` rule, time first, chose it); lr=0.3 also in 50 steps, with a worse val_loss (the
    selection metric) but a better val_accuracy than lr=0.1; lr=0.4 misses the target with the
    best val_accuracy."""
    out = tmp_path / "synthetic"
    base = {"suite": "s", "problem": "synthetic.logreg", "params": {"batch_size": 128}, "kind": "training",
            "optimizer": "torch.adam", "seed": 0, "device": "cpu", "dtype": "float32",
            "budget": {"max_steps": 100}, "targets": [Target("val_loss", "min", 0.2)], "eval": {},
            "directions": {"val_loss": "min", "val_accuracy": "max", "loss": "min"}}
    cases = [(0.1, "target_reached", 50, 2.0, 0.19, 0.90), (0.2, "target_reached", 80, 1.0, 0.10, 0.80),
             (0.3, "target_reached", 50, 1.5, 0.195, 0.95), (0.4, "ok", None, None, 0.25, 0.99)]
    trials = []
    for lr, status, steps, seconds, val_loss, accuracy in cases:
        trial = Trial(**base, hparams={"lr": lr})
        row = make_row(trial, "run", status, measured={
            "steps": steps or 100, "train_time_s": seconds or 3.0, "steps_to_target": steps,
            "time_to_target_s": seconds, "metrics": {"loss": 0.1, "val_loss": val_loss, "val_accuracy": accuracy}})
        write_trial(out, row, [])
        trials.append(trial)
    return out, trials


def test_bench_tune_and_the_settings_summary_pick_the_same_best_setting(registry, tmp_path):
    out, trials = _synthetic_rows(tmp_path)
    df = read_trials(out)
    summary = analysis.settings_summary(df)
    (best,) = [r for r in summary if r["best"]]
    group = tuning.Group(base=trials[0], trial_ids=[t.trial_id for t in trials])
    ranker = tuning._Ranker(group, registry)
    rows = df.to_dict("records")
    ranker.fit(rows)
    chosen = min(rows, key=ranker)
    assert json.loads(chosen["hparams"]) == best["hparams"] == {"lr": 0.1}
    assert ranker.metric == best["selection_metric"] == "val_loss"
    # the rule itself, as bench_core.selection states it: success, then steps, then val_loss
    metric = selection.selection_metric({"val_loss": 0.2}, ["loss", "val_loss", "val_accuracy"])
    order = sorted(rows, key=lambda r: selection.row_rank(r, metric, "min"))
    assert [json.loads(r["hparams"])["lr"] for r in order] == [0.1, 0.3, 0.2, 0.4]
    assert [r["hparams"]["lr"] for r in summary] == [0.1, 0.3, 0.2, 0.4]


def test_the_selection_metric_direction_is_the_recorded_one():
    # guard: the rule of bench_core.selection in a metric's direction
    # a tie on success and steps goes to the higher val_accuracy when that is the selection metric
    statuses, steps = ["target_reached"] * 2, [10, 10]
    low = selection.setting_rank(statuses, steps, [0.8, 0.8], "max", "low")
    high = selection.setting_rank(statuses, steps, [0.9, 0.9], "max", "high")
    assert high < low
    assert selection.setting_rank(statuses, steps, [0.9, 0.9], "min", "x") > \
        selection.setting_rank(statuses, steps, [0.8, 0.8], "min", "y")


# --------------------------------------------------------------------------- warm-up
def _scalar(registry, budget: dict, lr: float = 0.01, target: dict | None = None) -> Trial:
    entry = {"name": "trust.scalar", "budget": budget, "eval": {"every": 1}, "dtype": "float64"}
    if target is not None:
        entry["target"] = target
    (trial,) = _trials(registry, entry, optimizers=[{"name": "torch.sgd", "hparams": {"lr": lr, "momentum": 0.0}}])
    return trial


def test_warmup_steps_0_is_accepted_and_step_1_is_timed(registry, tmp_path, virtual_clock):
    path = _write(tmp_path, 'name = "t"\n[[problems]]\nname = "trust.scalar"\n'
                            'budget = { max_steps = 5, warmup_steps = 0 }\n'
                            '[[optimizers]]\nname = "torch.sgd"\nhparams = { lr = 0.01, momentum = 0.0 }\n')
    (trial,) = load_suite(path, registry).trials
    assert trial.budget.warmup_steps == 0
    row, _ = run_trial(trial, registry)
    assert row["status"] == "ok", row["error"]
    assert row["warmup_steps"] == 0 and row["warmup_time_s"] == 0
    assert row["train_time_s"] == 100 + 4 * 1  # step 1's cost (100) is in the training time
    default = _scalar(registry, {"max_steps": 5})  # warmup_steps = 1 by default: step 1 apart
    row, _ = run_trial(default, registry)
    assert (row["warmup_steps"], row["warmup_time_s"], row["train_time_s"]) == (1, 100, 4)


@pytest.mark.parametrize("mode, times", [("training", [0, 0, 0, 0, 1, 2, 3]),
                                         ("all", [0, 100, 101, 102, 103, 104, 105])])
def test_the_curve_time_never_decreases_through_the_warmup(registry, virtual_clock, mode, times):
    trial = _scalar(registry, {"max_steps": 6, "warmup_steps": 3, "time_to_target": mode})
    row, curve = run_trial(trial, registry)
    assert row["status"] == "ok", row["error"]
    points = [(s, t) for s, t, m, _ in curve if m == "loss"]
    assert [s for s, _ in points] == list(range(7))
    assert [t for _, t in points] == times
    assert (row["warmup_steps"], row["warmup_time_s"], row["train_time_s"]) == (3, 102, 3)
    assert row["time_to_target_mode"] == mode


@pytest.mark.parametrize("mode, time_to_target", [("training", 0), ("all", 100)])
def test_a_target_reached_during_warmup_records_the_warmup_and_the_mode(registry, virtual_clock, mode,
                                                                         time_to_target):
    # lr 0.5 takes x = 1 to 0 in step 1, inside the 3 warm-up steps
    trial = _scalar(registry, {"max_steps": 10, "warmup_steps": 3, "time_to_target": mode}, lr=0.5,
                    target={"loss": 1e-6})
    row, _ = run_trial(trial, registry)
    assert row["status"] == "target_reached", row["error"]
    assert row["steps_to_target"] == 1 and row["warmup_steps"] == 1
    assert row["warmup_time_s"] == 100 and row["train_time_s"] == 0
    assert row["time_to_target_mode"] == mode and row["time_to_target_s"] == time_to_target


def test_an_unknown_time_to_target_mode_is_bad_input(registry, tmp_path):
    # guard
    path = _write(tmp_path, 'name = "t"\n[[problems]]\nname = "trust.scalar"\n'
                            'budget = { time_to_target = "everything" }\n[[optimizers]]\nname = "torch.sgd"\n')
    with pytest.raises(BenchInputError, match=r"problems\[0\]\.budget\.time_to_target"):
        load_suite(path, registry)


# --------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("factor, status, steps", [(10, "diverged", 4), (None, "ok", 8)])
def test_a_loss_above_the_divergence_factor_times_its_initial_value_diverges(registry, factor, status, steps):
    # (the default-factor case is a control: it already ended "ok" on fae7822)
    # H = I (condition 1): SGD with lr 2.5 multiplies x - x* by -1.5, the loss by 2.25 each step,
    # finite throughout: 2.25³ = 11.4 > 10 at step 4; 2.25⁷ = 291 stays below the default 1e4
    budget = {"max_steps": 8} if factor is None else {"max_steps": 8, "divergence_factor": factor}
    (trial,) = _trials(registry, {"name": "synthetic.quadratic", "params": {"dim": 5, "condition": 1.0},
                                  "budget": budget, "target": {}, "dtype": "float64"},
                       optimizers=[{"name": "torch.sgd", "hparams": {"lr": 2.5, "momentum": 0.0}}])
    row, curve = run_trial(trial, registry)
    assert row["status"] == status, row["error"]
    assert row["steps"] == steps
    if status == "diverged":
        assert "exceeds 10 times its initial value" in row["error"]
    assert all(math.isfinite(v) for _, _, m, v in curve if m == "loss")


def test_a_divergence_factor_of_1_or_less_is_bad_input(registry, tmp_path):
    # guard
    path = _write(tmp_path, 'name = "t"\n[[problems]]\nname = "trust.scalar"\n'
                            'budget = { divergence_factor = 1 }\n[[optimizers]]\nname = "torch.sgd"\n')
    with pytest.raises(BenchInputError, match=r"problems\[0\]\.budget\.divergence_factor"):
        load_suite(path, registry)


# --------------------------------------------------------------------------- old results
def test_a_trial_file_of_an_older_schema_is_refused_naming_the_file(tmp_path):
    out = tmp_path / "old"
    (out / "trials").mkdir(parents=True)
    old = out / "trials" / "0123456789abcdef.parquet"
    pq.write_table(pa.table({"run_id": ["r"], "trial_id": ["0123456789abcdef"], "problem": ["synthetic.quadratic"],
                             "label": ["torch.sgd(lr=0.1)"], "status": ["target_reached"],
                             "targets": ['{"test_accuracy": 0.99}']}), old)
    with pytest.raises(BenchInputError) as info:
        read_trials(out)
    message = str(info.value)
    assert str(old) in message and "\n" not in message
    assert "older bench-core" in message
    assert len(read_curves(out)) == 0  # curves are untouched (there are none)
