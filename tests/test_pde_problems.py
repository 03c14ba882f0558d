"""The linear-system problems: PDE discretizations (bench_pde) and matrix problems (bench_linear):
deterministic per seed, b = A x*, the symmetry/definiteness they declare, sequences that change."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench_linear.matrices import GALLERY, gallery, spectrum
from bench_pde.diffusion import anisotropic, convdiff, jumping
from bench_pde.heat import heat_sequence
from bench_pde.poisson import poisson2d, poisson3d

SINGLE = [
    (poisson2d, {"n": 6}, 36),
    (poisson3d, {"n": 4}, 64),
    (anisotropic, {"n": 6, "epsilon": 0.01, "theta": 0.5}, 36),
    (jumping, {"n": 8, "contrast": 1e3, "blocks": 2}, 64),
    (convdiff, {"n": 6, "peclet": 50.0}, 36),
    (spectrum, {"n": 30, "condition": 1e3}, 30),
]


def systems(factory, seed=0, **params):
    return list(factory(seed, "cpu", torch.float64, **params).systems())


@pytest.mark.parametrize("factory,params,n", SINGLE)
def test_problem_is_consistent_and_deterministic(factory, params, n):
    (s,) = systems(factory, **params)
    a = s.scipy().toarray()
    assert a.shape == (n, n) and s.n == n
    assert np.allclose(a @ s.x_exact.numpy(), s.b.numpy())
    assert np.allclose(s.A.to_dense().numpy(), a)
    assert np.allclose(s.matvec(s.x_exact).numpy(), s.b.numpy())
    symmetric = np.allclose(a, a.T)
    assert s.info["symmetric"] == symmetric
    if s.info["spd"]:
        assert np.linalg.eigvalsh(a).min() > 0
    (again,) = systems(factory, **params)
    assert torch.equal(again.b, s.b)
    (other,) = systems(factory, seed=1, **params)
    assert not torch.equal(other.b, s.b)


def test_convdiff_is_nonsymmetric_and_anisotropy_matters():
    (c,) = systems(convdiff, n=6, peclet=50.0)
    a = c.scipy().toarray()
    assert not np.allclose(a, a.T) and not c.info["symmetric"]
    aligned = systems(anisotropic, n=8, epsilon=1e-3, theta=0.0)[0].scipy()
    row = aligned.getrow(3 * 8 + 3)  # an interior point: a 5-point stencil with weak y-coupling
    off = np.abs(row.data[row.indices != 3 * 8 + 3])
    assert len(off) == 4 and np.isclose(off.min() / off.max(), 1e-3)
    rotated = systems(anisotropic, n=8, epsilon=1e-3, theta=0.5)[0].scipy()
    assert rotated.getrow(3 * 8 + 3).nnz == 9  # rotation couples the diagonal neighbours


def test_jumping_contrast_raises_condition_number():
    low = np.linalg.cond(systems(jumping, n=8, contrast=1.0, blocks=2)[0].scipy().toarray())
    high = np.linalg.cond(systems(jumping, n=8, contrast=1e4, blocks=2)[0].scipy().toarray())
    assert high > 100 * low


@pytest.mark.parametrize("spacing", ["geometric", "uniform", "clustered"])
def test_spectrum_has_the_prescribed_eigenvalues(spacing):
    (s,) = systems(spectrum, n=40, condition=500.0, spacing=spacing)
    lam = np.linalg.eigvalsh(s.scipy().toarray())
    assert np.isclose(lam.min(), 1.0) and np.isclose(lam.max(), 500.0)


@pytest.mark.parametrize("name", GALLERY)
def test_pyamg_gallery_matrices_load_by_name(name):
    (s,) = systems(gallery, matrix=name)
    assert s.n == s.scipy().shape[0] > 100
    assert np.allclose(s.scipy() @ s.x_exact.numpy(), s.b.numpy())
    assert s.info["symmetric"] == (name != "recirc_flow")


def test_gallery_rejects_unknown_names():
    with pytest.raises(ValueError, match="airfoil"):
        systems(gallery, matrix="nope")


def test_heat_sequence_changes_matrices_and_follows_the_trajectory():
    seq = systems(heat_sequence, n=6, steps=5, vary="both")
    assert len(seq) == 5
    contexts = [s.info["context"] for s in seq]
    assert len(set(contexts)) == 5
    for prev, cur in zip(seq, seq[1:]):
        # (I + dt κ L) u_k = u_{k-1} + dt f: the previous exact solution feeds the next right-hand side
        a = cur.scipy()
        assert np.allclose(a @ cur.x_exact.numpy(), cur.b.numpy())
        assert not np.allclose(a.toarray(), prev.scipy().toarray())
    only_dt = systems(heat_sequence, n=6, steps=3, vary="dt")
    assert len({s.info["kappa"] for s in only_dt}) == 1 and len({s.info["dt"] for s in only_dt}) == 3
    with pytest.raises(ValueError, match="vary"):
        systems(heat_sequence, vary="space")
