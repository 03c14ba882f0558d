"""`bench list [problems|optimizers|metrics]`: the registered specs and the plugins providing them."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench list`."""
    p = sub.add_parser("list", help="list problems, optimizers and metrics with their plugins")
    p.add_argument("what", nargs="?", choices=["problems", "optimizers", "metrics"])
    p.set_defaults(func=run_list_command)


def run_list_command(args) -> int:
    """Print one table per kind of spec, then the plugins that failed to load."""
    from rich.markup import escape
    from rich.table import Table

    from ..registry import get_registry
    from .tables import wide_console

    reg = get_registry()
    console = wide_console()
    sections = {"problems": reg.problems, "optimizers": reg.optimizers, "metrics": reg.metrics}
    wanted = [args.what] if args.what else list(sections)
    for what in wanted:
        table = Table(title=what, title_justify="left")
        for col in ("name", "kind", "plugin", "description"):
            table.add_column(col, overflow="fold")
        for name, spec in sorted(sections[what].items()):
            if what == "problems":
                kind = spec.kind
            elif what == "optimizers":
                kind = ",".join(sorted(spec.kinds))
                reqs = sorted(spec.requires - {"grad"})
                kind += f" [{','.join(reqs)}]" if reqs else ""
            else:
                kind = ("higher" if spec.higher_is_better else "lower") + " is better" + (
                    f", {spec.unit}" if spec.unit else "")
            table.add_row(name, escape(kind), spec.plugin, escape(spec.description.strip().split("\n")[0]))
        console.print(table)
    for err in reg.errors:
        console.print(f"[red]plugin {escape(err.plugin)} failed:[/red] {escape(err.message)}", highlight=False)
    return 0
