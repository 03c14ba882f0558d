"""Per-group statistics over trial rows, vectorized: the engine behind ``bench_core.analysis``.

``Groups(codes)`` holds rows grouped by an integer code per row (0 … G−1) and computes, for
every group at once, what the analysis needs: first values, counts, distinct values, medians
with infinities, and median / quartiles / bootstrap interval of the finite values
(``matrix_stats``). Rows keep their original order within a group, so a group's values are
the list the one-group-at-a-time functions of ``bench_core.analysis`` see, and the numbers are
bitwise theirs: groups with the same number of values are stacked into one matrix and computed
together, the bootstrap drawing the same resampling indices for every group of a size (its
fixed seed), as ``analysis.bootstrap_ci`` does for one.
"""
from __future__ import annotations

import numpy as np

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
_ALPHA = (1.0 - 0.95) / 2.0


def matrix_stats(arr: np.ndarray, bootstrap: bool = True) -> tuple[np.ndarray, ...]:
    """(median, q1, q3, ci_low, ci_high) of each row of `arr` (G × n, finite values, n ≥ 1); the
    intervals are the percentile bootstrap 95% interval of the median (BOOTSTRAP_SAMPLES
    resamples drawn with BOOTSTRAP_SEED), the value itself for a row without spread, and NaN
    without `bootstrap`."""
    n = arr.shape[1]
    q1, med, q3 = np.percentile(arr, [25, 50, 75], axis=1)
    lo, hi = arr[:, 0].copy(), arr[:, 0].copy()
    if not bootstrap:
        lo[:], hi[:] = np.nan, np.nan
    elif n > 1:
        rows = np.flatnonzero(~np.all(arr == arr[:, :1], axis=1))
        if len(rows):
            draw = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_SAMPLES, n))
            if n <= 8:
                lo[rows], hi[rows] = _rank_quantiles(arr[rows], draw, (_ALPHA, 1.0 - _ALPHA))
            else:
                step = max(1, 4_000_000 // (BOOTSTRAP_SAMPLES * n))
                for k in range(0, len(rows), step):
                    part = rows[k:k + step]
                    stats = np.median(arr[part][:, draw], axis=2)
                    lo[part], hi[part] = np.quantile(stats, [_ALPHA, 1.0 - _ALPHA], axis=1)
    return med, q1, q3, lo, hi


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation between `a` and `b` exactly as np.quantile's "linear" method does it
    (numpy's _lerp: from b backwards when t ≥ 0.5), so the values are bitwise np.quantile's."""
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _rank_quantiles(arr: np.ndarray, draw: np.ndarray, qs) -> list[np.ndarray]:
    """np.quantile(np.median(arr[g][draw], axis=1), q) for each row g of `arr` (G × n, n ≤ 8)
    and each q of `qs`, without forming the G × len(draw) medians.

    The median of a resample is the value at one rank (n odd) or the mean of the values at two
    ranks (n even) of the row's sorted values, and which ranks depends only on the order of the
    row's values (at most n! orders occur). So for each order found, the resamples are counted
    per (low rank, high rank) pair once; each row then has at most n(n+1)/2 distinct medians
    with known counts, sorted per row, and the order statistics np.quantile interpolates
    between (positions floor((B−1)q) and the next) are read off the cumulative counts and
    interpolated as numpy does: the same numbers as sorting all B medians."""
    g, n = arr.shape
    b = draw.shape[0]
    order = np.argsort(arr, axis=1, kind="stable")
    ranked = np.take_along_axis(arr, order, axis=1)
    perms, inverse = np.unique(np.argsort(order, axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    index = {p: k for k, p in enumerate(pairs)}
    counts = np.zeros((len(perms), len(pairs)), dtype=np.int64)
    for u, perm in enumerate(perms):
        r = np.sort(perm[draw], axis=1)
        lo, hi = (r[:, n // 2], r[:, n // 2]) if n % 2 else (r[:, n // 2 - 1], r[:, n // 2])
        codes = lo * n + hi
        found, c = np.unique(codes, return_counts=True)
        for code, k in zip(found.tolist(), c.tolist()):
            counts[u, index[(code // n, code % n)]] = k
    lo_r = np.array([p[0] for p in pairs])
    hi_r = np.array([p[1] for p in pairs])
    values = ranked[:, lo_r] if n % 2 else (ranked[:, lo_r] + ranked[:, hi_r]) / 2.0
    by_value = np.argsort(values, axis=1, kind="stable")
    values = np.take_along_axis(values, by_value, axis=1)
    cum = np.cumsum(np.take_along_axis(counts[inverse], by_value, axis=1), axis=1)
    rows = np.arange(g)

    def at(k: int) -> np.ndarray:  # the k-th smallest median (0-based) of each row
        return values[rows, (cum <= k).sum(axis=1)]
    out = []
    for q in qs:
        virtual = (b - 1) * np.float64(q)
        prev = int(np.floor(virtual))
        nxt = min(prev + 1, b - 1)
        out.append(_lerp(at(prev), at(nxt), float(virtual - prev)))
    return out


def as_floats(values) -> np.ndarray:
    """`values` (a list or array; None, NaN and non-numbers allowed) as a float array, NaN where
    a value is not a number."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                pass
        return out


class Groups:
    """Rows grouped by `codes` (one integer in 0 … n_groups−1 per row), each group's rows in
    their original order."""

    def __init__(self, codes, n_groups: int):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.n = int(n_groups)
        self.order = np.argsort(self.codes, kind="stable")
        self.counts = np.bincount(self.codes, minlength=self.n)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)

    def first_index(self, mask=None) -> np.ndarray:
        """Per group, the row index of its first row (where `mask` holds, when given); −1 for a
        group without one."""
        if mask is None:
            out = np.full(self.n, -1, dtype=np.int64)
            has = self.counts > 0
            out[has] = self.order[self.starts[has]]
            return out
        hits = np.flatnonzero(np.asarray(mask, dtype=bool)[self.order])
        pos = np.searchsorted(hits, self.starts)
        ok = pos < len(hits)
        ok[ok] = hits[pos[ok]] < (self.starts + self.counts)[ok]
        out = np.full(self.n, -1, dtype=np.int64)
        out[ok] = self.order[hits[pos[ok]]]
        return out

    def count(self, mask) -> np.ndarray:
        """Per group, how many of its rows `mask` holds for."""
        return np.bincount(self.codes[np.asarray(mask, dtype=bool)], minlength=self.n)

    def rows(self, mask=None) -> list[np.ndarray]:
        """Per group, the indices of its rows (where `mask` holds), in order."""
        order = self.order if mask is None else self.order[np.asarray(mask, dtype=bool)[self.order]]
        cuts = np.cumsum(np.bincount(self.codes[order], minlength=self.n))[:-1]
        return np.split(order, cuts)

    def _pairs(self, values, mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(group, value code) of each distinct (group, value) pair, and the distinct values."""
        import pandas as pd

        codes, uniques = pd.factorize(pd.Series(list(values), dtype=object), use_na_sentinel=False)
        keep = np.ones(len(codes), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        width = max(len(uniques), 1)
        pairs = np.unique(self.codes[keep] * width + codes[keep])
        return pairs // width, pairs % width, np.asarray(uniques, dtype=object)

    def distinct(self, values, mask=None) -> list[list]:
        """Per group, its distinct values (where `mask` holds)."""
        groups, codes, uniques = self._pairs(values, mask)
        out: list = [[] for _ in range(self.n)]
        for g, v in zip(groups.tolist(), uniques[codes].tolist()):
            out[g].append(v)
        return out

    def n_distinct(self, values, mask=None) -> np.ndarray:
        """Per group, how many distinct values it has (where `mask` holds)."""
        return np.bincount(self._pairs(values, mask)[0], minlength=self.n)

    def value_counts(self, values) -> list[dict]:
        """Per group, {value: rows holding it}."""
        import pandas as pd

        codes, uniques = pd.factorize(pd.Series(list(values), dtype=object), use_na_sentinel=False)
        width = max(len(uniques), 1)
        pairs, counts = np.unique(self.codes * width + codes, return_counts=True)
        out: list = [{} for _ in range(self.n)]
        values = np.asarray(uniques, dtype=object)[pairs % width].tolist()
        for g, v, c in zip((pairs // width).tolist(), values, counts.tolist()):
            out[g][v] = c
        return out

    def matrices(self, values: np.ndarray, keep: np.ndarray):
        """(groups, matrix) per number n ≥ 1 of kept values: the groups with n kept values and
        their values in order, one row each."""
        order = self.order[keep[self.order]]
        counts = np.bincount(self.codes[order], minlength=self.n)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        ordered = values[order]
        for n in np.unique(counts):
            if n == 0:
                continue
            gs = np.flatnonzero(counts == n)
            yield int(n), gs, ordered[starts[gs][:, None] + np.arange(n)]

    def stats(self, values, mask=None, bootstrap: bool = True) -> dict[str, np.ndarray]:
        """Per group, ``matrix_stats`` of its finite values (where `mask` holds): arrays median,
        q1, q3, ci_low, ci_high and n (values used), NaN for a group without values."""
        values = as_floats(values)
        keep = np.isfinite(values) if mask is None else np.isfinite(values) & np.asarray(mask, dtype=bool)
        out = {k: np.full(self.n, np.nan) for k in ("median", "q1", "q3", "ci_low", "ci_high")}
        out["n"] = np.zeros(self.n, dtype=np.int64)
        for n, gs, arr in self.matrices(values, keep):
            for k, v in zip(("median", "q1", "q3", "ci_low", "ci_high"), matrix_stats(arr, bootstrap)):
                out[k][gs] = v
            out["n"][gs] = n
        return out

    def medians(self, values, keep=None) -> np.ndarray:
        """Per group, np.median of its values (of those where `keep` holds; infinities allowed);
        ∞ for a group without values."""
        values = as_floats(values)
        keep = np.ones(len(values), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        out = np.full(self.n, np.inf)
        for _, gs, arr in self.matrices(values, keep):
            out[gs] = np.median(arr, axis=1)
        return out


def group_codes(frame, keys: list[str]) -> tuple[np.ndarray, list[tuple]]:
    """(code per row, key tuple per code) of grouping `frame` by the columns `keys`, codes
    numbered in the order of the keys' text (str of each part), as ``analysis`` orders groups."""
    if not len(frame):
        return np.zeros(0, dtype=np.int64), []
    codes = frame.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]
    parts = [frame[k].to_numpy(dtype=object)[first] for k in keys]
    keys_found = list(zip(*parts))
    # the order of the keys' text: np.lexsort (stable, last key primary) as sorted() of str tuples
    texts = [np.array([str(x) for x in part.tolist()], dtype=str) for part in parts]
    ordered = np.lexsort(texts[::-1]).tolist()
    remap = np.empty(len(ordered), dtype=np.int64)
    remap[ordered] = np.arange(len(ordered))
    return remap[codes], [tuple(keys_found[i]) for i in ordered]
