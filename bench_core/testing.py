"""The optimizer conformance kit: ``check_optimizer(spec)`` and the tiny problem it runs on.

A third party runs it on their own optimizer spec, the project runs it on every built-in one::

    from bench_core.testing import check_optimizer
    check_optimizer(my_spec)                       # raises AssertionError listing the failures
    report = check_optimizer(my_spec, raise_on_failure=False)
    print(report)

The kit drives the optimizer exactly as ``bench_core.runner`` does: the step closure is the
runner's own, built from the spec's ``requires`` (``loss_only`` -> no backward pass,
``create_graph`` -> ``backward(create_graph=True)``), and the factory gets ``model=`` when
``"model"`` is required. The problem is a small convex quadratic with an ``nn.Module``: two
identical linear-regression layers ``a`` and ``b`` fitted to the same data (so two parameter
groups can be compared), a frozen parameter (``requires_grad=False``) and an unused one (its
gradient stays None).

Checks (names as in the report):

- ``progress``: the loss falls by a clear margin on the convex quadratic and stays finite.
- ``param_groups``: with two groups, the group given a ten times smaller lr moves less (at the
  first step that moves anything).
- ``state_dict``: a ``state_dict`` saved mid-run, passed through ``torch.save`` and
  ``torch.load(weights_only=True)`` into a fresh optimizer, continues the run identically.
- ``zero_grad``, ``sparse_grad``: all-zero gradients, and gradients that are zero in most
  entries, leave parameters, losses and optimizer state finite.
- ``determinism``: the same seed gives the same trajectory.
- ``frozen``: parameters with ``requires_grad=False``, and parameters whose gradient stays None,
  are not changed.
- ``requires``: the declared ``requires`` is honoured: a ``loss_only`` optimizer never triggers a
  backward pass (no gradient ever appears) and evaluates the closure every step; any other
  optimizer calls the closure (forward + backward) at least once per step.
- ``counters``: an optimizer's ``bench_counters`` (merged into the trial's counters by the
  runner), when present, is a dict of non-negative integers.
- ``eval_train``: when the optimizer has ``eval()`` and ``train()`` (schedule-free methods), the
  pair leaves the parameters as they were.
"""
from __future__ import annotations

import inspect
import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .problems import TrainingProblem
from .context import seed_everything as _seed_everything
from .training_loop import closure_for as _closure_for
from .specs import OptimizerSpec

#: Distance of the kit quadratic's minimizer from the start (per weight, times sqrt(d)).
TARGET_SHIFT = 0.3
#: Every check of the kit, in the order it runs them.
CHECKS = ("progress", "param_groups", "state_dict", "zero_grad", "sparse_grad", "determinism",
          "frozen", "requires", "counters", "eval_train")


# --------------------------------------------------------------------------- the kit's problem
class KitModel(torch.nn.Module):
    """Two identical linear layers ``a`` and ``b``, a frozen offset and an unused parameter."""

    def __init__(self, d: int, k: int, gen: torch.Generator, dtype: torch.dtype):
        super().__init__()
        self.a = torch.nn.Linear(d, k, dtype=dtype)
        self.b = torch.nn.Linear(d, k, dtype=dtype)
        with torch.no_grad():
            self.a.weight.copy_(torch.randn(k, d, generator=gen) / d ** 0.5)
            self.a.bias.copy_(torch.randn(k, generator=gen) * 0.1)
            self.b.weight.copy_(self.a.weight)
            self.b.bias.copy_(self.a.bias)
        self.frozen = torch.nn.Parameter(torch.randn(k, generator=gen).to(dtype), requires_grad=False)
        self.unused = torch.nn.Parameter(torch.randn(3, generator=gen).to(dtype))

    def forward(self, x):
        """Predictions of both layers (the frozen offset added to each)."""
        return self.a(x) + self.frozen, self.b(x) + self.frozen


