"""The step-timing scripts of benchmarks/ run end to end on tiny sizes and print their tables
(they are measured by hand, never timed here)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of the repository, not an installed package

from benchmarks import optimizer_step, train_step  # noqa: E402


def test_optimizer_step_prints_ratios_to_adamw_and_the_reference(capsys):
    assert optimizer_step.main(["--width", "8", "--steps", "2", "--repeats", "1", "--frequency", "2",
                                "--optimizers", "shampoo,soap,psgd", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for label in ("torch.AdamW(foreach)", "shampoo", "po.ScalableShampoo", "soap", "po.SOAP", "psgd", "po.Kron"):
        assert f"\n{label} " in out
    assert "soap is " in out and "x faster than po.SOAP" in out
    assert "'preconditioner_refreshes': " in out  # shampoo's counters


def test_optimizer_step_profile_prints_top_ops_of_own_methods_only(capsys):
    assert optimizer_step.main(["--width", "8", "--steps", "2", "--repeats", "1", "--frequency", "2",
                                "--optimizers", "psgd", "--device", "cpu", "--profile", "2"]) == 0
    out = capsys.readouterr().out
    assert "psgd: torch.profiler over 2 steps" in out and "Self CPU" in out
    assert "po.Kron: torch.profiler" not in out and "AdamW(foreach): torch.profiler" not in out


def test_train_step_times_whole_steps_against_fused_adamw(capsys):
    assert train_step.main(["--problem", "lm.char_gpt", "--param", "size=tiny", "--optimizers", "soap,shampoo",
                            "--frequency", "2", "--steps", "2", "--repeats", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[-3:]}
    assert set(rows) == {"torch.AdamW(fused)", "soap", "shampoo"}
    assert float(rows["torch.AdamW(fused)"][1]) == 1.0
    assert all(float(v[0]) > 0 for v in rows.values())


def test_train_step_rejects_a_malformed_param(capsys):
    assert train_step.main(["--param", "size"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_tri_products_compares_each_kernel_with_its_dense_matmul(capsys):
    from benchmarks import tri_products

    assert tri_products.main(["--n", "16", "--k", "4", "--leaves", "4,16", "--steps", "1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for kernel in ("gram", "trmm", "tri_tri"):
        assert f"\n{kernel} dense " in out and f"\n{kernel} leaf 4 " in out and f"\n{kernel} leaf 16 " in out


def test_thread_policy_times_harness_and_bare_loops_per_thread_count(capsys):
    from benchmarks import thread_policy

    assert thread_policy.main(["--n", "8", "--repeats", "1", "--max-iter", "5", "--threads", "1", "2",
                               "--eval-loop"]) == 0
    out = capsys.readouterr().out
    rows = [r for r in map(str.split, out.splitlines()) if r[:1] in (["scipy.cg"], ["linear.cg"]) and r[1] != "/"]
    assert {(r[0], r[1]) for r in rows} == {(s, t) for s in ("scipy.cg", "linear.cg") for t in ("1", "2")}
    assert all(r[2] == "5" and float(r[3]) > 0 and float(r[4]) > 0 for r in rows)  # iterations, ms/it
    assert "threads 1: harness " in out and "anchor (bare scipy.cg, this run): " in out
    assert "round 1: " in out and "bare+eval/bare" in out and "torch_threads 2" in out

    assert thread_policy.main(["--n", "8", "--repeats", "1", "--max-iter", "5", "--no-policy"]) == 0
    out = capsys.readouterr().out
    assert "no thread policy" in out and "\nscipy.cg    default      5 " in out
