"""Online policies that pick one of K parameter values per instance from cost feedback only.

- ``TsallisINF`` (Zimmert & Seldin, "Tsallis-INF: An Optimal Algorithm for Stochastic and
  Adversarial Bandits", 2021): follow-the-regularized-leader with the 1/2-Tsallis entropy,
  p_i = 4 / (η_t (L̂_i − x))² with x normalizing Σp = 1 (Newton), η_t = 2/√t, importance-weighted
  cost estimates; regret O(√(T K)) against the best fixed arm. The bandit of the Learning-to-Relax
  experiments (Khodak et al., their code's ``TsallisINF.m``): costs are the iteration counts, shifted
  by −1 and divided by their running mean (``scale``).
- ``Exp3`` (Auer et al., "The Nonstochastic Multiarmed Bandit Problem", 2002): exponential
  weights on importance-weighted cost estimates; expected regret against the best fixed arm
  O(√(T K log K)), so the average regret per instance shrinks like 1/√T.
- ``ChebyshevLinUCB``: a contextual bandit in the spirit of ChebCB (Khodak et al., "Learning to
  Relax", 2024): per arm, ridge regression of the cost on Chebyshev features T_0..T_d of the
  (log-scaled) scalar context, and the arm with the lowest optimistic (lower-confidence) cost.

Exp3 and the contextual bandit normalize costs online by the largest cost seen so far, so they
lie in [0, 1].
"""
from __future__ import annotations

import math

import numpy as np


class TsallisINF:
    """Tsallis-INF over `k` arms; ``choose()`` then ``update(arm, cost)``."""

    def __init__(self, k: int, seed: int = 0, newton_steps: int = 30):
        self.k = k
        self.rng = np.random.default_rng(seed)
        self.cum = np.zeros(k)  # importance-weighted cumulative shifted costs
        self.t = 0
        self.total = 0.0        # Σ (cost − 1) over the rounds played: scale = its mean
        self.probs = np.full(k, 1.0 / k)
        self.newton_steps = newton_steps

    def distribution(self) -> np.ndarray:
        """The FTRL distribution of round t + 1 (η = 2/√(t+1))."""
        eta = 2.0 / math.sqrt(self.t + 1)
        scale = self.total / self.t if self.t and self.total > 0 else 1.0
        losses = self.cum / scale
        x = losses.min() - 2.0 / eta  # Σp ≥ 1 here; Newton then moves x left, monotonically
        for _ in range(self.newton_steps):
            p = 4.0 / (eta * (losses - x)) ** 2
            x -= (p.sum() - 1.0) / (eta * (p ** 1.5).sum())
        p = 4.0 / (eta * (losses - x)) ** 2
        return p / p.sum()

    def choose(self, context=None) -> int:
        """Sample an arm from the Tsallis-INF distribution."""
        self.probs = self.distribution()
        return int(self.rng.choice(self.k, p=self.probs))

    def update(self, arm: int, cost: float, context=None) -> None:
        """Feed back the cost (iterations, ≥ 1) of the arm played."""
        self.t += 1
        shifted = max(float(cost) - 1.0, 0.0)
        self.total += shifted
        self.cum[arm] += shifted / self.probs[arm]


class Exp3:
    """Exp3 over `k` arms; ``choose()`` then ``update(arm, cost)``."""

    def __init__(self, k: int, horizon: int | None = None, seed: int = 0):
        self.k = k
        self.horizon = horizon
        self.rng = np.random.default_rng(seed)
        self.cum = np.zeros(k)  # importance-weighted cumulative normalized costs
        self.t = 0
        self.scale = 0.0
        self.probs = np.full(k, 1.0 / k)
        self.raw: list[tuple[int, float]] = []

    def _eta(self) -> float:
        t = self.horizon or max(self.t + 1, 1)
        return math.sqrt(2 * math.log(self.k) / (t * self.k))

    def choose(self, context=None) -> int:
        """Sample an arm from the exponential weights."""
        w = -self._eta() * (self.cum - self.cum.min())
        p = np.exp(w)
        self.probs = p / p.sum()
        return int(self.rng.choice(self.k, p=self.probs))

    def update(self, arm: int, cost: float, context=None) -> None:
        """Feed back the cost (e.g. iterations) of the arm played."""
        self.t += 1
        self.raw.append((arm, float(cost)))
        if cost > self.scale:  # renormalize the history to the new largest cost
            if self.scale > 0:
                self.cum *= self.scale / cost
            self.scale = float(cost)
        c = cost / self.scale if self.scale > 0 else 0.0
        self.cum[arm] += c / self.probs[arm]


def chebyshev_features(u: float, degree: int) -> np.ndarray:
    """T_0(u) … T_degree(u) for u in [−1, 1]."""
    feats = [1.0, u]
    for _ in range(2, degree + 1):
        feats.append(2 * u * feats[-1] - feats[-2])
    return np.array(feats[: degree + 1])


class ChebyshevLinUCB:
    """Contextual bandit: per-arm ridge regression on Chebyshev features of log(context)."""

    def __init__(self, k: int, degree: int = 3, context_range: tuple = (1e-3, 1e3),
                 alpha: float = 0.5, ridge: float = 1.0, seed: int = 0):
        self.k, self.degree, self.alpha = k, degree, alpha
        self.lo, self.hi = math.log(context_range[0]), math.log(context_range[1])
        dim = degree + 1
        self.A_inv = np.stack([np.eye(dim) / ridge] * k)  # (ridge I + Σ φφᵀ)⁻¹ per arm
        self.b = np.zeros((k, dim))                        # Σ φ · cost per arm
        self.scale = 0.0
        self.rng = np.random.default_rng(seed)
        self.t = 0

    def features(self, context: float) -> np.ndarray:
        """Chebyshev features of the context mapped log-linearly onto [−1, 1]."""
        u = (2 * (math.log(max(context, 1e-300)) - self.lo) / (self.hi - self.lo)) - 1
        return chebyshev_features(float(np.clip(u, -1, 1)), self.degree)

    def choose(self, context: float) -> int:
        """The arm with the lowest lower-confidence-bound on its normalized cost."""
        phi = self.features(context)
        theta = np.einsum("kij,kj->ki", self.A_inv, self.b) / (self.scale or 1.0)
        width = np.sqrt(np.einsum("i,kij,j->k", phi, self.A_inv, phi))
        scores = theta @ phi - self.alpha * width
        best = np.flatnonzero(scores <= scores.min() + 1e-12)
        return int(self.rng.choice(best))

    def update(self, arm: int, cost: float, context: float = 1.0) -> None:
        """Feed back the cost of the arm played in this context (Sherman–Morrison update)."""
        self.t += 1
        phi = self.features(context)
        a_phi = self.A_inv[arm] @ phi
        self.A_inv[arm] -= np.outer(a_phi, a_phi) / (1.0 + phi @ a_phi)
        self.b[arm] += phi * float(cost)
        self.scale = max(self.scale, float(cost))
