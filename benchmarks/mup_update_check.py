"""Update-size coordinate check of the μP learning-rate rules (bench_core/lr_rules.py).

For an optimizer and a row of per-role exponents, train a depth-2 μP ``vision.digits_mlp``
(float64) for a few steps at two or more widths and measure, per role, the rms effect of each
layer's own update on a fixed batch: |ΔW x| for the input, hidden and output weights (x: that
layer's input) and |Δb| for the hidden biases. Under a correct rule these are flat across width;
the spread (max/min over widths) of a unit exponent error is the width ratio.

    python benchmarks/mup_update_check.py [OPTIMIZER ...]     # default: a list across families

prints, per optimizer, the spread per role under its declared family and under a wrong row
(SGD's for Adam-type methods, Adam's otherwise), beside the anchor torch.adam and the load
average. tests/test_mup_rules.py asserts the same quantity for a few families.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_core.lr_rules import LR_EXPONENTS, REFUSALS, resolve_family
from bench_core.parametrization import param_groups

WIDTHS = (64, 256)
ROLES = ("input", "hidden", "output", "vector")
DEFAULT = ("torch.adam", "po.lion", "po.adan", "po.sophiah", "psgd.kron_whiten", "soap", "torch.sgd", "po.msvag",
           "mfac", "polyak", "mezo", "po.novograd", "po.scion", "po.lamb", "adafisher")


def update_sizes(registry, optimizer: str, width: int, row: dict, lr: float, steps: int = 4) -> dict:
    """Per role, the rms update effect after `steps` steps of `optimizer` at `width` with the
    per-role learning rates lr × width_mult ** row[role] (see the module docstring)."""
    spec = registry.optimizer(optimizer)
    problem = registry.problem("vision.digits_mlp").factory(
        seed=0, device="cpu", dtype=torch.float64, width=width, depth=2, parametrization="mup", base_width=64)
    layers = [m for m in problem.model if isinstance(m, torch.nn.Linear)]
    inputs = []
    hooks = [layer.register_forward_hook(lambda m, i, o: inputs.append(i[0].detach())) for layer in layers]
    with torch.no_grad():
        problem.loss(problem.batch(0))
    for h in hooks:
        h.remove()
    start = [(layer.weight.detach().clone(), layer.bias.detach().clone()) for layer in layers]
    LR_EXPONENTS[("mup", "_probe")] = row
    try:
        groups = param_groups(problem, "_probe", {**spec.defaults, "lr": lr})
    finally:
        del LR_EXPONENTS[("mup", "_probe")]
    torch.manual_seed(0)
    hparams = {**spec.defaults, "lr": lr, **({"model": problem.model} if "model" in spec.requires else {})}
    opt = spec.factory(groups, **hparams)
    for step in range(1, steps + 1):
        batch = problem.batch(step)

        def closure(batch=batch):
            opt.zero_grad()
            if "loss_only" in spec.requires:
                with torch.no_grad():
                    return problem.loss(batch)
            loss = problem.loss(batch)
            loss.backward(create_graph="create_graph" in spec.requires)
            return loss
        opt.step(closure)
    sizes = {}
    with torch.no_grad():
        for k, (layer, (w0, b0), x) in enumerate(zip(layers, start, inputs)):
            role = "input" if k == 0 else "output" if k == len(layers) - 1 else "hidden"
            sizes[role] = float(((layer.weight - w0) @ x.T).pow(2).mean().sqrt())
            if role == "hidden":
                sizes["vector"] = float((layer.bias - b0).pow(2).mean().sqrt())
    return sizes


def spread(registry, optimizer: str, row: dict, lr: float, widths=WIDTHS) -> dict:
    """max/min over `widths` of the update size, per role."""
    runs = [update_sizes(registry, optimizer, w, row, lr) for w in widths]
    return {r: max(s[r] for s in runs) / min(s[r] for s in runs) for r in ROLES}


def main(names) -> None:
    """Print the spread per role under the declared family and under a wrong row."""
    from bench_core.registry import build_registry

    registry = build_registry()
    print(f"load average {os.getloadavg()[0]:.1f}; widths {WIDTHS}; spread = max/min per role "
          f"({', '.join(ROLES)}); anchor torch.adam")
    for name in names:
        spec = registry.optimizer(name)
        family = resolve_family(spec.scaling, spec.defaults)
        lr = spec.defaults.get("lr", 1e-3)
        if family in REFUSALS:  # show the nearest rows it was checked against
            rows = {"adam": LR_EXPONENTS[("mup", "adam")], "sgd": LR_EXPONENTS[("mup", "sgd")]}
            label = f"refused ({family})"
        else:
            wrong = "sgd" if family == "adam" else "adam"
            rows = {family: LR_EXPONENTS[("mup", family)], f"wrong={wrong}": LR_EXPONENTS[("mup", wrong)]}
            label = family
        cells = []
        for key, row in rows.items():
            try:
                s = spread(registry, name, row, lr)
                cells.append(f"{key}: " + " ".join(f"{s[r]:.2f}" for r in ROLES))
            except (RuntimeError, ValueError, TypeError) as exc:  # does not run here: say so, go on
                cells.append(f"{key}: {type(exc).__name__}")
        print(f"{name:20s} {label:26s} " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
