"""`bench check NAME`: the optimizer conformance kit (bench_core.testing) on registered optimizers."""
from __future__ import annotations

import json

from ..errors import BenchInputError


def add_parser(sub) -> None:
    """Register `bench check`."""
    p = sub.add_parser("check", help="run the optimizer conformance kit on a registered optimizer")
    p.add_argument("name", help="optimizer name, e.g. torch.adamw, or a glob such as 'po.*'")
    p.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                   help="hyperparameter overriding the spec's default (value read as JSON; repeatable)")
    p.add_argument("--skip", action="append", default=[], metavar="CHECK", help="a check not to run (repeatable)")
    p.add_argument("--steps", type=int, default=50, help="length of the progress run (default 50)")
    p.set_defaults(func=run_check_command)


def _optimizer_names(registry, pattern: str) -> list[str]:
    """The training optimizers `pattern` names: one name, or every match of a glob."""
    import fnmatch

    if any(c in pattern for c in "*?["):
        names = sorted(n for n, s in registry.optimizers.items()
                       if fnmatch.fnmatchcase(n, pattern) and "training" in s.kinds)
        if not names:
            raise BenchInputError(f"{pattern}: no training optimizer matches")
        return names
    spec = registry.optimizer(pattern)
    if "training" not in spec.kinds:
        raise BenchInputError(f"{pattern}: a {'/'.join(sorted(spec.kinds))} "
                              "solver; the conformance kit checks training optimizers")
    return [spec.name]


def _parse_hparams(items: list[str]) -> dict:
    """--hparam KEY=VALUE items as a dict; a value is read as JSON, else kept as a string."""
    hparams = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise BenchInputError(f"--hparam {item}: expected KEY=VALUE")
        try:
            hparams[key] = json.loads(text)
        except json.JSONDecodeError:
            hparams[key] = text
    return hparams


def run_check_command(args) -> int:
    """Run the kit on a registered optimizer (or on every optimizer matching a glob such as
    ``'po.*'``) and print the report.

    Exit code 0 when every check passes, 1 when one fails; an unknown name or a bad option
    raises BenchInputError (exit code 2).
    """
    from rich.markup import escape

    from ..hparams import problems as hparam_problems
    from ..registry import get_registry
    from ..testing import CHECKS, check_optimizer
    from .tables import wide_console

    registry = get_registry()
    names = _optimizer_names(registry, args.name)
    hparams = _parse_hparams(args.hparam)
    bad = [s for s in args.skip if s not in CHECKS]
    if bad:
        raise BenchInputError(f"--skip {bad[0]}: unknown check (checks: {', '.join(CHECKS)})")
    if args.steps < 1:
        raise BenchInputError(f"--steps: expected a positive integer, got {args.steps}")
    console = wide_console()
    style = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[dim]skip[/dim]"}
    failed = 0
    for name in names:
        for key, message in hparam_problems(registry.optimizer(name), hparams):
            raise BenchInputError(f"--hparam {key}: {message}")
    for name in names:
        report = check_optimizer(registry.optimizer(name), hparams, skip=list(args.skip), steps=args.steps,
                                 raise_on_failure=False)
        failed += not report.passed
        if len(names) > 1:  # one line per optimizer, then its failures
            console.print(f"{style[report.passed]}  {escape(name)}", highlight=False)
            for r in report.failures:
                console.print(f"        {r.name}: {escape(r.message)}", highlight=False)
            continue
        console.print(f"conformance of [bold]{escape(name)}[/bold]"
                      + (f" with {escape(json.dumps(hparams))}" if hparams else ""), highlight=False)
        for r in report.results:
            console.print(f"  {style[r.passed]}  {r.name}: {escape(r.message)}", highlight=False)
        console.print("[green]passed[/green]" if report.passed
                      else f"[red]{len(report.failures)} check(s) failed[/red]", highlight=False)
    if len(names) > 1:
        console.print(f"{len(names) - failed} of {len(names)} passed", highlight=False)
    return 0 if not failed else 1
