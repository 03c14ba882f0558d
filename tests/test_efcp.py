"""EFCP in M-FAC (compression "topk" / "lowrank" with error feedback): the error-feedback
invariant, the compressed products against the same compressed gradients held densely, the
state bytes against the uncompressed window, density 1 equal to plain M-FAC, and progress."""
from __future__ import annotations

import pytest
import torch

from bench_optim.mfac import MFAC, woodbury_coefficients


def _params():
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(6, 5, generator=gen, dtype=torch.float64).requires_grad_(),
            torch.randn(5, generator=gen, dtype=torch.float64).requires_grad_()]


def _grads(n, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(6, 5, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64))
            for _ in range(n)]


def _steps(opt, params, grads):
    dense_c = []
    for g in grads:
        before = opt.state["window"].get("error")
        before = None if before is None else before.clone()
        for p, gi in zip(params, g):
            p.grad = gi.clone()
        opt.step()
        if before is not None:  # c = (e_before + g) - e_after
            flat = torch.cat([gi.reshape(-1) for gi in g])
            dense_c.append(before + flat - opt.state["window"]["error"])
    return dense_c


@pytest.mark.parametrize("compression,kw", [("topk", {"density": 0.2}), ("lowrank", {"rank": 2})])
def test_error_feedback_and_compressed_products(compression, kw):
    params = _params()
    opt = MFAC(params, lr=0.01, num_grads=4, damping=0.5, compression=compression, **kw)
    grads = _grads(6)
    cs = _steps(opt, params, grads)
    w = opt.state["window"]
    # the error accumulator holds exactly what the stored gradients dropped
    total_g = sum(torch.cat([gi.reshape(-1) for gi in g]) for g in grads)
    torch.testing.assert_close(sum(cs) + w["error"], total_g)
    if compression == "topk":
        assert all(int((c != 0).sum()) <= w["k"] for c in cs) and w["k"] == round(0.2 * 35)
    else:
        assert torch.linalg.matrix_rank(cs[-1][:30].view(6, 5)) <= 2
    # the window now holds the last 4 compressed gradients (ring order): products match them dense
    window = torch.stack([cs[i] for i in (4, 5, 2, 3)])
    torch.testing.assert_close(w["gram"], window @ window.T)
    x = torch.randn(35, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    b, den = woodbury_coefficients(window @ window.T, 0.5, 4)
    dense = x / 0.5 - window.T @ (b.T @ ((b @ (window @ x)) / den))
    torch.testing.assert_close(opt.ihvp(x), dense)


def test_state_bytes_against_the_uncompressed_window():
    d, m = 30 * 200 + 200, 16
    make = lambda: [torch.zeros(200, 30, requires_grad=True), torch.zeros(200, requires_grad=True)]  # noqa: E731
    dense = MFAC(make(), num_grads=m)
    topk = MFAC(make(), num_grads=m, compression="topk", density=0.05)
    low = MFAC(make(), num_grads=m, compression="lowrank", rank=2)
    for opt in (dense, topk, low):
        for p in opt.param_groups[0]["params"]:
            p.grad = torch.randn_like(p)
        opt.step()
    k = round(0.05 * d)
    gram_and_coef = 4 * (m * m + 1 * 1 + 1)  # Gram m x m, Woodbury B (1 x 1) and den (1) after one step
    assert dense.state_bytes() == 4 * m * d + gram_and_coef
    assert topk.state_bytes() == m * k * (4 + 4) + 4 * d + gram_and_coef  # values, int32 indices, error
    # P, Q, vectors, error, warm Q (float32) and the int64 positions of the vector entries
    low_expected = 4 * (m * (200 * 2 + 30 * 2) + m * 200 + d + 30 * 2) + 8 * 200 + gram_and_coef
    assert low.state_bytes() == low_expected
    assert dense.state_bytes() / topk.state_bytes() > 5 and dense.state_bytes() / low.state_bytes() > 5


def test_density_one_is_plain_mfac():
    pa, pb = _params(), _params()
    a = MFAC(pa, lr=0.05, num_grads=3, damping=0.3)
    b = MFAC(pb, lr=0.05, num_grads=3, damping=0.3, compression="topk", density=1.0)
    grads = _grads(5, seed=2)
    _steps(a, pa, grads)
    _steps(b, pb, grads)
    for x, y in zip(pa, pb):
        torch.testing.assert_close(x, y)
    with pytest.raises(ValueError, match="compression must be one of"):
        MFAC(_params(), compression="zip")


@pytest.mark.parametrize("compression,kw", [("topk", {"density": 0.1}), ("lowrank", {"rank": 2})])
def test_compressed_mfac_decreases_the_loss(compression, kw):
    """Minibatch softmax regression through a hidden layer on fixed random data (no registry)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 20, generator=gen)
    y = (x[:, :5] @ torch.randn(5, 4, generator=gen)).argmax(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    loss_fn = lambda idx: torch.nn.functional.cross_entropy(model(x[idx]), y[idx])  # noqa: E731
    opt = MFAC(model.parameters(), lr=0.05, damping=0.1, num_grads=16, compression=compression, **kw)
    everything = torch.arange(512)
    with torch.no_grad():
        start = float(loss_fn(everything))
    for step in range(60):
        idx = torch.randint(0, 512, (64,), generator=gen)

        def closure():
            opt.zero_grad()
            loss = loss_fn(idx)
            loss.backward()
            return loss
        opt.step(closure)
    with torch.no_grad():
        assert float(loss_fn(everything)) < 0.6 * start


def test_efcp_memory_benchmark_prints_bytes_against_the_uncompressed_window(capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is a folder of the repository
    from benchmarks import efcp_memory

    assert efcp_memory.main(["--param", "width=16", "--max-steps", "10", "--eval-every", "5", "--num-grads", "4",
                             "--densities", "0.1", "--ranks", "1", "--target", "val_accuracy=0.99"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0] + (line.split()[1] if line.startswith(("topk", "lowrank")) else ""): line.split()
            for line in lines[2:]}
    assert set(rows) == {"none", "topkdensity=0.1", "lowrankrank=1"}
    assert rows["none"][-1] == "1.0x" and float(rows["topkdensity=0.1"][-1].rstrip("x")) > 2.0
    assert efcp_memory.main(["--target", "val_accuracy"]) == 2
