"""`bench list [problems|optimizers|metrics]`: the registered specs and the plugins providing them.

Every text from a plugin (names, kinds, descriptions, plugin names, error messages) is printed
literally, as a rich ``Text``: a name holding ``[/bold]`` is shown as it is, never parsed as markup.
A name that several plugins provide is listed once per plugin, marked as a clash; then come the
plugins that failed, the clashes and the entry points registered under another name.
"""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench list`."""
    p = sub.add_parser("list", help="list problems, optimizers and metrics with their plugins")
    p.add_argument("what", nargs="?", choices=["problems", "optimizers", "metrics"])
    p.set_defaults(func=run_list_command)


def _kind(what: str, spec) -> str:
    if what == "problems":
        return spec.kind
    if what == "optimizers":
        reqs = sorted(spec.requires - {"grad"})
        return ",".join(sorted(spec.kinds)) + (f" [{','.join(reqs)}]" if reqs else "")
    return ("higher" if spec.higher_is_better else "lower") + " is better" + (f", {spec.unit}" if spec.unit else "")


def _first_line(text: str) -> str:
    return (text or "").strip().split("\n")[0]


def run_list_command(args) -> int:
    """Print one table per kind of spec (clashing names marked), then the plugins' problems."""
    from rich.table import Table
    from rich.text import Text

    from ..registry import get_registry
    from .tables import wide_console

    reg = get_registry()
    console = wide_console()
    sections = {"problems": reg.problems, "optimizers": reg.optimizers, "metrics": reg.metrics}
    singular = {"problems": "problem", "optimizers": "optimizer", "metrics": "metric"}
    wanted = [args.what] if args.what else list(sections)
    for what in wanted:
        rows = [(name, spec, None) for name, spec in sections[what].items()]
        for (kind, name), clash in reg.clashes.items():
            if kind == singular[what]:
                rows += [(name, spec, clash) for spec in clash.specs]
        table = Table(title=what, title_justify="left")
        for col in ("name", "kind", "plugin", "description"):
            table.add_column(col, overflow="fold")
        for name, spec, clash in sorted(rows, key=lambda r: (r[0], r[1].plugin)):
            description = Text(_first_line(spec.description))
            if clash is not None:
                others = ", ".join(p for p in clash.plugins if p != spec.plugin)
                description = Text.assemble((f"CLASH (also from {others}; ambiguous, unusable) ", "red"),
                                            description)
            table.add_row(Text(name), Text(_kind(what, spec)), Text(spec.plugin or ""), description)
        console.print(table)
    for line in reg.warnings():
        console.print(Text(line, style="red"), highlight=False)
    return 0
