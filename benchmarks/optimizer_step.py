"""Time one optimizer step of second-order methods against AdamW and pytorch-optimizer.

The parameter set (issue 4): four w×w matrices, a 4w×w, a w×4w and a bias of w; random gradients
(a few fixed sets, cycled). Each optimizer first runs ``--warmup`` steps (which include its first
preconditioner computation), then ``--repeats`` blocks of ``--steps`` steps each, so every block
contains ``steps / frequency`` preconditioner refreshes. Methods are interleaved block by block
(A B C A B C ...) so that load from other processes hits all of them alike. Prints, per method, the
median ms/step over the blocks, the ratio to torch.optim.AdamW(foreach=True) measured in the same
run, and the ratio to pytorch-optimizer's implementation of the same method at the same settings
(median of the per-block ratios).

    python benchmarks/optimizer_step.py --width 512 --frequency 10 --optimizers shampoo,soap

Add a method: put an entry in METHODS (name -> factory(params, args)) and, when pytorch-optimizer
has the same method, in REFERENCES (name -> list of (label, factory(params, args))). A name not in
METHODS is looked up among the registered bench_core optimizers (run with the spec's defaults).
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch

try:
    from benchmarks._timing import TimedRunner, interleave, print_table
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    from _timing import TimedRunner, interleave, print_table


def _adamw(params, args):
    return torch.optim.AdamW(params, lr=1e-3, foreach=True)


def _shampoo(params, args, **extra):
    from bench_optim.shampoo import Shampoo

    return Shampoo(params, lr=1e-3, block_size=args.block_size, precondition_frequency=args.frequency,
                   start_preconditioning_step=args.frequency, **extra)


def _soap(params, args, **extra):
    from bench_optim.soap import SOAP

    return SOAP(params, lr=3e-3, precondition_frequency=args.frequency, **extra)


def _po_scalable_shampoo(params, args):
    import pytorch_optimizer as po
    from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting

    return po.ScalableShampoo(params, lr=1e-3, block_size=args.block_size,
                              preconditioning_compute_steps=args.frequency,
                              start_preconditioning_step=args.frequency,
                              graft_type=LayerWiseGrafting.RMSPROP, use_svd=False)


def _po_shampoo(params, args):
    import pytorch_optimizer as po

    return po.Shampoo(params, lr=1e-3, preconditioning_compute_steps=args.frequency)


def _po_soap(params, args):
    import pytorch_optimizer as po

    return po.SOAP(params, lr=3e-3, precondition_frequency=args.frequency)


def _psgd_kron(params, args):
    from bench_optim.psgd import KronPSGD

    return KronPSGD(params, lr=1e-3, precond_init_scale=1.0)  # po.Kron's settings


def _po_kron(params, args):
    import pytorch_optimizer as po

    return po.Kron(params, lr=1e-3)


#: Own implementations (and the anchor) by name.
METHODS = {
    "psgd": _psgd_kron,
    "adamw": _adamw,
    "shampoo": _shampoo,
    "shampoo_qr": lambda params, args: _shampoo(params, args, root_method="qr"),
    "shampoo4bit": lambda params, args: _shampoo(params, args, quantize_4bit=True),
    "soap": _soap,
    # not the reference's settings: dimensions above --block-size are split into blocks
    "soap_blocked": lambda params, args: _soap(params, args, block_size=args.block_size),
}
#: pytorch-optimizer's implementation of the same method, at the same settings.
REFERENCES = {
    "shampoo": [("po.ScalableShampoo", _po_scalable_shampoo)],
    "shampoo_qr": [("po.ScalableShampoo", _po_scalable_shampoo)],
    "shampoo4bit": [("po.ScalableShampoo", _po_scalable_shampoo)],
    "soap": [("po.SOAP", _po_soap)],
    "psgd": [("po.Kron", _po_kron)],
}
#: Extra references run only when asked (--full-shampoo): po.Shampoo has no blocking.
SLOW_REFERENCES = {"shampoo": [("po.Shampoo", _po_shampoo)]}


def param_set(w: int, device, dtype=torch.float32, seed: int = 0) -> list[torch.Tensor]:
    """Four w×w matrices, a 4w×w, a w×4w and a bias of w."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(w, w)] * 4 + [(4 * w, w), (w, 4 * w), (w,)]
    return [(torch.randn(s, generator=gen) * 0.02).to(device, dtype).requires_grad_() for s in shapes]


