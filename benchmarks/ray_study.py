"""1,000 short trials through a real local Ray head, against the process pool and a serial run.

The study is a suite written to a temporary folder: ``synthetic.quadratic`` (dim 10) × a sweep
of ``torch.sgd`` learning rates × seeds, a few steps each, no target (every trial runs its whole
budget). It runs three times in the same process, each into its own results directory:

1. serial (the anchor): the local executor, one trial after another in this process;
2. the process pool with 2 workers (``bench run --jobs 2``), warmed up first;
3. Ray: a head started with ``ray start --head`` on 127.0.0.1 (2 CPUs, no dashboard, its own
   temporary folder; benchmarks/_ray_head.py), the executor connected to it by address as to a
   cluster (``bench run --executor ray --address``), warmed up first; then the same study again
   into the same directory (a resume: every trial is skipped).

For each: wall time of ``run_suite``, trials per second, the trials' own time (the mean of
``ended_at - started_at``, what ``run_trial`` spends: problem, loop, evaluation, provenance), and
the per-trial overhead = slots × wall / trials - own time, the worker time per trial spent
outside the trial (claim, completeness check, the two atomic Parquet writes with fsync, hand-out
and result). The "hand-out only" rows give the completed study to the pool and to Ray again
through ``executor.run`` (bypassing the resume's skip): each worker claims its trial, finds it
complete and answers, so they time the driver's scheduling rate with one claim and status read
per trial. The head is stopped in a ``finally`` (also on Ctrl-C).

    python benchmarks/ray_study.py [--trials 1000] [--seeds 10] [--steps 20]

Prints Markdown tables and the load average. The machine is shared: read the ratios, repeat.
asv imports this module (benchmarks/ is asv's benchmark_dir); it does nothing on import.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: benchmarks/ is not installed

from benchmarks._ray_head import local_ray_head


def write_suite(folder: Path, trials: int, seeds: int, steps: int, name: str = "ray_study") -> Path:
    """The study as a suite file: `trials` / `seeds` learning rates of torch.sgd × `seeds` seeds."""
    if trials % seeds:
        raise SystemExit(f"--trials {trials} must be a multiple of --seeds {seeds}")
    lrs = [round(1e-3 * 100 ** (i / max(1, trials // seeds - 1)), 10) for i in range(trials // seeds)]
    path = folder / f"{name}.toml"
    path.write_text(f"""name = "{name}"
seeds = {list(range(seeds))}
device = "cpu"
dtype = "float32"

[[problems]]
name = "synthetic.quadratic"
params = {{ dim = 10, condition = 10.0 }}
budget = {{ max_steps = {steps} }}
target = {{}}
eval = {{ points = 2 }}

