"""The offline matrix collection (linear.collection) and the Matrix Market reader
(linear.matrix_market): size, unique names and families; every entry's declared symmetry and
definiteness against the matrix itself; b = A x*; Higham's matrices against the `rogues` port;
the collection suites listing exactly the collection; .mtx files good and bad; a few short
runs through the runner reaching the target."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import bench_core
from bench_core import threads
from bench_core.registry import get_registry
from bench_core.runner import run_trial
from bench_core.suite import Trial, parse_suite
from bench_linear import collection as coll
from bench_linear.matrix_market import matrix_market, read_matrix_market

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = coll.collection_entries()
#: Up to this n definiteness is read from the eigenvalues; above it from a sparse LDLᵀ inertia.
EIG_MAX_N = 500


@pytest.fixture(scope="module")
def registry():
    return get_registry()


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Dense factorizations with one BLAS thread: on a loaded 2-core machine OpenBLAS's threads
    made them ten times slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _trial(problem, optimizer, params, hparams=None, budget=None, target=1e-8):
    return Trial(suite="t", problem=problem, params=params, kind="linear_system", optimizer=optimizer,
                 hparams=hparams or {}, seed=0, device="cpu", dtype="float64",
                 budget=budget or {"max_steps": 3000, "max_seconds": 60},
                 targets={"rel_residual": target}, eval={})


# ---------------------------------------------------------------- the catalogue

def test_collection_has_at_least_100_uniquely_named_systems():
    names = coll.collection_names()
    assert len(names) >= 100 and len(set(names)) == len(names)
    assert sorted(coll.collection_names("spd") + coll.collection_names("nonsymmetric")
                  + coll.collection_names("symmetric_indefinite")) == sorted(names)


def test_collection_spans_what_the_issue_asks_for():
    fams = {e.family for e in ENTRIES}
    assert {"poisson", "anisotropic", "jumping", "elasticity", "pyamg_example", "spd_condition",
            "higham", "convection_diffusion"} <= fams
    assert {2, 3} <= {e.space_dim for e in ENTRIES}
    assert {e.space_dim for e in ENTRIES if e.family == "jumping"} == {2, 3}
    assert {e.space_dim for e in ENTRIES if e.family == "anisotropic"} == {2, 3}
    conds = {e.condition for e in ENTRIES if e.condition}
    assert min(conds) == 1e2 and max(conds) == 1e10
    assert len(coll.collection_names("nonsymmetric")) >= 20
    assert max(e.dimension for e in ENTRIES) <= 10_000
    assert np.median([e.dimension for e in ENTRIES]) <= 2_500


def _inertia_negative(a: sp.csr_matrix) -> int | None:
    """Negative pivots of LDLᵀ (Gaussian elimination without pivoting on a symmetric fill-reducing
    ordering; Sylvester's law of inertia), or None when elimination needed a row exchange."""
    try:
        lu = spla.splu(a.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
    except RuntimeError:  # an exactly singular pivot
        return None
    if not np.array_equal(lu.perm_r, lu.perm_c):
        return None
    return int((lu.U.diagonal() <= 0).sum())


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_entry_is_as_declared(entry):
    a = entry.matrix()
    assert a.shape == (entry.dimension, entry.dimension) and a.dtype == np.float64
    assert np.isfinite(a.data).all()
    scale = abs(a).max()
    asym = abs(a - a.T).max() / scale
    assert (asym <= 1e-10) == entry.symmetric, (entry.name, asym)
    if not entry.symmetric:
        assert not entry.positive_definite
        spla.splu(a.tocsc())  # nonsingular (raises on an exactly singular matrix)
        return
    s = ((a + a.T) / 2).tocsr()
    if entry.dimension <= EIG_MAX_N:
        lam = np.linalg.eigvalsh(s.toarray())
        if entry.positive_definite:
            assert lam[0] > 0, (entry.name, lam[0])
            np.linalg.cholesky(s.toarray())
        else:
            assert lam[0] <= 1e-12 * lam[-1], (entry.name, lam[0])
    else:
        neg = _inertia_negative(s)
        assert neg is not None, entry.name
        assert (neg == 0) == entry.positive_definite, (entry.name, neg)


@pytest.mark.parametrize("name", ["spd-dense-geometric-k1e10", "spd-dense-clustered-k1e4",
                                  "spd-sparse-1000-k1e10", "spd-sparse-1000-k1e2"])
def test_prescribed_condition_numbers(name):
    entry = coll.collection_entry(name)
    lam = np.linalg.eigvalsh(entry.matrix().toarray())
    assert lam[0] > 0 and lam[-1] / lam[0] == pytest.approx(entry.condition, rel=1e-4)


def test_own_stencils_agree_with_independent_constructions():
    """Constant κ gives pyamg's Laplacian; the 2-D checkerboard is bench_pde's pde.jumping matrix
    (scaled by h²); convection–diffusion without wind is the Laplacian."""
    from bench_pde.diffusion import jumping_matrix

    assert abs(coll.diffusion_matrix(np.ones((7, 7, 7))) - coll.poisson_matrix(5, 3)).max() == 0
    n = 12
    mine = coll.diffusion_matrix(coll.checkerboard_kappa(n, 2, 1e4, 4)) * (n + 1) ** 2
    assert abs(mine - jumping_matrix(n, 1e4, 4)).max() <= 1e-12 * abs(mine).max()
    assert abs(coll.convdiff_matrix(6, (0.0, 0.0)) - coll.poisson_matrix(6, 2)).max() == 0
    a = coll.convdiff_matrix(6, (5.0, -5.0))  # upwind: an M-matrix, weakly diagonally dominant
    off = a - sp.diags(a.diagonal())
    assert off.max() <= 0 and (a.diagonal() + off.sum(axis=1).A1 >= -1e-12).all()


def test_systems_have_b_equal_to_a_x_star_per_seed():
    entry = coll.collection_entry("pyamg-airfoil")
    s0, s1 = entry.system(0), entry.system(1)
    a = entry.matrix()
    for s in (s0, s1):
        x = s.x_exact.numpy()
        assert np.allclose(s.b.numpy(), a @ x, rtol=1e-14, atol=0)
        assert s.metrics(s.x_exact)["rel_residual"] < 1e-14
        assert s.info["symmetric"] and s.info["spd"] and s.info["family"] == "pyamg_example"
    assert not torch.equal(s0.x_exact, s1.x_exact)
    assert torch.equal(entry.system(0).x_exact, s0.x_exact)
    problem = coll.collection(3, "cpu", torch.float32, matrix="lehmer-100")
    (system,) = list(problem.systems())
    assert system.b.dtype == torch.float32 and system.n == 100


def test_unknown_matrix_names_the_nearest(registry):
    with pytest.raises(ValueError, match=r"unknown matrix 'poisson2d-33'.*nearest: .*poisson2d-32"):
        coll.collection_entry("poisson2d-33")
    row, _ = run_trial(_trial("linear.collection", "linear.cg", {"matrix": "kms-200"}), registry)
    assert row["status"] == "error" and "kms-200-r" in row["error"] and "\n" not in row["error"]


# ---------------------------------------------------------------- Higham's matrices

def test_higham_matrices_match_rogues():
    rogues = pytest.importorskip("rogues")
    pairs = [
        (coll.lehmer(9), rogues.lehmer(9)), (coll.kms(9, 0.7), rogues.kms(9, 0.7)),
        (coll.pascal(9), rogues.pascal(9)), (coll.minij(9), rogues.minij(9)),
        (coll.moler(9), rogues.moler(9)), (coll.prolate(9), rogues.prolate(9)),
        (coll.pei(9), rogues.pei(9)), (coll.hilbert(9), rogues.hilb(9)),
        (coll.wilkinson(9), rogues.wilkinson(9)), (coll.fiedler(9), rogues.fiedler(9)),
        (coll.clement(8, True), rogues.clement(8, 1)), (coll.clement(8, False), rogues.clement(8)),
        (coll.grcar(9), rogues.grcar(9)), (coll.frank(9), rogues.frank(9)),
        (coll.parter(9), rogues.parter(9)), (coll.lotkin(9), rogues.lotkin(9)),
        (coll._laplacian_1d(9).toarray(), rogues.tridiag(9).toarray()),
    ]
    for mine, theirs in pairs:
        np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-15)
    np.random.seed(5)
    theirs = rogues.wathen(3, 4).toarray()
    np.random.seed(5)
    mine = coll.wathen(np.random.randint(1, 100, (3, 4))).toarray()
    np.testing.assert_allclose(mine, theirs, rtol=1e-13)
    # Dorr: rogues agrees on the first half of the rows; its second half departs from Higham's
    # MATLAB code (which uses i = m+1..n there), so that half is checked by Higham's identity below
    # (rogues.dorr fails for odd n)
    m = (10 + 1) // 2
    np.testing.assert_allclose(coll.dorr(10)[:m - 1], rogues.dorr(10, r_matrix=True)[:m - 1], rtol=1e-13)


def test_dorr_satisfies_highams_identity():
    """comp(A)·1 = θ(n+1)²·[1, 0, …, 0, 1]ᵀ (Higham's dorr.m), comp the comparison matrix."""
    n, theta = 20, 0.01
    a = coll.dorr(n, theta)
    comp = -np.abs(a)
    np.fill_diagonal(comp, np.abs(np.diag(a)))
    expect = np.zeros(n)
    expect[[0, -1]] = theta * (n + 1) ** 2
    np.testing.assert_allclose(comp @ np.ones(n), expect, atol=1e-9 * np.abs(a).max())


# ---------------------------------------------------------------- the suites

def _suite_tables(group: str) -> dict:
    file = coll.SUITES[group][0]
    path = ROOT / "suites" / file
    assert path.read_text() == coll.suite_toml(group), (
        f"{path} is stale: python -m bench_linear.collection {group} > suites/{file}")
    return tomllib.loads(path.read_text())


@pytest.mark.parametrize("group", coll.GROUPS)
def test_collection_suites_list_exactly_the_collection(group):
    data = _suite_tables(group)
    assert [p["params"]["matrix"] for p in data["problems"]] == coll.collection_names(group)
    assert {p["name"] for p in data["problems"]} == {"linear.collection"}
    assert all(p["target"] == {"rel_residual": 1e-8} for p in data["problems"])
    assert data["dtype"] == "float64" and data["seeds"] == [0]


def test_collection_suites_parse(registry):
    """Each suite's solvers and a few of its problems through the suite parser (parsing all 150
    tables costs a minute: the code identity is computed per table)."""
    solvers = {"spd": {"linear.cg", "linear.pcg", "pyamg.sa_cg", "linear.learned_pcg"},
               "nonsymmetric": {"linear.gmres", "linear.bicgstab"},
               "symmetric_indefinite": {"linear.minres", "linear.gmres"}}
    for group in coll.GROUPS:
        data = _suite_tables(group)
        data["problems"] = data["problems"][:2] + data["problems"][-1:]
        suite = parse_suite(data, f"{group}.toml", registry)
        assert {t.optimizer for t in suite.trials} == solvers[group]
        assert len(suite.trials) == 3 * len({t.label for t in suite.trials})
        assert all(t.kind == "linear_system" and t.dtype == "float64" for t in suite.trials)
        if group == "spd":
            assert {t.hparams.get("precond") for t in suite.trials} >= {"jacobi", "ic0"}


# ---------------------------------------------------------------- short runs through the runner

@pytest.mark.parametrize("matrix", ["poisson2d-16", "pyamg-airfoil", "kms-200-r0.5", "wathen-10x10",
                                    "elasticity-16-nu0.3"])
def test_cg_reaches_the_target_on_collection_systems(matrix, registry):
    row, _ = run_trial(_trial("linear.collection", "linear.cg", {"matrix": matrix}), registry)
    assert row["status"] == "target_reached", (matrix, row["status"], row["error"])
    assert row["metrics"]["rel_residual"] <= 1e-8


def test_gmres_reaches_the_target_on_a_nonsymmetric_system(registry):
    row, _ = run_trial(_trial("linear.collection", "linear.gmres", {"matrix": "convdiff3d-pe10"},
                              {"restart": 30}), registry)
    assert row["status"] == "target_reached", (row["status"], row["error"])


# ---------------------------------------------------------------- Matrix Market files

def _write(tmp_path, name, a, **kw) -> str:
    path = tmp_path / name
    scipy.io.mmwrite(str(path), a, **kw)
    return str(path)


def test_matrix_market_reads_a_good_file(tmp_path, registry):
    a = sp.csr_matrix(coll.kms(30, 0.5))
    path = _write(tmp_path, "kms.mtx", a, symmetry="symmetric")
    assert abs(read_matrix_market(path) - a).max() < 1e-14
    (s,) = list(matrix_market(0, "cpu", torch.float64, path=path).systems())
    assert np.allclose(s.x_exact.numpy(), 1.0) and np.allclose(s.b.numpy(), a @ np.ones(30))
    assert s.info["symmetric"] and s.info["spd"] and s.info["matrix"] == "kms.mtx"
    (r,) = list(matrix_market(4, "cpu", torch.float64, path=path, solution="random").systems())
    assert np.allclose(r.b.numpy(), a @ r.x_exact.numpy()) and not np.allclose(r.x_exact.numpy(), 1.0)
    general = _write(tmp_path, "conv.mtx", coll.collection_entry("convdiff2d-pe10-th0").matrix()[:100, :100])
    (g,) = list(matrix_market(0, "cpu", torch.float64, path=general).systems())
    assert not g.info["symmetric"] and not g.info["spd"]
    row, _ = run_trial(_trial("linear.matrix_market", "linear.cg", {"path": path, "solution": "ones"}),
                       registry)
    assert row["status"] == "target_reached", (row["status"], row["error"])
    json.loads(threads.blas_info())  # scipy's mmread left threadpoolctl's report serializable


def _bad_files(tmp_path) -> dict[str, str]:
    garbage = tmp_path / "garbage.mtx"
    garbage.write_text("this is not\na matrix market file\n")
    truncated = tmp_path / "truncated.mtx"
    truncated.write_text("%%MatrixMarket matrix coordinate real general\n3 3 4\n1 1 1.0\n2 2\n")
    empty_file = tmp_path / "empty_file.mtx"
    empty_file.write_text("")
    empty = tmp_path / "empty.mtx"
    empty.write_text("%%MatrixMarket matrix coordinate real general\n0 0 0\n")
    zeros = tmp_path / "zeros.mtx"
    zeros.write_text("%%MatrixMarket matrix coordinate real general\n3 3 0\n")
    return {
        "missing": str(tmp_path / "nope.mtx"),
        "directory": str(tmp_path),
        "garbage": str(garbage),
        "truncated": str(truncated),
        "empty file": str(empty_file),
        "0x0": str(empty),
        "no nonzeros": str(zeros),
        "non-square": _write(tmp_path, "rect.mtx", sp.random(4, 6, density=0.5, random_state=0)),
        "complex": _write(tmp_path, "cplx.mtx", sp.csr_matrix(np.array([[1 + 1j, 0], [0, 2]]))),
    }


def test_matrix_market_bad_files_give_one_line_naming_the_file(tmp_path, registry):
    for case, path in _bad_files(tmp_path).items():
        with pytest.raises(ValueError) as info:
            read_matrix_market(path)
        msg = str(info.value)
        assert "\n" not in msg and Path(path).name in msg, (case, msg)
        if case == "non-square":
            assert "square" in msg and "4×6" in msg
        if case == "missing":
            assert "not found" in msg
    with pytest.raises(ValueError, match="no file given"):
        read_matrix_market("")
    path = _bad_files(tmp_path)["non-square"]
    row, _ = run_trial(_trial("linear.matrix_market", "linear.cg", {"path": path, "solution": "ones"}),
                       registry)
    assert row["status"] == "error" and "rect.mtx" in row["error"] and "\n" not in row["error"]


def test_matrix_market_problem_is_registered(registry):
    spec = registry.problem("linear.matrix_market")
    assert spec.kind == "linear_system" and isinstance(spec.params["path"], str)
    assert "rel_error" in spec.reports
    assert registry.problem("linear.collection").params["matrix"] in coll.collection_names()
    assert isinstance(bench_core.problem_spec("linear.collection").params["matrix"], str)
