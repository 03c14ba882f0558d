"""M-FAC: SGD preconditioned by a sliding-window empirical Fisher inverse, ``mfac``.

Paper: "M-FAC: Efficient Matrix-Free Approximations of Second-Order Information" (Frantar,
Kurtic, Alistarh), the dynamic algorithm for optimization.

The curvature is the damped empirical Fisher of the last m gradients g_1 … g_m (all parameters
flattened into one vector of size d):

    F = λ I + (1/m) Σ_i g_i g_iᵀ

Its inverse is built by m Woodbury rank-one updates. Writing v_i = F_{i-1}⁻¹ g_i = Σ_j B_ij g_j
(B lower triangular, B_ii = 1/λ) and den_i = m + g_iᵀ v_i, the inverse-Hessian-vector product is

    F⁻¹ x = x / λ − Σ_i v_i (v_iᵀ x) / den_i = x / λ − Gᵀ Bᵀ ((B G x) / den)

which costs O(m d + m²): one product G x, two with the m × m matrix B. Replacing the oldest
gradient costs O(m d) for the new row of the Gram matrix D = G Gᵀ and O(m³) to rebuild B and den
from D (the sum is order-free, so the ring buffer's slot order is used as it is). The step is
SGD with momentum and decoupled weight decay on F⁻¹ g:

    u ← μ u + F⁻¹ g;   θ ← θ (1 − η wd) − η u
"""
from __future__ import annotations

import torch

import bench_core


def woodbury_coefficients(gram: torch.Tensor, damping: float, m: int):
    """From the Gram matrix D = G Gᵀ (k × k, k ≤ m gradients) return (B, den) such that
    v_i = Σ_j B_ij g_j = F_{i-1}⁻¹ g_i and den_i = m + g_iᵀ v_i. O(k³); the loop is over rows."""
    k = gram.shape[0]
    b = torch.zeros_like(gram)
    den = torch.empty(k, dtype=gram.dtype, device=gram.device)
    for i in range(k):
        # v_i = g_i/λ − Σ_{j<i} v_j (v_jᵀ g_i) / den_j, with v_jᵀ g_i = (B D)_{j i}
        row = torch.zeros(k, dtype=gram.dtype, device=gram.device)
        row[i] = 1.0 / damping
        if i:
            dots = b[:i] @ gram[:, i]  # v_jᵀ g_i for j < i
            row -= (dots / den[:i]) @ b[:i]
        b[i] = row
        den[i] = m + row @ gram[:, i]
    return b, den


class MFAC(torch.optim.Optimizer):
    """M-FAC with a sliding window of ``num_grads`` gradients (all parameters as one block)."""

    def __init__(self, params, lr=0.1, momentum=0.0, weight_decay=0.0, num_grads=32, damping=0.1):
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0 or num_grads < 1 or damping <= 0:
            raise ValueError("need lr > 0, 0 <= momentum < 1, weight_decay >= 0, num_grads >= 1, damping > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.m, self.damping = int(num_grads), float(damping)
        self.bench_counters = {"mfac_ihvp": 0, "mfac_nonfinite_grads": 0}
        params = [p for g in self.param_groups for p in g["params"]]
        d = sum(p.numel() for p in params)
        ref = params[0]
        self.state["window"] = {
            "grads": torch.zeros(self.m, d, dtype=ref.dtype, device=ref.device),
            "gram": torch.zeros(self.m, self.m, dtype=ref.dtype, device=ref.device),
            "count": 0,  # gradients added so far
        }

    def ihvp(self, x: torch.Tensor) -> torch.Tensor:
        """F⁻¹ x for the current window (x flat, size d)."""
        w = self.state["window"]
        k = min(w["count"], self.m)
        if k == 0:
            return x / self.damping
        g = w["grads"][:k]
        b, den = w["coef"]
        q = g @ x
        c = (b @ q) / den
        return x / self.damping - g.T @ (b.T @ c)

    def _add_gradient(self, flat: torch.Tensor) -> None:
        w = self.state["window"]
        slot = w["count"] % self.m
        w["grads"][slot] = flat
        w["count"] += 1
        k = min(w["count"], self.m)
        row = w["grads"][:k] @ flat
        w["gram"][slot, :k] = row
        w["gram"][:k, slot] = row
        w["coef"] = woodbury_coefficients(w["gram"][:k, :k], self.damping, self.m)

    def load_state_dict(self, state_dict):
        """Load as torch.optim does (the window is kept under the key "window")."""
        super().load_state_dict(state_dict)
        w = self.state.get("window")
        if w and w["count"]:
            k = min(w["count"], self.m)
            w["coef"] = woodbury_coefficients(w["gram"][:k, :k], self.damping, self.m)

    def state_dict(self):
        """torch.optim's state dict without the derived Woodbury coefficients."""
        sd = super().state_dict()
        if "window" in sd["state"]:
            sd["state"]["window"] = {k: v for k, v in sd["state"]["window"].items() if k != "coef"}
        return sd

    @torch.no_grad()
    def step(self, closure=None):
        """Add the gradient to the window, then take the preconditioned momentum step."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for g in self.param_groups for p in g["params"]]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        if not torch.isfinite(flat).all():  # a non-finite gradient never enters the window
            self.bench_counters["mfac_nonfinite_grads"] += 1
            return loss
        self._add_gradient(flat)
        direction = self.ihvp(flat)
        self.bench_counters["mfac_ihvp"] += 1
        offset = 0
        for group in self.param_groups:
            for p in group["params"]:
                n = p.numel()
                u = direction[offset:offset + n].view_as(p)
                offset += n
                if p.grad is None:
                    continue
                if group["momentum"]:
                    st = self.state[p]
                    if "momentum" not in st:
                        st["momentum"] = torch.zeros_like(p)
                    u = st["momentum"].mul_(group["momentum"]).add_(u)
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(u, alpha=-group["lr"])
        return loss


def mfac_specs() -> list[bench_core.OptimizerSpec]:
    """The M-FAC spec."""
    return [bench_core.OptimizerSpec(
        name="mfac", factory=MFAC,
        defaults={"lr": 0.1, "momentum": 0.0, "num_grads": 32, "damping": 0.1},
        search_space={"lr": bench_core.LogUniform(1e-6, 1.0),
                      "damping": bench_core.LogUniform(1e-8, 1e-1)},
        description="M-FAC: SGD preconditioned by a sliding-window empirical Fisher inverse "
                    "(M-FAC: Efficient Matrix-Free Approximations of Second-Order Information)")]
