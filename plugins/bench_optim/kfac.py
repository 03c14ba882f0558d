"""K-FAC for Linear and Conv2d layers, with the MKOR-H fallback as an option: ``kfac``, ``kfac.mkor_h``.

Papers: "Optimizing Neural Networks with Kronecker-factored Approximate Curvature" (Martens and
Grosse; for convolutions "A Kronecker-factored approximate Fisher matrix for convolution layers",
Grosse and Martens), and for the hybrid option "MKOR: Momentum-Enabled Kronecker-Factor-Based
Optimizer Using Rank-1 Updates" (MKOR-H).

For a layer with inputs a (a trailing 1 for the bias) and output gradients g, the Fisher block is
approximated by A ⊗ G with running averages A = E[a aᵀ], G = E[g gᵀ] (inputs unfolded into patches
for convolutions, gradients scaled to per-example size). Every ``inv_every`` steps the factors are
eigendecomposed, A = U_A diag(α) U_Aᵀ, G = U_G diag(γ) U_Gᵀ (same-size factors in one batched call),
and the layer's gradient matrix ∇ (out × in[+1]) is preconditioned with Tikhonov damping λ:

    V = U_G [(U_Gᵀ ∇ U_A) / (γ αᵀ + λ)] U_Aᵀ
    ν = min(1, sqrt(κ / (η² Σ ⟨V, ∇⟩)))                     (KL clipping)
    u ← μ u + ν V (+ wd θ);   θ ← θ − η u                   (SGD with momentum)

Parameters outside Linear/Conv2d layers (and grouped convolutions) take the first-order step with
the raw gradient. MKOR-H (``hybrid=True``): the mean training loss is compared over consecutive
windows of ``hybrid_window`` steps; when the relative decrease falls below ``hybrid_threshold``
the optimizer falls back to first-order SGD with momentum (learning rate ``fallback_lr``) for the
rest of the run and stops collecting statistics. Counted in ``bench_counters``: fallbacks,
first-order steps, eigendecomposition failures (retried in float64, previous inverse kept),
non-finite factors or updates (skipped, layer stepped first-order).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import bench_core


class LayerStats:
    """Hooks on the Linear and Conv2d layers of a model that capture, while ``capture`` is True
    and autograd is on, each layer's inputs (as rows, with a 1 for the bias) and its output
    gradients (scaled by the batch size, as rows), and hand both to ``on_stats(layer, a, g)``."""

    def __init__(self, model: torch.nn.Module, params, on_stats):
        wanted = {id(p) for p in params}
        self.layers = []
        self.capture = True
        self.on_stats = on_stats
        self.handles = []
        for module in model.modules():
            ok = isinstance(module, torch.nn.Linear) or (
                isinstance(module, torch.nn.Conv2d) and module.groups == 1
                and isinstance(module.padding, tuple))
            if ok and id(module.weight) in wanted and (module.bias is None or id(module.bias) in wanted):
                self.layers.append(module)
                self.handles.append(module.register_forward_hook(self._forward))

    def close(self):
        """Remove the hooks."""
        for h in self.handles:
            h.remove()

    def _forward(self, module, inputs, output):
        if not (self.capture and torch.is_grad_enabled() and output.requires_grad):
            return
        a = _input_rows(module, inputs[0].detach())
        batch = inputs[0].shape[0] if inputs[0].dim() > 1 else 1

        def on_grad(grad, module=module, a=a, batch=batch):
            g = grad.detach()
            g = g.movedim(1, -1).reshape(-1, g.shape[1]) if isinstance(module, torch.nn.Conv2d) \
                else g.reshape(-1, g.shape[-1])
            self.on_stats(module, a, g * batch)

        output.register_hook(on_grad)


def _input_rows(module, x):
    """Layer inputs as rows (patches for a convolution), with a column of ones for the bias."""
    if isinstance(module, torch.nn.Conv2d):
        if module.padding_mode != "zeros":
            x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
            padding = 0
        else:
            padding = module.padding
        x = F.unfold(x, module.kernel_size, dilation=module.dilation, padding=padding, stride=module.stride)
        x = x.transpose(1, 2).reshape(-1, x.shape[1])
    else:
        x = x.reshape(-1, x.shape[-1])
    if module.bias is not None:
        x = torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1)
    return x


def grad_matrix(module) -> torch.Tensor:
    """The layer's gradient as an out × in[+1] matrix (bias gradient as the last column)."""
    g = module.weight.grad.reshape(module.weight.shape[0], -1)
    if module.bias is not None:
        g = torch.cat([g, module.bias.grad[:, None]], dim=1)
    return g


