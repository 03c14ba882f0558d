"""EFCP's memory claim: M-FAC's state bytes with a compressed gradient window, at equal steps to target.

Runs M-FAC on one training problem through the harness (``bench_core.runner.run_trial``, the
``optimizer_state_bytes`` metric, which reads ``MFAC.state_bytes()``), uncompressed and with
EFCP's error-feedback compression ("topk" at each density, "lowrank" at each rank), same
learning rate, damping and window, and prints per setting and seed: status, steps to the target,
the final metric, the state bytes and their ratio to the uncompressed window of the same run.
Nothing is timed (memory and steps are deterministic on the CPU).

    python benchmarks/efcp_memory.py --problem vision.digits_mlp --param width=128 \\
        --target val_accuracy=0.93 --max-steps 400 --num-grads 32 --densities 0.1,0.01 --ranks 4,1
"""
from __future__ import annotations

import argparse
import sys

MIB = 2.0 ** 20


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def settings(args) -> list[tuple[str, dict]]:
    """(label, extra hparams) of every M-FAC setting, the uncompressed window first."""
    out = [("none", {})]
    out += [(f"topk density={d:g}", {"compression": "topk", "density": d}) for d in args.densities]
    out += [(f"lowrank rank={r}", {"compression": "lowrank", "rank": r}) for r in args.ranks]
    return out


def run(args) -> list[dict]:
    """One harness trial per setting and seed; the rows' numbers as dicts."""
    from bench_core.code_identity import trial_code
    from bench_core.registry import build_registry
    from bench_core.runner import run_trial
    from bench_core.trial import Trial

    registry = build_registry()
    spec, opt = registry.problem(args.problem), registry.optimizer("mfac")
    metric, threshold = args.target
    results = []
    for seed in args.seeds:
        for label, extra in settings(args):
            hparams = {**opt.defaults, "lr": args.lr, "damping": args.damping, "num_grads": args.num_grads, **extra}
            trial = Trial(suite="efcp_memory", problem=args.problem, params={**spec.params, **args.params},
                          kind="training", optimizer="mfac", hparams=hparams, seed=seed, device="cpu",
                          dtype="float32", budget={"max_steps": args.max_steps}, targets={metric: threshold},
                          eval={"every": args.eval_every}, metrics=["optimizer_state_bytes"],
                          code=trial_code(registry, spec.plugin, opt.plugin))
            row, _ = run_trial(trial, registry)
            results.append({"label": label, "seed": seed, "status": row["status"],
                            "steps_to_target": row["steps_to_target"], "final": row["metrics"].get(metric),
                            "state_bytes": row["metrics"].get("optimizer_state_bytes")})
    return results


def main(argv=None) -> int:
    """Parse the arguments, run every setting, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--problem", default="vision.digits_mlp")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a problem param")
    p.add_argument("--target", default="val_accuracy=0.93", help="METRIC=THRESHOLD")
    p.add_argument("--max-steps", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--damping", type=float, default=0.1)
    p.add_argument("--num-grads", type=int, default=32)
    p.add_argument("--densities", default="0.1,0.01", help="top-k densities (comma-separated)")
    p.add_argument("--ranks", default="4,1", help="low-rank ranks (comma-separated)")
    p.add_argument("--seeds", default="0", help="seeds (comma-separated)")
    args = p.parse_args(argv)
    try:
        args.params = dict((k, _value(v)) for k, v in (kv.split("=", 1) for kv in args.param))
        metric, threshold = args.target.split("=", 1)
        args.target = (metric, float(threshold))
        args.densities = [float(x) for x in args.densities.split(",") if x]
        args.ranks = [int(x) for x in args.ranks.split(",") if x]
        args.seeds = [int(x) for x in args.seeds.split(",") if x]
    except ValueError as exc:
        print(f"efcp_memory: error: --param/--target KEY=VALUE, numbers in the lists ({exc})", file=sys.stderr)
        return 2
    results = run(args)
    dense = {r["seed"]: r["state_bytes"] for r in results if r["label"] == "none"}
    print(f"M-FAC on {args.problem} {args.params}, m={args.num_grads}, lr={args.lr}, damping={args.damping}, "
          f"target {args.target[0]}={args.target[1]:g}, at most {args.max_steps} steps")
    print(f"{'setting':<22} {'seed':>4} {'status':<15} {'steps':>6} {'final':>8} {'state MiB':>10} {'vs none':>8}")
    for r in results:
        steps = "-" if r["steps_to_target"] is None or r["steps_to_target"] < 0 else str(int(r["steps_to_target"]))
        ratio = dense[r["seed"]] / r["state_bytes"] if r["state_bytes"] else float("nan")
        print(f"{r['label']:<22} {r['seed']:>4} {r['status']:<15} {steps:>6} {r['final']:>8.4f} "
              f"{r['state_bytes'] / MIB:>10.3f} {ratio:>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
