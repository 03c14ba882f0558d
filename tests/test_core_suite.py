"""Suite files: expansion into trials, and every kind of bad input as one line with exit code 2."""
from __future__ import annotations

import pytest
import torch

from bench_core.cli import main
from bench_core.errors import BenchInputError
from bench_core.registry import build_registry
from bench_core.specs import OptimizerSpec
from bench_core.suite import load_suite, parse_suite
from bench_core.trial import Target

GOOD = """
name = "t"
seeds = [0, 1]
[[problems]]
name = "synthetic.quadratic"
params = { dim = 10 }
budget = { max_steps = 20 }
[[problems]]
name = "pde.poisson2d"
params = { n = 8 }
[[optimizers]]
name = "torch.sgd"
sweep = { lr = [0.1, 0.01] }
[[optimizers]]
name = "linear.cg"
"""


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def test_every_optimizer_runs_on_every_problem_of_its_kind_per_seed(write_suite, registry):
    suite = load_suite(write_suite(GOOD), registry)
    pairs = [(t.problem, t.optimizer, t.hparams.get("lr"), t.seed) for t in suite.trials]
    assert len(pairs) == 2 * 2 + 2  # quadratic x sgd x 2 lrs x 2 seeds; poisson x cg x 2 seeds
    assert ("synthetic.quadratic", "torch.sgd", 0.01, 1) in pairs
    assert ("pde.poisson2d", "linear.cg", None, 0) in pairs
    quad = suite.trials[0]
    assert quad.params == {"dim": 10, "condition": 1e4, "noise": 0.0}  # defaults filled in
    assert quad.budget.max_steps == 20
    assert quad.targets == (Target("loss", "min", 1e-6),)  # the problem's default target, its direction declared
    assert quad.hparams["momentum"] == 0.9  # the spec's default hparams
    assert len({t.trial_id for t in suite.trials}) == len(suite.trials)
    again = load_suite(write_suite(GOOD), registry)
    assert [t.trial_id for t in again.trials] == [t.trial_id for t in suite.trials]


def test_filters(write_suite, registry):
    path = write_suite(GOOD)
    assert {t.optimizer for t in load_suite(path, registry, ["optimizer=linear.*"]).trials} == {"linear.cg"}
    assert {t.seed for t in load_suite(path, registry, ["seed=1"]).trials} == {1}
    assert {t.problem for t in load_suite(path, registry, ["*quadratic"]).trials} == {"synthetic.quadratic"}
    with pytest.raises(BenchInputError, match="--filter"):
        load_suite(path, registry, ["color=red"])


BAD = [
    ("missing_file", None, "suite file not found"),
    ("malformed", "name = \n[[problems", "malformed TOML"),
    ("unknown_problem", GOOD.replace("synthetic.quadratic", "synthetic.quadratc"),
     "problems[0].name: unknown problem 'synthetic.quadratc' (did you mean 'synthetic.quadratic'?)"),
    ("unknown_optimizer", GOOD.replace('"torch.sgd"', '"torch.sgdd"'),
     "optimizers[0].name: unknown optimizer 'torch.sgdd' (did you mean 'torch.sgd'?)"),
    ("unknown_hparam", GOOD.replace("sweep = { lr = [0.1, 0.01] }", "hparams = { speed = 3 }"),
     "optimizers[0].hparams.speed: optimizer 'torch.sgd' takes no hyperparameter 'speed'"),
    ("wrong_hparam_type", GOOD.replace("sweep = { lr = [0.1, 0.01] }", 'hparams = { lr = "fast" }'),
     "optimizers[0].hparams.lr: expected a number (from the default 0.001 of lr in the signature of "
     "torch.sgd's factory), got 'fast'"),
    ("wrong_bool_type", GOOD.replace("sweep = { lr = [0.1, 0.01] }", "hparams = { nesterov = 1 }"),
     "optimizers[0].hparams.nesterov: expected true or false"),
    ("unknown_param", GOOD.replace("params = { dim = 10 }", "params = { size = 10 }"),
     "problems[0].params.size: problem 'synthetic.quadratic' takes no parameter 'size'"),
    ("wrong_param_type", GOOD.replace("params = { dim = 10 }", "params = { dim = 2.5 }"),
     "problems[0].params.dim: expected an integer, got 2.5"),
    ("bad_dtype", 'dtype = "float42"\n' + GOOD, "dtype: unknown dtype 'float42'"),
    ("bad_device", 'device = "tpu"\n' + GOOD, "device: unknown device 'tpu'"),
    ("bad_budget", GOOD.replace("max_steps = 20", "max_steps = -1"),
     "problems[0].budget.max_steps: expected a positive integer"),
    ("unknown_key", "colour = 1\n" + GOOD, "colour: unknown key"),
    ("no_optimizers", GOOD.split("[[optimizers]]")[0], "optimizers: expected at least one [[optimizers]] table"),
    # hostile values: a list where a scalar belongs, deep nesting, NaN, beyond int64, duplicates, floats for ints
    ("dtype_list", 'dtype = ["float32"]\n' + GOOD, "dtype: unknown dtype ['float32']"),
    ("deep_nesting", "x = " + "[" * 5000 + "]" * 5000 + "\n" + GOOD, "malformed TOML: nested too deeply"),
    ("nan_budget", GOOD.replace("max_steps = 20", "max_steps = 20, max_seconds = nan"),
     "problems[0].budget.max_seconds: expected a positive finite number, got nan"),
    ("huge_seed", GOOD.replace("seeds = [0, 1]", "seeds = [9223372036854775808]"),
     "seeds: expected a non-empty list of 64-bit integers"),
    ("duplicated_seed", GOOD.replace("seeds = [0, 1]", "seeds = [0, 0]"), "seeds: a seed is listed twice"),
    ("duplicated_entry", GOOD + '[[optimizers]]\nname = "linear.cg"\n', "optimizers: two entries give the same trial"),
    ("float_for_int", GOOD.replace("params = { dim = 10 }", "params = { dim = 1e1 }"),
     "problems[0].params.dim: expected an integer, got 10.0"),
    ("hparam_typo", GOOD.replace("sweep = { lr = [0.1, 0.01] }", "hparams = { lrr = 0.5 }"),
     "optimizers[0].hparams.lrr: optimizer 'torch.sgd' takes no hyperparameter 'lrr'; did you mean 'lr'?"),
    ("name_dotdot", GOOD.replace('name = "t"', 'name = "../.."'), "name: expected a name of letters"),
    ("name_empty", GOOD.replace('name = "t"', 'name = ""'), "name: expected a name of letters"),
    ("name_nul", GOOD.replace('name = "t"', 'name = "a\\u0000b"'), "name: expected a name of letters"),
    ("name_long", GOOD.replace('name = "t"', f'name = "{"a" * 5000}"'), "name: expected a name of letters"),
    ("problem_sweep_not_list", GOOD.replace("params = { dim = 10 }", "sweep = { dim = 10 }"),
     "problems[0].sweep.dim: expected a non-empty list of values"),
    ("problem_sweep_unknown", GOOD.replace("params = { dim = 10 }", "sweep = { width = [1, 2] }"),
     "problems[0].sweep.width: problem 'synthetic.quadratic' takes no parameter 'width'"),
    ("problem_sweep_type", GOOD.replace("params = { dim = 10 }", "sweep = { dim = [10, 2.5] }"),
     "problems[0].sweep.dim: expected an integer, got 2.5"),
    ("problem_sweep_twice", GOOD.replace("params = { dim = 10 }", "params = { dim = 10 }\nsweep = { dim = [4] }"),
     "problems[0].sweep.dim: given in params too"),
    # targets that cannot be checked (issue: "Trustworthy numbers")
    ("unreported_target", GOOD.replace("budget = { max_steps = 20 }", "budget = { max_steps = 20 }\ntarget = { val_accuracy = 0.9 }"),
     "problems[0].target.val_accuracy: problem 'synthetic.quadratic' does not report metric 'val_accuracy'"),
    ("nan_target", GOOD.replace("budget = { max_steps = 20 }", "budget = { max_steps = 20 }\ntarget = { loss = nan }"),
     "problems[0].target.loss: expected a finite number, got nan"),
]
if not torch.cuda.is_available():
    BAD.append(("absent_cuda", 'device = "cuda"\n' + GOOD, "device: device 'cuda' does not exist here"))


