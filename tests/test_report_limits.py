"""`bench report` of a large study: a bounded number of figures (the first problems', each figure
at most MAX_SETTINGS_DRAWN settings, the best first), a line saying what was left out and the
`bench plot` command that draws it, the tables unchanged by the figures' limits; tables bounded to
the best --rows settings per problem, saying how many they leave out; CSVs over MAX_INLINE_CSV
written beside the page, every trial exactly once; the trials CSV line by line; the scaling
section needs the curves only for a size sweep."""
from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from bench_core import html_report, scaling_figures, store
from bench_core.store import read_curves, read_trials, to_json, write_trial
from bench_core.trial import SCHEMA_VERSION

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def row(problem, optimizer, seed, ttt, hparams=None, params=None):
    """A trial that reached its target after `ttt` seconds (None: it did not)."""
    hparams = hparams or {}
    key = json.dumps([problem, params, optimizer, hparams])
    return {
        "schema_version": SCHEMA_VERSION, "code_id": "code0", "run_id": "r", "suite": "s",
        "key_id": hashlib.sha256(key.encode()).hexdigest()[:16],
        "trial_id": hashlib.sha256(f"{key}{seed}".encode()).hexdigest()[:16],
        "problem": problem, "problem_params": to_json(params or {}), "kind": "training", "optimizer": optimizer,
        "hparams": to_json(hparams), "label": optimizer, "seed": seed, "device": "cpu", "dtype": "float32",
        "budget": to_json({"max_steps": 100}), "targets": to_json({"loss": 1e-3}),
        "status": "target_reached" if ttt else "ok", "steps": int((ttt or 5) * 20), "train_time_s": ttt or 5.0,
        "time_to_target_s": ttt, "steps_to_target": int(ttt * 20) if ttt else None,
        "metrics": {"loss": 1e-4 if ttt else 1e-2}, "counters": {}, "git_commit": "c" * 40, "git_dirty": False,
        "host": "h", "started_at": T0, "ended_at": T0,
    }


def curve(rate):
    return [(s, s * 0.05, "loss", float(np.exp(-rate * s))) for s in range(0, 40, 4)]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """3 problems × (2 optimizers + one swept over 4 learning rates) × 2 seeds."""
    out = tmp_path_factory.mktemp("study")
    for p in range(3):
        for s in range(2):
            for opt, hp, ttt in (("opt.a", None, 1.0 + 0.1 * s + p), ("opt.b", None, 2.0 + 0.1 * s),
                                 *(("opt.sweep", {"lr": lr}, 1.5 + i + 0.1 * s) for i, lr in
                                   enumerate((0.1, 0.03, 0.01, 0.003)))):
                write_trial(out, row(f"p{p}", opt, s, ttt, hp), curve(1.0 / ttt))
    return out


def _page(study, monkeypatch, **limits):
    for name, value in limits.items():
        monkeypatch.setattr(html_report, name, value)
    trials = read_trials(study).assign(source=0)
    return html_report.render_report(trials, read_curves(study).assign(source=0), [str(study)])


def _tables(page: str) -> list[str]:
    """Every table of the page (the numbers), without the figures and the generation time."""
    return re.findall(r"<table.*?</table>", page, flags=re.DOTALL)


def test_a_page_draws_the_figures_of_its_first_problems_only(study, monkeypatch):
    whole = _page(study, monkeypatch)
    # per problem: loss over steps, over time, every setting, time to target, sensitivity: 5; and the profile
    assert whole.count('<svg class="chart"') == 1 + 3 * 5 and "figures left out" not in whole
    page = _page(study, monkeypatch, MAX_FIGURES=10, MAX_SETTINGS_DRAWN=3)
    assert page.count('<svg class="chart"') == 1 + 5  # one problem fits 10 figures, the second does not
    assert "Figures of the first 1 of 3 problems" in page and "at most 10 figures" in page
    sections = {s.split('"', 1)[0]: s for s in page.split('<h2 id="')[1:]}  # problem pi has anchor pi
    assert "figures left out" not in sections["p0"] and '<svg class="chart"' in sections["p0"]
    for p in ("p1", "p2"):
        assert '<svg class="chart"' not in sections[p] and "<table" in sections[p]
        assert html_report._e(f"bench plot {study} --problem '{p}' --kind curves|time|sensitivity") in sections[p]
    # each figure draws the 3 best settings of 6; its title says so
    assert "setting; the 3 best of 6)" in page and "Time to target on p0 (the 3 best of 6" in page
    assert page.count("(n=2)</text>") < whole.count("(n=2)</text>")  # fewer legend entries
    # the tables hold every number, as without the limits
    assert _tables(page) == _tables(whole)


def test_the_report_reads_only_the_curves_it_draws(study, monkeypatch, tmp_path):
    asked = []
    reader = html_report._curves_reader([str(study)])

    def spy(keys):
        asked.append(keys)
        return reader(keys)
    monkeypatch.setattr(html_report, "MAX_FIGURE_PROBLEMS", 1)
    monkeypatch.setattr(html_report, "_curves_reader", lambda dirs: spy)
    html_report.write_report([str(study)], tmp_path / "r.html")
    trials = read_trials(study)
    assert asked == [{f"0:{t}" for t in trials.loc[trials["problem"] == "p0", "trial_id"]}]
    page = (tmp_path / "r.html").read_text()
    assert page.count('<svg class="chart"') == 1 + 5 and page.count("figures left out") == 2


