"""The interfaces problem instances and linear solvers implement, one per problem kind.

A ``ProblemSpec.factory`` returns one of these; the runner drives them. Plugins subclass
``TrainingProblem`` or build ``LinearSystemProblem`` directly.

A training problem may label its tensors with parameter roles (``param_roles()``, a list of
``ParamRole``): ``ROLES`` are "input" (weights from a fixed-size input to the width: embeddings,
first layers), "hidden" (width-to-width matrices), "output" (width to a fixed-size output: the
readout) and "vector" (biases, norm gains, other non-matrix tensors). With a width multiplier
per tensor these are what μP needs ("Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer"); ``bench_core.parametrization`` turns them into param groups.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch

#: The parameter roles of μP-style parametrizations (see ``ParamRole``).
ROLES = ("input", "hidden", "output", "vector")


@dataclass
class ParamRole:
    """One tensor's role in a width-parametrized model, and its width multiplier.

    ``width_mult`` is the tensor's width dimension divided by that dimension in the problem's
    declared base model (μP's width multiplier; 1 at the base width): for "input" weights their
    fan-out, for "hidden" and "output" weights their fan-in, for a "vector" its length (1 for a
    tensor whose size does not grow with width, such as the output bias).
    """

    param: torch.Tensor
    role: str
    width_mult: float = 1.0

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"ParamRole: role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not (isinstance(self.width_mult, (int, float)) and self.width_mult > 0):
            raise ValueError(f"ParamRole: width_mult must be a positive number, got {self.width_mult!r}")
        self.width_mult = float(self.width_mult)


class TrainingProblem:
    """A model (or bare parameters), batches, a loss, and an evaluation.

    Subclasses set ``self.model`` (an ``nn.Module``, or None for bare parameters, in which case
    they override ``parameters()``) and implement ``loss`` and ``evaluate``.
    """

    model: torch.nn.Module | None = None
    #: "sp" (standard), "mup" or "umup"; anything but "sp" makes the training loop build the
    #: optimizer on ``bench_core.parametrization.param_groups`` (per-role learning rates).
    parametrization: str = "sp"

    def parameters(self) -> list[torch.Tensor]:
        """The tensors the optimizer updates."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def param_roles(self) -> list[ParamRole] | None:
        """Optional: every tensor of ``parameters()`` with its role and width multiplier
        (``ParamRole``), or None (the default) when the problem has no width parametrization."""
        return None

    def batch(self, step: int) -> Any:
        """The batch for step `step` (1-based); deterministic per seed. Default: full batch."""
        return None

    def loss(self, batch: Any) -> torch.Tensor:
        """The scalar training loss on `batch`, differentiable with respect to the parameters."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Metric values (at least ``loss``) at the current parameters; excluded from timing."""
        raise NotImplementedError


@dataclass
class LinearSystem:
    """One system A x = b. ``A`` is a torch sparse CSR (or dense) tensor on the problem's device."""

    A: torch.Tensor
    b: torch.Tensor
    x_exact: torch.Tensor | None = None
    name: str = ""
    info: dict = field(default_factory=dict)
    _scipy: Any = field(default=None, repr=False)
    _host: Any = field(default=None, repr=False, compare=False)  # metrics()' host buffers

    @property
    def n(self) -> int:
        """Number of unknowns."""
        return int(self.b.shape[0])

    @classmethod
    def from_scipy(cls, a, b=None, x_exact=None, device="cpu", dtype=torch.float64, name: str = "",
                   info: dict | None = None) -> "LinearSystem":
        """A system from a scipy sparse matrix and numpy vectors; b defaults to A @ x_exact."""
        a = a.tocsr().astype(np.float64)
        a.sort_indices()
        if b is None:
            b = a @ x_exact
        as_t = lambda v: None if v is None else torch.from_numpy(np.asarray(v, np.float64)).to(device, dtype)  # noqa: E731
        return cls(A=csr_from_scipy(a, device, dtype), b=as_t(b), x_exact=as_t(x_exact), name=name,
                   info=dict(info or {}), _scipy=a)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """A @ x. On the CPU through scipy's CSR kernel (torch's CPU CSR product is many times
        slower on small systems); elsewhere torch's product."""
        if x.device.type == "cpu" and x.dim() == 1 and x.dtype in (torch.float32, torch.float64):
            return torch.from_numpy(self.scipy() @ x.detach().numpy()).to(x.dtype)
        return self.A @ x

    def scipy(self):
        """A as a scipy.sparse CSR matrix (float64, on the host), for reference solvers."""
        if self._scipy is None:
            import scipy.sparse as sp

            if self.A.layout == torch.sparse_csr:
                A = self.A.to("cpu", torch.float64)
                self._scipy = sp.csr_matrix(
                    (A.values().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()),
                    shape=tuple(A.shape))
            else:
                self._scipy = sp.csr_matrix(self.A.to("cpu", torch.float64).numpy())
        return self._scipy

    def metrics(self, x) -> dict[str, float]:
        """rel_residual = ||b - A x|| / ||b||, and rel_error = ||x - x*|| / ||x*|| when x* is known.

        An iterate on the host (a numpy array or a CPU tensor) is measured in float64 with numpy
        and scipy's CSR product, into buffers kept between calls: the runner calls this after every
        solver iteration, and torch's temporaries there slowed the solver's next (timed) iteration
        by about 30 % (benchmarks/thread_policy.py --eval-loop). Elsewhere (GPU) torch in the
        system's dtype."""
        host = _host_vector(x)
        if host is None:
            x = as_tensor(x, like=self.b)
            r = self.b - self.matvec(x)
            out = {"rel_residual": float(torch.linalg.vector_norm(r) / torch.linalg.vector_norm(self.b))}
            if self.x_exact is not None:
                out["rel_error"] = float(torch.linalg.vector_norm(x - self.x_exact)
                                         / torch.linalg.vector_norm(self.x_exact))
            return out
        return self._host_metrics().measure(host)

    def _host_metrics(self) -> "_HostMetrics":
        """The float64 host copies and buffers of metrics(), made on first use."""
        if self._host is None:
            self._host = _HostMetrics(self)
        return self._host


def _host_vector(x) -> np.ndarray | None:
    """`x` as a 1-D float64 numpy array (a view where possible) when it lives on the host, else None."""
    if isinstance(x, torch.Tensor):
        if x.device.type != "cpu" or x.is_complex() or not x.is_floating_point():
            return None
        x = x.detach().numpy()
    elif not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        return None
    return np.asarray(x, dtype=np.float64).reshape(-1)


class _HostMetrics:
    """metrics() for host iterates: b, x* and their norms in float64, and two work vectors."""

    def __init__(self, system: "LinearSystem"):
        self.A = system.scipy()
        self.b = system.b.detach().to("cpu", torch.float64).numpy().reshape(-1)
        self.norm_b = float(np.linalg.norm(self.b))
        self.x_exact = None
        if system.x_exact is not None:
            self.x_exact = system.x_exact.detach().to("cpu", torch.float64).numpy().reshape(-1)
            self.norm_x = float(np.linalg.norm(self.x_exact))
        self.work = np.empty_like(self.b)

    def measure(self, x: np.ndarray) -> dict[str, float]:
        """The metrics of the float64 host iterate `x`."""
        np.subtract(self.b, self.A @ x, out=self.work)
        out = {"rel_residual": float(np.linalg.norm(self.work) / self.norm_b)}
        if self.x_exact is not None:
            np.subtract(x, self.x_exact, out=self.work)
            out["rel_error"] = float(np.linalg.norm(self.work) / self.norm_x)
        return out


def csr_from_scipy(a, device="cpu", dtype=torch.float64) -> torch.Tensor:
    """A scipy sparse matrix as a torch sparse CSR tensor on `device` with `dtype`."""
    a = a.tocsr()
    a.sort_indices()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            torch.from_numpy(a.indptr.astype(np.int64)), torch.from_numpy(a.indices.astype(np.int64)),
            torch.from_numpy(np.asarray(a.data, dtype=np.float64)), size=a.shape).to(device=device, dtype=dtype)


