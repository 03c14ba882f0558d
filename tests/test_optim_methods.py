"""bench_optim's own methods: conformance, agreement with pytorch-optimizer, and the properties
each paper claims (Hutchinson exactness, seed-regenerated directions, scale invariance, ...)."""
from __future__ import annotations

import json
import types

import pytest
import torch

import bench_core
from bench_core.registry import build_registry
from bench_core.runner import run_trial
from bench_core.suite import Trial
from bench_core.testing import check_optimizer
from bench_optim.adahessian import AdaHessian
from bench_optim.deepzero import DeepZero
from bench_optim.diffgrad import DiffGrad
from bench_optim.mars import MARS
from bench_optim.mezo import MeZO
from bench_optim.polyak import SANIA, Polyak
from bench_optim.sam import SAM

pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: one thread is faster and steadier


OWN = ["diffgrad", "adahessian", "sam", "asam", "mezo", "deepzero", "mars", "mars_exact", "polyak", "sania",
       "sania_hutchinson", "sf.adamw", "sf.sgd", "sf.radam"]


@pytest.mark.parametrize("name", OWN)
def test_own_methods_pass_the_conformance_kit(name):
    report = check_optimizer(bench_core.optimizer_spec(name))
    assert report.passed


def test_scheduled_optimizers_pass_the_conformance_kit():
    spec = bench_core.optimizer_spec("torch.adamw")
    check_optimizer(spec, {"schedule": "cosine", "schedule_warmup": 3, "schedule_steps": 50})
    check_optimizer(spec, {"schedule": "sgdr", "schedule_period": 4, "schedule_mult": 2})


# --------------------------------------------------------------------------- helpers
def quadratic(dim=10, condition=10.0, noise=0.0, dtype=torch.float64, seed=0):
    spec = bench_core.problem_spec("synthetic.quadratic")
    return spec.factory(seed=seed, device=torch.device("cpu"), dtype=dtype, dim=dim, condition=condition, noise=noise)


def logreg(dtype=torch.float64, seed=0, l2=1e-4):
    spec = bench_core.problem_spec("synthetic.logreg")
    return spec.factory(seed=seed, device=torch.device("cpu"), dtype=dtype, l2=l2)


def logreg_no_l2():
    return logreg(l2=0.0)


def trajectory(make_opt, problem, steps, create_graph=False, grads_first=False, seed=0):
    """Parameters after each step, driving the optimizer with a standard closure."""
    torch.manual_seed(seed)
    params = problem.parameters()
    opt = make_opt(params)
    box = [None]

    def closure():
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = problem.loss(box[0])
            loss.backward(create_graph=create_graph)
        return loss

    out = []
    for step in range(1, steps + 1):
        box[0] = problem.batch(step)
        if grads_first:  # pytorch-optimizer's SAM expects the gradient before step()
            closure()
        opt.step(closure)
        out.append(torch.cat([p.detach().reshape(-1).clone() for p in params]))
    return torch.stack(out)


# --------------------------------------------------------------------------- ours vs pytorch-optimizer
po = pytest.importorskip("pytorch_optimizer")
own = types.SimpleNamespace(**{c.__name__: c for c in (DiffGrad, AdaHessian, SAM, MARS, MeZO, DeepZero, Polyak,
                                                          SANIA)})


@pytest.mark.parametrize("make_problem", [quadratic, logreg_no_l2], ids=["quadratic", "logreg"])
def test_diffgrad_matches_pytorch_optimizer(make_problem):
    ours = trajectory(lambda p: own.DiffGrad(p, lr=0.01), make_problem(), 30)
    theirs = trajectory(lambda p: po.DiffGrad(p, lr=0.01, foreach=False), make_problem(), 30)
    # by design: eps is added to √v̂ (as in the paper and Adam) where pytorch-optimizer adds it to
    # √v before the bias correction, i.e. an effective eps/√(1-β2^t). That matters only for
    # gradients of the order of eps, e.g. the l2 term alone on the digits' constant pixels, so
    # logreg is compared without l2 (those weights then get exactly zero gradients in both) and
    # to 1e-3 absolute (steps of near-constant pixels still differ), against moves of ~0.1.
    tight = make_problem is quadratic
    torch.testing.assert_close(ours, theirs, rtol=1e-5 if tight else 0, atol=1e-7 if tight else 1e-3)
    assert float((ours[-1] - ours[0]).abs().max()) > 0.05


