"""A/A calibration of `bench compare`: how often do two runs of one suite flag a change, and is an
optimizer step made 30% slower on purpose caught?

    python benchmarks/aa_compare.py --out results/aa            # 5 runs + 1 slowed, then compare
    python benchmarks/aa_compare.py --out results/aa --reuse    # compare the runs already there
    python benchmarks/aa_compare.py --out results/aa-il --interleave   # trials interleaved in time
    python benchmarks/aa_compare.py --synthetic                 # the rates on synthetic pairs

The suite (written to OUT/aa.toml) is small: synthetic.quadratic and synthetic.logreg with
torch.sgd, torch.adam and torch.adamw, 3 seeds (6 keys). Each run goes into its own directory
(OUT/aa-0 ...) with `bench run`, one after another; OUT/slow is one more run in which the
chosen optimizer's step (forward, backward and update: ``optimizer.step(closure)``) then spins
for `--slowdown` of the CPU time it took, so its time per step and to target grow by that
factor.
With ``--interleave`` every trial is run into every directory before the next trial (in one
process), so that the load of the moment hits all of them alike.

Then `bench_core.compare.compare` (what `bench compare A B` runs) judges every pair of A/A
directories and every A/A directory against the slowed one, with the defaults (time verdicts
withheld when a side ran with more load than CPUs) and with ``judge_loaded``; it prints how many
pairs flagged anything, how many A/B pairs caught the slowed optimizer, and the largest deviation
from the run effect seen between A/A pairs (a time change must exceed it to stand out here).
docs/analysis.md records the figures.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import subprocess
import sys
import time
from pathlib import Path

SUITE = """
name = "aa"
seeds = {seeds}
device = "cpu"
dtype = "float32"

[[problems]]
name = "synthetic.quadratic"
params = {{ dim = 50, condition = 100.0 }}
budget = {{ max_steps = 1000 }}
target = {{ loss = 1e-6 }}

[[problems]]
name = "synthetic.logreg"
budget = {{ max_steps = 300 }}
target = {{ val_accuracy = 0.95 }}
eval = {{ every = 10 }}

[[optimizers]]
name = "torch.sgd"
hparams = {{ lr = 0.1, momentum = 0.9 }}

[[optimizers]]
name = "torch.adam"
hparams = {{ lr = 1e-2 }}

[[optimizers]]
name = "torch.adamw"
hparams = {{ lr = 1e-2 }}
"""


def slowed(factory, fraction: float):
    """An optimizer factory whose optimizers' step() then spins for `fraction` of the CPU time
    it took (this thread's CPU clock: 30% more work, which a loaded machine stretches as it
    stretches the step itself; a wall-clock wait would overshoot whenever the process is
    descheduled during it)."""
    @functools.wraps(factory)
    def make(params, **hparams):
        optimizer = factory(params, **hparams)
        step = optimizer.step

        def slow_step(closure=None):
            t0 = time.thread_time()
            out = step(closure)
            until = time.thread_time() + fraction * (time.thread_time() - t0)
            while time.thread_time() < until:  # the CPU clock is a system call: read it every 20 µs
                chunk = time.perf_counter() + 2e-5
                while time.perf_counter() < chunk:
                    pass
            return out
        optimizer.step = slow_step
        return optimizer
    return make


def slow_registry(optimizer: str, fraction: float):
    """The process-wide registry with `optimizer`'s factory slowed (see ``slowed``)."""
    from bench_core.registry import get_registry

    registry = get_registry()
    spec = registry.optimizers[optimizer]
    registry.optimizers[optimizer] = dataclasses.replace(spec, factory=slowed(spec.factory, fraction))
    return registry


