"""AdaHessian: Adam with the gradient's second moment replaced by a Hessian-diagonal estimate.

Paper: "ADAHESSIAN: An Adaptive Second Order Optimizer for Machine Learning" (Yao et al., 2021).
Update rule, with z Rademacher (±1) and Hz a Hessian-vector product (double backward):

    D_t = z ⊙ (H_t z)                       (Hutchinson estimate of diag(H_t), `n_samples` averaged)
    D_t ← mean of |D_t| over each kernel's spatial positions for parameters of ≥ 3 dims
          (spatial averaging; 1-D and 2-D parameters are left as they are)
    m_t = β1 m_{t-1} + (1-β1) g_t           v_t = β2 v_{t-1} + (1-β2) D_t²   (RMS moving average)
    x_{t+1} = x_t - lr m̂_t / ((v̂_t)^{k/2} + ε)   (k = hessian_power, m̂, v̂ bias-corrected)

The Hessian diagonal is refreshed every `update_each` steps. The step needs gradients built with
``create_graph=True`` (the spec requires it); every Hessian-vector product is counted in
``self.bench_counters["hvp"]``, which the runner adds to the trial's counters.
"""
from __future__ import annotations

import torch


class AdaHessian(torch.optim.Optimizer):
    """AdaHessian (see the module docstring for the update rule)."""

    def __init__(self, params, lr: float = 0.1, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, hessian_power: float = 1.0, update_each: int = 1,
                 n_samples: int = 1):
        if lr < 0 or not 0 < hessian_power <= 1 or update_each < 1 or n_samples < 1:
            raise ValueError(f"invalid AdaHessian hyperparameters: lr={lr}, hessian_power={hessian_power}, "
                             f"update_each={update_each}, n_samples={n_samples}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "hessian_power": hessian_power})
        self.update_each, self.n_samples = int(update_each), int(n_samples)
        self.bench_counters = {"hvp": 0}

    def _hessian_diagonal(self, params: list) -> list:
        """Hutchinson estimates z ⊙ Hz of the Hessian diagonal of each parameter."""
        live = [p for p in params if p.grad.requires_grad]
        if not live:
            return [torch.zeros_like(p) for p in params]
        estimates = {p: torch.zeros_like(p) for p in params}
        for i in range(self.n_samples):
            zs = [torch.randint_like(p, 0, 2) * 2.0 - 1.0 for p in live]
            try:
                hzs = torch.autograd.grad([p.grad for p in live], live, grad_outputs=zs,
                                          retain_graph=i < self.n_samples - 1)
            except RuntimeError as exc:
                raise RuntimeError("AdaHessian needs Hessian-vector products (double backward), which this "
                                   f"problem's loss does not support: {str(exc).splitlines()[0]}") from exc
            self.bench_counters["hvp"] += 1
            for p, z, hz in zip(live, zs, hzs):
                estimates[p].addcmul_(z, hz, value=1.0 / self.n_samples)
        out = []
        for p in params:
            d = estimates[p]
            if d.dim() >= 3:  # spatial averaging over each kernel's positions
                d = d.abs().mean(dim=tuple(range(2, d.dim())), keepdim=True).expand_as(d).clone()
            out.append(d)
        return out

    @torch.no_grad()
    def step(self, closure=None):
        """One AdaHessian step; `closure` must run backward with create_graph=True."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            return loss
        first = self.state[params[0]]
        step = first.get("step", 0) + 1
        if (step - 1) % self.update_each == 0:
            with torch.enable_grad():
                diags = self._hessian_diagonal(params)
            for p, d in zip(params, diags):
                self.state[p]["hess"] = d
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_hess_sq"] = torch.zeros_like(p)
                state["step"] = step
                g = p.grad.detach()
                state["exp_avg"].lerp_(g, 1 - beta1)
                if (step - 1) % self.update_each == 0:
                    d = state["hess"]
                    state["exp_hess_sq"].mul_(beta2).addcmul_(d, d, value=1 - beta2)
                denom = (state["exp_hess_sq"] / (1 - beta2 ** step)).pow_(group["hessian_power"] / 2)
                denom.add_(group["eps"])
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - beta1 ** step))
        for p in params:  # drop the graph the create_graph backward kept alive
            p.grad = p.grad.detach()
        return loss
