"""Collection-wide scores of linear solvers: how many systems each solver solves to the target
within a given number of iterations or seconds, over all the linear-system trials of a results
directory. Pure computation on the trials frame of ``bench_core.store.read_trials``.

- The cost of a solver (a setting label, as ``analysis.setting_labels`` gives it) on a system
  (a problem label: problem and its params) is the median over seeds of its iterations to the
  target (``steps_to_target``), its solve time (``time_to_target_s − setup_time_s``) or its total
  time (``time_to_target_s``, which counts setup and solve); a seed that missed the target
  counts as ∞. Setup alone is reported as the median ``setup_time_s`` over the systems.
- Solved curves: the fraction of systems solved with cost ≤ t, for t on a log axis from ``lo``
  (the smallest finite positive cost of any solver) to ``hi`` (the largest).
- AUC: the area under a solved curve over log t in [lo, hi], divided by log(hi / lo), so 1 means
  every system solved at cost lo, 0 none solved below hi. Exactly, a system with cost c adds
  (log hi − log max(c, lo)) / (log hi − log lo) when c ≤ hi, then the mean is taken over systems.
- Performance profiles (Dolan & Moré, "Benchmarking optimization software with performance
  profiles", 2002) of the same cost tables, with ``analysis.performance_profile`` and their
  normalized areas ``analysis.profile_scores``.

``collection_scores`` applies when the linear-system trials cover at least two systems.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .analysis import TAU_MAX, performance_profile, profile_scores, setting_labels

LINEAR_KIND = "linear_system"
REACHED = "target_reached"
#: The costs scored: name -> what it counts.
COSTS = {
    "iterations": "iterations to the target",
    "solve_time_s": "solve seconds to the target (setup excluded)",
    "total_time_s": "setup + solve seconds to the target",
}


def linear_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The linear-system trials of a trials frame, with their problem and setting labels."""
    if trials is None or not len(trials) or "kind" not in trials:
        return pd.DataFrame()
    sub = trials[trials["kind"] == LINEAR_KIND]
    return setting_labels(sub) if len(sub) else pd.DataFrame()


def applies(trials: pd.DataFrame, min_systems: int = 2) -> bool:
    """Whether the collection scores apply: linear-system trials on at least `min_systems` systems."""
    sub = linear_trials(trials)
    return bool(len(sub)) and sub["problem_label"].nunique() >= min_systems


def _trial_cost(row, name: str) -> float:
    if row["status"] != REACHED:
        return math.inf
    ttt, setup = row.get("time_to_target_s"), row.get("setup_time_s")
    if name == "iterations":
        value = row.get("steps_to_target")
    elif name == "total_time_s":
        value = ttt
    elif name == "solve_time_s":
        value = None if ttt is None or pd.isna(ttt) else float(ttt) - float(0.0 if setup is None or pd.isna(setup) else setup)
    else:
        raise ValueError(f"cost must be one of {', '.join(COSTS)}, not {name!r}")
    return math.inf if value is None or pd.isna(value) else float(value)


def cost_table(trials: pd.DataFrame, name: str = "iterations") -> pd.DataFrame:
    """Systems × solvers: the median over seeds of the cost `name` (one of COSTS); ∞ for a miss
    or where a solver did not run on a system."""
    sub = linear_trials(trials)
    if not len(sub):
        return pd.DataFrame()
    cells = pd.DataFrame({"system": sub["problem_label"].tolist(), "solver": sub["label"].tolist(),
                          "cost": [_trial_cost(r, name) for _, r in sub.iterrows()]})
    table = cells.groupby(["system", "solver"])["cost"].median().unstack("solver")
    return table.fillna(math.inf).astype(float)


def cost_range(costs: pd.DataFrame) -> tuple[float, float] | None:
    """(lo, hi): the smallest finite positive and the largest finite cost of the table (None
    when nothing was solved); hi = 10 lo when all equal."""
    values = costs.to_numpy().ravel()
    finite = values[np.isfinite(values) & (values > 0)]
    if not len(finite):
        return None
    lo, hi = float(finite.min()), float(finite.max())
    return lo, (hi if hi > lo else 10 * lo)


def solved_curves(costs: pd.DataFrame, lo: float, hi: float, points: int = 64) -> tuple[np.ndarray, dict]:
    """(t, {solver: fraction of systems with cost ≤ t}) on `points` log-spaced t from lo to hi."""
    t = np.geomspace(lo, hi, points)
    return t, {s: (costs[s].to_numpy()[:, None] <= t[None, :]).mean(axis=0) for s in costs.columns}


def curve_auc(costs: pd.DataFrame, lo: float, hi: float) -> dict[str, float]:
    """The normalized area under each solver's solved curve on a log axis over [lo, hi]."""
    if not len(costs) or not hi > lo > 0:
        return {}
    span = math.log(hi) - math.log(lo)
    c = costs.to_numpy(dtype=float)
    with np.errstate(divide="ignore"):
        part = np.where(c <= hi, (math.log(hi) - np.log(np.clip(c, lo, None))) / span, 0.0)
    return {s: float(part[:, j].mean()) for j, s in enumerate(costs.columns)}


def _median_setup(trials: pd.DataFrame) -> dict[str, float | None]:
    sub = linear_trials(trials)
    if not len(sub) or "setup_time_s" not in sub:
        return {}
    per = sub.groupby(["label", "problem_label"])["setup_time_s"].median().groupby("label").median()
    return {s: (None if pd.isna(v) else float(v)) for s, v in per.items()}


