"""asv time_* and peakmem_* benchmarks of the hot paths: one optimizer step, one linear-solver
iteration, and the harness's own per-step overhead against a bare PyTorch loop.

Names that the installed commit does not register (an optimizer added later, say) are skipped
(asv shows n/a), so the same grid works over a range of commits. Torch runs on one thread
(steadier timings on a shared machine; the harness's overhead is Python-side work anyway).
"""
from __future__ import annotations

import torch

from .harness_overhead import bare_run, harness_run, make_trial, measure

#: Optimizers whose step is timed: the baselines and the project's own second-order methods.
MAIN_OPTIMIZERS = ["torch.sgd", "torch.adamw", "soap", "shampoo"]
#: Linear solvers whose iteration is timed (pyamg.sa: one V-cycle).
SOLVERS = ["linear.cg", "linear.pcg", "scipy.cg", "pyamg.sa"]
#: Parameter shapes of the step benchmark: an MLP 784-512-512-10 (~670k parameters).
MLP_SHAPES = [(512, 784), (512,), (512, 512), (512,), (10, 512), (10,)]
OVERHEAD_PROBLEM = "vision.mnist_mlp"
OVERHEAD_OPTIMIZER = "torch.adamw"
OVERHEAD_STEPS = 50
BENCH_VERSION = "1"


def _spec_or_skip(kind: str, name: str):
    """The spec called `name`; NotImplementedError (asv: skip) when this commit lacks it."""
    import bench_core

    registry = bench_core.get_registry()
    table = {"optimizer": registry.optimizers, "problem": registry.problems}[kind]
    if name not in table:
        raise NotImplementedError(f"{kind} {name} is not registered in this commit")
    return table[name]


class OptimizerStep:
    """One ``optimizer.step()`` on fixed gradients of an MLP-shaped parameter list (state
    allocated beforehand, so steady-state steps are timed)."""

    params = [MAIN_OPTIMIZERS]
    param_names = ["optimizer"]

    def setup(self, name):
        torch.set_num_threads(1)
        spec = _spec_or_skip("optimizer", name)
        if "training" not in spec.kinds or spec.requires - {"grad"}:
            raise NotImplementedError(f"{name} needs more than gradients")
        gen = torch.Generator().manual_seed(0)
        self.params_ = [torch.randn(s, generator=gen).mul_(0.05).requires_grad_() for s in MLP_SHAPES]
        for p in self.params_:
            p.grad = torch.randn(p.shape, generator=gen).mul_(1e-3)
        self.optimizer = spec.factory(self.params_, **spec.defaults)
        for _ in range(2):
            self.optimizer.step()

    def time_step(self, name):
        """Seconds per optimizer step."""
        self.optimizer.step()

    time_step.version = BENCH_VERSION

    def peakmem_step(self, name):
        """Peak resident memory of the process across a step."""
        self.optimizer.step()

    peakmem_step.version = BENCH_VERSION


def _noop(xk):
    return None


class SolverIteration:
    """One iteration (``solve`` with maxiter=1 from x0 = 0, setup excluded) on pde.poisson2d
    (n = 64, 4096 unknowns, float64)."""

    params = [SOLVERS]
    param_names = ["solver"]

    def setup(self, name):
        torch.set_num_threads(1)
        spec = _spec_or_skip("optimizer", name)
        pspec = _spec_or_skip("problem", "pde.poisson2d")
        problem = pspec.factory(seed=0, device=torch.device("cpu"), dtype=torch.float64, n=64)
        self.system = next(iter(problem.systems()))
        self.solver = spec.factory(**spec.defaults)
        if callable(getattr(self.solver, "setup", None)):
            self.solver.setup(self.system)
        self.x0 = torch.zeros_like(self.system.b)

    def time_iteration(self, name):
        """Seconds per call of solve(b, x0, maxiter=1): one iteration, plus the initial residual."""
        self.solver.solve(self.system.b, self.x0, 1, _noop)

    time_iteration.version = BENCH_VERSION

    def peakmem_iteration(self, name):
        """Peak resident memory of the process across one iteration."""
        self.solver.solve(self.system.b, self.x0, 1, _noop)

    peakmem_iteration.version = BENCH_VERSION


class HarnessOverhead:
    """The same 50 training steps of vision.mnist_mlp with torch.adamw (seed 0), built, evaluated
    at the start and the end, as a bare PyTorch loop and through bench_core's runner. The gap
    between the two time_loop values is the harness's cost; track_overhead is its in-loop
    per-step share (see benchmarks/harness_overhead.py)."""

    params = [["bare", "harness"]]
    param_names = ["loop"]
    timeout = 600
    number = 1  # one whole run per sample
    repeat = (1, 5, 60.0)
    warmup_time = 0.0

    def setup(self, loop):
        torch.set_num_threads(1)
        _spec_or_skip("problem", OVERHEAD_PROBLEM)
        self.trial = make_trial(OVERHEAD_PROBLEM, OVERHEAD_OPTIMIZER, OVERHEAD_STEPS)
        harness_run(make_trial(OVERHEAD_PROBLEM, OVERHEAD_OPTIMIZER, 2))  # load the data once
        self.run = bare_run if loop == "bare" else harness_run

    def time_loop(self, loop):
        """Seconds for the whole 50-step run (build, evaluations, steps)."""
        self.run(self.trial)

    time_loop.version = BENCH_VERSION


class HarnessOverheadShare:
    """The harness's in-loop per-step overhead over the bare loop (same problem, optimizer, seed)."""

    timeout = 600

    def setup(self):
        torch.set_num_threads(1)
        _spec_or_skip("problem", OVERHEAD_PROBLEM)

    def track_overhead(self):
        """Percent: median over 3 interleaved pairs of 100-step runs (noisy on a loaded machine;
        benchmarks/harness_overhead.py takes more repeats)."""
        return 100.0 * measure(OVERHEAD_PROBLEM, OVERHEAD_OPTIMIZER, steps=100, repeats=3)["overhead_loop"]

    track_overhead.unit = "percent"
    track_overhead.version = BENCH_VERSION
