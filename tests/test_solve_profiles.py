"""bench_core.solve_profiles: collection-wide scores of linear solvers on hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench_core import solve_profiles


def row(system, solver, iters, ttt=None, setup=0.0, seed=0, kind="linear_system"):
    """One trial row as read_trials gives it (the columns the scores read); iters None = a miss."""
    reached = iters is not None
    return {"problem": "linear.collection", "problem_params": f'{{"matrix": "{system}"}}',
            "optimizer": solver, "hparams": "{}", "kind": kind, "seed": seed,
            "status": "target_reached" if reached else "ok",
            "steps_to_target": iters if reached else None,
            "time_to_target_s": (ttt if ttt is not None else float(iters)) if reached else None,
            "setup_time_s": setup, "key_id": f"{system}-{solver}", "code_id": "c"}


def frame(rows):
    return pd.DataFrame(rows)


# A: 1, 10, 100, miss; B: 10, 10, 1000, 100 iterations on four systems
CASE = [("p1", "A", 1), ("p2", "A", 10), ("p3", "A", 100), ("p4", "A", None),
        ("p1", "B", 10), ("p2", "B", 10), ("p3", "B", 1000), ("p4", "B", 100)]


def test_auc_on_a_hand_computed_case():
    costs = solve_profiles.cost_table(frame([row(*c) for c in CASE]), "iterations")
    assert solve_profiles.cost_range(costs) == (1.0, 1000.0)
    auc = solve_profiles.curve_auc(costs, 1.0, 1000.0)
    # a system with cost c adds log10(1000 / c) / 3: A 1 + 2/3 + 1/3 + 0, B 2/3 + 2/3 + 0 + 1/3
    assert auc["A"] == pytest.approx(2.0 / 4)
    assert auc["B"] == pytest.approx((5.0 / 3) / 4)
    t, frac = solve_profiles.solved_curves(costs, 1.0, 1000.0, points=4)  # t = 1, 10, 100, 1000
    assert np.allclose(t, [1, 10, 100, 1000])
    assert frac["A"].tolist() == [0.25, 0.5, 0.75, 0.75]
    assert frac["B"].tolist() == [0.0, 0.5, 0.75, 1.0]


def test_collection_scores_profiles_setup_apart_and_seed_medians():
    rows = [row(s, o, i, ttt=None if i is None else 0.5 + i, setup=0.5) for s, o, i in CASE]
    rows += [row("p1", "A", 5, seed=1, setup=0.5), row("p1", "A", None, seed=2, setup=0.5)]  # median of 1, 5, ∞
    out = solve_profiles.collection_scores(frame(rows))
    assert out["systems"] == 4
    by = {r["solver"]: r for r in out["rows"]}
    assert by["A"]["solved"] == 3 and by["B"]["solved"] == 4
    assert by["A"]["median_setup_s"] == 0.5
    costs = solve_profiles.cost_table(frame(rows), "iterations")
    assert costs.loc["linear.collection(matrix=p1)", "A"] == 5.0
    # profile on iterations (τ ≤ 4): best 5 | 10 | 100 | 100; A ratios 1, 1, 1, ∞ -> 3/4; B 2, 1, 10, 1 -> (2/3 + 1 + 0 + 1)/4
    assert by["A"]["profile_iterations"] == pytest.approx(0.75)
    assert by["B"]["profile_iterations"] == pytest.approx((2 / 3 + 2) / 4)
    # solve time = time_to_target − setup: the iteration counts again
    solve = solve_profiles.cost_table(frame(rows), "solve_time_s")
    assert solve.loc["linear.collection(matrix=p3)", "B"] == pytest.approx(1000.0)
    total = solve_profiles.cost_table(frame(rows), "total_time_s")
    assert total.loc["linear.collection(matrix=p3)", "B"] == pytest.approx(1000.5)
    assert math.isinf(total.loc["linear.collection(matrix=p4)", "A"])
    assert set(out["curves"]) == set(solve_profiles.COSTS) == set(out["profiles"])


def test_scores_apply_only_to_linear_trials_on_two_systems():
    assert not solve_profiles.applies(frame([row("p1", "A", 3), row("p1", "B", 4)]))
    assert solve_profiles.collection_scores(frame([row("p1", "A", 3)])) is None
    assert not solve_profiles.applies(frame([row("p1", "A", 3, kind="training"),
                                             row("p2", "A", 3, kind="training")]))
    assert solve_profiles.applies(frame([row("p1", "A", 3), row("p2", "A", None)]))
    assert not solve_profiles.applies(pd.DataFrame())