def collection_scores(trials: pd.DataFrame, tau_max: float = TAU_MAX, points: int = 64) -> dict | None:
    """Every collection-wide score, or None when they do not apply (``applies``):

    ``systems`` (count), ``rows`` (one per solver: solved, the AUC of each cost of COSTS
    (``auc_iterations``, ``auc_solve_time_s``, ``auc_total_time_s``), the Dolan–Moré profile
    scores on iterations and total time, the median setup seconds), sorted by total-time AUC;
    ``curves`` per cost: {t, fractions, lo, hi}; ``profiles`` per cost: {taus, rho}."""
    if not applies(trials):
        return None
    tables = {name: cost_table(trials, name) for name in COSTS}
    setup = _median_setup(trials)
    first = tables["iterations"]
    rows = {s: {"solver": s, "solved": int(np.isfinite(first[s]).sum()), "systems": len(first),
                "median_setup_s": setup.get(s)} for s in first.columns}
    curves, profiles = {}, {}
    for name, table in tables.items():
        bounds = cost_range(table)
        if bounds is None:
            aucs = {s: 0.0 for s in table.columns}
            curves[name] = None
        else:
            t, frac = solved_curves(table, *bounds, points=points)
            curves[name] = {"t": t, "fractions": frac, "lo": bounds[0], "hi": bounds[1]}
            aucs = curve_auc(table, *bounds)
        taus, rho = performance_profile(table, tau_max)
        profiles[name] = {"taus": taus, "rho": rho}
        scores = profile_scores(table, tau_max)
        for s in table.columns:
            rows[s][f"auc_{name}"] = aucs.get(s, 0.0)
            rows[s][f"profile_{name}"] = scores.get(s, 0.0)
    ordered = sorted(rows.values(), key=lambda r: (-r["auc_total_time_s"], -r["auc_iterations"], r["solver"]))
    return {"systems": len(first), "rows": ordered, "curves": curves, "profiles": profiles,
            "tau_max": tau_max}


# --------------------------------------------------------------------------- rendering
_HEADER = ("solver", "solved", "AUC iters", "AUC solve", "AUC total", "profile iters",
           "profile total", "setup (median)")
_EXPLAIN = ("fraction of systems solved to the target against iterations / solve time / setup + solve "
            "time on a log axis (AUC normalized to [0, 1]); Dolan–Moré profile scores (τ ≤ {tau:g}) on "
            "iterations and total time; setup is shown apart")


def _cells(r: dict) -> list[str]:
    setup = r["median_setup_s"]
    return [r["solver"], f"{r['solved']}/{r['systems']}", f"{r['auc_iterations']:.3f}",
            f"{r['auc_solve_time_s']:.3f}", f"{r['auc_total_time_s']:.3f}",
            f"{r['profile_iterations']:.3f}", f"{r['profile_total_time_s']:.3f}",
            "—" if setup is None else (f"{1e3 * setup:.3g} ms" if setup < 1 else f"{setup:.3g} s")]


def text_section(trials: pd.DataFrame) -> str:
    """The collection-wide scores as a plain-text table (for ``bench show``), or "" when they do
    not apply."""
    scores = collection_scores(trials)
    if scores is None:
        return ""
    rows = [list(_HEADER)] + [_cells(r) for r in scores["rows"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = [f"\nCollection-wide scores: {scores['systems']} linear systems",
             "  " + _EXPLAIN.format(tau=scores["tau_max"])]
    for j, row in enumerate(rows):
        lines.append("  " + "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                                       for i, c in enumerate(row)))
        if j == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def solved_figure(scores: dict):
    """A matplotlib figure (bench_core.figures' style): fraction of systems solved against
    iterations and against setup + solve seconds, log axes; None when nothing was solved."""
    from . import figures

    panels = [(name, label) for name, label in (("iterations", "iterations to the target"),
                                                  ("total_time_s", "setup + solve seconds to the target"))
              if scores["curves"].get(name) is not None]
    if not panels:
        return None
    fig, axes = figures.new_figure(len(panels))
    order = [r["solver"] for r in scores["rows"]]
    for ax, (name, label) in zip(axes, panels):
        curve = scores["curves"][name]
        for i, s in enumerate(order):
            ax.step(curve["t"], curve["fractions"][s], where="post",
                    color=figures.PALETTE[i % len(figures.PALETTE)],
                    linestyle=figures.LINESTYLES[i % len(figures.LINESTYLES)], label=s)
        ax.set_xscale("log")
        ax.set_ylim(-0.04, 1.04)
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of systems solved")
    return figures.finish(fig, axes)


def html_section(trials: pd.DataFrame, inline_figure) -> str:
    """The collection-wide scores as an HTML section (table and figure; ``inline_figure(fig)``
    turns a matplotlib figure into inline HTML), or "" when they do not apply."""
    from html import escape

    scores = collection_scores(trials)
    if scores is None:
        return ""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in _HEADER)
    body = "".join("<tr>" + "".join(f"<td{'' if i == 0 else ' class=n'}>{escape(c)}</td>"
                                    for i, c in enumerate(_cells(r))) + "</tr>" for r in scores["rows"])
    fig = solved_figure(scores)
    return "\n".join([
        '<h2 id="collection">Collection-wide scores (linear systems)</h2>',
        f'<p class="muted">{scores["systems"]} systems: {escape(_EXPLAIN.format(tau=scores["tau_max"]))}.</p>',
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
        f'<div class="charts">{inline_figure(fig) if fig is not None else ""}</div>'])
