"""Step time of bench_optim's own optimizers against pytorch-optimizer's and the torch.adamw anchor.

Usage: python benchmarks/optim_step_time.py [--steps 200] [--repeats 5] [--threads 1]

Each optimizer runs `steps` steps on synthetic.logreg (batch 128, float32, CPU), driven by the
step closure the runner builds from the spec's `requires`; the figure is the median over
`repeats` runs of the mean time per step, with its ratio to torch.adamw measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import bench_core
from bench_core.training_loop import closure_for as _closure_for

PAIRS = [("torch.adamw", {}), ("diffgrad", {}), ("po.diffgrad", {}), ("adahessian", {}), ("po.adahessian", {}),
         ("mars", {}), ("po.mars", {"optimize_1d": True}), ("mars_exact", {}), ("sam", {}), ("asam", {}),
         ("polyak", {}), ("sania", {}), ("sania_hutchinson", {}), ("mezo", {}), ("deepzero", {"n_coords": 32}),
         ("sf.adamw", {}), ("torch.adamw", {"schedule": "cosine", "schedule_steps": 1000})]


class _Counts:
    def __init__(self):
        self.counters = {}

    def count(self, name, n=1):
        self.counters[name] = self.counters.get(name, 0) + n


def time_steps(name: str, hparams: dict, steps: int) -> tuple[float, dict]:
    """Mean seconds per step and the counters of one run."""
    spec = bench_core.optimizer_spec(name)
    problem = bench_core.problem_spec("synthetic.logreg").factory(seed=0, device=torch.device("cpu"),
                                                                   dtype=torch.float32)
    torch.manual_seed(0)
    kwargs = {**spec.defaults, **hparams}
    if "model" in spec.requires:
        kwargs["model"] = problem.model
    opt = spec.factory(problem.parameters(), **kwargs)
    counts = _Counts()
    closure, batch_box, _ = _closure_for(counts, problem, opt, spec.requires)
    batch_box[0] = problem.batch(0)
    opt.step(closure)  # warm-up
    batches = [problem.batch(s) for s in range(1, steps + 1)]
    counts.counters.clear()
    t0 = time.perf_counter()
    for b in batches:
        batch_box[0] = b
        opt.step(closure)
    return (time.perf_counter() - t0) / steps, dict(counts.counters)


time_steps.skip_benchmark = True  # a helper, not an asv benchmark (asv imports every module here)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for r in range(args.repeats):  # interleaved, so that load changes hit every optimizer alike
        for name, hp in PAIRS:
            key = name + ("" if not hp else f" {hp}")
            t, counters = time_steps(name, hp, args.steps)
            results.setdefault(key, ([], counters))[0].append(t)
    anchor = statistics.median(results["torch.adamw"][0])
    print(f"| optimizer | ms/step (median of {args.repeats}) | ratio to torch.adamw | closure calls/step |")
    print("|---|---|---|---|")
    for key, (times, counters) in results.items():
        med = statistics.median(times)
        calls = ", ".join(f"{k} {v / args.steps:g}" for k, v in sorted(counters.items()))
        print(f"| {key} | {med * 1e3:.3f} | {med / anchor:.2f} | {calls} |")


if __name__ == "__main__":
    main()
