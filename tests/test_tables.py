"""Terminal tables and export formats: the leaderboard at 80 columns (no long line, no number
split, short names with the settings listed), Markdown/CSV/LaTeX/JSON carrying the leaderboard's
numbers, `bench show --filter`, `bench list plugins`, and the progress bar in a pseudo-terminal."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
import textwrap

import pytest
from rich.console import Console

from bench_core import analysis, formatting
from bench_core.cli import main
from bench_core.cli.tables import print_leaderboard
from bench_core.store import write_trial
from test_analysis import frame, row

LONG = {"betas": [0.9, 0.99], "lr": 0.1, "precondition_frequency": 5, "weight_decay": 0.0}


def _rows():
    rows = []
    for s in range(3):
        rows.append(row(problem="synthetic.kron_quadratic", optimizer="soap", hparams=LONG, seed=s, ttt=0.142 + s / 100,
                        metrics={"loss": 3.82e-7 + s * 1e-9}))
        rows.append(row(problem="synthetic.kron_quadratic", optimizer="torch.adamw",
                        hparams={"lr": 0.01, "weight_decay": 0.01}, seed=s, ttt=None, metrics={"loss": 0.0104}))
        rows.append(row(problem="pde.poisson2d", optimizer="linear.cg", seed=s, ttt=0.0318123 + s / 1000,
                        targets={"rel_residual": 1e-8}, metrics={"rel_residual": 9.38e-9}))
    return rows


@pytest.fixture(scope="module")
def board():
    return analysis.leaderboard(frame(_rows()))


def _printed(board, width):
    buf = io.StringIO()
    print_leaderboard(board, Console(file=buf, width=width, color_system=None), title="t")
    return buf.getvalue()


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?")


@pytest.mark.parametrize("width", [80, 120])
def test_leaderboard_fits_the_width_and_never_splits_a_number(board, width):
    text = _printed(board, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    table = "\n".join(line for line in lines if line.startswith("│"))
    cells = [c.strip() for line in table.splitlines() for c in line.strip("│").split("│")]
    for r in board:  # every number appears whole in one cell
        for value in (r["final_metric"], r["steps"] if r["time_to_target_s"] is None else r["steps_to_target"]):
            assert formatting.fmt(value) in cells, (formatting.fmt(value), width)
    assert "soap #1" in table and "torch.adamw #2" in table and "linear.cg" in table  # short names ...
    assert "precondition_frequency" not in table
    settings = lines[lines.index("settings:") + 1:][:2]  # ... and the whole labels under the table
    assert settings == ["#1  soap(betas=[0.9, 0.99], lr=0.1, precondition_frequency=5, weight_decay=0)",
                        "#2  torch.adamw(lr=0.01, weight_decay=0.01)"]
    cg = next(line for line in table.splitlines() if "linear.cg" in line)
    assert ("[" in cg) == (width == 120)  # the bootstrap interval where it fits


def _number(cell: str):
    cell = cell.strip()
    return None if cell in ("", "—", "---") else float(cell)


def test_csv_and_json_round_trip_the_numbers_markdown_and_latex_to_3_digits(board):
    recs = formatting.leaderboard_records(board)
    parsed = list(csv.DictReader(io.StringIO(formatting.leaderboard_csv(board))))
    as_json = json.loads(formatting.leaderboard_json(board))
    assert len(parsed) == len(as_json) == len(board)
    for rec, c, j, r in zip(recs, parsed, as_json, board):
        for key in ("time_to_target_s", "steps_to_target", "final_metric", "train_time_s", "success_rate"):
            assert (rec[key] is None and c[key] == "") or float(c[key]) == rec[key]
            assert j[key] == r[key]
        assert tuple(j["time_to_target_ci"]) == tuple(r["time_to_target_ci"])
        assert c["setting"] == r["optimizer"] and json.loads(c["statuses"]) == r["statuses"]
    md = formatting.leaderboard_markdown(board).splitlines()
    header = [h.strip() for h in md[0].strip("|").split("|")]
    body = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))] for line in md[2:2 + len(board)]]
    tex = formatting.leaderboard_latex(board).splitlines()
    tex_rows = [line.rstrip("\\ ").split(" & ") for line in tex if line.count(" & ") == len(header) - 1][1:]
    assert len(tex_rows) == len(board)
    for rec, mcells, tcells in zip(recs, body, tex_rows):
        for col, key in (("time to target s", "time_to_target_s"), ("final", "final_metric"), ("steps", "steps")):
            for cells in (mcells, tcells):
                got = _number(cells[header.index(col)].replace("\\", ""))
                want = rec[key]
                assert (got is None and want is None) or math.isclose(got, want, rel_tol=5e-3), (col, got, want)
        assert tcells[header.index("setting")] == formatting.latex_escape(rec["setting"])


def test_show_filters_and_formats(tmp_path, capsys):
    for r in _rows():
        write_trial(tmp_path, r, [(0, 0.0, "loss", 1.0)])
    assert main(["show", str(tmp_path), "--format", "json", "--filter", "optimizer=*.cg"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["optimizer"] for r in out] == ["linear.cg"]
    assert main(["show", str(tmp_path), "--format", "csv", "--filter", "synthetic.*", "--filter", "seed=1"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["optimizer"] for r in rows} == {"soap", "torch.adamw"} and {r["seeds"] for r in rows} == {"1"}
    assert main(["show", str(tmp_path), "--filter", "colour=red"]) == 2
    assert "key must be problem, optimizer or seed" in capsys.readouterr().err
    assert main(["show", str(tmp_path), "--filter", "optimizer=nothing*"]) == 2


def test_list_plugins_names_distribution_version_and_what_each_provides(capsys):
    from bench_core.code_identity import installed_version

    assert main(["list", "plugins"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if "│ bench_synthetic" in l)
    assert "bench-core" in line and installed_version("bench-core") in line and "ok" in line
    assert re.search(r"\d+ problems", line)


PROGRESS = textwrap.dedent("""
    import time
    from rich.console import Console
    from bench_core.session import progress_bar
    with progress_bar(Console(stderr=True)) as p:
        t = p.add_task("smoke", total=20, last="")
        for i in range(4):
            time.sleep(0.2)
            p.update(t, advance=1, last="target_reached: synthetic.kron_quadratic seed=0 soap(betas=[0.9, 0.99], "
                                        "lr=0.1, precondition_frequency=5, weight_decay=0)")
