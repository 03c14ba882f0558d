"""Learning to Relax checked against its claim: the bandit's regret against the best fixed ω,
per instance, as the sequence grows, in the paper's setting, beside the 20-instance heat sequence.

    python benchmarks/learning_to_relax.py                          # the paper's setting, T = 5000
    python benchmarks/learning_to_relax.py --length 500 --pool 200 --trials 4    # a quick look
    python benchmarks/learning_to_relax.py --figure docs/figures/learning_to_relax_regret.svg
    python benchmarks/learning_to_relax.py --contextual --figure docs/figures/learning_to_relax_contextual.svg

The paper's setting (Khodak et al., ICLR 2024, its code's ``scripts/learning.m``): A the 5-point
Laplacian on a 10×10 grid (MATLAB ``delsq(numgrid('S', 12))``, diagonal 4), instances
A_t = A + c_t I with c_t = −0.15 + 0.6 · Beta(0.5, 1.5) ("high variance"; ``--variance low``:
Beta(2, 6)), b_t a radially truncated standard normal, SOR from x = 0 until ‖r‖/‖b‖ < 1e-8 (at
most 10000 iterations), the grid of 20 ω from 1 to 1.95, Tsallis-INF, T = 5000.

Costs: every grid ω on every instance of a pool of ``--pool`` i.i.d. instances (dense batched
SOR in torch, float64, the residual recursion r ← (I − A M_ω⁻¹) r, checked against
``bench_linear.learning_to_relax.sor_iterations`` on a few entries); a sequence of ``--length``
instances is drawn i.i.d. from the pool per trial (the paper draws fresh instances; a pool keeps
the table affordable on 2 cores). Per trial and prefix length t the regret is the bandit's total
minus the best fixed grid ω's total over that prefix (in hindsight); printed as the mean over
trials of regret / t, beside the anchor: the best fixed ω's iterations per instance. Policies:
``linear.sor_bandit``'s Tsallis-INF (default) and Exp3 (``policy = "exp3"``, the old default).
The heat sequence: ``pde.heat_sequence`` (n = 32, 20 steps, seed 0), every ω measured with
``cost_table``, the bandits played on it in order, ``--trials`` seeds.

``--contextual``: the paper's contextual setting (its code's ``scripts/contextual.m``): the same
instances, the offset c_t given to ``linear.sor_contextual``'s ChebCB (degree 5, c mapped linearly
from [−0.15, 0.65] onto [−1, 1], as the authors' script), Tsallis-INF on the same sequences. The
regret is now to the instance-optimal policy (the best grid ω of each instance), per instance,
printed for ChebCB, Tsallis-INF and the best fixed ω in hindsight (over each prefix), beside the
instance-optimal cost and that of Young's ω*(c) = 2/(1 + √(1 − ρ_J²)) off the grid (what the
authors' ``omega_opt`` plays). The heat sequence is not run in this mode.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch
from bench_linear.bandits import ChebCB, Exp3, TsallisINF
from bench_linear.learning_to_relax import DEFAULT_OMEGAS, cost_table, sor_iterations

TOL = 1e-8
CAP = 10000
POLICIES = {"tsallis_inf": lambda k, seed: TsallisINF(k, seed=seed),
            "exp3": lambda k, seed: Exp3(k, seed=seed)}
CONTEXT_RANGE = (-0.15, 0.65)  # the authors' ChebCB(…, 6, -.15, .65): c lies in [−0.15, 0.45]
CONTEXTUAL = {"chebcb": lambda k, seed: ChebCB(k, degree=5, context_range=CONTEXT_RANGE, seed=seed),
              "tsallis_inf": lambda k, seed: TsallisINF(k, seed=seed)}


def laplacian(m: int = 10) -> sp.csr_matrix:
    """The 5-point Laplacian on an m×m grid with diagonal 4 (MATLAB's delsq(numgrid('S', m + 2)))."""
    t = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    return (sp.kron(t, sp.identity(m)) + sp.kron(sp.identity(m), t)).tocsr()


def paper_instances(count: int, variance: str, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(c, b): `count` offsets c_t and right-hand sides b_t of the paper's distribution."""
    rng = np.random.default_rng([seed, 19])
    a, b = (0.5, 1.5) if variance == "high" else (2.0, 6.0)
    c = -0.15 + 0.6 * rng.beta(a, b, count)
    rhs = np.empty((count, n))
    for i in range(count):
        while True:  # radially truncated normal, by rejection as in the paper's code
            v = rng.standard_normal(n)
            if np.linalg.norm(v) <= np.sqrt(n):
                rhs[i] = v
                break
    return c, rhs


def sor_costs(a: sp.csr_matrix, cs: np.ndarray, bs: np.ndarray, omegas, chunk: int = 50) -> np.ndarray:
    """iterations[t, j] of SOR(ω_j) on (A + c_t I) x = b_t from x = 0 (‖r‖/‖b‖ < TOL, at most CAP):
    r ← r − A_t M⁻¹ r with M = D/ω + L, dense and batched over instances and ω."""
    dense = torch.from_numpy(a.toarray())
    n = dense.shape[0]
    eye = torch.eye(n, dtype=torch.float64)
    strict = torch.tril(dense, -1)
    w = torch.tensor(omegas, dtype=torch.float64)
    out = np.zeros((len(cs), len(omegas)), dtype=np.int64)
    for lo in range(0, len(cs), chunk):
        c = torch.from_numpy(cs[lo:lo + chunk])
        at = dense[None] + c[:, None, None] * eye                       # (B, n, n)
        diag = (4.0 + c)[:, None, None, None] * eye / w[None, :, None, None]
        m = diag + strict[None, None]                                    # (B, K, n, n)
        minv = torch.linalg.solve_triangular(m, eye.expand_as(m), upper=False)
        prop = (eye - at[:, None] @ minv).reshape(-1, n, n)              # r_{k+1} = prop r_k
        r = torch.from_numpy(bs[lo:lo + chunk]).repeat_interleave(len(omegas), 0)[:, :, None]
        stop = TOL * torch.linalg.vector_norm(r, dim=(1, 2))
        iters = torch.full((r.shape[0],), CAP, dtype=torch.int64)
        active, sub = torch.arange(r.shape[0]), prop
        pending = torch.ones(r.shape[0], dtype=torch.bool)  # of the active ones: not yet converged
        for k in range(1, CAP + 1):
            r = sub @ r
            done = pending & (torch.linalg.vector_norm(r, dim=(1, 2)) < stop)
            if done.any():
                iters[active[done]] = k
                pending &= ~done
                if int(pending.sum()) <= 0.75 * len(pending):  # compact now and then, not every step
                    active, r, sub, stop = active[pending], r[pending], sub[pending], stop[pending]
                    pending = torch.ones(len(active), dtype=torch.bool)
                    if not len(active):
                        break
        out[lo:lo + chunk] = iters.reshape(-1, len(omegas)).numpy()
    return out


def check_against_library(a, cs, bs, table, omegas, picks=3) -> None:
    """Raise unless the dense costs equal sor_iterations' (our SORSweep) on a few entries."""
    import bench_core

    for t, j in [(0, 0), (1, len(omegas) // 2), (2, len(omegas) - 1)][:picks]:
        system = bench_core.LinearSystem.from_scipy((a + cs[t] * sp.identity(a.shape[0])).tocsr(), b=bs[t],
                                                    info={"symmetric": True})
        lib = sor_iterations(system, omegas[j], TOL, CAP)
        if abs(lib - table[t, j]) > 1:  # < vs ≤ at the tolerance may differ by one iteration
            raise AssertionError(f"dense SOR {table[t, j]} vs sor_iterations {lib} at t={t}, ω={omegas[j]}")


def play(policy, costs: np.ndarray, contexts=None) -> np.ndarray:
    """The policy's cost on each instance of the sequence `costs` (T × K), given `contexts` if any."""
    out = np.empty(len(costs))
    for t, row in enumerate(costs):
        c = None if contexts is None else float(contexts[t])
        arm = policy.choose(c)
        policy.update(arm, row[arm], c)
        out[t] = row[arm]
    return out


def regret_curves(table: np.ndarray, length: int, trials: int, lengths, seed: int = 0, iid: bool = True,
                  contexts=None, policies=POLICIES, versus: str = "fixed"):
    """{policy: mean over trials of regret(t)/t at each t of `lengths`}, the best fixed ω's mean
    cost per instance and the instance-optimal one (over trials, at the full length). The regret is
    to the best fixed ω over the prefix (``versus="fixed"``) or to the instance-optimal ω
    (``"instance"``; then the best fixed ω's own regret is the curve ``best fixed ω``); the
    policies are given the instances' `contexts` when there are any."""
    k = table.shape[1]
    at = np.array(lengths) - 1
    per = {p: [] for p in policies}
    if versus == "instance":
        per["best fixed ω"] = []
    best_fixed, optimal = [], []
    for trial in range(trials):
        rng = np.random.default_rng([seed, trial])
        pick = rng.integers(0, len(table), length) if iid else np.arange(len(table))
        seq = table[pick]
        cum = np.cumsum(seq, axis=0)
        best = cum[at].min(axis=1)
        opt = np.cumsum(seq.min(axis=1))[at]
        best_fixed.append(cum[-1].min() / length)
        optimal.append(seq.min(axis=1).mean())
        base = best if versus == "fixed" else opt
        if versus == "instance":
            per["best fixed ω"].append((best - opt) / np.array(lengths))
        for name, make in policies.items():
            paid = np.cumsum(play(make(k, 1000 * seed + trial), seq, None if contexts is None else contexts[pick]))
            per[name].append((paid[at] - base) / np.array(lengths))
    return {p: np.mean(v, axis=0) for p, v in per.items()}, float(np.mean(best_fixed)), float(np.mean(optimal))


def print_curves(title: str, lengths, curves: dict, best_fixed: float, optimal: float) -> None:
    """One table: regret per instance by length, with the anchors."""
    print(f"\n{title}")
    print(f"  anchor: best fixed ω {best_fixed:.1f} iterations/instance; instance-optimal {optimal:.1f}")
    print(f"  {'T':>6}" + "".join(f"{p + ' regret/T':>22}" for p in curves) + "".join(
        f"{p + ' /best':>16}" for p in curves))
    for i, t in enumerate(lengths):
        print(f"  {t:>6}" + "".join(f"{curves[p][i]:>22.2f}" for p in curves)
              + "".join(f"{curves[p][i] / best_fixed:>16.3f}" for p in curves))


def young_costs(a: sp.csr_matrix, cs: np.ndarray, bs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ω*, iterations): Young's optimal ω = 2 / (1 + √(1 − ρ_J²)) of each A + c I (ρ_J the spectral
    radius of its Jacobi iteration matrix) and SOR's iterations with it (off the grid)."""
    dense = a.toarray()
    omegas, iters = np.empty(len(cs)), np.empty(len(cs))
    for i, c in enumerate(cs):
        at = dense + c * np.eye(len(dense))
        jacobi = np.eye(len(dense)) - at / np.diag(at)[:, None]
        rho = float(np.abs(np.linalg.eigvals(jacobi)).max())
        omegas[i] = 2.0 / (1.0 + np.sqrt(1.0 - rho ** 2))
        iters[i] = sor_costs(a, cs[i:i + 1], bs[i:i + 1], [omegas[i]])[0, 0]
    return omegas, iters


def figure(path: str, panels: list, ylabel: str = "regret per instance ÷ best fixed ω's iterations per instance",
           anchor: str = "best_fixed") -> None:
    """Regret per instance ÷ the anchor's cost per instance (best fixed ω or instance-optimal) vs T,
    log axes, one panel per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(7, 4.5), squeeze=False, sharey=True)
    for i, (ax, (title, lengths, curves, best_fixed, optimal)) in enumerate(zip(axes[0], panels)):
        norm = best_fixed if anchor == "best_fixed" else optimal
        for name, values in curves.items():
            ax.plot(lengths, np.maximum(values / norm, 1e-3), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T", fontsize=10)
        if i == 0:
            ax.set_ylabel(ylabel, fontsize=10)
        ax.set_title(title, fontsize=10, wrap=True)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    if not path.endswith(".png"):
        fig.savefig(path.rsplit(".", 1)[0] + ".png", dpi=100)  # a raster copy to look at
    print(f"figure: {path}")


def main(argv=None) -> int:
    """Run the paper's setting (and the heat sequence); print the tables; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=5000, help="sequence length T (the paper: 5000)")
    ap.add_argument("--pool", type=int, default=1000, help="i.i.d. instances whose costs are measured")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--variance", choices=("high", "low"), default="high")
    ap.add_argument("--grid", type=int, default=10, help="the grid is m×m (the paper: 10)")
    ap.add_argument("--no-heat", action="store_true", help="skip the 20-instance heat sequence")
    ap.add_argument("--contextual", action="store_true",
                    help="the paper's contextual setting: ChebCB given c_t, regret to the instance-optimal ω")
    ap.add_argument("--figure", help="write the regret figure (svg/pdf/png) here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    omegas = list(DEFAULT_OMEGAS)
    lengths = [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if t <= args.length]
    a = laplacian(args.grid)
    t0 = time.perf_counter()
    cs, bs = paper_instances(args.pool, args.variance, 0, a.shape[0])
    table = sor_costs(a, cs, bs, omegas)
    check_against_library(a, cs, bs, table, omegas)
    print(f"paper's setting: {args.pool} instances × {len(omegas)} ω measured in {time.perf_counter() - t0:.1f} s; "
          f"best ω per instance ranges {min(omegas[j] for j in table.argmin(1))}–{max(omegas[j] for j in table.argmin(1))}")
    if args.contextual:
        return contextual(args, a, cs, bs, table, lengths)
    curves, best_fixed, optimal = regret_curves(table, args.length, args.trials, lengths)
    title = f"paper's setting: A + cI on {args.grid}², {args.variance} variance"
    print_curves(title, lengths, curves, best_fixed, optimal)
    panels = [(title, lengths, curves, best_fixed, optimal)]
    if not args.no_heat:
        from bench_pde.heat import heat_sequence

        systems = list(heat_sequence(0, "cpu", torch.float64, n=32, steps=20).systems())
        heat = cost_table(systems, omegas, TOL, CAP).astype(float)
        hl = [t for t in (5, 10, 20)]
        hc, hb, ho = regret_curves(heat, 20, args.trials, hl, iid=False)
        print_curves(f"pde.heat_sequence n=32, 20 instances in order, {args.trials} seeds", hl, hc, hb, ho)
        panels.append(("pde.heat_sequence, 20 instances", hl, hc, hb, ho))
    if args.figure:
        figure(args.figure, panels)
    return 0


def contextual(args, a, cs, bs, table, lengths) -> int:
    """The --contextual run: ChebCB and Tsallis-INF on the same sequences, regret to the
    instance-optimal ω per instance; prints the table (and writes the figure); returns 0."""
    lengths = sorted(set(lengths) | {t for t in (10, 100, 1000, 5000) if t <= args.length})
    young_omega, young = young_costs(a, cs, bs)
    t0 = time.perf_counter()
    curves, best_fixed, optimal = regret_curves(table, args.length, args.trials, lengths, contexts=cs,
                                                policies=CONTEXTUAL, versus="instance")
    print(f"played {args.trials} trials × {args.length} instances in {time.perf_counter() - t0:.1f} s")
    print(f"\ncontextual, paper's setting: A + cI on {args.grid}², {args.variance} variance, {args.trials} trials")
    print(f"  anchors: instance-optimal grid ω {optimal:.1f} iterations/instance; best fixed ω {best_fixed:.1f}; "
          f"over the pool: grid instance-optimal {table.min(axis=1).mean():.1f}, Young's ω*(c) off the grid "
          f"{young.mean():.1f} (ω* {young_omega.min():.3f}–{young_omega.max():.3f})")
    names = list(curves)
    print(f"  {'T':>6}" + "".join(f"{n + ' regret/T':>24}" for n in names)
          + "".join(f"{n + ' ÷ opt':>20}" for n in names))
    for i, t in enumerate(lengths):
        print(f"  {t:>6}" + "".join(f"{curves[n][i]:>24.2f}" for n in names)
              + "".join(f"{curves[n][i] / optimal:>20.3f}" for n in names))
    if args.figure:
        title = f"contextual: A + cI on {args.grid}², c given, {args.variance} variance"
        figure(args.figure, [(title, lengths, curves, best_fixed, optimal)],
               ylabel="regret to instance-optimal ω ÷ its iterations (per instance)",
               anchor="optimal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
