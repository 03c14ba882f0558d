"""The trial model, defined once: what a trial runs (Trial, Budget, Target), its key, and its row.

- ``Trial.key()`` is what was run: problem + params, optimizer + hparams, dtype, device, budget,
  targets, evaluation schedule and CPU threads. ``key_id`` hashes it; every reader groups trials
  by ``key_id`` (plus ``code_id`` where results of different code must stay apart), never by a
  display label.
- ``code_id`` fingerprints the code that runs the trial (bench_core.code_identity).
- ``trial_id`` hashes key, seed and code: the file name of the trial's row, so that a rerun after
  a code change runs again and results of old and new code sit side by side in one directory.
- ``TrialRow`` lists the columns of a row; the Parquet schema is derived from it, and
  ``make_row`` builds every row, of a trial that ran or of one that never could.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone

#: Version of the row layout; 2 added key_id, code_id, code, threads, load and directions.
SCHEMA_VERSION = 2
DIRECTIONS = ("min", "max")
DEFAULT_MAX_STEPS = 1000
DEFAULT_WARMUP_STEPS = 1
#: benchopt's rule: a training loss above this multiple of its initial value has diverged.
DEFAULT_DIVERGENCE_FACTOR = 1e4
TIME_TO_TARGET_MODES = ("training", "all")
#: How a linear solve is timed (Budget.solve_timing; None means "replay", see bench_core.linear_loop).
SOLVE_TIMING_MODES = ("replay", "observed")
Metrics = dict  # metric name -> float
Counters = dict  # counter name -> int


def _hash(value, n: int = 16) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Budget:
    """How long a trial may run.

    ``max_steps`` steps (solver iterations), at most ``max_seconds`` of timed work;
    ``warmup_steps`` first steps timed apart (0: none); ``stall_window`` iterations without
    progress before a linear solve is ``stalled``; ``divergence_factor``: a training loss above
    this multiple of its initial value is ``diverged``; ``time_to_target``: "training" counts the
    training steps (and a linear solver's setup) only, "all" counts setup and warm-up too
    (AlgoPerf's rule); ``solve_timing`` (linear systems): "replay" (the default, also when None)
    times a second solve without evaluation up to the observed iteration counts, "observed" times
    the evaluated solve itself (bench_core.linear_loop).
    """

    max_steps: int = DEFAULT_MAX_STEPS
    max_seconds: float | None = None
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    stall_window: int | None = None
    divergence_factor: float = DEFAULT_DIVERGENCE_FACTOR
    time_to_target: str = "training"
    solve_timing: str | None = None

    def to_dict(self) -> dict:
        """Plain data, without unset optional fields."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "Budget":
        """The budget a dict (e.g. from to_dict) describes."""
        return cls(**data)


@dataclass(frozen=True)
class Target:
    """A threshold on a metric, reached when the metric is at or beyond it in its direction."""

    metric: str
    direction: str  # "min" (lower is better) or "max"
    threshold: float

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"Target {self.metric!r}: direction must be 'min' or 'max', got {self.direction!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"Target {self.metric!r}: threshold must be finite, got {self.threshold!r}")

    def met(self, value) -> bool:
        """Whether `value` reaches the threshold (a missing or non-finite value never does)."""
        if value is None or not math.isfinite(value):
            return False
        return value >= self.threshold if self.direction == "max" else value <= self.threshold


def targets_met(targets, metrics: dict) -> bool:
    """True when there are targets and every one is met by `metrics`."""
    return bool(targets) and all(t.met(metrics.get(t.metric)) for t in targets)


def targets_with_directions(table: dict, registry=None) -> tuple:
    """Targets from metric -> threshold, each with the direction its MetricSpec declares (the
    process-wide registry unless given); ValueError for a metric nobody declares."""
    from .registry import get_registry

    registry = registry or get_registry()
    out = []
    for metric, threshold in table.items():
        spec = registry.metrics.get(metric)
        if spec is None:
            raise ValueError(f"target {metric!r}: no plugin declares the direction of this metric")
        out.append(Target(metric, "max" if spec.higher_is_better else "min", float(threshold)))
    return tuple(out)


def targets_dict(targets) -> dict:
    """metric -> threshold, as the ``targets`` column stores it."""
    return {t.metric: t.threshold for t in targets}


def optimizer_label(optimizer: str, hparams: dict) -> str:
    """optimizer(hparams) with every value whole: what is stored and what groups never depend on."""
    if not hparams:
        return optimizer
    return f"{optimizer}({', '.join(f'{k}={v}' for k, v in sorted(hparams.items()))})"


@dataclass
class Trial:
    """One run: a problem with its params, an optimizer with its hparams, a seed, its budget and
    targets, on a device and dtype with a number of CPU threads, by a given code."""

    suite: str
    problem: str
    params: dict
    kind: str
    optimizer: str
    hparams: dict
    seed: int
    device: str
    dtype: str
    budget: Budget
    targets: tuple
    eval: dict
    threads: int = 1
    metrics: list | None = None
    directions: dict = field(default_factory=dict)  # metric -> "min"/"max" for the metrics it reports
    code: dict = field(default_factory=dict)
    suite_hash: str = ""
    key_id: str = ""
    code_id: str = ""
    trial_id: str = ""

    def __post_init__(self):
        if isinstance(self.budget, dict):
            self.budget = Budget.from_dict(self.budget)
        if isinstance(self.targets, dict):  # metric -> threshold: directions as the plugins declare them
            self.targets = targets_with_directions(self.targets)
        self.targets = tuple(t if isinstance(t, Target) else Target(**t) for t in self.targets)
        from .code_identity import code_id

        self.key_id = _hash(self.key())
        self.code_id = code_id(self.code) if self.code else "nocode"
        self.trial_id = _hash([self.key_id, self.seed, self.code_id])

    def key(self) -> dict:
        """What was run, seed and code aside: trials with equal keys may be pooled over seeds."""
        return {"problem": self.problem, "params": self.params, "optimizer": self.optimizer,
                "hparams": self.hparams, "dtype": self.dtype, "device": self.device,
                "budget": self.budget.to_dict(), "eval": self.eval, "threads": self.threads,
                "targets": sorted([t.metric, t.direction, t.threshold] for t in self.targets)}

    def to_dict(self) -> dict:
        """Plain-data form (JSON-able), e.g. to send the trial to another process."""
        d = asdict(self)
        d["budget"] = self.budget.to_dict()
        d["targets"] = [asdict(t) for t in self.targets]
        for k in ("key_id", "code_id", "trial_id"):
            d.pop(k)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Trial":
        """The trial that to_dict described."""
        return cls(**{k: v for k, v in data.items() if k not in ("key_id", "code_id", "trial_id")})

    @property
    def label(self) -> str:
        """optimizer(hparams), whole."""
        return optimizer_label(self.optimizer, self.hparams)


# --------------------------------------------------------------------------- the row
@dataclass
class TrialRow:
    """The columns of one trial's row, in order; ``store.TRIAL_SCHEMA`` is derived from them.
    Types: str, int, float, bool, datetime (UTC), Metrics (str -> float), Counters (str -> int);
    JSON columns are str."""

    schema_version: int
    run_id: str
    trial_id: str
    key_id: str
    code_id: str
    suite: str
    suite_hash: str
    problem: str
    problem_params: str  # JSON
    kind: str
    optimizer: str
    hparams: str  # JSON
    label: str
    seed: int
    device: str
    dtype: str
    threads: int
    budget: str  # JSON
    targets: str  # JSON: metric -> threshold
    directions: str  # JSON: metric -> "min"/"max", for targets and reported metrics
    eval: str  # JSON
    status: str
    error: str
    warnings: str
    steps: int
    train_time_s: float
    setup_time_s: float
    warmup_steps: int
    warmup_time_s: float
    eval_time_s: float
    time_to_target_s: float
    steps_to_target: int
    time_to_target_mode: str
    metrics: Metrics
    counters: Counters
    code: str  # JSON: bench_core.code_identity.trial_code
    git_commit: str  # bench-core's commit (of the code that ran)
    git_dirty: bool
    package_versions: str  # JSON
    host: str
    cpu_model: str
    gpu_model: str
    python_version: str
    torch_version: str
    cpu_count: int
    torch_threads: int
    blas: str  # JSON: threadpoolctl's view of the BLAS/OpenMP libraries and their threads
    load_avg: float  # 1-minute load average when the trial started
    gpu_info: str  # JSON: CUDA/cuDNN versions and determinism flags, on GPU
    started_at: datetime
    ended_at: datetime


ROW_COLUMNS = tuple(f.name for f in fields(TrialRow))
_ROW_TYPES = {f.name: f.type for f in fields(TrialRow)}


def row_types() -> dict:
    """Column name -> type name of TrialRow (str, int, float, bool, datetime, Metrics, Counters)."""
    return dict(_ROW_TYPES)


def make_row(trial: Trial, run_id: str, status: str, error: str | None = None,
             measured: dict | None = None, environment: dict | None = None) -> dict:
    """The row of `trial`: what ran (from the trial), how it ended, what was measured
    (steps, times, metrics, counters...), and where (provenance). Used for every row, so a
    trial that never ran has the same columns as one that did."""
    now = datetime.now(timezone.utc)
    measured = measured or {}
    row = dict.fromkeys(ROW_COLUMNS)
    row.update({
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "trial_id": trial.trial_id,
        "key_id": trial.key_id, "code_id": trial.code_id, "suite": trial.suite,
        "suite_hash": trial.suite_hash, "problem": trial.problem, "problem_params": to_json(trial.params),
        "kind": trial.kind, "optimizer": trial.optimizer, "hparams": to_json(trial.hparams),
        "label": trial.label, "seed": trial.seed, "device": trial.device, "dtype": trial.dtype,
        "threads": trial.threads, "budget": to_json(trial.budget.to_dict()),
        "targets": to_json(targets_dict(trial.targets)), "directions": to_json(trial.directions),
        "eval": to_json(trial.eval), "status": status, "error": error, "steps": 0,
        "time_to_target_mode": trial.budget.time_to_target, "metrics": {}, "counters": {},
        "code": to_json(trial.code), "started_at": now, "ended_at": now,
    })
    core = trial.code.get("bench_core", {})
    row["git_commit"], row["git_dirty"] = core.get("commit"), core.get("dirty")
    row.update(environment or {})
    row.update(measured)
    unknown = set(row) - set(ROW_COLUMNS)
    if unknown:
        raise ValueError(f"make_row: unknown columns {sorted(unknown)}")
    return row


def to_json(value) -> str:
    """Canonical JSON used for the JSON columns."""
    return json.dumps(value, sort_keys=True, default=str)
