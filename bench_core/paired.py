"""Values of two sides paired by (key, seed), every key at once: the vectorized ground of
``bench compare`` and ``bench history``.

Rows carry an integer key code (0 … K−1, −1 for a row left out) and an integer seed code
(codes ordered as the seeds are, so sorting by code sorts by seed). ``per_seed`` reduces one
side's values to one per (key, seed), the median when a seed appears more than once, as the
one-key-at-a-time code of compare and history did (``statistics.median``: the middle value or
the mean of the two middle ones). ``pair`` matches two sides on (key, seed), ordered by key,
then seed. ``Paired`` holds paired values of several keys in flat arrays, and ``moments``
computes per key, with numpy on matrices of the keys of equal size (``groups.Groups``), the
numbers that ``np.mean`` / ``np.std`` / ``np.median`` give on one key's values: bitwise
the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .groups import Groups


@dataclass
class Seeded:
    """One side's values per (key, seed), ordered by key then seed."""

    key: np.ndarray  # key code
    seed: np.ndarray  # seed code
    value: np.ndarray  # the value, the median of a seed's values when it has several
    first: np.ndarray  # the first row of this (key, seed)
    n_seeds: int  # seed codes run over 0 … n_seeds − 1

    @property
    def ids(self) -> np.ndarray:
        """One integer per (key, seed), increasing."""
        return self.key * self.n_seeds + self.seed


def seed_codes(*seeds) -> tuple[list[np.ndarray], int]:
    """(codes of each array of seeds, number of distinct seeds): codes in the order of the seeds'
    values, shared by all arrays."""
    arrays = [np.asarray(s, dtype=np.int64) for s in seeds]
    uniq, inverse = np.unique(np.concatenate(arrays), return_inverse=True)
    cuts = np.cumsum([len(a) for a in arrays])[:-1]
    return np.split(inverse.reshape(-1), cuts), len(uniq)


def per_seed(keys: np.ndarray, seeds: np.ndarray, values: np.ndarray, keep: np.ndarray, n_seeds: int) -> Seeded:
    """The values of the rows where `keep` holds (and the key code is ≥ 0), one per (key, seed):
    the median when a seed has several."""
    idx = np.flatnonzero(np.asarray(keep, dtype=bool) & (keys >= 0))
    ids = keys[idx] * n_seeds + seeds[idx]
    v = values[idx]
    order = np.lexsort((v, ids))
    ids, v, rows = ids[order], v[order], idx[order]
    uniq, start, count = np.unique(ids, return_index=True, return_counts=True)
    lo, hi = start + (count - 1) // 2, start + count // 2
    with np.errstate(over="ignore", invalid="ignore"):
        value = np.where(lo == hi, v[lo], (v[lo] + v[hi]) / 2.0)
    first = np.minimum.reduceat(rows, start) if len(rows) else rows
    return Seeded(uniq // n_seeds, uniq % n_seeds, value, first, n_seeds)


def pair(a: Seeded, b: Seeded) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(key, seed, a's value, b's value) of every (key, seed) both sides have, by key then seed."""
    _, ia, ib = np.intersect1d(a.ids, b.ids, assume_unique=True, return_indices=True)
    return a.key[ia], a.seed[ia], a.value[ia], b.value[ib]


def in_first_order(s: Seeded, key: int) -> list[float]:
    """One key's values in the order its seeds first appear in the rows (a dict's order)."""
    lo, hi = np.searchsorted(s.key, [key, key + 1])
    return s.value[lo:hi][np.argsort(s.first[lo:hi], kind="stable")].tolist()


def moments(codes: np.ndarray, n_groups: int, values: np.ndarray, median: bool = True) -> dict[str, np.ndarray]:
    """Per group of `codes`: n, mean, ss (the sum of squared deviations from the mean, so that
    np.std(ddof=1) is sqrt(ss / (n − 1))), min and (with `median`) median of its values, in
    their order; NaN (n 0) for a group without values."""
    groups = Groups(codes, n_groups)
    out = {k: np.full(n_groups, np.nan) for k in ("mean", "ss", "min")}
    out["n"] = np.zeros(n_groups, dtype=np.int64)
    for n, gs, arr in groups.matrices(np.asarray(values, dtype=float), np.ones(len(codes), dtype=bool)):
        mean = arr.mean(axis=1)
        out["mean"][gs], out["min"][gs], out["n"][gs] = mean, arr.min(axis=1), n
        out["ss"][gs] = ((arr - mean[:, None]) ** 2).sum(axis=1)
    if median:
        out["median"] = groups.medians(values)
        out["median"][out["n"] == 0] = np.nan
    return out


class Paired:
    """Paired values (base, head) of several keys in flat arrays: key i's values are
    base[code == i], head[code == i], in order."""

    def __init__(self, keys: list, codes: np.ndarray, base: np.ndarray, head: np.ndarray):
        self.keys, self.codes = list(keys), np.asarray(codes, dtype=np.int64)
        self.base, self.head = np.asarray(base, dtype=float), np.asarray(head, dtype=float)

    @classmethod
    def from_dict(cls, pairs: dict) -> Paired:
        """From {key: (base values, head values)}; keys without values are left out."""
        keys = [k for k, (b, _) in pairs.items() if len(b)]
        sizes = [len(pairs[k][0]) for k in keys]
        flat = [np.concatenate([np.asarray(pairs[k][i], dtype=float) for k in keys]) if keys else np.zeros(0)
                for i in (0, 1)]
        return cls(keys, np.repeat(np.arange(len(keys)), sizes), *flat)

    def __len__(self) -> int:
        return len(self.keys)