class KitProblem(TrainingProblem):
    """The kit's convex quadratic: ``½ mean ‖m ⊙ (a(x) − y)‖² + ½ mean ‖m ⊙ (b(x) − y)‖²``.

    ``mode``: ``"quadratic"`` (targets away from the start), ``"zero"`` (targets equal to the
    start's predictions, so every gradient is exactly zero), ``"sparse"`` (the mask ``m`` keeps
    one output of four, so most gradient entries are exactly zero). ``all_params=True`` makes
    ``parameters()`` include the frozen and the unused parameter.
    """

    def __init__(self, seed: int = 0, dtype: torch.dtype = torch.float32, mode: str = "quadratic",
                 all_params: bool = False, n: int = 32, d: int = 8, k: int = 4):
        gen = torch.Generator().manual_seed(1234 + seed)
        self.x = torch.randn(n, d, generator=gen).to(dtype)
        self.model = KitModel(d, k, gen, dtype)
        shift = torch.randn(k, d + 1, generator=gen).to(dtype) * (TARGET_SHIFT / d ** 0.5)
        with torch.no_grad():
            self.y = self.model(self.x)[0].clone()
            if mode != "zero":  # the minimizer: the start's weights and bias, shifted
                self.y += self.x @ shift[:, :d].T + shift[:, d]
        self.mask = torch.ones(k, dtype=dtype)
        if mode == "sparse":
            self.mask = torch.zeros(k, dtype=dtype)
            self.mask[0] = 1.0
        self.all_params = all_params

    def parameters(self):
        """The layers' parameters (plus the frozen and the unused one with ``all_params``)."""
        if self.all_params:
            return list(self.model.parameters())
        return [p for p in self.model.parameters() if p.requires_grad and p is not self.model.unused]

    def loss(self, batch):
        """The masked least-squares loss of both layers (full batch)."""
        ya, yb = self.model(self.x)
        return (0.5 * ((self.mask * (ya - self.y)) ** 2).sum(1).mean()
                + 0.5 * ((self.mask * (yb - self.y)) ** 2).sum(1).mean())

    def evaluate(self):
        """The loss."""
        return {"loss": float(self.loss(None))}


# --------------------------------------------------------------------------- report
@dataclass
class CheckResult:
    """The outcome of one check: ``passed`` is True, False, or None for a check skipped."""

    name: str
    passed: bool | None
    message: str = ""


@dataclass
class ConformanceReport:
    """What ``check_optimizer`` found, one ``CheckResult`` per check."""

    optimizer: str
    results: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no check failed (skipped checks do not count)."""
        return not self.failures

    @property
    def failures(self) -> list:
        """The checks that failed."""
        return [r for r in self.results if r.passed is False]

    def __str__(self) -> str:
        lines = [f"conformance of optimizer {self.optimizer!r}: "
                 + ("passed" if self.passed else f"{len(self.failures)} check(s) failed")]
        for r in self.results:
            mark = {True: "pass", False: "FAIL", None: "skip"}[r.passed]
            lines.append(f"  {mark}  {r.name}" + (f": {r.message}" if r.message else ""))
        return "\n".join(lines)


class _Counts:
    """Stands in for the runner's TrialContext: the closure counts its evaluations here."""

    def __init__(self):
        self.counters: dict = {}

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


# --------------------------------------------------------------------------- driving
class _Driver:
    """Builds problems and optimizers for one spec and runs steps the way the runner does."""

    def __init__(self, spec: OptimizerSpec, hparams: dict, dtype: torch.dtype):
        self.spec, self.hparams, self.dtype = spec, hparams, dtype

    def problem(self, mode: str = "quadratic", all_params: bool = False) -> KitProblem:
        return KitProblem(seed=0, dtype=self.dtype, mode=mode, all_params=all_params)

    def build(self, problem: KitProblem, params=None, seed: int = 0):
        """The optimizer on `params` (default: the problem's), seeded as the runner seeds it."""
        _seed_everything(seed)
        kwargs = dict(self.hparams)
        if "model" in self.spec.requires:
            kwargs["model"] = problem.model
        return self.spec.factory(problem.parameters() if params is None else params, **kwargs)

    def run(self, problem: KitProblem, optimizer, steps: int, counts: _Counts | None = None) -> list:
        """`steps` optimizer steps through the runner's closure; the loss after each."""
        counts = counts or _Counts()
        closure, batch_box, last_loss = _closure_for(counts, problem, optimizer, self.spec.requires)
        losses = []
        for step in range(1, steps + 1):
            batch_box[0] = problem.batch(step)
            optimizer.step(closure)
            with torch.no_grad():
                losses.append(float(problem.loss(None)))
        return losses


def _snapshot(params) -> list:
    return [p.detach().clone() for p in params]


