"""OptimizerSpecs of this plugin's own implementations (one module per method)."""
from __future__ import annotations

import bench_core

from .adahessian import AdaHessian
from .deepzero import DeepZero
from .diffgrad import DiffGrad
from .mars import MARS
from .mezo import MeZO
from .polyak import SANIA, Polyak
from .sam import SAM


def asam(params, lr: float = 0.1, rho: float = 0.5, eta: float = 0.01, momentum: float = 0.9,
         nesterov: bool = False, weight_decay: float = 0.0):
    """Adaptive SAM (ASAM): SAM with the neighbourhood scaled by |w| + eta."""
    return SAM(params, lr=lr, rho=rho, adaptive=True, eta=eta, momentum=momentum, nesterov=nesterov,
               weight_decay=weight_decay)


def mars_exact(params, lr: float = 3e-3, betas=(0.95, 0.99), gamma: float = 0.025, eps: float = 1e-8,
               weight_decay: float = 0.0):
    """MARS, exact form: two gradients on the same batch (two closure calls per step)."""
    return MARS(params, lr=lr, betas=betas, gamma=gamma, eps=eps, weight_decay=weight_decay, exact=True)


def sania_hutchinson(params, lr: float = 1.0, beta: float = 0.999, f_star: float = 0.0, eps: float = 1e-8):
    """SANIA preconditioned by a Hutchinson estimate of the Hessian diagonal."""
    return SANIA(params, lr=lr, beta=beta, f_star=f_star, eps=eps, hutchinson=True)


def _lr(low: float, high: float) -> dict:
    return {"lr": bench_core.LogUniform(low, high)}


def own_optimizer_specs() -> list[bench_core.OptimizerSpec]:
    """diffgrad, adahessian, sam, asam, mezo, deepzero, mars, mars_exact, polyak, sania, sania_hutchinson."""
    S = bench_core.OptimizerSpec
    return [
        S("diffgrad", DiffGrad, {"lr": 1e-3}, _lr(1e-5, 1.0), scaling="adam",
          description="diffGrad (Dubey et al.): Adam damped by gradient change"),
        S("adahessian", AdaHessian, {"lr": 0.1, "eps": 1e-4}, _lr(1e-3, 1.0), requires={"grad", "create_graph"},
          scaling="curvature", description="AdaHessian (Yao et al.): Hutchinson Hessian diagonal, RMS moving average"),
        S("sam", SAM, {"lr": 0.1, "rho": 0.05}, _lr(1e-4, 1.0), scaling="sgd",
          description="SAM (Foret et al.): SGD-momentum step from the worst nearby point; 2 closure calls/step"),
        S("asam", asam, {"lr": 0.1, "rho": 0.5}, _lr(1e-4, 1.0), scaling="sgd",
          description="Adaptive SAM (Kwon et al.): scale-invariant neighbourhood; 2 closure calls/step"),
        S("mezo", MeZO, {"lr": 1e-3, "eps": 1e-3}, _lr(1e-6, 1e-1), requires={"loss_only"}, scaling="zeroth",
          description="SPSA/MeZO: zeroth-order SGD, directions regenerated from a seed; 2 loss evals/step"),
        S("deepzero", DeepZero, {"lr": 1e-2, "eps": 1e-3}, _lr(1e-5, 1.0), requires={"loss_only"}, scaling="zeroth",
          description="DeepZero coordinate-wise zeroth-order SGD, for small models; d+1 loss evals/step"),
        S("mars", MARS, {"lr": 3e-3}, _lr(1e-5, 1e-1), scaling="adam",
          description="MARS-AdamW (Yuan et al.), approximate form: previous step's gradient"),
        S("mars_exact", mars_exact, {"lr": 3e-3}, _lr(1e-5, 1e-1), scaling="adam",
          description="MARS-AdamW, exact form: gradient at the previous iterate on the same batch; 2 closure calls/step"),
        S("polyak", Polyak, {"lr": 1.0}, _lr(1e-2, 10.0), scaling="sgd",
          description="Stochastic Polyak step (SPS_max): step size from the loss value"),
        S("sania", SANIA, {"lr": 1.0}, _lr(1e-2, 10.0), scaling="global_step",
          description="SANIA (Abdukhakimov et al.): Polyak step in an Adam-SQR metric, scale invariant"),
        S("sania_hutchinson", sania_hutchinson, {"lr": 1.0}, _lr(1e-2, 10.0), requires={"grad", "create_graph"},
          scaling="global_step", description="SANIA with a Hutchinson Hessian-diagonal metric"),
    ]
