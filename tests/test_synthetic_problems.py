"""Synthetic training problems: matrix sensing, Rosenbrock, noisy quadratic."""
from __future__ import annotations

import pytest
import torch

from _training_checks import adamw_losses, build, check_determinism, check_adamw_decreases_loss

TINY = {
    "synthetic.matrix_sensing": {"n": 8, "rank": 2, "k": 4},
    "synthetic.rosenbrock": {"dim": 4},
    "synthetic.noisy_quadratic": {"dim": 10},
}


def test_matrix_sensing_ground_truth():
    p = build("synthetic.matrix_sensing", dtype=torch.float64, n=8, rank=2, k=4, condition=50.0)
    eig = torch.linalg.eigvalsh(p.m_star)
    assert eig[-1] == pytest.approx(1.0) and eig[-2] == pytest.approx(1 / 50)
    assert torch.allclose(eig[:-2], torch.zeros(6, dtype=torch.float64), atol=1e-12)
    assert p.a.shape == (10 * 8 * 2, 64) and p.x.shape == (8, 4)
    # at an exact factor of M* the loss and the error vanish
    vals, vecs = torch.linalg.eigh(p.m_star)
    x = torch.zeros(8, 4, dtype=torch.float64)
    x[:, :2] = vecs[:, -2:] * vals[-2:].clamp(min=0).sqrt()
    with torch.no_grad():
        p.x.copy_(x)
        m = p.evaluate()
    assert m["loss"] < 1e-20 and m["rel_error"] < 1e-10


def test_matrix_sensing_rejects_bad_ranks():
    with pytest.raises(ValueError, match="rank <= k <= n"):
        build("synthetic.matrix_sensing", n=4, rank=3, k=2)


def test_rosenbrock_values():
    p = build("synthetic.rosenbrock", dtype=torch.float64, dim=3, perturbation=0.0)
    assert torch.equal(p.x.detach(), torch.tensor([-1.2, 1.0, -1.2], dtype=torch.float64))
    expected = 100 * (1 - 1.44) ** 2 + 2.2 ** 2 + 100 * (-1.2 - 1) ** 2 + 0
    assert float(p.loss(None).detach()) == pytest.approx(expected)
    with torch.no_grad():
        p.x.fill_(1.0)
        assert p.evaluate() == {"loss": 0.0, "dist_to_opt": 0.0}


def test_noisy_quadratic_noise_in_batches_only():
    p = build("synthetic.noisy_quadratic", dim=10)
    b1, b1_again, b2 = p.batch(1), build("synthetic.noisy_quadratic", dim=10).batch(1), p.batch(2)
    assert torch.equal(b1, b1_again) and not torch.equal(b1, b2)
    assert float(b1.std()) == pytest.approx(0.01, rel=0.6)
    with torch.no_grad():
        assert p.evaluate()["loss"] == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("name", sorted(TINY))
def test_determinism_per_seed(name):
    # the quadratic starts at x = 0 for every seed; its seed moves the minimizer
    check_determinism(name, seeds_differ=name != "synthetic.noisy_quadratic", **TINY[name])
    a, c = build(name, seed=0, **TINY[name]), build(name, seed=1, **TINY[name])
    adamw_losses(a, 1), adamw_losses(c, 1)
    with torch.no_grad():
        assert a.evaluate() != c.evaluate()


@pytest.mark.parametrize("name", sorted(TINY))
def test_adamw_decreases_loss(name):
    check_adamw_decreases_loss(name, steps=20, **TINY[name])


def test_training_suites_parse():
    """suites/standard.toml and suites/gpu.toml (with its device swapped for the CPU) name every
    training problem of these plugins, with tuned AdamW settings for each."""
    from pathlib import Path

    from bench_core.suite import load_suite, parse_suite
    import bench_core

    root = Path(__file__).resolve().parent.parent / "suites"
    standard = load_suite(root / "standard.toml")
    assert len(standard.trials) == 11 * 3 * 5  # torch.adamw, muon, torch.sgd
    names = {t.problem for t in standard.trials}
    assert names == {n for n, s in bench_core.get_registry().problems.items()
                     if s.plugin in ("bench_vision", "bench_lm") or n in (
                         "pde.pinn_poisson", "pde.fno_darcy", "synthetic.matrix_sensing",
                         "synthetic.rosenbrock", "synthetic.noisy_quadratic")}
    grok = [t for t in standard.trials if t.problem == "lm.modular_arithmetic" and t.optimizer == "torch.adamw"]
    assert grok[0].hparams["weight_decay"] == 1.0
    import sys
    tomllib = __import__("tomllib" if sys.version_info >= (3, 11) else "tomli")
    data = tomllib.loads((root / "gpu.toml").read_text())
    data["device"] = "cpu"
    gpu = parse_suite(data, str(root / "gpu.toml"), bench_core.get_registry())
    assert {t.problem for t in gpu.trials} == names - {"vision.digits_mlp"}
