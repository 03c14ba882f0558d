"""Muon with an AdamW part for the other tensors (own implementation), registered as ``muon``.

Papers: "Muon: An optimizer for hidden layers in neural networks" (Keller Jordan et al. 2024) and,
for the update-RMS matching scale and decoupled weight decay, "Muon is Scalable for LLM Training"
(Liu et al. 2025). For a hidden weight matrix W (m × n; a convolution filter flattened to
out × in·k·k) with gradient G:

    B ← μ B + (1 − μ) G                         (momentum; μ = ``momentum``)
    U = (1 − μ) G + μ B   (Nesterov, default)   or   U = B
    O = NS₅(U / ‖U‖_F)                           (quintic Newton–Schulz, ≈ the orthogonal factor of U)
    W ← (1 − η λ) W − η s O                     (η = lr, λ = weight_decay, decoupled)
    s = sqrt(max(1, m / n))  (``adjust_lr_fn="original"``)   or   0.2 sqrt(max(m, n))  ("match_rms_adamw")

NS₅ is five steps of X ← a X + (b A + c A²) X, A = X Xᵀ, (a, b, c) = (3.4445, −4.7750, 2.0315),
run on the wide orientation (m ≤ n), in bfloat16 on CUDA and float32 elsewhere (``ns_dtype``). It
maps every singular value of U into roughly [0.7, 1.2] rather than exactly to 1. Every other tensor
takes AdamW (β = ``adam_betas``, ε = ``adam_eps``, decoupled weight decay ``adam_weight_decay``).

Which tensors are hidden matrices (``param_roles``): with the problem's ``nn.Module`` (the spec
declares ``requires={"grad", "model"}``), the weights of ``nn.Embedding`` / ``nn.EmbeddingBag``
modules (``"embedding"``, a head tied to an embedding included) and of the output layer — the last
``nn.Linear`` in registration order, or, in a model without Linear layers, the last convolution —
go to AdamW (``"output"``), as do tensors with fewer than 2 dimensions (``"vector"``: biases, norm
gains) and tensors of 3 or more dimensions that are not convolution weights (``"other"``). Other
2-D tensors are ``"hidden"``, convolution weights ``"conv"``; both take Muon. Without a model (bare
parameters) the 2-D rule alone decides. A param group with ``use_muon`` (a bool, or one bool per
parameter) overrides the rule for its parameters; a group labelled with a problem's parameter
role (``"role"``, as ``bench_core.parametrization.param_groups`` builds them) sends its matrices to
Muon when the role is ``"hidden"`` and everything else to AdamW. Under μP / u-μP the spec's ``scaling="muon"`` gives each role its
learning-rate exponent (the spectral-condition rule derived in ``bench_core.parametrization``).

One optimizer, one param group per group passed in. A group's ``lr`` is Muon's learning rate; its
AdamW part steps with ``lr · adam_lr_ratio`` where ``adam_lr_ratio = adam_lr / lr`` is fixed when
the group is built, so schedules and LR schedulers, which change ``lr``, move both parts alike,
and a group given its own ``lr`` (but no ``adam_lr``) keeps the default ratio. Same-shape matrices
(after orientation) are orthogonalized together in one batched Newton–Schulz.
"""
from __future__ import annotations

import math

import torch

import bench_core

from ._kron_util import GroupStepOptimizer

#: The quintic Newton–Schulz coefficients of Keller Jordan's Muon.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
#: Roles (see ``param_roles``) whose tensors take the Muon update; every other role takes AdamW.
MUON_ROLES = frozenset({"hidden", "conv"})
_CONV = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
         torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
_NS_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
_ADJUST = ("original", "match_rms_adamw")


def newton_schulz(G: torch.Tensor, steps: int = 5, dtype: torch.dtype | None = None,
                  eps: float = 1e-7) -> torch.Tensor:
    """The quintic Newton–Schulz orthogonalization of `G` (a matrix or a batch ``(..., m, n)``).

    `G` is first divided by its Frobenius norm (so every singular value is at most 1); the result
    has the singular vectors of `G` and singular values in about [0.7, 1.2]. Computed in `dtype`
    (default: bfloat16 on CUDA, float32 elsewhere) and returned in it.
    """
    if G.ndim < 2:
        raise ValueError(f"Newton–Schulz needs a matrix, got a tensor of shape {tuple(G.shape)}")
    if dtype is None:
        dtype = torch.bfloat16 if G.device.type == "cuda" else torch.float32
    a, b, c = NS_COEFFICIENTS
    tall = G.size(-2) > G.size(-1)
    X = G.to(dtype)
    if tall:
        X = X.mT
    shape = X.shape
    X = X.reshape(-1, shape[-2], shape[-1])
    X = X / X.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        A = torch.bmm(X, X.mT)
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)
        X = torch.baddbmm(X, B, X, beta=a)
    X = X.reshape(shape)
    return X.mT if tall else X


