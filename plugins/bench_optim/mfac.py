"""M-FAC: SGD preconditioned by a sliding-window empirical Fisher inverse, ``mfac``.

Paper: "M-FAC: Efficient Matrix-Free Approximations of Second-Order Information" (Frantar,
Kurtic, Alistarh), the dynamic algorithm for optimization.

The curvature is the damped empirical Fisher of the last m gradients g_1 … g_m (all parameters
flattened into one vector of size d):

    F = λ I + (1/m) Σ_i g_i g_iᵀ

Its inverse is built by m Woodbury rank-one updates. Writing v_i = F_{i-1}⁻¹ g_i = Σ_j B_ij g_j
(B lower triangular, B_ii = 1/λ) and den_i = m + g_iᵀ v_i, the inverse-Hessian-vector product is

    F⁻¹ x = x / λ − Σ_i v_i (v_iᵀ x) / den_i = x / λ − Gᵀ Bᵀ ((B G x) / den)

which costs O(m d + m²): one product G x, two with the m × m matrix B. Replacing the oldest
gradient costs O(m d) for the new row of the Gram matrix D = G Gᵀ and O(m³) to rebuild B and den
from D (the sum is order-free, so the ring buffer's slot order is used as it is). The step is
SGD with momentum and decoupled weight decay on F⁻¹ g:

    u ← μ u + F⁻¹ g;   θ ← θ (1 − η wd) − η u

EFCP ("Error Feedback Can Accurately Compress Preconditioners", Modoranu et al.): with
``compression`` "topk" or "lowrank" the window holds compressed gradients, and what compression
drops is fed back through a dense error accumulator e (size d):

    e ← e + g;   c = C(e);   e ← e − c;   the window stores c (the step still uses F̂⁻¹ g)

- "topk": C keeps the ``density``·d entries of e largest in magnitude (at least one); the window
  stores their values (m × k, the parameters' dtype) and indices (m × k, int32).
- "lowrank": each tensor of 2 or more dimensions (viewed as shape[0] × the rest) is compressed to
  rank r = min(``rank``, its sides) by one power iteration warm-started from the previous one
  (PowerSGD's compressor, "PowerSGD: Practical Low-Rank Gradient Compression"): P = E Q,
  P ← orth(P), Q = Eᵀ P, C = P Qᵀ; the window stores the factors P (m × rows × r) and
  Q (m × cols × r); vectors (biases, norms) are stored whole.

The Gram matrix, G x and Gᵀ y are computed on the compressed form (index gathers and scatters,
or products of the factors), never from a dense m × d window. ``state_bytes()`` counts every
tensor the optimizer holds (window, Gram matrix, Woodbury coefficients, error accumulator,
momentum): m·d values for the dense window against m·k·(value + index) + d for top-k.
"""
from __future__ import annotations

import torch

import bench_core


def woodbury_coefficients(gram: torch.Tensor, damping: float, m: int):
    """From the Gram matrix D = G Gᵀ (k × k, k ≤ m gradients) return (B, den) such that
    v_i = Σ_j B_ij g_j = F_{i-1}⁻¹ g_i and den_i = m + g_iᵀ v_i. O(k³); the loop is over rows."""
    k = gram.shape[0]
    b = torch.zeros_like(gram)
    den = torch.empty(k, dtype=gram.dtype, device=gram.device)
    for i in range(k):
        # v_i = g_i/λ − Σ_{j<i} v_j (v_jᵀ g_i) / den_j, with v_jᵀ g_i = (B D)_{j i}
        row = torch.zeros(k, dtype=gram.dtype, device=gram.device)
        row[i] = 1.0 / damping
        if i:
            dots = b[:i] @ gram[:, i]  # v_jᵀ g_i for j < i
            row -= (dots / den[:i]) @ b[:i]
        b[i] = row
        den[i] = m + row @ gram[:, i]
    return b, den


COMPRESSIONS = ("none", "topk", "lowrank")


def _topk_compress(w: dict, e: torch.Tensor):
    """Top-k of the error e: (stored values, int32 indices), and c as a dense vector."""
    idx = torch.topk(e.abs(), w["k"], sorted=False).indices
    c = torch.zeros_like(e)
    c[idx] = e[idx]
    return (e[idx], idx.to(torch.int32)), c


