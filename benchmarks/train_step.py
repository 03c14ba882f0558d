"""Time a full training step (forward, backward, optimizer) of a registered problem.

The number users care about for a second-order method (issue 4): a whole step of the language-model
problem with Shampoo or SOAP at preconditioner frequency f against the same step with
torch.optim.AdamW(fused=True), measured in the same run. Each optimizer trains its own copy of
the problem (same seed, same batches); after ``--warmup`` untimed steps (the first
preconditioner computation included) the methods run ``--repeats`` blocks of ``--steps`` steps,
interleaved block by block, so every block holds steps / f refreshes. Prints the median ms/step
over the blocks and the median of the per-block ratios to fused AdamW.

    python benchmarks/train_step.py --problem lm.char_gpt --param size=gpu --optimizers shampoo,soap --frequency 10
    python benchmarks/train_step.py --problem lm.char_gpt --param size=medium --device cpu

Optimizers are looked up among the registered bench_core optimizers and run with their spec's
defaults; ``--frequency`` sets ``precondition_frequency`` where the spec's defaults have it.
"""
from __future__ import annotations

import argparse
import ast
import sys

import torch

import bench_core

try:
    from benchmarks._timing import TimedRunner, interleave, print_table
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    from _timing import TimedRunner, interleave, print_table

ANCHOR = "torch.AdamW(fused)"


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class Runner(TimedRunner):
    """One optimizer training its own copy of the problem."""

    def __init__(self, label: str, make_opt, args, device, dtype):
        spec = bench_core.problem_spec(args.problem)
        params = {**spec.params, **args.params}
        self.problem = spec.factory(seed=0, device=device, dtype=dtype, **params)
        self.label = label
        self.opt = make_opt(self.problem.parameters())
        self.device = device
        self.k = 0
        self.times: list[float] = []

    def one_step(self) -> None:
        """Forward, backward and optimizer step on the next batch."""
        self.k += 1
        batch = self.problem.batch(self.k)
        self.opt.zero_grad(set_to_none=True)
        self.problem.loss(batch).backward()
        self.opt.step()


def _factory(name: str, frequency: int):
    spec = bench_core.optimizer_spec(name)
    hp = dict(spec.defaults)
    if "precondition_frequency" in hp:
        hp["precondition_frequency"] = frequency
    return lambda params: spec.factory(params, **hp)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problem", default="lm.char_gpt")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a problem parameter (repeatable), e.g. size=gpu")
    ap.add_argument("--optimizers", default="shampoo,soap", help="comma-separated registered names")
    ap.add_argument("--frequency", type=int, default=10, help="preconditioner refresh every f steps")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: frequency + 1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float64"])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        args.params = {k: _value(v) for k, v in (p.split("=", 1) for p in args.param)}
    except ValueError:
        print("error: --param takes KEY=VALUE", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    warmup = args.warmup if args.warmup is not None else args.frequency + 1

    def adamw(params):
        return torch.optim.AdamW(params, lr=1e-3, fused=True)

    runners = [Runner(ANCHOR, adamw, args, device, dtype)]
    for name in (n.strip() for n in args.optimizers.split(",") if n.strip()):
        runners.append(Runner(name, _factory(name, args.frequency), args, device, dtype))
    n_params = sum(p.numel() for p in runners[0].problem.parameters())
    print(f"{args.problem} {args.params} ({n_params / 1e6:.2f}M params), device {device}, dtype {args.dtype}, "
          f"threads {torch.get_num_threads()}, frequency {args.frequency}, "
          f"{args.steps} steps x {args.repeats} blocks after {warmup} warm-up steps", flush=True)
    interleave(runners, warmup, args.steps, args.repeats)
    print_table(runners, "x fused AdamW")
    return 0


if __name__ == "__main__":
    sys.exit(main())
