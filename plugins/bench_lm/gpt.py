"""A small decoder-only transformer (GPT) in plain torch, for the language-model problems.

Pre-norm blocks: x + attn(LN(x)), x + MLP(LN(x)); causal multi-head self-attention through
``F.scaled_dot_product_attention``; learned position embeddings; the output head shares the
token-embedding weights (as in GPT-2 and nanoGPT).
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float, causal: bool):
        super().__init__()
        self.heads, self.causal, self.dropout = heads, causal, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token + position embeddings, `layers` transformer blocks, final LayerNorm, tied output head."""

    def __init__(self, vocab: int, block: int, layers: int, heads: int, d: int,
                 dropout: float = 0.0, causal: bool = True):
        super().__init__()
        if d % heads:
            raise ValueError(f"model width {d} must be divisible by the number of heads {heads}")
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(block, d)
        self.blocks = nn.ModuleList(_Block(d, heads, dropout, causal) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx):
        """Logits (batch, time, vocab) for token ids (batch, time)."""
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))
