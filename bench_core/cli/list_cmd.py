"""`bench list [problems|optimizers|metrics|plugins]`: the registered specs and the plugins providing them.

``bench list plugins`` lists each plugin: its name, the distribution it comes from with its
version, its status (ok, failed to load, or what went wrong with its hooks or names) and how
many problems, optimizers and metrics it provides.

Every text from a plugin (names, kinds, descriptions, plugin names, error messages) is printed
literally, as a rich ``Text``: a name holding ``[/bold]`` is shown as it is, never parsed as markup.
A name that several plugins provide is listed once per plugin, marked as a clash; then come the
plugins that failed, the clashes and the entry points registered under another name.
"""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench list`."""
    p = sub.add_parser("list", help="list problems, optimizers and metrics with their plugins")
    p.add_argument("what", nargs="?", choices=["problems", "optimizers", "metrics", "plugins"])
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


def plugin_rows(reg) -> list[dict]:
    """One dict per plugin of registry `reg` (those registered and those that failed to load):
    name, distribution, version, status and provides (e.g. "3 problems, 1 optimizer")."""
    import importlib.metadata

    from ..code_identity import component, plugin_module
    from ..registry import CORE_DISTRIBUTION, CORE_PLUGIN, ENTRY_POINT_GROUP

    eps = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        eps.setdefault(ep.name, (dist.name, dist.version) if dist is not None else (None, None))
        if dist is not None:
            eps[f"{ep.name}@{dist.name}"] = (dist.name, dist.version)
    counts: dict = {}
    for what, table in (("problem", reg.problems), ("optimizer", reg.optimizers), ("metric", reg.metrics)):
        for spec in table.values():
            counts.setdefault(spec.plugin, {}).setdefault(what, 0)
            counts[spec.plugin][what] += 1
    clashes: dict = {}
    for (what, name), clash in reg.clashes.items():
        for plugin in clash.plugins:
            clashes.setdefault(plugin, []).append(f"{what} {name}")
    errors: dict = {}
    for e in reg.errors:
        errors.setdefault(e.plugin, []).append(e)
    names = [n for n, _ in reg.manager.list_name_plugin()]
    names += [p for p in errors if p not in names]
    rows = []
    for name in sorted(names, key=lambda n: (n != CORE_PLUGIN, n)):
        dist, version = eps.get(name, (None, None))
        module = plugin_module(reg, name) if reg.manager.has_plugin(name) else None
        if dist is None and module:
            info = component(module)
            dist, version = info.get("distribution"), info.get("version")
        if name == CORE_PLUGIN and dist is None:
            dist = CORE_DISTRIBUTION
            from ..code_identity import installed_version
            version = installed_version(CORE_DISTRIBUTION)
        problems = errors.get(name, [])
        if not reg.manager.has_plugin(name):
            status = "failed to load: " + "; ".join(e.message for e in problems)
        elif problems or name in clashes:
            status = "; ".join([e.message for e in problems]
                               + [f"clash: {c}" for c in clashes.get(name, [])])
        else:
            status = "ok"
        provided = counts.get(name, {})
        provides = ", ".join(f"{n} {what}{'s' if n > 1 else ''}" for what, n in provided.items()) or "—"
        rows.append({"name": name, "distribution": dist or "—", "version": version or "—",
                     "status": status, "provides": provides})
    return rows


def _plugins_table(reg, width: int):
    """The plugins as a table `width` columns wide: what a plugin provides on one line, or one
    kind per line where one line would not fit (a count never parts from its word)."""
    from rich.table import Table
    from rich.text import Text

    cols = ("name", "distribution", "version", "status", "provides")
    rows = plugin_rows(reg)
    natural = sum(max([len(c)] + [len(r[c]) for r in rows]) for c in cols) + 3 * len(cols) + 1
    if natural > width:
        rows = [{**r, "provides": r["provides"].replace(", ", "\n")} for r in rows]
    table = Table(title="plugins", title_justify="left")
    for col in cols:
        table.add_column(col, overflow="fold", no_wrap=col in ("version", "provides"))
    for r in rows:
        style = "" if r["status"] == "ok" else "red"
        table.add_row(Text(r["name"]), Text(r["distribution"]), Text(r["version"]),
                      Text(r["status"], style=style), Text(r["provides"]))
    return table


def run_list_command(args) -> int:
    """Print one table per kind of spec (clashing names marked), then the plugins' problems;
    `bench list plugins`: the plugins themselves."""
    from rich.table import Table
    from rich.text import Text

    from ..registry import get_registry
    from .tables import wide_console

    reg = get_registry()
    console = wide_console()
    if args.what == "plugins":
        console.print(_plugins_table(reg, console.width))
        return 0
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