def test_trials_csv_lines():
    trials = pd.DataFrame([
        {"problem_label": "p", "label": "b", "optimizer": "b", "hparams": "{}", "seed": 1, "status": "ok",
         "steps": 100, "train_time_s": 0.25, "time_to_target_s": math.nan, "steps_to_target": math.nan,
         "metrics": {"loss": 0.5}, "error": None, "trial_id": "t2", "git_commit": None, "host": "h"},
        {"problem_label": "p", "label": "a", "optimizer": "a", "hparams": '{"lr": 0.1}', "seed": 0,
         "status": "error", "steps": 3, "train_time_s": 1.0, "time_to_target_s": 0.1 + 0.2,
         "steps_to_target": 2.0, "metrics": None, "error": 'bad, "quoted"', "trial_id": "t1",
         "git_commit": "c0", "host": "h"}])
    # pyarrow's writer: strings quoted, numbers at full precision (1.0 as 1), missing values empty
    assert html_report.trials_csv(trials).splitlines() == [
        ",".join(f'"{c}"' for c in html_report.TRIALS_CSV_COLUMNS),
        '"p","a","a","{""lr"": 0.1}",0,"error",3,1,0.30000000000000004,2,"{}","bad, ""quoted""","t1","c0","h"',
        '"p","b","b","{}",1,"ok",100,0.25,,,"{""loss"": 0.5}",,"t2",,"h"']


def test_size_sweep_detection():
    def frame(rows):
        return pd.DataFrame([dict.fromkeys(store.TRIAL_SCHEMA.names) | r for r in rows])
    flat = frame([row("p", "opt", s, 1.0, {"lr": lr}, {"width": 8}) for s in range(2) for lr in (0.1, 0.01)])
    assert not scaling_figures.has_size_sweep(flat)
    swept = frame([row("p", "opt", s, 1.0, {"lr": lr}, {"width": w})
                   for s in range(2) for lr in (0.1, 0.01) for w in (8, 16)])
    assert scaling_figures.has_size_sweep(swept)
    assert not scaling_figures.has_size_sweep(swept.iloc[:0])


def _rows_of(table: str) -> int:
    return table.count("<tr>") - 1  # the header row


def test_tables_show_the_best_settings_of_each_problem_and_say_how_many_are_left_out(study, monkeypatch):
    whole = _page(study, monkeypatch, MAX_FIGURE_PROBLEMS=0)  # tables only (quick); 6 settings per problem
    assert "not shown" not in whole
    trials = read_trials(study).assign(source=0)
    page = html_report.render_report(trials, read_curves(study).assign(source=0), [str(study)], per_problem=2)
    board = _tables(page.split('<h2 id="leaderboard">')[1])[0]
    assert _rows_of(board) == 3 * 2 and _rows_of(_tables(whole.split('<h2 id="leaderboard">')[1])[0]) == 3 * 6
    # the best two of each problem, as in the whole table's order
    best = [re.findall(r"<tr><td>p0</td><td>([^<]*)</td>", t)[:2] for t in (board, _tables(whole)[1])]
    assert best[0] == best[1] and len(best[0]) == 2
    assert ("12 more setting(s) on 3 problem(s) not shown (the best 2 of each problem are): <code>bench report "
            "--rows all</code> shows every one") in page
    p0 = page.split('<h2 id="p0">')[1].split("<h2")[0]
    final, sensitivity = _tables(p0)
    assert _rows_of(final) == 2 and "4 more setting(s) not shown (the best 2 are)" in p0
    # sensitivity: opt.sweep's settings among the problem's best 2 (at least its best one), of 4
    shown = _rows_of(sensitivity)
    assert 1 <= shown <= 2 and f"{4 - shown} more swept setting(s)" in p0 and "★" in sensitivity
    every = html_report.render_report(trials, read_curves(study).assign(source=0), [str(study)], per_problem=None)
    assert _tables(every) == _tables(whole)


def test_large_csvs_are_written_beside_the_page_and_hold_every_trial(study, monkeypatch, tmp_path):
    import base64
    import csv
    import io

    from bench_core.cli import main

    out = tmp_path / "r.html"
    monkeypatch.setattr(html_report, "MAX_INLINE_CSV", 500)  # the leaderboard and trials CSVs are larger
    monkeypatch.setattr(html_report, "MAX_FIGURE_PROBLEMS", 0)  # no problem's figures: quick
    assert main(["report", str(study), "-o", str(out), "--rows", "1"]) == 0
    page = out.read_text()
    assert 'href="r_files/trials.csv"' in page and 'href="r_files/leaderboard.csv"' in page
    assert "data:text/csv" not in page
    trials = read_trials(study)
    with open(tmp_path / "r_files" / "trials.csv", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert sorted(r["trial_id"] for r in lines) == sorted(trials["trial_id"])  # each trial once
    by_id = {r["trial_id"]: r for r in lines}
    for t in trials.itertuples():
        got = by_id[t.trial_id]
        assert (got["problem"], int(got["seed"]), got["status"]) == (t.problem, t.seed, t.status)
        assert float(got["time_to_target_s"]) == t.time_to_target_s and json.loads(got["metrics"]) == t.metrics
    with open(tmp_path / "r_files" / "leaderboard.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 3 * 6  # every setting, though the page's table shows 1 per problem
    # small enough again: inlined, and the stale files beside the page removed
    monkeypatch.setattr(html_report, "MAX_INLINE_CSV", 1 << 20)
    assert main(["report", str(study), "-o", str(out)]) == 0
    page = out.read_text()
    assert not (tmp_path / "r_files").exists()
    link = re.search(r'download="trials.csv" href="data:text/csv;base64,([^"]*)"', page)
    assert len(list(csv.DictReader(io.StringIO(base64.b64decode(link.group(1)).decode())))) == len(trials)


def test_bad_rows_writes_nothing(study, tmp_path, capsys):
    from bench_core.cli import main

    assert main(["report", str(study), "-o", str(tmp_path / "r.html"), "--rows", "0"]) == 2
    assert "--rows" in capsys.readouterr().err and not any(tmp_path.iterdir())
