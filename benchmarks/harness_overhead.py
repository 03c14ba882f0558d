"""The harness's per-step overhead against a bare PyTorch loop on the same problem, optimizer and seed.

Both loops build the problem and the optimizer from the same specs and seed, draw the same
batches and run the same closure (zero_grad, loss, backward), so they compute the same iterates
(checked: the final losses must be equal). Figures: per-step medians over interleaved
repetitions, and the overhead as the median of the harness/bare ratios of adjacent runs:

- in-loop: seconds per training step (step 1, the warm-up, excluded) as each loop's own clock
  sees it: bench_core's ``train_time_s`` (hooks, counters, budget and divergence checks, timing)
  against a perf_counter around the bare loop. This is the goal's figure (at most 2 %).
- end-to-end: wall time of a whole trial (``runner.run_trial``: build, evaluate at 0 and at the
  end with curve recording and observer hooks, metric plugins, provenance) against the bare loop
  doing the same build, steps and evaluations, divided by the number of steps; in wall time and
  in CPU time (process_time: less disturbed by other processes on a shared machine).
- floor: the same comparison on a problem whose step costs microseconds (a 2-dimensional
  quadratic with SGD), where the difference is the harness's own per-step work in absolute
  terms; divided by the main problem's bare step time it gives the overhead share without the
  noise of timing two long runs against each other on a loaded machine.

Problem: ``vision.mnist_mlp`` when its plugin is installed, else ``synthetic.logreg``.

    python benchmarks/harness_overhead.py [--steps 300] [--repeats 7] [--optimizer torch.adamw]

asv imports this module (benchmarks/ is asv's benchmark_dir): it does nothing on import, and
bench_hotpaths.py uses its functions.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import torch

PREFERRED_PROBLEM = "vision.mnist_mlp"
FALLBACK_PROBLEM = "synthetic.logreg"


def default_problem() -> str:
    """vision.mnist_mlp when registered, else synthetic.logreg."""
    import bench_core

    return PREFERRED_PROBLEM if PREFERRED_PROBLEM in bench_core.get_registry().problems else FALLBACK_PROBLEM


def make_trial(problem: str, optimizer: str, steps: int, seed: int = 0, hparams: dict | None = None,
               params: dict | None = None):
    """A bench_core Trial of `steps` training steps that evaluates at step 0 and at the end only."""
    import bench_core
    from bench_core.suite import Trial

    spec = bench_core.problem_spec(problem)
    opt_spec = bench_core.optimizer_spec(optimizer)
    return Trial(suite="harness_overhead", problem=problem, params={**spec.params, **(params or {})},
                 kind=spec.kind,
                 optimizer=optimizer, hparams=dict(hparams if hparams is not None else opt_spec.defaults),
                 seed=seed, device="cpu", dtype="float32",
                 budget={"max_steps": steps, "warmup_steps": 1}, targets={}, eval={"every": steps})


def harness_run(trial) -> dict:
    """Run the trial through bench_core's runner; wall and in-loop seconds, and the final loss."""
    import bench_core
    from bench_core.runner import run_trial

    registry = bench_core.get_registry()
    t0, c0 = time.perf_counter(), time.process_time()
    row, _ = run_trial(trial, registry)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if row["status"] != "ok":
        raise RuntimeError(f"harness trial ended {row['status']}: {row['error']}")
    return {"wall_s": wall, "cpu_s": cpu, "loop_s": row["train_time_s"], "loss": row["metrics"]["loss"]}


def bare_run(trial) -> dict:
    """The same trial as a plain PyTorch loop: build, evaluate, steps, evaluate."""
    import bench_core

    t0, c0 = time.perf_counter(), time.process_time()
    spec = bench_core.problem_spec(trial.problem)
    opt_spec = bench_core.optimizer_spec(trial.optimizer)
    problem = spec.factory(seed=trial.seed, device=torch.device("cpu"), dtype=torch.float32, **trial.params)
    torch.manual_seed(trial.seed)
    np.random.seed(trial.seed)
    random.seed(trial.seed)
    optimizer = opt_spec.factory(problem.parameters(), **trial.hparams)
    with torch.no_grad():
        problem.evaluate()
    steps = trial.budget.max_steps
    loop_start = None
    for step in range(1, steps + 1):
        batch = problem.batch(step)

        def closure():
            optimizer.zero_grad(set_to_none=True)
            loss = problem.loss(batch)
            loss.backward()
            return loss

        optimizer.step(closure)
        if step == 1:  # the warm-up step, excluded as the harness excludes it
            loop_start = time.perf_counter()
    loop = time.perf_counter() - loop_start
    with torch.no_grad():
        loss = problem.evaluate()["loss"]
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "loop_s": loop,
            "loss": loss}


