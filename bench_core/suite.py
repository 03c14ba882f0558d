"""Suite files (TOML) -> a validated list of trials.

Every problem runs with every optimizer of a kind it supports, once per seed, once per point of
an optimizer's ``sweep`` (of hyperparameters) and once per point of a problem's ``sweep`` (of its
params, e.g. sizes), except where an optimizer entry's ``only`` table narrows the problem points
it runs on (``only = { d = [32, 128], width = [64, 256] }``, see ``only_matcher``). Any mistake in
the file raises ``BenchInputError`` with one line that names the file and the key.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import torch

from . import code_identity
from .errors import BenchInputError
from .filters import matcher
from .hparams import problems as hparam_problems
from .parametrization import rule_error
from .registry import Registry, get_registry
from .trial import (  # noqa: F401
    DEFAULT_MAX_STEPS,
    SOLVE_TIMING_MODES,
    TIME_TO_TARGET_MODES,
    Budget,
    Target,
    Trial,
    optimizer_label,
)
from .tuned_settings import TunedSettings

DTYPES = {"float64": torch.float64, "float32": torch.float32,
          "bfloat16": torch.bfloat16, "float16": torch.float16}
#: The dtype a problem runs in when neither its entry nor the suite gives one.
KIND_DTYPES = {"training": "float32", "linear_system": "float64"}
BUDGET_KEYS = {"max_steps": int, "max_seconds": (int, float), "warmup_steps": int, "stall_window": int,
               "divergence_factor": (int, float), "time_to_target": str, "solve_timing": str}
EVAL_KEYS = {"every": int, "points": int}
SUITE_KEYS = {"name", "description", "seeds", "device", "dtype", "threads", "problems", "optimizers", "metrics"}
PROBLEM_KEYS = {"name", "params", "sweep", "budget", "target", "eval", "dtype", "device", "threads"}
INT64 = 2**63
OPTIMIZER_KEYS = {"name", "hparams", "sweep", "hparams_from", "only"}
#: Keys of an optimizer entry's ``only`` table besides the problems' parameters.
ONLY_NAME_KEY, ONLY_BUDGET_KEY = "problem", "max_steps"


@dataclass
class Suite:
    """A parsed suite: its name, source file and the trials it expands to."""

    name: str
    path: str
    trials: list


def load_suite(path: str | Path, registry: Registry | None = None,
               filters: list[str] | None = None, threads: int | None = None) -> Suite:
    """Read, validate and expand a suite file (`threads` overrides the suite's CPU threads per
    trial). Raises BenchInputError on any mistake."""
    path = Path(path)
    if not path.is_file():
        raise BenchInputError(f"{path}: suite file not found")
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BenchInputError(f"{path}: malformed TOML: {exc}") from None
    except RecursionError:
        raise BenchInputError(f"{path}: malformed TOML: nested too deeply") from None
    return parse_suite(data, str(path), registry or get_registry(), filters, threads=threads,
                       suite_hash=hashlib.sha256(raw).hexdigest()[:16])


def parse_suite(data: dict, source: str, registry: Registry, filters: list[str] | None = None,
                threads: int | None = None, suite_hash: str = "") -> Suite:
    """Validate a suite given as a dict (as from TOML) and expand it into trials."""
    v = _Validator(source)
    v.keys(data, SUITE_KEYS, "")
    name = check_name(v, data.get("name", Path(source).stem), "name")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and -INT64 <= s < INT64 for s in seeds):
        v.fail("seeds", f"expected a non-empty list of 64-bit integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        v.fail("seeds", f"a seed is listed twice: {seeds!r}")
    device = check_device(v, data.get("device", "cpu"), "device")
    dtype = check_dtype(v, data["dtype"], "dtype") if "dtype" in data else None
    suite_threads = check_threads(v, data.get("threads", 1), "threads")
    if threads is not None:
        suite_threads = check_threads(_Validator("--threads"), threads, "value")
    metrics = data.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            v.fail("metrics", "expected a list of metric names")
        for i, m in enumerate(metrics):
            v.known(lambda n: registry.metric(n), m, f"metrics[{i}]")

    problems = v.table_list(data, "problems")
    optimizers = v.table_list(data, "optimizers")
    opt_entries = []
    for i, entry in enumerate(optimizers):
        where = f"optimizers[{i}]"
        v.keys(entry, OPTIMIZER_KEYS, where)
        spec = v.known(registry.optimizer, v.required(entry, "name", str, where), f"{where}.name")
        hparams = v.typed(entry.get("hparams", {}), dict, f"{where}.hparams")
        grid = sweep_grid(v, entry, f"{where}.sweep")
        tuned = None
        if "hparams_from" in entry:  # per-problem settings written by `bench tune`
            tuned_path = Path(source).parent / v.typed(entry["hparams_from"], str, f"{where}.hparams_from")
            tuned = TunedSettings.load(tuned_path, f"{source}: {where}.hparams_from")
        only = v.typed(entry.get("only", {}), dict, f"{where}.only")
        for key, values in only.items():
            if not isinstance(values, list) or not values:
                v.fail(f"{where}.only.{key}", "expected a non-empty list of values")
        for point in grid:
            chosen = {**hparams, **point}
            check_hparams(v, spec, chosen, where)
            opt_entries.append((spec, {**spec.defaults, **chosen}, tuned, chosen, where, only))

    problem_points = []  # (spec, entry settings, its points) of each [[problems]] entry
    for i, entry in enumerate(problems):
        where = f"problems[{i}]"
        v.keys(entry, PROBLEM_KEYS, where)
        spec = v.known(registry.problem, v.required(entry, "name", str, where), f"{where}.name")
        params = v.typed(entry.get("params", {}), dict, f"{where}.params")
        check_params(v, spec, params, f"{where}.params")
        budget = check_budget(v, {**spec.budget, **v.typed(entry.get("budget", {}), dict, f"{where}.budget")},
                              f"{where}.budget")
        targets = check_targets(v, registry, spec, v.typed(entry.get("target", spec.targets), dict,
                                                         f"{where}.target"), f"{where}.target")
        directions = {m: d for m in spec.reports if (d := metric_direction(registry, m))}
        directions.update({t.metric: t.direction for t in targets})
        schedule = v.typed(entry.get("eval", {}), dict, f"{where}.eval")
        _check_table(v, schedule, EVAL_KEYS, f"{where}.eval")
        if len(schedule) > 1:
            v.fail(f"{where}.eval", "give one of 'every' or 'points'")
        p_dtype = check_dtype(v, entry.get("dtype", dtype or KIND_DTYPES[spec.kind]), f"{where}.dtype")
        p_device = check_device(v, entry.get("device", device), f"{where}.device")
        p_threads = suite_threads if threads is not None else check_threads(
            v, entry.get("threads", suite_threads), f"{where}.threads")
        points = []
        for point in sweep_grid(v, entry, f"{where}.sweep"):  # problem-parameter sweep, as the optimizers'
            for key in point:
                if key in params:
                    v.fail(f"{where}.sweep.{key}", "given in params too: give it in one place")
            check_params(v, spec, point, f"{where}.sweep")
            points.append({**spec.params, **params, **point})
        problem_points.append((spec, budget, targets, directions, schedule, p_dtype, p_device, p_threads, points))

    keeps = {o_where: only_matcher(v, only, problem_points, opt_spec, f"{o_where}.only")
             for opt_spec, _, _, _, o_where, only in opt_entries}
    trials = []
    for spec, budget, targets, directions, schedule, p_dtype, p_device, p_threads, points in problem_points:
        for (opt_spec, hp, tuned, chosen, o_where, _), full_params in itertools.product(opt_entries, points):
            if spec.kind not in opt_spec.kinds or not keeps[o_where](spec.name, full_params, budget):
                continue
            if tuned is not None:  # the tuned setting, under the entry's own hparams
                found = tuned.hparams_for(opt_spec.name, spec.name, full_params,
                                          f"{source}: {o_where}.hparams_from")
                check_hparams(v, opt_spec, found, f"{o_where}.hparams_from")
                hp = {**opt_spec.defaults, **found, **chosen}
            problem_text = rule_error(str(full_params.get("parametrization", "sp")), opt_spec.scaling, hp)
            if problem_text:
                v.fail(f"{o_where}.name", f"{opt_spec.name} on {spec.name}: {problem_text}")
            code = code_identity.trial_code(registry, spec.plugin, opt_spec.plugin)
            for seed in seeds:
                trials.append(Trial(suite=name, problem=spec.name, params=full_params,
                                    kind=spec.kind, optimizer=opt_spec.name, hparams=hp, seed=int(seed),
                                    device=p_device, dtype=p_dtype, budget=budget, targets=targets,
                                    eval=schedule, threads=p_threads, metrics=metrics,
                                    directions=directions, code=code, suite_hash=suite_hash))
    seen: dict = {}
    for t in trials:
        if t.trial_id in seen:
            v.fail("optimizers", f"two entries give the same trial ({t.problem}, {t.label}, seed {t.seed}):"
                   " remove the duplicate")
        seen[t.trial_id] = t
    trials = apply_filters(trials, filters or [])
    return Suite(name=name, path=source, trials=trials)


def sweep_grid(v: _Validator, entry: dict, where: str) -> list[dict]:
    """The points of an entry's ``sweep`` table (key -> non-empty list of values): their
    cartesian product, or one empty point without a sweep."""
    sweep = v.typed(entry.get("sweep", {}), dict, where)
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            v.fail(f"{where}.{key}", "expected a non-empty list of values")
    return [dict(zip(sweep, combo)) for combo in itertools.product(*sweep.values())] or [{}]


def only_matcher(v: _Validator, only: dict, problem_points: list, opt_spec, where: str):
    """The test ``(problem name, full params, budget) -> bool`` of an optimizer entry's ``only``
    table, checked against the suite's problem points. Its keys: ``problem`` (problem names),
    ``max_steps`` (the problem entry's budget) or any parameter of the suite's problems, each a
    list of values; a point is kept when, for every key it has, its value is listed (a problem
    without that parameter is not narrowed by it). A key no problem takes, a value no point of
    the suite takes, or a table that leaves the entry no problem point fails."""
    taken: dict = {ONLY_NAME_KEY: [], ONLY_BUDGET_KEY: []}
    for spec, budget, *_, points in problem_points:
        taken[ONLY_NAME_KEY].append(spec.name)
        taken[ONLY_BUDGET_KEY].append(budget.max_steps)
        for point in points:
            for key, value in point.items():
                taken.setdefault(key, []).append(value)
    for key, values in only.items():
        if key not in taken:
            params = sorted(k for k in taken if k not in (ONLY_NAME_KEY, ONLY_BUDGET_KEY))
            v.fail(f"{where}.{key}", f"unknown key: no problem of the suite takes it (expected "
                   f"{ONLY_NAME_KEY}, {ONLY_BUDGET_KEY} or a parameter: {', '.join(params)})")
        for value in values:
            if not any(_same_value(value, t) for t in taken[key]):
                seen = ", ".join(dict.fromkeys(repr(t) for t in taken[key]))
                v.fail(f"{where}.{key}", f"{value!r} is not a value of the suite's problems ({key} takes {seen})")

    def keep(name: str, params: dict, budget: Budget) -> bool:
        have = {**params, ONLY_NAME_KEY: name, ONLY_BUDGET_KEY: budget.max_steps}
        return all(any(_same_value(have[k], x) for x in values) for k, values in only.items() if k in have)

    if only and not any(keep(spec.name, point, budget) for spec, budget, *_, points in problem_points
                        for point in points if spec.kind in opt_spec.kinds):
        v.fail(where, f"leaves {opt_spec.name} no problem of the suite to run on")
    return keep


def _same_value(a, b) -> bool:
    """Equal as suite values (64 and 64.0 alike; true is not 1)."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def apply_filters(trials: list[Trial], filters: list[str]) -> list[Trial]:
    """Keep trials matching every filter: ``problem=GLOB``, ``optimizer=GLOB``, ``seed=N``,
    or a bare GLOB matched against the problem or the optimizer name."""
    match = matcher(filters)
    return [t for t in trials if match(t.problem, t.optimizer, t.seed)]


# --------------------------------------------------------------------------- checks
class _Validator:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str):
        raise BenchInputError(f"{self.source}: {key}: {message}")

    def keys(self, table: dict, allowed: set, where: str):
        for key in table:
            if key not in allowed:
                self.fail(f"{where}.{key}" if where else key,
                          f"unknown key (expected one of {', '.join(sorted(allowed))})")

    def typed(self, value, typ, key: str):
        if not isinstance(value, typ):
            self.fail(key, f"expected {_type_name(typ)}, got {value!r}")
        return value

    def required(self, table: dict, key: str, typ, where: str):
        if key not in table:
            self.fail(f"{where}.{key}", "missing")
        return self.typed(table[key], typ, f"{where}.{key}")

    def known(self, lookup, name: str, key: str):
        try:
            return lookup(name)
        except BenchInputError as exc:
            self.fail(key, str(exc))

    def table_list(self, data: dict, key: str) -> list:
        items = data.get(key)
        if not isinstance(items, list) or not items or not all(isinstance(x, dict) for x in items):
            self.fail(key, f"expected at least one [[{key}]] table")
        return items


