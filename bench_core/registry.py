"""Plugin discovery: the pluggy PluginManager, entry points, and spec look-ups.

Every plugin, built-in or third-party, is found through the entry-point group ``bench_core``.
A plugin that fails to import, or whose hook raises, is recorded in ``Registry.errors`` and
shown by ``bench list``; every other plugin keeps working.
"""
from __future__ import annotations

import importlib.metadata
import traceback
from dataclasses import dataclass, field
from typing import Iterable

import pluggy

from . import hookspecs
from .errors import UnknownNameError
from .specs import MetricSpec, OptimizerSpec, ProblemSpec

ENTRY_POINT_GROUP = "bench_core"


@dataclass
class PluginError:
    """A plugin that could not be loaded or whose hook raised."""

    plugin: str
    message: str


@dataclass
class Registry:
    """All specs from all plugins, keyed by name, plus the errors met while collecting them."""

    manager: pluggy.PluginManager
    problems: dict = field(default_factory=dict)
    optimizers: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)

    def problem(self, name: str) -> ProblemSpec:
        """The problem spec called `name`; an unknown name suggests the nearest."""
        return _lookup("problem", self.problems, name)

    def optimizer(self, name: str) -> OptimizerSpec:
        """The optimizer or solver spec called `name`; an unknown name suggests the nearest."""
        return _lookup("optimizer", self.optimizers, name)

    def metric(self, name: str) -> MetricSpec:
        """The metric spec called `name`; an unknown name suggests the nearest."""
        return _lookup("metric", self.metrics, name)

    def higher_is_better(self, metric: str) -> bool:
        """Direction of a metric; metrics nobody declared are taken as lower-is-better."""
        spec = self.metrics.get(metric)
        return bool(spec and spec.higher_is_better)

    def call_observers(self, hook_name: str, **kwargs) -> list[str]:
        """Call an observer hook on every plugin; return one warning line per plugin that raised."""
        warnings = []
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            try:
                impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:  # an observer never breaks a trial
                warnings.append(f"{impl.plugin_name}.{hook_name}: {type(exc).__name__}: {exc}")
        return warnings


def _lookup(what: str, table: dict, name: str):
    try:
        return table[name]
    except KeyError:
        raise UnknownNameError(what, name, table) from None


def build_registry(plugins: Iterable[tuple[str, object]] = (), entry_points: bool = True,
                   entry_point_list=None) -> Registry:
    """Build a registry from the ``bench_core`` entry points and any extra ``(name, plugin)`` pairs.

    ``entry_point_list`` replaces the installed entry points (for tests).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    registry = Registry(manager=manager)
    if entry_points:
        eps = entry_point_list
        if eps is None:
            eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(eps, key=lambda e: e.name):
            if manager.has_plugin(ep.name):
                continue
            try:
                manager.register(ep.load(), name=ep.name)
            except Exception as exc:
                registry.errors.append(PluginError(ep.name, _one_line(exc)))
    for name, plugin in plugins:
        try:
            manager.register(plugin, name=name)
        except Exception as exc:
            registry.errors.append(PluginError(name, _one_line(exc)))
    _collect(registry)
    return registry


def _collect(registry: Registry) -> None:
    tables = (("bench_problems", ProblemSpec, registry.problems),
              ("bench_optimizers", OptimizerSpec, registry.optimizers),
              ("bench_metrics", MetricSpec, registry.metrics))
    for hook_name, spec_type, table in tables:
        for impl in getattr(registry.manager.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            try:
                specs = list(impl.function() or [])
            except Exception as exc:
                registry.errors.append(PluginError(plugin, f"{hook_name}(): {_one_line(exc)}"))
                continue
            for spec in specs:
                if not isinstance(spec, spec_type):
                    registry.errors.append(PluginError(
                        plugin, f"{hook_name}() returned {type(spec).__name__}, not {spec_type.__name__}"))
                    continue
                _add(registry, table, spec, plugin)


def _add(registry: Registry, table: dict, spec, plugin: str) -> None:
    known = table.get(spec.name)
    if known is not None:
        same_metric = (isinstance(spec, MetricSpec) and spec.fn is None and known.fn is None
                       and spec.higher_is_better == known.higher_is_better)
        if not same_metric:
            registry.errors.append(PluginError(
                plugin, f"{spec.name!r} is already provided by plugin {known.plugin!r}"))
        return
    spec.plugin = plugin
    table[spec.name] = spec


def _one_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}{where}"


_DEFAULT: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built from the installed entry points on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = build_registry()
    return _DEFAULT


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (None: rebuild from entry points on next use)."""
    global _DEFAULT
    _DEFAULT = registry


def optimizer_spec(name: str) -> OptimizerSpec:
    """Look up an optimizer or solver spec by name in the process-wide registry."""
    return get_registry().optimizer(name)


def problem_spec(name: str) -> ProblemSpec:
    """Look up a problem spec by name in the process-wide registry."""
    return get_registry().problem(name)


def metric_spec(name: str) -> MetricSpec:
    """Look up a metric spec by name in the process-wide registry."""
    return get_registry().metric(name)
