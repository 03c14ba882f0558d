"""How long the analysis takes on a large synthetic results set (not a test; prints a table).

    python benchmarks/analysis_speed.py [--problems 10 --optimizers 8 --settings 3 --seeds 5]

Times bench_core.analysis.leaderboard (medians, IQRs, bootstrap and Wilson intervals), ranking
(performance profiles), compare.compare (two sides) and html_report.render_report (the page,
with a 50-point curve per trial), against the anchor: a plain pandas groupby median of the time
to target over the same trials, measured in the same run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time

import numpy as np
import pandas as pd

from bench_core import analysis, compare
from bench_core.html_report import render_report


def synthetic(problems: int, optimizers: int, settings: int, seeds: int, seed: int = 0):
    """Trials (80% reach the target) and their curves, as read_trials / read_curves return them."""
    rng = np.random.default_rng(seed)
    rows, curves = [], []
    for p in range(problems):
        for o in range(optimizers):
            for k in range(settings):
                hp = {"lr": 10.0 ** -(k + 1)}
                for s in range(seeds):
                    t = float(rng.uniform(0.5, 3.0)) if rng.random() < 0.8 else None
                    tid = hashlib.sha256(json.dumps([p, o, k, s]).encode()).hexdigest()[:16]
                    rows.append({
                        "key_id": hashlib.sha256(json.dumps([p, o, k]).encode()).hexdigest()[:16],
                        "code_id": "c0de", "threads": 1, "load_avg": 0.5,
                        "directions": '{"loss": "min", "val_loss": "min"}',
                        "trial_id": tid, "run_id": "r", "suite": "bench", "problem": f"p{p}",
                        "problem_params": "{}", "kind": "training", "optimizer": f"opt{o}",
                        "hparams": json.dumps(hp), "label": f"opt{o}(lr={hp['lr']:.3g})", "seed": s,
                        "device": "cpu", "dtype": "float32", "budget": "{}", "targets": '{"loss": 0.001}',
                        "status": "target_reached" if t else "ok", "error": None, "warnings": None,
                        "steps": 100, "train_time_s": t or 5.0, "time_to_target_s": t,
                        "steps_to_target": int(t * 20) if t else None,
                        "metrics": {"loss": 1e-4 if t else 1e-2, "val_loss": 0.1}, "counters": {},
                        "git_commit": "c" * 40, "git_dirty": False, "package_versions": "{}", "host": "h",
                        "cpu_model": "cpu", "gpu_model": None, "python_version": "3", "torch_version": "2"})
                    curves += [(tid, 10 * i, 0.05 * i, "loss", float(np.exp(-0.1 * i))) for i in range(50)]
    return pd.DataFrame(rows), pd.DataFrame(curves, columns=["trial_id", "step", "time_s", "metric", "value"])


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=10)
    ap.add_argument("--optimizers", type=int, default=8)
    ap.add_argument("--settings", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args()
    trials, curves = synthetic(a.problems, a.optimizers, a.settings, a.seeds)
    head = trials.assign(time_to_target_s=trials["time_to_target_s"] * 1.2)
    analysis.leaderboard(trials.head(5))  # load the plugin registry (metric directions) once
    anchor = timed(lambda: trials.groupby(["problem", "label"])["time_to_target_s"].median())
    print(f"{len(trials)} trials, {len(curves)} curve points")
    print(f"{'anchor: pandas groupby median':34s} {anchor:8.3f} s")
    for name, fn in (("analysis.leaderboard", lambda: analysis.leaderboard(trials)),
                     ("analysis.ranking", lambda: analysis.ranking(trials)),
                     ("compare.compare", lambda: compare.compare(trials, head)),
                     ("html_report.render_report", lambda: render_report(trials, curves, ["synthetic"]))):
        t = timed(fn)
        print(f"{name:34s} {t:8.3f} s  ({t / anchor:.0f}x anchor)")


if __name__ == "__main__":
    main()
