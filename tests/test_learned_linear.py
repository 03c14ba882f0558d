"""The learned linear solvers: linear.learned_pcg (Li et al. 2023) and linear.deep_cd (Kaneda et
al. 2023) on tiny families: training lowers the loss, the learned preconditioner is SPD, the
solvers converge, the weights cache is checked, deep-CD directions are A-orthogonal."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import bench_core
from bench_linear import deep_cd, learned_pcg, trained_weights
from bench_pde.diffusion import jumping, jumping_matrix
from bench_pde.poisson import poisson2d

TINY = dict(seed=0, steps=40, width=8, depth=2, per_size=2, sizes=(8,))
SMALL = dict(train_steps=20, width=8, depth=2, train_grid=8)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test trains into its own empty weight cache, on one thread (as the runner's default)."""
    monkeypatch.setenv(trained_weights.CACHE_ENV, str(tmp_path))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    learned_pcg.trained_net.cache_clear()
    deep_cd.trained_net.cache_clear()
    yield tmp_path
    torch.set_num_threads(threads)
    learned_pcg.trained_net.cache_clear()
    deep_cd.trained_net.cache_clear()


def solve_to(solver, system, rtol=1e-8, maxiter=500):
    """Iterations until the true relative residual is below rtol (as the runner stops)."""
    solver.setup(system)
    count = {"n": 0}

    def callback(x):
        count["n"] += 1
        if system.metrics(x)["rel_residual"] <= rtol or count["n"] >= maxiter:
            raise bench_core.StopSolve()

    try:
        solver.solve(system.b, torch.zeros_like(system.b), maxiter, callback)
    except bench_core.StopSolve:
        pass
    return count["n"], None


def test_diffusion_stencil_is_the_jumping_matrix():
    n = 9
    coords = np.arange(n + 2) / (n + 1)
    cell = np.minimum((coords * 3).astype(int), 2)
    kappa = np.where((cell[:, None] + cell[None, :]) % 2 == 0, 1.0, 50.0)
    a = learned_pcg.csr_from_stencil(learned_pcg.diffusion_stencil(kappa))
    ref = jumping_matrix(n, 50.0, 3)
    assert abs(a - ref).max() <= 1e-12 * abs(ref).max()
    assert abs(learned_pcg.csr_from_stencil(learned_pcg.grid_stencil(ref)) - ref).max() == 0


def test_training_lowers_the_paper_loss_and_is_deterministic():
    net, meta = learned_pcg.train(**TINY)
    hist = meta["loss_history"]
    assert meta["final_loss"] < 0.9 * hist[0]
    batches = learned_pcg.make_family(0, 2, (8,))
    fresh = learned_pcg.FactorNet(8, 2)
    with torch.no_grad():
        before = float(learned_pcg.paper_loss(fresh, *batches[0]))
        after = float(learned_pcg.paper_loss(net, *batches[0]))
    assert after < before
    net2, meta2 = learned_pcg.train(**TINY)
    assert np.array_equal(meta2["loss_history"], hist)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), net2.parameters()))


def test_learned_preconditioner_is_spd_with_the_ic0_pattern():
    net, _ = learned_pcg.train(**TINY)
    a = jumping_matrix(10, 1e3, 4)
    low = learned_pcg.learned_factor(net, learned_pcg.grid_stencil(a))
    assert sp.triu(low, 1).nnz == 0 and (low.diagonal() > 0).all()
    pattern = sp.tril(a).astype(bool)
    assert (low.astype(bool) > pattern).nnz == 0  # no entry outside tril(A)'s pattern
    m = (low @ low.T).toarray()
    assert np.allclose(m, m.T) and np.linalg.eigvalsh(m).min() > 0


def test_learned_pcg_converges_and_reports_training_apart(cache):
    solver = learned_pcg.LearnedPCG(**SMALL)
    assert solver.trained_now and solver.bench_counters["trained_now"] == 1
    assert solver.training_time_s > 0 and solver.bench_counters["training_time_ms"] >= 0
    system = next(iter(jumping(0, "cpu", torch.float64, n=24, contrast=1e3, blocks=4).systems()))
    iters, _ = solve_to(solver, system)
    assert iters < 500
    # a second solver reads the cached weights (checksum intact) instead of training again
    learned_pcg.trained_net.cache_clear()
    again = learned_pcg.LearnedPCG(**SMALL)
    assert not again.trained_now and again.training_time_s == solver.training_time_s
    assert solve_to(again, system)[0] == iters


