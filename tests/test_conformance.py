"""The optimizer conformance kit: torch.optim passes it, deliberately broken optimizers fail the
check they break (and only that), and `bench check NAME` exits 0 / 1 / 2 (through the CLI's main, as the console script calls it)."""
from __future__ import annotations

import pytest
import torch

import bench_core
from bench_core.testing import CHECKS, KitProblem, check_optimizer


#: torch.optim optimizers that cannot run on a general problem, and what the kit says about them.
NOT_GENERAL = {
    "torch.sparseadam": "does not support dense gradients",
    "torch.muon": "only supports 2D parameters",
}
#: Checks a torch optimizer cannot pass by design.
TORCH_SKIPS = {"torch.lbfgs": {"param_groups": "LBFGS takes a single parameter group"}}


def torch_specs():
    reg = bench_core.get_registry()
    return sorted(n for n in reg.optimizers if n.startswith("torch.") and n not in NOT_GENERAL)


@pytest.mark.parametrize("name", torch_specs())
def test_torch_optimizers_pass(name):
    report = check_optimizer(bench_core.optimizer_spec(name), skip=TORCH_SKIPS.get(name, ()))
    assert report.passed
    assert [r.name for r in report.results] == list(CHECKS)


@pytest.mark.parametrize("name", sorted(NOT_GENERAL))
def test_special_purpose_torch_optimizers_fail_with_their_reason(name):
    report = check_optimizer(bench_core.optimizer_spec(name), raise_on_failure=False)
    assert not report.passed
    assert NOT_GENERAL[name] in report.failures[0].message


# --------------------------------------------------------------------------- broken optimizers
class SGDBase(torch.optim.Optimizer):
    """Plain SGD; the subclasses below each break one rule."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    def direction(self, p):
        return p.grad

    @torch.no_grad()
    def step(self, closure=None):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(self.direction(p), alpha=-self.lr_of(group))
        return loss

    def lr_of(self, group):
        return group["lr"]


class Ascends(SGDBase):
    def direction(self, p):
        return -p.grad


class GlobalLr(SGDBase):
    def lr_of(self, group):
        return self.param_groups[0]["lr"]


class LosesMomentum(SGDBase):
    """Heavy ball whose momentum buffer is kept outside ``self.state`` (lost by state_dict)."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, lr)
        self.buffers = {}

    def direction(self, p):
        buf = self.buffers.setdefault(p, torch.zeros_like(p))
        buf.mul_(0.9).add_(p.grad)
        return buf


class NormalizedNaN(SGDBase):
    """Per-coordinate normalization without an epsilon: 0 / 0 where a gradient entry is zero."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, lr)

    def direction(self, p):
        return p.grad / p.grad.abs().sqrt()


class Noisy(SGDBase):
    """Adds noise from an unseeded private generator: not reproducible."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, lr)
        self.gen = torch.Generator()
        self.gen.seed()

    def direction(self, p):
        return p.grad + 0.1 * torch.randn(p.shape, generator=self.gen, dtype=p.dtype)


class TouchesFrozen(SGDBase):
    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    p.mul_(0.99)  # e.g. weight decay applied without looking at the gradient
        return loss


