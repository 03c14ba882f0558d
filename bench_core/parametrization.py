"""Width parametrizations: per-role learning-rate multipliers built into optimizer param groups.

A training problem with ``parametrization`` "mup" or "umup" labels its tensors with roles
(``TrainingProblem.param_roles()``: ``ParamRole(param, role, width_mult)``, roles "input",
"hidden", "output", "vector"); the problem itself sets the initialization and the forward
multipliers. The learning-rate part depends on the optimizer, which the problem cannot know: an
``OptimizerSpec`` declares its family in ``scaling`` and ``param_groups`` gives each tensor the
learning rate ``lr × width_mult ** e``, with e from the table below (``width_mult`` = the
tensor's width dimension over the problem's base width, see ``ParamRole``). The rows, and the
families that refuse μP with a one-line reason, are in ``bench_core.lr_rules``; which optimizer
takes which family, and why, is in docs/scaling.md ("Every optimizer declares a family").

μP ("Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer",
Table 3, the formulation without output multiplier: input weights and biases init var 1/fan_in,
hidden var 1/fan_in, output weights var 1/fan_in² or zero, all multipliers 1):

    exponent e of width_mult     input  hidden  output  vector
    mup  adam  (Adam-type)         0     -1      -1       0      Table 3, Adam LR column
    mup  sgd                      +1      0      -1      +1      Table 3, SGD LR column (biases ∝ fan_out)
    mup  kfac                      0      0       0       0      see below
    mup  shampoo (grafting none) +1/2     0     -1/2    +1/2     see below
    mup  normalized              +1/2     0     -1/2    +1/2     ‖ΔW‖_F = lr per tensor (NovoGrad)
    mup  width_invariant           0      0       0       0      steps width-independent by design (Scion)
    mup  zeroth -> sgd's row                                     SPSA / coordinate estimates of g

"normalized": a step g/‖g‖_F per tensor has ‖ΔW‖_F = lr, and a rank-one gradient's Frobenius
norm is its spectral norm, so the spectral condition ‖ΔW‖₂ = Θ(sqrt(fan_out/fan_in)) asks for
lr ∝ sqrt(fan_out/fan_in): the ungrafted Shampoo row. "zeroth": E[(zᵀg) z] = g, so the expected
step of MeZO (and of DeepZero over all coordinates) is SGD's with each group's lr; the estimate's
noise grows with the parameter count and does not follow any row.

u-μP ("u-μP: The Unit-Scaled Maximal Update Parametrization"): every weight has unit init and
each matmul is scaled at the op, by 1/sqrt(fan_in) (input and hidden) and 1/fan_in (readout).
Only forward multipliers are applied (no backward scaling), so the learning rates follow from
Table 3 by the abc-symmetry of "Tensor Programs V" (a multiplier θ on a weight divides Adam's
learning rate by θ and SGD's by θ²):

    umup adam                      0    -1/2      0       0      (unit_scaling's Adam rule, except its
                                                                  1/sqrt(fan_out) embedding rule)
    umup sgd                      +1     +1      +1      +1

Second order ("On the Parameterization of Second-Order Optimization Effective Towards the
Infinite Width", Ishikawa and Karakida): the paper finds K-FAC's μP learning rates width
independent (e = 0 for every layer) once its damping is rescaled; our K-FAC damps the product
of the factors' eigenvalues by one λ, which is width independent for hidden layers only, so the
damping rescaling is *not* applied; the paper also warns that a zero-initialized readout with
K-FAC biases training towards the NNGP solution, and the μP problems here zero-init the readout
(Table 3's other option, variance 1/fan_in², would avoid it). For Shampoo with exponent 1/4 per side the one-step argument
of that paper gives an update ĝ âᵀ (a unit rank-one matrix) per sample, hence the exponents
above (lr ∝ sqrt(fan_out / fan_in) relative to the base; derived here from the paper's one-step
analysis, not copied from its Table 1). Shampoo *grafted* onto Adam (this project's default,
``grafting="adam"``) takes Adam's update norm per block, and SOAP is Adam in Shampoo's
eigenbasis: both use the "adam" row ("shampoo" resolves to "adam" / "sgd" for
``grafting="adam"`` / ``"sgd"``). Second-order families under "umup" have no rule here and are
refused.

Muon (family "muon"; the orthogonalized update of plugins/bench_optim/muon.py for hidden matrices,
AdamW for every other tensor). The rule follows the spectral condition of "A Spectral Condition
for Feature Learning" (Yang, Simon and Bernstein 2023): feature learning at every width needs
‖ΔW‖₂ = Θ(sqrt(fan_out / fan_in)) for each weight, and that is what Muon's hidden-matrix update
provides. Derivation: Muon steps W ← W − η s O with O = NS₅(U/‖U‖_F) ≈ the orthogonal factor of
the momentum, so every singular value of O is ≈ 1 and ‖O‖₂ ≈ 1 at any width; with
``adjust_lr_fn="original"`` the factor s = sqrt(max(1, fan_out / fan_in)) (Keller Jordan's
Muon), so ‖ΔW‖₂ ≈ η sqrt(max(1, fan_out/fan_in)). A hidden matrix of a width-w model has
fan_out / fan_in fixed as w grows (d×d, 4d×d, 3d×d), so the spectral condition holds with η
independent of width: exponent 0. With ``adjust_lr_fn="match_rms_adamw"`` (Liu et al., "Muon
is Scalable for LLM Training") s = 0.2 sqrt(max(fan_out, fan_in)) ∝ sqrt(w), so η must shrink
as w^-1/2 ("muon_rms" row). The tensors that take AdamW (embeddings, readout, vectors) follow
Adam's μP row. Under u-μP a weight W of unit init is used as W/sqrt(fan_in) at the op, so the
effective step ‖ΔW‖₂/sqrt(fan_in) needs η ∝ sqrt(w) for "original" (+1/2) and η flat for
"match_rms_adamw"; the AdamW tensors take u-μP's Adam row. The coordinate check in
tests/test_parametrization.py runs Muon under these rows:

    mup  muon  (adjust "original")   0      0      -1       0
    mup  muon_rms (match_rms_adamw)  0    -1/2     -1       0
    umup muon                        0    +1/2      0       0
    umup muon_rms                    0      0       0       0

"Scaling Exponents Across Parameterizations and Optimizers" (Everett et al.) shows that other
per-layer prescriptions (including standard parametrization with per-layer rates) transfer as
well and that Adam's epsilon must scale too; neither is implemented. Weight decay is left as
given (decoupled decay in torch's AdamW is multiplied by each group's lr).

The ``mup`` package (microsoft/mup) is not used: it needs base-shape files or a base model
instantiated beside the target (``set_base_shapes``), ``MuReadout`` layers and its own
optimizers (``MuAdam``, ``MuSGD``), while here any optimizer spec gets plain param groups; the
``unit-scaling`` package (graphcore) is not used either: installing it (and ``mup``) pulls a
newer torch into the environment, and only its forward scale factors are needed
(``ScaledLinear``).
"""
from __future__ import annotations

