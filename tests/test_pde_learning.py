"""PDE-learning problems: the PINN for Poisson, the FNO on generated Darcy flow and its cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _training_checks import build, check_determinism, check_adamw_decreases_loss

TINY = {
    "pde.pinn_poisson": {"width": 8, "n_interior": 32, "n_boundary": 16},
    "pde.fno_darcy": {"resolution": 8, "n_train": 12, "n_val": 4, "width": 4, "modes": 3, "layers": 1,
                      "batch_size": 4},
}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Every test caches Darcy data in its own temporary folder."""
    monkeypatch.setenv("BENCH_CORE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_darcy_solver_matches_constant_coefficient_poisson():
    from bench_pde.darcy_data import solve_darcy

    u = solve_darcy(np.ones((32, 32)))
    assert u.shape == (32, 32) and np.allclose(u, u.T)
    assert u.max() == pytest.approx(0.0737, abs=1e-3)  # max of −Δu = 1 on the unit square
    assert np.allclose(solve_darcy(2 * np.ones((8, 8))), solve_darcy(np.ones((8, 8))) / 2)


def test_darcy_cache_written_reused_and_rebuilt(cache_dir):
    from bench_pde import darcy_data

    a, u = darcy_data.load(8, 6, 0)
    path = darcy_data.cache_path(8, 6, 0)
    assert path.is_relative_to(cache_dir) and path.exists() and path.with_suffix(".sha256").exists()
    assert a.shape == u.shape == (6, 8, 8) and set(np.unique(a)) <= {3.0, 12.0}
    stamp = path.stat().st_mtime_ns
    a2, u2 = darcy_data.load(8, 6, 0)
    assert path.stat().st_mtime_ns == stamp and np.array_equal(u, u2)
    path.write_bytes(path.read_bytes()[:-100])  # corrupt it
    with pytest.warns(RuntimeWarning, match="corrupted.*regenerating"):
        a3, u3 = darcy_data.load(8, 6, 0)
    assert np.array_equal(u, u3) and darcy_data.load(8, 6, 0)[1].shape == (6, 8, 8)
    path.with_suffix(".sha256").unlink()
    with pytest.warns(RuntimeWarning, match="checksum file"):
        darcy_data.load(8, 6, 0)


def test_darcy_data_depends_on_data_seed_only():
    from bench_pde import darcy_data

    assert not np.array_equal(darcy_data.generate(8, 2, 0)[0], darcy_data.generate(8, 2, 1)[0])
    assert np.array_equal(darcy_data.generate(8, 2, 1)[1], darcy_data.generate(8, 2, 1)[1])


def test_pinn_shapes_and_exact_solution():
    p = build("pde.pinn_poisson", **TINY["pde.pinn_poisson"])
    assert p.interior.shape == (32, 2) and p.boundary.shape == (16, 2)
    on_edge = (p.boundary == 0) | (p.boundary == 1)
    assert torch.all(on_edge.any(dim=1))
    assert torch.allclose(p.exact(p.boundary), torch.zeros(16), atol=1e-6)
    with torch.no_grad():
        m = p.evaluate()
    assert set(m) == {"loss", "rel_l2_error"} and m["rel_l2_error"] > 0.5


def test_pinn_laplacian_of_known_function():
    """The autograd Laplacian the loss uses is exact on a network that computes x² + y²."""
    p = build("pde.pinn_poisson", width=2, depth=1, n_interior=8, n_boundary=4)

    class Square(torch.nn.Module):
        def forward(self, xy):
            return (xy ** 2).sum(dim=1, keepdim=True)

    p.model = Square()
    assert torch.allclose(p._laplacian(p.interior), torch.full((8,), 4.0))


def test_fno_shapes():
    p = build("pde.fno_darcy", **TINY["pde.fno_darcy"])
    assert p.x_train.shape == (12, 3, 8, 8) and p.u_val.shape == (4, 8, 8)
    assert p.model(p.x_train[p.batch(1)]).shape == (4, 8, 8)
    with torch.no_grad():
        assert set(p.evaluate()) == {"loss", "val_rel_l2"}


def test_fno_runs_in_bfloat16_and_float64():
    for dtype in (torch.bfloat16, torch.float64):
        p = build("pde.fno_darcy", dtype=dtype, **TINY["pde.fno_darcy"])
        assert p.model(p.x_train[:2]).dtype == dtype


@pytest.mark.parametrize("name", sorted(TINY))
def test_determinism_per_seed(name):
    check_determinism(name, **TINY[name])


@pytest.mark.parametrize("name", sorted(TINY))
def test_adamw_decreases_loss(name):
    check_adamw_decreases_loss(name, **TINY[name])
