"""Summarize a run of suites/standard.toml as the calibration table of docs/problems.md.

    OMP_NUM_THREADS=1 bench run suites/standard.toml --out results/standard
    python benchmarks/calibration_table.py results/standard

Per problem and optimizer: seeds that reached the target, median steps to target, median and
total training time, total evaluation time, and the wall time of all its trials.
"""
from __future__ import annotations

import sys

from bench_core.store import read_trials


def main(out: str) -> None:
    """Print the calibration table (Markdown) of the results directory `out`."""
    df = read_trials(out)
    df["wall_s"] = (df["ended_at"] - df["started_at"]).dt.total_seconds()
    print("| problem | optimizer | reached | median steps to target | median train s | train s (all seeds) | wall s (all seeds) |")
    print("|---|---|---|---|---|---|---|")
    for (problem, opt), g in df.groupby(["problem", "optimizer"]):
        reached = int((g["status"] == "target_reached").sum())
        steps = g["steps_to_target"].dropna()
        med = f"{steps.median():.0f}" if len(steps) else "—"
        statuses = ",".join(sorted(set(g["status"]) - {"target_reached"}))
        print(f"| {problem} | {opt} | {reached}/{len(g)}{' (' + statuses + ')' if statuses else ''} | {med} | "
              f"{g['train_time_s'].median():.1f} | {g['train_time_s'].sum():.0f} | {g['wall_s'].sum():.0f} |")
    print(f"\ntotal: {len(df)} trials, train {df['train_time_s'].sum():.0f} s, "
          f"eval {df['eval_time_s'].sum():.0f} s, wall {df['wall_s'].sum():.0f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/standard")