def lr_scale(shape, adjust_lr_fn: str = "original") -> float:
    """The factor of the lr for a Muon update of a matrix with `shape` (rows, then the rest)."""
    rows = shape[0]
    cols = math.prod(shape[1:])
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1.0, rows / cols))


def param_roles(params, model: torch.nn.Module | None = None) -> list[str]:
    """The role of each tensor in `params` (see the module docstring): ``"hidden"`` and ``"conv"``
    take Muon (``MUON_ROLES``); ``"embedding"``, ``"output"``, ``"vector"`` and ``"other"`` take
    AdamW. Without `model` only the number of dimensions decides."""
    embedding, output, conv = set(), set(), set()
    if isinstance(model, torch.nn.Module):
        last_linear = last_conv = None
        for module in model.modules():
            if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
                embedding.add(id(module.weight))
            elif isinstance(module, torch.nn.Linear):
                last_linear = module
            elif isinstance(module, _CONV):
                last_conv = module
                conv.add(id(module.weight))
        head = last_linear if last_linear is not None else last_conv
        if head is not None:
            output.update(id(p) for p in head.parameters(recurse=False))
    roles = []
    for p in params:
        if p.is_complex():
            roles.append("other")
        elif id(p) in embedding:
            roles.append("embedding")
        elif id(p) in output:
            roles.append("output")
        elif p.ndim < 2:
            roles.append("vector")
        elif p.ndim == 2:
            roles.append("hidden")
        elif id(p) in conv:
            roles.append("conv")
        else:
            roles.append("other")
    return roles


