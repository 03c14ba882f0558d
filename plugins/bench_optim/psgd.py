"""PSGD with Kronecker-factored Lie-group preconditioners: ``psgd.kron_whiten`` and ``psgd.kron_newton``.

Paper: "Curvature-Informed SGD via General Purpose Lie-Group Preconditioners" (Li et al.).

Each parameter is viewed as a matrix G (m × n) and preconditioned by P = (Q_L ⊗ Q_R)ᵀ(Q_L ⊗ Q_R),
i.e. P·G = Q_Lᵀ Q_L G Q_Rᵀ Q_R, with Q_L, Q_R upper triangular (a Lie group) or diagonal (for 1-D
parameters and dimensions above ``max_size_triangular``). From a pair (v, h) the factors are fit
to the criterion E[hᵀ P h + vᵀ P⁻¹ v] by a normalized step on the group:

    A = Q_L h Q_Rᵀ,   B = Q_L⁻ᵀ v Q_R⁻¹
    Q_L ← Q_L − lr_p · triu(A Aᵀ − B Bᵀ) Q_L / ‖A Aᵀ + B Bᵀ‖       (Q_R alike with Aᵀ A, Bᵀ B)
    θ ← θ − lr · P·m                                                  (m: momentum of the gradient)

Whitening form (gradients only): v ~ N(0, I), h = momentum, so P → E[h hᵀ]^(-1/2).
Newton form (Hessian-vector products): v ~ N(0, I), h = H v, so P → |H|⁻¹; the HVPs are counted in
``bench_counters["hvp"]``.

Speed: parameters whose matrix views share a shape (after transposing so rows ≥ columns) are
stacked and updated with batched matmuls and triangular solves, one call per bucket. Failure
modes are counted in ``bench_counters``: a factor that turns non-finite is restored to its
previous value (``psgd_nonfinite``); dimensions too large for a triangular factor get a diagonal one.
"""
from __future__ import annotations

import math

import torch

import bench_core

from . import _tri_products as tp


def _upper_gram_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """triu(a aᵀ − b bᵀ) for batches a, b (…, k, n), by two SYRKs (upper triangles only)."""
    out = torch.empty(a.shape[0], a.shape[-2], a.shape[-2], dtype=a.dtype, device=a.device)
    tp.syrk_upper_(out, a, 1.0, 0.0)
    return tp.syrk_upper_(out, b, -1.0, 1.0).triu_()


def _norm_lower_bound(a: torch.Tensor, b: torch.Tensor, per_matrix: bool | None = None) -> torch.Tensor:
    """A lower bound of the spectral norm of each S = a aᵀ + b bᵀ in the batch (a, b: (B, k, n)),
    without forming S: ‖S x‖ for x the normalized row of S with the largest diagonal entry
    (within a small factor of ‖S‖ for such positive semi-definite matrices). ``per_matrix``
    (default: on the CPU) loops over the batch with matrix-vector products instead of bmm."""
    rows = (torch.linalg.vecdot(a, a) + torch.linalg.vecdot(b, b)).argmax(dim=-1)
    tiny = torch.finfo(a.dtype).tiny
    if per_matrix is None:  # on the CPU the batched matmul with one column runs 3-5x slower than mv
        per_matrix = a.device.type == "cpu"
    if per_matrix:
        out = []
        for ai, bi, r in zip(a, b, rows.tolist()):
            x = torch.mv(ai, ai[r]) + torch.mv(bi, bi[r])
            x = x / torch.linalg.vector_norm(x).clamp_min(tiny)
            out.append(torch.linalg.vector_norm(torch.mv(ai, torch.mv(ai.T, x)) + torch.mv(bi, torch.mv(bi.T, x))))
        return torch.stack(out)
    batch = torch.arange(a.shape[0], device=a.device)
    x = (torch.bmm(a, a[batch, rows][:, :, None]) + torch.bmm(b, b[batch, rows][:, :, None]))
    x = x / torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True).clamp_min(tiny)
    sx = torch.bmm(a, torch.bmm(a.transpose(-2, -1), x)) + torch.bmm(b, torch.bmm(b.transpose(-2, -1), x))
    return torch.linalg.vector_norm(sx, dim=(-2, -1))