# --------------------------------------------------------------------------- running
def run_sequential(suite: Path, dirs: list[Path], slow_dir: Path, optimizer: str, fraction: float) -> None:
    """`bench run` into each directory in turn; the slowed run in the middle of the A/A runs."""
    order = dirs[:len(dirs) // 2] + [slow_dir] + dirs[len(dirs) // 2:]
    for d in order:
        if d == slow_dir:
            cmd = [sys.executable, __file__, "--slow-worker", str(suite), str(d), optimizer, str(fraction)]
        else:
            cmd = [sys.executable, "-m", "bench_core.cli", "run", str(suite), "--out", str(d)]
        print(f"running {d} ...", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def run_interleaved(suite: Path, dirs: list[Path], slow_dir: Path, optimizer: str, fraction: float) -> None:
    """Every trial into every directory (the slowed one with the slowed optimizer) before the
    next trial, in this process; the order of the directories rotates from trial to trial."""
    from bench_core.executors import execute_trial
    from bench_core.registry import get_registry
    from bench_core.session import new_run_id
    from bench_core.suite import load_suite

    registry = get_registry()
    spec = registry.optimizers[optimizer]
    slow_spec = dataclasses.replace(spec, factory=slowed(spec.factory, fraction))
    trials = load_suite(suite).trials
    targets = dirs + [slow_dir]
    run_ids = {d: new_run_id() for d in targets}
    for i, trial in enumerate(trials):
        print(f"trial {i + 1}/{len(trials)}: {trial.problem} {trial.label} seed={trial.seed}", flush=True)
        for d in targets[i % len(targets):] + targets[:i % len(targets)]:
            registry.optimizers[optimizer] = slow_spec if d == slow_dir else spec
            execute_trial(trial, str(d), run_ids[d], registry)
    registry.optimizers[optimizer] = spec


# --------------------------------------------------------------------------- judging
def _flags(result) -> list:
    """(problem, optimizer name, setting label, quantity, verdict) of every flagged change."""
    return [(c.problem, c.key.get("optimizer"), c.optimizer, c.quantity, c.verdict) for c in result.flagged]


def judge(dirs: list[Path], slow_dir: Path, optimizer: str) -> dict:
    """Compare every A/A pair and every A/A directory against the slowed one (defaults, and
    with judge_loaded); the counts, the flags and the A/A deviations from the run effect."""
    from bench_core.compare import TIME_QUANTITIES, compare, oversubscribed
    from bench_core.store import read_trials

    runs = {str(d): read_trials(d) for d in dirs}
    slow = read_trials(slow_dir)
    out = {"load": {d: oversubscribed(df) or "not oversubscribed" for d, df in
                    {**runs, str(slow_dir): slow}.items()}}
    for mode, kw in (("default", {}), ("judge_loaded", {"judge_loaded": True})):
        aa, deviations, run_effects = [], [], []
        for a, b in itertools.combinations(runs, 2):
            result = compare(runs[a], runs[b], **kw)
            aa.append({"pair": [a, b], "flags": _flags(result)})
            deviations += [abs(math.log(c.rel_ratio)) for c in result.changes if c.rel_ratio]
            run_effects += [e.ratio for e in result.run_effects if e.quantity == TIME_QUANTITIES[0]]
        ab = []
        for a in runs:
            result = compare(runs[a], slow, **kw)
            caught = any(c.verdict == "regression" and c.key.get("optimizer") == optimizer for c in result.changes)
            blamed = [f for f in _flags(result) if f[1] != optimizer]
            ab.append({"pair": [a, str(slow_dir)], "caught": caught, "others_flagged": blamed})
        out[mode] = {
            "aa_pairs": len(aa), "aa_pairs_flagged": sum(bool(p["flags"]) for p in aa),
            "ab_pairs": len(ab), "ab_caught": sum(p["caught"] for p in ab),
            "ab_others_flagged": sum(bool(p["others_flagged"]) for p in ab),
            "aa_max_deviation": math.exp(max(deviations)) if deviations else None,
            "aa_run_effects": [min(run_effects), max(run_effects)] if run_effects else None,
            "aa": aa, "ab": ab}
    return out


def report(result: dict, optimizer: str, fraction: float) -> None:
    """Print the counts of `judge`."""
    for d, load in result["load"].items():
        print(f"{d}: {load}")
    for mode in ("default", "judge_loaded"):
        r = result[mode]
        print(f"[{mode}] A/A pairs flagging anything: {r['aa_pairs_flagged']}/{r['aa_pairs']}; "
              f"{optimizer} step +{fraction:.0%} caught: {r['ab_caught']}/{r['ab_pairs']} "
              f"(other keys flagged in {r['ab_others_flagged']}/{r['ab_pairs']})")
        if r["aa_max_deviation"]:
            lo, hi = r["aa_run_effects"]
            print(f"[{mode}] A/A run effects ×{lo:.3g} to ×{hi:.3g}; largest A/A deviation of a key from "
                  f"the run effect ×{r['aa_max_deviation']:.3g}")
        for p in r["aa"]:
            for f in p["flags"]:
                print(f"  A/A {p['pair'][0]} vs {p['pair'][1]}: {f}")


# --------------------------------------------------------------------------- synthetic
def synthetic(aa_pairs: int = 5000, ab_pairs: int = 500, seed: int = 0) -> list[dict]:
    """The A/A false-positive rate and the detection rate of one optimizer made 30% slower, on
    synthetic suites of 2 problems x 3 optimizers (per-run common factor in [0.5, 2], per-seed
    lognormal noise), through compare.time_verdicts (the decisions compare makes on times) for
    one time quantity."""
    import numpy as np

    from bench_core.compare import time_verdicts

    def verdicts(rng, sigma, seeds, slow):
        factor = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
        cost = rng.uniform(0.05, 2.0, 6)
        b = cost[:, None] * np.exp(rng.normal(0, sigma, (6, seeds)))
        h = cost[:, None] * factor * np.exp(rng.normal(0, sigma, (6, seeds)))
        h[list(slow)] *= 1.3
        _, judged, _ = time_verdicts({"time": {k: (b[k], h[k]) for k in range(6)}})
        return {k: v for k, (_, v) in judged["time"].items()}

    rows = []
    slow = (1, 4)  # one optimizer, on both problems
    for sigma, seeds in itertools.product((0.05, 0.1, 0.2), (3, 5)):
        rng = np.random.default_rng(seed)
        aa = sum(any(v != "unchanged" for v in verdicts(rng, sigma, seeds, ()).values()) for _ in range(aa_pairs))
        caught = blamed = 0
        for _ in range(ab_pairs):
            v = verdicts(rng, sigma, seeds, slow)
            caught += any(v[k] == "regression" for k in slow)
            blamed += any(x != "unchanged" for k, x in v.items() if k not in slow)
        rows.append({"sigma": sigma, "seeds": seeds, "aa": aa / aa_pairs, "caught": caught / ab_pairs,
                     "blamed": blamed / ab_pairs, "aa_pairs": aa_pairs, "ab_pairs": ab_pairs})
    return rows


def main(argv=None) -> int:
    """Run the A/A (and slowed) suite, compare, print; or the synthetic rates."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/aa", help="folder of the runs (default results/aa)")
    p.add_argument("--runs", type=int, default=5, help="A/A runs (default 5)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per trial key (default 3)")
    p.add_argument("--optimizer", default="torch.adam", help="the optimizer made slower (default torch.adam)")
    p.add_argument("--slowdown", type=float, default=0.3, help="extra fraction of its step time (default 0.3)")
    p.add_argument("--interleave", action="store_true", help="run each trial into every directory in turn")
    p.add_argument("--reuse", action="store_true", help="compare the runs already in --out, run nothing")
    p.add_argument("--json", help="also write the result as JSON to this file")
    p.add_argument("--synthetic", action="store_true", help="print the rates on synthetic pairs and exit")
    p.add_argument("--slow-worker", nargs=4, metavar=("SUITE", "OUT", "OPTIMIZER", "FRACTION"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.slow_worker:
        suite, out, optimizer, fraction = args.slow_worker
        slow_registry(optimizer, float(fraction))
        from bench_core.cli import main as bench

        return bench(["run", suite, "--out", out])
    if args.synthetic:
        rows = synthetic()
        print(f"sigma seeds  A/A pairs flagged ({rows[0]['aa_pairs']})  30% slower caught "
              f"({rows[0]['ab_pairs']})  others flagged")
        for r in rows:
            print(f"{r['sigma']:5} {r['seeds']:5}  {r['aa']:24.3f}  {r['caught']:23.3f}  {r['blamed']:14.3f}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suite = out / "aa.toml"
    suite.write_text(SUITE.format(seeds=list(range(args.seeds))))
    dirs = [out / f"aa-{i}" for i in range(args.runs)]
    slow_dir = out / "slow"
    if not args.reuse:
        started = time.perf_counter()
        run = run_interleaved if args.interleave else run_sequential
        run(suite, dirs, slow_dir, args.optimizer, args.slowdown)
        print(f"ran in {time.perf_counter() - started:.0f} s")
    result = judge(dirs, slow_dir, args.optimizer)
    report(result, args.optimizer, args.slowdown)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