class Muon(GroupStepOptimizer):
    """Muon for hidden matrices, AdamW for the rest, in one optimizer; see the module docstring."""

    def __init__(self, params, model: torch.nn.Module | None = None, lr: float = 0.02,
                 adam_lr: float = 3e-4, momentum: float = 0.95, nesterov: bool = True,
                 weight_decay: float = 0.0, ns_steps: int = 5, adjust_lr_fn: str = "original",
                 ns_dtype: str = "auto", adam_betas: tuple = (0.9, 0.95), adam_eps: float = 1e-8,
                 adam_weight_decay: float | None = None):
        if not lr > 0 or not adam_lr > 0:
            raise ValueError(f"Muon needs lr > 0 and adam_lr > 0, got {lr}, {adam_lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"Muon needs 0 <= momentum < 1, got {momentum}")
        if weight_decay < 0 or (adam_weight_decay is not None and adam_weight_decay < 0):
            raise ValueError("Muon needs weight_decay >= 0 and adam_weight_decay >= 0")
        if int(ns_steps) != ns_steps or ns_steps < 1:
            raise ValueError(f"Muon needs an integer ns_steps >= 1, got {ns_steps}")
        if adjust_lr_fn not in _ADJUST:
            raise ValueError(f"Muon: adjust_lr_fn must be one of {_ADJUST}, got {adjust_lr_fn!r}")
        if ns_dtype != "auto" and ns_dtype not in _NS_DTYPES:
            raise ValueError(f"Muon: ns_dtype must be 'auto', 'bfloat16' or 'float32', got {ns_dtype!r}")
        betas = tuple(float(b) for b in adam_betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Muon needs two adam_betas in [0, 1), got {adam_betas}")
        self._model = model
        defaults = dict(lr=lr, adam_lr_ratio=adam_lr / lr, momentum=momentum, nesterov=bool(nesterov),
                        weight_decay=weight_decay, ns_steps=int(ns_steps), adjust_lr_fn=adjust_lr_fn,
                        ns_dtype=ns_dtype, adam_betas=betas, adam_eps=adam_eps,
                        adam_weight_decay=weight_decay if adam_weight_decay is None else adam_weight_decay)
        super().__init__(params, defaults)
        use = [u for g in self.param_groups for u in g["use_muon"]]
        self.bench_counters = {"muon_tensors": sum(use), "adamw_tensors": len(use) - sum(use)}

    def add_param_group(self, param_group: dict) -> None:
        """Add a group; its parameters are assigned to Muon or AdamW by ``param_roles`` (with the
        model given at construction) unless the group says ``use_muon``. ``adam_lr`` in the group
        sets its AdamW learning rate (stored as ``adam_lr_ratio``)."""
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        group["params"] = params
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        use = group.get("use_muon")
        if use is None and group.get("role") in bench_core.ROLES:  # groups of bench_core.parametrization
            use = [group["role"] == "hidden" and p.ndim >= 2 and not p.is_complex() for p in tensors]
        elif use is None:
            use = [r in MUON_ROLES for r in param_roles(tensors, self._model)]
        elif isinstance(use, bool):
            use = [use] * len(tensors)
        else:
            use = [bool(u) for u in use]
            if len(use) != len(tensors):
                raise ValueError(f"use_muon has {len(use)} entries for {len(tensors)} parameters")
        for p, u in zip(tensors, use):
            if u and (p.ndim < 2 or p.is_complex()):
                raise ValueError(f"use_muon=True for a parameter of shape {tuple(p.shape)} "
                                 f"({p.dtype}): Muon orthogonalizes real matrices (2 or more dims)")
        group["use_muon"] = use
        if "adam_lr" in group:
            adam_lr = group.pop("adam_lr")
            group["adam_lr_ratio"] = adam_lr / group.get("lr", self.defaults["lr"])
        super().add_param_group(group)

    def _step_group(self, gi: int, group: dict) -> None:
        """Muon on the group's hidden matrices, AdamW on its other tensors (``step`` calls it)."""
        muon, adam = [], []
        for p, use in zip(group["params"], group["use_muon"]):
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Muon does not support sparse gradients")
            if p.is_complex():
                raise RuntimeError("Muon does not support complex parameters")
            (muon if use else adam).append(p)
        if muon:
            self._muon(group, muon)
        if adam:
            self._adamw(group, adam)

    def _muon(self, group: dict, params: list) -> None:
        mu, lr = group["momentum"], group["lr"]
        grads = [p.grad for p in params]
        bufs = []
        for p in params:
            st = self.state[p]
            if "momentum_buffer" not in st:
                st["momentum_buffer"] = torch.zeros_like(p)
            bufs.append(st["momentum_buffer"])
        torch._foreach_lerp_(bufs, grads, 1 - mu)
        updates = torch._foreach_lerp(grads, bufs, mu) if group["nesterov"] else bufs
        # orthogonalize same-shape matrices (wide orientation) together
        batches: dict = {}
        for i, (p, u) in enumerate(zip(params, updates)):
            m = u.reshape(u.shape[0], -1)
            tall = m.shape[0] > m.shape[1]
            key = (min(m.shape), max(m.shape), m.dtype, m.device)
            batches.setdefault(key, []).append((i, m.mT if tall else m, tall))
        out = [None] * len(params)
        dtype = _NS_DTYPES.get(group["ns_dtype"])
        for items in batches.values():
            stacked = torch.stack([m for _, m, _ in items])
            ortho = newton_schulz(stacked, group["ns_steps"], dtype)
            for (i, _, tall), o in zip(items, ortho.unbind(0)):
                p = params[i]
                o = o.mT if tall else o
                out[i] = o.to(p.dtype).reshape(p.shape)
        scales = [lr_scale(p.shape, group["adjust_lr_fn"]) for p in params]
        torch._foreach_mul_(out, scales)
        if group["weight_decay"]:
            torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
        torch._foreach_add_(params, out, alpha=-lr)

    def _adamw(self, group: dict, params: list) -> None:
        beta1, beta2 = group["adam_betas"]
        lr = group["lr"] * group["adam_lr_ratio"]
        grads = [p.grad for p in params]
        ms, vs, steps = [], [], []
        for p in params:
            st = self.state[p]
            if "exp_avg" not in st:
                st["step"] = 0
                st["exp_avg"] = torch.zeros_like(p)
                st["exp_avg_sq"] = torch.zeros_like(p)
            st["step"] += 1
            ms.append(st["exp_avg"])
            vs.append(st["exp_avg_sq"])
            steps.append(st["step"])
        torch._foreach_lerp_(ms, grads, 1 - beta1)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, grads, grads, 1 - beta2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, [math.sqrt(1 - beta2 ** s) for s in steps])
        torch._foreach_add_(denom, group["adam_eps"])
        if group["adam_weight_decay"]:
            torch._foreach_mul_(params, 1 - lr * group["adam_weight_decay"])
        torch._foreach_addcdiv_(params, ms, denom, [-lr / (1 - beta1 ** s) for s in steps])


def muon_specs() -> list[bench_core.OptimizerSpec]:
    """``muon``: own Muon (hidden matrices) + AdamW (everything else)."""
    return [bench_core.OptimizerSpec(
        name="muon", factory=Muon, defaults={"lr": 0.02, "adam_lr": 3e-4},
        search_space={"lr": bench_core.LogUniform(1e-3, 0.3)}, requires={"grad", "model"}, scaling="muon",
        description="Muon (Jordan et al. 2024): Newton–Schulz orthogonalized momentum for hidden "
                    "matrices, AdamW for embeddings, head, biases and norms; own implementation")]
