"""AdaFisher (adafisher): one step against a reference written from the update rule, AdamW for
parameters outside Linear/Conv2d layers, failure modes, conformance."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench_core.testing import check_optimizer
from bench_optim.adafisher import AdaFisher


def test_two_steps_match_reference():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3).double()
    xs = [torch.randn(10, 4, dtype=torch.float64) for _ in range(2)]
    ys = [torch.randint(0, 3, (10,)) for _ in range(2)]
    w, b = layer.weight.detach().clone(), layer.bias.detach().clone()
    opt = AdaFisher(list(layer.parameters()), model=layer, lr=0.01, betas=(0.9, 0.99), damping=1e-3)
    m_w, m_b, f_w, f_b = (torch.zeros_like(t) for t in (w, b, w, b))
    for t, (x, y) in enumerate(zip(xs, ys), start=1):
        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(layer(x), y)
            loss.backward()
            return loss
        opt.step(closure)
        out = (x @ w.T + b).requires_grad_()
        g_out, = torch.autograd.grad(F.cross_entropy(out, y), out)
        g2 = (10 * g_out).square().mean(0)  # E[g²] with per-example-sized g
        a2 = x.square().mean(0)
        gw, gb = g_out.T @ x, g_out.sum(0)
        m_w, m_b = 0.9 * m_w + 0.1 * gw, 0.9 * m_b + 0.1 * gb
        f_w, f_b = 0.99 * f_w + 0.01 * torch.outer(g2, a2), 0.99 * f_b + 0.01 * g2
        c1, c2 = 1 - 0.9 ** t, 1 - 0.99 ** t
        w = w - 0.01 * (m_w / c1) / (f_w / c2 + 1e-3)
        b = b - 0.01 * (m_b / c1) / (f_b / c2 + 1e-3)
    torch.testing.assert_close(layer.weight.detach(), w)
    torch.testing.assert_close(layer.bias.detach(), b)


def test_other_parameters_take_adamw_steps():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    ref = torch.nn.LayerNorm(4)
    ref.load_state_dict(net[1].state_dict())
    opt = AdaFisher(list(net.parameters()), model=net, lr=0.01)
    adam = torch.optim.Adam(ref.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    x = torch.randn(6, 3)
    for _ in range(3):
        opt.zero_grad()
        h = net[0](x).detach()
        net[1](net[0](x)).square().sum().backward()
        adam.zero_grad()
        ref(h).square().sum().backward()
        adam.step()
        opt.step()
    torch.testing.assert_close(net[1].weight, ref.weight)
    torch.testing.assert_close(net[1].bias, ref.bias)


def test_nonfinite_statistics_are_skipped_and_counted():
    layer = torch.nn.Linear(2, 2)
    opt = AdaFisher(list(layer.parameters()), model=layer, lr=0.01)
    x = torch.randn(4, 2)

    def closure():
        opt.zero_grad()
        loss = layer(x).square().sum()
        loss.backward()
        return loss
    opt.step(closure)
    second = opt.state[layer.weight]["second"].clone()
    opt._fresh = {}
    opt._collect(layer, torch.full((4, 3), float("nan")), torch.ones(4, 2))  # a bad batch
    assert opt.bench_counters["adafisher_nonfinite"] == 1 and layer not in opt._fresh
    opt.stats.capture = False  # a backward pass whose statistics are not collected
    opt.zero_grad()
    layer(x).square().sum().backward()
    opt.step()
    assert opt.bench_counters["adafisher_stale_steps"] >= 1
    torch.testing.assert_close(opt.state[layer.weight]["second"], second)  # average reused, not reset
    assert all(torch.isfinite(p).all() for p in layer.parameters())


def test_conformance():
    check_optimizer("adafisher")
