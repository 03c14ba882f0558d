"""Tuning protocols (`bench tune`): every optimizer gets the same budget on every problem.

- ``random`` (default), as AlgoPerf's external-tuning ruleset: each optimizer gets the same number
  N of trials per problem, hyperparameters drawn quasi-randomly (a scrambled Halton sequence,
  ``scipy.stats.qmc``, seeded) from its declared ``search_space``, each with the suite's budget.
- ``hyperband``: Hyperband ("Hyperband: A Novel Bandit-Based Approach to Hyperparameter
  Optimization", Li et al.): brackets of successive halving. A bracket starts n configurations
  at r steps and keeps the best 1/eta of them at each rung with eta times more steps, until the
  suite's max_steps R. Brackets run (most aggressive first, cyclically) while their planned steps
  fit in the same total budget as random search, N x R steps per optimizer and problem.
  Trials restart from scratch at each rung (the runner has no checkpoints).

Each trial runs on the suite's first seed; hyperparameters the suite fixes stay fixed unless the
search space names them. Every tuning trial is an ordinary trial in the results directory (suite
name "<suite>-tune"), so a tuning run resumes like any run. The best trial of each optimizer and
problem is chosen by the one rule of bench_core.selection (success, steps to target, then a
validation metric) and written
to a TOML file that a suite includes with ``hparams_from``::

    [[optimizers]]
    name = "torch.adam"
    hparams_from = "tuned.toml"    # per problem: the tuned setting (path relative to the suite)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Generator

from scipy.stats import qmc

from .errors import BenchInputError
from .registry import Registry, get_registry
from .store import read_trials
from .selection import row_rank, selection_metric
from .suite import Suite, Trial
from .trial import targets_dict
from .tuned_settings import TunedSettings  # noqa: F401  (re-exported: the include a suite reads)

METHODS = ("random", "hyperband")


# --------------------------------------------------------------------------- sampling
def quasi_random_points(space: dict, n: int, seed: int = 0) -> list[dict]:
    """`n` hyperparameter settings drawn from a search space with a scrambled Halton sequence."""
    keys = sorted(space)
    if not keys:
        return [{} for _ in range(n)]
    units = qmc.Halton(d=len(keys), scramble=True, seed=seed).random(n)
    return [{k: space[k].from_unit(float(u)) for k, u in zip(keys, row)} for row in units]


def hyperband_brackets(max_steps: int, eta: int = 3, max_rungs: int = 4) -> list[list[tuple[int, int]]]:
    """Hyperband's brackets for a maximum of `max_steps` steps: each bracket is a list of rungs
    (number of configurations, steps each), most aggressive bracket first."""
    s_max = 0
    while s_max + 1 < max_rungs and max_steps // eta ** (s_max + 1) >= 1:
        s_max += 1
    brackets = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta ** s)
        brackets.append([(max(1, n // eta ** i), max(1, round(max_steps / eta ** (s - i))))
                         for i in range(s + 1)])
    return brackets


def bracket_cost(bracket: list[tuple[int, int]]) -> int:
    """Planned steps of a bracket."""
    return sum(n * r for n, r in bracket)


def hyperband_plan(max_steps: int, budget_steps: int, eta: int = 3) -> list[list[tuple[int, int]]]:
    """The brackets to run, cycling through Hyperband's brackets while they fit in `budget_steps`."""
    brackets = hyperband_brackets(max_steps, eta)
    plan, left, added = [], budget_steps, True
    while added:
        added = False
        for bracket in brackets:
            if bracket_cost(bracket) <= left:
                plan.append(bracket)
                left -= bracket_cost(bracket)
                added = True
    return plan


# --------------------------------------------------------------------------- the protocol
@dataclass
class Group:
    """One optimizer entry on one problem: its base trial and the tuning trials it ran."""

    base: Trial
    trial_ids: list = field(default_factory=list)
    final_ids: list = field(default_factory=list)  # trials with the full budget (candidates)
    planned_steps: int = 0


@dataclass
class TuningResult:
    """The groups, the chosen row per group, and the results directory."""

    out: str
    method: str
    budget: int
    groups: list
    best: list  # (group, row, metric) per group


def tuning_groups(suite: Suite) -> list[Group]:
    """One group per (problem, params, optimizer, fixed hparams) of the suite, on its first seed."""
    groups: dict[tuple, Group] = {}
    for t in suite.trials:
        groups.setdefault(t.key_id, Group(base=t))
    return list(groups.values())


def _tuning_trial(base: Trial, point: dict, max_steps: int | None = None) -> Trial:
    budget = base.budget if max_steps is None else replace(base.budget, max_steps=max_steps)
    return replace(base, suite=f"{base.suite}-tune", hparams={**base.hparams, **point}, budget=budget)


def _random_search(group: Group, points: list[dict]) -> Generator:
    trials = [_tuning_trial(group.base, p) for p in points]
    group.planned_steps = len(trials) * group.base.budget.max_steps
    yield trials


def _hyperband(group: Group, plan: list, points: list[dict], rank: "_Ranker") -> Generator:
    it = iter(points)
    for bracket in plan:
        configs = [next(it) for _ in range(bracket[0][0])]
        for i, (n, steps) in enumerate(bracket):
            group.planned_steps += n * steps
            rows = yield [_tuning_trial(group.base, c, steps) for c in configs]
            if i + 1 < len(bracket):
                rank.fit(rows)
                order = sorted(range(len(configs)), key=lambda j: rank(rows[j]))
                configs = [configs[j] for j in order[:bracket[i + 1][0]]]


