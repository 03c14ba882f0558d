"""M-FAC (mfac): the Woodbury recursion against the dense inverse, the sliding window, one step,
failure modes, conformance and progress on synthetic.logreg."""
from __future__ import annotations

import torch

import bench_core
from bench_core.testing import check_optimizer
from bench_optim.mfac import MFAC, woodbury_coefficients


def _dense_ihvp(grads: torch.Tensor, damping: float, m: int, x: torch.Tensor) -> torch.Tensor:
    fisher = damping * torch.eye(grads.shape[1], dtype=grads.dtype) + grads.T @ grads / m
    return torch.linalg.solve(fisher, x)


def test_woodbury_coefficients_give_the_dense_inverse():
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(5, 12, generator=gen, dtype=torch.float64)
    x = torch.randn(12, generator=gen, dtype=torch.float64)
    b, den = woodbury_coefficients(g @ g.T, 0.3, 8)
    ihvp = x / 0.3 - g.T @ (b.T @ ((b @ (g @ x)) / den))
    torch.testing.assert_close(ihvp, _dense_ihvp(g, 0.3, 8, x))


def test_sliding_window_keeps_the_last_m_gradients():
    gen = torch.Generator().manual_seed(1)
    p = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    opt = MFAC([p], lr=0.1, num_grads=4, damping=0.5)
    grads = [torch.randn(3, 4, generator=gen, dtype=torch.float64) for _ in range(7)]
    for g in grads:
        before = p.detach().clone()
        p.grad = g
        opt.step()
    window = torch.stack([g.reshape(-1) for g in grads[-4:]])
    expected = before.reshape(-1) - 0.1 * _dense_ihvp(window, 0.5, 4, grads[-1].reshape(-1))
    torch.testing.assert_close(p.detach().reshape(-1), expected)
    assert opt.bench_counters["mfac_ihvp"] == 7


def test_nonfinite_gradient_is_kept_out_and_counted():
    p = torch.zeros(4, requires_grad=True)
    opt = MFAC([p], lr=0.1, num_grads=3)
    p.grad = torch.tensor([1.0, float("nan"), 0.0, 0.0])
    opt.step()
    assert opt.bench_counters["mfac_nonfinite_grads"] == 1
    assert torch.equal(p.detach(), torch.zeros(4)) and opt.state["window"]["count"] == 0


def test_conformance():
    check_optimizer("mfac")


def test_logreg_progress():
    spec = bench_core.problem_spec("synthetic.logreg")
    problem = spec.factory(seed=0, device=torch.device("cpu"), dtype=torch.float32)
    opt = MFAC(problem.parameters(), lr=0.1, damping=0.1, num_grads=16)
    for step in range(1, 81):
        batch = problem.batch(step)

        def closure():
            opt.zero_grad()
            loss = problem.loss(batch)
            loss.backward()
            return loss
        opt.step(closure)
    assert problem.evaluate()["val_accuracy"] >= 0.93
