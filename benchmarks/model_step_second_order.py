"""Time a full training step (forward, backward, optimizer) of model-based second-order methods.

K-FAC and AdaFisher collect statistics through module hooks, so random-gradient step benchmarks
(benchmarks/optimizer_step.py) cannot time them. This script times forward + backward + step on a
small MLP (and optionally a small CNN) with a fixed random batch, against torch.optim.AdamW
(foreach) measured in the same run, methods interleaved block by block so that load from other
processes hits all of them alike. Prints the median ms/step over blocks and the median ratio to AdamW.

    python benchmarks/model_step_second_order.py --width 512 --batch 256 --optimizers kfac,kfac.mkor_h,adafisher
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

import bench_core

try:
    from benchmarks._timing import TimedRunner, interleave, print_table
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    from _timing import TimedRunner, interleave, print_table


def mlp(width: int, depth: int, classes: int = 10) -> torch.nn.Module:
    """An MLP with `depth` hidden layers of `width` units (ReLU)."""
    layers, d_in = [], width
    for _ in range(depth):
        layers += [torch.nn.Linear(d_in, width), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(width, classes))
    return torch.nn.Sequential(*layers)


def cnn(channels: int, classes: int = 10) -> torch.nn.Module:
    """Two 3×3 convolutions and a linear head, for 16×16 inputs."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, channels, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(channels, channels, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(channels * 8 * 8, classes))


class Runner(TimedRunner):
    """One optimizer on its own copy of the model, stepped on a fixed batch."""

    def __init__(self, label, make_opt, args):
        torch.manual_seed(0)
        if args.model == "mlp":
            self.model = mlp(args.width, args.depth)
            self.x = torch.randn(args.batch, args.width)
        else:
            self.model = cnn(args.width)
            self.x = torch.randn(args.batch, 3, 16, 16)
        self.y = torch.randint(0, 10, (args.batch,))
        self.label = label
        self.opt = make_opt(list(self.model.parameters()), self.model)
        self.times = []

    def closure(self):
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        return loss

    def one_step(self) -> None:
        """One optimizer step with the closure (forward and backward inside)."""
        self.opt.step(self.closure)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--width", type=int, default=512, help="MLP width, or CNN channels")
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block")
    ap.add_argument("--warmup", type=int, default=11)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--optimizers", default="kfac,kfac.mkor_h,adafisher")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runners = [Runner("torch.AdamW(foreach)", lambda p, m: torch.optim.AdamW(p, lr=1e-3, foreach=True), args)]
    for name in [n.strip() for n in args.optimizers.split(",") if n.strip()]:
        spec = bench_core.optimizer_spec(name)

        def make(p, m, spec=spec):
            kw = dict(spec.defaults)
            if "model" in spec.requires:
                kw["model"] = m
            return spec.factory(p, **kw)
        runners.append(Runner(name, make, args))
    n_params = sum(p.numel() for p in runners[0].model.parameters())
    print(f"{args.model} width {args.width} depth {args.depth} batch {args.batch} ({n_params / 1e6:.2f}M params), "
          f"threads {torch.get_num_threads()}, {args.steps} steps x {args.repeats} blocks after {args.warmup} warm-up",
          flush=True)
    interleave(runners, args.warmup, args.steps, args.repeats)
    print_table(runners)
    for r in runners[1:]:
        counters = getattr(r.opt, "bench_counters", None)
        if counters:
            print(f"{r.label} counters: {counters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
