"""Time per iteration of scipy.cg and linear.cg through the harness against a bare loop of the
same library at the same CPU thread count: does the per-trial thread policy
(bench_core/threads.py) keep the harness within 10 % of a plain loop?

Problem: pde.poisson2d (n×n, float64, seed 0, x0 = 0). For each thread count of ``--threads``
(the suite's ``threads`` key) and each solver:

- harness: a suite dict is validated by ``bench_core.suite.parse_suite`` and each trial is run by
  ``bench_core.runner.run_trial`` (the thread policy, the runner's callback measuring the
  residual of every iterate, then the replay that times the solve without evaluation:
  bench_core.linear_loop); ms/iteration is the row's ``train_time_s / counters["iterations"]``
  (setup and evaluation are not in train_time_s). ``--solve-timing observed`` times the
  evaluated solve instead (what the harness did before the replay).
  The trial stops at the target rel_residual 1e-10, or after exactly ``--max-iter`` iterations.
- bare: the same system solved for the same number of iterations by the library alone, under the
  same threads (``torch.set_num_threads`` and ``threadpoolctl.threadpool_limits``):
  ``scipy.sparse.linalg.cg`` (rtol = atol = 0) with a callback that counts iterations, and the
  registered linear.cg's factory, ``setup`` untimed, then ``solve`` with a counting callback;
  wall time of the solve call divided by the iterations.
- bare+eval (``--eval-loop``): the bare loop whose callback also computes the system's metrics
  (rel_residual, rel_error) with its clock paused, as the runner's callback does: what the
  per-iteration evaluation costs the timed iterations although it is not itself timed.

Runs interleave: after one untimed warm-up run of each, ``--repeats`` rounds in which every
(threads, solver) pair runs harness, bare (and bare+eval), in reverse order on odd rounds. The
table gives the median ms/iteration of each, the median of the per-round ratios to the bare loop
(with their range: the noise), the evaluation time per iteration the harness excluded, and
linear.cg / scipy.cg through the harness and bare. The bare loop is the anchor, measured in the
same run.

OpenMP: by default ``bench_core.threads.quiet_openmp()`` is called before torch loads (idle
OpenMP workers sleep instead of spinning), as the ``bench`` command does; ``--omp inherit`` leaves
the environment as it is (what a program driving bench_core without ``bench`` gets unless it
calls quiet_openmp itself before importing torch).
``--contrast`` also runs, in a fresh process with the OpenMP environment as inherited,
``--no-policy``: the old behaviour, the runner without its thread policy (``runner._run``, torch
and the BLAS at their default thread counts) against bare loops at the same defaults.

    python benchmarks/thread_policy.py [--n 256] [--repeats 5] [--threads 1 2] [--max-iter N]
                                       [--omp quiet|inherit] [--eval-loop] [--contrast | --no-policy]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_core import threads as thread_policy

PROBLEM = "pde.poisson2d"
SOLVERS = ("scipy.cg", "linear.cg")
TARGET = 1e-10
#: Iteration budget of a trial run to the target (far above what CG needs on pde.poisson2d).
TARGET_BUDGET = 100_000
GOAL = 1.10  # the goal: harness within 10 % of the bare loop
#: The OpenMP variables as this process inherited them: ``import bench_core`` (above) has set
#: them unless this process was started with BENCH_CORE_OPENMP=inherit, so the values are those
#: the environment had only in that case; otherwise the old default is unset.
INHERITED_OMP = ({key: os.environ.get(key) for key in thread_policy.QUIET_OPENMP}
                 if os.environ.get(thread_policy.OPT_OUT) == "inherit"
                 else dict.fromkeys(thread_policy.QUIET_OPENMP))


def make_trials(n: int, thread_counts: list[int], max_iter: int | None, solve_timing: str = "replay") -> dict:
    """(solver, threads) -> bench_core Trial, from a suite dict checked by parse_suite."""
    import bench_core
    from bench_core.suite import parse_suite

    if max_iter:
        budget, target = {"max_steps": max_iter}, {}
    else:
        budget, target = {"max_steps": TARGET_BUDGET}, {"rel_residual": TARGET}
    budget["solve_timing"] = solve_timing
    suite = {"name": "thread_policy", "seeds": [0], "dtype": "float64",
             "problems": [{"name": PROBLEM, "params": {"n": n}, "threads": t, "budget": budget,
                           "target": target} for t in thread_counts],
             "optimizers": [{"name": s} for s in SOLVERS]}
    parsed = parse_suite(suite, "thread_policy.py", bench_core.get_registry())
    return {(t.optimizer, t.threads): t for t in parsed.trials}


def harness_run(trial, policy: bool = True) -> dict:
    """Run `trial` through the runner: ms/iteration from its row. Without `policy`, the runner's
    loop runs without the thread policy (``runner._run``: the old behaviour)."""
    import bench_core
    from bench_core import runner

    registry = bench_core.get_registry()
    row, _ = runner.run_trial(trial, registry) if policy else runner._run(trial, registry, "")
    if row["status"] not in ("ok", "target_reached"):
        raise RuntimeError(f"{trial.optimizer} at {trial.threads} thread(s) ended {row['status']}: {row['error']}")
    iters = int(row["counters"]["iterations"])
    return {"ms": row["train_time_s"] * 1e3 / iters, "iters": iters, "status": row["status"],
            "eval_ms": row["eval_time_s"] * 1e3 / iters,
            "torch_threads": row.get("torch_threads"), "blas": row.get("blas")}


def bare_threads(n: int | None):
    """`n` threads for torch and every BLAS/OpenMP library (torch.set_num_threads and
    threadpoolctl, through bench_core.threads.trial_threads, which does just that and nothing
    else); None: leave the process defaults."""
    return contextlib.nullcontext() if n is None else thread_policy.trial_threads(n)


def build_system(n: int):
    """The system pde.poisson2d builds for seed 0 (float64, CPU): the harness's system."""
    import torch

    import bench_core

    spec = bench_core.problem_spec(PROBLEM)
    problem = spec.factory(seed=0, device=torch.device("cpu"), dtype=torch.float64, **{**spec.params, "n": n})
    return next(iter(problem.systems()))