def test_damaged_weights_are_retrained_with_a_warning(cache):
    learned_pcg.trained_net(0, 20, 8, 2, 8)
    path = next(cache.glob("learned_linear/*.npz"))
    path.write_bytes(path.read_bytes()[:-10])
    learned_pcg.trained_net.cache_clear()
    with pytest.warns(RuntimeWarning, match="checksum mismatch"):
        _, _, now = learned_pcg.trained_net(0, 20, 8, 2, 8)
    assert now


def test_learned_pcg_refuses_a_non_grid_operator():
    solver = learned_pcg.LearnedPCG(**SMALL)
    a = sp.random(30, 30, density=0.3, random_state=0)
    a = (a @ a.T + 30 * sp.identity(30)).tocsr()
    system = bench_core.LinearSystem.from_scipy(a, x_exact=np.ones(30), info={"symmetric": True})
    with pytest.raises(ValueError, match="grid operator"):
        solver.setup(system)
    system = next(iter(poisson2d(0, "cpu", torch.float64, n=8).systems()))
    assert solve_to(solver, system)[0] < 100


DCD_TINY = dict(train_steps=30, width=4, train_grid=8)


def test_deep_cd_training_lowers_its_loss():
    net, meta = deep_cd.train(seed=0, steps=30, width=4, per_size=1, sizes=(8,))
    assert meta["final_loss"] < meta["loss_history"][0]
    fresh = deep_cd.DirectionNet(4)
    (feats, r), = deep_cd.make_family(0, 1, (8,))
    with torch.no_grad():
        assert float(deep_cd.paper_loss(net, feats, r)) < float(deep_cd.paper_loss(fresh, feats, r))


def test_deep_cd_directions_are_a_orthogonal_and_it_converges():
    system = next(iter(poisson2d(0, "cpu", torch.float64, n=12).systems()))
    solver = deep_cd.DeepCD(memory=3, **DCD_TINY)
    assert solver.training_time_s > 0 and solver.bench_counters["trained_now"] == 1
    solver.setup(system)
    a = system.scipy()
    seen = []

    def callback(x):
        seen.append([d.numpy().copy() for d, _, _ in solver.directions])
        if system.metrics(x)["rel_residual"] <= 1e-8:
            raise bench_core.StopSolve()

    with pytest.raises(bench_core.StopSolve):
        solver.solve(system.b, torch.zeros_like(system.b), 400, callback)
    assert len(seen) < 400 and solver.bench_counters["network_evals"] == len(seen)
    for kept in seen[3:]:
        assert len(kept) == 3
        gram = np.array([[u @ (a @ v) for v in kept] for u in kept])
        off = gram - np.diag(np.diag(gram))
        assert np.abs(off).max() <= 1e-8 * np.diag(gram).max()


def test_a_trial_reports_training_apart_from_setup_and_solve():
    from bench_core.registry import get_registry
    from bench_core.runner import run_trial
    from bench_core.suite import Trial

    registry = get_registry()
    trial = Trial(suite="t", problem="pde.jumping", params={"n": 12, "contrast": 1e3, "blocks": 4},
                  kind="linear_system", optimizer="linear.learned_pcg", hparams=SMALL, seed=0,
                  device="cpu", dtype="float64", budget={"max_steps": 300}, targets={"rel_residual": 1e-8},
                  eval={})
    row, _ = run_trial(trial, registry)
    assert row["status"] == "target_reached", row["error"]
    assert row["metrics"]["training_time_s"] > 0 and row["counters"]["trained_now"] == 1
    assert row["counters"]["training_time_ms"] == round(1000 * row["metrics"]["training_time_s"])
    assert 0 < row["setup_time_s"] < row["metrics"]["training_time_s"]
