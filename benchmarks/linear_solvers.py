"""Speed of bench_linear's solvers beside scipy and pyamg, printed side by side in one run.

    python benchmarks/linear_solvers.py            # 256² and 512² (about a minute on 2 idle cores)
    python benchmarks/linear_solvers.py --quick    # 128² and 256²

For 2D Poisson (5-point, scaled by 1/h², rtol 1e-8, x0 = 0, b ~ N(0, 1) drawn with seed 0: the
setting of the issue's reference figures, scipy cg 763 iterations at 256²) it prints:
- scipy.sparse.linalg.cg against our linear.cg (own recursive residual as stopping test, like
  scipy's, so no extra product per iteration): iterations, seconds, ms per iteration, ratios;
- one matrix-vector product: scipy CSR, torch CSR, and the matrix-free stencil (2D and 3D);
- pyamg smoothed aggregation + CG: setup and solve seconds, iterations, and the same through
  our linear.pcg with precond="amg_sa";
- on a CUDA device (when there is one): our CG at 2048² in ms per iteration beside the
  memory-traffic bound (matrix + ~10 vectors per iteration at the device's bandwidth).
Each timing is the best of `--repeat` interleaved runs, wall and process CPU time (the machine is
shared; the anchor is measured in the same run, so read the ratios). On a busy machine use
``--threads 1``: multi-threaded BLAS dots (numpy's, in scipy.cg) and torch's intra-op pool spin
for a busy core and distort both wall and CPU time.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import scipy.sparse.linalg as spla
import torch

warnings.simplefilter("ignore", UserWarning)

from bench_linear.cg import ConjugateGradient  # noqa: E402
from bench_linear.operators import Operator  # noqa: E402
from bench_pde.poisson import poisson2d, poisson3d  # noqa: E402

RTOL = 1e-8


def poisson_rhs_randn(n: int, device="cpu"):
    """2D Poisson n² with b ~ N(0, 1) (seed 0); no exact solution."""
    system = next(iter(poisson2d(0, device, torch.float64, n=n).systems()))
    system.b = torch.from_numpy(np.random.default_rng(0).standard_normal(n * n)).to(device)
    system.x_exact = None
    return system


def best_of(repeat: int, fn, cpu: list | None = None):
    """(best wall seconds, last result) over `repeat` calls; the best process CPU seconds are
    appended to `cpu` when given (CPU time is less disturbed by other jobs on a shared machine)."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    if cpu is not None:
        cpu.append(best_cpu)
    return best, out


def scipy_cg(system):
    a, b = system.scipy(), system.b.cpu().numpy()
    count = [0]

    def run():
        count[0] = 0
        spla.cg(a, b, rtol=RTOL, atol=0.0, maxiter=100_000, callback=lambda xk: count.__setitem__(0, count[0] + 1))
        return count[0]
    return run


def our_cg(system, operator="csr"):
    def run():
        solver = ConjugateGradient(rtol=RTOL, operator=operator)
        solver.setup(system)
        count = [0]
        solver.solve(system.b, torch.zeros_like(system.b), 100_000,
                     lambda x: count.__setitem__(0, count[0] + 1))
        return count[0]
    return run


def cg_table(sizes, repeat):
    """scipy.cg, linear.cg (CSR) and linear.cg (stencil), interleaved `repeat` times; best of each."""
    print(f"\n== CG on 2D Poisson, rtol {RTOL:g} (torch threads: {torch.get_num_threads()}) ==")
    print(f"{'grid':>8} {'solver':>14} {'iters':>6} {'wall s':>8} {'wall ms/it':>10} {'CPU ms/it':>9} "
          f"{'iters/scipy':>11} {'wall/it ÷ scipy':>15} {'CPU/it ÷ scipy':>14}")
    for n in sizes:
        system = poisson_rhs_randn(n)
        runs = {"scipy.cg": scipy_cg(system), "linear.cg": our_cg(system, "csr"),
                "linear.cg/st": our_cg(system, "stencil")}
        best = {k: (float("inf"), float("inf"), 0) for k in runs}
        for _ in range(repeat):  # interleaved, so a burst of load on the shared machine hits all
            for label, run in runs.items():
                cpu: list = []
                t, it = best_of(1, run, cpu)
                best[label] = (min(best[label][0], t), min(best[label][1], cpu[0]), it)
        t_ref, c_ref, it_ref = best["scipy.cg"]
        for label, (t, c, it) in best.items():
            print(f"{n:>6}² {label:>14} {it:>6} {t:>8.3f} {1e3 * t / it:>10.3f} {1e3 * c / it:>9.3f} "
                  f"{it / it_ref:>11.3f} {(t / it) / (t_ref / it_ref):>15.3f} {(c / it) / (c_ref / it_ref):>14.3f}",
                  flush=True)