class SegmentClock:
    """Wall time of the segments between start() and pause() (a callback may pause it)."""

    def __init__(self):
        self.total, self.since = 0.0, None

    def start(self) -> None:
        """Start a timed segment."""
        self.since = time.perf_counter()

    def pause(self) -> None:
        """End the timed segment."""
        self.total += time.perf_counter() - self.since


def counting_callback(system, clock: SegmentClock, count: list, evaluate: bool):
    """A solver callback that counts iterations; with `evaluate` it also computes the system's
    metrics (rel_residual, rel_error) with the clock paused, as the harness does."""
    def callback(x):
        count[0] += 1
        if evaluate:
            clock.pause()
            system.metrics(x)
            clock.start()
    return callback


def bare_scipy(system, iters: int, threads: int | None, evaluate: bool = False) -> float:
    """ms/iteration of scipy.sparse.linalg.cg run for exactly `iters` iterations."""
    import numpy as np
    import scipy.sparse.linalg as sla

    a, b = system.scipy(), system.b.numpy().copy()
    clock, count = SegmentClock(), [0]
    callback = counting_callback(system, clock, count, evaluate)
    with bare_threads(threads):
        clock.start()
        sla.cg(a, b, np.zeros_like(b), rtol=0.0, atol=0.0, maxiter=iters, callback=callback)
        clock.pause()
    if count[0] != iters:
        raise RuntimeError(f"bare scipy.cg ran {count[0]} iterations, not {iters}")
    return clock.total * 1e3 / iters


def bare_linear(system, trial, iters: int, threads: int | None, evaluate: bool = False) -> float:
    """ms/iteration of the registered linear.cg (its factory with the trial's hparams; setup
    untimed) solving for exactly `iters` iterations."""
    import torch

    import bench_core

    solver = bench_core.optimizer_spec("linear.cg").factory(**trial.hparams)
    clock, count = SegmentClock(), [0]
    callback = counting_callback(system, clock, count, evaluate)
    with bare_threads(threads):
        solver.setup(system)
        x0 = torch.zeros_like(system.b)
        clock.start()
        solver.solve(system.b, x0, iters, callback)
        clock.pause()
    if count[0] != iters:
        raise RuntimeError(f"bare linear.cg ran {count[0]} iterations, not {iters}")
    return clock.total * 1e3 / iters


