"""bench_linear's solvers: solutions against scipy's, iteration counts against scipy's CG,
preconditioners' effect, the device-agnostic kernels, and bad input ending with a clear status."""
from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import bench_core
from bench_core.registry import build_registry
from bench_core.runner import run_trial
from bench_core.suite import Trial
from bench_linear import operators
from bench_linear.base import SolverError
from bench_linear.matrices import spectrum
from bench_linear.plugin import bench_optimizers
from bench_pde.diffusion import convdiff, jumping
from bench_pde.heat import heat_sequence
from bench_pde.poisson import poisson2d, poisson3d

SPECS = {s.name: s for s in bench_optimizers()}
SYMMETRIC_ONLY = {"linear.cg", "linear.pcg", "linear.minres", "linear.chebyshev", "linear.poly_gm",
                  "scipy.cg", "scipy.minres", "pyamg.sa_cg", "pyamg.rs_cg",
                  "linear.learned_pcg", "linear.deep_cd"}
#: The learned solvers train their network when built: small settings here (their own tests in
#: test_learned_linear.py check training; the defaults train for about a minute of CPU).
LEARNED = {"linear.learned_pcg": dict(train_steps=20, width=8, depth=2, train_grid=8),
           "linear.deep_cd": dict(train_steps=30, width=4, train_grid=8)}
ALL = sorted(SPECS)


