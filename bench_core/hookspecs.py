"""The whole plugin contract of bench-core: every hook a plugin may implement, in one file.

A plugin is a module (or any object) with functions marked ``@bench_core.hookimpl`` whose names
are the hooks below. Plugins are found through the entry-point group ``bench_core``:

    [project.entry-points.bench_core]
    my_plugin = "my_package.plugin"

Provider hooks return lists of specs. Observer hooks are called while trials run, by pluggy
(``pm.hook.NAME(...)``), so ``@hookimpl(tryfirst=True)`` / ``trylast=True`` order them and
``hookwrapper=True`` / ``wrapper=True`` implementations run around the others; what they return
is ignored, and an observer that raises is recorded as a warning on the trial, never a failure
of the run. A marked implementation whose name is no hook below (``bench_optimizer``,
``bench_trial_ends``) is reported as an error of its plugin by ``bench list``.
"""
from __future__ import annotations

import pluggy

PROJECT_NAME = "bench_core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --------------------------------------------------------------------------- providers
@hookspec
def bench_problems():
    """Return a list of :class:`bench_core.ProblemSpec` this plugin provides.

    Called once, when the registry is built. Names must be unique across all plugins; a clash
    is reported by ``bench list`` as an error of the later plugin.
    """


@hookspec
def bench_optimizers():
    """Return a list of :class:`bench_core.OptimizerSpec` (optimizers and linear solvers).

    Called once, when the registry is built.
    """


@hookspec
def bench_metrics():
    """Return a list of :class:`bench_core.MetricSpec`.

    A spec with a function is computed at the end of every trial; a spec without one declares
    the direction and unit of a value that problems report (e.g. ``val_accuracy``, higher is
    better). The same name may be declared by several plugins if they agree; bench_core itself
    declares the shared ones (``loss``, ``val_accuracy``, ``rel_residual``, ... see
    :mod:`bench_core.core_metrics`), and a plugin that gives one of them the other direction is
    reported as an error.
    """


# --------------------------------------------------------------------------- observers
@hookspec
def bench_trial_start(trial):
    """Called when a trial's problem and optimizer are built, before the first step.

    ``trial`` is the :class:`bench_core.TrialContext`; ``trial.scratch`` is a dict a plugin may
    use to keep per-trial state (key it by the plugin's name).
    """


@hookspec
def bench_after_evaluation(trial, step, metrics):
    """Called after each scheduled evaluation with the step and the dict of metric values.

    The time spent here is excluded from the trial's training time.
    """


@hookspec
def bench_trial_end(trial, result):
    """Called when a trial ends (any status), before its row is written.

    ``result`` is the mutable trial row (a dict); an observer may add entries to
    ``result["metrics"]`` (name -> float) but should prefer a MetricSpec with a function.
    """