@pytest.mark.parametrize("make_problem", [quadratic, logreg], ids=["quadratic", "logreg"])
def test_adahessian_matches_pytorch_optimizer(make_problem):
    ours = trajectory(lambda p: own.AdaHessian(p, lr=0.05, eps=1e-4), make_problem(), 20, create_graph=True)
    theirs = trajectory(lambda p: po.AdaHessian(p, lr=0.05, eps=1e-4, foreach=False), make_problem(), 20,
                        create_graph=True)
    # same Rademacher draws in the same order; no spatial averaging applies to 1-D/2-D parameters
    # (pytorch-optimizer has none at all: for conv kernels the two differ by design)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_matches_pytorch_optimizer(adaptive):
    ours = trajectory(lambda p: own.SAM(p, lr=0.05, rho=0.05, adaptive=adaptive, eta=0.0, momentum=0.9),
                      logreg(), 20)
    theirs = trajectory(lambda p: po.SAM(p, torch.optim.SGD, rho=0.05, adaptive=adaptive, lr=0.05, momentum=0.9,
                                         foreach=False),
                        logreg(), 20, grads_first=True)
    # by design: ours evaluates the first gradient inside step() through the closure (2 calls per
    # step, as the runner drives it); ASAM's eta is 0 here because pytorch-optimizer has none
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("make_problem", [quadratic, logreg_no_l2], ids=["quadratic", "logreg"])
def test_mars_approximate_matches_pytorch_optimizer(make_problem):
    ours = trajectory(lambda p: own.MARS(p, lr=3e-3), make_problem(), 30)
    theirs = trajectory(lambda p: po.MARS(p, lr=3e-3, optimize_1d=True, foreach=False), make_problem(), 30)
    # by design: pytorch-optimizer sends 1-D parameters to plain AdamW unless optimize_1d=True,
    # and places eps as in diffGrad above (same tolerances, same reason)
    tight = make_problem is quadratic
    torch.testing.assert_close(ours, theirs, rtol=1e-5 if tight else 0, atol=1e-7 if tight else 1e-3)
    assert float((ours[-1] - ours[0]).abs().max()) > 0.05


# --------------------------------------------------------------------------- method properties
def test_mars_exact_equals_approximate_on_full_batch_and_differs_with_noise():
    full = [trajectory(lambda p, e=e: own.MARS(p, lr=0.01, exact=e), quadratic(), 15) for e in (False, True)]
    torch.testing.assert_close(full[0], full[1])  # same batch every step: same previous gradient
    noisy = [trajectory(lambda p, e=e: own.MARS(p, lr=0.01, exact=e), quadratic(noise=0.1), 15) for e in (False, True)]
    assert not torch.allclose(noisy[0], noisy[1])