class IgnoresClosure(torch.optim.Optimizer):
    """Uses whatever gradient is lying around and never calls the closure."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(0.9)
        return None


class BackwardInZeroOrder(SGDBase):
    """Declared loss_only but differentiates the loss."""

    @torch.no_grad()
    def step(self, closure=None):
        with torch.enable_grad():
            loss = closure()
            loss.backward()
        return loss


class BadCounters(SGDBase):
    def __init__(self, params, lr=0.1):
        super().__init__(params, lr)
        self.bench_counters = {"hvp": -1.5}


class EvalMoves(SGDBase):
    @torch.no_grad()
    def eval(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(1.0)

    def train(self):
        pass


BROKEN = [
    (Ascends, {}, "progress", "loss went from"),
    (GlobalLr, {}, "param_groups", "per-group lr is not honoured"),
    (LosesMomentum, {}, "state_dict", "after load_state_dict the run differs"),
    (NormalizedNaN, {}, "zero_grad", "non-finite"),
    (Noisy, {}, "determinism", "different trajectories"),
    (TouchesFrozen, {}, "frozen", "whose gradient is None changed"),
    (IgnoresClosure, {}, "requires", "must call it"),
    (BackwardInZeroOrder, {"requires": {"loss_only"}}, "progress", "does not require grad"),
    (BadCounters, {}, "counters", "non-negative int"),
    (EvalMoves, {}, "eval_train", "eval() then train() changed"),
]


@pytest.mark.parametrize("cls, extra, check, message", BROKEN, ids=[b[0].__name__ for b in BROKEN])
def test_broken_optimizer_fails_the_check_it_breaks(cls, extra, check, message):
    spec = bench_core.OptimizerSpec(name=f"broken.{cls.__name__.lower()}", factory=cls, **extra)
    report = check_optimizer(spec, raise_on_failure=False)
    failed = {r.name: r.message for r in report.failures}
    assert check in failed, str(report)
    assert message in failed[check], str(report)
    with pytest.raises(AssertionError, match=check):
        check_optimizer(spec)


def test_broken_sparse_gradient_handling_is_caught():
    spec = bench_core.OptimizerSpec(name="broken.nan", factory=NormalizedNaN)
    failed = {r.name for r in check_optimizer(spec, raise_on_failure=False).failures}
    assert {"zero_grad", "sparse_grad"} <= failed
    assert "progress" not in failed


def test_loss_only_optimizer_that_differentiates_is_told_why():
    spec = bench_core.OptimizerSpec(name="broken.zo", factory=BackwardInZeroOrder, requires={"loss_only"})
    report = check_optimizer(spec, raise_on_failure=False)
    assert "declared loss_only" in report.failures[0].message


def test_skip_with_reason_and_unknown_check():
    spec = bench_core.OptimizerSpec(name="broken.globallr", factory=GlobalLr)
    report = check_optimizer(spec, skip={"param_groups": "one lr by design"})
    assert report.passed
    assert any(r.name == "param_groups" and r.passed is None and "by design" in r.message for r in report.results)
    with pytest.raises(ValueError, match="unknown check"):
        check_optimizer(spec, skip=["nope"])


def test_kit_problem_modes():
    zero = KitProblem(mode="zero")
    loss = zero.loss(None)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert all(float(p.grad.abs().max()) == 0.0 for p in zero.parameters())
    sparse = KitProblem(mode="sparse")
    sparse.loss(None).backward()
    w = sparse.model.a.weight.grad
    assert float(w[0].abs().max()) > 0 and float(w[1:].abs().max()) == 0.0
    frozen = KitProblem(all_params=True)
    assert len(frozen.parameters()) == 6


def test_model_is_given_when_required():
    seen = []

    def factory(params, lr=0.1, model=None):
        seen.append(model)
        return torch.optim.SGD(params, lr=lr)

    spec = bench_core.OptimizerSpec(name="mine.withmodel", factory=factory, requires={"grad", "model"})
    check_optimizer(spec)
    assert seen and all(isinstance(m, torch.nn.Module) for m in seen)


# --------------------------------------------------------------------------- bench check
def test_bench_check_exit_codes(capsys):
    from bench_core.cli import main

    assert main(["check", "torch.adamw", "--steps", "20"]) == 0
    out = capsys.readouterr().out
    assert "state_dict" in out and "passed" in out
    assert main(["check", "torch.sparseadam"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["check", "torch.adamw", "--skip", "nope"]) == 2
    assert "unknown check" in capsys.readouterr().err
    assert main(["check", "torch.sgd", "--steps", "20", "--hparam", "lr=0.05", "--hparam", "momentum=0.0"]) == 0
    assert '"lr": 0.05' in capsys.readouterr().out
    assert main(["check", "sf.[as]*", "--steps", "20"]) == 0  # sf.adamw, sf.sgd
    assert "2 of 2 passed" in capsys.readouterr().out
    assert main(["check", "nothing.*"]) == 2
    assert main(["check", "torch.adamx"]) == 2
    assert "did you mean 'torch.adamax'" in capsys.readouterr().err
