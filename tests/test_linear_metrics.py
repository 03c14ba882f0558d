"""LinearSystem.metrics: host iterates are measured in float64 numpy, equal to a dense reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench_core.problems import LinearSystem
from bench_pde.poisson import poisson2d


def _system() -> LinearSystem:
    return next(iter(poisson2d(n=8, seed=0, device="cpu", dtype=torch.float64).systems()))


def _reference(system: LinearSystem, x: np.ndarray) -> dict:
    a = system.A.to_dense().numpy()
    b, xs = system.b.numpy(), system.x_exact.numpy()
    x = np.asarray(x, np.float64)
    return {"rel_residual": np.linalg.norm(b - a @ x) / np.linalg.norm(b),
            "rel_error": np.linalg.norm(x - xs) / np.linalg.norm(xs)}


@pytest.mark.parametrize("make", [
    lambda v: v,                                       # numpy float64
    lambda v: torch.from_numpy(v),                     # CPU tensor float64
    lambda v: torch.from_numpy(v).to(torch.float32),   # CPU tensor float32: measured as given, in float64
    lambda v: v.astype(np.float32),                    # numpy float32
    lambda v: np.repeat(v, 2)[::2],                    # a non-contiguous view
])
def test_host_iterates_match_a_dense_reference(make):
    system = _system()
    x = np.random.default_rng(0).standard_normal(system.n)
    given = make(x)
    as_given = np.asarray(given.numpy() if isinstance(given, torch.Tensor) else given, np.float64)
    got, want = system.metrics(given), _reference(system, as_given)
    assert set(got) == set(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12)


def test_buffers_do_not_leak_between_calls():
    system = _system()
    x1, x2 = np.zeros(system.n), system.x_exact.numpy().copy()
    first = system.metrics(x1)
    second = system.metrics(x2)
    assert first == {"rel_residual": pytest.approx(1.0), "rel_error": pytest.approx(1.0)}
    assert second["rel_residual"] < 1e-12 and second["rel_error"] == 0.0
    assert system.metrics(x1) == first
    assert np.array_equal(x2, system.x_exact.numpy())  # the iterate is never written to


def test_float32_cg_reaching_an_exact_zero_residual_ends_cleanly():
    """linear.cg in float32 on a small Poisson system computes r = 0 exactly (its own residual);
    it used to divide by zero there. It now returns, and the runner measures the true residual."""
    import bench_core
    from bench_core.runner import run_trial
    from bench_core.suite import parse_suite

    registry = bench_core.get_registry()
    suite = parse_suite({"name": "f32", "seeds": [0], "dtype": "float32",
                         "problems": [{"name": "pde.poisson2d", "params": {"n": 16},
                                       "budget": {"max_steps": 5000}, "target": {"rel_residual": 1e-12}}],
                         "optimizers": [{"name": "linear.cg"}]}, "f32", registry)
    row, _ = run_trial(suite.trials[0], registry)
    assert row["error"] is None and row["status"] == "ok"
    assert 0 < row["metrics"]["rel_residual"] < 1e-5  # float32's floor, measured in float64
