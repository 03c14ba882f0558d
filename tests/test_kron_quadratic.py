"""synthetic.kron_quadratic: its construction, and Shampoo and SOAP reaching the target in far
fewer steps than AdamW tuned over a learning-rate grid."""
from __future__ import annotations

import pytest
import torch

import bench_core
from bench_optim.shampoo import Shampoo
from bench_optim.soap import SOAP
from bench_synthetic.kron_quadratic import KronQuadratic


pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: one thread is faster and steadier


def test_construction():
    prob = KronQuadratic(seed=0, device="cpu", dtype=torch.float64, m=6, n=4, condition=1e4)
    assert prob.evaluate()["loss"] == pytest.approx(1.0)
    with torch.no_grad():
        prob.W.copy_(prob.w_star)
    assert prob.evaluate()["loss"] < 1e-20 and prob.evaluate()["dist_to_opt"] == 0
    hess = 2 * torch.kron(prob.B @ prob.B.T, prob.A.T @ prob.A)  # vec(AWB) = (Bᵀ ⊗ A) vec(W)
    eig = torch.linalg.eigvalsh(hess)
    assert float(eig.max() / eig.min()) == pytest.approx(1e4, rel=1e-6)
    again = KronQuadratic(seed=0, device="cpu", dtype=torch.float64, m=6, n=4)
    assert torch.equal(again.C, prob.C)
    noisy = KronQuadratic(seed=0, device="cpu", dtype=torch.float32, m=6, n=4, noise=0.1)
    assert noisy.batch(3).shape == (6, 4) and torch.equal(noisy.batch(3), noisy.batch(3))
    assert bench_core.problem_spec("synthetic.kron_quadratic").targets == {"loss": 1e-6}


def _steps_to_target(make, max_steps, target=1e-6):
    prob = KronQuadratic(seed=0, device="cpu", dtype=torch.float32, m=16, n=16, condition=1e4)
    opt = make(prob.parameters())
    for k in range(1, max_steps + 1):
        opt.zero_grad()
        prob.loss(None).backward()
        opt.step()
        if k % 5 == 0 and prob.evaluate()["loss"] < target:
            return k
    return None


def test_shampoo_and_soap_beat_tuned_adamw():
    shampoo = _steps_to_target(lambda p: Shampoo(p, lr=0.3, betas=(0.9, 1.0), precondition_frequency=5), 200)
    soap = _steps_to_target(lambda p: SOAP(p, lr=0.1, betas=(0.9, 0.99), weight_decay=0.0,
                                           precondition_frequency=5), 200)
    assert shampoo is not None and soap is not None
    budget = 2 * max(shampoo, soap)  # AdamW, at its best learning rate, needs more than twice as many
    for lr in (0.03, 0.1, 0.3, 1.0):
        adamw = _steps_to_target(lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.0), budget)
        assert adamw is None, f"AdamW lr={lr} reached the target in {adamw} steps"