def _lowrank_compress(w: dict, e: torch.Tensor):
    """Per matrix tensor one warm-started power iteration (P = E Q, orth, Q = Eᵀ P); vectors
    whole: ([(P, Q) per matrix], vector part), and c as a dense vector."""
    c = torch.empty_like(e)
    factors = []
    for t, (off, rows, cols) in enumerate(w["matrices"]):
        E = e[off:off + rows * cols].view(rows, cols)
        P = torch.linalg.qr(E @ w["warm"][t]).Q
        Q = E.T @ P
        w["warm"][t] = Q
        factors.append((P, Q))
        c[off:off + rows * cols] = (P @ Q.T).reshape(-1)
    vec = e[w["vector_index"]]
    c[w["vector_index"]] = vec
    return (factors, vec), c


def _put(w: dict, slot: int, stored) -> None:
    if w["compression"] == "topk":
        w["values"][slot], w["indices"][slot] = stored
        return
    factors, vec = stored
    for t, (P, Q) in enumerate(factors):
        w["P"][t][slot], w["Q"][t][slot] = P, Q
    w["vectors"][slot] = vec


def _matvec(w: dict, k: int, x: torch.Tensor) -> torch.Tensor:
    """G x for the first k stored (compressed) gradients; x flat, size d."""
    if w["compression"] == "none":
        return w["grads"][:k] @ x
    if w["compression"] == "topk":
        return (w["values"][:k] * x[w["indices"][:k].long()]).sum(-1)
    out = w["vectors"][:k] @ x[w["vector_index"]]
    for t, (off, rows, cols) in enumerate(w["matrices"]):
        X = x[off:off + rows * cols].view(rows, cols)
        out = out + (w["P"][t][:k] * torch.matmul(X, w["Q"][t][:k])).sum((1, 2))
    return out


def _rmatvec(w: dict, k: int, y: torch.Tensor, d: int) -> torch.Tensor:
    """Gᵀ y for the first k stored (compressed) gradients: a flat vector of size d."""
    if w["compression"] == "none":
        return w["grads"][:k].T @ y
    if w["compression"] == "topk":
        out = torch.zeros(d, dtype=y.dtype, device=y.device)
        return out.index_add_(0, w["indices"][:k].reshape(-1).long(), (w["values"][:k] * y[:, None]).reshape(-1))
    out = torch.zeros(d, dtype=y.dtype, device=y.device)
    out[w["vector_index"]] = y @ w["vectors"][:k]
    for t, (off, rows, cols) in enumerate(w["matrices"]):
        out[off:off + rows * cols] = torch.einsum("m,mar,mbr->ab", y, w["P"][t][:k], w["Q"][t][:k]).reshape(-1)
    return out


def _window(params, m: int, compression: str, density: float, rank: int) -> dict:
    """The empty window of `compression` for `params` (see the module docstring)."""
    ref = params[0]
    d = sum(p.numel() for p in params)
    like = dict(dtype=ref.dtype, device=ref.device)
    w = {"compression": compression, "gram": torch.zeros(m, m, **like), "count": 0}
    if compression == "none":
        w["grads"] = torch.zeros(m, d, **like)
        return w
    w["error"] = torch.zeros(d, **like)
    if compression == "topk":
        w["k"] = max(1, min(d, round(density * d)))
        w["values"] = torch.zeros(m, w["k"], **like)
        w["indices"] = torch.zeros(m, w["k"], dtype=torch.int32, device=ref.device)
        return w
    gen = torch.Generator().manual_seed(0)
    w["matrices"], w["warm"], w["P"], w["Q"], vector_index = [], [], [], [], []
    off = 0
    for p in params:
        if p.ndim >= 2:
            rows, cols = p.shape[0], p.numel() // p.shape[0]
            r = min(rank, rows, cols)
            w["matrices"].append((off, rows, cols))
            w["warm"].append(torch.randn(cols, r, generator=gen).to(**like))
            w["P"].append(torch.zeros(m, rows, r, **like))
            w["Q"].append(torch.zeros(m, cols, r, **like))
        else:
            vector_index.append(torch.arange(off, off + p.numel()))
        off += p.numel()
    w["vector_index"] = (torch.cat(vector_index) if vector_index else torch.zeros(0, dtype=torch.long)).to(ref.device)
    w["vectors"] = torch.zeros(m, len(w["vector_index"]), **like)
    return w


def _tensor_bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


