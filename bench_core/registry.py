"""Plugin discovery: the pluggy PluginManager, entry points, and spec look-ups.

Every plugin, built-in or third-party, is found through the entry-point group ``bench_core``;
bench_core's own metric declarations (:mod:`bench_core.core_metrics`) are always registered
first, as the plugin ``"bench_core"``. A plugin that fails to import, whose hook raises, or that
implements a hook no spec declares (a misspelling, found by ``check_pending``) is recorded in
``Registry.errors`` and shown by ``bench list``; every other plugin keeps working.

Observer hooks are called by pluggy itself (``pm.hook.bench_trial_end(trial=..., result=...)``),
so its call order (tryfirst / trylast, then the later-registered plugin first) and both wrapper
styles (``hookwrapper=True`` and ``wrapper=True``, always around the plain implementations)
work as pluggy documents them. To keep one failing observer from stopping the others,
``Registry.call_observers`` first swaps each observer implementation's function (once, on the
pluggy ``HookImpl``) for a guard of the same kind (plain function, old- or new-style wrapper
generator) that turns an exception into a warning line ``"<plugin>.<hook>: <Exc>: <msg>"``
collected for that call. Argument passing, order and the wrapper protocol stay pluggy's;
wrappers see the observers' results but never their exceptions (those became warnings). Outside
``call_observers`` (a direct ``pm.hook`` call) a guard lets the exception through, as pluggy would.
"""
from __future__ import annotations

import contextvars
import difflib
import functools
import importlib.metadata
import traceback
from dataclasses import dataclass, field
from typing import Iterable

import pluggy

from . import core_metrics, hookspecs
from .errors import UnknownNameError
from .specs import MetricSpec, OptimizerSpec, ProblemSpec

ENTRY_POINT_GROUP = "bench_core"
CORE_PLUGIN = "bench_core"  # the built-in plugin holding bench_core's own MetricSpecs


@dataclass
class PluginError:
    """A plugin that could not be loaded, whose hook raised, that implements an unknown hook, or
    whose spec clashes with another plugin's."""

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

    def direction(self, metric: str) -> str | None:
        """``"max"`` when higher values of `metric` are better, ``"min"`` when lower are, None
        when no MetricSpec declares it."""
        spec = self.metrics.get(metric)
        if spec is None:
            return None
        return "max" if spec.higher_is_better else "min"

    def higher_is_better(self, metric: str) -> bool:
        """True when `metric` is declared higher-is-better; undeclared metrics give False."""
        return self.direction(metric) == "max"

    def call_observers(self, hook_name: str, **kwargs) -> list[str]:
        """Call the observer hook `hook_name` through pluggy with `kwargs`; return one warning
        line per implementation that raised (the others still run), never raise."""
        caller = getattr(self.manager.hook, hook_name)
        for impl in caller.get_hookimpls():
            _guard(impl, hook_name)
        warnings: list[str] = []
        token = _WARNINGS.set(warnings)
        try:
            caller(**kwargs)
        except Exception as exc:  # e.g. an argument the hook call did not provide
            warnings.append(f"{hook_name}: {type(exc).__name__}: {exc}")
        finally:
            _WARNINGS.reset(token)
        return warnings


# The warning list of the call_observers call in progress (None outside one).
_WARNINGS: contextvars.ContextVar[list | None] = contextvars.ContextVar("bench_core_observer_warnings",
                                                                       default=None)


def _report(where: str, exc: BaseException) -> bool:
    """Record `exc` as a warning of the current call_observers; False when there is none."""
    sink = _WARNINGS.get()
    if sink is None:
        return False
    sink.append(f"{where}: {type(exc).__name__}: {exc}")
    return True


def _guard(impl: pluggy.HookImpl, hook_name: str) -> None:
    """Replace `impl.function` by a guard of the same kind (idempotent); see the module docstring."""
    fn = impl.function
    if getattr(fn, "_bench_core_guard", False):
        return
    where = f"{impl.plugin_name}.{hook_name}"
    guard = _guard_wrapper(fn, where) if (impl.wrapper or impl.hookwrapper) else _guard_plain(fn, where)
    guard._bench_core_guard = True
    impl.function = guard  # type: ignore[misc]  # pluggy keeps calling it with the same arguments


