"""MARS: AdamW on a variance-reduced (STORM-style), clipped gradient estimate.

Paper: "MARS: Unleashing the Power of Variance Reduction for Training Large Models" (Yuan et
al., 2024), the MARS-AdamW instance. Update rule, with ξ_t the step's batch:

    c_t = ∇f(x_t, ξ_t) + γ β1/(1-β1) (∇f(x_t, ξ_t) - ∇f(x_{t-1}, ξ_t))     (exact)
    c_t = ∇f(x_t, ξ_t) + γ β1/(1-β1) (∇f(x_t, ξ_t) - ∇f(x_{t-1}, ξ_{t-1}))  (approximate)
    c_t ← c_t / ‖c_t‖ if ‖c_t‖ > 1       (per parameter tensor, as in the authors' code)
    m_t = β1 m_{t-1} + (1-β1) c_t;   v_t = β2 v_{t-1} + (1-β2) c_t²
    x_{t+1} = x_t (1 - lr λ) - lr m̂_t / (√v̂_t + ε)

Exact form: the two gradients on the same batch come from two closure calls per step — the
closure is first evaluated at the previous iterate x_{t-1} (kept in the state; the parameters
are swapped in and back), then at x_t. The first step has no previous iterate and uses one
call. The approximate form reuses the previous step's gradient: one call per step, as AdamW.
"""
from __future__ import annotations

import torch


class MARS(torch.optim.Optimizer):
    """MARS-AdamW; ``exact=True`` evaluates the previous iterate on the current batch."""

    def __init__(self, params, lr: float = 3e-3, betas=(0.95, 0.99), gamma: float = 0.025,
                 eps: float = 1e-8, weight_decay: float = 0.0, exact: bool = False):
        if lr < 0 or gamma < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid MARS hyperparameters: lr={lr}, betas={betas}, gamma={gamma}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "gamma": gamma, "eps": eps,
                                  "weight_decay": weight_decay, "exact": exact})

    def _live(self):
        return [(p, g) for g in self.param_groups for p in g["params"] if p.requires_grad]

    @torch.no_grad()
    def step(self, closure=None):
        """One MARS step (two closure calls in the exact form after the first step)."""
        if closure is None:
            raise ValueError("MARS needs a closure")
        live = self._live()
        exact_prev = [(p, self.state[p]["prev_param"]) for p, g in live
                      if g["exact"] and "prev_param" in self.state[p]]
        if exact_prev:  # the gradient at x_{t-1} on this step's batch
            for p, prev in exact_prev:
                p.data, prev.data = prev.data, p.data
            with torch.enable_grad():
                closure()
            for p, prev in exact_prev:
                p.data, prev.data = prev.data, p.data
                self.state[p]["last_grad"] = (p.grad.detach().clone() if p.grad is not None
                                              else torch.zeros_like(p))
        with torch.enable_grad():
            loss = closure()
        for p, group in live:
            if p.grad is None:
                continue
            g = p.grad
            beta1, beta2 = group["betas"]
            state = self.state[p]
            if "exp_avg" not in state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
                state["last_grad"] = torch.zeros_like(p)
            state["step"] += 1
            t = state["step"]
            c = g + (g - state["last_grad"]) * (group["gamma"] * beta1 / (1 - beta1))
            norm = torch.linalg.vector_norm(c)
            if norm > 1:
                c.div_(norm)
            state["exp_avg"].lerp_(c, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(c, c, value=1 - beta2)
            if group["exact"]:
                state["prev_param"] = p.detach().clone()
            else:
                state["last_grad"].copy_(g)
            denom = (state["exp_avg_sq"] / (1 - beta2 ** t)).sqrt_().add_(group["eps"])
            if group["weight_decay"]:
                p.mul_(1 - group["lr"] * group["weight_decay"])
            p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - beta1 ** t))
        return loss