def as_tensor(x, like: torch.Tensor) -> torch.Tensor:
    """Convert a numpy array or tensor to a tensor with `like`'s device and dtype."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    return x.to(device=like.device, dtype=like.dtype).reshape(like.shape)


class LinearSystemProblem:
    """One linear system, or a sequence of related systems solved in turn by the same solver."""

    def __init__(self, systems: list[LinearSystem] | Callable[[], Iterator[LinearSystem]]):
        self._systems = systems

    def systems(self) -> Iterator[LinearSystem]:
        """The systems, in order; a solver object sees them all (it may learn across them)."""
        return iter(self._systems() if callable(self._systems) else self._systems)


class StopSolve(Exception):
    """Raised by the runner's callback to stop a linear solve (target, budget or divergence)."""


class LinearSolver(Protocol):
    """What a linear-system ``OptimizerSpec.factory(**hparams)`` returns.

    ``setup(system)`` (optional) does the work done once per matrix (factorization, AMG
    hierarchy); it is timed apart as setup time and counts towards time-to-target.
    ``solve(b, x0, maxiter, callback)`` iterates from x0, calls ``callback(xk)`` after every
    iteration, and returns the last iterate; the callback may raise StopSolve, which the solver
    lets through. Iterations are counted by callback calls.
    """

    def setup(self, system: LinearSystem) -> None: ...

    def solve(self, b: torch.Tensor, x0: torch.Tensor, maxiter: int,
              callback: Callable[[Any], None]) -> Any: ...
