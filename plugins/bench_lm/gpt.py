"""A small decoder-only transformer (GPT) in plain torch, for the language-model problems.

Pre-norm blocks: x + attn(LN(x)), x + MLP(LN(x)); causal multi-head self-attention through
``F.scaled_dot_product_attention``; learned position embeddings; the output head shares the
token-embedding weights (as in GPT-2 and nanoGPT).

The width is ``d`` (heads fixed, so the head dimension grows with it). ``parametrization``:

- "sp": the above, initialization N(0, 0.02²) (residual projections 0.02/sqrt(2·layers)),
  attention logits scaled 1/sqrt(d_head).
- "mup" ("Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter
  Transfer", Table 3 and its attention rule): hidden weights N(0, σ²·base/d) (variance
  ∝ 1/fan_in, equal to SP's at the base width), embeddings unchanged (width independent), an
  untied readout initialized at zero, biases zero, attention logits scaled 1/d_head (times
  sqrt(base d_head) so that the base model matches SP's scale).
- "umup" ("u-μP: The Unit-Scaled Maximal Update Parametrization"): unit-variance weights and
  embeddings, each matmul scaled at the op by 1/sqrt(fan_in) (``bench_core.ScaledLinear``), the
  untied readout by 1/fan_in, attention logits by 1/d_head.

``width_roles`` lists (tensor, role, width_mult) for every parameter (width_mult = d / base_width).
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

import bench_core


def _linear(fan_in: int, fan_out: int, unit: bool, bias: bool = True) -> nn.Linear:
    if unit:  # u-μP: the op scales its output by 1/sqrt(fan_in)
        return bench_core.ScaledLinear(fan_in, fan_out, bias=bias, multiplier=fan_in ** -0.5)
    return nn.Linear(fan_in, fan_out, bias=bias)


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float, causal: bool, unit: bool = False,
                 attn_scale: float | None = None):
        super().__init__()
        self.heads, self.causal, self.dropout, self.attn_scale = heads, causal, dropout, attn_scale
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = _linear(d, 3 * d, unit)
        self.proj = _linear(d, d, unit)
        self.mlp = nn.Sequential(_linear(d, 4 * d, unit), nn.GELU(), _linear(4 * d, d, unit))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.attn_scale,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token + position embeddings, `layers` transformer blocks, final LayerNorm, output head
    (tied to the token embedding under "sp", untied under "mup" and "umup")."""

    def __init__(self, vocab: int, block: int, layers: int, heads: int, d: int,
                 dropout: float = 0.0, causal: bool = True, parametrization: str = "sp",
                 base_width: int | None = None):
        super().__init__()
        if d % heads:
            raise ValueError(f"model width {d} must be divisible by the number of heads {heads}")
        if parametrization not in bench_core.PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {', '.join(bench_core.PARAMETRIZATIONS)}, "
                             f"got {parametrization!r}")
        base = base_width or d
        m = d / base
        unit = parametrization == "umup"
        attn_scale = {"sp": None, "mup": math.sqrt(base / heads) / (d / heads), "umup": heads / d}[parametrization]
        self.parametrization = parametrization
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(block, d)
        self.blocks = nn.ModuleList(_Block(d, heads, dropout, causal, unit, attn_scale) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        if unit:
            self.head = bench_core.ScaledLinear(d, vocab, bias=False, multiplier=1.0 / d)
        else:
            self.head = nn.Linear(d, vocab, bias=False)
        if parametrization == "sp":
            self.head.weight = self.tok.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                if unit:
                    std = 1.0
                elif name.startswith(("tok.", "pos.")):
                    std = 0.02
                else:
                    std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                    if parametrization == "mup":
                        std /= math.sqrt(m)
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        if parametrization == "mup":
            nn.init.zeros_(self.head.weight)
        self.width_roles = []
        for name, p in self.named_parameters():  # a tied head is listed once, as the embedding
            role = ("input" if name.startswith(("tok.", "pos.")) else "output" if name.startswith("head.")
                    else "hidden" if p.dim() == 2 else "vector")
            self.width_roles.append((p, role, m))

    def forward(self, idx):
        """Logits (batch, time, vocab) for token ids (batch, time)."""
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))
