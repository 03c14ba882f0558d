"""lm.modular_arithmetic: (a ∘ b) mod p with a small transformer, where grokking shows.

After "Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets" (Power et al.):
all p² equations ``a ∘ b = c`` (∘ is + or −) are split at random (fixed per seed) into a training
fraction and a validation rest. The input is the token sequence ``[a, b, =]``; the model predicts
c at the last position. Full-batch training; the training set is memorized long before the
validation accuracy rises, and weight decay speeds the rise. Metrics: ``loss``,
``train_accuracy``, ``val_loss``, ``val_accuracy``, and the size and data counts of a scaling fit
(``bench scaling``), as lm.char_gpt and the vision problems report them: ``n_params`` (trainable
parameters), ``train_samples`` (equations trained on so far: training steps × the batch size, or
× the training set for full-batch steps) and ``train_tokens`` (3 × train_samples: the tokens
[a, b, =] each equation feeds through the model). Size: the modulus p and the model width d;
``parametrization`` "sp" | "mup" | "umup" (see gpt.py) relative to ``base_width``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import bench_core

from .gpt import GPT


class ModularArithmetic(bench_core.TrainingProblem):
    """Predict (a op b) mod p from the tokens [a, b, '='] with a non-causal transformer."""

    def __init__(self, seed: int, device, dtype, p: int = 47, op: str = "add",
                 train_fraction: float = 0.5, layers: int = 1, heads: int = 4, d: int = 64,
                 batch_size: int = 0, stochastic_rounding: bool = False, parametrization: str = "sp",
                 base_width: int = 32):
        if op not in ("add", "sub"):
            raise ValueError(f"op must be 'add' or 'sub', got {op!r}")
        if not 0 < train_fraction < 1:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
        a, b = a.reshape(-1), b.reshape(-1)
        c = (a + b) % p if op == "add" else (a - b) % p
        x = torch.stack([a, b, torch.full_like(a, p)], dim=1)  # token p is '='
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(p * p, generator=gen)
        cut = int(round(train_fraction * p * p))
        tr, va = perm[:cut], perm[cut:]
        self.x_train, self.y_train = x[tr].to(device), c[tr].to(device)
        self.x_val, self.y_val = x[va].to(device), c[va].to(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = GPT(p + 1, 3, layers, heads, d, causal=False, parametrization=parametrization,
                             base_width=base_width).to(device=device, dtype=dtype)
        self.parametrization = parametrization
        self.batch_size, self.seed = int(batch_size), seed
        self.stochastic_rounding = bool(stochastic_rounding)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self._steps_seen = 0

    def param_roles(self):
        """Every parameter with its role and width multiplier d / base_width (see gpt.py)."""
        return [bench_core.ParamRole(p, r, m) for p, r, m in self.model.width_roles]

    def batch(self, step: int):
        """Full batch by default (None); with batch_size > 0, random training indices per (seed, step)."""
        n = len(self.y_train)
        self._steps_seen = max(self._steps_seen, step)
        if self.batch_size <= 0 or self.batch_size >= n:
            return None
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return torch.randperm(n, generator=gen)[:self.batch_size].to(self.y_train.device)

    def _logits(self, x):
        logits = self.model(x)[:, -1, :]
        return logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits

    def loss(self, batch):
        """Cross-entropy of the answer token."""
        if batch is None:
            return F.cross_entropy(self._logits(self.x_train), self.y_train)
        return F.cross_entropy(self._logits(self.x_train[batch]), self.y_train[batch])

    def evaluate(self):
        """Training loss and accuracy, validation loss and accuracy; the parameter count and the
        equations (and tokens) trained on so far."""
        lt, lv = self._logits(self.x_train), self._logits(self.x_val)
        n = len(self.y_train)
        samples = self._steps_seen * (self.batch_size if 0 < self.batch_size < n else n)
        return {"loss": float(F.cross_entropy(lt, self.y_train)),
                "train_accuracy": float((lt.argmax(1) == self.y_train).float().mean()),
                "val_loss": float(F.cross_entropy(lv, self.y_val)),
                "val_accuracy": float((lv.argmax(1) == self.y_val).float().mean()),
                "n_params": float(self.n_params), "train_samples": float(samples),
                "train_tokens": float(3 * samples)}
