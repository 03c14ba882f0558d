"""Precision axis: stochastic rounding to bfloat16, and the comparison with float64 twins."""
from __future__ import annotations

import json

import pytest
import torch

from bench_core.trial import SCHEMA_VERSION
from bench_core import precision, store


def test_stochastic_round_is_unbiased_between_neighbours():
    x = torch.full((200_000,), 1.0 + 2 ** -10)  # a quarter of the way from 1 to the next bfloat16
    r = precision.stochastic_round(x, generator=torch.Generator().manual_seed(0)).float()
    assert set(r.unique().tolist()) == {1.0, 1.0 + 2 ** -7}
    assert (r > 1).float().mean().item() == pytest.approx(0.125, abs=0.005)
    assert r.mean().item() == pytest.approx(1.0 + 2 ** -10, abs=1e-4)
    neg = precision.stochastic_round(-x, generator=torch.Generator().manual_seed(0)).float()
    assert torch.equal(neg, -r)


def test_stochastic_round_keeps_representable_and_special_values():
    x = torch.tensor([0.0, 1.0, -2.5, float("inf"), float("-inf"), 3.0e38])
    r = precision.stochastic_round(x)
    assert r.dtype == torch.bfloat16
    assert r[:5].float().tolist() == [0.0, 1.0, -2.5, float("inf"), float("-inf")]
    assert torch.isnan(precision.stochastic_round(torch.tensor([float("nan")]))).all()
    with pytest.raises(ValueError, match="bfloat16"):
        precision.stochastic_round(x, torch.float16)


def test_stochastic_rounding_keeps_small_updates():
    """SGD steps 100× smaller than bfloat16's spacing at 1 vanish with round-to-nearest; with
    stochastic rounding they accumulate in expectation."""
    def run(sr: bool) -> float:
        w = torch.nn.Parameter(torch.ones(4000, dtype=torch.bfloat16))
        opt = torch.optim.SGD([w], lr=1e-4)
        if sr:
            precision.enable_stochastic_rounding(opt, seed=0)

        def closure():
            opt.zero_grad()
            loss = w.float().sum()
            loss.backward()
            return loss

        for _ in range(100):
            opt.step(closure)
        assert w.dtype == torch.bfloat16
        return w.float().mean().item()

    assert run(False) == 1.0
    assert run(True) == pytest.approx(0.99, abs=5e-4)


def _row(tid, dtype, loss, acc, seed=0, params=None):
    return {"schema_version": SCHEMA_VERSION, "key_id": f"k-{dtype}", "code_id": "c0de",
            "trial_id": tid, "problem": "p", "kind": "training", "optimizer": "o", "seed": seed,
            "problem_params": json.dumps(params or {"n": 1}), "hparams": json.dumps({"lr": 0.1}),
            "device": "cpu", "dtype": dtype, "status": "ok",
            "metrics": {"loss": loss, "val_accuracy": acc}, "counters": {}}


def test_compare_to_float64_known_answer(tmp_path):
    curve = lambda values: [(i, float(i), "loss", v) for i, v in enumerate(values)]  # noqa: E731
    store.write_trial(tmp_path, _row("ref", "float64", 3.0, 0.5), curve([1.0, 2.0, 3.0]))
    store.write_trial(tmp_path, _row("low", "bfloat16", 4.0, 0.4, params={"n": 1, "stochastic_rounding": True}),
                      curve([2.0, 3.0, 4.0]))
    store.write_trial(tmp_path, _row("f32", "float32", 3.0, 0.5), curve([3.0, 2.0, 1.0]))
    store.write_trial(tmp_path, _row("orphan", "float32", 1.0, 0.5, seed=7), curve([1.0]))
    df = precision.compare_to_float64(tmp_path).set_index("trial_id")
    assert sorted(df.index) == ["f32", "low"]
    low = df.loc["low"]
    assert low["reference_trial_id"] == "ref" and bool(low["stochastic_rounding"])
    assert low["wasserstein_loss"] == pytest.approx(1.0)
    assert low["reldiff_loss"] == pytest.approx(1 / 3) and low["reldiff_val_accuracy"] == pytest.approx(0.2)
    f32 = df.loc["f32"]  # same values in another order: same distribution
    assert f32["wasserstein_loss"] == pytest.approx(0.0) and f32["reldiff_loss"] == 0.0


def test_wasserstein_and_relative_difference():
    assert precision.wasserstein([0.0, 0.0], [1.0, 1.0]) == pytest.approx(1.0)
    assert precision.wasserstein([0.0, 1.0], [0.0, 1.0, float("nan")]) == 0.0
    assert precision.relative_difference(1.5, 1.0) == pytest.approx(0.5)
    assert precision.relative_difference(0.25, 0.0) == 0.25


SUITE = """
name = "precision"
seeds = [0]
[[problems]]
name = "synthetic.rosenbrock"
dtype = "float64"
budget = { max_steps = 30 }
eval = { every = 10 }
[[problems]]
name = "synthetic.rosenbrock"
dtype = "bfloat16"
budget = { max_steps = 30 }
eval = { every = 10 }
[[problems]]
name = "synthetic.rosenbrock"
dtype = "bfloat16"
params = { stochastic_rounding = true }
budget = { max_steps = 30 }
eval = { every = 10 }
[[optimizers]]
name = "torch.adamw"
hparams = { lr = 0.01 }
"""


def test_bench_run_then_bench_precision(tmp_path, write_suite, capsys):
    from bench_core.cli import main

    suite = write_suite(SUITE)
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out)]) == 0
    trials = store.read_trials(out)
    assert sorted(trials["dtype"]) == ["bfloat16", "bfloat16", "float64"] and set(trials["status"]) == {"ok"}
    df = precision.compare_to_float64(out)
    assert len(df) == 2 and set(df["stochastic_rounding"]) == {True, False}
    assert (df["wasserstein_loss"] > 0).all() and (df["reldiff_loss"] > 0).all()
    capsys.readouterr()
    assert main(["precision", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "rosenbrock" in shown and "wasserstein" in shown
    assert main(["precision", str(tmp_path / "nope")]) == 2
    assert "not a results directory" in capsys.readouterr().err