def tune(suite: Suite, out: str | Path, budget: int, method: str = "random", seed: int = 0,
         eta: int = 3, executor=None, registry: Registry | None = None,
         run: Callable | None = None) -> TuningResult:
    """Tune every optimizer of `suite` on each of its problems with `budget` trials' worth of
    budget each (see the module docstring); every trial is written to `out`."""
    from .session import run_suite

    if budget < 1:
        raise BenchInputError(f"--budget: expected a positive number of trials, got {budget}")
    if method not in METHODS:
        raise BenchInputError(f"--method: unknown tuning method {method!r} (expected: {', '.join(METHODS)})")
    if eta < 2:
        raise BenchInputError(f"--eta: expected an integer of at least 2, got {eta}")
    registry = registry or get_registry()
    run = run or (lambda s: run_suite(s, out, executor=executor))
    out = str(out)
    groups = tuning_groups(suite)
    gens = []
    for group in groups:
        space = registry.optimizer(group.base.optimizer).search_space
        max_steps = group.base.budget.max_steps
        if method == "random":
            gens.append(_random_search(group, quasi_random_points(space, budget, seed)))
            continue
        plan = hyperband_plan(max_steps, budget * max_steps, eta)
        if not plan:
            cheapest = min(bracket_cost(b) for b in hyperband_brackets(max_steps, eta))
            raise BenchInputError(f"--budget {budget}: too small for hyperband on {group.base.problem}"
                                  f" (its cheapest bracket needs {math.ceil(cheapest / max_steps)})")
        points = quasi_random_points(space, sum(b[0][0] for b in plan), seed)
        gens.append(_hyperband(group, plan, points, _Ranker(group, registry)))

    asked = [next(g) for g in gens]
    while any(a is not None for a in asked):
        trials = [t for a in asked if a for t in a]
        for group, a in zip(groups, asked):
            if a:
                group.trial_ids += [t.trial_id for t in a]
        run(Suite(name=f"{suite.name}-tune", path=suite.path, trials=trials))
        rows = _rows_by_id(out)
        for k, (g, a) in enumerate(zip(gens, asked)):
            if not a:
                continue
            try:
                asked[k] = g.send([rows[t.trial_id] for t in a])
            except StopIteration:
                asked[k] = None
    rows = _rows_by_id(out)
    best = []
    for group in groups:
        full = group.base.budget.max_steps
        candidates = [rows[tid] for tid in dict.fromkeys(group.trial_ids)
                      if json.loads(rows[tid]["budget"])["max_steps"] == full]
        group.final_ids = [r["trial_id"] for r in candidates]
        ranker = _Ranker(group, registry)
        ranker.fit([rows[t] for t in group.trial_ids])
        chosen = min(candidates, key=ranker)
        best.append((group, chosen, ranker.metric))
    return TuningResult(out=out, method=method, budget=budget, groups=groups, best=best)


class _Ranker:
    """rank_key for the rows of one group, with the group's selection metric."""

    def __init__(self, group: Group, registry: Registry):
        self.group, self.registry = group, registry
        self.metric = None

    def fit(self, rows: list) -> None:
        """Choose the selection metric from the metrics these rows report."""
        names = set()
        for r in rows:
            names |= set(r.get("metrics") or {})
        self.metric = selection_metric(targets_dict(self.group.base.targets), sorted(names))

    def __call__(self, row: dict) -> tuple:
        return row_rank(row, self.metric, json.loads(row.get("directions") or "{}").get(self.metric))


def _rows_by_id(out: str) -> dict:
    df = read_trials(out)
    return {r["trial_id"]: r for r in df.to_dict("records")}


# --------------------------------------------------------------------------- the tuned file
def write_tuned(result: TuningResult, path: str | Path, suite: Suite) -> None:
    """Write the best setting per optimizer and problem as TOML (atomically)."""
    lines = [f"# Tuned hyperparameters written by `bench tune` ({result.method}, budget {result.budget}).",
             "# Include in a suite: [[optimizers]] name = \"...\", hparams_from = \"<this file>\"",
             f"suite = {_toml(suite.name)}", f"method = {_toml(result.method)}",
             f"budget = {result.budget}", f"results = {_toml(str(result.out))}", ""]
    for group, row, metric in result.best:
        value = (row.get("metrics") or {}).get(metric)
        lines += ["[[tuned]]", f"optimizer = {_toml(group.base.optimizer)}",
                  f"problem = {_toml(group.base.problem)}",
                  f"problem_params = {_toml(json.loads(row['problem_params']))}",
                  f"hparams = {_toml(json.loads(row['hparams']))}",
                  f"metric = {_toml(metric or '')}",
                  f"value = {_toml(float(value) if value is not None else math.nan)}",
                  f"status = {_toml(row['status'])}", f"trial_id = {_toml(row['trial_id'])}",
                  f"trials = {len(set(group.trial_ids))}", f"planned_steps = {group.planned_steps}", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    if value is None:
        return '""'
    return json.dumps(str(value))