def _guard_plain(fn, where: str):
    @functools.wraps(fn)
    def guard(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _report(where, exc):
                raise
            return None
    return guard


def _guard_wrapper(fn, where: str):
    """A generator with the wrapped wrapper's protocol that records instead of raising.

    Old-style (``hookwrapper``) and new-style (``wrapper``) wrappers differ only in what the
    ``yield`` receives (a ``pluggy.Result`` or the result itself) and in whether the return value
    counts (only a new-style wrapper's does); the guard forwards what it receives and returns
    the wrapper's value, or what it received when the wrapper failed, which suits both.
    """
    def fail(exc: Exception):
        if not _report(where, exc):
            raise exc

    @functools.wraps(fn)
    def guard(*args, **kwargs):
        try:
            gen = fn(*args, **kwargs)
            next(gen)
        except StopIteration:
            fail(RuntimeError("wrapper did not yield"))
            return (yield)
        except Exception as exc:
            if not _report(where, exc):
                raise
            return (yield)
        try:
            received = yield
        except BaseException:  # not an observer's exception (those are warnings): let it through
            gen.close()
            raise
        try:
            gen.send(received)
        except StopIteration as stop:
            return stop.value
        except Exception as exc:
            if not _report(where, exc):
                raise
            return received
        gen.close()
        fail(RuntimeError("wrapper has a second yield"))
        return received
    return guard


def _lookup(what: str, table: dict, name: str):
    try:
        return table[name]
    except KeyError:
        raise UnknownNameError(what, name, table) from None


def build_registry(plugins: Iterable[tuple[str, object]] = (), entry_points: bool = True,
                   entry_point_list=None) -> Registry:
    """Build a registry from the ``bench_core`` entry points and any extra ``(name, plugin)`` pairs.

    bench_core's own metric declarations are registered first, as the plugin ``"bench_core"``,
    whatever the arguments. ``entry_point_list`` replaces the installed entry points (for tests).
    A pair naming a plugin already registered under that name (e.g. ``"bench_core"`` handed on
    to a worker process) is skipped.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(core_metrics, name=CORE_PLUGIN)
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
        if manager.get_plugin(name) is plugin:
            continue
        try:
            manager.register(plugin, name=name)
        except Exception as exc:
            registry.errors.append(PluginError(name, _one_line(exc)))
    _check_pending(registry)
    _collect(registry)
    return registry


def _check_pending(registry: Registry) -> None:
    """Report every hook implementation that matches no hook spec (a misspelled hook name).

    ``pm.check_pending()`` decides; it stops at the first such implementation, so when it
    complains every one of them is listed, as an error of its plugin. The plugin stays
    registered: its other hooks work, the misspelled one is never called.
    """
    manager = registry.manager
    try:
        manager.check_pending()
        return
    except pluggy.PluginValidationError:
        pass
    callers = dict(vars(manager.hook))
    known = sorted(name for name, caller in callers.items() if not name.startswith("_") and caller.has_spec())
    for name, caller in sorted(callers.items()):
        if name.startswith("_") or caller.has_spec():
            continue
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                registry.errors.append(PluginError(
                    impl.plugin_name, f"unknown hook {name!r}{hint}: no hook spec declares it, it is never called"))


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
        if isinstance(spec, MetricSpec) and spec.fn is None and known.fn is None:
            if spec.higher_is_better != known.higher_is_better:  # an identical declaration is fine
                registry.errors.append(PluginError(
                    plugin, f"metric {spec.name!r} declared {_direction_words(spec)} here but "
                            f"{_direction_words(known)} by plugin {known.plugin!r}"))
            return
        registry.errors.append(PluginError(plugin, f"{spec.name!r} is already provided by plugin {known.plugin!r}"))
        return
    spec.plugin = plugin
    table[spec.name] = spec


def _direction_words(spec: MetricSpec) -> str:
    return "higher-is-better" if spec.higher_is_better else "lower-is-better"


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
