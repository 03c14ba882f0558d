"""Executors: speed-up of `--jobs 2` over `--jobs 1`, and the per-trial overhead of each executor.

1. Speed-up: the same CPU-bound suite (``synthetic.logreg``, no target so every trial runs its
   whole budget, one trial per seed) run by the local executor (the anchor: one process, torch's
   default threads), by the process pool with 1 worker (all cores' threads, as --jobs 1 sets),
   with 1 worker and 1 thread (to tell the parallel speed-up from the thread count's effect) and
   with 2 workers (one thread each, as --jobs 2 sets). Wall time of the ``run_suite`` call on warm workers (each executor first
   runs two 2-step trials; that warm-up, which includes the workers' start-up, is shown apart).
2. Per-trial overhead: many tiny trials (1 step of a 10-dimensional quadratic) through the local
   executor (anchor), the process pool and Ray, on warm workers (each executor first runs a
   warm-up batch into a scratch directory; Ray's start-up is timed apart). Overhead per trial =
   (wall time - local wall time) / trials; with 2 workers the pool and Ray also overlap trials.

    python benchmarks/executor_speedup.py [--trials 8] [--steps 1500] [--tiny 40] [--ray-address ADDR]
    python benchmarks/executor_speedup.py --pool-only --trials 8 --steps 1500

Prints a Markdown table. The machine is shared: run it when it is quiet, and read the ratios.
asv imports this module (benchmarks/ is asv's benchmark_dir); it does nothing on import.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from rich.console import Console


def _suite(name: str, problem: dict, seeds: int):
    from bench_core import get_registry
    from bench_core.suite import parse_suite

    data = {"name": name, "seeds": list(range(seeds)), "problems": [problem],
            "optimizers": [{"name": "torch.adam", "hparams": {"lr": 1e-3}}]}
    return parse_suite(data, "executor_speedup", get_registry())


def _timed_run(suite, executor, scratch: str, label: str) -> float:
    from bench_core.session import run_suite

    out = os.path.join(scratch, label)
    quiet = Console(file=open(os.devnull, "w"))
    t0 = time.perf_counter()
    summary = run_suite(suite, out, executor=executor, console=quiet)
    wall = time.perf_counter() - t0
    assert summary.ran == len(suite.trials), (label, summary.ran)
    return wall


def torch_threads() -> int:
    """This process's torch thread count (the local executor's)."""
    import torch

    return torch.get_num_threads()


def speedup(trials: int, steps: int, scratch: str, pool_only: bool = False) -> list[tuple]:
    """Wall time of the CPU-bound suite: local, --jobs 1, --jobs 2."""
    from bench_core.executors import get_executor

    problem = {"name": "synthetic.logreg", "budget": {"max_steps": steps}, "target": {},
               "eval": {"points": 5}}
    suite = _suite("cpu_bound", problem, trials)
    warm = _suite("warmup", {**problem, "budget": {"max_steps": 2}}, 2)
    rows = []
    executors = [("local (anchor)", get_executor("local")),
                 ("--jobs 1", get_executor("process", jobs=1)),
                 ("--jobs 1, 1 thread", get_executor("process", jobs=1, threads=1)),
                 ("--jobs 2", get_executor("process", jobs=2))]
    if pool_only:  # the parallel speed-up alone: no two-thread rows (slow on a loaded machine)
        executors = executors[2:]
    for label, executor in executors:
        tag = label.replace(" ", "").replace(",", "")
        startup = _timed_run(warm, executor, scratch, "warm" + tag)
        threads = getattr(executor, "threads", torch_threads())
        rows.append((label, _timed_run(suite, executor, scratch, tag), startup, threads))
        if hasattr(executor, "close"):
            executor.close()
    return rows


def overhead(tiny: int, scratch: str, ray_address: str | None) -> tuple[list[tuple], float]:
    """Wall time of `tiny` one-step trials per executor, on warm workers; Ray's start-up time."""
    from bench_core.executors import get_executor

    problem = {"name": "synthetic.quadratic", "params": {"dim": 10, "condition": 10.0},
               "budget": {"max_steps": 1}, "target": {}, "eval": {"points": 2}}
    warm = _suite("warmup", problem, 4)
    suite = _suite("tiny", problem, tiny)
    import ray

    t0 = time.perf_counter()
    ray_executor = get_executor("ray", address=ray_address)
    ray_executor._connect()
    ray_start = time.perf_counter() - t0
    rows = []
    for label, executor in (("local (anchor)", get_executor("local")),
                            ("process, 2 workers", get_executor("process", jobs=2)),
                            ("ray, 2 CPUs", ray_executor)):
        t0 = time.perf_counter()  # warm-up: start the workers, import, build the registry
        _timed_run(warm, executor, scratch, f"warm-{label.split()[0]}")
        startup = time.perf_counter() - t0
        rows.append((label, _timed_run(suite, executor, scratch, f"tiny-{label.split()[0]}"), startup))
    ray.shutdown()
    return rows, ray_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--tiny", type=int, default=40)
    parser.add_argument("--ray-address")
    parser.add_argument("--pool-only", action="store_true",
                        help="only --jobs 1 (1 thread) against --jobs 2; vs local is then vs --jobs 1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        rows = speedup(args.trials, args.steps, scratch, args.pool_only)
        anchor = rows[0][1]
        jobs1 = rows[-2][1]  # one worker with one thread: the parallel speed-up alone
        print(f"\nCPU-bound suite: {args.trials} trials of synthetic.logreg, {args.steps} steps, torch.adam\n")
        print("| executor | torch threads per worker | warm-up s (start + 2 short trials) | wall s (warm) | vs local | speed-up over --jobs 1 (1 thread) |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, wall, startup, threads in rows:
            print(f"| {label} | {threads} | {startup:.1f} | {wall:.1f} | {wall / anchor:.2f} | {jobs1 / wall:.2f} |")
        if args.pool_only:
            return
        tiny_rows, ray_start = overhead(args.tiny, scratch, args.ray_address)
        local = tiny_rows[0][1]
        print(f"\nPer-trial overhead: {args.tiny} one-step trials (synthetic.quadratic dim 10), warm workers;"
              f" Ray start-up {ray_start:.1f} s (not counted)\n")
        print("| executor | warm-up s (start + 4 trials) | wall s | per trial ms | overhead per trial ms vs local |")
        print("|---|---:|---:|---:|---:|")
        for label, wall, startup in tiny_rows:
            print(f"| {label} | {startup:.1f} | {wall:.2f} | {1000 * wall / args.tiny:.1f} |"
                  f" {1000 * (wall - local) / args.tiny:+.1f} |")


if __name__ == "__main__":
    main()