def _flat_state_tensors(state: Any):
    if isinstance(state, torch.Tensor):
        yield state
    elif isinstance(state, dict):
        for v in state.values():
            yield from _flat_state_tensors(v)
    elif isinstance(state, (list, tuple)):
        for v in state:
            yield from _flat_state_tensors(v)


def _nonfinite(optimizer, params) -> str | None:
    for i, p in enumerate(params):
        if not torch.isfinite(p.detach()).all():
            return f"parameter {i} has non-finite values"
    for t in _flat_state_tensors(optimizer.state_dict().get("state", {})):
        if (t.is_floating_point() or t.is_complex()) and not torch.isfinite(t).all():
            return "optimizer state has non-finite values"
    return None


def _default_lr(spec: OptimizerSpec, hparams: dict):
    if "lr" in hparams:
        return hparams["lr"]
    try:
        default = inspect.signature(spec.factory).parameters["lr"].default
    except (KeyError, TypeError, ValueError):
        return None
    return default if isinstance(default, (int, float)) and not isinstance(default, bool) else None


# --------------------------------------------------------------------------- the checks
def _check_progress(d: _Driver, steps: int, min_decrease: float, seen: dict) -> str:
    problem = d.problem()
    with torch.no_grad():
        start = float(problem.loss(None))
    optimizer = d.build(problem)
    counts = _Counts()
    losses = d.run(problem, optimizer, steps, counts)
    seen.update(problem=problem, optimizer=optimizer, counts=counts.counters, steps=steps)
    final = losses[-1]
    if not all(math.isfinite(v) for v in losses):
        bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        raise AssertionError(f"loss became {losses[bad]} at step {bad + 1}")
    if not final < (1 - min_decrease) * start:
        raise AssertionError(f"loss went from {start:.4g} to {final:.4g} in {steps} steps "
                             f"(expected a decrease of at least {min_decrease:.0%})")
    return f"loss {start:.4g} -> {final:.4g} in {steps} steps"


def _check_param_groups(d: _Driver, steps: int) -> str | None:
    lr = _default_lr(d.spec, d.hparams)
    if not lr:
        return None
    problem = d.problem()
    m = problem.model
    hparams = {k: v for k, v in d.hparams.items() if k != "lr"}
    groups = [{"params": [m.a.weight, m.a.bias], "lr": lr},
              {"params": [m.b.weight, m.b.bias], "lr": lr / 10}]
    d2 = _Driver(d.spec, {**hparams, "lr": lr}, d.dtype)
    optimizer = d2.build(problem, params=groups)
    if len(optimizer.param_groups) != 2:
        raise AssertionError(f"optimizer has {len(optimizer.param_groups)} param groups, expected 2")
    a0, b0 = _snapshot([m.a.weight, m.a.bias]), _snapshot([m.b.weight, m.b.bias])
    for _ in range(steps):  # compare at the first step that moves (past warm-up phases such as RAdam's)
        d2.run(problem, optimizer, 1)
        move_a = math.sqrt(sum(float((p.detach() - q).pow(2).sum()) for p, q in zip([m.a.weight, m.a.bias], a0)))
        move_b = math.sqrt(sum(float((p.detach() - q).pow(2).sum()) for p, q in zip([m.b.weight, m.b.bias], b0)))
        if move_a > 0 or not math.isfinite(move_a):
            break
    if not math.isfinite(move_a) or not move_a > 0:
        raise AssertionError(f"the group with lr={lr:g} did not move (moved {move_a:.3g})")
    if not move_b < 0.5 * move_a:
        raise AssertionError(f"the group with lr={lr / 10:g} moved {move_b:.3g}, the group with "
                             f"lr={lr:g} moved {move_a:.3g}: per-group lr is not honoured")
    return f"moves {move_a:.3g} (lr={lr:g}) vs {move_b:.3g} (lr={lr / 10:g})"