def _factory(name: str):
    if name in METHODS:
        return METHODS[name]
    import bench_core

    spec = bench_core.optimizer_spec(name)
    return lambda params, args: spec.factory(params, **spec.defaults)


class Runner(TimedRunner):
    """One optimizer on its own copy of the parameter set, stepped with cycled random gradients."""

    def __init__(self, label: str, factory, args, device):
        self.label = label
        self.params = param_set(args.width, device)
        gen = torch.Generator().manual_seed(1)
        self.grads = [[torch.randn(p.shape, generator=gen).to(device) * 1e-2 for p in self.params]
                      for _ in range(3)]
        self.opt = factory(self.params, args)
        self.k = 0
        self.device = device
        self.times: list[float] = []

    def one_step(self) -> None:
        """Set the next gradient set and take one optimizer step."""
        for p, g in zip(self.params, self.grads[self.k % len(self.grads)]):
            p.grad = g
        self.opt.step()
        self.k += 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--frequency", type=int, default=10, help="preconditioner refresh every f steps")
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: frequency + 1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--optimizers", default="shampoo,soap", help="comma-separated names")
    ap.add_argument("--no-reference", action="store_true", help="skip pytorch-optimizer")
    ap.add_argument("--full-shampoo", action="store_true", help="also time po.Shampoo (no blocking; slow)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing, profile N more steps of each own method and print its top ops")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    warmup = args.warmup if args.warmup is not None else args.frequency + 1

    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    runners = [Runner("torch.AdamW(foreach)", _adamw, args, device)]
    pairs = []  # (own label, reference label)
    for name in names:
        own = Runner(name, _factory(name), args, device)
        runners.append(own)
        refs = [] if args.no_reference else list(REFERENCES.get(name, []))
        if args.full_shampoo:
            refs += SLOW_REFERENCES.get(name, [])
        for label, factory in refs:
            if not any(r.label == label for r in runners):
                runners.append(Runner(label, factory, args, device))
            pairs.append((name, label))
    n_params = sum(p.numel() for p in runners[0].params)
    print(f"width {args.width} ({n_params / 1e6:.1f}M params), device {device}, threads "
          f"{torch.get_num_threads()}, frequency {args.frequency}, block {args.block_size}, "
          f"{args.steps} steps x {args.repeats} blocks after {warmup} warm-up steps", flush=True)
    interleave(runners, warmup, args.steps, args.repeats)
    print_table(runners)
    by_label = {r.label: r for r in runners}
    for own, ref in pairs:
        speedup = statistics.median(b / a for a, b in zip(by_label[own].times, by_label[ref].times))
        print(f"{own} is {speedup:.2f}x faster than {ref} (median of per-block ratios)")
    counters = {r.label: r.opt.bench_counters for r in runners if isinstance(getattr(r.opt, "bench_counters", None), dict)}
    for label, c in counters.items():
        print(f"{label} counters: {c}")
    if args.profile:
        from torch.profiler import profile

        for r in runners[1:]:
            if r.label in names:
                with profile(record_shapes=True) as prof:
                    for _ in range(args.profile):
                        r.one_step()
                print(f"\n{r.label}: torch.profiler over {args.profile} steps, ops by self CPU time")
                print(prof.key_averages(group_by_input_shape=True).table(
                    sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=24,
                    max_shapes_column_width=70))
    return 0


if __name__ == "__main__":
    sys.exit(main())