def measure(n: int = 256, repeats: int = 5, thread_counts=(1, 2), max_iter: int | None = None,
            policy: bool = True, eval_loop: bool = False, solve_timing: str = "replay") -> list[dict]:
    """Interleaved harness and bare runs (and, with `eval_loop`, the bare loop evaluating the
    metrics in its callback with its clock paused); one result dict per (threads, solver).
    Without `policy`: one thread setting, the process defaults (reported as threads None)."""
    thread_counts = list(thread_counts) if policy else [1]
    trials = make_trials(n, thread_counts, max_iter, solve_timing)
    system = build_system(n)
    cells = [(t, s) for t in thread_counts for s in SOLVERS]
    runners = ("harness", "bare", "bare+eval") if eval_loop else ("harness", "bare")
    results = {}
    for t, s in cells:  # warm-up, which also fixes the iteration count of the bare loops
        first = harness_run(trials[s, t], policy)
        results[t, s] = {"solver": s, "threads": t if policy else None, "iters": first["iters"],
                         "status": first["status"], "torch_threads": first["torch_threads"],
                         "blas": first["blas"], "eval": [], **{r: [] for r in runners}}
        bare_once(system, trials[s, t], first["iters"], t if policy else None)
    for rnd in range(repeats):
        for t, s in cells:
            cell, trial = results[t, s], trials[s, t]
            for which in (runners if rnd % 2 == 0 else runners[::-1]):
                if which == "harness":
                    run = harness_run(trial, policy)
                    if run["iters"] != cell["iters"]:
                        raise RuntimeError(f"{s}: {run['iters']} iterations, first run {cell['iters']}")
                    cell["harness"].append(run["ms"])
                    cell["eval"].append(run["eval_ms"])
                else:
                    cell[which].append(bare_once(system, trial, cell["iters"], t if policy else None,
                                                 evaluate=which == "bare+eval"))
        print(f"  round {rnd + 1}: " + ", ".join(
            f"{c['solver']}@{c['threads'] or 'default'} " + "/".join(f"{c[r][-1]:.3f}" for r in runners)
            for c in results.values()) + f" ms/iter ({'/'.join(runners)})", flush=True)
    return list(results.values())


def bare_once(system, trial, iters: int, threads: int | None, evaluate: bool = False) -> float:
    """One bare run of the trial's solver on `system`: ms/iteration."""
    if trial.optimizer == "scipy.cg":
        return bare_scipy(system, iters, threads, evaluate)
    return bare_linear(system, trial, iters, threads, evaluate)


def summarize(cell: dict) -> dict:
    """Medians of ms/iteration and of the per-round ratios to the bare loop, with their range."""
    out = {"eval": statistics.median(cell["eval"])}
    for which in ("harness", "bare", "bare+eval"):
        if not cell.get(which):
            continue
        ratios = [x / b for x, b in zip(cell[which], cell["bare"])]
        out[which] = statistics.median(cell[which])
        out[which + " ratio"] = (statistics.median(ratios), min(ratios), max(ratios))
    return out


def print_table(cells: list[dict]) -> None:
    """The table of one run: per (threads, solver), then linear.cg / scipy.cg and the anchor."""
    with_eval = bool(cells[0].get("bare+eval"))
    head = (f"\n{'solver':<11}{'threads':>8}{'iters':>7}{'harness ms/it':>15}{'bare ms/it':>12}"
            f"{'harness/bare':>14}{'range':>12}")
    if with_eval:
        head += f"{'bare+eval/bare':>16}{'range':>12}"
    print(head + f"{'eval ms/it':>12}  within 10 %")
    by_key = {}
    for cell in cells:
        s = summarize(cell)
        by_key[cell["threads"], cell["solver"]] = s
        ratio, lo, hi = s["harness ratio"]
        line = (f"{cell['solver']:<11}{cell['threads'] or 'default':>8}{cell['iters']:>7}{s['harness']:>15.3f}"
                f"{s['bare']:>12.3f}{ratio:>14.3f}{f'{lo:.2f}–{hi:.2f}':>12}")
        if with_eval:
            e_ratio, e_lo, e_hi = s["bare+eval ratio"]
            line += f"{e_ratio:>16.3f}{f'{e_lo:.2f}–{e_hi:.2f}':>12}"
        print(line + f"{s['eval']:>12.3f}  {'yes' if ratio <= GOAL else 'NO'}")
    thread_keys = list(dict.fromkeys(c["threads"] for c in cells))
    print("\nlinear.cg / scipy.cg (ratio of medians):")
    for t in thread_keys:
        lin, sci = by_key[t, "linear.cg"], by_key[t, "scipy.cg"]
        print(f"  threads {t or 'default'}: harness {lin['harness'] / sci['harness']:.3f}, "
              f"bare {lin['bare'] / sci['bare']:.3f}")
    anchors = ", ".join(f"{by_key[t, 'scipy.cg']['bare']:.3f} ms at {t or 'default'} thread(s)" for t in thread_keys)
    print(f"anchor (bare scipy.cg, this run): {anchors}")


