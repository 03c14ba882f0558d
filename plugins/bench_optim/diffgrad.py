"""diffGrad: Adam whose step is damped where the gradient changes little.

Paper: "diffGrad: An Optimization Method for Convolutional Neural Networks" (Dubey et al., 2019).
Update rule, per coordinate, with g_t the gradient and g_0 = 0:

    m_t = β1 m_{t-1} + (1-β1) g_t          v_t = β2 v_{t-1} + (1-β2) g_t²
    ξ_t = sigmoid(|g_{t-1} - g_t|)        (the diffGrad friction coefficient, in (0.5, 1))
    x_{t+1} = x_t - lr ξ_t m̂_t / (√v̂_t + ε)     (m̂, v̂ bias-corrected)

Weight decay, when set, is decoupled (AdamW style): x ← x (1 - lr λ).
"""
from __future__ import annotations

import math

import torch


class DiffGrad(torch.optim.Optimizer):
    """diffGrad (see the module docstring for the update rule)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid diffGrad hyperparameters: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        """One diffGrad step; `closure` recomputes the loss and gradients."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["prev_grad"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v, prev = state["exp_avg"], state["exp_avg_sq"], state["prev_grad"]
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                friction = torch.sigmoid((prev - g).abs())
                prev.copy_(g)
                denom = (v / (1 - beta2 ** t)).sqrt_().add_(group["eps"])
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.addcdiv_(friction * m, denom, value=-group["lr"] / (1 - beta1 ** t))
        return loss
