"""Scaling fits (bench_core.scaling): known exponents recovered within their bootstrap intervals
on synthetic data (power law with and without offset, the Chinchilla form, the lr-transfer
slope), the curve helpers (steps to a level, speed-up, best lr), and `bench scaling` end to end
on suites/scaling_tiny.toml (run, tables, JSON, plots, one-line errors)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench_core.scaling import (
    best_lr,
    bootstrap_indices,
    chinchilla_fit,
    chinchilla_refusal,
    line_fit,
    power_law_fit,
    speedup,
    steps_to_reach,
)

ROOT = Path(__file__).resolve().parents[1]


def test_power_law_with_offset_recovered_within_its_interval():
    rng = np.random.default_rng(1)
    N = np.repeat([1e4, 3e4, 1e5, 3e5, 1e6], 3)  # 5 sizes x 3 seeds
    y = (5.0 * N ** -0.3 + 1.5) * np.exp(rng.normal(0, 0.01, len(N)))
    fit = power_law_fit(N, y, n_boot=200)
    assert fit.offset and fit.n_sizes == 5 and fit.n_points == 15
    assert fit.alpha_ci[0] <= 0.3 <= fit.alpha_ci[1] and fit.c_ci[0] <= 1.5 <= fit.c_ci[1]
    assert fit.alpha_ci[1] - fit.alpha_ci[0] < 0.3


def test_pure_power_law_on_three_sizes():
    rng = np.random.default_rng(2)
    N = np.repeat([1e3, 1e4, 1e5], 4)
    y = 20.0 * N ** -0.5 * np.exp(rng.normal(0, 0.02, len(N)))
    fit = power_law_fit(N, y, n_boot=200)
    assert not fit.offset and fit.c == 0.0
    assert fit.alpha_ci[0] <= 0.5 <= fit.alpha_ci[1] and abs(fit.alpha - 0.5) < 0.02
    with pytest.raises(ValueError, match="at least 2 sizes"):
        power_law_fit([1e3, 1e3], [1.0, 1.1])


def test_chinchilla_form_recovered_within_its_interval():
    rng = np.random.default_rng(3)
    N, D = (a.ravel() for a in np.meshgrid([1e4, 3e4, 1e5, 3e5], [1e5, 3e5, 1e6, 3e6, 1e7]))
    L = (1.7 + 400 / N ** 0.34 + 1000 / D ** 0.28) * np.exp(rng.normal(0, 0.003, len(N)))
    fit = chinchilla_fit(N, D, L, n_boot=60)
    for name, true in (("alpha", 0.34), ("beta", 0.28), ("E", 1.7)):
        lo, hi = fit.ci[name]
        assert lo <= true <= hi, (name, lo, hi)
    assert abs(fit.alpha - 0.34) < 0.05 and abs(fit.beta - 0.28) < 0.05
    exact = chinchilla_fit(N, D, 1.7 + 400 / N ** 0.34 + 1000 / D ** 0.28, n_boot=10)
    assert exact.alpha == pytest.approx(0.34, abs=2e-3) and exact.E == pytest.approx(1.7, abs=0.02)


def test_chinchilla_refuses_what_the_data_cannot_identify():
    """No irreducible loss in the data: the fit runs E to its bound, and is refused with the
    reason rather than reported; a well-posed grid is not refused."""
    N, D = (a.ravel() for a in np.meshgrid([1e4, 3e4, 1e5, 3e5], [1e5, 3e5, 1e6]))
    no_floor = 400 / N ** 0.34 + 1000 / D ** 0.28
    why = chinchilla_refusal(chinchilla_fit(N, D, no_floor, n_boot=10), no_floor)
    assert why is not None and why.startswith("E = ") and "lower bound" in why
    posed = 1.7 + no_floor
    assert chinchilla_refusal(chinchilla_fit(N, D, posed, n_boot=10), posed) is None


def test_lr_transfer_slope_and_best_lr():
    widths = np.array([64, 128, 256, 512])
    rng = np.random.default_rng(4)
    lrs = np.geomspace(1e-4, 1e-1, 7)
    found = []
    for w in widths:  # a loss bowl in log lr centred at lr* = 0.3 / w (slope -1)
        losses = (np.log(lrs) - np.log(0.3 / w)) ** 2 + rng.normal(0, 0.01, len(lrs))
        lr, interior = best_lr(lrs, losses)
        assert interior
        found.append(lr)
    fit = line_fit(np.log2(widths), np.log2(found), n_boot=500)
    assert fit.slope_ci[0] <= -1.0 <= fit.slope_ci[1] and abs(fit.slope + 1) < 0.1
    flat = line_fit(np.log2(widths), np.log2([1e-2, 1.05e-2, 0.97e-2, 1.02e-2]), n_boot=500)
    assert flat.slope_ci[0] <= 0.0 <= flat.slope_ci[1]
    assert best_lr([1e-3, 1e-2, 1e-1], [1.0, 2.0, math.inf]) == (1e-3, False)  # at the edge


def test_bootstrap_resamples_seeds_within_sizes_else_points():
    rng = np.random.default_rng(0)
    idx = bootstrap_indices([1, 1, 2, 2, 3, 3], 50, rng)
    assert idx.shape == (50, 6) and set(idx[:, 0]) <= {0, 1} and set(idx[:, 5]) <= {4, 5}
    assert len(set(bootstrap_indices([1, 2, 3], 50, rng)[:, 0])) == 3  # pairs bootstrap


def test_steps_to_reach_and_speedup():
    steps = np.array([0, 10, 20, 30, 40])
    base = np.array([4.0, 3.0, 2.5, 2.2, 2.0])
    assert steps_to_reach(steps, base, 2.75) == pytest.approx(15.0)
    assert math.isnan(steps_to_reach(steps, base, 1.0))
    twice = np.array([4.0, 2.5, 2.0, 1.9, 1.8])  # reaches the base's final loss at step 20
    assert speedup(steps, base, steps, twice) == pytest.approx(2.0)
    slower = np.array([4.0, 3.5, 3.0, 2.75, 2.5])  # final 2.5: the base got there at step 20 of 40
    assert speedup(steps, base, steps, slower) == pytest.approx(0.5)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    from bench_core.cli import main

    out = tmp_path_factory.mktemp("scaling") / "results"
    assert main(["run", str(ROOT / "suites" / "scaling_tiny.toml"), "--out", str(out)]) == 0
    return out


def test_bench_scaling_on_the_tiny_suite(tiny_results, tmp_path, capsys):
    from bench_core.cli import main

    plots = tmp_path / "plots"
    assert main(["scaling", str(tiny_results), "--boot", "50", "--plots", str(plots)]) == 0
    text = capsys.readouterr().out
    assert "best lr against width" in text and "speed-up over torch.adamw" in text and "L(N, D)" in text
    figures = {p.name for p in plots.iterdir()}
    assert {"scaling_size.png", "scaling_transfer.png", "scaling_speedup.png"} <= figures
    assert main(["scaling", str(tiny_results), "--boot", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metric"] == "val_loss"
    transfer = {(f["problem"], f["parametrization"]) for f in result["lr_transfer"]}
    assert transfer == {(p, z) for p in ("lm.char_gpt", "vision.digits_mlp") for z in ("sp", "mup")}
    for f in result["lr_transfer"]:  # 3 widths each, never pooled across parametrizations
        assert f["n_points"] == 3 and f["optimizer"] == "torch.adamw"
    sizes = [f for f in result["size"] if f["axis"] == "n_params"]
    # 2 problems x 2 parametrizations x 2 optimizers, and the L(N, D) grid's 8- and 30-step AdamW
    assert len(sizes) == 8 + 2 and all(f["n_sizes"] == 3 and not f["offset"] for f in sizes)
    assert {f["optimizer"] for f in result["speedup"]} == {"muon"} and len(result["speedup"]) == 4
    # L(N, D) on the end-of-run cells of the grid the optimizers' `only` picks out: 3 sizes x the
    # budgets 8, 15 and 30 steps (the 15-step cells the best of 3 lrs), fit or refused with a reason
    cells = {(p["N"], p["D"]) for p in result["points"]["chinchilla"]}
    assert len(cells) == 9 and len({d for _, d in cells}) == 3
    fit, refused = result["chinchilla"], result["chinchilla_refused"]
    assert (fit is None) != (refused is None)
    if fit:
        assert fit["label"] == "lm.char_gpt [sp] torch.adamw" and fit["n_sizes"] == fit["n_budgets"] == 3
    else:
        assert refused.startswith("lm.char_gpt [sp] torch.adamw: L(N, D) not identified")
    assert ("scaling_chinchilla.png" in figures) == (fit is not None)


def test_bench_scaling_bad_input_is_one_line(tiny_results, tmp_path, capsys):
    from bench_core.cli import main

    assert main(["scaling", str(tmp_path)]) == 2
    assert main(["scaling", str(tiny_results), "--metric", "nonsense"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a results directory" in err[0] and "--metric nonsense" in err[1]