import inspect
from collections import OrderedDict

import torch

from .lr_rules import (
    LR_EXPONENTS,
    PARAMETRIZATIONS,
    REFUSALS,
    resolve_family,
    rule_error,
)
from .problems import ROLES, ParamRole

__all__ = ["LR_EXPONENTS", "PARAMETRIZATIONS", "REFUSALS", "ScaledLinear", "lr_multiplier", "param_groups",
           "resolve_family", "rule_error"]


def lr_multiplier(parametrization: str, scaling: str, role: str, width_mult: float) -> float:
    """The factor on the base learning rate of a tensor with `role` and `width_mult`."""
    if role not in ROLES:
        raise ValueError(f"unknown parameter role {role!r}; roles are {', '.join(ROLES)}")
    rule = LR_EXPONENTS.get((parametrization, scaling))
    if rule is None:
        raise ValueError(rule_error(parametrization, scaling))
    return float(width_mult) ** rule[role]


def _base_lr(hparams: dict, factory) -> float:
    if "lr" in hparams:
        return float(hparams["lr"])
    if factory is not None:
        try:
            default = inspect.signature(inspect.unwrap(factory)).parameters["lr"].default
        except (KeyError, TypeError, ValueError):
            default = inspect.Parameter.empty
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            return float(default)
    raise ValueError("a parametrized problem needs the optimizer's learning rate 'lr' (none given, no default)")


