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
- ``ChebCB`` (Khodak et al., "Learning to Relax", ICLR 2024; their code's ``learners/ChebCB.m``):
  SquareCB (Foster & Rakhlin, "Beyond UCB", 2020) with per-arm Chebyshev least squares on a
  scalar context, inverse-gap-weighted draws; regret against the instance-optimal policy.

Exp3 normalizes costs online by the largest cost seen so far, so they lie in [0, 1].
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import lsq_linear


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


class ChebCB:
    """ChebCB over `k` arms and a scalar context; ``choose(context)`` then ``update(arm, cost, context)``.

    The contextual bandit of "Learning to Relax" (Khodak et al., ICLR 2024): SquareCB (Foster &
    Rakhlin, 2020) with a Chebyshev regression oracle. Per arm the cost − 1 is regressed on
    T_0(u) … T_degree(u), u the context mapped linearly (``log_context``: its log) from
    ``context_range`` onto [−1, 1]; least squares on all of that arm's rounds, its coefficients
    boxed (|θ_0| ≤ the largest cost K, |θ_j| ≤ 2 (largest − smallest cost) / j, the authors'
    bounds). The arm is drawn by inverse gap weighting, p_i = 1 / (K_arms + η (ŷ_i − ŷ_best)) for
    i ≠ best, with ŷ in units of scale = K (2 + 4 spread/K (1 + log m)), m = degree + 1, and
    η_t = 2t √(K_arms t / (Reg_t + 2 α² t)), Reg_t the oracle's online squared error minus the
    per-arm least-squares residuals (the square-loss regret), α the Chebyshev truncation bound
    (π + (2/π) log(2m + 1)) spread / (2 scale (m + 1)). Unplayed arms predict 0, so each arm is
    tried. Regret against the instance-optimal policy o(T) when costs are smooth in the context.
    """

    def __init__(self, k: int, degree: int = 5, context_range: tuple = (-1.0, 1.0),
                 log_context: bool = False, seed: int = 0):
        lo, hi = (float(v) for v in context_range)
        if not lo < hi or (log_context and lo <= 0):
            raise ValueError(f"context_range must be (lo, hi) with lo < hi (lo > 0 for log_context), "
                             f"got {tuple(context_range)}")
        if degree < 0:
            raise ValueError(f"degree must be ≥ 0, got {degree}")
        self.k, self.degree, self.log_context = k, int(degree), bool(log_context)
        self.lo, self.hi = (math.log(lo), math.log(hi)) if log_context else (lo, hi)
        m = self.degree + 1
        self.gram = np.zeros((k, m, m))   # Σ φφᵀ per arm
        self.moment = np.zeros((k, m))    # Σ φ (cost − 1) per arm
        self.square = np.zeros(k)         # Σ (cost − 1)² per arm
        self.theta = np.zeros((k, m))     # per arm: cost − 1 ≈ θ · φ(context), in iterations
        self.residual = np.zeros(k)       # per arm: least-squares residual Σ (θ · φ − cost + 1)²
        self.online = 0.0                 # Σ (prediction before the update − (cost − 1))²
        self.high = self.low = None       # largest and smallest cost seen
        self.eta, self.t = 0.0, 0
        self.rng = np.random.default_rng(seed)
        self.probs = np.full(k, 1.0 / k)

    def features(self, context: float) -> np.ndarray:
        """T_0(u) … T_degree(u), u the (log-)context mapped from context_range onto [−1, 1]."""
        x = math.log(max(context, 1e-300)) if self.log_context else float(context)
        u = float(np.clip(2 * (x - self.lo) / (self.hi - self.lo) - 1, -1.0, 1.0))
        return chebvander(u, self.degree)

    def _scale(self) -> float:
        if self.high is None:
            return 1.0
        spread = self.high - self.low
        return self.high * 2.0 + 4.0 * spread * (1.0 + math.log(self.degree + 1))

    def distribution(self, context: float) -> np.ndarray:
        """Inverse gap weighting around the arm with the lowest predicted cost in this context."""
        yhat = self.theta @ self.features(context) / self._scale()
        best = int(np.argmin(yhat))
        p = 1.0 / (self.k + self.eta * (yhat - yhat[best]))
        p[best] = 0.0
        p[best] = 1.0 - p.sum()
        return p

    def choose(self, context: float) -> int:
        """Sample an arm for this context."""
        self.probs = self.distribution(context)
        return int(self.rng.choice(self.k, p=self.probs))

    def _fit(self, arm: int) -> None:
        """Least squares of the arm's costs − 1 on its features, within the coefficient box."""
        g, h = self.gram[arm], self.moment[arm]
        j = np.arange(1, self.degree + 1)
        # the box; a width > 0 since lsq_linear needs lb < ub (all costs equal: spread 0)
        ub = np.maximum(np.concatenate(([self.high], 2.0 * (self.high - self.low) / j)), 1e-9)
        theta = np.linalg.lstsq(g, h, rcond=None)[0]  # the minimum-norm solution
        if np.any(np.abs(theta) > ub):
            lam, vec = np.linalg.eigh(g)  # ‖aθ − b‖² = θᵀgθ − 2hᵀθ + const with aᵀa = g, aᵀb = h
            keep = lam > lam.max() * 1e-12
            a = np.sqrt(lam[keep])[:, None] * vec[:, keep].T
            b = vec[:, keep].T @ h / np.sqrt(lam[keep])
            theta = lsq_linear(a, b, bounds=(-ub, ub), method="bvls").x
        self.theta[arm] = theta
        self.residual[arm] = max(self.square[arm] - 2 * h @ theta + theta @ g @ theta, 0.0)

    def update(self, arm: int, cost: float, context: float) -> None:
        """Feed back the cost (iterations, ≥ 1) of the arm played in this context."""
        self.t += 1
        phi, y = self.features(context), float(cost) - 1.0
        self.online += (self.theta[arm] @ phi - y) ** 2
        self.gram[arm] += np.outer(phi, phi)
        self.moment[arm] += phi * y
        self.square[arm] += y * y
        cost = float(cost)
        box_changed = self.high is None or cost > self.high or cost < self.low
        self.high = cost if self.high is None else max(self.high, cost)
        self.low = cost if self.low is None else min(self.low, cost)
        for i in (np.flatnonzero(self.gram[:, 0, 0] > 0) if box_changed else [arm]):
            self._fit(int(i))
        scale, m = self._scale(), self.degree + 1
        alpha = (math.pi + 2 / math.pi * math.log(2 * m + 1)) * (self.high - self.low) / (2 * scale * (m + 1))
        regret = max(self.online - self.residual.sum(), 0.0) / scale ** 2
        denominator = regret + 2 * alpha ** 2 * self.t
        self.eta = 2 * self.t * math.sqrt(self.k * self.t / denominator) if denominator > 0 else 1e12


def chebvander(u: float, degree: int) -> np.ndarray:
    """T_0(u) … T_degree(u) (numpy's Chebyshev Vandermonde row)."""
    return np.polynomial.chebyshev.chebvander(np.array([u]), degree)[0]
