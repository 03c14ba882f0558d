"""K-FAC (kfac, kfac.mkor_h): one step against a dense Kronecker reference, Conv2d layers, the
MKOR-H fallback, failure modes, conformance, and synthetic.logreg through `bench run`."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench_core.testing import check_optimizer
from bench_optim.kfac import KFAC
from conftest import run_bench


def test_step_matches_dense_kronecker_reference():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3).double()
    x = torch.randn(16, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (16,))
    w0, b0 = layer.weight.detach().clone(), layer.bias.detach().clone()
    opt = KFAC(list(layer.parameters()), model=layer, lr=0.1, momentum=0.0, damping=0.05,
               inv_every=1, kl_clip=None)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(layer(x), y)
        loss.backward()
        return loss
    opt.step(closure)

    # reference: A = E[a aᵀ] (a with a 1), G = B·E[g gᵀ] (g: grads of the mean loss wrt outputs)
    out = (x @ w0.T + b0).requires_grad_()
    g_out, = torch.autograd.grad(F.cross_entropy(out, y), out)
    a = torch.cat([x, torch.ones(16, 1, dtype=torch.float64)], 1)
    A = a.T @ a / 16
    G = (16 * g_out).T @ (16 * g_out) / 16
    grad = torch.cat([g_out.T @ x, g_out.sum(0)[:, None]], 1)  # out × (in + 1)
    fisher = torch.kron(A, G) + 0.05 * torch.eye(15, dtype=torch.float64)  # vec is column-major
    v = torch.linalg.solve(fisher, grad.T.reshape(-1)).reshape(5, 3).T
    torch.testing.assert_close(layer.weight.detach(), w0 - 0.1 * v[:, :4])
    torch.testing.assert_close(layer.bias.detach(), b0 - 0.1 * v[:, 4])


def _conv_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 3), torch.nn.LayerNorm(3))


def test_conv2d_layers_and_first_order_for_the_rest():
    net = _conv_net()
    x = torch.randn(8, 2, 6, 6)
    y = torch.randint(0, 3, (8,))
    opt = KFAC(list(net.parameters()), model=net, lr=0.05, inv_every=2)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        return loss
    first = float(closure())
    for _ in range(20):
        opt.step(closure)
    assert float(closure()) < first
    conv, lin = net[0], net[3]
    assert opt.state[conv.weight]["A"].shape == (2 * 9 + 1, 2 * 9 + 1)
    assert opt.state[conv.weight]["G"].shape == (4, 4)
    assert opt.state[lin.weight]["A"].shape == (145, 145)
    assert "A" not in opt.state[net[4].weight]  # LayerNorm: first-order, momentum only
    assert "momentum" in opt.state[net[4].weight]


def test_mkor_h_falls_back_to_first_order_and_counts_it():
    net = _conv_net()
    x = torch.randn(8, 2, 6, 6)
    y = torch.randint(0, 3, (8,))
    opt = KFAC(list(net.parameters()), model=net, lr=0.05, hybrid=True, hybrid_window=5,
               hybrid_threshold=0.9)  # demands a 90% loss decrease per window: falls back quickly

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        return loss
    for _ in range(20):
        opt.step(closure)
    c = opt.bench_counters
    assert c["kfac_fallbacks"] == 1 and c["kfac_first_order_steps"] >= 9
    assert opt.first_order and not opt.stats.capture


def test_nonfinite_factor_is_counted_and_skipped():
    layer = torch.nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    opt = KFAC(list(layer.parameters()), model=layer, lr=0.05, inv_every=1, stat_decay=0.0)

    def closure():
        opt.zero_grad()
        loss = ((layer(x) - y) ** 2).mean()
        loss.backward()
        return loss
    opt.step(closure)
    opt.state[layer.weight]["G"][0, 0] = float("nan")
    opt.stats.capture = False
    opt.stat_every = 10**9  # keep the NaN factor
    opt.step(closure)
    assert opt.bench_counters["kfac_nonfinite"] >= 1
    assert all(torch.isfinite(p).all() for p in layer.parameters())


@pytest.mark.parametrize("name", ["kfac", "kfac.mkor_h"])
def test_conformance(name):
    check_optimizer(name)


def test_logreg_reaches_target_through_bench_run(tmp_path, write_suite):
    suite = write_suite("""
name = "second-order-model"
seeds = [0]
[[problems]]
name = "synthetic.logreg"
budget = { max_steps = 300, max_seconds = 60 }
target = { val_accuracy = 0.95 }
eval = { every = 10 }
[[optimizers]]
name = "kfac"
hparams = { lr = 0.1, damping = 0.1 }
[[optimizers]]
name = "adafisher"
hparams = { lr = 0.03 }
""")
    out = tmp_path / "out"
    proc = run_bench("run", str(suite), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_parquet(out / "trials")
    assert set(rows["optimizer"]) == {"kfac", "adafisher"}
    assert (rows["status"] == "target_reached").all(), rows[["optimizer", "status", "error"]]
    kfac = rows[rows["optimizer"] == "kfac"].iloc[0]
    counters = dict(kfac["counters"]) if not isinstance(kfac["counters"], str) else json.loads(kfac["counters"])
    assert counters["kfac_inversions"] >= 1
