"""SOAP (own implementation), registered as ``soap``.

Paper: "SOAP: Improving and Stabilizing Shampoo using Adam" (Vyas et al. 2024). Adam run in the
eigenbasis of Shampoo's factors; the eigenbasis is refreshed every f steps by one power iteration
and a QR decomposition. Per block G (r × c; blocking as in Shampoo, a 1-D parameter is preconditioned
only with ``precondition_1d``, otherwise it gets plain Adam):

    step 1:  L = GGᵀ, R = GᵀG (EMA weights as below), Q_L, Q_R = eigenvectors (eigh), no update
    G' = Q_Lᵀ G Q_R                                 (gradient in the eigenbasis)
    M' ← β₁ M' + (1−β₁) G',   V ← β₂ V + (1−β₂) G'²
    W ← W − lr·√(1−β₂ˢ)/(1−β₁ˢ) · Q_L (M' / (√V + ε)) Q_Rᵀ − lr·wd·W     (s = step − 1)
    L ← β_s L + (1−β_s) G Gᵀ,  R ← β_s R + (1−β_s) Gᵀ G                (β_s = shampoo_beta or β₂)
    every f steps: P = L Q_L; order columns by the estimated eigenvalues diag(Q_Lᵀ P), descending
    (V's rows follow); Q_L ← qr(P).Q (and likewise for R)

The reference code keeps M in the original space and projects it every step; here M' is kept in
the eigenbasis and moved into the new basis at each refresh (M' ← Q_L,newᵀ (Q_L,old M' Q_R,oldᵀ)
Q_R,new), which is the same quantity with two matmuls per block fewer per step (four more per
refresh).
Same-shape blocks are stacked and multiplied with bmm; the factors are updated with SYRK
(``_tri_products``: upper triangle only, half the flops); one eigh / QR call per factor size.
Failure modes, counted in ``bench_counters``: non-finite factors keep their previous basis
(``nonfinite_factors``), the initial eigh retries in float64 and falls back to the identity basis
(``eigh_fp64_retries``, ``eigh_failures``), a QR with non-finite output keeps the previous basis
(``qr_failures``).
"""
from __future__ import annotations

import torch

import bench_core

from . import _tri_products as tp
from . import _kron_util as ku


def _key(shape: tuple) -> str:
    return "x".join(str(s) for s in shape)