def _roundtrip(state_dict: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    try:
        return torch.load(buf, weights_only=True)
    except Exception as exc:
        raise AssertionError("state_dict cannot be reloaded with torch.load(weights_only=True): "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def _check_state_dict(d: _Driver, before: int, after: int) -> str:
    p1 = d.problem()
    o1 = d.build(p1)
    d.run(p1, o1, before)
    saved = _roundtrip(o1.state_dict())
    params_at = _snapshot(p1.parameters())
    rng = torch.get_rng_state()
    losses1 = d.run(p1, o1, after)

    p2 = d.problem()
    with torch.no_grad():
        for p, v in zip(p2.parameters(), params_at):
            p.copy_(v)
    o2 = d.build(p2, seed=1)  # a different seed: whatever matters must come from the state_dict
    o2.load_state_dict(saved)
    torch.set_rng_state(rng)
    losses2 = d.run(p2, o2, after)
    for i, (a, b) in enumerate(zip(p1.parameters(), p2.parameters())):
        if not torch.allclose(a, b, rtol=1e-5, atol=1e-7):
            raise AssertionError(f"after load_state_dict the run differs: parameter {i} off by "
                                 f"{float((a - b).detach().abs().max()):.3g} after {after} steps "
                                 f"(losses {losses1[-1]:.6g} vs {losses2[-1]:.6g})")
    return f"{before} steps, save/load, {after} steps: identical continuation"


def _check_finite(d: _Driver, mode: str, steps: int) -> str:
    problem = d.problem(mode=mode)
    optimizer = d.build(problem)
    losses = d.run(problem, optimizer, steps)
    if not all(math.isfinite(v) for v in losses):
        raise AssertionError(f"loss became non-finite: {losses}")
    bad = _nonfinite(optimizer, problem.parameters())
    if bad:
        raise AssertionError(bad)
    return f"{steps} steps, everything finite"


def _check_determinism(d: _Driver, steps: int) -> str:
    runs = []
    for _ in range(2):
        problem = d.problem()
        losses = d.run(problem, d.build(problem, seed=7), steps)
        runs.append((losses, _snapshot(problem.parameters())))
    (l1, x1), (l2, x2) = runs
    if l1 != l2 or not all(torch.equal(a, b) for a, b in zip(x1, x2)):
        first = next((i for i, (u, v) in enumerate(zip(l1, l2)) if u != v), None)
        where = f" (losses differ from step {first + 1})" if first is not None else ""
        raise AssertionError(f"two runs with seed 7 gave different trajectories{where}")
    return f"{steps} steps twice, identical"


def _check_frozen(d: _Driver, steps: int) -> str:
    problem = d.problem(all_params=True)
    m = problem.model
    frozen0, unused0 = m.frozen.detach().clone(), m.unused.detach().clone()
    optimizer = d.build(problem)
    d.run(problem, optimizer, steps)
    changed = []
    if not torch.equal(m.frozen, frozen0):
        changed.append("a parameter with requires_grad=False")
    if "loss_only" not in d.spec.requires and not torch.equal(m.unused, unused0):
        changed.append("a parameter whose gradient is None")
    if changed:
        raise AssertionError(" and ".join(changed) + " changed")
    return ("requires_grad=False parameter untouched" if "loss_only" in d.spec.requires
            else "requires_grad=False and grad-None parameters untouched")


def _check_requires(d: _Driver, seen: dict) -> str:
    if not seen:
        raise AssertionError("the progress run did not get far enough to tell")
    problem, steps, c = seen["problem"], seen["steps"], seen["counts"]
    if "loss_only" in d.spec.requires:
        grads = [i for i, p in enumerate(problem.parameters()) if p.grad is not None]
        if grads:
            raise AssertionError(f"declared loss_only, but parameters {grads} received gradients")
        if c.get("function_evals", 0) < steps:
            raise AssertionError(f"declared loss_only, but the closure was evaluated "
                                 f"{c.get('function_evals', 0)} times in {steps} steps")
        return f"loss_only: {c.get('function_evals', 0)} function evaluations, no backward, in {steps} steps"
    if c.get("backward", 0) < steps:
        raise AssertionError(f"the closure (forward + backward) was called {c.get('backward', 0)} "
                             f"times in {steps} steps: step(closure) must call it")
    extra = " with create_graph" if "create_graph" in d.spec.requires else ""
    return f"{c.get('backward', 0)} closure calls{extra} in {steps} steps"


def _check_counters(seen: dict) -> str | None:
    if not seen:
        raise AssertionError("the progress run did not get far enough to tell")
    counters = getattr(seen["optimizer"], "bench_counters", None)
    if counters is None:
        return None
    if not isinstance(counters, dict):
        raise AssertionError(f"bench_counters is a {type(counters).__name__}, not a dict")
    for k, v in counters.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise AssertionError(f"bench_counters[{k!r}] = {v!r}: expected a non-negative int")
    return ", ".join(f"{k}={v}" for k, v in sorted(counters.items())) or "empty"


def _check_eval_train(d: _Driver, steps: int) -> str | None:
    problem = d.problem()
    optimizer = d.build(problem)
    if not (callable(getattr(optimizer, "eval", None)) and callable(getattr(optimizer, "train", None))):
        return None
    d.run(problem, optimizer, steps)
    before = _snapshot(problem.parameters())
    optimizer.eval()
    optimizer.train()
    for i, (p, q) in enumerate(zip(problem.parameters(), before)):
        if not torch.allclose(p, q, rtol=1e-5, atol=1e-6):
            raise AssertionError(f"eval() then train() changed parameter {i}")
    return "eval() then train() restores the parameters"


# --------------------------------------------------------------------------- entry point
def check_optimizer(spec: OptimizerSpec | str, hparams: dict | None = None, *,
                    skip: dict | list | tuple = (), steps: int = 50, min_decrease: float = 0.05,
                    dtype: torch.dtype = torch.float32, raise_on_failure: bool = True) -> ConformanceReport:
    """Run the conformance checks on a training optimizer spec and return the report.

    `spec` is an ``OptimizerSpec`` or a registered name. `hparams` override the spec's
    defaults (as a suite's ``hparams`` do). `skip` names checks not to run (a dict may give the
    reason, shown in the report), e.g. ``{"param_groups": "LBFGS takes a single group"}``.
    `steps` is the length of the progress run, `min_decrease` the fraction the loss must fall
    in it. Raises AssertionError listing the failed checks unless ``raise_on_failure=False``.
    """
    if isinstance(spec, str):
        from .registry import get_registry

        spec = get_registry().optimizer(spec)
    if "training" not in spec.kinds:
        raise ValueError(f"optimizer {spec.name!r} has no kind 'training': the kit checks training optimizers")
    reasons = dict(skip) if isinstance(skip, dict) else {name: "" for name in skip}
    unknown = set(reasons) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown check(s) to skip: {sorted(unknown)} (checks: {', '.join(CHECKS)})")
    driver = _Driver(spec, {**spec.defaults, **(hparams or {})}, dtype)
    short = max(3, min(5, steps))
    seen: dict = {}  # what the progress run leaves for the requires and counters checks
    checks: dict[str, Callable[[], str | None]] = {
        "progress": lambda: _check_progress(driver, steps, min_decrease, seen),
        "param_groups": lambda: _check_param_groups(driver, 4 * short),
        "state_dict": lambda: _check_state_dict(driver, short, short),
        "zero_grad": lambda: _check_finite(driver, "zero", short),
        "sparse_grad": lambda: _check_finite(driver, "sparse", short),
        "determinism": lambda: _check_determinism(driver, short),
        "frozen": lambda: _check_frozen(driver, short),
        "requires": lambda: _check_requires(driver, seen),
        "counters": lambda: _check_counters(seen),
        "eval_train": lambda: _check_eval_train(driver, short),
    }
    report = ConformanceReport(spec.name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the kit's problem is tiny: more threads only add overhead
    try:
        _run_checks(report, checks, reasons, spec)
    finally:
        torch.set_num_threads(threads)
    if raise_on_failure and not report.passed:
        raise AssertionError(str(report))
    return report


def _run_checks(report: ConformanceReport, checks: dict, reasons: dict, spec: OptimizerSpec) -> None:
    for name in CHECKS:
        if name in reasons:
            report.results.append(CheckResult(name, None, reasons[name] or "skipped"))
            continue
        try:
            message = checks[name]()
        except AssertionError as exc:
            report.results.append(CheckResult(name, False, str(exc)))
        except Exception as exc:
            report.results.append(CheckResult(name, False, _error_message(exc, spec)))
        else:
            report.results.append(CheckResult(name, None if message is None else True,
                                              "does not apply" if message is None else message))


def _error_message(exc: Exception, spec: OptimizerSpec) -> str:
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    if "does not require grad" in text and "create_graph" not in spec.requires:
        text += " (does the optimizer need requires={'create_graph'}?)"
    if "does not require grad" in text and "loss_only" in spec.requires:
        text += " (declared loss_only: the closure runs under no_grad and must not be differentiated)"
    if "model" in text and isinstance(exc, TypeError) and "model" not in spec.requires:
        text += " (does the factory need requires={'model'}?)"
    return text


__all__ = ["CHECKS", "CheckResult", "ConformanceReport", "KitModel", "KitProblem", "check_optimizer"]
