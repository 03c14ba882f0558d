"""SPSA / MeZO: zeroth-order SGD whose random directions are regenerated from a seed.

Papers: "Fine-Tuning Language Models with Just Forward Passes" (MeZO, Malladi et al., 2023) and
"Just One Byte (per gradient): A Note on Low-Bandwidth Decentralized Language Model Finetuning
Using Shared Randomness" (Zelikman et al., 2023), both built on SPSA (Spall, 1992). Update
rule, per step t, with z ~ N(0, I) drawn from a generator seeded by (seed, t, k):

    for k = 1..n_directions:
        d_k = (L(x + μ z_k) - L(x - μ z_k)) / (2μ)          (two loss evaluations, no backward)
        x ← x - (lr / n_directions) (d_k z_k + λ x)

z_k is never stored: it is regenerated from its seed each time it is needed (perturb, restore,
update), so the optimizer holds no extra memory beyond the parameters, and the whole update of a
step is described by (seed, d_k) — the "one byte per gradient" idea. The spec requires
``loss_only``: the runner's closure runs under no_grad and there is never a backward pass.
"""
from __future__ import annotations

import torch


class MeZO(torch.optim.Optimizer):
    """SPSA / MeZO zeroth-order SGD (see the module docstring for the update rule)."""

    def __init__(self, params, lr: float = 1e-3, eps: float = 1e-3, n_directions: int = 1,
                 weight_decay: float = 0.0, seed: int | None = None):
        if lr < 0 or eps <= 0 or n_directions < 1:
            raise ValueError(f"invalid MeZO hyperparameters: lr={lr}, eps={eps}, n_directions={n_directions}")
        if seed is None:  # follows the trial's seed (the runner seeds torch before building)
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        super().__init__(params, {"lr": lr, "eps": eps, "n_directions": int(n_directions),
                                  "weight_decay": weight_decay, "seed": int(seed)})
        self.bench_counters = {"zo_directions": 0}

    def _params(self):
        return [(p, g) for g in self.param_groups for p in g["params"] if p.requires_grad]

    def _perturb(self, live, seed: int, scale: float) -> None:
        """x ← x + scale · eps_group · z, with z regenerated from `seed`."""
        gen = None
        for p, group in live:
            if gen is None or gen.device != p.device:
                gen = torch.Generator(device=p.device).manual_seed(seed)
            z = torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)
            p.add_(z, alpha=scale * group["eps"])

    def _update(self, live, seed: int, projected: float) -> None:
        gen = None
        for p, group in live:
            if gen is None or gen.device != p.device:
                gen = torch.Generator(device=p.device).manual_seed(seed)
            z = torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)
            lr = group["lr"] / group["n_directions"]
            if group["weight_decay"]:
                p.mul_(1 - lr * group["weight_decay"])
            p.add_(z, alpha=-lr * projected)

    @torch.no_grad()
    def step(self, closure=None):
        """One SPSA step: 2 · n_directions loss evaluations; returns the mean of them."""
        if closure is None:
            raise ValueError("MeZO needs a closure that returns the loss")
        live = self._params()
        if not live:
            return closure()
        state = self.state[live[0][0]]
        state["step"] = state.get("step", 0) + 1
        group0 = self.param_groups[0]
        total = 0.0
        for k in range(group0["n_directions"]):
            seed = (group0["seed"] * 1_000_003 + state["step"] * 1009 + k) % (2**63 - 1)
            self._perturb(live, seed, +1.0)
            plus = float(closure())
            self._perturb(live, seed, -2.0)
            minus = float(closure())
            self._perturb(live, seed, +1.0)
            projected = (plus - minus) / (2 * group0["eps"])
            self._update(live, seed, projected)
            self.bench_counters["zo_directions"] += 1
            total += plus + minus
        return torch.tensor(total / (2 * group0["n_directions"]))
