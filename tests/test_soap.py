"""SOAP (bench_optim.soap): trajectory against pytorch-optimizer's SOAP (which follows the paper's
reference code, projecting every moment every step) from the same first eigenbasis, so that the
comparison holds whatever eigenbasis a LAPACK build picks for a rank-deficient factor; blocking,
failure counting, conformance."""
from __future__ import annotations

import pytest
import pytorch_optimizer as po
import torch

import bench_core
from bench_core.testing import check_optimizer
from bench_optim import _kron_util as ku
from bench_optim import _tri_products
from bench_optim.soap import SOAP


pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: one thread is faster and steadier


def _trajectory(make, shapes, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in shapes]
    opt = make(params)
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(steps)]
    _steps(params, opt, grads)
    return [p.detach() for p in params], opt


def _steps(params, opt, grads):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()


def _check_eigenbasis(factor, q):
    """q is an orthonormal eigenbasis of the symmetric ``factor``, eigenvalues descending.

    This is all the first eigendecomposition determines: SOAP's first factors come from one
    gradient, so they are rank-deficient and, within their null space, any orthonormal basis is an
    eigenbasis; which one LAPACK returns depends on its build (and the trajectory on that choice).
    """
    n = factor.shape[-1]
    scale = float(torch.linalg.matrix_norm(factor, 2))
    torch.testing.assert_close(q.mT @ q, torch.eye(n, dtype=q.dtype), rtol=0, atol=1e-12)
    d = q.mT @ factor @ q
    torch.testing.assert_close(d, torch.diag_embed(torch.diagonal(d)), rtol=0, atol=1e-12 * scale)
    evals = torch.diagonal(d)
    torch.testing.assert_close(evals, torch.linalg.eigvalsh(factor).flip(0), rtol=0, atol=1e-12 * scale)
    assert bool((evals[:-1] >= evals[1:] - 1e-12 * scale).all()), evals


def _compare_with_reference(precondition_1d):
    """Run our SOAP and pytorch-optimizer's side by side on the same gradients and check that they
    agree, in a way that does not depend on which eigenbasis LAPACK picks for a repeated eigenvalue.

    Step 1 only accumulates the factors and takes their eigenbases: the factors must agree, and
    each implementation's basis must be an eigenbasis of them with eigenvalues descending. The
    reference is then handed our first bases (the one choice the update rule leaves open), and the
    remaining nine steps, with refreshes at steps 4, 7 and 10, must follow the same trajectory: a
    wrong projection, moment, bias correction, weight decay, factor update, eigenvalue ordering or
    refresh shows there. From step 4 on every factor has full rank, so the refreshes (power
    iteration, QR) are unique up to column signs, which the update does not depend on.
    """
    shapes = [(6, 5), (6, 5), (4, 7), (5,)]
    kw = dict(lr=0.01, betas=(0.9, 0.95), weight_decay=0.01, precondition_frequency=3,
              precondition_1d=precondition_1d)
    start, _ = _trajectory(lambda p: SOAP(p, **kw), shapes, 0)
    gen = torch.Generator().manual_seed(1)
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(10)]
    ours = [x.clone().requires_grad_() for x in start]
    ref = [x.clone().requires_grad_() for x in start]
    opt, ref_opt = SOAP(ours, **kw), po.SOAP(ref, **kw)
    _steps(ours, opt, grads[:1])
    _steps(ref, ref_opt, grads[:1])

    st = opt.state[ours[0]]["soap"]
    plan = ku.BlockPlan(ours, 10000, precondition_1d)
    for i, p in enumerate(ref):
        if not plan.blocks_of[i]:  # plain Adam in both
            assert ref_opt.state[p]["Q"] == [[]]
            continue
        ((key, k, _, _),) = plan.blocks_of[i]
        name = "x".join(map(str, key))
        mine = []
        for side, ref_factor, ref_q in zip("LR", ref_opt.state[p]["GG"], ref_opt.state[p]["Q"]):
            factor = _tri_products.symmetrize_upper(st["factors"][side + name])[k]
            q = st["Q"][side + name][k]
            torch.testing.assert_close(factor, ref_factor, rtol=1e-12, atol=1e-14)
            _check_eigenbasis(factor, q)
            _check_eigenbasis(ref_factor, ref_q)
            mine.append(q.clone())
        assert len(mine) == len(ref_opt.state[p]["Q"])
        ref_opt.state[p]["Q"] = mine

    _steps(ours, opt, grads[1:])
    _steps(ref, ref_opt, grads[1:])
    for a, b, a0 in zip(ours, ref, start):  # the reference runs its QR in float32, hence the tolerance
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-7)
        assert (a - a0).abs().max() > 1e-3  # and the parameters did move
    # refreshes at steps 4, 7, 10 (s = 3, 6, 9); one QR call per factor size (4, 5, 6, 7) each time
    assert opt.bench_counters["qr_calls"] == 3 * 4
    assert opt.bench_counters["unpreconditioned_params"] == (0 if precondition_1d else 1)


@pytest.mark.parametrize("precondition_1d", [False, True])
def test_matches_reference_implementation(precondition_1d):
    """Same factors, valid first eigenbases, same trajectory as pytorch-optimizer's SOAP over three
    eigenbasis refreshes (see _compare_with_reference)."""
    _compare_with_reference(precondition_1d)


def test_reference_comparison_does_not_depend_on_the_lapack_build(monkeypatch):
    """Another LAPACK may return another basis of a factor's null space: emulate that by rotating
    every (numerically) repeated eigenvalue's eigenvectors at random, differently in each call,
    so the two implementations start from different bases; the comparison must still hold."""
    real_eigh = torch.linalg.eigh
    gen = torch.Generator().manual_seed(7)

    def other_lapack(a, *args, **kw):
        evals, evecs = real_eigh(a, *args, **kw)
        evecs = evecs.clone()
        for b in range(evals.reshape(-1, evals.shape[-1]).shape[0]):
            lam = evals.reshape(-1, evals.shape[-1])[b]
            vec = evecs.reshape(-1, *evecs.shape[-2:])[b]
            tol = 1e-10 * float(lam.abs().max())
            start = 0
            for j in range(1, len(lam) + 1):
                if j == len(lam) or float(lam[j] - lam[j - 1]) > tol:
                    if j - start > 1:
                        rot, _ = torch.linalg.qr(torch.randn(j - start, j - start, generator=gen,
                                                             dtype=torch.float64))
                        vec[:, start:j] = vec[:, start:j] @ rot.to(vec.dtype)
                    start = j
        return torch.return_types.linalg_eigh((evals, evecs))

    monkeypatch.setattr(torch.linalg, "eigh", other_lapack)
    _compare_with_reference(precondition_1d=True)


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
