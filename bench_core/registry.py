"""Plugin discovery: the pluggy PluginManager, entry points, and spec look-ups.

Every plugin, built-in or third-party, is found through the entry-point group ``bench_core``;
bench_core's own metric declarations (:mod:`bench_core.core_metrics`) are always registered
first, as the plugin ``"bench_core"``. A plugin that fails to import, whose hook raises, or that
implements a hook no spec declares (a misspelling, found by ``check_pending``) is recorded in
``Registry.errors`` and shown by ``bench list`` and ``bench run``; every other plugin keeps working.

Hostile or careless plugins, and the rules that keep them from deciding anything silently:

- **A name provided by two plugins** (two problems, two optimizers, or two metrics that disagree)
  is *ambiguous*: no plugin wins, the name leaves its table, ``Registry.clashes`` lists every
  spec that claims it, and a look-up (a suite naming it) raises :class:`AmbiguousNameError`
  naming the plugins. Two declarations of one metric (``MetricSpec`` without ``fn``) with the
  same direction agree and are no clash; a computed metric (with ``fn``) may be declared
  elsewhere with its direction. bench_core's own metric declarations are the contract: a plugin
  that contradicts one (``loss`` higher-is-better) gets an error and the core direction stays.
- **An entry point named like another** (a third-party ``bench_optim`` beside the built-in one):
  pluggy takes one plugin per name, so the entry point of bench-core itself (else the first by
  distribution name) keeps the name and every other one is registered as
  ``<name>@<distribution>``; ``Registry.notices`` says so. Both plugins' specs stay (and clash
  by the rule above where they share names).
- **An import that never returns**: each entry point is imported, and each spec hook called, in
  a daemon thread that the registry waits for at most ``BENCH_PLUGIN_IMPORT_TIMEOUT`` seconds
  (default 60). A Python import cannot be cancelled, so a thread past its limit is abandoned
  (it may finish later, unused) and the plugin is reported broken with where it was stuck;
  the rest work. torch, which every plugin needs and which alone can take many seconds on a
  loaded machine, is imported first, outside the limit. (A stuck import holds the import locks
  of the modules it is importing: a later import of the same module would wait for it.)
- **A name that no plugin provides** while some plugin failed to load: the look-up error names
  the failed plugins and their errors, since the name may be theirs.

Observer hooks are called by pluggy itself (``pm.hook.bench_trial_end(trial=..., result=...)``),
so its call order (tryfirst / trylast, then the later-registered plugin first) and both wrapper
styles (``hookwrapper=True`` and ``wrapper=True``, always around the plain implementations)
work as pluggy documents them. To keep one failing observer from stopping the others,
``Registry.call_observers`` first swaps each observer implementation's function (once, on the
pluggy ``HookImpl``) for a guard of the same kind (plain function, old- or new-style wrapper
generator) that turns an exception (anything but KeyboardInterrupt, SystemExit included) into a
warning line ``"<plugin>.<hook>: <Exc>: <msg>"`` collected for that call. Argument passing,
order and the wrapper protocol stay pluggy's; wrappers see the observers' results but never
their exceptions (those became warnings). Outside ``call_observers`` (a direct ``pm.hook``
call) a guard lets the exception through, as pluggy would.
"""
from __future__ import annotations

import contextvars
import difflib
import functools
import importlib.metadata
import math
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import Iterable

import pluggy

from . import core_metrics, hookspecs
from .errors import AmbiguousNameError, BenchInputError, UnknownNameError
from .specs import MetricSpec, OptimizerSpec, ProblemSpec

ENTRY_POINT_GROUP = "bench_core"
CORE_PLUGIN = "bench_core"  # the built-in plugin holding bench_core's own MetricSpecs
CORE_DISTRIBUTION = "bench-core"  # the distribution of the built-in plugins (plugins/)
IMPORT_TIMEOUT_ENV = "BENCH_PLUGIN_IMPORT_TIMEOUT"
DEFAULT_IMPORT_TIMEOUT_S = 60.0


@dataclass
class PluginError:
    """A plugin that could not be loaded (`hook` None: its import failed or took too long),
    whose hook `hook` raised or returned something wrong, that implements an unknown hook, or
    that contradicts one of bench_core's own metric declarations."""

    plugin: str
    message: str
    hook: str | None = None

    def line(self) -> str:
        """One line for people: ``plugin ext failed to load: ImportError: ...``."""
        return f"plugin {self.plugin} failed{' to load' if self.hook is None else ''}: {self.message}"


@dataclass
class Clash:
    """A name that several plugins provide (`specs`, one per plugin): ambiguous, so unusable."""

    what: str  # "problem", "optimizer" or "metric"
    name: str
    specs: list

    @property
    def plugins(self) -> list[str]:
        return [spec.plugin for spec in self.specs]

    def line(self) -> str:
        return str(AmbiguousNameError(self.what, self.name, self.plugins))