def batched_eigh(mats: list[torch.Tensor], counters: dict, key: str) -> list | None:
    """Eigendecompositions of same-size symmetric matrices in one call; float64 retry on failure
    (counted); None when that fails too."""
    stacked = torch.stack(mats)
    try:
        vals, vecs = torch.linalg.eigh(stacked)
    except Exception:  # torch._C._LinAlgError and friends
        counters[key] = counters.get(key, 0) + 1
        try:
            vals, vecs = torch.linalg.eigh(stacked.double())
            vals, vecs = vals.to(stacked.dtype), vecs.to(stacked.dtype)
        except Exception:
            return None
    return list(zip(vals.clamp_min(0).unbind(0), vecs.unbind(0)))


class KFAC(torch.optim.Optimizer):
    """K-FAC (eigenvalue-damped) for Linear and Conv2d layers; SGD with momentum elsewhere."""

    def __init__(self, params, model, lr=0.1, momentum=0.9, weight_decay=0.0, damping=1e-2,
                 stat_decay=0.95, stat_every=1, inv_every=10, kl_clip=1e-3, hybrid=False,
                 hybrid_window=20, hybrid_threshold=0.01, fallback_lr=None):
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0 or damping <= 0:
            raise ValueError("need lr > 0, 0 <= momentum < 1, weight_decay >= 0, damping > 0")
        if not 0 <= stat_decay < 1 or stat_every < 1 or inv_every < 1:
            raise ValueError("need 0 <= stat_decay < 1, stat_every >= 1, inv_every >= 1")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.damping, self.stat_decay = float(damping), float(stat_decay)
        self.stat_every, self.inv_every = int(stat_every), int(inv_every)
        self.kl_clip = kl_clip
        self.hybrid, self.hybrid_window = bool(hybrid), int(hybrid_window)
        self.hybrid_threshold = float(hybrid_threshold)
        self.fallback_lr = fallback_lr
        self.bench_counters = {"kfac_inversions": 0, "kfac_first_order_steps": 0, "kfac_fallbacks": 0,
                               "kfac_eig_failures": 0, "kfac_nonfinite": 0}
        self.stats = LayerStats(model, [p for g in self.param_groups for p in g["params"]], self._accumulate)
        # run-level state (kept in the state dict): step count, MKOR-H switch and loss windows
        self.state["kfac"] = {"step": 0, "first_order": False, "losses": [], "prev_window": None}

    @property
    def first_order(self) -> bool:
        """True once MKOR-H has fallen back to first order for good."""
        return self.state["kfac"]["first_order"]

    def _factors(self, layer) -> dict:
        """The layer's factor state, kept under its weight: "A", "G" and "eig" = (α, U_A, γ, U_G)."""
        return self.state[layer.weight]

    def _accumulate(self, layer, a, g):
        """Running averages of A = E[a aᵀ] and G = E[g gᵀ] (the first batch initializes them)."""
        new_a = a.T @ a / a.shape[0]
        new_g = g.T @ g / g.shape[0]
        f = self._factors(layer)
        if "A" not in f:
            f["A"], f["G"] = new_a, new_g
        else:
            f["A"].lerp_(new_a, 1 - self.stat_decay)
            f["G"].lerp_(new_g, 1 - self.stat_decay)

    def _invert(self):
        """Eigendecompose every factor; same-size factors batched into one call."""
        by_size = {}
        for layer in self.stats.layers:
            f = self._factors(layer)
            if "A" not in f:
                continue
            for name in ("A", "G"):
                if torch.isfinite(f[name]).all():
                    by_size.setdefault((f[name].shape[0], f[name].dtype), []).append((layer, name))
                else:
                    self.bench_counters["kfac_nonfinite"] += 1
                    f.pop("eig", None)  # drop the inverse: first-order for this layer until fixed
                    f[name] = torch.zeros_like(f[name]) if name == "A" else f[name].nan_to_num(0.0)
        new = {}
        for members in by_size.values():
            out = batched_eigh([self._factors(layer)[name] for layer, name in members],
                               self.bench_counters, "kfac_eig_failures")
            if out is None:
                continue
            for (layer, name), pair in zip(members, out):
                new.setdefault(layer, {})[name] = pair
        for layer, pair in new.items():
            if "A" in pair and "G" in pair:
                self._factors(layer)["eig"] = (*pair["A"], *pair["G"])
        self.bench_counters["kfac_inversions"] += 1

    def _check_hybrid(self, loss) -> None:
        """MKOR-H: fall back to first order when the windowed loss stops decreasing enough."""
        run = self.state["kfac"]
        if not self.hybrid or run["first_order"] or loss is None:
            return
        run["losses"].append(float(loss))
        if len(run["losses"]) < self.hybrid_window:
            return
        mean = sum(run["losses"]) / len(run["losses"])
        run["losses"] = []
        prev, run["prev_window"] = run["prev_window"], mean
        if prev is None or not math.isfinite(mean):
            return
        if (prev - mean) / max(abs(prev), 1e-30) < self.hybrid_threshold:
            run["first_order"] = True
            self.stats.capture = False
            self.bench_counters["kfac_fallbacks"] += 1

    @torch.no_grad()
    def step(self, closure=None):
        """One K-FAC step (statistics come from the closure's forward and backward passes)."""
        run = self.state["kfac"]
        self.stats.capture = (not self.first_order) and run["step"] % self.stat_every == 0
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        run["step"] += 1
        if not self.first_order and (run["step"] - 1) % self.inv_every == 0:
            self._invert()
        group_of = {p: g for g in self.param_groups for p in g["params"]}
        updates = {}  # param -> preconditioned gradient
        if not self.first_order:
            lr = self.param_groups[0]["lr"]
            vg = 0.0
            pending = []
            for layer in self.stats.layers:
                f = self._factors(layer)
                if "eig" not in f or layer.weight.grad is None:
                    continue
                if layer.bias is not None and layer.bias.grad is None:
                    continue
                alpha, ua, gamma, ug = f["eig"]
                grad = grad_matrix(layer)
                v = ug.T @ grad @ ua
                v /= gamma[:, None] * alpha[None, :] + self.damping
                v = ug @ v @ ua.T
                pending.append((layer, v, grad))
            if pending:
                dots = torch.stack([(v * grad).sum() for _, v, grad in pending])
                finite = torch.isfinite(dots)
                vg = float(dots[finite].sum()) if bool(finite.any()) else 0.0
                nu = 1.0
                if self.kl_clip and vg > 0:
                    nu = min(1.0, math.sqrt(self.kl_clip / (lr * lr * vg)))
                for (layer, v, _), ok in zip(pending, finite.tolist()):
                    if not ok:
                        self.bench_counters["kfac_nonfinite"] += 1
                        continue
                    v = v * nu
                    if layer.bias is not None:
                        updates[layer.bias] = v[:, -1]
                        v = v[:, :-1]
                    updates[layer.weight] = v.reshape(layer.weight.shape)
        else:
            self.bench_counters["kfac_first_order_steps"] += 1
        for p, group in group_of.items():
            if p.grad is None:
                continue
            d = updates.get(p, p.grad)
            lr = group["lr"]
            if self.first_order and self.fallback_lr is not None:
                lr = float(self.fallback_lr)
            if group["weight_decay"]:
                d = d.add(p, alpha=group["weight_decay"])
            if group["momentum"]:
                st = self.state[p]
                if "momentum" not in st:
                    st["momentum"] = torch.zeros_like(p)
                d = st["momentum"].mul_(group["momentum"]).add_(d)
            p.add_(d, alpha=-lr)
        self._check_hybrid(loss)
        return loss


