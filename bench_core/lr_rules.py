"""The μP / u-μP learning-rate rules per optimizer family, and the families that refuse μP.

An ``OptimizerSpec`` declares its family in ``scaling`` (one of ``SCALINGS``). A *rule family*
has a row of exponents in ``LR_EXPONENTS``: under a parametrization other than "sp" each tensor
gets the learning rate ``lr × width_mult ** e[role]`` (``bench_core.parametrization.param_groups``;
the derivations are in that module's docstring and in docs/scaling.md). A *refusing family*
(``REFUSALS``) names why no fixed per-role multiplier is known for its updates: such an optimizer
on a "mup"/"umup" problem is refused in one line when the suite is parsed, never run with SP
scaling. ``scaling=None`` (a third-party spec that declares nothing) is refused alike.

Torch-free: the suite parser and ``OptimizerSpec`` validation use it without loading torch.
"""
from __future__ import annotations

#: Parametrizations a width-parametrized problem takes; "sp" is the standard one (flat params).
PARAMETRIZATIONS = ("sp", "mup", "umup")

#: (parametrization, row) -> exponent of width_mult per role (input, hidden, output, vector).
LR_EXPONENTS = {
    ("mup", "adam"): {"input": 0.0, "hidden": -1.0, "output": -1.0, "vector": 0.0},
    ("mup", "sgd"): {"input": 1.0, "hidden": 0.0, "output": -1.0, "vector": 1.0},
    ("mup", "kfac"): {"input": 0.0, "hidden": 0.0, "output": 0.0, "vector": 0.0},
    ("mup", "shampoo"): {"input": 0.5, "hidden": 0.0, "output": -0.5, "vector": 0.5},
    ("mup", "normalized"): {"input": 0.5, "hidden": 0.0, "output": -0.5, "vector": 0.5},
    ("mup", "width_invariant"): {"input": 0.0, "hidden": 0.0, "output": 0.0, "vector": 0.0},
    ("umup", "adam"): {"input": 0.0, "hidden": -0.5, "output": 0.0, "vector": 0.0},
    ("umup", "sgd"): {"input": 1.0, "hidden": 1.0, "output": 1.0, "vector": 1.0},
    ("mup", "muon"): {"input": 0.0, "hidden": 0.0, "output": -1.0, "vector": 0.0},
    ("mup", "muon_rms"): {"input": 0.0, "hidden": -0.5, "output": -1.0, "vector": 0.0},
    ("umup", "muon"): {"input": 0.0, "hidden": 0.5, "output": 0.0, "vector": 0.0},
    ("umup", "muon_rms"): {"input": 0.0, "hidden": 0.0, "output": 0.0, "vector": 0.0},
}

#: Families without a μP rule, each with the one-line reason it is refused under "mup"/"umup".
REFUSALS = {
    "relative": "its step is relative to each tensor's norm (a trust ratio or a parameter-scaled step): "
                "the μP hidden matrices would need n^-1/2 of it, and the zero-initialized readout and "
                "biases make the first steps fall back to an unscaled update, so no fixed per-role "
                "multiplier is width-independent",
    "parameter_free": "it estimates one step size from distances and gradient sums over all tensors "
                      "(D-Adaptation, Prodigy, DoG-type), which grow with the parameter count; no "
                      "per-role rule is known",
    "orthogonalized": "it decides itself which tensors get an orthogonalized (Newton-Schulz) update; "
                      "the Muon rule needs hidden matrices on Muon and the rest on AdamW: use the "
                      "'muon' optimizer",
    "curvature": "it divides by a Hessian or Fisher estimate plus a fixed damping; that curvature "
                 "shrinks with width at a role-dependent rate (hidden weights ~1/n^2 under μP), so "
                 "the damping's share and hence the exponent change with width (Ishikawa and "
                 "Karakida's K-FAC rule needs the damping rescaled per layer)",
    "quasi_newton": "its line search and curvature pairs act on the flat parameter vector: there is no "
                    "per-role learning rate",
    "global_step": "it sets one step size for all tensors from global loss and gradient norms, which "
                   "scale with width differently per role; no per-role rule is known",
    "low_rank": "it projects gradients onto a low-rank subspace and rescales them, so the update's "
                "entry size depends on the projection rank against the width; no rule is known",
    "own_scaling": "it applies its own width- or norm-dependent scaling (a norm constraint, a "
                   "shape-aware factor or a target weight scale): μP multipliers on top would "
                   "scale twice",
    "switching": "it moves between Adam-type and SGD-type steps (bounds, switching or a partial "
                 "exponent), whose μP rules differ",
    "ignores_lr": "its step does not scale with the param group's learning rate, so per-role "
                  "multipliers would be ignored",
    "unverified": "no μP rule has been derived for its update (or it does not run on these problems)",
    "zeroth_sparse": "with n_coords > 0 its expected step is n_coords / (parameter count) of SGD's, "
                     "which shrinks as the width grows; use n_coords = 0 (all coordinates)",
}

#: Families a spec may declare: the rule rows (unresolved names), those that resolve to one,
#: and the refusing ones.
SCALINGS = ("adam", "sgd", "kfac", "shampoo", "muon", "normalized", "width_invariant", "zeroth", *REFUSALS)


def resolve_family(scaling: str, hparams: dict) -> str:
    """The row of ``LR_EXPONENTS`` (or the entry of ``REFUSALS``) a declared family uses with
    these hyperparameters: "shampoo" grafted onto Adam or SGD (``grafting``, default "adam")
    takes that optimizer's row; "muon" with ``adjust_lr_fn="match_rms_adamw"`` takes the
    "muon_rms" row; "zeroth" (SGD on a zeroth-order gradient estimate) takes SGD's row unless
    ``n_coords`` > 0."""
    if scaling == "shampoo":
        grafting = hparams.get("grafting", "adam")
        if grafting in ("adam", "sgd"):
            return grafting
    if scaling == "muon" and hparams.get("adjust_lr_fn", "original") == "match_rms_adamw":
        return "muon_rms"
    if scaling == "zeroth":
        return "zeroth_sparse" if (hparams.get("n_coords") or 0) > 0 else "sgd"
    return scaling


def rule_error(parametrization: str, scaling: str | None, hparams: dict | None = None) -> str | None:
    """Why an optimizer of family `scaling` (with `hparams`) cannot run under `parametrization`,
    in one line, or None when it can ("sp" always can). For the suite parser's check."""
    if parametrization == "sp":
        return None
    if parametrization not in PARAMETRIZATIONS:
        return f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}, got {parametrization!r}"
    if scaling is None:
        return (f"parametrization {parametrization!r} needs an optimizer that declares its μP "
                "learning-rate family (OptimizerSpec.scaling); this one declares none")
    family = resolve_family(scaling, hparams or {})
    if family in REFUSALS:
        return f"no μP learning-rate rule (family {scaling!r}): {REFUSALS[family]}"
    if (parametrization, family) not in LR_EXPONENTS:
        known = ", ".join(f"{p}/{s}" for p, s in LR_EXPONENTS)
        return (f"no learning-rate rule for optimizer family {family!r} under parametrization "
                f"{parametrization!r} (rules: {known})")
    return None