class _Bucket:
    """Parameters whose (possibly transposed) matrix views share shape and factor kinds."""

    def __init__(self, params, shape, transpose, kinds):
        self.params = params
        self.shape = shape  # (m, n) of the canonical view, m >= n
        self.transpose = transpose  # per parameter: view is the transpose of p's 2-D reshape
        self.kinds = kinds  # ("tri" | "diag" | "one", same for the right factor)
        self.ql = self.qr = None

    def view(self, t: torch.Tensor, i: int) -> torch.Tensor:
        """Parameter-shaped tensor -> its canonical (m, n) matrix view."""
        p = self.params[i]
        mat = t.reshape(p.shape[0], -1) if p.dim() >= 2 else t.reshape(1, -1)
        return mat.T if self.transpose[i] else mat

    def unview(self, mat: torch.Tensor, i: int) -> torch.Tensor:
        """Canonical matrix -> tensor with the parameter's shape."""
        p = self.params[i]
        if self.transpose[i]:
            mat = mat.T
        return mat.reshape(p.shape)


def _factor_kind(size: int, param_ndim: int, max_size: int) -> str:
    if size == 1:
        return "one"
    if param_ndim < 2 or size > max_size:
        return "diag"
    return "tri"


def _left(q, kind, x, transpose=False):
    """Q_L x (or Q_Lᵀ x) for a batch x (B, m, n)."""
    if kind == "tri":
        return tp.trmm(q, x, transpose=transpose)
    if kind == "diag":
        return q[:, :, None] * x
    return x


def _right(q, kind, x, transpose=False):
    """x Q_Rᵀ (or x Q_R) for a batch x (B, m, n)."""
    if kind == "tri":
        return tp.trmm(q, x, right=True, transpose=not transpose)
    if kind == "diag":
        return x * q[:, None, :]
    return x


def _solve_left_t(q, kind, v):
    """Q_L⁻ᵀ v."""
    if kind == "tri":
        return torch.linalg.solve_triangular(q.transpose(-2, -1), v, upper=False)
    if kind == "diag":
        return v / q[:, :, None]
    return v


def _solve_right(q, kind, v):
    """v Q_R⁻¹."""
    if kind == "tri":
        return torch.linalg.solve_triangular(q, v, upper=True, left=False)
    if kind == "diag":
        return v / q[:, None, :]
    return v


def _update_tri(q, a, b, lr, eps):
    """One normalized Lie-group step of a triangular factor from A and B (rows = its dimension):
    Q − lr · triu(A Aᵀ − B Bᵀ) Q / ‖A Aᵀ + B Bᵀ‖; returns the new factor."""
    norm = _norm_lower_bound(a, b)
    step = _upper_gram_diff(a, b).mul_((lr / (norm + eps))[:, None, None])
    prod = tp.tri_tri(step, q)
    return torch.sub(q, prod, out=prod)  # into prod's memory: no fresh n × n allocation


def _update_diag(q, term1, term2, lr, eps):
    """The same step for a diagonal factor, with the terms' diagonals and the max norm."""
    norm = (term1 + term2).abs().amax(dim=-1)
    return q - (term1 - term2) * q * (lr / (norm + eps))[:, None]