@pytest.fixture(autouse=True, scope="module")
def _weights_cache(tmp_path_factory):
    """Trained weights go to a temporary cache, never the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CORE_CACHE_DIR", str(tmp_path_factory.mktemp("weights")))
    yield
    mp.undo()


def first(problem) -> bench_core.LinearSystem:
    return next(iter(problem.systems()))


def drive(name: str, system, maxiter: int = 2000, rtol: float = 1e-10, **hparams):
    """Solve like the runner does (stop on the true relative residual); return (iterations, x)."""
    solver = SPECS[name].factory(**hparams)
    solver.setup(system)
    state = {"n": 0, "x": None}

    def callback(x):
        state["n"] += 1
        state["x"] = x
        if system.metrics(x)["rel_residual"] <= rtol or state["n"] >= maxiter:
            raise bench_core.StopSolve()

    try:
        out = solver.solve(system.b, torch.zeros_like(system.b), maxiter, callback)
        state["x"] = out if out is not None else state["x"]
    except bench_core.StopSolve:
        pass
    return state["n"], bench_core.as_tensor(state["x"], like=system.b)


@pytest.fixture(scope="module")
def spd():
    return first(poisson2d(0, "cpu", torch.float64, n=10))


@pytest.fixture(scope="module")
def nonsym():
    return first(convdiff(0, "cpu", torch.float64, n=10, peclet=20.0))


@pytest.mark.parametrize("name", ALL)
def test_solution_matches_scipy_direct_solve(name, spd, nonsym):
    hp = {"omega": 1.6} if name in ("linear.sor", "linear.ssor") else LEARNED.get(name, {})
    for system in (spd, nonsym):
        if name in SYMMETRIC_ONLY and system is nonsym:
            continue
        expected = spla.spsolve(system.scipy().tocsc(), system.b.numpy())
        iters, x = drive(name, system, maxiter=5000, **hp)
        assert iters < 5000, f"{name} did not converge on {system.name}"
        assert np.linalg.norm(x.numpy() - expected) <= 1e-7 * np.linalg.norm(expected), name


def test_pcg_with_every_preconditioner_matches_scipy(spd):
    expected = spla.spsolve(spd.scipy().tocsc(), spd.b.numpy())
    for precond in ("jacobi", "ssor", "ic0", "chebyshev", "symmetric_poly", "amg_sa", "amg_rs"):
        _, x = drive("linear.pcg", spd, precond=precond)
        assert np.linalg.norm(x.numpy() - expected) <= 1e-7 * np.linalg.norm(expected), precond


def test_cg_iterations_match_scipy_cg_at_equal_tolerance():
    system = first(poisson2d(1, "cpu", torch.float64, n=40))
    ours = SPECS["linear.cg"].factory(rtol=1e-8)
    ours.setup(system)
    count = []
    ours.solve(system.b, torch.zeros_like(system.b), 10_000, lambda x: count.append(1))
    theirs = []
    spla.cg(system.scipy(), system.b.numpy(), rtol=1e-8, atol=0.0, maxiter=10_000,
            callback=lambda xk: theirs.append(1))
    assert abs(len(count) - len(theirs)) <= 0.02 * len(theirs) + 1


def test_minres_bicgstab_match_scipy_iterations(spd, nonsym):
    for ours, ref, system in (("linear.minres", "scipy.minres", spd),
                              ("linear.bicgstab", "scipy.bicgstab", nonsym)):
        a, _ = drive(ours, system, rtol=1e-8)
        b, _ = drive(ref, system, rtol=1e-8)
        assert abs(a - b) <= max(2, 0.05 * b), (ours, a, b)


def test_gmres_step_count_matches_scipy_cycles(nonsym):
    steps, _ = drive("linear.gmres", nonsym, rtol=1e-8, restart=10)
    cycles, _ = drive("scipy.gmres", nonsym, rtol=1e-8, restart=10)
    assert (cycles - 1) * 10 < steps <= cycles * 10


def test_preconditioners_reduce_cg_iterations_on_poisson():
    system = first(poisson2d(0, "cpu", torch.float64, n=24))
    plain, _ = drive("linear.cg", system, rtol=1e-8)
    for precond in ("ssor", "ic0", "chebyshev", "amg_sa", "amg_rs"):
        iters, _ = drive("linear.pcg", system, rtol=1e-8, precond=precond)
        assert iters < 0.7 * plain, (precond, iters, plain)
    # Poisson's diagonal is constant, so Jacobi scaling is CG itself; with jumping coefficients it helps.
    assert drive("linear.pcg", system, rtol=1e-8, precond="jacobi")[0] == plain
    jump = first(jumping(0, "cpu", torch.float64, n=24, contrast=1e3))
    assert drive("linear.pcg", jump, rtol=1e-8, precond="jacobi")[0] < 0.7 * drive("linear.cg", jump, rtol=1e-8)[0]


def test_symmetric_polynomial_preconditioner_speeds_up_the_gradient_method():
    # Doikov–Rodomanov's P_τ cuts the gaps between the largest eigenvalues: a spectrum with outliers.
    system = first(spectrum(0, "cpu", torch.float64, n=200, condition=1e3, spacing="clustered"))
    plain, _ = drive("linear.poly_gm", system, maxiter=5000, rtol=1e-4, degree=1)
    p1, _ = drive("linear.poly_gm", system, maxiter=5000, rtol=1e-4, degree=1,
                  precond="symmetric_poly", precond_degree=1)
    p2, _ = drive("linear.poly_gm", system, maxiter=5000, rtol=1e-4, degree=1,
                  precond="symmetric_poly", precond_degree=2)
    assert p2 < p1 <= plain and p2 < 0.8 * plain


def test_adaptive_polynomial_degree_reduces_iterations(spd):
    iters = [drive("linear.poly_gm", spd, maxiter=5000, rtol=1e-8, degree=d)[0] for d in (1, 2, 4)]
    assert iters[0] > iters[1] > iters[2]


def test_host_and_torch_kernels_agree(monkeypatch):
    """The CUDA code path (torch CSR products and triangular solves) run on the CPU."""
    system = first(convdiff(0, "cpu", torch.float64, n=6, peclet=10.0))
    spd = first(poisson2d(0, "cpu", torch.float64, n=6))
    host_runs = {n: drive(n, system, maxiter=4, rtol=0, omega=1.3)[1] for n in ("linear.sor", "linear.ssor")}
    host_ic = drive("linear.pcg", spd, maxiter=4, rtol=0, precond="ic0")[1]
    host_cg = drive("linear.cg", spd, maxiter=4, rtol=0, operator="csr")[1]
    monkeypatch.setattr(operators, "host_path", lambda t: False)
    for name, x in host_runs.items():
        assert torch.allclose(drive(name, system, maxiter=4, rtol=0, omega=1.3)[1], x, rtol=1e-10, atol=1e-12)
    assert torch.allclose(drive("linear.pcg", spd, maxiter=4, rtol=0, precond="ic0")[1], host_ic,
                          rtol=1e-10, atol=1e-12)
    assert torch.allclose(drive("linear.cg", spd, maxiter=4, rtol=0, operator="csr")[1], host_cg,
                          rtol=1e-10, atol=1e-12)


def test_sor_sweep_is_textbook_sor():
    system = first(convdiff(0, "cpu", torch.float64, n=5, peclet=5.0))
    a = system.scipy().toarray()
    b = system.b.numpy()
    omega = 1.3
    x_ref = np.zeros(len(b))
    for i in range(len(b)):  # row by row
        sigma = a[i] @ x_ref - a[i, i] * x_ref[i]
        x_ref[i] = (1 - omega) * x_ref[i] + omega * (b[i] - sigma) / a[i, i]
    sweeper = operators.SORSweep(system, omega)
    x = torch.zeros_like(system.b)
    sweeper.sweep(x, system.b)
    assert np.allclose(x.numpy(), x_ref, rtol=1e-12, atol=1e-12)


def test_stencil_operator_matches_csr():
    for system in (first(poisson2d(0, "cpu", torch.float64, n=7)), first(poisson3d(0, "cpu", torch.float64, n=5))):
        csr = operators.Operator(system, "csr")
        stencil = operators.Operator(system, "stencil")
        v = torch.randn(system.n, dtype=torch.float64)
        assert torch.allclose(csr(v), stencil(v), rtol=1e-12)
        assert (drive("linear.cg", system, rtol=1e-8, operator="stencil")[0]
                == drive("linear.cg", system, rtol=1e-8, operator="csr")[0])
        assert operators.Operator(system, "auto").kind == "stencil"
    heat = next(iter(heat_sequence(0, "cpu", torch.float64, n=4, steps=1).systems()))
    assert operators.Operator(heat, "auto").kind == "csr"


# --------------------------------------------------------------------------- bad input, budgets
def _bad_problem(seed, device, dtype, case: str = "nonsquare"):
    n = 16
    lap = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).tocsr()
    if case == "nonsquare":
        a = sp.random(n, n + 3, density=0.3, random_state=0, format="csr") + sp.eye(n, n + 3)
        b = np.ones(n)
    elif case == "singular":  # Neumann Laplacian (row sums 0) with an inconsistent right-hand side
        a = lap.tolil()
        a[0, 0] = a[-1, -1] = 1.0
        a = a.tocsr()
        b = np.ones(n)
    elif case == "zero_row":  # a decoupled unknown: a zero row and column, b ≠ 0 there
        a = lap.tolil()
        a[5, :] = 0
        a[:, 5] = 0
        a = a.tocsr()
        a.eliminate_zeros()
        b = np.ones(n)
    else:  # nonsymmetric
        a = (lap + sp.diags([np.full(n - 1, 0.7)], [1])).tocsr()
        b = np.ones(n)
    a = a.tocsr()
    system = bench_core.LinearSystem.from_scipy(a, b=b, device=device, dtype=dtype, name=f"bad-{case}")
    return bench_core.LinearSystemProblem([system])


@pytest.fixture(scope="module")
def registry():
    module = types.ModuleType("linear_bad_input_plugin")

    @bench_core.hookimpl
    def bench_problems():
        return [bench_core.ProblemSpec("test.bad_linear", "linear_system", _bad_problem,
                                       params={"case": "nonsquare"})]

    module.bench_problems = bench_problems
    return build_registry(plugins=[("linear_bad_input_plugin", module)])


def _trial(problem, optimizer, params, budget, targets, registry):
    spec = registry.problem(problem)
    return Trial(suite="t", problem=problem, params={**spec.params, **params}, kind="linear_system",
                 optimizer=optimizer, hparams=dict(LEARNED.get(optimizer, {})), seed=0, device="cpu", dtype="float64",
                 budget=budget, targets=targets, eval={})


@pytest.mark.parametrize("name", ALL)
def test_bad_input_ends_with_a_clear_status(name, registry):
    for case in ("nonsquare", "singular", "zero_row", "nonsymmetric"):
        row, _ = run_trial(_trial("test.bad_linear", name, {"case": case},
                                  {"max_steps": 40, "max_seconds": 20}, {"rel_residual": 1e-10},
                                  registry), registry)
        if case == "nonsquare":
            assert row["status"] == "error" and "square" in row["error"], (name, row["error"])
        elif case == "nonsymmetric" and name in SYMMETRIC_ONLY:
            assert row["status"] == "error" and "symmetric" in row["error"], (name, row["error"])
        elif case in ("singular", "zero_row"):
            assert row["status"] in ("ok", "diverged", "error"), (name, case, row["status"])
        if row["status"] == "error":
            assert row["error"] and "\n" not in row["error"]
        assert row["steps"] <= 40


@pytest.mark.parametrize("name", ALL)
def test_every_solver_stops_at_its_budget(name, registry):
    t = _trial("pde.poisson2d", name, {"n": 16}, {"max_steps": 3}, {"rel_residual": 1e-14}, registry)
    row, _ = run_trial(t, registry)
    assert row["status"] == "ok", (name, row["status"], row["error"])
    assert row["steps"] == 3 and row["counters"]["iterations"] == 3
