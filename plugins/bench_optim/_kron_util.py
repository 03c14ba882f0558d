"""Shared helpers for Kronecker-factored optimizers (Shampoo, SOAP, ...): blocking, batched
eigendecomposition with a float64 retry, inverse roots, and 4-bit block quantization.

Small, documented API (other optimizer modules of this plugin may import it):

- ``BlockPlan(params, block_size, precondition_1d)``: splits every parameter into at most
  ``block_size`` × ``block_size`` blocks (1-D parameters into vectors of at most ``block_size``),
  groups blocks of the same shape so that one batched call serves each group. A tensor of order
  ≥ 3 is viewed as a matrix (first dimension × the product of the others).
  ``plan.gather(tensors, group)`` stacks the blocks of a list of per-parameter tensors into one
  (B, r, c) (or (B, r)) tensor; ``plan.scatter(stacked_by_group)`` returns per-parameter tensors.
- ``work(t)``: the dtype the preconditioner math runs in (half precision -> float32).
- ``robust_eigh(mats, counters)``: batched ``torch.linalg.eigh`` with a float64 retry for the
  matrices that fail, and a mask of those that failed even then (counted, never silent).
- ``by_size(stacks, fn, *paired)``: one call of fn per distinct matrix size over a list of
  (B_i, n, n) stacks, split back per stack (used by the two below and SOAP's QR refresh).
- ``eigh_by_size(mats_list, counters)``: one eigh call per distinct matrix size over a list of
  (B_i, n_i, n_i) stacks.
- ``qr_eigh_by_size(mats_list, basis_list, counters)``: the cheap alternative: one warm-started
  power iteration + QR per matrix, one QR call per size.
- ``inverse_root(evals, evecs, exponent, epsilon)``: Q diag((λ⁺ + ε)^(−1/exponent)) Qᵀ, batched.
- ``quantize_4bit`` / ``dequantize_4bit`` / ``bjorck``: block-wise 4-bit linear-square quantization
  (two codes per byte, one float32 absmax per 64 values) and Björck orthogonality rectification,
  as in "4-bit Shampoo for Memory-Efficient Network Training".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

# --------------------------------------------------------------------------- blocking


@dataclass
class BlockGroup:
    """Blocks of one shape: ``shape`` is (r, c) for matrix blocks or (r,) for vector blocks;
    ``entries`` lists (parameter index, row slice, column slice or None)."""

    shape: tuple
    entries: list = field(default_factory=list)

    @property
    def order(self) -> int:
        """1 for vector blocks, 2 for matrix blocks."""
        return len(self.shape)

    def __len__(self) -> int:
        return len(self.entries)


def _splits(n: int, block: int) -> list[slice]:
    return [slice(i, min(i + block, n)) for i in range(0, n, block)]


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """The 1-D or 2-D view a tensor is preconditioned as (order ≥ 3: first dim × the rest)."""
    if t.dim() <= 2:
        return t
    return t.reshape(t.shape[0], -1)


class BlockPlan:
    """How the parameters are cut into blocks and which blocks share a shape.

    Parameters that are not preconditioned (scalars, or 1-D when ``precondition_1d`` is False)
    are listed in ``self.diagonal`` (indices) and take the first-order (grafting/Adam) path.
    """

    def __init__(self, params: list[torch.Tensor], block_size: int, precondition_1d: bool = True):
        self.shapes = [p.shape for p in params]
        self.groups: dict[tuple, BlockGroup] = {}
        self.diagonal: list[int] = []
        self.blocks_of: list[list[tuple]] = [[] for _ in params]  # (group key, k, rows, cols)
        self.blocked: int = 0  # parameters split into more than one block
        for i, p in enumerate(params):
            if p.dim() == 0 or (p.dim() == 1 and not precondition_1d):
                self.diagonal.append(i)
                continue
            m = as_matrix(p)
            rows = _splits(m.shape[0], block_size)
            cols = _splits(m.shape[1], block_size) if m.dim() == 2 else [None]
            if len(rows) * len(cols) > 1:
                self.blocked += 1
            for rs in rows:
                for cs in cols:
                    key = (rs.stop - rs.start,) if cs is None else (rs.stop - rs.start, cs.stop - cs.start)
                    group = self.groups.setdefault(key, BlockGroup(key))
                    self.blocks_of[i].append((key, len(group.entries), rs, cs))
                    group.entries.append((i, rs, cs))
        self.preconditioned = [i for i in range(len(params)) if self.blocks_of[i]]

    def gather(self, tensors: list[torch.Tensor], group: BlockGroup) -> torch.Tensor:
        """Stack the blocks of ``group`` taken from per-parameter ``tensors`` (indexed like params)."""
        views = []
        for i, rs, cs in group.entries:
            m = as_matrix(tensors[i])
            views.append(m[rs] if cs is None else m[rs, cs])
        if len(views) == 1:
            return views[0].unsqueeze(0)
        return torch.stack(views)

    def scatter(self, stacked: dict[tuple, torch.Tensor], index: int) -> torch.Tensor:
        """Parameter ``index``'s tensor assembled from its blocks in ``stacked`` (key -> (B, ...))."""
        blocks = self.blocks_of[index]
        shape = self.shapes[index]
        if len(blocks) == 1:
            key, k, _, _ = blocks[0]
            return stacked[key][k].reshape(shape)
        first = stacked[blocks[0][0]]
        out = torch.empty(shape, dtype=first.dtype, device=first.device)
        m = as_matrix(out)
        for key, k, rs, cs in blocks:
            if cs is None:
                m[rs] = stacked[key][k]
            else:
                m[rs, cs] = stacked[key][k]
        return out


