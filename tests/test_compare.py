"""`bench compare`: ratios, intervals and tests on synthetic pairs of results whose answer is
known, and the exit codes CI gates on (0 fine, 1 significant regression, 2 bad input)."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest

from bench_core import compare as cmp
from bench_core.cli import main
from bench_core.store import to_json, write_trial

SEEDS = range(5)


def row(optimizer="opt.a", seed=0, ttt=1.0, problem="p.one", host="h1", commit="a" * 40, metrics=None,
        device="cpu", hparams=None):
    """A complete trial row; `ttt` None means the target was missed."""
    reached = ttt is not None
    hparams = hparams or {}
    key = json.dumps([problem, optimizer, hparams, seed, device], sort_keys=True)
    return {
        "run_id": "r-" + host, "trial_id": hashlib.sha256(key.encode()).hexdigest()[:16], "suite": "s",
        "problem": problem, "problem_params": to_json({"n": 3}), "kind": "training", "optimizer": optimizer,
        "hparams": to_json(hparams), "label": optimizer, "seed": seed, "device": device, "dtype": "float32",
        "budget": to_json({"max_steps": 100}), "targets": to_json({"loss": 1e-3}),
        "status": "target_reached" if reached else "ok", "error": None, "steps": 100,
        "train_time_s": ttt if reached else 9.0, "time_to_target_s": ttt, "steps_to_target": 50 if reached else None,
        "metrics": metrics or {"loss": 1e-4 if reached else 1e-2}, "counters": {}, "git_commit": commit,
        "git_dirty": False, "package_versions": "{}", "host": host, "cpu_model": "cpu", "gpu_model": None,
        "python_version": "3.11", "torch_version": "2", "cpu_count": 2, "torch_threads": 2,
    }


NOISE = [1.00, 1.04, 0.97, 1.02, 0.98]  # per-seed machine noise, the same on both sides' seeds


def results(path, times, host="h1", commit="a" * 40, **kw):
    """A results dir with one trial per seed; times[i] is seed i's time to target (None: missed)."""
    for s, t in enumerate(times):
        write_trial(path, row(seed=s, ttt=t, host=host, commit=commit, **kw), [(0, 0.0, "loss", 1.0)])
    return str(path)


# --------------------------------------------------------------------------- statistics
def test_paired_log_ratio_of_an_exact_doubling():
    ratio, ci, p, _ = cmp.paired_log_ratio([1, 2, 3], [2, 4, 6])
    assert ratio == pytest.approx(2.0) and ci == pytest.approx((2.0, 2.0)) and p == 0.0
    ratio, ci, p, _ = cmp.paired_log_ratio([1, 2, 3], [1, 2, 3])
    assert ratio == 1.0 and p == 1.0
    assert cmp.paired_log_ratio([1.0], [2.0])[2] is None  # one seed: no test


def test_paired_log_ratio_matches_a_t_test_on_logs():
    from scipy import stats

    base = np.array([1.0, 1.2, 0.9, 1.1, 1.05])
    head = base * np.array([1.3, 1.1, 1.25, 1.2, 1.15])
    ratio, (lo, hi), p, test = cmp.paired_log_ratio(base, head)
    d = np.log(head / base)
    assert ratio == pytest.approx(math.exp(d.mean()))
    assert p == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert (lo, hi) == pytest.approx((math.exp(d.mean() - half), math.exp(d.mean() + half)))
    assert "paired" in test


def test_welch_log_ratio_matches_scipy():
    from scipy import stats

    a, b = np.array([1.0, 1.1, 0.9, 1.05]), np.array([2.0, 2.3, 1.8])
    ratio, _, p, _ = cmp.welch_log_ratio(a, b)
    assert ratio == pytest.approx(math.exp(np.log(b).mean() - np.log(a).mean()))
    assert p == pytest.approx(stats.ttest_ind(np.log(b), np.log(a), equal_var=False).pvalue)


def test_fisher_one_sided_known_values():
    assert cmp.fisher_one_sided(3, 3, 0, 3) == pytest.approx(1 / 20)
    assert cmp.fisher_one_sided(5, 5, 0, 5) == pytest.approx(1 / 252)
    assert cmp.fisher_one_sided(2, 3, 2, 3) == pytest.approx(0.8)  # 1 - P(head 3/3)
    from scipy import stats

    # rows: head, base; columns: success, failure; "less": head succeeds less often
    expected = stats.fisher_exact([[1, 6], [5, 2]], alternative="less").pvalue
    assert cmp.fisher_one_sided(5, 7, 1, 7) == pytest.approx(expected)


# --------------------------------------------------------------------------- compare()
def _frame(times, **kw):
    return pd.DataFrame([row(seed=s, ttt=t, **kw) for s, t in enumerate(times)])


def _change(result, quantity):
    return next(c for c in result.changes if c.quantity == quantity)


def test_slower_head_is_a_significant_regression_and_faster_an_improvement():
    base = _frame(NOISE)
    slow = cmp.compare(base, _frame([2 * t * (1 + 0.01 * i) for i, t in enumerate(NOISE)], host="h2"))
    c = _change(slow, "time_to_target_s")
    assert c.paired and c.n == 5 and c.ratio == pytest.approx(2.04, rel=0.02)
    assert c.ci[0] < c.ratio < c.ci[1] and c.ci[0] > 1.9
    assert c.significant and c.verdict == "regression" and slow.regressions == [c]
    fast = cmp.compare(base, _frame([0.5 * t for t in NOISE]))
    assert _change(fast, "time_to_target_s").verdict == "improvement" and not fast.regressions