[[optimizers]]
name = "torch.sgd"
sweep = {{ lr = {lrs} }}
""")
    return path


def timed_run(suite_path: Path, out: Path, executor, slots: int) -> dict:
    """Run the suite into `out` with `executor`; wall time, trials run, own time per trial."""
    from rich.console import Console

    from bench_core.session import run_suite
    from bench_core.store import read_trials
    from bench_core.suite import load_suite

    suite = load_suite(suite_path)
    load = os.getloadavg()[0]
    with open(os.devnull, "w") as devnull:
        t0 = time.perf_counter()
        summary = run_suite(suite, out, executor=executor, console=Console(file=devnull))
        wall = time.perf_counter() - t0
    df = read_trials(out)
    assert len(df) == len(suite.trials) and df["trial_id"].is_unique, (out, len(df))
    own = (df["ended_at"] - df["started_at"]).dt.total_seconds().mean() if summary.ran else 0.0
    n = len(suite.trials)
    return {"wall": wall, "ran": summary.ran, "trials": n, "own_ms": 1000 * own, "slots": slots,
            "overhead_ms": 1000 * (slots * wall / n - own) if summary.ran else float("nan"),
            "load": (load, os.getloadavg()[0])}


def handout(suite_path: Path, out: Path, executor, slots: int) -> dict:
    """Hand every trial of a completed study to `executor` again, bypassing run_suite's skip:
    each worker claims its trial, finds it complete and answers None. The driver's hand-out
    rate plus one claim and status read per trial, without running or writing anything."""
    from bench_core.suite import load_suite

    trials = load_suite(suite_path).trials
    answers = []
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    executor.run(trials, str(out), "handout", answers.append)
    wall = time.perf_counter() - t0
    assert len(answers) == len(trials) and not any(answers), "a completed trial ran again"
    return {"wall": wall, "ran": 0, "trials": len(trials), "own_ms": 0.0, "slots": slots,
            "overhead_ms": 1000 * slots * wall / len(trials), "load": (load, os.getloadavg()[0])}


def study(trials: int, seeds: int, steps: int, scratch: Path) -> tuple[list, dict]:
    """The three runs and the resume; rows of (label, figures) and the Ray start-up times."""
    import ray

    from bench_core.executors import get_executor

    path = write_suite(scratch, trials, seeds, steps)
    warm = write_suite(scratch, 4, 2, 2, name="warmup")  # other trial ids: warm-up apart
    rows = []
    local = get_executor("local")
    timed_run(warm, scratch / "warm-local", local, 1)
    rows.append(("serial, local executor (anchor)", timed_run(path, scratch / "serial", local, 1)))
    pool = get_executor("process", jobs=2)
    try:
        timed_run(warm, scratch / "warm-pool", pool, 2)
        rows.append(("process pool, `--jobs 2`", timed_run(path, scratch / "pool", pool, 2)))
        rows.append(("process pool, hand-out only", handout(path, scratch / "pool", pool, 2)))
    finally:
        pool.close()
    t0 = time.perf_counter()
    with local_ray_head(num_cpus=2) as address:
        head_s = time.perf_counter() - t0
        executor = get_executor("ray", address=address)
        t0 = time.perf_counter()
        executor._connect()  # ray.init by address now, timed apart from the trials
        connect_s = time.perf_counter() - t0
        slots = int(ray.cluster_resources().get("CPU", 1))
        timed_run(warm, scratch / "warm-ray", executor, slots)
        rows.append((f"Ray by address, {slots} CPUs", timed_run(path, scratch / "ray", executor, slots)))
        rows.append(("Ray, hand-out only", handout(path, scratch / "ray", executor, slots)))
        rows.append(("Ray, same study again (resume)", timed_run(path, scratch / "ray", executor, slots)))
        stop_t0 = time.perf_counter()
    startup = {"head_s": head_s, "connect_s": connect_s, "stop_s": time.perf_counter() - stop_t0}
    return rows, startup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ray-study-") as scratch:
        rows, startup = study(args.trials, args.seeds, args.steps, Path(scratch))
    anchor, pool, ray_row = rows[0][1], rows[1][1], rows[3][1]
    print(f"\n{args.trials} trials: synthetic.quadratic dim 10 x torch.sgd ({args.trials // args.seeds} "
          f"learning rates) x {args.seeds} seeds, {args.steps} steps, no target; warm workers\n")
    print("| run | trials run | wall s | trials/s | own ms per trial | overhead ms per trial (slots x wall/trials - own) "
          "| vs serial | load before / after |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, r in rows:
        own = f"{r['own_ms']:.1f}" if r["ran"] else "-"
        over = "-" if r["overhead_ms"] != r["overhead_ms"] else f"{r['overhead_ms']:.1f}"  # NaN: a resume
        speedup = f"{anchor['wall'] / r['wall']:.2f}x" if r["ran"] else "-"
        print(f"| {label} | {r['ran']} | {r['wall']:.1f} | {r['trials'] / r['wall']:.0f} | {own} | {over} "
              f"| {speedup} | {r['load'][0]:.1f} / {r['load'][1]:.1f} |")
    print(f"\nRay over the process pool: {pool['wall'] / ray_row['wall']:.2f}x "
          f"(wall {ray_row['wall']:.1f} s against {pool['wall']:.1f} s); over serial {anchor['wall'] / ray_row['wall']:.2f}x.")
    print(f"Ray head start (ray start --head until 'Ray runtime started') {startup['head_s']:.1f} s, "
          f"driver connect (ray.init by address) {startup['connect_s']:.1f} s, head stop {startup['stop_s']:.1f} s; "
          "not counted above.")
    print(f"Load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
