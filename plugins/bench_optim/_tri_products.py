"""Matrix products with triangular structure, for the Kronecker-factored optimizers.

- ``syrk_upper_(c, x, alpha, beta)``: c ← β·c + α·x xᵀ on the upper triangle only (what BLAS
  calls SYRK); the strict lower triangle of c is left undefined. Read c with ``symmetrize_upper``.
- ``trmm(q, x, right=False, transpose=False)``: op(q)·x or x·op(q) for upper-triangular q (TRMM).
- ``tri_tri(a, b)``: a·b for upper-triangular a and b.

torch has no SYRK or TRMM: a dense matmul spends half its flops on the redundant lower triangle
(SYRK) or on zeros (TRMM), five sixths on zeros for two triangles. Here each product is split in 2 × 2 blocks, recursively down to
``LEAF``, and only the blocks that can be non-zero are multiplied, in place into views of the
output (batched ``baddbmm_``), so the flops approach those of the BLAS routines: SYRK n²k,
TRMM n²k, two triangles n³/3. On the CPU, for n = 2048 factors, that made the Gram update 1.6×,
the triangular × dense product 1.8× and the triangle × triangle product 2.5× faster than the dense
calls (benchmarks/tri_products.py, docs/performance.md). Why not scipy's BLAS SYRK/TRMM: its OpenBLAS
threads and torch's OpenMP threads spin on the same cores, and every hand-over between the two
cost more than the halved flops saved.
"""
from __future__ import annotations

import torch

#: Below this size a product is one dense batched matmul.
LEAF = 256


def syrk_upper_(c: torch.Tensor, x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """c ← β·c + α·x xᵀ for stacks c (B, n, n) and x (B, n, k), computed on the upper triangle
    (the diagonal blocks recursively, the off-diagonal block densely); returns c. Below the
    diagonal c holds β·c plus partial products: only its upper triangle is defined."""
    n = c.shape[-1]
    if n <= LEAF:
        return c.baddbmm_(x, x.mT, beta=beta, alpha=alpha)
    h = n // 2
    syrk_upper_(c[..., :h, :h], x[..., :h, :], alpha, beta)
    syrk_upper_(c[..., h:, h:], x[..., h:, :], alpha, beta)
    c[..., :h, h:].baddbmm_(x[..., :h, :], x[..., h:, :].mT, beta=beta, alpha=alpha)
    return c


def symmetrize_upper(c: torch.Tensor) -> torch.Tensor:
    """The full symmetric matrices whose upper triangles are those of c (a new tensor)."""
    return c.triu() + c.triu(1).mT


def trmm(q: torch.Tensor, x: torch.Tensor, right: bool = False, transpose: bool = False) -> torch.Tensor:
    """op(q) @ x, or x @ op(q) with ``right``, for upper-triangular q (B, n, n), op(q) = qᵀ when
    ``transpose``; x is (B, n, k) (or (B, k, n) with ``right``). Returns a new tensor."""
    if right:  # x op(q) = (op(q)ᵀ xᵀ)ᵀ
        return trmm(q, x.mT, transpose=not transpose).mT
    out = torch.empty(x.shape, dtype=torch.result_type(q, x), device=x.device)
    _trmm_into(out, q, x, transpose)
    return out


def _trmm_into(out, q, x, transpose, beta=0.0):
    """out ← β·out + op(q)·x by the block recursion (β = 0: out's contents are ignored)."""
    n = q.shape[-1]
    if n <= LEAF:
        out.baddbmm_(q.mT if transpose else q, x, beta=beta)
        return
    h = n // 2
    top, bottom = out[..., :h, :], out[..., h:, :]
    x1, x2 = x[..., :h, :], x[..., h:, :]
    if transpose:  # [q11ᵀ 0; q12ᵀ q22ᵀ] x
        _trmm_into(top, q[..., :h, :h], x1, True, beta)
        _trmm_into(bottom, q[..., h:, h:], x2, True, beta)
        bottom.baddbmm_(q[..., :h, h:].mT, x1)
    else:  # [q11 q12; 0 q22] x
        _trmm_into(top, q[..., :h, :h], x1, False, beta)
        top.baddbmm_(q[..., :h, h:], x2)
        _trmm_into(bottom, q[..., h:, h:], x2, False, beta)


def tri_tri(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for upper-triangular a and b (…, n, n); the result is upper triangular."""
    out = torch.empty(b.shape, dtype=torch.result_type(a, b), device=b.device)
    _tri_tri_into(out, a, b)
    return out


def _tri_tri_into(out, a, b):
    """Writes a @ b into out, the upper triangle and zeros below it (out's contents are ignored)."""
    n = a.shape[-1]
    if n <= LEAF:
        out.baddbmm_(a, b, beta=0.0)  # zero below the diagonal, as a and b are
        return
    h = n // 2
    out[..., h:, :h].zero_()
    _tri_tri_into(out[..., :h, :h], a[..., :h, :h], b[..., :h, :h])
    _tri_tri_into(out[..., h:, h:], a[..., h:, h:], b[..., h:, h:])
    top_right = out[..., :h, h:]  # a11 b12 + a12 b22, the second as (b22ᵀ a12ᵀ)ᵀ
    _trmm_into(top_right, a[..., :h, :h], b[..., :h, h:], False)
    _trmm_into(top_right.mT, b[..., h:, h:], a[..., :h, h:].mT, True, beta=1.0)