def test_a_float_for_an_integer_default_hyperparameter_is_accepted(registry):
    """torch.sgd's signature says weight_decay=0: a float weight decay is what that means."""
    suite = parse_suite({"problems": [{"name": "synthetic.quadratic"}],
                         "optimizers": [{"name": "torch.sgd", "hparams": {"lr": 0.1, "weight_decay": 0.01}}]},
                        "s.toml", registry)
    assert suite.trials[0].hparams["weight_decay"] == 0.01


@pytest.mark.parametrize("case, text, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, text, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "suite.toml"
    if text is not None:
        path.write_text(text)
    code = main(["run", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message in err and str(path) in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("kind", ["a_file", "under_a_file"])
def test_out_that_cannot_be_a_results_directory_is_one_line_exit_2(kind, write_suite, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    out = blocker if kind == "a_file" else blocker / "res"
    code = main(["run", str(write_suite(GOOD)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"--out {out}" in err
    assert blocker.read_text() == "not a directory"


def test_a_problem_sweep_expands_its_params_like_an_optimizer_sweep(registry):
    suite = parse_suite({"seeds": [0, 1], "problems": [{"name": "synthetic.quadratic", "params": {"condition": 10.0},
                                                        "sweep": {"dim": [4, 8, 16]}}],
                         "optimizers": [{"name": "torch.sgd", "sweep": {"lr": [0.1, 0.01]}}]}, "s.toml", registry)
    combos = {(t.params["dim"], t.params["condition"], t.hparams["lr"], t.seed) for t in suite.trials}
    assert len(suite.trials) == len(combos) == 3 * 2 * 2
    assert {c[0] for c in combos} == {4, 8, 16} and {c[1] for c in combos} == {10.0}
    assert len({t.key_id for t in suite.trials}) == 3 * 2  # sizes are part of what was run


def test_a_parametrization_needs_an_optimizer_with_a_learning_rate_rule(registry):
    """μP changes the learning rate per parameter role by the optimizer's family: an optimizer
    that declares none is refused when the suite is parsed, not when its trial runs."""
    entry = {"name": "vision.digits_mlp", "params": {"parametrization": "mup"}}
    ok = parse_suite({"problems": [entry], "optimizers": [{"name": "torch.adam"}]}, "s.toml", registry)
    assert ok.trials and ok.trials[0].params["parametrization"] == "mup"
    registry.optimizers["third.undeclared"] = OptimizerSpec("third.undeclared", torch.optim.SGD)
    try:  # every own optimizer declares a family (tests/test_mup_rules.py); a third-party one may not
        with pytest.raises(BenchInputError, match=r"s\.toml: optimizers\[0\]\.name: .*declares its μP"):
            parse_suite({"problems": [entry], "optimizers": [{"name": "third.undeclared"}]}, "s.toml", registry)
    finally:
        del registry.optimizers["third.undeclared"]
