"""The learned linear solvers beside their anchors on held-out systems, in one run.

    python benchmarks/learned_pcg.py                 # pde.jumping 64² and 128², pde.poisson2d 64² and 128²
    python benchmarks/learned_pcg.py --sizes 32 --repeat 1    # a quick look

Systems: ``pde.jumping`` (checkerboard κ ∈ {1, contrast}, held out: the learned solvers never saw
a checkerboard of these block counts and contrasts at these sizes, and are trained on grids of at
most 32²) and ``pde.poisson2d``, x* drawn with seed 0, b = A x*. Solvers, each stopping on its own
recursively updated residual at rtol 1e-8 (the true relative residual is printed after):

- anchor ``linear.pcg(precond=ic0)`` (IC(0)-PCG), ``linear.cg``, ``pyamg.sa_cg`` (pyamg smoothed
  aggregation + CG), ``linear.learned_pcg`` and ``linear.deep_cd`` (default settings).

Per system and solver: iterations; setup ms (factorization / AMG hierarchy / the learned factor
build: network forward and CSR assembly) and solve ms, each the best of ``--repeat`` interleaved
runs; total = setup + solve and its ratio to IC(0)-PCG's. The learned solvers' training time is
printed apart (it is paid once per set of weights, then cached). torch runs on one thread.
"""
from __future__ import annotations

import argparse
import time
import warnings

import torch

warnings.simplefilter("ignore", UserWarning)

from bench_linear.cg import ConjugateGradient  # noqa: E402
from bench_linear.deep_cd import DeepCD  # noqa: E402
from bench_linear.learned_pcg import LearnedPCG  # noqa: E402
from bench_linear.reference import PyamgSolver  # noqa: E402
from bench_pde.diffusion import jumping  # noqa: E402
from bench_pde.poisson import poisson2d  # noqa: E402

RTOL = 1e-8
SOLVERS = {
    "ic0_pcg": lambda: ConjugateGradient("ic0", rtol=RTOL),
    "cg": lambda: ConjugateGradient(rtol=RTOL),
    "pyamg_sa_cg": lambda: PyamgSolver("sa", "cg", rtol=RTOL),
    "learned_pcg": lambda: LearnedPCG(rtol=RTOL),
    "deep_cd": lambda: DeepCD(rtol=RTOL),
}


def systems(sizes):
    """(label, system) of the held-out instances."""
    out = []
    for n in sizes:
        for contrast, blocks in ((1e4, 4), (1e2, 8)):
            out.append((f"jumping n={n} c={contrast:g} b={blocks}",
                        next(iter(jumping(0, "cpu", torch.float64, n=n, contrast=contrast, blocks=blocks).systems()))))
        out.append((f"poisson2d n={n}", next(iter(poisson2d(0, "cpu", torch.float64, n=n).systems()))))
    return out


def run_once(make, system, maxiter: int):
    """(setup s, solve s, iterations, true relative residual) of one fresh solver."""
    solver = make()
    t0 = time.perf_counter()
    solver.setup(system)
    t1 = time.perf_counter()
    count = [0]
    x = solver.solve(system.b, torch.zeros_like(system.b), maxiter, lambda xk: count.__setitem__(0, count[0] + 1))
    t2 = time.perf_counter()
    res = system.metrics(torch.as_tensor(x).to(system.b))["rel_residual"]
    return t1 - t0, t2 - t1, count[0], res


def main(argv=None) -> int:
    """Print one table per system; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--maxiter", type=int, default=5000)
    ap.add_argument("--solvers", default=",".join(SOLVERS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    names = [s for s in args.solvers.split(",") if s]
    if names[0] != "ic0_pcg":
        names.insert(0, "ic0_pcg")  # the anchor
    for name in ("learned_pcg", "deep_cd"):
        if name in names:
            solver = SOLVERS[name]()
            print(f"{name}: training {solver.training_time_s:.1f} s "
                  f"({'trained now' if solver.trained_now else 'cached weights; time recorded at training'})")
    for label, system in systems(args.sizes):
        best = {n: [float("inf"), float("inf"), 0, 0.0] for n in names}
        for _ in range(args.repeat):
            for n in names:
                setup, solve, iters, res = run_once(SOLVERS[n], system, args.maxiter)
                b = best[n]
                b[0], b[1], b[2], b[3] = min(b[0], setup), min(b[1], solve), iters, res
        anchor = best["ic0_pcg"][0] + best["ic0_pcg"][1]
        print(f"\n{label}  ({system.b.numel()} unknowns)")
        print(f"{'solver':<14}{'iters':>7}{'setup ms':>10}{'solve ms':>10}{'total ms':>10}{'x IC(0)':>9}{'rel_res':>10}")
        for n in names:
            setup, solve, iters, res = best[n]
            print(f"{n:<14}{iters:>7}{1e3 * setup:>10.1f}{1e3 * solve:>10.1f}{1e3 * (setup + solve):>10.1f}"
                  f"{(setup + solve) / anchor:>9.2f}{res:>10.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