def describe_machine() -> str:
    """CPU model, usable cores, load average."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = thread_policy.load_average()
    return f"{model}, {thread_policy.available_cpus()} cores, load average {load if load is None else f'{load:.2f}'}"


def contrast(args) -> int:
    """Run --no-policy in a fresh process whose OpenMP environment is the inherited one."""
    env = dict(os.environ, **{thread_policy.OPT_OUT: "inherit"})  # import bench_core leaves it alone
    for key, value in INHERITED_OMP.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    cmd = [sys.executable, str(Path(__file__).resolve()), "--no-policy", "--n", str(args.n),
           "--repeats", str(args.repeats), "--solve-timing", "observed"]  # as before the replay too
    if args.max_iter:
        cmd += ["--max-iter", str(args.max_iter)]
    if args.eval_loop:
        cmd += ["--eval-loop"]
    print("\n== contrast: old behaviour (no thread policy, OpenMP environment unset, evaluated solve timed),"
          " fresh process ==",
          flush=True)
    return subprocess.run(cmd, check=False, env=env).returncode  # its output goes where ours goes


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=256, help="grid size of pde.poisson2d (n×n unknowns)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="the suite's threads key")
    ap.add_argument("--max-iter", type=int, default=None,
                    help=f"fixed iteration count instead of the target rel_residual {TARGET:g}")
    ap.add_argument("--omp", choices=("quiet", "inherit"), default="quiet",
                    help="quiet: quiet_openmp() before torch loads (default); inherit: leave the environment")
    ap.add_argument("--no-policy", action="store_true",
                    help="the old behaviour: runner without thread policy, default thread counts")
    ap.add_argument("--eval-loop", action="store_true",
                    help="also time the bare loop evaluating the metrics in its callback, clock paused")
    ap.add_argument("--contrast", action="store_true", help="also run --no-policy in a fresh process")
    ap.add_argument("--solve-timing", choices=("replay", "observed"), default="replay",
                    help="the harness's budget solve_timing (default replay; observed: time the evaluated solve)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    """Measure, print the rounds and the table; 0 on success."""
    args = parse_args(argv)
    torch_loaded = "torch" in sys.modules
    if args.omp == "quiet" and not args.no_policy and not torch_loaded:  # read when torch's OpenMP loads
        thread_policy.quiet_openmp()
    import torch

    omp = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in thread_policy.QUIET_OPENMP)
    what = ("no thread policy (runner._run), default threads" if args.no_policy
            else f"thread policy, threads {args.threads}")
    stop = f"{args.max_iter} iterations" if args.max_iter else f"target rel_residual {TARGET:g}"
    print(f"{PROBLEM} n={args.n} float64, {stop}; {what}; {args.repeats} rounds")
    print(f"machine: {describe_machine()}; torch {torch.__version__} (default threads {torch.get_num_threads()})")
    print(f"OpenMP environment: {omp}" + (" (torch was loaded before main: as inherited)" if torch_loaded else ""))
    cells = measure(args.n, args.repeats, args.threads, args.max_iter, policy=not args.no_policy,
                    eval_loop=args.eval_loop, solve_timing=args.solve_timing)
    print(f"harness solve timing: {args.solve_timing}")
    print_table(cells)
    blas = {json.dumps(json.loads(c["blas"]), sort_keys=True) for c in cells if c["blas"]}
    for c in cells:
        print(f"row of {c['solver']} at {c['threads'] or 'default'}: status {c['status']}, "
              f"torch_threads {c['torch_threads']}")
    for b in blas:
        print(f"blas: {b}")
    print(f"load average at the end: {thread_policy.load_average()}")
    if args.contrast and not args.no_policy:
        return contrast(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