def _as_role(r) -> ParamRole:
    """A ParamRole from itself, (param, role, width_mult) or (param, role, fan_in, base_fan_in)."""
    if isinstance(r, ParamRole):
        return r
    if len(r) == 4:
        return ParamRole(r[0], r[1], r[2] / r[3])
    return ParamRole(*r)


def param_groups(problem, scaling: str | None, hparams: dict, factory=None) -> list[dict]:
    """Param groups for ``factory(groups, **hparams)``: one per (role, lr multiplier), each with
    ``lr`` = base lr × multiplier, and ``role`` and ``lr_multiplier`` recorded beside it.

    `problem` is a ``TrainingProblem`` whose ``parametrization`` is not "sp" and whose
    ``param_roles()`` covers every tensor of ``parameters()`` exactly once (``ParamRole``s, or
    tuples (param, role, width_mult) or (param, role, fan_in, base_fan_in)); `scaling` is the
    optimizer spec's declared family; the base lr is ``hparams["lr"]`` or the factory's default.
    Raises ValueError with a one-line message when a piece is missing.
    """
    parametrization = getattr(problem, "parametrization", "sp")
    error = rule_error(parametrization, scaling, hparams) if parametrization != "sp" else \
        "param_groups is for parametrizations other than 'sp'"
    if error:
        raise ValueError(error)
    family = resolve_family(scaling, hparams)
    roles = problem.param_roles()
    if not roles:
        raise ValueError(f"parametrization {parametrization!r}: the problem labels no parameter roles "
                         "(param_roles() returned nothing)")
    roles = [_as_role(r) for r in roles]
    params = problem.parameters()
    wanted = {id(p) for p in params}
    seen: set[int] = set()
    for r in roles:
        if id(r.param) not in wanted:
            raise ValueError(f"param_roles() names a tensor ({r.role}, shape {tuple(r.param.shape)}) "
                             "that is not among parameters()")
        if id(r.param) in seen:
            raise ValueError(f"param_roles() names a tensor twice ({r.role}, shape {tuple(r.param.shape)})")
        seen.add(id(r.param))
    missing = [tuple(p.shape) for p in params if id(p) not in seen]
    if missing:
        raise ValueError(f"param_roles() leaves {len(missing)} tensor(s) without a role (shapes {missing[:3]})")
    lr = _base_lr(hparams, factory)
    groups: OrderedDict = OrderedDict()
    for r in roles:
        mult = lr_multiplier(parametrization, family, r.role, r.width_mult)
        g = groups.setdefault((r.role, mult), {"params": [], "lr": lr * mult, "role": r.role,
                                               "lr_multiplier": mult})
        g["params"].append(r.param)
    return list(groups.values())


class ScaledLinear(torch.nn.Linear):
    """``nn.Linear`` whose matmul output is multiplied by ``multiplier`` (the bias is not):
    y = multiplier · x Wᵀ + b. With unit-variance weights and ``multiplier = 1/sqrt(fan_in)`` this
    is u-μP's unit-scaled linear op, forward scale only ("u-μP: The Unit-Scaled Maximal Update
    Parametrization")."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, multiplier: float = 1.0):
        super().__init__(in_features, out_features, bias=bias)
        self.multiplier = float(multiplier)

    def forward(self, x):
        """multiplier · x Wᵀ + b."""
        y = torch.nn.functional.linear(x, self.weight) * self.multiplier
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        """As nn.Linear's, with the multiplier."""
        return f"{super().extra_repr()}, multiplier={self.multiplier:.4g}"