class KronPSGD(torch.optim.Optimizer):
    """PSGD with Kronecker-factored (triangular / diagonal) Lie-group preconditioners.

    ``form="whiten"`` fits P to gradient (momentum) whitening from gradients alone;
    ``form="newton"`` fits P to Hessian-vector products and needs a closure whose backward pass
    keeps the graph (``create_graph=True``).
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0.0, form="whiten",
                 precond_lr=0.1, precond_init_scale=None, update_prob=None,
                 max_size_triangular=8192, clip_update_rms=1.1, balance_every=100,
                 momentum_into_precond=True):
        if form not in ("whiten", "newton"):
            raise ValueError(f"form must be 'whiten' or 'newton', got {form!r}")
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0 or precond_lr <= 0:
            raise ValueError("need lr > 0, 0 <= momentum < 1, weight_decay >= 0, precond_lr > 0")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self.form = form
        self.precond_lr = float(precond_lr)
        self.precond_init_scale = precond_init_scale
        self.update_prob = update_prob
        self.max_size_triangular = int(max_size_triangular)
        self.clip_update_rms = clip_update_rms
        self.balance_every = int(balance_every)
        self.momentum_into_precond = momentum_into_precond
        self.bench_counters = {"psgd_precond_updates": 0, "psgd_nonfinite": 0}
        if form == "newton":
            self.bench_counters["hvp"] = 0
        self._buckets = None
        self._step = 0
        self._update_credit = 0.0

    # ------------------------------------------------------------------ bookkeeping
    def _probability(self) -> float:
        """Preconditioner-update probability at this step: a constant, or by default 1 for 500
        steps then decaying exponentially (rate 1e-3) to 0.03, as in the public Kron code."""
        if self.update_prob is not None:
            return float(self.update_prob)
        return min(1.0, max(0.03, math.exp(-1e-3 * (self._step - 500))))

    def _build_buckets(self):
        groups = {}
        for group in self.param_groups:
            for p in group["params"]:
                mat = (p.shape[0], p[0].numel()) if p.dim() >= 2 else (1, p.numel())
                transpose = mat[0] < mat[1]
                m, n = (mat[1], mat[0]) if transpose else mat
                kinds = (_factor_kind(m, p.dim(), self.max_size_triangular),
                         _factor_kind(n, p.dim(), self.max_size_triangular))
                if kinds == ("one", "one"):  # a scalar: a 1 × 1 diagonal factor carries the scale
                    kinds = ("one", "diag")
                key = (m, n, kinds, p.dtype, p.device)
                groups.setdefault(key, []).append((p, transpose))
        self._buckets = []
        for (m, n, kinds, _, _), members in groups.items():
            b = _Bucket([p for p, _ in members], (m, n), [t for _, t in members], kinds)
            states = [self.state[p] for p in b.params]
            if all("ql" in s for s in states):  # restored from a state dict
                b.ql = torch.stack([s["ql"] for s in states]) if kinds[0] != "one" else None
                b.qr = torch.stack([s["qr"] for s in states]) if kinds[1] != "one" else None
                self._link(b)
            self._buckets.append(b)

    def _link(self, b: _Bucket) -> None:
        """Make each parameter's state hold views of its bucket's factors (for state_dict)."""
        for i, p in enumerate(b.params):
            state = self.state[p]
            state["ql"] = b.ql[i] if b.ql is not None else torch.ones(())
            state["qr"] = b.qr[i] if b.qr is not None else torch.ones(())

    def _init_factors(self, b: _Bucket, idx, h: torch.Tensor) -> None:
        """Q_L, Q_R = s^(1/2) I each, s from the first (debiased) momentum h of parameters idx:
        s = mean(h⁴)^(-1/8), so that P starts near E[h hᵀ]^(-1/2); or ``precond_init_scale``."""
        m, n = b.shape
        dev, dt = h.device, h.dtype
        scale = torch.ones(len(b.params), dtype=dt, device=dev)
        if self.precond_init_scale is None:
            scale[idx] = h.pow(4).mean(dim=(-2, -1)).add(1e-30).pow(-1.0 / 8)
        else:
            scale.fill_(float(self.precond_init_scale))
        nontrivial = sum(k != "one" for k in b.kinds)
        per = scale.pow(1.0 / max(nontrivial, 1))
        make = {"tri": lambda k: per[:, None, None] * torch.eye(k, dtype=dt, device=dev),
                "diag": lambda k: per[:, None] * torch.ones(k, dtype=dt, device=dev),
                "one": lambda k: None}
        b.ql, b.qr = make[b.kinds[0]](m), make[b.kinds[1]](n)
        self._link(b)

    def load_state_dict(self, state_dict):
        """Load as torch.optim does; the stacked factors are rebuilt from it at the next step."""
        super().load_state_dict(state_dict)
        self._buckets = None
        self._step = max((int(s.get("step", 0)) for s in self.state.values()), default=0)

    # ------------------------------------------------------------------ the method
    def _update_precond(self, b: _Bucket, v: torch.Tensor, h: torch.Tensor) -> None:
        kl, kr = b.kinds
        a = _right(b.qr, kr, _left(b.ql, kl, h))
        conj = _solve_right(b.qr, kr, _solve_left_t(b.ql, kl, v))
        eps = torch.finfo(h.dtype).tiny
        new = []
        for q, kind, left in ((b.ql, kl, True), (b.qr, kr, False)):
            if kind == "one":
                new.append(None)
                continue
            if kind == "tri":
                if left:
                    new.append(_update_tri(q, a, conj, self.precond_lr, eps))
                else:
                    new.append(_update_tri(q, a.transpose(-2, -1), conj.transpose(-2, -1), self.precond_lr, eps))
            else:
                dim = -1 if left else -2
                new.append(_update_diag(q, (a * a).sum(dim), (conj * conj).sum(dim), self.precond_lr, eps))
        ok = torch.ones(h.shape[0], dtype=torch.bool, device=h.device)
        for q in new:
            if q is not None:
                ok &= torch.isfinite(q.sum(dim=tuple(range(1, q.dim()))))  # one pass; NaN/inf propagate
        bad = int((~ok).sum())
        if bad:  # keep the previous factor where the new one is not finite
            self.bench_counters["psgd_nonfinite"] += bad
        for name, q in (("ql", new[0]), ("qr", new[1])):
            if q is None:
                continue
            if bad:
                mask = ok.view(-1, *([1] * (q.dim() - 1)))
                q = torch.where(mask, q, getattr(b, name))
            setattr(b, name, q)  # the new tensor replaces the old one (no copy); state is re-linked

    def _balance(self, b: _Bucket) -> None:
        """Equalize the scales of the two factors (their product is unchanged)."""
        if b.ql is None or b.qr is None:
            return
        nl = b.ql.abs().flatten(1).amax(1)
        nr = b.qr.abs().flatten(1).amax(1)
        g = (nl * nr).sqrt()
        shape = lambda q: (-1,) + (1,) * (q.dim() - 1)  # noqa: E731
        b.ql.mul_((g / nl).view(shape(b.ql)))
        b.qr.mul_((g / nr).view(shape(b.qr)))

    def _hvps(self, params):
        """Hessian-vector products H v for random v, from gradients that carry their graph."""
        grads = [p.grad for p in params]
        vs = [torch.randn_like(p) for p in params]
        with torch.enable_grad():
            need = [i for i, g in enumerate(grads) if g.requires_grad]
            hv = [torch.zeros_like(p) for p in params]
            if need:
                out = torch.autograd.grad([grads[i] for i in need], [params[i] for i in need],
                                          grad_outputs=[vs[i] for i in need], allow_unused=True)
                for i, o in zip(need, out):
                    if o is not None:
                        hv[i] = o.detach()
        self.bench_counters["hvp"] += 1
        for p in params:
            p.grad = p.grad.detach()
        return vs, hv

    @torch.no_grad()
    def step(self, closure=None):
        """One PSGD step; with form="newton" the closure's backward must use create_graph=True."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            return loss
        if self.form == "newton":
            vs, hvs = self._hvps(params)
            hv_of = {p: (v, h) for p, v, h in zip(params, vs, hvs)}
        self._step += 1
        if self._buckets is None:
            self._build_buckets()
        self._update_credit += self._probability()
        do_update = self._update_credit >= 1.0
        if do_update:
            self._update_credit -= 1.0
            self.bench_counters["psgd_precond_updates"] += 1

        for group in self.param_groups:  # momentum, all parameters of a group at once
            ps = [p for p in group["params"] if p.grad is not None]
            bufs = []
            for p in ps:
                st = self.state[p]
                if "momentum" not in st:
                    st["momentum"] = torch.zeros_like(p)
                st["step"] = self._step
                bufs.append(st["momentum"])
            if ps and group["momentum"] > 0:
                torch._foreach_lerp_(bufs, [p.grad for p in ps], 1 - group["momentum"])
            elif ps:
                torch._foreach_copy_(bufs, [p.grad for p in ps])

        for b in self._buckets:
            live = [i for i, p in enumerate(b.params) if p.grad is not None]
            if live:
                self._step_bucket(b, live, do_update, hv_of if self.form == "newton" else None)
        return loss

    def _step_bucket(self, b: _Bucket, idx, do_update, hv_of):
        """The step of the parameters idx of bucket b (all of them, except in rare steps)."""
        group_of = {p: g for g in self.param_groups for p in g["params"]}
        beta = [group_of[b.params[i]]["momentum"] for i in idx]
        debias = torch.tensor([1.0 / (1 - bt ** self._step) if bt > 0 else 1.0 for bt in beta],
                              dtype=b.params[0].dtype, device=b.params[0].device)
        mom = torch.stack([b.view(self.state[b.params[i]]["momentum"], i) for i in idx])
        mom.mul_(debias[:, None, None])
        if b.ql is None and b.qr is None:
            self._init_factors(b, idx, mom)
        full = len(idx) == len(b.params)
        sel = (lambda q: q) if full else (lambda q: q[idx] if q is not None else None)  # noqa: E731
        if do_update:
            if hv_of is None:
                v = torch.randn_like(mom)
                h = mom if self.momentum_into_precond else torch.stack(
                    [b.view(b.params[i].grad, i) for i in idx])
            else:
                v = torch.stack([b.view(hv_of[b.params[i]][0], i) for i in idx])
                h = torch.stack([b.view(hv_of[b.params[i]][1], i) for i in idx])
            sub = b if full else _Bucket([b.params[i] for i in idx], b.shape,
                                         [b.transpose[i] for i in idx], b.kinds)
            if not full:
                sub.ql, sub.qr = sel(b.ql), sel(b.qr)
            self._update_precond(sub, v, h)
            if full:
                self._link(b)
            else:
                for name in ("ql", "qr"):
                    if getattr(b, name) is not None:
                        getattr(b, name)[idx] = getattr(sub, name)
            if self.balance_every and self._step % self.balance_every == 0:
                self._balance(b)
        ql, qr = sel(b.ql), sel(b.qr)
        kl, kr = b.kinds
        pre = _right(qr, kr, _left(ql, kl, mom))
        pre = _right(qr, kr, _left(ql, kl, pre, transpose=True), transpose=True)
        if self.clip_update_rms:
            rms = pre.pow(2).mean(dim=(-2, -1)).sqrt()
            pre.mul_(torch.clamp(self.clip_update_rms / (rms + 1e-6), max=1.0)[:, None, None])
        for j, i in enumerate(idx):
            p = b.params[i]
            group = group_of[p]
            if group["weight_decay"]:
                p.mul_(1 - group["lr"] * group["weight_decay"])
            p.add_(b.unview(pre[j], i), alpha=-group["lr"])