def work(t: torch.Tensor) -> torch.Tensor:
    """``t`` in a dtype the preconditioner math runs in: float16/bfloat16 become float32
    (eigh and QR have no half-precision kernels; factors in half precision lose their small
    eigenvalues)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


# --------------------------------------------------------------------------- eigendecomposition


def _count(counters: dict | None, name: str, n: int) -> None:
    if counters is not None and n:
        counters[name] = counters.get(name, 0) + int(n)


def robust_eigh(mats: torch.Tensor, counters: dict | None = None):
    """Batched eigendecomposition of symmetric (B, n, n) ``mats`` in their own dtype.

    Matrices whose decomposition fails (LAPACK error or non-finite output) are retried in float64
    (counted as ``eigh_fp64_retries``); those that still fail are counted as ``eigh_failures``.
    Matrices with non-finite entries are not decomposed (counted as ``nonfinite_factors``).
    Returns (eigenvalues (B, n) ascending, eigenvectors (B, n, n), ok (B,) bool); where ok is
    False the returned values are meaningless and the caller keeps its previous ones.
    """
    B, n = mats.shape[0], mats.shape[-1]
    finite = torch.isfinite(mats).all(dim=-1).all(dim=-1)
    n_bad_input = int((~finite).sum())
    _count(counters, "nonfinite_factors", n_bad_input)
    eye = torch.eye(n, dtype=mats.dtype, device=mats.device)
    work = torch.where(finite[:, None, None], mats, eye) if n_bad_input else mats
    _count(counters, "eigh_calls", 1)
    try:
        evals, evecs = torch.linalg.eigh(work)
        ok = torch.isfinite(evals).all(-1) & finite
    except RuntimeError:  # torch.linalg.LinAlgError: the batch failed to converge
        evals = torch.zeros(B, n, dtype=mats.dtype, device=mats.device)
        evecs = eye.expand(B, n, n).clone()
        ok = torch.zeros(B, dtype=torch.bool, device=mats.device)
    retry = (~ok & finite).nonzero().flatten().tolist()
    if retry:
        _count(counters, "eigh_fp64_retries", len(retry))
        for b in retry:  # rare: one matrix at a time so that one failure does not sink the rest
            try:
                e64, v64 = torch.linalg.eigh(work[b].to(torch.float64))
                if bool(torch.isfinite(e64).all()):
                    evals[b], evecs[b], ok[b] = e64.to(mats.dtype), v64.to(mats.dtype), True
            except RuntimeError:
                pass
        _count(counters, "eigh_failures", sum(1 for b in retry if not bool(ok[b])))
    return evals, evecs, ok


def by_size(stacks: list[torch.Tensor], fn, *paired: list[torch.Tensor]) -> list[tuple]:
    """Call ``fn`` once per distinct (size, dtype) of the (B_i, n_i, n_i) ``stacks``, on their
    concatenation (and on that of the matching entries of each ``paired`` list); ``fn`` returns a
    tuple of batched results, which are split back per stack. Returns them in ``stacks``'s order."""
    groups: dict[tuple, list[int]] = {}
    for j, m in enumerate(stacks):
        groups.setdefault((m.shape[-1], m.dtype), []).append(j)
    out: list = [None] * len(stacks)
    for idx in groups.values():
        def cat(items):
            return torch.cat([items[j] for j in idx]) if len(idx) > 1 else items[idx[0]]
        results = fn(cat(stacks), *(cat(items) for items in paired))
        start = 0
        for j in idx:
            b = stacks[j].shape[0]
            out[j] = tuple(r[start:start + b] for r in results)
            start += b
    return out


def eigh_by_size(mats_list: list[torch.Tensor], counters: dict | None = None):
    """``robust_eigh`` over several (B_i, n_i, n_i) stacks with one call per distinct size n.

    Returns a list of (evals, evecs, ok) in the order of ``mats_list``.
    """
    return by_size(mats_list, lambda mats: robust_eigh(mats, counters))