""")


def test_progress_bar_keeps_count_and_eta_in_a_pseudo_terminal(tmp_path, width=80):
    import shutil

    script = tmp_path / "bar.py"
    script.write_text(PROGRESS)
    if not shutil.which("script"):
        pytest.fail("util-linux `script` is needed to run a pseudo-terminal")
    env = {**os.environ, "COLUMNS": str(width), "TERM": "xterm"}
    proc = subprocess.run(["script", "-qec", f"{sys.executable} {script}", "/dev/null"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stdout)
    last = [line for line in plain.replace("\r", "\n").splitlines() if line.strip()][-1]
    assert len(last) <= width
    assert "smoke" in last and " 4/20 " in last and re.search(r"eta \d+:\d\d:\d\d", last), last
    assert last.endswith("…") and "target_reached" in last  # the trial text is cut, not the bar


def test_sweep_summary_at_80_columns_names_the_best_setting_by_its_key():
    from bench_core.cli.tables import print_leaderboard_and_summary

    rows = [row(problem="synthetic.kron_quadratic", optimizer="torch.sgd", hparams={"lr": lr, "momentum": 0.9},
                seed=s, ttt=t + s / 10, metrics={"loss": 3.11e-5 * t}) for lr, t in ((0.1, 1.0), (0.01, 2.0))
            for s in range(2)]
    buf = io.StringIO()
    print_leaderboard_and_summary(frame(rows), Console(file=buf, width=80, color_system=None), "t")
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    summary = text[text.index("Hyperparameter sweeps"):]
    best = next(line for line in summary.splitlines() if "torch.sgd" in line)
    assert "#2" in best and "loss=3.11e-05" in best  # torch.sgd(lr=0.1, ...) is #2 in the listed settings
    assert "#2  torch.sgd(lr=0.1, momentum=0.9)" in text


def test_piped_output_follows_COLUMNS(tmp_path, capsys, monkeypatch):
    for r in _rows():
        write_trial(tmp_path, r, [(0, 0.0, "loss", 1.0)])
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["show", str(tmp_path)]) == 0
    narrow = capsys.readouterr().out
    assert max(len(line) for line in narrow.splitlines()) <= 80
    monkeypatch.delenv("COLUMNS")
    assert main(["show", str(tmp_path)]) == 0  # piped without COLUMNS: wide, the interval shown
    wide = capsys.readouterr().out
    assert max(len(line) for line in wide.splitlines()) > 80 and "[0.0318, " in wide
