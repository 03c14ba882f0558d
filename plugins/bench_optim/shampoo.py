"""Shampoo (own implementation), registered as ``shampoo`` and ``shampoo4bit``.

Papers: "Shampoo: Preconditioned Stochastic Tensor Optimization" (Gupta, Koren, Singer 2018);
what "A Distributed Data-Parallel PyTorch Implementation of the Distributed Shampoo Optimizer for
Training Neural Networks At-Scale" (Shi et al. 2023) adds: blocking, grafting, epsilon, start step,
update frequency, eigendecomposition with a float64 retry and a fallback on failure; and
"4-bit Shampoo for Memory-Efficient Network Training" (Wang et al. 2024) for ``quantize_4bit``.

Update rule, per block G (r × c) of a parameter's gradient (at most block_size × block_size; a
1-D parameter is a vector of order 1; order ≥ 3 is viewed as first dim × the rest):

    L ← β₂ L + (1−β₂) G Gᵀ,   R ← β₂ R + (1−β₂) Gᵀ G              (every step)
    every f steps:  L⁻ = (L/b₂ + εI)^(−1/e),  R⁻ = (R/b₂ + εI)^(−1/e)  by eigh, e = 2·order
    M ← β₁ M + (1−β₁) G;  M̂ = M / (1−β₁ᵗ)                          (filtered gradient)
    D = L⁻ M̂ R⁻, rescaled per block to the norm of the grafting direction
        (adam: M̂ / (√v̂ + ε_g) with v the Adam second moment; sgd: M̂)
    W ← (1 − lr·wd) W − lr · D       (before start_preconditioning_step: D = grafting direction)

Speed: blocks of the same shape are stacked; the factors are updated with SYRK (``_tri_products``: half
the flops of a matmul, upper triangle only) and preconditioned with one batched matmul; every refresh does one ``torch.linalg.eigh`` per distinct factor size; per-parameter first-order
state uses foreach ops.

Failure modes, counted in ``bench_counters``: a factor with NaN/Inf is not decomposed and keeps
its previous root (``nonfinite_factors``); a failed eigendecomposition is retried in float64
(``eigh_fp64_retries``) and, failing that, the block keeps its previous root (``eigh_failures``),
as Distributed Shampoo does; parameters split into blocks (``blocked_params``) and parameters left
to the grafting method (scalars; 1-D with ``precondition_1d=False``: ``unpreconditioned_params``)
are counted once.

``root_method="qr"`` replaces the eigh of every refresh after the first by one power iteration
warm-started from the previous eigenvectors and a QR (Distributed Shampoo's amortized QR
eigendecomposition; the eigenvectors are then kept as state): several times cheaper on the CPU.

4-bit (``quantize_4bit=True``; always eigh, ``root_method`` does not apply): each factor is kept as
its eigenvalues (float32) and its eigenvector matrix quantized to 4 bits (block-wise linear-square,
64 values per float32 scale); after dequantization U is rectified by one Björck step U ← 1.5U −
0.5UUᵀU. The factor and its inverse root share U, so both cost n²/2 + n²/16 + 4n bytes instead of
8n². As in the paper's practical algorithm, the factors are then updated at refresh steps (every f
steps, with that step's gradient): L = U diag(λ) Uᵀ, L ← β₂L + (1−β₂)GGᵀ, re-decomposed and
re-quantized.
"""
from __future__ import annotations

import torch

import bench_core

from . import _tri_products as tp
from . import _kron_util as ku


def _key(shape: tuple) -> str:
    return "x".join(str(s) for s in shape)


