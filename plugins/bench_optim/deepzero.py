"""DeepZero's coordinate-wise gradient estimate (CGE) with SGD momentum, for small models.

Paper: "DeepZero: Scaling up Zeroth-Order Optimization for Deep Model Training" (Chen et al.,
2024). Update rule, per step, with e_i the i-th unit vector and S a set of coordinates (all of
them, or `n_coords` drawn at random each step from a seeded generator — DeepZero's sparse CGE):

    ĝ_i = (L(x + μ e_i) - L(x)) / μ      for i in S;  ĝ_i = 0 otherwise   (|S| + 1 evaluations)
    b ← β b + ĝ;   x ← x - lr (b + λ x)

Coordinate-wise estimates have far less variance than random-direction ones (MeZO) but cost one
loss evaluation per coordinate, hence "for small models". The spec requires ``loss_only``.
"""
from __future__ import annotations

import torch


class DeepZero(torch.optim.Optimizer):
    """Coordinate-wise zeroth-order SGD (see the module docstring for the update rule)."""

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-3, momentum: float = 0.9,
                 n_coords: int = 0, weight_decay: float = 0.0, seed: int | None = None):
        if lr < 0 or eps <= 0 or n_coords < 0 or not 0 <= momentum < 1:
            raise ValueError(f"invalid DeepZero hyperparameters: lr={lr}, eps={eps}, n_coords={n_coords}")
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        super().__init__(params, {"lr": lr, "eps": eps, "momentum": momentum, "n_coords": int(n_coords),
                                  "weight_decay": weight_decay, "seed": int(seed)})

    @torch.no_grad()
    def step(self, closure=None):
        """One step: 1 + (number of coordinates estimated) loss evaluations; returns L(x)."""
        if closure is None:
            raise ValueError("DeepZero needs a closure that returns the loss")
        live = [(p, g) for g in self.param_groups for p in g["params"] if p.requires_grad]
        base = closure()
        if not live:
            return base
        f0 = float(base)
        first = self.state[live[0][0]]
        first["step"] = first.get("step", 0) + 1
        group0 = self.param_groups[0]
        sizes = [p.numel() for p, _ in live]
        total = sum(sizes)
        if 0 < group0["n_coords"] < total:
            gen = torch.Generator().manual_seed(group0["seed"] * 1_000_003 + first["step"])
            chosen = torch.randperm(total, generator=gen)[:group0["n_coords"]].sort().values.tolist()
        else:
            chosen = range(total)
        estimates = [torch.zeros_like(p) for p, _ in live]
        offsets, start = [], 0
        for n in sizes:
            offsets.append(start)
            start += n
        k = 0
        for index in chosen:
            while index >= offsets[k] + sizes[k]:
                k += 1
            p, group = live[k]
            flat = p.view(-1)
            j = index - offsets[k]
            old = flat[j].item()
            flat[j] = old + group["eps"]
            estimates[k].view(-1)[j] = (float(closure()) - f0) / group["eps"]
            flat[j] = old
        for (p, group), g in zip(live, estimates):
            if group["weight_decay"]:
                g.add_(p, alpha=group["weight_decay"])
            state = self.state[p]
            if group["momentum"]:
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                g = state["momentum_buffer"]
            p.add_(g, alpha=-group["lr"])
        return base