def _check_table(v: _Validator, table: dict, schema: dict, where: str, zero_ok: tuple = ()):
    for key, value in table.items():
        if key not in schema:
            v.fail(f"{where}.{key}", f"unknown key (expected one of {', '.join(sorted(schema))})")
        typ = schema[key]
        if typ is str:
            continue
        low_ok = key in zero_ok
        if (isinstance(value, bool) or not isinstance(value, typ) or not math.isfinite(value)
                or value < 0 or (value == 0 and not low_ok) or abs(value) >= INT64):
            v.fail(f"{where}.{key}", f"expected a {'non-negative' if low_ok else 'positive'} "
                   f"{'integer' if typ is int else 'finite number'}, got {value!r}")


def check_budget(v: _Validator, table: dict, where: str) -> Budget:
    """A budget table -> Budget (warmup_steps may be 0; time_to_target "training" or "all")."""
    _check_table(v, table, BUDGET_KEYS, where, zero_ok=("warmup_steps",))
    mode = table.get("time_to_target", "training")
    if mode not in TIME_TO_TARGET_MODES:
        v.fail(f"{where}.time_to_target", f"expected one of {', '.join(TIME_TO_TARGET_MODES)}, got {mode!r}")
    timing = table.get("solve_timing", "replay")
    if timing not in SOLVE_TIMING_MODES:
        v.fail(f"{where}.solve_timing", f"expected one of {', '.join(SOLVE_TIMING_MODES)}, got {timing!r}")
    if table.get("divergence_factor", 2) <= 1:
        v.fail(f"{where}.divergence_factor", f"expected a number above 1, got {table['divergence_factor']!r}")
    if "max_seconds" in table:
        table = {**table, "max_seconds": float(table["max_seconds"])}
    return Budget(**table)