def measure(problem: str | None = None, optimizer: str = "torch.adamw", steps: int = 300,
            repeats: int = 7, seed: int = 0, params: dict | None = None) -> dict:
    """Interleave `repeats` bare and harness runs; medians of the per-step seconds and overheads."""
    problem = problem or default_problem()
    trial = make_trial(problem, optimizer, steps, seed, params=params)
    harness_run(make_trial(problem, optimizer, 5, seed, params=params))  # warm caches (data, imports)
    bare, harness = [], []
    for i in range(repeats):
        order = (bare_run, harness_run) if i % 2 == 0 else (harness_run, bare_run)
        for fn in order:
            (bare if fn is bare_run else harness).append(fn(trial))
    if any(b["loss"] != h["loss"] for b, h in zip(bare, harness)):
        raise RuntimeError("bare and harness loops diverged: not the same computation")

    def med(runs, key, n):
        return statistics.median(r[key] for r in runs) / n

    def paired(key):  # median of harness/bare ratios of runs adjacent in time
        return statistics.median(h[key] / b[key] for b, h in zip(bare, harness)) - 1

    timed = steps - 1
    return {"problem": problem, "optimizer": optimizer, "steps": steps, "repeats": repeats,
            "bare_step_s": med(bare, "loop_s", timed), "harness_step_s": med(harness, "loop_s", timed),
            "overhead_loop": paired("loop_s"),
            "bare_wall_per_step_s": med(bare, "wall_s", steps),
            "harness_wall_per_step_s": med(harness, "wall_s", steps), "overhead_wall": paired("wall_s"),
            "bare_cpu_per_step_s": med(bare, "cpu_s", steps),
            "harness_cpu_per_step_s": med(harness, "cpu_s", steps), "overhead_cpu": paired("cpu_s"),
            "extra_step_s": med(harness, "loop_s", timed) - med(bare, "loop_s", timed),
            "extra_cpu_step_s": med(harness, "cpu_s", steps) - med(bare, "cpu_s", steps),
            "final_loss": bare[0]["loss"]}


#: A problem whose step costs next to nothing, so that the harness's own per-step work shows:
FLOOR = {"problem": "synthetic.quadratic", "params": {"dim": 2, "condition": 1.0},
         "optimizer": "torch.sgd", "steps": 4000}


def main(argv=None) -> None:
    """Print the overhead figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problem", help=f"default: {PREFERRED_PROBLEM}, else {FALLBACK_PROBLEM}")
    parser.add_argument("--optimizer", default="torch.adamw")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (default 1: steadier on a shared machine; 0 keeps torch's)")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the per-step harness work measured on a near-free problem")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = measure(args.problem, args.optimizer, args.steps, args.repeats)
    print(f"problem {r['problem']}, optimizer {r['optimizer']}, {r['steps']} steps, "
          f"{r['repeats']} interleaved repeats, torch threads {torch.get_num_threads()}")
    for label, key in (("in-loop wall", "step_s"), ("end-to-end wall", "wall_per_step_s"),
                       ("end-to-end CPU", "cpu_per_step_s")):
        over = {"step_s": "overhead_loop", "wall_per_step_s": "overhead_wall", "cpu_per_step_s": "overhead_cpu"}[key]
        print(f"{label:>16} per step: bare {r['bare_' + key] * 1e3:.4f} ms, harness "
              f"{r['harness_' + key] * 1e3:.4f} ms -> overhead {r[over]:+.2%} (median of paired ratios)")
    print(f"final loss (identical in both loops): {r['final_loss']:.6g}")
    if args.no_floor:
        return
    f = measure(FLOOR["problem"], FLOOR["optimizer"], FLOOR["steps"], max(args.repeats, 9),
                params=FLOOR["params"])
    extra, extra_cpu = f["extra_step_s"], f["extra_cpu_step_s"]
    print(f"floor: {FLOOR['problem']} {FLOOR['params']} with {FLOOR['optimizer']}, {FLOOR['steps']} steps: "
          f"in-loop wall bare {f['bare_step_s'] * 1e6:.2f} us, harness {f['harness_step_s'] * 1e6:.2f} us; "
          f"CPU bare {f['bare_cpu_per_step_s'] * 1e6:.2f} us, harness {f['harness_cpu_per_step_s'] * 1e6:.2f} us "
          f"-> harness work per step {extra * 1e6:+.2f} us wall, {extra_cpu * 1e6:+.2f} us CPU")
    print(f"harness work per step / {r['problem']} bare step: "
          f"CPU {extra_cpu * 1e6:.2f} us / {r['bare_cpu_per_step_s'] * 1e3:.4f} ms = "
          f"{extra_cpu / r['bare_cpu_per_step_s']:+.3%}; wall {extra * 1e6:.2f} us / "
          f"{r['bare_step_s'] * 1e3:.4f} ms = {extra / r['bare_step_s']:+.3%}")


if __name__ == "__main__":
    main()