def kfac_specs() -> list[bench_core.OptimizerSpec]:
    """The K-FAC specs: plain and with the MKOR-H first-order fallback."""
    def mkor_h(params, **hp):
        hp.setdefault("hybrid", True)
        return KFAC(params, **hp)

    common = {"lr": 0.1, "momentum": 0.9, "damping": 1e-2, "inv_every": 10}
    space = {"lr": bench_core.LogUniform(1e-4, 1.0), "damping": bench_core.LogUniform(1e-6, 1e-1)}
    return [
        bench_core.OptimizerSpec(
            name="kfac", factory=KFAC, defaults=dict(common), search_space=dict(space),
            requires={"grad", "model"}, scaling="kfac",
            description="K-FAC for Linear/Conv2d layers, eigenvalue damping, inverse every k steps "
                        "(Optimizing Neural Networks with Kronecker-factored Approximate Curvature)"),
        bench_core.OptimizerSpec(
            name="kfac.mkor_h", factory=mkor_h,
            defaults=dict(common, hybrid_window=20, hybrid_threshold=0.01),
            search_space=dict(space), requires={"grad", "model"}, scaling="kfac",
            description="K-FAC with the MKOR-H fallback to first order when second order stops helping "
                        "(MKOR: Momentum-Enabled Kronecker-Factor-Based Optimizer Using Rank-1 Updates)"),
    ]