@dataclass
class Registry:
    """All specs from all plugins, keyed by name, plus what went wrong while collecting them:
    `errors` (PluginError), `clashes` ((what, name) -> Clash; those names are in no table) and
    `notices` (lines about entry points registered under another name)."""

    manager: pluggy.PluginManager
    problems: dict = field(default_factory=dict)
    optimizers: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    clashes: dict = field(default_factory=dict)
    notices: list = field(default_factory=list)
    #: names of the plugins registered from entry points (a worker process finds them itself)
    entry_point_plugins: set = field(default_factory=set)

    def problem(self, name: str) -> ProblemSpec:
        """The problem spec called `name`; an unknown name suggests the nearest and names the
        plugins that failed, an ambiguous one names the plugins that provide it."""
        return self._lookup("problem", self.problems, name, "bench_problems")

    def optimizer(self, name: str) -> OptimizerSpec:
        """The optimizer or solver spec called `name` (errors as for ``problem``)."""
        return self._lookup("optimizer", self.optimizers, name, "bench_optimizers")

    def metric(self, name: str) -> MetricSpec:
        """The metric spec called `name` (errors as for ``problem``)."""
        return self._lookup("metric", self.metrics, name, "bench_metrics")

    def _lookup(self, what: str, table: dict, name: str, hook: str):
        if name in table:
            return table[name]
        clash = self.clashes.get((what, name))
        if clash is not None:
            raise AmbiguousNameError(what, name, clash.plugins)
        failed = [e.line() for e in self.errors if e.hook in (None, hook)]
        raise UnknownNameError(what, name, table, failed=failed)

    def warnings(self) -> list[str]:
        """One line per problem with the plugins: failures, clashes, renamed entry points."""
        return ([e.line() for e in self.errors] + [c.line() for c in self.clashes.values()]
                + list(self.notices))

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
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
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
    def fail(exc: BaseException):
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
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
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
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            if not _report(where, exc):
                raise
            return received
        gen.close()
        fail(RuntimeError("wrapper has a second yield"))
        return received
    return guard


def build_registry(plugins: Iterable[tuple[str, object]] = (), entry_points: bool = True,
                   entry_point_list=None) -> Registry:
    """Build a registry from the ``bench_core`` entry points and any extra ``(name, plugin)`` pairs.

    bench_core's own metric declarations are registered first, as the plugin ``"bench_core"``,
    whatever the arguments. ``entry_point_list`` replaces the installed entry points (for tests).
    A pair naming a plugin already registered under that name (e.g. ``"bench_core"`` handed on
    to a worker process) is skipped. Each import and spec hook runs under the time limit of
    ``import_time_limit()``; see the module docstring for clashes and entry-point names.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(core_metrics, name=CORE_PLUGIN)
    registry = Registry(manager=manager)
    limit = import_time_limit()
    if entry_points:
        import torch  # noqa: F401  (every plugin needs it; its import is not the plugins' time)

        eps = entry_point_list
        if eps is None:
            eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for name, ep in _named_entry_points(eps, registry):
            _register_entry_point(registry, name, ep, limit)
    for name, plugin in plugins:
        if manager.get_plugin(name) is plugin:
            continue
        try:
            manager.register(plugin, name=name)
        except Exception as exc:
            registry.errors.append(PluginError(name, _one_line(exc)))
    _check_pending(registry)
    _collect(registry, limit)
    return registry


def import_time_limit() -> float:
    """Seconds that each plugin import, and each spec hook, may take: the environment variable
    ``BENCH_PLUGIN_IMPORT_TIMEOUT`` (a positive number), else 60."""
    text = os.environ.get(IMPORT_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_IMPORT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise BenchInputError(f"{IMPORT_TIMEOUT_ENV}: expected a positive number of seconds, got {text!r}")
    return value


class _TimedOut(Exception):
    """A plugin call that did not return within its time limit (its thread is left running)."""


def _call_with_limit(fn, limit: float, what: str):
    """``fn()`` in a daemon thread, waited for at most `limit` seconds: its value, or its
    exception re-raised here, or _TimedOut naming where the abandoned thread is stuck."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # SystemExit in a plugin import is that plugin's failure
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"bench-plugin {what}", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        frame = sys._current_frames().get(thread.ident)
        stack = traceback.extract_stack(frame) if frame is not None else []
        stack = [f for f in stack if not f.filename.startswith("<frozen")] or stack  # not importlib's
        where = f", still running at {stack[-1].filename}:{stack[-1].lineno}" if stack else ""
        raise _TimedOut(f"{what} did not return within {limit:g} s ({IMPORT_TIMEOUT_ENV}); "
                        f"abandoned{where}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _distribution(ep) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else None


def _origin(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"distribution {dist.name} {dist.version}" if dist is not None else f"module {ep.value}"


def _named_entry_points(eps, registry: Registry) -> list[tuple[str, object]]:
    """Each entry point with the plugin name it is registered under: its own name, or, for all
    but one of several entry points of one name, ``<name>@<distribution>`` (with a notice).
    bench-core's own entry point keeps the name, else the first by distribution name; the name
    ``bench_core`` is always taken (by bench_core's metric declarations)."""
    def order(ep):
        dist = _distribution(ep)
        return ep.name, dist != CORE_DISTRIBUTION, dist or "", ep.value

    named, first = [], {}
    for ep in sorted(eps, key=order):
        if ep.name not in first and ep.name != CORE_PLUGIN:
            first[ep.name] = ep
            named.append((ep.name, ep))
            continue
        holder = first.get(ep.name)
        if holder is not None and (_distribution(holder), holder.value) == (_distribution(ep), ep.value):
            continue  # the same entry point listed twice
        name = f"{ep.name}@{_distribution(ep) or ep.value}"
        owner = _origin(holder) if holder is not None else "bench_core itself"
        registry.notices.append(f"entry point {ep.name!r} of {_origin(ep)} has the name of the plugin "
                                f"from {owner}: registered as {name!r}")
        named.append((name, ep))
    return named


def _register_entry_point(registry: Registry, name: str, ep, limit: float) -> None:
    """Import entry point `ep` (within `limit` seconds) and register it as plugin `name`, or
    record why not."""
    manager = registry.manager
    try:
        plugin = _call_with_limit(ep.load, limit, f"import of {ep.value}")
    except KeyboardInterrupt:
        raise
    except _TimedOut as exc:
        registry.errors.append(PluginError(name, str(exc)))
        return
    except BaseException as exc:
        registry.errors.append(PluginError(name, _one_line(exc)))
        return
    if manager.is_registered(plugin):
        registry.notices.append(f"entry point {name!r} ({ep.value}) is the plugin {manager.get_name(plugin)!r} "
                                "again: registered once")
        return
    try:
        manager.register(plugin, name=name)
    except Exception as exc:
        registry.errors.append(PluginError(name, _one_line(exc)))
        return
    registry.entry_point_plugins.add(name)


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
                    impl.plugin_name, f"unknown hook {name!r}{hint}: no hook spec declares it, it is never called",
                    name))