class Shampoo(ku.GroupStepOptimizer):
    """Blocked Shampoo with grafting; see the module docstring for the update rule."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), epsilon: float = 1e-12,
                 weight_decay: float = 0.0, block_size: int = 1024, precondition_frequency: int = 10,
                 start_preconditioning_step: int | None = None, grafting: str = "adam",
                 grafting_beta2: float = 0.999, grafting_epsilon: float = 1e-8,
                 exponent_override: float | None = None, precondition_1d: bool = True,
                 quantize_4bit: bool = False, root_method: str = "eigh"):
        if lr <= 0 or epsilon < 0 or weight_decay < 0:
            raise ValueError("Shampoo needs lr > 0, epsilon >= 0, weight_decay >= 0")
        if not (0 <= betas[0] < 1 and 0 < betas[1] <= 1):
            raise ValueError(f"Shampoo needs 0 <= beta1 < 1 and 0 < beta2 <= 1, got {betas}")
        if block_size < 1 or precondition_frequency < 1:
            raise ValueError("Shampoo needs block_size >= 1 and precondition_frequency >= 1")
        if grafting not in ("adam", "sgd", "none"):
            raise ValueError(f"Shampoo grafting must be 'adam', 'sgd' or 'none', got {grafting!r}")
        if root_method not in ("eigh", "qr"):
            raise ValueError(f"Shampoo root_method must be 'eigh' or 'qr', got {root_method!r}")
        if start_preconditioning_step is None:
            start_preconditioning_step = precondition_frequency
        defaults = dict(lr=lr, betas=tuple(betas), epsilon=epsilon, weight_decay=weight_decay,
                        block_size=int(block_size), precondition_frequency=int(precondition_frequency),
                        start_preconditioning_step=int(start_preconditioning_step), grafting=grafting,
                        grafting_beta2=grafting_beta2, grafting_epsilon=grafting_epsilon,
                        exponent_override=exponent_override, precondition_1d=bool(precondition_1d),
                        quantize_4bit=bool(quantize_4bit), root_method=root_method)
        super().__init__(params, defaults)
        self.bench_counters = {"eigh_calls": 0, "eigh_fp64_retries": 0, "eigh_failures": 0,
                               "qr_calls": 0, "qr_failures": 0, "nonfinite_factors": 0, "preconditioner_refreshes": 0,
                               "blocked_params": 0, "unpreconditioned_params": 0}
        self._plans: dict[int, tuple] = {}

    # ------------------------------------------------------------------ state layout
    def _plan(self, gi: int, group: dict):
        """(params, BlockPlan, group state dict) for group ``gi``; built on first use."""
        cached = self._plans.get(gi)
        params = [p for p in group["params"] if p.requires_grad]
        if cached is not None and cached[0] == [id(p) for p in params]:
            return params, cached[1], self.state[params[0]]["shampoo"]
        plan = ku.BlockPlan(params, group["block_size"], group["precondition_1d"])
        if cached is None:
            self.bench_counters["blocked_params"] += plan.blocked
            self.bench_counters["unpreconditioned_params"] += len(plan.diagonal)
        self._plans[gi] = ([id(p) for p in params], plan)
        first = self.state[params[0]]
        if "shampoo" not in first:
            first["shampoo"] = self._init_group_state(params[0], plan, group)
        return params, plan, first["shampoo"]

    @staticmethod
    def _init_group_state(like: torch.Tensor, plan: ku.BlockPlan, group: dict) -> dict:
        st: dict = {"factors": {}, "roots": {}, "evals": {}, "codes": {}, "scales": {}}
        opts = dict(dtype=ku.work(like).dtype if like.is_floating_point() else torch.float32, device=like.device)
        for key, g in plan.groups.items():
            for side, n in zip("LR", key):
                name = side + _key(key)
                eye = torch.eye(n, **opts).expand(len(g), n, n)
                if group["quantize_4bit"]:
                    codes, scales = ku.quantize_4bit(eye)
                    st["codes"][name], st["scales"][name] = codes, scales
                    st["evals"][name] = torch.zeros(len(g), n, **opts)
                else:
                    st["factors"][name] = torch.zeros(len(g), n, n, **opts)
                    st["roots"][name] = eye.clone()
        return st

    # ------------------------------------------------------------------ memory
    def preconditioner_bytes(self) -> int:
        """Bytes of the Kronecker factors and inverse roots (quantized where 4-bit)."""
        return ku.tensor_bytes([s["shampoo"] for s in self.state.values() if "shampoo" in s])

    # ------------------------------------------------------------------ step
    def _step_group(self, gi: int, group: dict) -> None:
        params, plan, gst = self._plan(gi, group)
        active = [p.grad is not None for p in params]
        if not any(active):
            return
        for p in params:
            if p.grad is not None and p.grad.is_sparse:
                raise RuntimeError("Shampoo does not support sparse gradients")
        group["step"] = k = group.get("step", 0) + 1
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]

        # first-order state: filtered gradient M and the Adam grafting second moment v
        for p in params:
            st = self.state[p]
            if "exp_avg" not in st:
                st["exp_avg"] = torch.zeros_like(p)
                if group["grafting"] == "adam":
                    st["exp_avg_sq"] = torch.zeros_like(p)
        live = [i for i in range(len(params)) if active[i]]
        ms = [self.state[params[i]]["exp_avg"] for i in live]
        gl = [grads[i] for i in live]
        torch._foreach_lerp_(ms, gl, 1 - beta1)
        m_hat = torch._foreach_div(ms, 1 - beta1 ** k)
        if group["grafting"] == "adam":
            b2g = group["grafting_beta2"]
            vs = [self.state[params[i]]["exp_avg_sq"] for i in live]
            torch._foreach_mul_(vs, b2g)
            torch._foreach_addcmul_(vs, gl, gl, 1 - b2g)
            denom = torch._foreach_div(vs, 1 - b2g ** k)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, group["grafting_epsilon"])
            graft = torch._foreach_div(m_hat, denom)
        else:
            graft = m_hat
        full_m = [None] * len(params)
        full_graft = [None] * len(params)
        for j, i in enumerate(live):
            full_m[i], full_graft[i] = m_hat[j], graft[j]
        for i in range(len(params)):
            if full_m[i] is None:
                full_m[i] = full_graft[i] = torch.zeros_like(params[i])

        quant = group["quantize_4bit"]
        f = group["precondition_frequency"]
        refresh = k % f == 0
        if not quant:
            self._update_factors(plan, gst, grads, beta2)
        if refresh:
            if quant:
                self._refresh_4bit(plan, gst, grads, group)
            else:
                self._refresh(plan, gst, group, k)
            self.bench_counters["preconditioner_refreshes"] += 1
            group["refreshes"] = group.get("refreshes", 0) + 1

        use_shampoo = k >= group["start_preconditioning_step"] and group.get("refreshes", 0) > 0
        if use_shampoo and plan.groups:
            directions = self._precondition(plan, gst, full_m, full_graft, group)
            updates = [plan.scatter(directions, i) if plan.blocks_of[i] else full_graft[i]
                       for i in range(len(params))]
        else:
            updates = full_graft
        upd_params = [params[i] for i in live]
        upd = [updates[i] for i in live]
        if wd:
            torch._foreach_mul_(upd_params, 1 - lr * wd)
        torch._foreach_add_(upd_params, upd, alpha=-lr)

    # ------------------------------------------------------------------ preconditioner pieces
    @staticmethod
    def _update_factors(plan, gst, grads, beta2) -> None:
        alpha = 1 - beta2 if beta2 < 1 else 1.0
        for key, g in plan.groups.items():
            G = ku.work(plan.gather(grads, g))
            if g.order == 1:
                G = G.unsqueeze(-1)
            tp.syrk_upper_(gst["factors"]["L" + _key(key)], G, alpha, beta2)
            if g.order == 2:
                tp.syrk_upper_(gst["factors"]["R" + _key(key)], G.mT, alpha, beta2)

    def _exponent(self, group, order: int) -> float:
        return float(group["exponent_override"] or 2 * order)

    def _refresh(self, plan, gst, group, k: int) -> None:
        beta2 = group["betas"][1]
        scale = 1.0 / (1 - beta2 ** k) if beta2 < 1 else 1.0
        names, mats = [], []
        for key, g in plan.groups.items():
            for side in ("LR" if g.order == 2 else "L"):
                names.append((side + _key(key), g.order))
                mats.append(tp.symmetrize_upper(gst["factors"][side + _key(key)]).mul_(scale))
        bases = gst.setdefault("bases", {})
        if group["root_method"] == "qr" and all(name in bases for name, _ in names):
            found = ku.qr_eigh_by_size(mats, [bases[name] for name, _ in names], self.bench_counters)
        else:
            found = ku.eigh_by_size(mats, self.bench_counters)
        for (name, order), (evals, evecs, ok) in zip(names, found):
            if group["root_method"] == "qr":  # warm start of the next refresh
                bases[name] = evecs if name not in bases else torch.where(ok[:, None, None], evecs, bases[name])
            root = ku.inverse_root(evals, evecs, self._exponent(group, order), group["epsilon"])
            old = gst["roots"][name]
            if bool(ok.all()):
                old.copy_(root)
            else:
                old.copy_(torch.where(ok[:, None, None], root, old))

    def _decode(self, gst, name: str) -> torch.Tensor:
        codes, scales = gst["codes"][name], gst["scales"][name]
        if codes.dtype != torch.uint8:  # load_state_dict casts state to the parameters' dtype
            codes = gst["codes"][name] = codes.to(torch.uint8)
        B, n = gst["evals"][name].shape
        u = ku.dequantize_4bit(codes, scales, (B, n, n), gst["evals"][name].dtype)
        return ku.bjorck(u)

    def _refresh_4bit(self, plan, gst, grads, group) -> None:
        beta2 = group["betas"][1]
        alpha = 1 - beta2 if beta2 < 1 else 1.0
        names, mats = [], []
        for key, g in plan.groups.items():
            G = ku.work(plan.gather(grads, g))
            if g.order == 1:
                G = G.unsqueeze(-1)
            for side in ("LR" if g.order == 2 else "L"):
                name = side + _key(key)
                u = self._decode(gst, name)
                lam = gst["evals"][name]
                factor = (u * lam.unsqueeze(-2)) @ u.mT
                X = G if side == "L" else G.mT
                factor.baddbmm_(X, X.mT, beta=beta2, alpha=alpha)
                names.append(name)
                mats.append(factor)
        for name, (evals, evecs, ok) in zip(names, ku.eigh_by_size(mats, self.bench_counters)):
            if not bool(ok.all()):  # keep the previous decomposition of the failed blocks
                old_u = self._decode(gst, name)
                evecs = torch.where(ok[:, None, None], evecs, old_u)
                evals = torch.where(ok[:, None], evals, gst["evals"][name])
            gst["evals"][name] = evals.clamp(min=0)
            gst["codes"][name], gst["scales"][name] = ku.quantize_4bit(evecs)

    def _roots(self, gst, group, key, g):
        """The inverse roots of block group ``key`` (decoded from 4 bits when quantized)."""
        sides = "LR" if g.order == 2 else "L"
        if not group["quantize_4bit"]:
            return [gst["roots"][s + _key(key)] for s in sides]
        beta2 = group["betas"][1]
        r = group.get("refreshes", 1)
        scale = 1.0 / (1 - beta2 ** r) if beta2 < 1 else 1.0
        out = []
        for s in sides:
            name = s + _key(key)
            out.append(ku.inverse_root(gst["evals"][name] * scale, self._decode(gst, name),
                                       self._exponent(group, g.order), group["epsilon"]))
        return out

    def _precondition(self, plan, gst, full_m, full_graft, group) -> dict:
        out = {}
        for key, g in plan.groups.items():
            M = ku.work(plan.gather(full_m, g))
            roots = self._roots(gst, group, key, g)
            if g.order == 1:
                D = torch.bmm(roots[0], M.unsqueeze(-1)).squeeze(-1)
            else:
                D = torch.bmm(torch.bmm(roots[0], M), roots[1])
            if group["grafting"] != "none":
                P = ku.work(plan.gather(full_graft, g))
                dims = tuple(range(1, D.dim()))
                ratio = torch.linalg.vector_norm(P, dim=dims) / (torch.linalg.vector_norm(D, dim=dims) + 1e-16)
                D = D * ratio.view(-1, *([1] * (D.dim() - 1)))
            out[key] = D
        return out


def shampoo_specs() -> list[bench_core.OptimizerSpec]:
    """``shampoo`` (32-bit) and ``shampoo4bit`` (4-bit eigenvector state)."""
    space = {"lr": bench_core.LogUniform(1e-5, 1.0),
             "precondition_frequency": bench_core.Choice([1, 10, 50, 100])}
    defaults = {"lr": 1e-3, "precondition_frequency": 10}
    return [
        bench_core.OptimizerSpec(
            name="shampoo", factory=Shampoo, defaults=dict(defaults), search_space=dict(space), scaling="shampoo",
            description="Blocked Shampoo with Adam grafting (Gupta et al. 2018; Shi et al. 2023), own implementation"),
        bench_core.OptimizerSpec(
            name="shampoo4bit", factory=lambda params, **kw: Shampoo(params, quantize_4bit=True, **kw),
            defaults=dict(defaults), search_space=dict(space), scaling="shampoo",
            description="Shampoo with 4-bit quantized eigenvector state (Wang et al. 2024), own implementation"),
    ]
