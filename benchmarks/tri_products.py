"""Time the triangular block products of bench_optim._tri_products against the dense torch
matmuls they replace, at the sizes of the issue-4 parameter set (2 × 2048 × 2048 factors, k = 512).

Pairs, each interleaved block by block with the others: the Gram update c ← βc + αxxᵀ (dense
``baddbmm_`` vs ``syrk_upper_``), triangular × dense (``bmm`` vs ``trmm``) and triangular ×
triangular (``bmm`` vs ``tri_tri``); with ``--leaves`` the block products run once per leaf size.
Prints the median ms per call and, per pair, the median of the per-block ratios dense / ours.

    python benchmarks/tri_products.py --n 2048 --k 512 --batch 2 --leaves 256,512,1024
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch

from bench_optim import _tri_products as tp

try:
    from benchmarks._timing import TimedRunner, interleave
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    from _timing import TimedRunner, interleave


class Call(TimedRunner):
    """One kernel call on fixed inputs; ``leaf`` is set on _tri_products before each block."""

    def __init__(self, label: str, fn, leaf: int | None = None):
        self.label, self.fn, self.leaf = label, fn, leaf
        self.times: list[float] = []

    def run(self, steps: int, record: bool = True) -> None:
        """Time `steps` calls with this call's leaf size in effect."""
        saved = tp.LEAF
        tp.LEAF = self.leaf or saved
        try:
            super().run(steps, record)
        finally:
            tp.LEAF = saved

    def one_step(self) -> None:
        """One call of the kernel."""
        self.fn()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--k", type=int, default=512)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--leaves", default=str(tp.LEAF), help="comma-separated leaf sizes")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    b, n, k = args.batch, args.n, args.k
    q = torch.randn(b, n, n, generator=gen).triu_()
    a = torch.randn(b, n, n, generator=gen).triu_()
    x = torch.randn(b, n, k, generator=gen)
    c = torch.zeros(b, n, n)
    pairs = []  # (dense call, [own calls])
    for kernel, dense, own in (
            ("gram", lambda: c.baddbmm_(x, x.mT, beta=0.9, alpha=0.1), lambda: tp.syrk_upper_(c, x, 0.1, 0.9)),
            ("trmm", lambda: torch.bmm(q, x), lambda: tp.trmm(q, x)),
            ("tri_tri", lambda: torch.bmm(a, q), lambda: tp.tri_tri(a, q))):
        leaves = [int(v) for v in args.leaves.split(",")]
        pairs.append((Call(f"{kernel} dense", dense), [Call(f"{kernel} leaf {lf}", own, lf) for lf in leaves]))
    runners = [r for d, owns in pairs for r in [d, *owns]]
    print(f"batch {b}, n {n}, k {k}, threads {torch.get_num_threads()}, "
          f"{args.steps} calls x {args.repeats} blocks", flush=True)
    interleave(runners, 1, args.steps, args.repeats)
    print(f"\n{'call':<24}{'ms':>10}{'dense / ours':>14}")
    for dense, owns in pairs:
        print(f"{dense.label:<24}{statistics.median(dense.times):>10.1f}")
        for r in owns:
            ratio = statistics.median(d / o for d, o in zip(dense.times, r.times))
            print(f"{r.label:<24}{statistics.median(r.times):>10.1f}{ratio:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
