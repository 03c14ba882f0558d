"""bench_optim._tri_products: the triangular block products against dense matmuls."""
from __future__ import annotations

import pytest
import torch

from bench_optim import _tri_products as tp


@pytest.fixture(params=[256, 2], ids=["dense", "blocked"])
def leaf(request, monkeypatch):
    """Each check runs as one dense matmul and through the 2 × 2 block recursion (odd sizes too)."""
    monkeypatch.setattr(tp, "LEAF", request.param)
    return request.param


def _data(n=7, k=5, batch=3):
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(batch, n, n, generator=gen, dtype=torch.float64).triu()
    t = torch.randn(batch, n, n, generator=gen, dtype=torch.float64).triu()
    x = torch.randn(batch, n, k, generator=gen, dtype=torch.float64)
    return q, t, x


def test_syrk_upper_is_the_upper_triangle_of_the_gram_update(leaf):
    q, t, x = _data()
    c0 = q + q.mT
    c = tp.syrk_upper_(c0.clone(), x, 0.3, 0.7)
    expected = 0.7 * c0 + 0.3 * x @ x.mT
    torch.testing.assert_close(c.triu(), expected.triu())
    torch.testing.assert_close(tp.symmetrize_upper(c), expected)
    ct = tp.syrk_upper_(c0.clone(), x.mT.contiguous().mT, 1.0, 0.0)  # strided x, beta 0
    torch.testing.assert_close(ct.triu(), (x @ x.mT).triu())


def test_trmm_all_four_forms(leaf):
    q, t, x = _data()
    torch.testing.assert_close(tp.trmm(q, x), q @ x)
    torch.testing.assert_close(tp.trmm(q, x, transpose=True), q.mT @ x)
    torch.testing.assert_close(tp.trmm(q, x.mT, right=True), x.mT @ q)
    torch.testing.assert_close(tp.trmm(q, x.mT, right=True, transpose=True), x.mT @ q.mT)


def test_tri_tri_is_upper_triangular_product(leaf):
    q, t, x = _data(n=9)
    out = tp.tri_tri(t, q)
    torch.testing.assert_close(out, t @ q)
    assert torch.equal(out, out.triu())
