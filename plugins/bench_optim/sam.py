"""SAM and adaptive SAM (ASAM): descend from the worst point of a small neighbourhood.

Paper: "Sharpness-Aware Minimization for Efficiently Improving Generalization" (Foret et al.,
2021); the adaptive variant is from "ASAM: Adaptive Sharpness-Aware Minimization for Scale-
Invariant Learning of Deep Neural Networks" (Kwon et al., 2021). Update rule, two evaluations
of the closure per step:

    g = ∇L(w)                                     (first closure call)
    ε = ρ g / ‖g‖                  (SAM)
    ε = ρ T² g / ‖T g‖,  T = |w| + η   (adaptive SAM; elementwise)
    g_sam = ∇L(w + ε)                             (second closure call)
    w ← base step of SGD with momentum / Nesterov / weight decay using g_sam

The norms are global over all parameters. The returned loss is L(w) from the first call.
"""
from __future__ import annotations

import torch


class SAM(torch.optim.Optimizer):
    """SAM with an SGD (momentum) base step; ``adaptive=True`` gives ASAM."""

    def __init__(self, params, lr: float = 0.1, rho: float = 0.05, adaptive: bool = False, eta: float = 0.01,
                 momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0):
        if lr < 0 or rho < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"invalid SAM hyperparameters: lr={lr}, rho={rho}, momentum={momentum}")
        super().__init__(params, {"lr": lr, "rho": rho, "adaptive": adaptive, "eta": eta, "momentum": momentum,
                                  "nesterov": nesterov, "weight_decay": weight_decay})

    @staticmethod
    def _scale(p, group):
        return p.abs() + group["eta"] if group["adaptive"] else None

    @torch.no_grad()
    def step(self, closure=None):
        """One SAM step; the closure is called twice (at w and at w + ε)."""
        if closure is None:
            raise ValueError("SAM needs a closure: it evaluates the gradient twice per step")
        with torch.enable_grad():
            loss = closure()
        live = [(p, g) for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not live:
            return loss
        sq = torch.zeros((), device=live[0][0].device, dtype=live[0][0].dtype)
        for p, group in live:
            t = self._scale(p, group)
            sq += ((p.grad if t is None else t * p.grad) ** 2).sum()
        norm = sq.sqrt() + 1e-12
        perturbations = []
        for p, group in live:
            t = self._scale(p, group)
            e = p.grad * (group["rho"] / norm) if t is None else t * t * p.grad * (group["rho"] / norm)
            p.add_(e)
            perturbations.append(e)
        with torch.enable_grad():
            closure()
        for (p, _), e in zip(live, perturbations):
            p.sub_(e)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if group["weight_decay"]:
                    d = d.add(p, alpha=group["weight_decay"])
                if group["momentum"]:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = d.clone()
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                    buf = state["momentum_buffer"]
                    d = d.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.add_(d, alpha=-group["lr"])
        return loss
