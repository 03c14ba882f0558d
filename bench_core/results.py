"""Results as data: a results directory's trials and curves as pandas frames, or as DuckDB tables.

``read_results(DIR, ...)`` returns ``Results(trials, curves)``: the trial rows of
``bench_core.store.read_trials`` (the ``metrics`` and ``counters`` maps as dicts) and the curve
points of ``store.read_curves`` joined to their trial's problem, problem params, optimizer,
hparams, stored label, seed, dtype, key and code ids, so a curve query needs no join.
``connect(DIR, ...)`` gives a DuckDB connection holding the same two frames as tables ``trials``
(the maps as DuckDB MAPs: ``metrics['loss']``) and ``curves``, for ``bench sql``.

A directory that is not a results directory but holds some (e.g. ``results/``, whose children
``results/smoke/``, ``results/asv/`` ... are) is read as all of them at once, one dataset; any
other directory is refused in one line (BenchInputError). The store's own files are read through
its public readers only, so a trial is read once whether it lives in its own file or in a
compacted one, and damaged files are skipped with a warning as everywhere else.

``filter_trials(trials, filters)`` keeps the rows matching ``--filter`` expressions, with the
syntax of ``bench run --filter``: ``problem=GLOB``, ``optimizer=GLOB``, ``seed=N`` or a bare
GLOB matched against the problem or the optimizer name.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from .errors import BenchInputError
from .filters import matcher

#: The trial columns each curve point carries beside its own (trial_id, step, time_s, metric, value).
CURVE_TRIAL_COLUMNS = ("problem", "problem_params", "optimizer", "hparams", "label", "seed", "dtype",
                       "status", "key_id", "code_id")


class Results(NamedTuple):
    """The trials (one row per trial) and curves (one row per point, with its trial's columns)."""

    trials: "object"
    curves: "object"


def results_dirs(*dirs: str | Path) -> list[Path]:
    """The results directories that `dirs` name: each one that holds ``trials/``, and for one that
    does not, its immediate subdirectories that do (a results root); BenchInputError naming the
    first argument that is neither."""
    out = []
    for d in map(Path, dirs):
        if (d / "trials").is_dir():
            out.append(d)
            continue
        children = sorted(c for c in d.iterdir() if (c / "trials").is_dir()) if d.is_dir() else []
        if not children:
            raise BenchInputError(f"{d}: not a results directory (no trials/ folder, nor any in its "
                                  "subdirectories)")
        out += children
    return out


def read_results(*dirs: str | Path, curves: bool = True) -> Results:
    """The trials and curves of one or more results directories (or results roots, see
    ``results_dirs``) as pandas DataFrames; ``curves=False`` leaves the curves frame empty (with
    its columns) for speed. The trials frame keeps every column of the trial schema."""
    import pandas as pd

    from .store import CURVE_SCHEMA, read_curves, read_trials

    found = results_dirs(*dirs)
    trials = read_trials(*found)
    columns = list(CURVE_SCHEMA.names) + list(CURVE_TRIAL_COLUMNS)
    if not curves:
        return Results(trials, pd.DataFrame(columns=columns))
    points = read_curves(*found)
    info = trials[["trial_id", *CURVE_TRIAL_COLUMNS]] if len(trials) else pd.DataFrame(
        columns=["trial_id", *CURVE_TRIAL_COLUMNS])
    # inner join: a curve whose trial row is missing (a trial still running, a damaged row) is left out
    joined = points.merge(info, on="trial_id", how="inner", sort=False)
    joined.attrs["skipped"] = points.attrs.get("skipped", [])
    return Results(trials, joined[columns].reset_index(drop=True))


def _arrow(df):
    """`df` as a pyarrow Table with its dict-valued map columns as Arrow maps (DuckDB MAPs)."""
    import pyarrow as pa

    from .store import TRIAL_SCHEMA

    arrays, names = [], []
    for name in df.columns:
        field = TRIAL_SCHEMA.field(name) if name in TRIAL_SCHEMA.names else None
        values = df[name]
        if field is not None and pa.types.is_map(field.type):
            arrays.append(pa.array([v if isinstance(v, dict) else None for v in values], type=field.type))
        elif field is not None:
            arrays.append(pa.array(values.tolist(), type=field.type, from_pandas=True))
        else:
            arrays.append(pa.array(values.tolist(), from_pandas=True))
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def connect(*dirs: str | Path):
    """A DuckDB connection (in memory) with tables ``trials`` and ``curves`` (see the module
    docstring) of the results directories `dirs`."""
    import duckdb

    from .store import CURVE_SCHEMA, TRIAL_SCHEMA

    res = read_results(*dirs)
    trials = _arrow(res.trials) if len(res.trials) else TRIAL_SCHEMA.empty_table()
    curves = _arrow(res.curves) if len(res.curves) else None
    con = duckdb.connect()
    con.register("_trials", trials)
    con.execute("create table trials as select * from _trials")
    if curves is None:
        cols = ", ".join(f"{n} {t}" for n, t in _curve_sql_types(CURVE_SCHEMA))
        con.execute(f"create table curves ({cols})")
    else:
        con.register("_curves", curves)
        con.execute("create table curves as select * from _curves")
    con.unregister("_trials")
    if curves is not None:
        con.unregister("_curves")
    return con


def _curve_sql_types(curve_schema) -> list[tuple[str, str]]:
    """(name, SQL type) of the curves table's columns, for an empty one."""
    sql = {"string": "VARCHAR", "int64": "BIGINT", "double": "DOUBLE"}
    from .store import TRIAL_SCHEMA

    out = [(f.name, sql[str(f.type)]) for f in curve_schema]
    out += [(n, sql.get(str(TRIAL_SCHEMA.field(n).type), "VARCHAR")) for n in CURVE_TRIAL_COLUMNS]
    return out


def filter_trials(trials, filters: list[str]):
    """The rows of a trials DataFrame matching every filter (``bench run --filter`` syntax, see
    the module docstring); BenchInputError for a filter with another key."""
    if not filters or not len(trials):
        return trials
    match = matcher(filters)
    keep = [match(str(p), str(o), s) for p, o, s in zip(trials["problem"], trials["optimizer"], trials["seed"])]
    out = trials[keep]
    out.attrs = dict(trials.attrs)
    return out