class SOAP(ku.GroupStepOptimizer):
    """Adam in Shampoo's eigenbasis; see the module docstring for the update rule."""

    def __init__(self, params, lr: float = 3e-3, betas=(0.95, 0.95), shampoo_beta: float | None = None,
                 eps: float = 1e-8, weight_decay: float = 0.01, precondition_frequency: int = 10,
                 block_size: int = 10000, precondition_1d: bool = False, correct_bias: bool = True):
        if lr <= 0 or eps < 0 or weight_decay < 0:
            raise ValueError("SOAP needs lr > 0, eps >= 0, weight_decay >= 0")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"SOAP needs betas in [0, 1), got {betas}")
        if block_size < 1 or precondition_frequency < 1:
            raise ValueError("SOAP needs block_size >= 1 and precondition_frequency >= 1")
        defaults = dict(lr=lr, betas=tuple(betas), shampoo_beta=shampoo_beta, eps=eps,
                        weight_decay=weight_decay, precondition_frequency=int(precondition_frequency),
                        block_size=int(block_size), precondition_1d=bool(precondition_1d),
                        correct_bias=bool(correct_bias))
        super().__init__(params, defaults)
        self.bench_counters = {"eigh_calls": 0, "eigh_fp64_retries": 0, "eigh_failures": 0,
                               "qr_calls": 0, "qr_failures": 0, "nonfinite_factors": 0,
                               "blocked_params": 0, "unpreconditioned_params": 0}
        self._plans: dict[int, tuple] = {}

    def _plan(self, gi: int, group: dict):
        params = [p for p in group["params"] if p.requires_grad]
        cached = self._plans.get(gi)
        if cached is None or cached[0] != [id(p) for p in params]:
            plan = ku.BlockPlan(params, group["block_size"], group["precondition_1d"])
            if cached is None:
                self.bench_counters["blocked_params"] += plan.blocked
                self.bench_counters["unpreconditioned_params"] += len(plan.diagonal)
            self._plans[gi] = cached = ([id(p) for p in params], plan)
        return params, cached[1]

    # ------------------------------------------------------------------ one group
    def _step_group(self, gi: int, group: dict) -> None:
        params, plan = self._plan(gi, group)
        active = [p.grad is not None for p in params]
        if not any(active):
            return
        for p in params:
            if p.grad is not None and p.grad.is_sparse:
                raise RuntimeError("SOAP does not support sparse gradients")
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        beta1, beta2 = group["betas"]
        sbeta = group["shampoo_beta"] if group["shampoo_beta"] is not None else beta2
        first = self.state[params[0]]
        if "soap" not in first:  # step 1: statistics and eigenbases only, as the reference does
            first["soap"] = self._init_state(plan, grads, group, sbeta)
            for i in plan.diagonal:
                self.state[params[i]]["exp_avg"] = torch.zeros_like(params[i])
                self.state[params[i]]["exp_avg_sq"] = torch.zeros_like(params[i])
            group["step"] = 1
            return
        st = first["soap"]
        group["step"] += 1
        s = group["step"] - 1
        lr = group["lr"]
        step_size = lr
        if group["correct_bias"]:
            step_size = lr * (1 - beta2 ** s) ** 0.5 / (1 - beta1 ** s)

        updates: dict = {}
        for key, g in plan.groups.items():
            k = _key(key)
            G = ku.work(plan.gather(grads, g))
            QL = st["Q"]["L" + k]
            if g.order == 1:
                Gp = torch.bmm(QL.mT, G.unsqueeze(-1)).squeeze(-1)
            else:
                QR = st["Q"]["R" + k]
                Gp = torch.bmm(torch.bmm(QL.mT, G), QR)
            Mp, V = st["exp_avg"][k], st["exp_avg_sq"][k]
            Mp.lerp_(Gp, 1 - beta1)
            V.mul_(beta2).addcmul_(Gp, Gp, value=1 - beta2)
            N = Mp / V.sqrt().add_(group["eps"])
            if g.order == 1:
                updates[key] = torch.bmm(QL, N.unsqueeze(-1)).squeeze(-1)
            else:
                updates[key] = torch.bmm(torch.bmm(QL, N), QR.mT)
            self._update_factors(st, k, G, g.order, sbeta)

        # plain Adam for the parameters left unpreconditioned
        diag = [i for i in plan.diagonal if active[i]]
        diag_updates = {}
        if diag:
            ms = [self.state[params[i]]["exp_avg"] for i in diag]
            vs = [self.state[params[i]]["exp_avg_sq"] for i in diag]
            gl = [grads[i] for i in diag]
            torch._foreach_lerp_(ms, gl, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, gl, gl, 1 - beta2)
            denom = torch._foreach_sqrt(vs)
            torch._foreach_add_(denom, group["eps"])
            diag_updates = dict(zip(diag, torch._foreach_div(ms, denom)))

        live = [i for i in range(len(params)) if active[i]]
        upd = [diag_updates[i] if i in diag_updates else plan.scatter(updates, i) for i in live]
        live_params = [params[i] for i in live]
        torch._foreach_add_(live_params, upd, alpha=-step_size)
        if group["weight_decay"]:
            torch._foreach_mul_(live_params, 1 - lr * group["weight_decay"])

        if s % group["precondition_frequency"] == 0:
            self._refresh(plan, st)

    # ------------------------------------------------------------------ preconditioner pieces
    @staticmethod
    def _update_factors(st, k: str, G: torch.Tensor, order: int, sbeta: float) -> None:
        X = G.unsqueeze(-1) if order == 1 else G
        tp.syrk_upper_(st["factors"]["L" + k], X, 1 - sbeta, sbeta)
        if order == 2:
            tp.syrk_upper_(st["factors"]["R" + k], X.mT, 1 - sbeta, sbeta)

    def _init_state(self, plan, grads, group, sbeta) -> dict:
        st: dict = {"factors": {}, "Q": {}, "exp_avg": {}, "exp_avg_sq": {}}
        names, mats = [], []
        for key, g in plan.groups.items():
            k = _key(key)
            G = ku.work(plan.gather(grads, g))
            for side, n in zip("LR", key):
                st["factors"][side + k] = torch.zeros(len(g), n, n, dtype=G.dtype, device=G.device)
            self._update_factors(st, k, G, g.order, sbeta)
            st["exp_avg"][k] = torch.zeros_like(G)
            st["exp_avg_sq"][k] = torch.zeros_like(G)
            for side in ("LR" if g.order == 2 else "L"):
                names.append(side + k)
                mats.append(tp.symmetrize_upper(st["factors"][side + k]))
        for name, (evals, evecs, ok) in zip(names, ku.eigh_by_size(mats, self.bench_counters)):
            n = evecs.shape[-1]
            eye = torch.eye(n, dtype=evecs.dtype, device=evecs.device)
            q = torch.where(ok[:, None, None], evecs, eye) if not bool(ok.all()) else evecs
            st["Q"][name] = q.flip(-1).contiguous()  # eigenvalues descending
        return st

    def _refresh(self, plan, st) -> None:
        """One power iteration + QR per factor, batched by size; V and M' follow the new basis."""
        pending = []  # (name, group key string, side, P sorted, finite mask)
        for key, g in plan.groups.items():
            k = _key(key)
            for side in ("LR" if g.order == 2 else "L"):
                name = side + k
                F, Q = tp.symmetrize_upper(st["factors"][name]), st["Q"][name]
                finite = torch.isfinite(F).all(-1).all(-1)
                nbad = int((~finite).sum())
                if nbad:
                    self.bench_counters["nonfinite_factors"] += nbad
                P = torch.bmm(F, Q)
                est = (Q * P).sum(-2)
                idx = torch.argsort(est, dim=-1, descending=True)
                idx = torch.where(finite[:, None], idx, torch.arange(idx.shape[-1], device=idx.device))
                V = st["exp_avg_sq"][k]
                if g.order == 1:
                    V.copy_(V.gather(1, idx))
                elif side == "L":
                    V.copy_(V.gather(1, idx[:, :, None].expand_as(V)))
                else:
                    V.copy_(V.gather(2, idx[:, None, :].expand_as(V)))
                P = P.gather(2, idx[:, None, :].expand_as(P))
                pending.append((name, k, side, P, finite))
        def qr(P):
            self.bench_counters["qr_calls"] += 1
            work = P if P.dtype in (torch.float32, torch.float64) else P.float()
            return (torch.linalg.qr(work).Q.to(P.dtype),)

        new_q = [q for (q,) in ku.by_size([item[3] for item in pending], qr)]
        # M' back to the original space with the old bases (M = Q_L M' Q_Rᵀ), before they change
        for key, g in plan.groups.items():
            k = _key(key)
            Mp, QL = st["exp_avg"][k], st["Q"]["L" + k]
            if g.order == 1:
                Mp.copy_(torch.bmm(QL, Mp.unsqueeze(-1)).squeeze(-1))
            else:
                Mp.copy_(torch.bmm(torch.bmm(QL, Mp), st["Q"]["R" + k].mT))
        for j, (name, k, side, P, finite) in enumerate(pending):
            old, q = st["Q"][name], new_q[j]
            ok = finite & torch.isfinite(q).all(-1).all(-1)
            nbad = int((~ok & finite).sum())
            if nbad:
                self.bench_counters["qr_failures"] += nbad
            if not bool(ok.all()):
                q = torch.where(ok[:, None, None], q, old)
            st["Q"][name] = q.contiguous()
        # ... and into the new eigenbasis: M' = Q_Lᵀ M Q_R
        for key, g in plan.groups.items():
            k = _key(key)
            Mp, QL = st["exp_avg"][k], st["Q"]["L" + k]
            if g.order == 1:
                Mp.copy_(torch.bmm(QL.mT, Mp.unsqueeze(-1)).squeeze(-1))
            else:
                Mp.copy_(torch.bmm(torch.bmm(QL.mT, Mp), st["Q"]["R" + k]))


def soap_specs() -> list[bench_core.OptimizerSpec]:
    """``soap``: own SOAP implementation."""
    return [bench_core.OptimizerSpec(
        name="soap", factory=SOAP, defaults={"lr": 3e-3, "precondition_frequency": 10}, scaling="adam",
        search_space={"lr": bench_core.LogUniform(1e-5, 1.0),
                      "precondition_frequency": bench_core.Choice([1, 10, 50, 100])},
        description="SOAP: Adam in Shampoo's eigenbasis (Vyas et al. 2024), own implementation")]
