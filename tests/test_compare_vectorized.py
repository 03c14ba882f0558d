"""compare and history compute every key at once (bench_core.paired); these tests check that
the numbers are bitwise those of a straightforward computation of one key at a time, on small
random studies with groups of 1 to 12 seeds, ties, missed targets, timeouts, NaN and negative
metrics, repeated seeds, unpaired keys and keys on one side only (tests/random_study.py)."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from random_study import random_study

from bench_core import compare as cmp
from bench_core import history
from bench_core.paired import Paired, moments


def test_moments_are_numpys_per_group():
    rng = np.random.default_rng(1)
    sizes = [1, 2, 3, 7, 8, 9, 16, 20, 3, 1]
    values = [rng.lognormal(0, 1, n) for n in sizes]
    m = moments(np.repeat(np.arange(len(sizes)), sizes), len(sizes), np.concatenate(values))
    for i, v in enumerate(values):
        assert m["n"][i] == len(v) and m["mean"][i] == v.mean() and m["median"][i] == np.median(v)
        assert m["min"][i] == v.min() and m["ss"][i] == ((v - v.mean()) ** 2).sum()
        if len(v) > 1:
            assert math.sqrt(m["ss"][i] / (len(v) - 1)) == v.std(ddof=1)


# --------------------------------------------------------------------------- compare, one key at a time
def _per_seed(rows: list, quantity: str) -> dict:
    """seed -> value of one side's rows (dicts) of one key (the median of a repeated seed)."""
    found: dict = {}
    for r in rows:
        if quantity == "time_per_step_s":
            v = r["train_time_s"] / r["steps"] if r["steps"] > 0 else None
        elif quantity in ("time_to_target_s", "steps_to_target"):
            v = r[quantity] if r["status"] == "target_reached" else None
        else:
            v = r["metrics"].get(quantity)
        if v is not None and math.isfinite(float(v)):
            found.setdefault(int(r["seed"]), []).append(float(v))
    return {s: float(statistics.median(v)) for s, v in found.items()}


def _reference(gb: list, gh: list, quantity: str, direction) -> tuple | None:
    """(n, paired, base, head, ratio, ci, p) of one key's quantity, one key at a time."""
    vb, vh = _per_seed(gb, quantity), _per_seed(gh, quantity)
    if not vb or not vh:
        return None
    seeds = sorted(set(vb) & set(vh))
    if not seeds:
        b, h = list(vb.values()), list(vh.values())
        if min(b + h) <= 0:
            return None
        if quantity in cmp.TIME_QUANTITIES:
            ratio, ci, p = math.exp(np.mean(np.log(h)) - np.mean(np.log(b))), None, None
        else:
            ratio, ci, p, _ = cmp.welch_log_ratio(b, h)
        return min(len(b), len(h)), False, statistics.median(b), statistics.median(h), ratio, ci, p
    b, h = [vb[s] for s in seeds], [vh[s] for s in seeds]
    if quantity in cmp.TIME_QUANTITIES:
        if min(b + h) <= 0:
            return None
        return len(b), True, statistics.median(b), statistics.median(h), \
            math.exp(np.mean(np.log(h)) - np.mean(np.log(b))), None, None
    timed = {r["seed"] for r in gb + gh if r["status"] == "timeout"}
    exact = direction is not None and all(r["device"] == "cpu" for r in gb + gh) and not set(seeds) & timed
    if exact and b == h:
        ratio = 1.0 if min(b) > 0 else None
        ci, p = ((1.0, 1.0) if ratio else None), 1.0
    elif min(b + h) > 0:
        d = np.log(h) - np.log(b)
        ratio, ci, p, _ = cmp.log_ratio_test(float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0, len(d))
    else:
        ratio, ci, p, _ = cmp.paired_difference(b, h)
    return len(b), True, statistics.median(b), statistics.median(h), ratio, ci, p