_KINDS = (("bench_problems", ProblemSpec, "problem", "problems"),
          ("bench_optimizers", OptimizerSpec, "optimizer", "optimizers"),
          ("bench_metrics", MetricSpec, "metric", "metrics"))


def _collect(registry: Registry, limit: float) -> None:
    """Call every plugin's spec hooks (each within `limit` seconds) and fill the tables."""
    for hook_name, spec_type, what, attr in _KINDS:
        for impl in getattr(registry.manager.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            try:
                specs = list(_call_with_limit(impl.function, limit, f"{hook_name}()") or [])
            except KeyboardInterrupt:
                raise
            except _TimedOut as exc:
                registry.errors.append(PluginError(plugin, str(exc), hook_name))
                continue
            except BaseException as exc:
                registry.errors.append(PluginError(plugin, f"{hook_name}(): {_one_line(exc)}", hook_name))
                continue
            for spec in specs:
                if not isinstance(spec, spec_type):
                    registry.errors.append(PluginError(
                        plugin, f"{hook_name}() returned {type(spec).__name__}, not {spec_type.__name__}",
                        hook_name))
                    continue
                _add(registry, what, getattr(registry, attr), spec, plugin, hook_name)


def _add(registry: Registry, what: str, table: dict, spec, plugin: str, hook_name: str) -> None:
    """Add `spec` of `plugin` to `table`, or make its name a clash (see the module docstring)."""
    spec.plugin = plugin
    clash = registry.clashes.get((what, spec.name))
    if clash is not None:
        clash.specs.append(spec)
        return
    known = table.get(spec.name)
    if known is None:
        table[spec.name] = spec
        return
    if known.plugin == plugin:
        registry.errors.append(PluginError(plugin, f"{hook_name}() returned {what} {spec.name!r} twice: "
                                                   "the first is used", hook_name))
        return
    if what == "metric":
        agreed = _agreeing_metric(known, spec)
        if agreed is not None:
            table[spec.name] = agreed
            return
        if known.plugin == CORE_PLUGIN:
            registry.errors.append(PluginError(
                plugin, f"metric {spec.name!r} declared {_direction_words(spec)} here but "
                        f"{_direction_words(known)} by plugin {known.plugin!r}: bench_core's declaration stands",
                hook_name))
            return
    del table[spec.name]
    registry.clashes[(what, spec.name)] = Clash(what, spec.name, [known, spec])


def _agreeing_metric(known: MetricSpec, spec: MetricSpec) -> MetricSpec | None:
    """The one spec that serves two agreeing specs of a metric (same direction, at most one
    computing it: that one), else None."""
    if known.higher_is_better != spec.higher_is_better or (known.fn is not None and spec.fn is not None):
        return None
    return spec if spec.fn is not None else known


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