def qr_eigh_by_size(mats_list: list[torch.Tensor], basis_list: list[torch.Tensor],
                    counters: dict | None = None):
    """Approximate eigendecompositions warm-started from ``basis_list``: one power iteration and
    a QR per matrix (Q = qr(A Q₀).Q, λ = diag(Qᵀ A Q)), one QR call per distinct size.

    Much cheaper than ``eigh`` on the CPU; accurate when A changes slowly between calls (the
    amortized QR eigendecomposition of Distributed Shampoo, the basis update of SOAP). Matrices
    with non-finite entries or output are flagged (ok False; ``nonfinite_factors``, ``qr_failures``).
    Returns a list of (evals, evecs, ok) in the order of ``mats_list``.
    """
    def power_qr(A, Q0):
        finite = torch.isfinite(A).all(-1).all(-1)
        _count(counters, "nonfinite_factors", int((~finite).sum()))
        _count(counters, "qr_calls", 1)
        q = torch.linalg.qr(torch.bmm(A, Q0)).Q
        evals = (q * torch.bmm(A, q)).sum(-2)
        ok = finite & torch.isfinite(q).all(-1).all(-1) & torch.isfinite(evals).all(-1)
        _count(counters, "qr_failures", int((finite & ~ok).sum()))
        return evals, q, ok

    return by_size(mats_list, power_qr, basis_list)


def inverse_root(evals: torch.Tensor, evecs: torch.Tensor, exponent: float, epsilon: float) -> torch.Tensor:
    """Q diag((max(λ, 0) + ε)^(−1/exponent)) Qᵀ for batched eigenpairs."""
    d = (evals.clamp(min=0) + epsilon).pow(-1.0 / exponent)
    return (evecs * d.unsqueeze(-2)) @ evecs.mT


# --------------------------------------------------------------------------- 4-bit quantization

QBLOCK = 64  #: values per quantization block (one float32 absmax each)
_LEVELS = 15  # 16 codes: t_j = -1 + 2 j / 15, value = sign(t_j) t_j^2 ("linear square" map)


def quantize_4bit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-wise 4-bit linear-square quantization of ``x`` (numel a multiple of 128 after padding).

    Returns (codes: uint8, two 4-bit codes per byte; scales: float32 absmax per block of 64).
    The code of a value v in a block with absmax s is round((sign(u)·√|u| + 1)·15/2), u = v/s.
    """
    flat = x.reshape(-1).float()
    pad = (-flat.numel()) % (2 * QBLOCK)
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    blocks = flat.view(-1, QBLOCK)
    scales = blocks.abs().amax(dim=1).clamp(min=1e-30)
    u = blocks / scales[:, None]
    t = u.sign() * u.abs().sqrt()
    codes = ((t + 1) * (_LEVELS / 2)).round_().clamp_(0, _LEVELS).to(torch.uint8).view(-1)
    packed = codes[0::2] | (codes[1::2] << 4)
    return packed, scales


def dequantize_4bit(packed: torch.Tensor, scales: torch.Tensor, shape, dtype=torch.float32) -> torch.Tensor:
    """Inverse of ``quantize_4bit``: a tensor of ``shape`` and ``dtype``."""
    codes = torch.stack([packed & 0x0F, packed >> 4], dim=-1).view(-1).to(dtype)
    t = codes * (2.0 / _LEVELS) - 1
    u = t.sign() * t * t
    vals = (u.view(-1, QBLOCK) * scales[:, None].to(dtype)).view(-1)
    return vals[:math.prod(shape)].view(shape)


def bjorck(u: torch.Tensor, iterations: int = 1) -> torch.Tensor:
    """Björck orthonormalization, U ← 1.5 U − 0.5 U (Uᵀ U), batched (orthogonality rectification)."""
    for _ in range(iterations):
        u = 1.5 * u - 0.5 * (u @ (u.mT @ u))
    return u


def tensor_bytes(obj) -> int:
    """Bytes held by the distinct storages of the tensors in ``obj`` (a tensor, or nested
    dicts / lists / tuples of them; other values are ignored)."""
    seen: set = set()

    def walk(o) -> int:
        if isinstance(o, torch.Tensor):
            if o.numel() == 0:
                return 0
            key = (o.untyped_storage().data_ptr(), str(o.device))
            if key in seen:
                return 0
            seen.add(key)
            return o.untyped_storage().nbytes()
        if isinstance(o, dict):
            return sum(walk(v) for v in o.values())
        if isinstance(o, (list, tuple)):
            return sum(walk(v) for v in o)
        return 0

    return walk(obj)


class GroupStepOptimizer(torch.optim.Optimizer):
    """Base of the blocked Kronecker optimizers (Shampoo, SOAP): ``step`` runs the subclass's
    ``_step_group(index, group)`` on every group with a trainable parameter."""

    def _step_group(self, gi: int, group: dict) -> None:
        raise NotImplementedError

    def state_bytes(self) -> int:
        """Bytes of all optimizer state as actually stored."""
        return tensor_bytes(list(self.state.values()))

    @torch.no_grad()
    def step(self, closure=None):
        """One step; returns the closure's loss when a closure is given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for gi, group in enumerate(self.param_groups):
            if any(p.requires_grad for p in group["params"]):
                self._step_group(gi, group)
        return loss