def psgd_specs() -> list[bench_core.OptimizerSpec]:
    """The PSGD specs: Kronecker whitening form and Kronecker Newton form."""
    def whiten(params, **hp):
        return KronPSGD(params, form="whiten", **hp)

    def newton(params, **hp):
        return KronPSGD(params, form="newton", **hp)

    return [
        bench_core.OptimizerSpec(
            name="psgd.kron_whiten", factory=whiten,
            defaults={"lr": 1e-3, "momentum": 0.9, "precond_lr": 0.1},
            search_space={"lr": bench_core.LogUniform(1e-5, 1e-1)}, scaling="adam",
            description="PSGD, Kronecker Lie-group preconditioner fit to whiten the gradient "
                        "(Curvature-Informed SGD via General Purpose Lie-Group Preconditioners)"),
        bench_core.OptimizerSpec(
            name="psgd.kron_newton", factory=newton,
            defaults={"lr": 0.5, "momentum": 0.0, "precond_lr": 0.1, "clip_update_rms": None},
            search_space={"lr": bench_core.LogUniform(1e-3, 1.0)},
            requires={"grad", "create_graph"}, scaling="curvature",
            description="PSGD, Kronecker Lie-group preconditioner fit to Hessian-vector products "
                        "(Curvature-Informed SGD via General Purpose Lie-Group Preconditioners)"),
    ]
