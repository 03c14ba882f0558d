"""The specs of bench_linear's own solvers (names ``linear.<method>``) and their search spaces."""
from __future__ import annotations

import bench_core

from .cg import ConjugateGradient
from .krylov import GMRES, MINRES, BiCGSTAB
from .learning_to_relax import DEFAULT_OMEGAS, BanditSOR
from .polynomial import PolynomialGradient
from .preconditioners import PRECONDITIONERS
from .relaxation import SOR, Chebyshev, Jacobi


def _cg(operator: str = "auto", rtol: float = 0.0):
    return ConjugateGradient("none", operator=operator, rtol=rtol)


def _pcg(precond: str = "jacobi", omega: float = 1.0, degree: int = 4, operator: str = "auto",
         rtol: float = 0.0):
    return ConjugateGradient(precond, omega, degree, operator, rtol)


def _ssor(omega: float = 1.5, operator: str = "auto", rtol: float = 0.0):
    return SOR(omega, symmetric=True, operator=operator, rtol=rtol)


def _sor(omega: float = 1.5, operator: str = "auto", rtol: float = 0.0):
    return SOR(omega, symmetric=False, operator=operator, rtol=rtol)


def _bandit(omegas: list = list(DEFAULT_OMEGAS), horizon: int = 0, seed: int = -1, rtol: float = 0.0,
            policy: str = "tsallis_inf"):
    return BanditSOR(omegas, contextual=False, horizon=horizon, seed=seed, rtol=rtol, policy=policy)


def _contextual(omegas: list = list(DEFAULT_OMEGAS), degree: int = 5, seed: int = -1, rtol: float = 0.0,
                context_range: list = [1e-3, 1e3], log_context: bool = True):  # noqa: B006 (typed default, as omegas)
    return BanditSOR(omegas, contextual=True, degree=degree, seed=seed, rtol=rtol,
                     context_range=context_range, log_context=log_context)


def solver_specs() -> list[bench_core.OptimizerSpec]:
    """linear.cg, pcg, minres, gmres, bicgstab, jacobi, sor, ssor, chebyshev, poly_gm,
    sor_bandit, sor_contextual."""
    omega = bench_core.Uniform(0.05, 1.95)

    def spec(name, factory, description, search_space=None):
        return bench_core.OptimizerSpec(name=name, factory=factory, kinds={"linear_system"},
                                        requires=set(), search_space=search_space or {},
                                        description=description)

    return [
        spec("linear.cg", _cg, "Conjugate gradient (Hestenes–Stiefel), torch, CPU or CUDA; SPD."),
        spec("linear.pcg", _pcg, "Preconditioned CG; precond = " + " | ".join(PRECONDITIONERS[1:]) + ".",
             {"precond": bench_core.Choice(PRECONDITIONERS[1:])}),
        spec("linear.minres", MINRES, "MINRES (Paige–Saunders); symmetric, possibly indefinite."),
        spec("linear.gmres", GMRES, "Restarted GMRES(m) (Saad–Schultz); iteration = one Arnoldi step.",
             {"restart": bench_core.Choice([10, 20, 30, 50])}),
        spec("linear.bicgstab", BiCGSTAB, "BiCGSTAB (van der Vorst); nonsymmetric; 2 matvecs/iteration."),
        spec("linear.jacobi", Jacobi, "Weighted Jacobi iteration.", {"omega": bench_core.Uniform(0.1, 1.0)}),
        spec("linear.sor", _sor, "Successive over-relaxation with fixed ω.", {"omega": omega}),
        spec("linear.ssor", _ssor, "Symmetric SOR with fixed ω (forward + backward sweep).", {"omega": omega}),
        spec("linear.chebyshev", Chebyshev, "Chebyshev iteration on Lanczos eigenvalue bounds; SPD."),
        spec("linear.poly_gm", PolynomialGradient,
             "Gradient method with adaptive polynomial preconditioning (Doikov–Rodomanov); SPD.",
             {"degree": bench_core.Choice([1, 2, 4, 8])}),
        spec("linear.sor_bandit", _bandit,
             "SOR with ω chosen per instance by Tsallis-INF (policy=exp3: Exp3) from iteration counts "
             "(Learning to Relax).", {"policy": bench_core.Choice(["tsallis_inf", "exp3"])}),
        spec("linear.sor_contextual", _contextual,
             "SOR with ω chosen per instance by a contextual bandit on info['context'] (Learning to Relax)."),
    ]