def test_adahessian_hutchinson_is_exact_for_a_diagonal_hessian_and_counts_hvps():
    h = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64)
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = own.AdaHessian([x], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (h * x * x).sum()
        loss.backward(create_graph=True)
        return loss

    for _ in range(3):
        opt.step(closure)
    torch.testing.assert_close(opt.state[x]["hess"], h)  # z ⊙ Hz = diag(H) when H is diagonal
    assert opt.bench_counters["hvp"] == 3
    assert not x.grad.requires_grad  # the create_graph graph is released after the step


def test_adahessian_spatial_averaging_of_conv_kernels():
    conv = torch.nn.Conv2d(2, 3, 3).double()
    x = torch.randn(4, 2, 5, 5, dtype=torch.float64)
    opt = own.AdaHessian(conv.parameters(), lr=0.01)

    def closure():
        opt.zero_grad()
        loss = (conv(x) ** 2).mean() + (conv.weight ** 4).sum()
        loss.backward(create_graph=True)
        return loss

    opt.step(closure)
    d = opt.state[conv.weight]["hess"]
    assert torch.equal(d, d[:, :, :1, :1].expand_as(d))  # one value per (out, in) kernel
    assert (d >= 0).all()


def test_mezo_regenerates_its_direction_from_the_seed():
    problem = quadratic(dim=5)
    x = problem.parameters()[0]
    opt = own.MeZO([x], lr=0.1, eps=1e-3, seed=123)
    losses = []

    def closure():
        loss = problem.loss(None)
        losses.append(float(loss))
        return loss

    x0 = x.detach().clone()
    with torch.no_grad():
        opt.step(closure)
    seed = (123 * 1_000_003 + 1 * 1009 + 0) % (2**63 - 1)
    z = torch.randn(5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    projected = (losses[0] - losses[1]) / 2e-3
    torch.testing.assert_close(x.detach(), x0 - 0.1 * projected * z, rtol=1e-9, atol=1e-12)
    assert losses[0] == pytest.approx(float(problem._loss(x0 + 1e-3 * z)), rel=1e-12)
    assert x.grad is None and opt.bench_counters["zo_directions"] == 1


def test_deepzero_coordinate_estimate_is_the_gradient():
    problem = quadratic(dim=6)
    x = problem.parameters()[0]
    with torch.no_grad():
        x.add_(0.3)
    grad = torch.autograd.grad(problem.loss(None), x)[0]
    x0 = x.detach().clone()
    opt = own.DeepZero([x], lr=1.0, eps=1e-7, momentum=0.0)
    with torch.no_grad():
        opt.step(lambda: problem.loss(None))
    torch.testing.assert_close(x0 - x.detach(), grad, rtol=1e-4, atol=1e-6)


def test_deepzero_sparse_coordinates_estimate_only_n_coords():
    problem = quadratic(dim=20)
    x = problem.parameters()[0]
    with torch.no_grad():
        x.add_(0.3)
    x0 = x.detach().clone()
    calls = []
    opt = own.DeepZero([x], lr=1.0, eps=1e-6, momentum=0.0, n_coords=5, seed=1)
    with torch.no_grad():
        opt.step(lambda: calls.append(1) or problem.loss(None))
    assert len(calls) == 6 and int((x.detach() != x0).sum()) == 5


def test_polyak_step_size():
    problem = quadratic(dim=4)
    x = problem.parameters()[0]
    loss = problem.loss(None)
    g = torch.autograd.grad(loss, x)[0]
    expected = x.detach() - min(float(loss.detach()) / (0.5 * float(g @ g)), 10.0) * g
    opt = own.Polyak([x], lr=1.0, c=0.5)

    def closure():
        opt.zero_grad()
        value = problem.loss(None)
        value.backward()
        return value

    opt.step(closure)
    torch.testing.assert_close(x.detach(), expected)


@pytest.mark.parametrize("precond", ["adagrad_sqr", "adam_sqr"])
def test_sania_is_scale_invariant(precond):
    """Running on f(D y) gives y_t = D⁻¹ x_t: SANIA's claim, with the squared (SQR) metric."""
    problem = quadratic(dim=6)
    scale = torch.tensor([1e-2, 0.1, 1.0, 10.0, 100.0, 3.0], dtype=torch.float64)
    x = torch.full((6,), 0.5, dtype=torch.float64, requires_grad=True)
    y = (x.detach() / scale).requires_grad_()

    def run(param, f):
        opt = own.SANIA([param], lr=0.5, precond=precond, eps=1e-300)
        for _ in range(10):
            def closure():
                opt.zero_grad()
                loss = f(param)
                loss.backward()
                return loss
            opt.step(closure)
        return param.detach()

    xs = run(x, problem._loss)
    ys = run(y, lambda v: problem._loss(scale * v))
    torch.testing.assert_close(scale * ys, xs, rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------- schedules
def test_schedule_factors():
    from bench_optim.schedules import lr_factor

    cos = [lr_factor(t, "cosine", schedule_warmup=2, schedule_steps=4) for t in range(8)]
    assert cos[:2] == [0.5, 1.0] and cos[2] == 1.0
    assert cos[4] == pytest.approx(0.5) and cos[6] == pytest.approx(0.0) and cos[7] == pytest.approx(0.0)
    sgdr = [lr_factor(t, "sgdr", schedule_period=2, schedule_mult=2, schedule_min_lr=0.1) for t in range(8)]
    # cycles of 2, 4, 8 steps: restarts at t = 2 and t = 6
    assert sgdr[0] == sgdr[2] == sgdr[6] == 1.0
    assert sgdr[1] == pytest.approx(0.55) and sgdr[4] == pytest.approx(0.55)


def test_scheduled_lr_follows_the_schedule_and_survives_state_dict():
    spec = bench_core.optimizer_spec("torch.sgd")
    x = torch.zeros(2, requires_grad=True)
    opt = spec.factory([x], lr=1.0, momentum=0.0, schedule="cosine", schedule_steps=4)
    lrs = []
    for _ in range(5):
        opt.step(lambda: (x.sum()).backward())
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1.0, 0.853553, 0.5, 0.146447, 0.0], abs=1e-6)
    saved = opt.state_dict()
    again = spec.factory([x], lr=1.0, momentum=0.0, schedule="cosine", schedule_steps=4)
    again.load_state_dict(saved)
    assert again.param_groups[0]["schedule_step"] == 5 and again.param_groups[0]["initial_lr"] == 1.0


def test_schedule_hparams_are_validated_by_the_suite():
    from bench_core.suite import parse_suite

    base = {"problems": [{"name": "synthetic.quadratic"}]}
    ok = parse_suite({**base, "optimizers": [{"name": "torch.adamw", "hparams": {"schedule": "sgdr",
                                                                                 "schedule_period": 10}}]},
                     "s.toml", bench_core.get_registry())
    assert ok.trials[0].hparams["schedule"] == "sgdr"
    with pytest.raises(bench_core.BenchInputError, match="schedule_perod"):
        parse_suite({**base, "optimizers": [{"name": "torch.adamw", "hparams": {"schedule_perod": 10}}]},
                    "s.toml", bench_core.get_registry())
    with pytest.raises(bench_core.BenchInputError, match="schedule_period"):
        parse_suite({**base, "optimizers": [{"name": "mars", "hparams": {"schedule_period": "x"}}]},
                    "s.toml", bench_core.get_registry())


# --------------------------------------------------------------------------- through the runner
class _OnceDifferentiable(torch.autograd.Function):
    """x ↦ x³ whose backward cannot itself be differentiated."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x ** 2 * g


class CubeProblem(bench_core.TrainingProblem):
    def __init__(self, seed, device, dtype):
        self.x = torch.ones(3, device=device, dtype=dtype, requires_grad=True)

    def parameters(self):
        return [self.x]

    def loss(self, batch):
        return _OnceDifferentiable.apply(self.x).sum() ** 2 * 0.01

    def evaluate(self):
        return {"loss": float(self.loss(None))}


@pytest.fixture(scope="module")
def registry():
    plugin = types.ModuleType("optim_test_problems")

    @bench_core.hookimpl
    def bench_problems():
        return [bench_core.ProblemSpec(name="test.once_differentiable", kind="training", factory=CubeProblem)]

    plugin.bench_problems = bench_problems
    return build_registry(plugins=[("optim_test_problems", plugin)])


def run(registry, problem, optimizer, hparams=None, params=None, steps=20):
    spec, opt = registry.problem(problem), registry.optimizer(optimizer)
    trial = Trial(suite="t", problem=problem, params={**spec.params, **(params or {})}, kind="training",
                  optimizer=optimizer, hparams={**opt.defaults, **(hparams or {})}, seed=0, device="cpu",
                  dtype="float32", budget={"max_steps": steps}, targets={}, eval={})
    row, _ = run_trial(trial, registry)
    return row


@pytest.mark.parametrize("name", ["adahessian", "sania_hutchinson"])
def test_create_graph_through_an_op_without_double_backward_is_a_clear_error(registry, name):
    row = run(registry, "test.once_differentiable", name)
    assert row["status"] == "error"
    assert "double backward" in row["error"] and "does not support" in row["error"]


def test_first_order_methods_run_on_it(registry):
    assert run(registry, "test.once_differentiable", "diffgrad")["status"] == "ok"


def test_po_optimizer_that_cannot_run_on_a_problem_is_an_error_row(registry):
    row = run(registry, "synthetic.quadratic", "po.spectralsphere", params={"dim": 5})
    assert row["status"] == "error" and "2D parameters" in row["error"]


def test_counters_make_zeroth_and_first_order_comparable(registry):
    zo = run(registry, "synthetic.quadratic", "mezo", {"n_directions": 2}, {"dim": 5}, steps=10)
    fo = run(registry, "synthetic.quadratic", "sam", None, {"dim": 5}, steps=10)
    hvp = run(registry, "synthetic.quadratic", "adahessian", None, {"dim": 5}, steps=10)
    assert zo["counters"]["function_evals"] == 40 and "backward" not in zo["counters"]
    assert zo["counters"]["zo_directions"] == 20
    assert fo["counters"]["forward"] == fo["counters"]["backward"] == 20
    assert hvp["counters"]["hvp"] == 10 and hvp["counters"]["backward"] == 10
    assert json.loads(zo["hparams"])["n_directions"] == 2


def test_schedulefree_is_evaluated_in_eval_mode(registry, monkeypatch):
    import schedulefree

    modes = []
    real_eval = schedulefree.AdamWScheduleFree.eval

    def spy_eval(self):
        modes.append("eval")
        return real_eval(self)

    monkeypatch.setattr(schedulefree.AdamWScheduleFree, "eval", spy_eval)
    row = run(registry, "synthetic.quadratic", "sf.adamw", {"lr": 0.1}, {"dim": 5}, steps=10)
    assert row["status"] == "ok"
    assert len(modes) == row["counters"]["evaluations"] >= 2
