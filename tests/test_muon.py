"""Muon (plugins/bench_optim/muon.py): Newton–Schulz, the Muon/AdamW split, agreement with
torch.optim.Muon and torch.optim.AdamW, and Muon on every training problem of the registry."""
from __future__ import annotations

import math

import pytest
import torch
from bench_optim.muon import Muon, lr_scale, newton_schulz, param_roles

import bench_core
from bench_core.testing import check_optimizer
from bench_core.training_loop import closure_for

BAND = (0.65, 1.25)  # where the quintic (3.4445, −4.7750, 2.0315) leaves converged singular values


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _problem(name: str, **params):
    spec = bench_core.problem_spec(name)
    return spec.factory(seed=0, device=torch.device("cpu"), dtype=torch.float32, **{**spec.params, **params})


# --------------------------------------------------------------------------- Newton–Schulz
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(16, 48), (48, 16), (100, 10), (4, 12, 36)])
def test_newton_schulz_singular_values_in_the_quintic_band(shape, dtype):
    G = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    O = newton_schulz(G, steps=5, dtype=dtype)
    assert O.dtype == dtype and O.shape == G.shape
    s = torch.linalg.svdvals(O.float())
    assert BAND[0] < float(s.min()) and float(s.max()) < BAND[1]


def test_newton_schulz_keeps_the_singular_vectors():
    gen = torch.Generator().manual_seed(1)
    U, _ = torch.linalg.qr(torch.randn(32, 32, generator=gen))
    V, _ = torch.linalg.qr(torch.randn(32, 32, generator=gen))
    G = U @ torch.diag(torch.linspace(1.0, 10.0, 32)) @ V.T  # square, condition number 10
    D = U.T @ newton_schulz(G) @ V
    off = D - torch.diag(torch.diagonal(D))
    assert float(off.abs().max()) < 1e-3
    assert BAND[0] < float(torch.diagonal(D).min()) and float(torch.diagonal(D).max()) < BAND[1]


def test_rank_one_gradient_gives_a_unit_rank_one_step_whatever_its_scale():
    gen = torch.Generator().manual_seed(2)
    u, v = torch.randn(24, generator=gen), torch.randn(8, generator=gen)
    uv = torch.outer(u / u.norm(), v / v.norm())
    O = newton_schulz(torch.outer(u, v))
    sigma = float((O * uv).sum())
    assert BAND[0] - 0.05 < sigma < BAND[1]  # a rank-1 input sits at 1 after normalization: 0.70 after 5 steps
    assert torch.allclose(O, sigma * uv, atol=1e-4)
    steps = []
    for scale in (1e-3, 1e3):
        W = torch.nn.Parameter(torch.zeros(24, 8))
        opt = Muon([W], lr=0.1)
        W.grad = scale * torch.outer(u, v)
        opt.step()
        steps.append(W.detach().clone())
    assert torch.allclose(steps[0], steps[1], atol=1e-5)  # orthogonalization removes the scale
    assert torch.allclose(steps[0], -0.1 * lr_scale((24, 8)) * sigma * uv, atol=1e-5)
    assert lr_scale((24, 8)) == math.sqrt(3) and lr_scale((8, 24)) == 1.0
    assert lr_scale((24, 8), "match_rms_adamw") == pytest.approx(0.2 * math.sqrt(24))


# --------------------------------------------------------------------------- agreement
@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="this torch has no torch.optim.Muon")
@pytest.mark.parametrize("nesterov", [True, False])
def test_bfloat16_update_equals_torch_optim_muon(nesterov):
    gen = torch.Generator().manual_seed(3)
    W0 = torch.randn(12, 20, generator=gen)
    grads = [torch.randn(12, 20, generator=gen) for _ in range(3)]
    a, b = torch.nn.Parameter(W0.clone()), torch.nn.Parameter(W0.clone())
    ours = Muon([a], lr=0.05, weight_decay=0.1, nesterov=nesterov, ns_dtype="bfloat16")
    ref = torch.optim.Muon([b], lr=0.05, weight_decay=0.1, nesterov=nesterov)
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="this torch has no torch.optim.Muon")
def test_conv_filters_are_orthogonalized_flattened():
    gen = torch.Generator().manual_seed(4)
    conv = torch.nn.Conv2d(3, 6, 3, bias=False)
    model = torch.nn.Sequential(conv, torch.nn.Flatten(), torch.nn.Linear(6, 2))  # the Linear is the head
    flat = torch.nn.Parameter(conv.weight.detach().reshape(6, -1).clone())
    ours = Muon([conv.weight], model=model, ns_dtype="bfloat16")
    ref = torch.optim.Muon([flat], lr=0.02, weight_decay=0.0)
    for _ in range(2):
        g = torch.randn(6, 3, 3, 3, generator=gen)
        conv.weight.grad, flat.grad = g.clone(), g.reshape(6, -1).clone()
        ours.step()
        ref.step()
    assert ours.param_groups[0]["use_muon"] == [True]
    assert torch.allclose(conv.weight.detach().reshape(6, -1), flat, atol=1e-6)