def _reference_deviations(pairs: dict, tests: int) -> dict:
    """{key: (rel_ratio, p)} of time_deviations, computed one key at a time."""
    logs = {k: np.log(np.asarray(h)) - np.log(np.asarray(b)) for k, (b, h) in pairs.items()}
    run = float(np.median([d.mean() for d in logs.values()]))
    dof = sum(len(d) for d in logs.values()) - len(logs)
    pooled = sum(float(((d - d.mean()) ** 2).sum()) for d in logs.values()) / dof
    out = {}
    for k, d in logs.items():
        delta, se = float(d.mean()) - run, math.sqrt(pooled / len(d))
        out[k] = math.exp(delta), min(1.0, tests * float(2.0 * cmp.special.stdtr(dof, -abs(delta / se))))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_compare_gives_the_numbers_of_one_key_at_a_time(seed):
    base, head = random_study(seed, keys=40 - 10 * seed)
    result = cmp.compare(base, head)
    base, _ = cmp.latest_code(base)
    rows = [{k: g.to_dict("records") for k, g in side.groupby("key_id")} for side in (base, head)]
    seen, pairs = set(), {q: {} for q in cmp.TIME_QUANTITIES}
    for c in result.changes:
        key = c.key["key_id"]
        gb, gh = rows[0][key], rows[1][key]
        seen.add((key, c.quantity))
        if c.quantity == "success_rate":
            rb, rh = (float(np.mean([statistics.mean(r["status"] == "target_reached" for r in g if r["seed"] == s)
                                     >= 0.5 for s in sorted({r["seed"] for r in g})])) for g in (gb, gh))
            assert (c.base, c.head) == (rb, rh)
            continue
        expected = _reference(gb, gh, c.quantity, None if c.quantity == "peak_mem" else "min")
        assert expected is not None, (key, c.quantity)
        n, paired, b, h, ratio, ci, p = expected
        assert (c.n, c.paired, c.base, c.head, c.ratio) == (n, paired, b, h, ratio), (key, c.quantity)
        if c.quantity in cmp.TIME_QUANTITIES:
            if paired:
                pairs[c.quantity][key] = c
        else:
            assert (c.ci, c.p_value) == (ci, p), (key, c.quantity)
    for q, changes in pairs.items():  # time quantities: against the run effect, pooled over keys
        values = {}
        for k in changes:
            vb, vh = _per_seed(rows[0][k], q), _per_seed(rows[1][k], q)
            seeds = sorted(set(vb) & set(vh))
            values[k] = [vb[s] for s in seeds], [vh[s] for s in seeds]
        tests = sum(len(p) for p in pairs.values())
        for k, (rel, p) in _reference_deviations(values, tests).items():
            assert (changes[k].rel_ratio, changes[k].p_value) == (rel, p), (k, q)
    shared = set(base["key_id"]) & set(head["key_id"])
    assert {k for k, _ in seen} == shared
    for k in shared:  # every quantity with values on both sides is there
        for q in ("time_to_target_s", "time_per_step_s", "steps_to_target", "loss", "val_loss", "peak_mem"):
            expected = _reference(rows[0][k], rows[1][k], q, None)
            assert ((k, q) in seen) == (expected is not None), (k, q)


def test_time_deviations_of_a_dict_and_of_flat_arrays_agree():
    rng = np.random.default_rng(2)
    pairs = {k: (rng.uniform(1, 2, n), rng.uniform(1, 2, n)) for k, n in zip("abcdef", [1, 3, 5, 8, 9, 12])}
    run, devs = cmp.time_deviations(pairs)
    expected = _reference_deviations(pairs, len(pairs))
    assert {k: (d.rel_ratio, d.p_value) for k, d in devs.items()} == expected
    flat = Paired.from_dict(pairs)
    assert cmp.time_deviations(flat)[1] == devs and run == cmp.time_deviations(flat)[0]


# --------------------------------------------------------------------------- history
@pytest.mark.parametrize("metric", ["final", "time_to_target_s", "val_loss"])
def test_history_points_hold_the_values_of_their_rows(metric):
    base, head = random_study(3, keys=30)
    trials = pd.concat([base.assign(source="B"), head.assign(source="H")], ignore_index=True)
    series, _ = history.build_history(trials, metric, repo="/nonexistent")
    assert {s.key_id for s in series} == set(trials["key_id"])
    points = {k: g.to_dict("records") for k, g in trials.groupby(["key_id", "source", "code_id"])}
    for s in series:
        for p in s.points:
            rows = points[(s.key_id, p.source, p.code_id)]
            found: dict = {}
            for r in rows:
                name = history.primary_metric(r["targets"], r["metrics"]) if metric == "final" else metric
                v = r[metric] if metric in history.COLUMN_METRICS else r["metrics"].get(name)
                if v is not None and math.isfinite(v):
                    found.setdefault(int(r["seed"]), []).append(v)
            assert p.by_seed == {k: float(np.median(v)) for k, v in found.items()}
            assert list(p.by_seed) == list(found)  # seeds in the order of the rows
            assert (p.seeds, p.reached) == (len(rows), sum(r["status"] == "target_reached" for r in rows))
            assert p.exact == all(r["device"] == "cpu" and r["status"] != "timeout" for r in rows)
