"""Polyak-type steps: the stochastic Polyak step (SPS_max) and SANIA's preconditioned form.

Papers: "Stochastic Polyak Step-size for SGD: An Adaptive Learning Rate for Fast Convergence"
(Loizou et al., 2021) for SPS_max, and "SANIA: Polyak-type Optimization Framework Leads to Scale
Invariant Stochastic Algorithms" (Abdukhakimov et al., 2023). Both use the loss value f_i(x_t)
of the step's batch inside the step (f* is the optimal value, 0 under interpolation):

    Polyak (SPS_max):  x ← x - lr · min((f_i(x) - f*) / (c ‖g‖²), max_step) g
    SANIA:             x ← x - lr (f_i(x) - f*) / ‖g‖²_{B⁻¹} · B⁻¹ g
                       the projection of x_t onto {x : f_i(x_t) + ⟨g, x - x_t⟩ = f*} in the
                       metric ‖·‖_B, with B diagonal:
      precond="adagrad_sqr":  B = Σ_s g_s² + ε          (no square root: scale invariance)
      precond="adam_sqr":     B = EMA_β(g²) / (1 - β^t) + ε
      precond="none":         B = I (the plain Polyak step, uncapped)
      hutchinson=True:        B = EMA_β(|z ⊙ Hz|) / (1 - β^t) + ε, a Hessian-diagonal estimate;
                              needs create_graph, Hessian-vector products counted in
                              ``self.bench_counters["hvp"]``

A step with f_i(x) ≤ f* or a zero gradient leaves x unchanged.

Under μP (param groups carrying ``lr_multiplier`` m_g, ``bench_core.param_groups`` with the SGD
rule) the Polyak step is taken in the metric M = diag(m_g): ‖g‖² becomes Σ_g m_g ‖g_g‖² and the
step of group g is lr_g · size · g_g with lr_g = lr · m_g, i.e. x ← x − lr · min(gap / (c ‖g‖²_M),
max_step) · M g, the projection of SPS in the geometry where SGD is μP. With the plain norm the
readout's gradient (‖g_out‖² ∝ width under μP) would shrink every step ∝ 1/width. Without groups
(m = 1) this is SPS_max unchanged.
"""
from __future__ import annotations

import math

import torch


def _gap(loss, f_star: float) -> float:
    return max(float(loss) - f_star, 0.0)


class Polyak(torch.optim.Optimizer):
    """Stochastic Polyak step with a cap (SPS_max); `lr` scales the step of its group."""

    def __init__(self, params, lr: float = 1.0, c: float = 0.5, max_step: float = 10.0,
                 f_star: float = 0.0, eps: float = 1e-12):
        if lr <= 0 or c <= 0 or max_step <= 0:
            raise ValueError(f"invalid Polyak hyperparameters: lr={lr}, c={c}, max_step={max_step}")
        super().__init__(params, {"lr": lr, "c": c, "max_step": max_step, "f_star": f_star, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        """One Polyak step; the closure's loss value sets the step size."""
        if closure is None:
            raise ValueError("the Polyak step needs a closure: it uses the loss value")
        with torch.enable_grad():
            loss = closure()
        first = self.param_groups[0]
        sq = sum(g.get("lr_multiplier", 1.0) * float((p.grad * p.grad).sum()) for g in self.param_groups
                 for p in g["params"] if p.grad is not None)
        gap = _gap(loss, first["f_star"])
        if sq <= first["eps"] or gap == 0.0 or math.isnan(sq):
            return loss
        size = min(gap / (first["c"] * sq), first["max_step"])
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-size * group["lr"])
        return loss


class SANIA(torch.optim.Optimizer):
    """SANIA: the Polyak step in a diagonal metric (see the module docstring)."""

    def __init__(self, params, lr: float = 1.0, precond: str = "adam_sqr", beta: float = 0.999,
                 f_star: float = 0.0, eps: float = 1e-8, hutchinson: bool = False):
        if precond not in ("none", "adagrad_sqr", "adam_sqr"):
            raise ValueError(f"precond must be none, adagrad_sqr or adam_sqr, got {precond!r}")
        if lr <= 0 or not 0 <= beta < 1:
            raise ValueError(f"invalid SANIA hyperparameters: lr={lr}, beta={beta}")
        super().__init__(params, {"lr": lr, "precond": precond, "beta": beta, "f_star": f_star, "eps": eps})
        self.hutchinson = bool(hutchinson)
        self.bench_counters = {"hvp": 0} if self.hutchinson else {}

    def _curvature(self, params: list) -> list:
        """Hutchinson |z ⊙ Hz| for each parameter (one Hessian-vector product)."""
        live = [p for p in params if p.grad.requires_grad]
        out = {p: torch.zeros_like(p) for p in params}
        if live:
            zs = [torch.randint_like(p, 0, 2) * 2.0 - 1.0 for p in live]
            try:
                hzs = torch.autograd.grad([p.grad for p in live], live, grad_outputs=zs)
            except RuntimeError as exc:
                raise RuntimeError("SANIA with hutchinson=True needs Hessian-vector products (double backward), "
                                   f"which this problem's loss does not support: {str(exc).splitlines()[0]}") from exc
            self.bench_counters["hvp"] += 1
            for p, z, hz in zip(live, zs, hzs):
                out[p] = (z * hz).abs()
        return [out[p] for p in params]

    @torch.no_grad()
    def step(self, closure=None):
        """One SANIA step; the closure's loss value sets the step size."""
        if closure is None:
            raise ValueError("SANIA needs a closure: it uses the loss value")
        with torch.enable_grad():
            loss = closure()
        pairs = [(p, group) for group in self.param_groups for p in group["params"] if p.grad is not None]
        if self.hutchinson and pairs:
            with torch.enable_grad():
                signal = self._curvature([p for p, _ in pairs])
        else:
            signal = [p.grad.detach() ** 2 for p, _ in pairs]
        entries = []  # (parameter, its group, the diagonal metric B)
        for (p, group), s in zip(pairs, signal):
            state = self.state[p]
            state["step"] = state.get("step", 0) + 1
            if "acc" not in state:
                state["acc"] = torch.zeros_like(p)
            if group["precond"] == "none" and not self.hutchinson:
                metric = torch.ones_like(p)
            elif group["precond"] == "adagrad_sqr" and not self.hutchinson:
                metric = state["acc"].add_(s) + group["eps"]
            else:
                state["acc"].mul_(group["beta"]).add_(s, alpha=1 - group["beta"])
                metric = state["acc"] / (1 - group["beta"] ** state["step"]) + group["eps"]
            entries.append((p, group, metric))
        sq = sum(float((p.grad.detach() ** 2 / b).sum()) for p, _, b in entries)
        gap = _gap(loss, self.param_groups[0]["f_star"])
        if entries and sq > 0.0 and gap > 0.0 and not math.isnan(sq):
            for p, group, b in entries:
                p.addcdiv_(p.grad.detach(), b, value=-group["lr"] * gap / sq)
        if self.hutchinson:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad = p.grad.detach()
        return loss
