"""PSGD Kron (psgd.kron_whiten, psgd.kron_newton): block kernels and one step against a dense
reference, conformance, quality on synthetic.kron_quadratic, failure modes."""
from __future__ import annotations

import pytest
import torch

import bench_core
from bench_core.testing import check_optimizer
from bench_optim import _tri_products, psgd
from bench_optim.psgd import KronPSGD


@pytest.fixture
def small_leaf(monkeypatch):
    """Make the 2 × 2 block recursion of the triangular products run on tiny matrices."""
    monkeypatch.setattr(_tri_products, "LEAF", 2)


def test_block_kernels_match_dense(small_leaf):
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(3, 7, 7, generator=gen, dtype=torch.float64).triu()
    t = torch.randn(3, 7, 7, generator=gen, dtype=torch.float64).triu()
    x = torch.randn(3, 7, 4, generator=gen, dtype=torch.float64)
    a = torch.randn(3, 7, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(3, 7, 5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(psgd._left(q, "tri", x), q @ x)
    torch.testing.assert_close(psgd._left(q, "tri", x, transpose=True), q.mT @ x)
    torch.testing.assert_close(psgd._right(q, "tri", x.mT), x.mT @ q.mT)
    torch.testing.assert_close(psgd._right(q, "tri", x.mT, transpose=True), x.mT @ q)
    torch.testing.assert_close(_tri_products.tri_tri(t, q), t @ q)
    torch.testing.assert_close(psgd._upper_gram_diff(a, b), (a @ a.mT - b @ b.mT).triu())
    s = a @ a.mT + b @ b.mT
    bound = psgd._norm_lower_bound(a, b)
    exact = torch.linalg.matrix_norm(s, ord=2)
    assert torch.all(bound <= exact * (1 + 1e-12)) and torch.all(bound >= exact / 7 ** 0.5)
    for per_matrix in (True, False):  # the CPU's torch.mv loop and the batched (GPU) path agree
        torch.testing.assert_close(psgd._norm_lower_bound(a, b, per_matrix=per_matrix), bound)
        torch.testing.assert_close(psgd._norm_lower_bound(a.mT, b.mT, per_matrix=per_matrix),
                                   psgd._norm_lower_bound(a.mT, b.mT, per_matrix=not per_matrix))


def _dense_reference_steps(w0, grads, vs, lr, beta, precond_lr):
    """PSGD Kron whitening steps written densely from the paper's update rule (float64)."""
    w = w0.clone()
    mom = torch.zeros_like(w)
    ql = qr = None
    for t, (g, v) in enumerate(zip(grads, vs), start=1):
        mom = beta * mom + (1 - beta) * g
        h = mom / (1 - beta ** t)
        if ql is None:
            s = h.pow(4).mean() ** (-1 / 8)
            ql, qr = s ** 0.5 * torch.eye(w.shape[0], dtype=w.dtype), s ** 0.5 * torch.eye(w.shape[1], dtype=w.dtype)
        a = ql @ h @ qr.T
        conj = torch.linalg.inv(ql).T @ v @ torch.linalg.inv(qr)
        new = []
        for q, (t1, t2) in ((ql, (a @ a.T, conj @ conj.T)), (qr, (a.T @ a, conj.T @ conj))):
            s = t1 + t2
            x = s[torch.argmax(torch.diagonal(s))]
            bound = torch.linalg.vector_norm(s @ (x / torch.linalg.vector_norm(x)))
            new.append(q - precond_lr / bound * torch.triu(t1 - t2) @ q)
        ql, qr = new
        pre = ql.T @ ql @ h @ qr.T @ qr
        rms = pre.pow(2).mean().sqrt()
        pre = pre * min(1.0, 1.1 / (float(rms) + 1e-6))
        w = w - lr * pre
    return w


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
def test_whitening_steps_match_dense_reference(small_leaf, shape):
    gen = torch.Generator().manual_seed(1)
    w0 = torch.randn(shape, generator=gen, dtype=torch.float64)
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3)]
    p = w0.clone().requires_grad_()
    opt = KronPSGD([p], lr=0.05, momentum=0.9, precond_lr=0.1)
    vs = []
    for step, g in enumerate(grads):
        torch.manual_seed(100 + step)
        canon = (max(shape), min(shape))
        v = torch.randn(1, *canon, dtype=torch.float64)[0]  # the optimizer's draw, canonical view
        vs.append(v if shape[0] >= shape[1] else v.T)
        torch.manual_seed(100 + step)
        p.grad = g.clone()
        opt.step()
    ref = _dense_reference_steps(w0, grads, vs, lr=0.05, beta=0.9, precond_lr=0.1)
    torch.testing.assert_close(p.detach(), ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", ["psgd.kron_whiten", "psgd.kron_newton"])
def test_conformance(name):
    check_optimizer(name)


def _run(name, hparams, steps, target, m=12, n=8):
    spec = bench_core.problem_spec("synthetic.kron_quadratic")
    problem = spec.factory(seed=0, device=torch.device("cpu"), dtype=torch.float32, m=m, n=n, condition=1e4)
    opt_spec = bench_core.optimizer_spec(name)
    torch.manual_seed(0)
    opt = opt_spec.factory(problem.parameters(), **{**opt_spec.defaults, **hparams})
    create_graph = "create_graph" in opt_spec.requires
    for step in range(1, steps + 1):
        def closure():
            opt.zero_grad(set_to_none=True)
            loss = problem.loss(None)
            loss.backward(create_graph=create_graph)
            return loss
        opt.step(closure)
        if step % 5 == 0 and problem.evaluate()["loss"] <= target:
            return step, opt
    return None, opt


def test_newton_form_beats_tuned_adamw_on_kron_quadratic():
    steps, opt = _run("psgd.kron_newton", {"lr": 0.5}, 400, 1e-6)
    assert steps is not None and steps <= 400
    assert opt.bench_counters["hvp"] == steps
    for lr in (3e-2, 1e-1, 3e-1, 1.0):  # AdamW tuned over lr
        adam_steps, _ = _run("torch.adamw", {"lr": lr, "weight_decay": 0.0}, 400, 1e-6)
        assert adam_steps is None


def test_whitening_form_reaches_moderate_target_before_adamw():
    steps, _ = _run("psgd.kron_whiten", {"lr": 3e-2}, 300, 1e-3)
    best_adam = min(s or 10**9 for s in (_run("torch.adamw", {"lr": lr, "weight_decay": 0.0}, 300, 1e-3)[0]
                                         for lr in (3e-2, 1e-1)))
    assert steps is not None and steps < best_adam


def test_nonfinite_factor_is_restored_and_counted():
    p = torch.zeros(6, 4, requires_grad=True)
    opt = KronPSGD([p], lr=1e-2)
    p.grad = torch.randn(6, 4)
    opt.step()
    q_before = opt.state[p]["ql"].clone()
    bad = torch.randn(6, 4)
    bad[0, 0] = float("inf")
    p.grad = bad
    opt.step()
    assert opt.bench_counters["psgd_nonfinite"] == 1
    assert torch.equal(opt.state[p]["ql"], q_before)


def test_vectors_scalars_and_huge_dimensions():
    w = torch.zeros(6, 3, requires_grad=True)  # 6 > max_size_triangular: diagonal left factor
    bias = torch.zeros(5, requires_grad=True)
    scale = torch.zeros((), requires_grad=True)
    conv = torch.zeros(4, 2, 3, 3, requires_grad=True)
    opt = KronPSGD([w, bias, scale, conv], lr=3e-2, max_size_triangular=4)
    target = [torch.ones_like(t) for t in (w, bias, scale, conv)]

    def closure():
        opt.zero_grad()
        loss = sum(((t - y) ** 2).sum() for t, y in zip((w, bias, scale, conv), target))
        loss.backward()
        return loss
    first = float(closure())
    for _ in range(60):
        opt.step(closure)
    assert float(closure()) < 0.5 * first
    assert opt.state[w]["ql"].dim() == 1 and opt.state[w]["qr"].dim() == 2
    assert opt.state[bias]["ql"].shape == (5,) and opt.state[conv]["qr"].shape == (4, 4)
