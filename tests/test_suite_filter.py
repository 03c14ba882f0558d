"""An optimizer entry's ``only`` table: which problem points of its suite it runs on, and every
mistake in it as one line naming the file and the key, exit 2, nothing written."""
from __future__ import annotations

import pytest

from bench_core.cli import main
from bench_core.errors import BenchInputError
from bench_core.registry import build_registry
from bench_core.suite import parse_suite

SUITE = """
name = "f"
[[problems]]
name = "synthetic.quadratic"
sweep = { dim = [4, 8, 16] }
budget = { max_steps = 5 }
[[problems]]
name = "synthetic.kron_quadratic"
budget = { max_steps = 7 }
[[optimizers]]
name = "torch.sgd"
sweep = { lr = [0.1, 0.01] }
[[optimizers]]
name = "torch.adam"
"""


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _suite(registry, only: dict | None = None, second: dict | None = None):
    problems = [{"name": "synthetic.quadratic", "sweep": {"dim": [4, 8, 16]}, "budget": {"max_steps": 5}},
                {"name": "synthetic.kron_quadratic", "budget": {"max_steps": 7}}]
    first = {"name": "torch.sgd", "sweep": {"lr": [0.1, 0.01]}}
    if only is not None:
        first["only"] = only
    return parse_suite({"problems": problems, "optimizers": [first, second or {"name": "torch.adam"}]},
                       "s.toml", registry).trials


def _pairs(trials, optimizer):
    return sorted((t.problem, t.params.get("dim"), t.hparams["lr"]) for t in trials if t.optimizer == optimizer)


def test_only_narrows_one_entry_and_leaves_the_others(registry):
    trials = _suite(registry, {"dim": [4, 16]})
    # the parameter narrows the problem that has it; kron_quadratic has no dim and keeps the entry
    assert _pairs(trials, "torch.sgd") == sorted(
        [("synthetic.quadratic", d, lr) for d in (4, 16) for lr in (0.1, 0.01)]
        + [("synthetic.kron_quadratic", None, lr) for lr in (0.1, 0.01)])
    assert len(_pairs(trials, "torch.adam")) == 3 + 1  # untouched: every point of both problems


def test_only_by_problem_name_and_by_budget(registry):
    by_name = _suite(registry, {"problem": ["synthetic.kron_quadratic"]})
    assert {t.problem for t in by_name if t.optimizer == "torch.sgd"} == {"synthetic.kron_quadratic"}
    by_budget = _suite(registry, {"max_steps": [5]})
    assert {(t.problem, t.budget.max_steps) for t in by_budget if t.optimizer == "torch.sgd"} == {
        ("synthetic.quadratic", 5)}


def test_only_does_not_change_a_trials_identity(registry):
    """A trial kept by `only` is the same trial (same key and id) as without the table."""
    plain = {t.trial_id for t in _suite(registry)}
    narrowed = {t.trial_id for t in _suite(registry, {"dim": [8]})}
    assert narrowed < plain


BAD = [
    ("not_a_table", 'only = [4]', "optimizers[0].only: expected a table"),
    ("empty_list", 'only = { dim = [] }', "optimizers[0].only.dim: expected a non-empty list"),
    ("unknown_param", 'only = { width = [4] }',
     "optimizers[0].only.width: unknown key: no problem of the suite takes it (expected problem, max_steps"),
    ("value_not_in_sweep", 'only = { dim = [4, 5] }',
     "optimizers[0].only.dim: 5 is not a value of the suite's problems (dim takes 4, 8, 16"),
    ("unknown_problem", 'only = { problem = ["vision.digits_mlp"] }',
     "optimizers[0].only.problem: 'vision.digits_mlp' is not a value of the suite's problems"),
    ("budget_not_in_suite", 'only = { max_steps = [6] }', "optimizers[0].only.max_steps: 6 is not a value"),
    ("nothing_left", 'only = { problem = ["synthetic.quadratic"], max_steps = [7] }',
     "optimizers[0].only: leaves torch.sgd no problem of the suite to run on"),
]


@pytest.mark.parametrize("case, line, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_only_table_is_one_line_exit_2_and_writes_nothing(case, line, message, tmp_path, capsys):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.replace('sweep = { lr = [0.1, 0.01] }', f'sweep = {{ lr = [0.1, 0.01] }}\n{line}'))
    code = main(["run", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert message in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_a_true_is_not_a_one(registry):
    """Suite values compare as TOML values: a boolean never matches an integer."""
    with pytest.raises(BenchInputError, match="True is not a value"):
        _suite(registry, {"dim": [True]})