def test_noise_and_small_changes_are_not_flagged():
    base = _frame(NOISE)
    rng = np.random.default_rng(0)
    noisy = cmp.compare(base, _frame(list(np.array(NOISE) * rng.uniform(0.7, 1.4, 5))))
    assert not noisy.regressions
    small = cmp.compare(base, _frame([1.05 * t for t in NOISE]))  # exact, but within 10 %
    c = _change(small, "time_to_target_s")
    assert c.significant and c.verdict == "unchanged"
    assert _change(cmp.compare(base, _frame([1.05 * t for t in NOISE]), threshold=0.02),
                   "time_to_target_s").verdict == "regression"


def test_three_noisy_seeds_give_a_wide_interval_not_a_verdict():
    c = _change(cmp.compare(_frame([1.0, 2.0, 1.0]), _frame([2.0, 1.5, 3.0])), "time_to_target_s")
    assert c.n == 3 and c.ci[0] < 1.0 < c.ci[1] and c.verdict == "unchanged"


def test_lost_target_is_a_regression_and_metrics_follow_their_direction():
    lost = cmp.compare(_frame([1.0, 1.0, 1.0]), _frame([None, None, None]))
    c = _change(lost, "success_rate")
    assert c.base == 1.0 and c.head == 0.0 and c.verdict == "regression"
    assert not any(x.quantity == "time_to_target_s" for x in lost.changes)  # no seed reached on both sides
    one_lost = cmp.compare(_frame([1.0, 1.0, 1.0]), _frame([1.0, 1.0, None]))
    assert _change(one_lost, "success_rate").verdict == "unchanged"  # Fisher p = 0.5
    acc = lambda v: [{"loss": 1e-4, "val_accuracy": v}] * 5  # noqa: E731
    base = pd.DataFrame([row(seed=s, metrics=m) for s, m in enumerate(acc(0.9))])
    worse = pd.DataFrame([row(seed=s, metrics=m) for s, m in enumerate(acc(0.7))])
    assert _change(cmp.compare(base, worse), "val_accuracy").verdict == "regression"  # higher is better
    assert _change(cmp.compare(worse, base), "val_accuracy").verdict == "improvement"


def test_unpaired_seeds_use_welch_and_keys_ignore_the_host():
    base = pd.DataFrame([row(seed=s, ttt=1.0 + 0.01 * s) for s in range(4)])
    head = pd.DataFrame([row(seed=10 + s, ttt=3.0 + 0.01 * s, host="other", commit="b" * 40) for s in range(4)])
    result = cmp.compare(base, head)
    assert result.keys_shared == 1 and result.keys_only_base == 0
    c = _change(result, "time_to_target_s")
    assert not c.paired and "Welch" in c.test and c.verdict == "regression"


def test_zero_valued_metric_is_compared_without_logs():
    base = pd.DataFrame([row(seed=s, metrics={"loss": 1e-4, "peak_memory_bytes": 0.0}) for s in range(3)])
    result = cmp.compare(base, base.copy())
    c = _change(result, "peak_memory_bytes")
    assert c.ratio == 1.0 and c.verdict == "unchanged"


def test_device_field_can_be_ignored():
    base = _frame(NOISE, device="cpu")
    head = _frame(NOISE, device="cuda")
    assert cmp.compare(base, head).keys_shared == 0
    assert cmp.compare(base, head, ignore=["device"]).keys_shared == 1


# --------------------------------------------------------------------------- CLI
def test_cli_exit_codes_and_json(tmp_path, capsys):
    base = results(tmp_path / "base", NOISE)
    same = results(tmp_path / "same", NOISE, host="h2", commit="b" * 40)
    slow = results(tmp_path / "slow", [3 * t for t in NOISE], host="h2", commit="c" * 40)
    assert main(["compare", base, same]) == 0
    out = capsys.readouterr().out
    assert "0 regression(s)" in out and "bbbbbbbbbb" in out  # provenance of head
    assert main(["compare", base, slow]) == 1
    assert "regression" in capsys.readouterr().out
    assert main(["compare", base, slow, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["regressions"] == 1 and data["keys_shared"] == 1
    reg = next(c for c in data["changes"] if c["verdict"] == "regression")
    assert reg["quantity"] == "time_to_target_s" and reg["ratio"] == pytest.approx(3.0)
    assert main(["compare", slow, base]) == 0  # the other way round: an improvement
    # gating on machine-independent quantities only: the slower time is not compared
    assert main(["compare", base, slow, "--quantity", "steps_to_target", "--quantity", "success_rate"]) == 0
    capsys.readouterr()


def test_cli_bad_input_exits_2(tmp_path, capsys):
    base = results(tmp_path / "base", NOISE)
    other = str(tmp_path / "other")
    for s in range(2):
        write_trial(other, row(seed=s, problem="p.two"), [])
    assert main(["compare", base, str(tmp_path / "missing")]) == 2
    assert "not a results directory" in capsys.readouterr().err
    assert main(["compare", base, other]) == 2
    assert "no trial key in common" in capsys.readouterr().err
    assert main(["compare", base, base, "--alpha", "2"]) == 2
    assert main(["compare", base, base, "--threshold", "-1"]) == 2
