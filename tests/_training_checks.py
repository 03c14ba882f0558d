"""Shared checks for the training-problem tests: determinism per seed, a few AdamW steps."""
from __future__ import annotations

import torch

import bench_core


def build(name: str, seed: int = 0, dtype=torch.float32, **params):
    """The problem `name` from the registry, with its default params overridden by `params`."""
    spec = bench_core.problem_spec(name)
    return spec.factory(seed=seed, device=torch.device("cpu"), dtype=dtype, **{**spec.params, **params})


def flat(problem) -> torch.Tensor:
    """All parameters of a problem as one float64 vector."""
    return torch.cat([p.detach().reshape(-1).to(torch.float64) for p in problem.parameters()])


def adamw_losses(problem, steps: int, lr: float = 1e-2, **kw) -> list[float]:
    """Training loss before and after each of `steps` AdamW steps (losses on the step's batch)."""
    opt = torch.optim.AdamW(problem.parameters(), lr=lr, **kw)
    losses = []
    for step in range(1, steps + 1):
        batch = problem.batch(step)
        opt.zero_grad()
        loss = problem.loss(batch)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def check_determinism(name: str, steps: int = 2, seeds_differ: bool = True, **params) -> None:
    """Two builds with the same seed agree exactly (parameters, batches, metrics after `steps`
    AdamW steps); another seed starts elsewhere (unless `seeds_differ` is False)."""
    a, b, c = (build(name, seed=s, **params) for s in (0, 0, 1))
    assert torch.equal(flat(a), flat(b))
    if seeds_differ:
        assert not torch.equal(flat(a), flat(c))
    adamw_losses(a, steps)
    adamw_losses(b, steps)
    with torch.no_grad():
        assert a.evaluate() == b.evaluate()
    assert torch.equal(flat(a), flat(b))


def check_adamw_decreases_loss(name: str, steps: int = 15, lr: float = 1e-2, **params) -> None:
    """`steps` AdamW steps lower the problem's evaluated loss."""
    p = build(name, **params)
    with torch.no_grad():
        before = p.evaluate()["loss"]
    adamw_losses(p, steps, lr=lr)
    with torch.no_grad():
        assert p.evaluate()["loss"] < before