def test_adamw_part_equals_torch_adamw():
    gen = torch.Generator().manual_seed(5)
    x0 = torch.randn(7, generator=gen)
    a, b = torch.nn.Parameter(x0.clone()), torch.nn.Parameter(x0.clone())
    ours = Muon([a], adam_lr=1e-2, weight_decay=0.1)
    ref = torch.optim.AdamW([b], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for _ in range(5):
        g = torch.randn(7, generator=gen)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    assert ours.param_groups[0]["use_muon"] == [False]
    assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_adamw_lr_follows_the_group_lr():
    def first_move(group: dict, change_lr=None, **hp):
        b = torch.nn.Parameter(torch.zeros(3))
        opt = Muon([{"params": [b], **group}], adam_lr=3e-3, **hp)
        if change_lr is not None:
            opt.param_groups[0]["lr"] = change_lr  # what a schedule does
        b.grad = torch.ones(3)
        opt.step()
        return float(-b.detach()[0])

    assert first_move({}) == pytest.approx(3e-3, rel=1e-5)
    assert first_move({}, change_lr=0.01) == pytest.approx(1.5e-3, rel=1e-5)  # lr halved: both parts
    assert first_move({"lr": 0.002}) == pytest.approx(3e-4, rel=1e-5)  # own lr keeps the default ratio
    assert first_move({"lr": 0.002, "adam_lr": 1e-2}) == pytest.approx(1e-2, rel=1e-5)


def test_use_muon_overrides_and_refuses_vectors():
    W, b = torch.nn.Parameter(torch.zeros(4, 4)), torch.nn.Parameter(torch.zeros(4))
    opt = Muon([{"params": [W], "use_muon": False}, {"params": [b]}])
    assert [g["use_muon"] for g in opt.param_groups] == [[False], [False]]
    with pytest.raises(ValueError, match="use_muon=True"):
        Muon([{"params": [b], "use_muon": True}])
    roles = Muon([{"params": [W, b], "role": "hidden"}, {"params": [torch.nn.Parameter(torch.zeros(3, 4))],
                                                          "role": "output"}])
    assert [g["use_muon"] for g in roles.param_groups] == [[True, False], [False]]


# --------------------------------------------------------------------------- which tensors
def test_roles_on_digits_mlp():
    p = _problem("vision.digits_mlp", width=16)
    names = [n for n, _ in p.model.named_parameters()]
    roles = dict(zip(names, param_roles([q for _, q in p.model.named_parameters()], p.model)))
    assert roles == {"1.weight": "hidden", "1.bias": "vector", "3.weight": "output", "3.bias": "output"}
    opt = bench_core.optimizer_spec("muon").factory(p.parameters(), model=p.model)
    assert opt.bench_counters == {"muon_tensors": 1, "adamw_tensors": 3}


def test_roles_on_char_gpt():
    p = _problem("lm.char_gpt", size="tiny")
    named = list(p.model.named_parameters())  # the head is tied to the token embedding
    roles = dict(zip([n for n, _ in named], param_roles([q for _, q in named], p.model)))
    assert p.model.head.weight is p.model.tok.weight
    assert {n for n, r in roles.items() if r == "hidden"} == {
        f"blocks.0.{m}.weight" for m in ("qkv", "proj", "mlp.0", "mlp.2")}
    assert roles["tok.weight"] == "embedding" and roles["pos.weight"] == "embedding"
    assert all(r == "vector" for n, r in roles.items() if "ln" in n or n.endswith("bias"))


def test_roles_of_convolutions_and_bare_parameters():
    p = _problem("vision.synthetic_resnet", width=4, image_size=8, n_train=32, n_val=16)
    roles = param_roles(p.parameters(), p.model)
    convs = [m.weight for m in p.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [r for q, r in zip(p.parameters(), roles) if any(q is c for c in convs)] == ["conv"] * len(convs)
    assert roles[-2:] == ["output", "output"]  # the Linear head
    assert set(roles[:-2]) == {"conv", "vector"}  # and BatchNorm gains and shifts
    fno = _problem("pde.fno_darcy", resolution=8, n_train=4, n_val=2, width=4, modes=2, layers=1)
    fno_roles = dict(zip([n for n, _ in fno.model.named_parameters()], param_roles(fno.parameters(), fno.model)))
    assert fno_roles["project.2.weight"] == "output"  # no Linear layer: the last convolution is the head
    assert {fno_roles[n] for n in fno_roles if n.startswith("spectral")} == {"other"}  # 5-D spectral weights
    # no model: the 2-D rule alone
    assert param_roles([torch.zeros(3, 4), torch.zeros(5), torch.zeros(2, 3, 4)]) == ["hidden", "vector", "other"]


# --------------------------------------------------------------------------- every training problem
#: Small parameters for every training problem of the registry: all of them run here, none is
#: skipped (a problem missing from this table fails test_every_training_problem_is_listed).
SMALL = {
    "lm.char_gpt": dict(size="tiny", eval_batches=1),
    "lm.modular_arithmetic": dict(p=7, d=16, heads=2),
    "pde.fno_darcy": dict(resolution=8, n_train=20, n_val=10, width=8, modes=3, layers=1, batch_size=10),
    "pde.pinn_poisson": dict(width=8, n_interior=64, n_boundary=16),
    "synthetic.kron_quadratic": dict(m=8, n=8, condition=10.0),
    "synthetic.logreg": dict(),
    "synthetic.matrix_sensing": dict(n=8, rank=2, k=3),
    "synthetic.noisy_quadratic": dict(dim=10),
    "synthetic.quadratic": dict(dim=10, condition=10.0),
    "synthetic.rosenbrock": dict(),
    "vision.digits_mlp": dict(width=16),
    "vision.mnist_cnn": dict(channels=2),
    "vision.mnist_mlp": dict(width=16),
    "vision.synthetic_resnet": dict(width=4, image_size=8, n_train=64, n_val=32, batch_size=16),
}
#: Problems whose every tensor goes to the AdamW part (vectors; a single Linear layer is the
#: output layer): Muon is AdamW there, as the field uses it.
ADAMW_ONLY = {"synthetic.quadratic", "synthetic.noisy_quadratic", "synthetic.rosenbrock", "synthetic.logreg"}


class _Counts:
    """Stands in for the runner's TrialContext (the closure counts its calls here)."""

    def count(self, name: str, n: int = 1) -> None:
        pass


def test_every_training_problem_is_listed():
    training = {n for n, s in bench_core.get_registry().problems.items() if s.kind == "training"}
    assert training == set(SMALL), "add new training problems to SMALL (small params) in tests/test_muon.py"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_muon_lowers_the_loss(name):
    problem = _problem(name, **SMALL[name])
    spec = bench_core.optimizer_spec("muon")  # the registered factory (with the schedule hparams)
    opt = spec.factory(problem.parameters(), model=problem.model, lr=0.02, adam_lr=3e-3)
    closure, batch_box, _ = closure_for(_Counts(), problem, opt, spec.requires)  # the runner's closure
    with torch.no_grad():
        before = problem.evaluate()["loss"]
    for step in range(1, 21):
        batch_box[0] = problem.batch(step)
        opt.step(closure)
    with torch.no_grad():
        after = problem.evaluate()["loss"]
    assert math.isfinite(after) and after < before
    assert (opt.bench_counters["muon_tensors"] == 0) == (name in ADAMW_ONLY)


def test_conformance_kit_passes():
    report = check_optimizer("muon")
    assert report.passed, str(report)
    assert {r.name for r in report.results if r.passed} >= {"progress", "param_groups", "state_dict", "frozen"}