class MFAC(torch.optim.Optimizer):
    """M-FAC with a sliding window of ``num_grads`` gradients (all parameters as one block),
    optionally compressed with error feedback (EFCP: ``compression`` "topk" with ``density``,
    "lowrank" with ``rank``)."""

    def __init__(self, params, lr=0.1, momentum=0.0, weight_decay=0.0, num_grads=32, damping=0.1,
                 compression="none", density=0.01, rank=4):
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0 or num_grads < 1 or damping <= 0:
            raise ValueError("need lr > 0, 0 <= momentum < 1, weight_decay >= 0, num_grads >= 1, damping > 0")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
        if not 0 < density <= 1 or int(rank) != rank or rank < 1:
            raise ValueError(f"need 0 < density <= 1 and an integer rank >= 1, got {density}, {rank}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.m, self.damping = int(num_grads), float(damping)
        self.bench_counters = {"mfac_ihvp": 0, "mfac_nonfinite_grads": 0}
        params = [p for g in self.param_groups for p in g["params"]]
        self._d = sum(p.numel() for p in params)
        self.state["window"] = _window(params, self.m, compression, float(density), int(rank))

    def state_bytes(self) -> int:
        """Bytes of every tensor the optimizer holds (window, Gram matrix, Woodbury
        coefficients, error accumulator, warm starts, momentum buffers)."""
        return sum(_tensor_bytes(v) for v in self.state.values())

    def ihvp(self, x: torch.Tensor) -> torch.Tensor:
        """F⁻¹ x for the current window (x flat, size d)."""
        w = self.state["window"]
        k = min(w["count"], self.m)
        if k == 0:
            return x / self.damping
        b, den = w["coef"]
        c = (b @ _matvec(w, k, x)) / den
        return x / self.damping - _rmatvec(w, k, b.T @ c, self._d)

    def _add_gradient(self, flat: torch.Tensor) -> None:
        w = self.state["window"]
        slot = w["count"] % self.m
        if w["compression"] == "none":
            w["grads"][slot] = flat
            c = flat
        else:  # error feedback: e <- e + g; c = C(e); e <- e - c
            e = w["error"].add_(flat)
            stored, c = (_topk_compress if w["compression"] == "topk" else _lowrank_compress)(w, e)
            e.sub_(c)
            _put(w, slot, stored)
        w["count"] += 1
        k = min(w["count"], self.m)
        row = _matvec(w, k, c)
        w["gram"][slot, :k] = row
        w["gram"][:k, slot] = row
        w["coef"] = woodbury_coefficients(w["gram"][:k, :k], self.damping, self.m)

    def load_state_dict(self, state_dict):
        """Load as torch.optim does (the window is kept under the key "window")."""
        super().load_state_dict(state_dict)
        w = self.state.get("window")
        if w and w["count"]:
            k = min(w["count"], self.m)
            w["coef"] = woodbury_coefficients(w["gram"][:k, :k], self.damping, self.m)

    def state_dict(self):
        """torch.optim's state dict without the derived Woodbury coefficients."""
        sd = super().state_dict()
        if "window" in sd["state"]:
            sd["state"]["window"] = {k: v for k, v in sd["state"]["window"].items() if k != "coef"}
        return sd

    @torch.no_grad()
    def step(self, closure=None):
        """Add the gradient to the window, then take the preconditioned momentum step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for g in self.param_groups for p in g["params"]]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        if not torch.isfinite(flat).all():  # a non-finite gradient never enters the window
            self.bench_counters["mfac_nonfinite_grads"] += 1
            return loss
        self._add_gradient(flat)
        direction = self.ihvp(flat)
        self.bench_counters["mfac_ihvp"] += 1
        offset = 0
        for group in self.param_groups:
            for p in group["params"]:
                n = p.numel()
                u = direction[offset:offset + n].view_as(p)
                offset += n
                if p.grad is None:
                    continue
                if group["momentum"]:
                    st = self.state[p]
                    if "momentum" not in st:
                        st["momentum"] = torch.zeros_like(p)
                    u = st["momentum"].mul_(group["momentum"]).add_(u)
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(u, alpha=-group["lr"])
        return loss


def mfac_specs() -> list[bench_core.OptimizerSpec]:
    """The M-FAC spec."""
    return [bench_core.OptimizerSpec(
        name="mfac", factory=MFAC,
        defaults={"lr": 0.1, "momentum": 0.0, "num_grads": 32, "damping": 0.1},
        search_space={"lr": bench_core.LogUniform(1e-6, 1.0),
                      "damping": bench_core.LogUniform(1e-8, 1e-1)},
        scaling="sgd",
        description="M-FAC: SGD preconditioned by a sliding-window empirical Fisher inverse "
                    "(M-FAC: Efficient Matrix-Free Approximations of Second-Order Information); "
                    "compression topk/lowrank with error feedback (EFCP)")]