def matvec_table(repeat):
    print("\n== one matrix-vector product (ms), best of 50 × repeat ==")
    print(f"{'problem':>14} {'scipy CSR':>10} {'torch CSR':>10} {'stencil':>10} {'stencil/scipy':>13}")
    cases = [("2D 256²", poisson2d, 256), ("2D 512²", poisson2d, 512), ("3D 48³", poisson3d, 48),
             ("3D 64³", poisson3d, 64)]
    for label, factory, n in cases:
        system = next(iter(factory(0, "cpu", torch.float64, n=n).systems()))
        x = torch.randn(system.n, dtype=torch.float64)
        a, xn = system.scipy(), x.numpy()
        stencil = Operator(system, "stencil")
        A = system.A

        def loop(f):
            return lambda: [f() for _ in range(50)]
        t_sp, _ = best_of(repeat, loop(lambda: a @ xn))
        t_tc, _ = best_of(repeat, loop(lambda: A @ x))
        t_st, _ = best_of(repeat, loop(lambda: stencil(x)))
        print(f"{label:>14} {t_sp * 20:>10.3f} {t_tc * 20:>10.3f} {t_st * 20:>10.3f} {t_st / t_sp:>13.2f}", flush=True)


def amg_table(n, repeat):
    import pyamg

    print(f"\n== pyamg smoothed aggregation + CG, 2D Poisson {n}², rtol {RTOL:g} ==")
    system = poisson_rhs_randn(n)
    a, b = system.scipy(), system.b.numpy()
    t_setup, ml = best_of(repeat, lambda: pyamg.smoothed_aggregation_solver(a))
    res: list = []
    t_solve, _ = best_of(repeat, lambda: (res.clear(), ml.solve(b, tol=RTOL, accel="cg", maxiter=500,
                                                               residuals=res)))
    print(f"{'pyamg.sa_cg':>22}: setup {t_setup:.3f} s, solve {t_solve:.3f} s, {len(res) - 1} iterations")
    ours = {}

    def setup():
        ours["s"] = ConjugateGradient("amg_sa", rtol=RTOL)
        ours["s"].setup(system)

    t_setup2, _ = best_of(repeat, setup)
    count = [0]

    def solve():
        count[0] = 0
        ours["s"].solve(system.b, torch.zeros_like(system.b), 500, lambda x: count.__setitem__(0, count[0] + 1))
    t_solve2, _ = best_of(repeat, solve)
    print(f"{'linear.pcg(amg_sa)':>22}: setup {t_setup2:.3f} s, solve {t_solve2:.3f} s, {count[0]} iterations")


def gpu_table(n=2048):
    print(f"\n== CUDA: linear.cg on 2D Poisson {n}² ==")
    if not torch.cuda.is_available():
        print("not measured: no CUDA device on this machine")
        return
    dev = torch.device("cuda")
    system = poisson_rhs_randn(n, dev)
    for op in ("csr", "stencil"):
        solver = ConjugateGradient(operator=op)
        solver.setup(system)
        iters = 200
        solver.solve(system.b, torch.zeros_like(system.b), 10, lambda x: None)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        solver.solve(system.b, torch.zeros_like(system.b), iters, lambda x: None)
        torch.cuda.synchronize()
        ms = 1e3 * (time.perf_counter() - t0) / iters
        nnz = system.A.values().numel()
        bytes_matrix = nnz * 16 + (system.n + 1) * 8 if op == "csr" else 0
        bytes_iter = bytes_matrix + 10 * system.n * 8
        props = torch.cuda.get_device_properties(dev)
        print(f"{op:>8}: {ms:.3f} ms/iteration; traffic {bytes_iter / 1e6:.1f} MB/iteration "
              f"({props.name}); at 3 TB/s that is {bytes_iter / 3e12 * 1e3:.3f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids")
    parser.add_argument("--sizes", type=int, nargs="*", help="grid sizes n (n² unknowns) for the CG table")
    parser.add_argument("--skip", nargs="*", default=[], choices=["cg", "matvec", "amg", "gpu"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for torch and for numpy's BLAS (0: the libraries' defaults)")
    args = parser.parse_args()
    if args.threads:  # torch's intra-op pool and numpy's BLAS pool (scipy.cg's dots and axpys)
        torch.set_num_threads(args.threads)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    sizes = args.sizes or ((128, 256) if args.quick else (256, 512))
    if "cg" not in args.skip:
        cg_table(sizes, args.repeat)
    if "matvec" not in args.skip:
        matvec_table(args.repeat)
    if "amg" not in args.skip:
        amg_table(sizes[-1], args.repeat)
    if "gpu" not in args.skip:
        gpu_table()


if __name__ == "__main__":
    main()
