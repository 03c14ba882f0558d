"""AdaFisher: Adam-style steps preconditioned by a diagonal Kronecker-factored Fisher, ``adafisher``.

Paper: "AdaFisher: Adaptive Second Order Optimization via Fisher Information" (Gomes et al.).
Written from the paper's description (its public code is GPL and was not read): the Fisher
block of a Linear or Conv2d layer is approximated by K-FAC's Kronecker factors, and since those
are close to diagonal only their diagonals are kept, so the Fisher diagonal of the layer's
weight (out × in, bias as a last input column of ones) is the outer product

    F̂ = diag(E[g gᵀ]) diag(E[a aᵀ])ᵀ = E[g²] E[a²]ᵀ           (a: layer inputs, g: output grads)

which replaces Adam's squared gradient as the second moment. With β₁, β₂, damping λ:

    m ← β₁ m + (1 − β₁) ∇;   F ← β₂ F + (1 − β₂) F̂
    θ ← θ (1 − η wd) − η m̂ / (F̂_avg + λ)                     (m̂, F̂_avg bias-corrected)

No square root: F is already a curvature (second-order) quantity. Parameters outside
Linear/Conv2d layers (norms, embeddings) take an AdamW step. The layer statistics come from the
same module hooks as K-FAC (``kfac.LayerStats``). A non-finite statistic is skipped and counted
(``adafisher_nonfinite``); a layer without new statistics at a step (skipped as non-finite,
or a step without a fresh forward/backward) reuses its running average (``adafisher_stale_steps``).
"""
from __future__ import annotations

import torch

import bench_core

from .kfac import LayerStats


class AdaFisher(torch.optim.Optimizer):
    """AdaFisher(W): diagonal Kronecker-factored Fisher as the preconditioner of an Adam-style step."""

    def __init__(self, params, model, lr=1e-2, betas=(0.9, 0.99), damping=1e-3, weight_decay=0.0,
                 eps=1e-8):
        b1, b2 = betas
        if lr <= 0 or not (0 <= b1 < 1 and 0 <= b2 < 1) or damping <= 0 or weight_decay < 0:
            raise ValueError("need lr > 0, 0 <= betas < 1, damping > 0, weight_decay >= 0")
        super().__init__(params, dict(lr=lr, betas=(b1, b2), weight_decay=weight_decay))
        self.damping, self.eps = float(damping), float(eps)
        self.bench_counters = {"adafisher_nonfinite": 0, "adafisher_stale_steps": 0}
        self._fresh = {}  # layer -> (E[g²], E[a²]) of the last backward pass
        self.stats = LayerStats(model, [p for g in self.param_groups for p in g["params"]], self._collect)
        self._layer_of = {}
        for layer in self.stats.layers:
            self._layer_of[layer.weight] = (layer, "weight")
            if layer.bias is not None:
                self._layer_of[layer.bias] = (layer, "bias")

    def _collect(self, layer, a, g):
        a2 = a.square().mean(0)
        g2 = g.square().mean(0)
        if torch.isfinite(a2).all() and torch.isfinite(g2).all():
            self._fresh[layer] = (g2, a2)
        else:
            self.bench_counters["adafisher_nonfinite"] += 1

    def _fisher_diag(self, p):
        """F̂ for parameter p from its layer's last statistics, or None (not a hooked layer)."""
        hit = self._layer_of.get(p)
        if hit is None or hit[0] not in self._fresh:
            return None
        layer, kind = hit
        g2, a2 = self._fresh[layer]
        if kind == "bias":
            return g2 * a2[-1]
        cols = a2[:-1] if layer.bias is not None else a2
        return torch.outer(g2, cols).reshape(p.shape)

    @torch.no_grad()
    def step(self, closure=None):
        """One AdaFisher step (statistics from the closure's forward and backward passes)."""
        loss = None
        if closure is not None:
            self._fresh = {}
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            fisher_p, fisher_m, fisher_v, fisher_f = [], [], [], []
            adam_p, adam_m, adam_v, adam_g = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p)
                    st["second"] = torch.zeros_like(p)
                st["step"] += 1
                f = self._fisher_diag(p)
                if f is None and st.get("fisher"):  # no new statistics (skipped): reuse the average
                    f = st["second"]
                    self.bench_counters["adafisher_stale_steps"] += 1
                if f is not None:
                    st["fisher"] = True
                    fisher_p.append(p), fisher_m.append(st["exp_avg"]), fisher_v.append(st["second"])
                    fisher_f.append(f)
                    torch._foreach_lerp_([st["exp_avg"]], [p.grad], 1 - b1)
                else:
                    adam_p.append(p), adam_m.append(st["exp_avg"]), adam_v.append(st["second"])
                    adam_g.append(p.grad)
            if not (fisher_p or adam_p):
                continue
            step = self.state[(fisher_p or adam_p)[0]]["step"]
            c1, c2 = 1 - b1 ** step, 1 - b2 ** step
            lr, wd = group["lr"], group["weight_decay"]
            if wd:
                torch._foreach_mul_(fisher_p + adam_p, 1 - lr * wd)
            if fisher_p:  # θ -= η m̂ / (F / c2 + λ)
                torch._foreach_lerp_(fisher_v, fisher_f, 1 - b2)
                denom = torch._foreach_div(fisher_v, c2)
                torch._foreach_add_(denom, self.damping)
                torch._foreach_addcdiv_(fisher_p, fisher_m, denom, value=-lr / c1)
            if adam_p:  # AdamW for everything else
                torch._foreach_lerp_(adam_m, adam_g, 1 - b1)
                torch._foreach_mul_(adam_v, b2)
                torch._foreach_addcmul_(adam_v, adam_g, adam_g, value=1 - b2)
                denom = torch._foreach_div(adam_v, c2)
                torch._foreach_sqrt_(denom)
                torch._foreach_add_(denom, self.eps)
                torch._foreach_addcdiv_(adam_p, adam_m, denom, value=-lr / c1)
        self._fresh = {}  # statistics are used by one step only
        return loss


def adafisher_specs() -> list[bench_core.OptimizerSpec]:
    """The AdaFisher spec."""
    return [bench_core.OptimizerSpec(
        name="adafisher", factory=AdaFisher,
        defaults={"lr": 1e-2, "betas": (0.9, 0.99), "damping": 1e-3},
        search_space={"lr": bench_core.LogUniform(1e-5, 1e-1),
                      "damping": bench_core.LogUniform(1e-5, 1e-1)},
        requires={"grad", "model"}, scaling="curvature",
        description="Adam-style step preconditioned by a diagonal Kronecker-factored Fisher "
                    "(AdaFisher: Adaptive Second Order Optimization via Fisher Information)")]
