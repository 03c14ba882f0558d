"""`bench compare` and `bench history` tables at 80 and 120 columns, piped with ``COLUMNS`` set:
no line longer than the width, every number whole in one cell, short setting names with the
whole labels listed once under the tables, each test and commit subject listed once instead of
repeated on every row, and what a narrow terminal leaves out said under the table."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bench_core import compare as cmp
from bench_core.cli import main
from bench_core.cli.tables import break_name, footnote_keys
from bench_core.formatting import fmt
from bench_core.store import read_trials
from test_compare import NOISE, results
from test_history import T0, _write_run, repo  # noqa: F401  (repo: the three-commit git fixture)

LONG = {"betas": [0.9, 0.99], "lr": 0.1, "precondition_frequency": 5, "weight_decay": 0.0}
SETTINGS = (("soap", LONG), ("torch.adamw", {"lr": 0.01}))
PROBLEMS = ("synthetic.kron_quadratic", "pde.poisson2d")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """Base and head results dirs: 2 problems × 2 settings × 5 seeds; in head soap is 1.6× slower
    on the Kronecker quadratic (a regression against the run effect) and the rest is noise."""
    tmp = tmp_path_factory.mktemp("cli_compare")
    for side, commit, code in (("base", "a" * 40, "c1"), ("head", "b" * 40, "c2")):
        for problem in PROBLEMS:
            for opt, hparams in SETTINGS:
                slow = 1.6 if side == "head" and (problem, opt) == (PROBLEMS[0], "soap") else 1.0
                times = [round(0.0318123 * t * slow * (1.01 if side == "head" else 1), 7) for t in NOISE]
                results(tmp / side, times, host=side, commit=commit, code=code, problem=problem,
                        optimizer=opt, hparams=hparams)
    return str(tmp / "base"), str(tmp / "head")


def _table_cells(lines: list[str]) -> list[str]:
    return [c.strip() for line in lines if line.startswith("│") for c in line.strip("│").split("│")]


def _run(args, width, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", str(width))  # piped (capsys): COLUMNS decides the width
    rc = main(args)
    return rc, capsys.readouterr().out


@pytest.mark.parametrize("width", [80, 120])
def test_compare_fits_the_width_and_never_splits_a_number(dirs, width, monkeypatch, capsys):
    base, head = dirs
    rc, out = _run(["compare", base, head, "--run-tolerance", "0.05", "--all"], width, monkeypatch, capsys)
    assert rc == 1  # the slowed soap is a regression
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    cells = _table_cells(lines)
    headers = {c.strip() for line in lines if line.startswith("┃") for c in line.strip("┃").split("┃")}
    result = cmp.compare(read_trials(base), read_trials(head), run_tolerance=0.05)
    for c in result.changes:  # each number whole in one cell
        assert f"×{fmt(c.ratio)}" in cells, (c.quantity, width)
        if c.p_value is not None:
            assert f"{c.p_value:.3g}" in cells
        if "base" in headers:
            assert fmt(c.base) in cells and fmt(c.head) in cells
        if c.rel_ratio is not None:
            ci = f" [{fmt(c.ci[0])}, {fmt(c.ci[1])}]" if "÷ run [CI]" in headers else ""
            assert f"×{fmt(c.rel_ratio)}{ci}" in cells
    slowed = next(c for c in result.changes if c.quantity == "time_to_target_s" and c.verdict == "regression")
    assert slowed.problem == PROBLEMS[0] and slowed.rel_ratio == pytest.approx(1.6, rel=0.05)
    if width == 120:  # everything fits ...
        assert {"base", "head", "n", "÷ run [CI]"} <= headers and "left out" not in out
    else:  # ... at 80 what is left out is said
        assert "÷ run" in headers and "left out at this width: intervals" in " ".join(out.split())
    # short names in the table, the whole labels once under it
    table = "\n".join(line for line in lines if line.startswith("│"))
    assert "soap #1" in table and "torch.adamw #2" in table and "precondition_frequency" not in table
    settings = lines[lines.index("settings:") + 1:][:2]
    assert settings == ["#1  soap(betas=[0.9, 0.99], lr=0.1, precondition_frequency=5, weight_decay=0)",
                        "#2  torch.adamw(lr=0.01)"]
    # a problem named once (a row of its own; not flagged, so not in the second table), not on every row
    assert sum(PROBLEMS[1] in line for line in lines if line.startswith("│")) == 1
    # the tests: a letter after each verdict, each text once in the legend
    tests = lines[lines.index("tests:") + 1:]
    for text in {c.test for c in result.changes}:
        assert text not in table
        assert sum(text in " ".join(t.split()) for t in " ".join(tests).split("\n")) == 1
    verdicts = [c for c in cells if re.fullmatch(r"(unchanged|untested|regression|improvement|changed) [a-z]+", c)]
    assert any(v.startswith("regression ") for v in verdicts)


def _history_dirs(tmp_path, commits):
    """Results dirs of three commits (two problems each, under one long folder name): the newest
    doubles the loss."""
    losses = [[1.00, 1.02, 0.98], [1.01, 0.99, 1.00], [2.00, 2.03, 1.98]]
    dirs = []
    for i, (commit, loss) in enumerate(zip(commits, losses)):
        out = tmp_path / "results-of-the-nightly-run" / f"run{i}"
        for problem, opt in (("synthetic.kron_quadratic", "soap"), ("synthetic.quadratic", "torch.adamw")):
            _write_run(out, commit, loss, T0 + timedelta(hours=i), problem=problem, optimizer=opt,
                       steps=[100 + i] * 3)
        dirs.append(str(out))
    return dirs


@pytest.mark.parametrize("width", [80, 120])
def test_history_fits_the_width_and_lists_what_repeats_once(tmp_path, repo, width, monkeypatch, capsys):  # noqa: F811
    path, commits = repo
    dirs = _history_dirs(tmp_path, commits)
    rc, out = _run(["history", *dirs, "--repo", str(path)], width, monkeypatch, capsys)
    assert rc == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    cells = _table_cells(lines)
    for loss in ([1.00, 1.02, 0.98], [1.01, 0.99, 1.00], [2.00, 2.03, 1.98]):
        assert f"{sorted(loss)[1]:.4g}" in cells  # the median whole
    assert "+100.3%" in cells  # the change whole
    assert {"run0", "run1", "run2"} <= set(cells)  # directories in their common folder, said once
    flat = " ".join(out.split())
    parent = tmp_path / "results-of-the-nightly-run"  # longer than 80: folded where it must be
    assert f"directoriesin{parent}/" in "".join(out.split())
    headers = {c.strip() for line in lines if line.startswith("┃") for c in line.strip("┃").split("┃")}
    assert ("mean ± std" in headers) == (width == 120)
    assert ("left out at this width: mean ± std" in flat) == (width == 80)
    commit_lines = lines[lines.index("commits:") + 1:][:3]  # subjects once, not in every table
    assert commit_lines == [f"{c[:10]}  commit {i}" for i, c in enumerate(commits)]
    assert sum("commit 2" in line for line in lines) == 1
    assert any(re.fullmatch(r"worse [a-z]", c) for c in cells)  # a flag and the letter of its test
    compared = lines[lines.index("compared:") + 1:lines.index("commits:")]
    assert len(compared) == len(set(compared)) >= 2


def test_shared_helpers():
    assert break_name("results-of-the-nightly-run/run0", 12, "/-_.") == ["results-of-", "the-nightly-", "run/run0"]
    assert break_name("run effect over 5 key(s)", 12, "._ ") == ["run effect", "over 5", "key(s)"]
    keys = footnote_keys(["x", "y", "x", *map(str, range(26))])
    assert (keys["x"], keys["y"], keys["23"], keys["24"], keys["25"]) == ("a", "b", "z", "aa", "ab")