def metric_direction(registry: Registry, metric: str) -> str | None:
    """"max" or "min" as a MetricSpec declares it; None when no plugin declares the metric."""
    spec = registry.metrics.get(metric)
    if spec is None:
        return None
    return "max" if spec.higher_is_better else "min"


def check_targets(v: _Validator, registry: Registry, spec, table: dict, where: str) -> tuple:
    """Targets of a problem entry: each on a metric the problem reports, with a declared
    direction and a finite threshold."""
    targets = []
    for key, value in table.items():
        if not _is_number(value) or not math.isfinite(value):
            v.fail(f"{where}.{key}", f"expected a finite number, got {value!r}")
        if key not in spec.reports:
            reported = ", ".join(spec.reports) or "none declared (ProblemSpec.reports)"
            v.fail(f"{where}.{key}", f"problem {spec.name!r} does not report metric {key!r} "
                   f"(it reports: {reported})")
        direction = metric_direction(registry, key)
        if direction is None:
            v.fail(f"{where}.{key}", f"no plugin declares the direction of metric {key!r} (a MetricSpec)")
        targets.append(Target(key, direction, float(value)))
    return tuple(targets)


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def check_name(v: _Validator, value, key: str) -> str:
    """A suite name: a safe path component (letters, digits, . _ + -; at most 100 characters),
    since it names the default results directory results/<name>."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value:
        v.fail(key, f"expected a name of letters, digits, '.', '_', '+' or '-' (at most 100, not "
               f"starting with '.' or holding '..'), got {str(value)[:60]!r}")
    return value


def check_threads(v: _Validator, value, key: str) -> int:
    """A positive number of CPU threads per trial."""
    if not _is_int(value) or not 1 <= value <= 4096:
        v.fail(key, f"expected a positive integer number of CPU threads, got {value!r}")
    return int(value)


def check_dtype(v: _Validator, value, key: str) -> str:
    """A dtype name from DTYPES."""
    if not isinstance(value, str) or value not in DTYPES:
        v.fail(key, f"unknown dtype {value!r} (expected one of {', '.join(DTYPES)})")
    return value


def check_device(v: _Validator, value, key: str) -> str:
    """A device string that exists on this machine."""
    if not isinstance(value, str):
        v.fail(key, f"expected a device name, got {value!r}")
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError):
        v.fail(key, f"unknown device {value!r} (expected cpu, cuda or cuda:N)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            v.fail(key, f"device {value!r} does not exist here (no CUDA device available)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            v.fail(key, f"device {value!r} does not exist here ({torch.cuda.device_count()} CUDA devices)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            v.fail(key, f"device {value!r} does not exist here")
    elif dev.type != "cpu":
        v.fail(key, f"unsupported device {value!r} (expected cpu, cuda or cuda:N)")
    return value


def check_hparams(v: _Validator, spec, hparams: dict, where: str) -> None:
    """Every hparam must be one the optimizer declares, of its expected type (bench_core.hparams)."""
    for key, message in hparam_problems(spec, hparams):
        v.fail(f"{where}.hparams.{key}", message)


def check_params(v: _Validator, spec, params: dict, where: str) -> None:
    """Every problem parameter must be declared in the spec's params, with a matching type."""
    for key, value in params.items():
        if key not in spec.params:
            v.fail(f"{where}.{key}", f"problem {spec.name!r} takes no parameter {key!r}"
                   f" (it takes: {', '.join(sorted(spec.params)) or 'none'})")
        _check_type(v, value, spec.params[key], f"{where}.{key}")


def _check_type(v: _Validator, value, default, key: str) -> None:
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = _is_int(value)
    elif isinstance(default, float):
        ok = _is_number(value)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (tuple, list)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = True
    if not ok:
        v.fail(key, f"expected {_describe(default)}, got {value!r}")


def _describe(default) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, (tuple, list)):
        return "a list"
    return type(default).__name__


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _type_name(typ) -> str:
    names = {dict: "a table", list: "a list", str: "a string", int: "an integer", float: "a number"}
    if isinstance(typ, tuple):
        return "number"
    return names.get(typ, typ.__name__)
