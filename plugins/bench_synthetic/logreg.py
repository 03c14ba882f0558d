"""synthetic.logreg: multinomial logistic regression on scikit-learn's 8×8 digits (1797 images).

The data ship with scikit-learn (no download). Features are standardized on the training split (pixels constant there are only centred);
the split (80/20, stratified) and the minibatch order are fixed per seed. Loss: cross-entropy
plus ``l2``/2 ‖W‖².
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import bench_core


class DigitsLogReg(bench_core.TrainingProblem):
    """Softmax regression, 64 features -> 10 classes."""

    def __init__(self, seed: int, device, dtype, batch_size: int = 128, l2: float = 1e-4,
                 val_fraction: float = 0.2):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=val_fraction, random_state=seed, stratify=y)
        mean, std = x_tr.mean(0), x_tr.std(0)
        std[std == 0] = 1.0  # pixels constant on the training split stay as they are
        as_x = lambda a: torch.tensor((a - mean) / std, device=device, dtype=dtype)  # noqa: E731
        as_y = lambda a: torch.tensor(a, device=device, dtype=torch.long)  # noqa: E731
        self.x_train, self.y_train = as_x(x_tr), as_y(y_tr)
        self.x_val, self.y_val = as_x(x_va), as_y(y_va)
        torch.manual_seed(seed)
        self.model = torch.nn.Linear(64, 10).to(device, dtype)
        self.batch_size, self.l2, self.seed = int(batch_size), float(l2), seed
        self._order = np.random.default_rng(seed)
        self._perm: np.ndarray = np.empty(0, dtype=np.int64)

    def batch(self, step: int):
        """Indices of the next minibatch (epochs reshuffled deterministically); all data if batch_size <= 0."""
        n = len(self.y_train)
        if self.batch_size <= 0 or self.batch_size >= n:
            return None
        if len(self._perm) < self.batch_size:
            self._perm = np.concatenate([self._perm, self._order.permutation(n)])
        idx, self._perm = self._perm[:self.batch_size], self._perm[self.batch_size:]
        return torch.as_tensor(idx, device=self.y_train.device)

    def _objective(self, x, y):
        w = self.model.weight
        return F.cross_entropy(self.model(x), y) + 0.5 * self.l2 * (w * w).sum()

    def loss(self, batch):
        """Regularized cross-entropy on the minibatch."""
        if batch is None:
            return self._objective(self.x_train, self.y_train)
        return self._objective(self.x_train[batch], self.y_train[batch])

    def evaluate(self):
        """Full training loss, validation loss and validation accuracy."""
        logits = self.model(self.x_val)
        return {"loss": float(self._objective(self.x_train, self.y_train)),
                "val_loss": float(F.cross_entropy(logits, self.y_val)),
                "val_accuracy": float((logits.argmax(1) == self.y_val).float().mean())}
