"""Shampoo (bench_optim.shampoo): update rule against a direct full-matrix computation, blocking,
grafting, 4-bit state size, failure counting, and the conformance kit."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

import bench_core
from bench_core.testing import check_optimizer
from bench_optim import _kron_util as ku
from bench_optim.shampoo import Shampoo


pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: one thread is faster and steadier


def _grads(shapes, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(steps)]


def _root(mat, p, eps):
    """(mat + eps I)^(-1/p) computed directly (scipy, float64)."""
    m = mat.numpy() + eps * np.eye(mat.shape[0])
    return torch.from_numpy(np.real(scipy.linalg.fractional_matrix_power(m, -1.0 / p)))


def _reference(w0, grads, lr, beta2, eps, block, graft=None, beta1=0.0):
    """Shampoo on one matrix, block by block, with full matrices: L, R, roots every step."""
    w = w0.clone()
    rows = [slice(i, min(i + block, w.shape[0])) for i in range(0, w.shape[0], block)]
    cols = [slice(j, min(j + block, w.shape[1])) for j in range(0, w.shape[1], block)]
    L = {(a, b): 0.0 for a in range(len(rows)) for b in range(len(cols))}
    R = dict(L)
    m = torch.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        mh = m / (1 - beta1 ** t)
        upd = torch.zeros_like(w)
        for a, rs in enumerate(rows):
            for b, cs in enumerate(cols):
                gb = g[rs, cs]
                L[a, b] = beta2 * L[a, b] + (1 - beta2) * gb @ gb.T
                R[a, b] = beta2 * R[a, b] + (1 - beta2) * gb.T @ gb
                bc = 1 - beta2 ** t
                d = _root(L[a, b] / bc, 4, eps) @ mh[rs, cs] @ _root(R[a, b] / bc, 4, eps)
                if graft == "sgd":
                    d = d * mh[rs, cs].norm() / d.norm()
                upd[rs, cs] = d
        w -= lr * upd
    return w


@pytest.mark.parametrize("block,graft,beta1", [(100, "none", 0.0), (2, "none", 0.0), (3, "sgd", 0.9)])
def test_matches_full_matrix_reference(block, graft, beta1):
    gen = torch.Generator().manual_seed(1)
    w0 = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    grads = _grads([(5, 4)], 4)
    w = w0.clone().requires_grad_()
    opt = Shampoo([w], lr=0.1, betas=(beta1, 0.9), epsilon=1e-3, block_size=block, precondition_frequency=1,
                  start_preconditioning_step=1, grafting=graft)
    for (g,) in grads:
        w.grad = g.clone()
        opt.step()
    expected = _reference(w0, [g for (g,) in grads], 0.1, 0.9, 1e-3, block, None if graft == "none" else graft, beta1)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-8, atol=1e-10)
    assert opt.bench_counters["blocked_params"] == (1 if block < 5 else 0)


def test_vector_and_higher_order_parameters():
    """A bias is preconditioned as an order-1 tensor (L^(-1/2)); order 3 is viewed as a matrix."""
    b0 = torch.randn(6, dtype=torch.float64)
    grads = _grads([(6,)], 3, seed=2)
    b = b0.clone().requires_grad_()
    opt = Shampoo([b], lr=0.1, betas=(0.0, 0.9), epsilon=1e-3, precondition_frequency=1,
                  start_preconditioning_step=1, grafting="none")
    expected, L = b0.clone(), 0.0
    for t, (g,) in enumerate(grads, start=1):
        b.grad = g.clone()
        opt.step()
        L = 0.9 * L + 0.1 * torch.outer(g, g)
        expected -= 0.1 * _root(L / (1 - 0.9 ** t), 2, 1e-3) @ g
    torch.testing.assert_close(b.detach(), expected, rtol=1e-8, atol=1e-10)

    t3 = torch.zeros(3, 2, 4, requires_grad=True)
    bias = torch.zeros(5, requires_grad=True)
    opt = Shampoo([t3, bias], lr=0.1, precondition_frequency=1, precondition_1d=False)
    for _ in range(3):
        t3.grad, bias.grad = torch.randn(3, 2, 4), torch.randn(5)
        opt.step()
    assert opt.bench_counters["unpreconditioned_params"] == 1
    assert torch.isfinite(t3).all() and torch.isfinite(bias).all()
    assert opt.state[t3]["shampoo"]["factors"]["R3x8"].shape == (1, 8, 8)


def test_huge_parameter_is_blocked():
    w = torch.zeros(10, 1000, requires_grad=True)
    opt = Shampoo([w], lr=1e-2, block_size=64, precondition_frequency=2)
    for _ in range(2):
        w.grad = torch.randn(10, 1000)
        opt.step()
    factors = opt.state[w]["shampoo"]["factors"]
    assert max(f.shape[-1] for f in factors.values()) <= 64
    assert opt.bench_counters["blocked_params"] == 1
    # one refresh, one eigh call per factor size: L of 10, R of 64 (15 blocks) and R of 40 (1 block)
    assert opt.bench_counters["eigh_calls"] == 3


# --------------------------------------------------------------------------- 4-bit
def test_4bit_quantization_roundtrip_and_rectification():
    q, _ = torch.linalg.qr(torch.randn(4, 64, 64, generator=torch.Generator().manual_seed(0)))
    codes, scales = ku.quantize_4bit(q)
    assert codes.dtype == torch.uint8 and codes.numel() == q.numel() // 2
    deq = ku.dequantize_4bit(codes, scales, q.shape)
    assert (deq - q).abs().max() < 0.1 * q.abs().max()
    eye = torch.eye(64)
    before = torch.linalg.matrix_norm(deq.mT @ deq - eye).max()
    after = torch.linalg.matrix_norm(ku.bjorck(deq).mT @ ku.bjorck(deq) - eye).max()
    assert after < 0.5 * before


def _run(quantize, shapes=((64, 64), (128, 64), (64,)), steps=4):
    params = [torch.zeros(s, requires_grad=True) for s in shapes]
    opt = Shampoo(params, lr=1e-2, precondition_frequency=2, quantize_4bit=quantize)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return params, opt


def test_4bit_state_is_at_most_a_sixth():
    _, full = _run(False)
    params, quant = _run(True)
    assert quant.preconditioner_bytes() <= full.preconditioner_bytes() / 6
    assert quant.state_bytes() < full.state_bytes()
    # the optimizer_state_bytes metric reports the real (packed) size through state_bytes()
    metric = bench_core.metric_spec("optimizer_state_bytes")
    ctx = type("Ctx", (), {"optimizer": quant})()
    assert metric.fn(ctx) == quant.state_bytes()
    assert all(torch.isfinite(p).all() for p in params)


def test_4bit_tracks_32bit_direction():
    """With the same statistics schedule, the 4-bit preconditioned step stays close to 32-bit."""
    w32 = torch.zeros(32, 32, requires_grad=True)
    w4 = torch.zeros(32, 32, requires_grad=True)
    kw = dict(lr=1e-2, precondition_frequency=1, start_preconditioning_step=1, betas=(0.0, 0.9))
    o32, o4 = Shampoo([w32], **kw), Shampoo([w4], quantize_4bit=True, **kw)
    g = torch.randn(32, 32, generator=torch.Generator().manual_seed(3))
    w32.grad, w4.grad = g.clone(), g.clone()
    o32.step()
    o4.step()
    cos = torch.nn.functional.cosine_similarity(w32.detach().flatten(), w4.detach().flatten(), dim=0)
    assert cos > 0.9


# --------------------------------------------------------------------------- failure modes
def test_eigh_failure_is_retried_in_float64_and_counted(monkeypatch):
    real = torch.linalg.eigh

    def flaky(a, *args, **kw):
        if a.dtype == torch.float32:
            raise torch.linalg.LinAlgError("simulated failure to converge")
        return real(a, *args, **kw)

    monkeypatch.setattr(torch.linalg, "eigh", flaky)
    w = torch.zeros(8, 6, requires_grad=True)
    opt = Shampoo([w], lr=1e-2, precondition_frequency=1, start_preconditioning_step=1)
    w.grad = torch.randn(8, 6)
    opt.step()
    assert opt.bench_counters["eigh_fp64_retries"] == 2  # L and R
    assert opt.bench_counters["eigh_failures"] == 0
    root = opt.state[w]["shampoo"]["roots"]["L8x6"]
    assert not torch.allclose(root, torch.eye(8).expand_as(root))


def test_eigh_failure_keeps_previous_root_and_is_counted(monkeypatch):
    w = torch.zeros(8, 6, requires_grad=True)
    opt = Shampoo([w], lr=1e-2, precondition_frequency=1, start_preconditioning_step=1)
    w.grad = torch.randn(8, 6)
    opt.step()
    before = opt.state[w]["shampoo"]["roots"]["L8x6"].clone()

    def broken(a, *args, **kw):
        raise torch.linalg.LinAlgError("simulated failure")

    monkeypatch.setattr(torch.linalg, "eigh", broken)
    w.grad = torch.randn(8, 6)
    opt.step()
    assert opt.bench_counters["eigh_failures"] == 2
    torch.testing.assert_close(opt.state[w]["shampoo"]["roots"]["L8x6"], before)
    assert torch.isfinite(w).all()


def test_nan_in_a_factor_is_counted_and_isolated():
    a = torch.zeros(4, 4, requires_grad=True)
    b = torch.zeros(4, 4, requires_grad=True)
    opt = Shampoo([a, b], lr=1e-2, precondition_frequency=1, start_preconditioning_step=1)
    a.grad, b.grad = torch.randn(4, 4), torch.randn(4, 4)
    opt.step()
    a.grad = torch.full((4, 4), float("nan"))
    b.grad = torch.randn(4, 4)
    opt.step()
    assert opt.bench_counters["nonfinite_factors"] == 2  # a's L and R; b's are decomposed as usual
    assert opt.bench_counters["eigh_failures"] == 0
    assert torch.isfinite(b).all()
    assert torch.isfinite(opt.state[a]["shampoo"]["roots"]["L4x4"]).all()


# --------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("name", ["shampoo", "shampoo4bit"])
def test_conformance(name):
    check_optimizer(bench_core.optimizer_spec(name), {"precondition_frequency": 2})


def test_qr_root_method_converges_to_the_eigh_roots():
    """Warm-started power iteration + QR refreshes approach the exact (eigh) inverse roots."""
    gen = torch.Generator().manual_seed(4)
    g = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    roots = {}
    for method in ("eigh", "qr"):
        w = torch.zeros(6, 5, dtype=torch.float64, requires_grad=True)
        opt = Shampoo([w], lr=1e-3, precondition_frequency=1, epsilon=1e-3, root_method=method)
        for _ in range(60):
            w.grad = g.clone()
            opt.step()
        roots[method] = opt.state[w]["shampoo"]["roots"]["L6x5"]
    # first refresh by eigh, the other 59 by QR; one call per factor size (6 and 5) each time
    assert opt.bench_counters["eigh_calls"] == 2 and opt.bench_counters["qr_calls"] == 2 * 59
    torch.testing.assert_close(roots["qr"], roots["eigh"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("quantize", [False, True])
def test_bfloat16_parameters_keep_float32_factors(quantize):
    params = [torch.zeros(8, 6, dtype=torch.bfloat16, requires_grad=True),
              torch.zeros(5, dtype=torch.bfloat16, requires_grad=True)]
    opt = Shampoo(params, lr=1e-2, precondition_frequency=2, quantize_4bit=quantize)
    for _ in range(4):
        for p in params:
            p.grad = torch.randn(p.shape).bfloat16()
        opt.step()
    assert all(p.dtype == torch.bfloat16 and torch.isfinite(p).all() and p.abs().sum() > 0 for p in params)
    assert opt.bench_counters["eigh_fp64_retries"] == 0
    assert opt.state[params[0]]["shampoo"]["evals" if quantize else "factors"]["L8x6"].dtype == torch.float32
