"""SOAP (bench_optim.soap): trajectory against pytorch-optimizer's SOAP (which follows the paper's
reference code, projecting every moment every step), blocking, failure counting, conformance."""
from __future__ import annotations

import pytest
import pytorch_optimizer as po
import torch

import bench_core
from bench_core.testing import check_optimizer
from bench_optim import _tri_products
from bench_optim.soap import SOAP


pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: one thread is faster and steadier


def _trajectory(make, shapes, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in shapes]
    opt = make(params)
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(steps)]
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
    return [p.detach() for p in params], opt


@pytest.mark.parametrize("precondition_1d", [False, True])
def test_matches_reference_implementation(precondition_1d):
    """Same trajectory as pytorch-optimizer's SOAP over several eigenbasis refreshes."""
    shapes = [(6, 5), (6, 5), (4, 7), (5,)]
    kw = dict(lr=0.01, betas=(0.9, 0.95), weight_decay=0.01, precondition_frequency=3,
              precondition_1d=precondition_1d)
    ours, opt = _trajectory(lambda p: SOAP(p, **kw), shapes, 10)
    ref, _ = _trajectory(lambda p: po.SOAP(p, **kw), shapes, 10)
    start, _ = _trajectory(lambda p: SOAP(p, **kw), shapes, 0)
    for a, b, a0 in zip(ours, ref, start):  # the reference runs its QR in float32, hence the tolerance
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
        assert (a - a0).abs().max() > 1e-3  # and the parameters did move
    # refreshes at steps 4, 7, 10 (s = 3, 6, 9); one QR call per factor size (4, 5, 6, 7) each time
    assert opt.bench_counters["qr_calls"] == 3 * 4
    assert opt.bench_counters["unpreconditioned_params"] == (0 if precondition_1d else 1)


def test_blocked_factor_updates_match_dense_ones(monkeypatch):
    """The upper-triangle (SYRK-like) factor updates give the trajectory of dense ones where the
    first eigenbases are unique (factor null spaces of dimension <= 1); LEAF = 2 forces blocking."""
    shapes = [(6, 5), (6, 5), (4, 5)]
    kw = dict(lr=0.01, betas=(0.9, 0.95), precondition_frequency=3)
    dense, _ = _trajectory(lambda p: SOAP(p, **kw), shapes, 10)
    monkeypatch.setattr(_tri_products, "LEAF", 2)
    blocked, _ = _trajectory(lambda p: SOAP(p, **kw), shapes, 10)
    for a, b in zip(blocked, dense):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_same_shape_blocks_share_one_qr_call_per_size():
    params = [torch.zeros(8, 8, requires_grad=True) for _ in range(4)]
    opt = SOAP(params, lr=1e-2, precondition_frequency=1)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(8, 8)
        opt.step()
    assert opt.bench_counters["eigh_calls"] == 1  # step 1: all 8 factors of size 8 at once
    assert opt.bench_counters["qr_calls"] == 2  # one per refresh (steps 2 and 3)


def test_blocking_of_a_large_dimension():
    w = torch.zeros(6, 300, requires_grad=True)
    opt = SOAP([w], lr=1e-2, block_size=128, precondition_frequency=2)
    for _ in range(4):
        w.grad = torch.randn(6, 300)
        opt.step()
    factors = opt.state[w]["soap"]["factors"]
    assert max(f.shape[-1] for f in factors.values()) <= 128
    assert opt.bench_counters["blocked_params"] == 1
    assert torch.isfinite(w).all()


def test_nan_factor_keeps_basis_and_is_counted():
    a = torch.zeros(4, 4, requires_grad=True)
    b = torch.zeros(4, 4, requires_grad=True)
    opt = SOAP([a, b], lr=1e-2, precondition_frequency=1)
    for step in range(3):
        a.grad = torch.full((4, 4), float("nan")) if step == 2 else torch.randn(4, 4)
        b.grad = torch.randn(4, 4)
        opt.step()
    assert opt.bench_counters["nonfinite_factors"] == 2
    q = opt.state[a]["soap"]["Q"]["L4x4"]
    assert torch.isfinite(q).all()
    assert torch.isfinite(b).all()


def test_eigh_failure_falls_back_and_is_counted(monkeypatch):
    def broken(a, *args, **kw):
        raise torch.linalg.LinAlgError("simulated failure")

    monkeypatch.setattr(torch.linalg, "eigh", broken)
    w = torch.zeros(5, 3, requires_grad=True)
    opt = SOAP([w], lr=1e-2)
    for _ in range(3):
        w.grad = torch.randn(5, 3)
        opt.step()
    assert opt.bench_counters["eigh_fp64_retries"] == 2
    assert opt.bench_counters["eigh_failures"] == 2
    assert torch.isfinite(w).all() and w.abs().sum() > 0


def test_conformance():
    check_optimizer(bench_core.optimizer_spec("soap"), {"precondition_frequency": 2})


def test_bfloat16_parameters():
    params = [torch.zeros(8, 6, dtype=torch.bfloat16, requires_grad=True),
              torch.zeros(5, dtype=torch.bfloat16, requires_grad=True)]
    opt = SOAP(params, lr=1e-2, precondition_frequency=2, precondition_1d=True)
    for _ in range(5):
        for p in params:
            p.grad = torch.randn(p.shape).bfloat16()
        opt.step()
    assert all(p.dtype == torch.bfloat16 and torch.isfinite(p).all() and p.abs().sum() > 0 for p in params)
    assert opt.state[params[0]]["soap"]["Q"]["L8x6"].dtype == torch.float32


def test_state_bytes_counts_every_state_tensor():
    w, b = torch.zeros(8, 6, requires_grad=True), torch.zeros(5, requires_grad=True)
    opt = SOAP([w, b], lr=1e-2)
    for _ in range(2):
        w.grad, b.grad = torch.randn(8, 6), torch.randn(5)
        opt.step()
    # factors 8², 6²; bases 8², 6²; M' and V 8·6 each; Adam moments of the bias 5 each (float32)
    assert opt.state_bytes() == 4 * (2 * (64 + 36) + 2 * 48 + 2 * 5)
