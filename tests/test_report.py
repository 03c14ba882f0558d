"""`bench report`: a self-contained page whose every plugin/suite string is escaped, rendered in
headless Chromium to check that the charts drew and that nothing injected ran."""
from __future__ import annotations

import hashlib
import json
import re
from html import unescape
import shutil
import subprocess

import numpy as np
import pytest

from bench_core import svgplot
from bench_core.cli import main
from bench_core.html_report import aggregate_curve, render_report
from bench_core.store import read_curves, read_trials, to_json, write_trial

EVIL_PROBLEM = "<script>alert(1)</script>"
EVIL_OPT = '"><img src=x onerror=alert(2)>'
EVIL_ERROR = "</pre><script>document.body.setAttribute('data-pwned','1')</script>"
EVIL_HOST = "<svg onload=alert(3)>"


def row(problem, optimizer, seed, ttt, hparams=None, kind="training", status=None, error=None,
        targets=None, metrics=None):
    hparams = hparams or {}
    reached = ttt is not None
    status = status or ("target_reached" if reached else "ok")
    label = optimizer + (f"({', '.join(f'{k}={v}' for k, v in sorted(hparams.items()))})" if hparams else "")
    key = json.dumps([problem, optimizer, hparams, seed])
    return {
        "run_id": "run<1>", "trial_id": hashlib.sha256(key.encode()).hexdigest()[:16], "suite": "s<u>ite",
        "problem": problem, "problem_params": to_json({"n": "<b>4</b>"}), "kind": kind, "optimizer": optimizer,
        "hparams": to_json(hparams), "label": label, "seed": seed, "device": "cpu", "dtype": "float32",
        "budget": to_json({"max_steps": 100}), "targets": to_json(targets or {"loss": 1e-3}),
        "status": status, "error": error, "warnings": None, "steps": 100 if not reached else int(ttt * 20),
        "train_time_s": ttt or 5.0, "time_to_target_s": ttt, "steps_to_target": int(ttt * 20) if reached else None,
        "metrics": metrics or {"loss": 1e-4 if reached else 1e-2}, "counters": {},
        "git_commit": "c0ffee" * 6 + "abcd", "git_dirty": True, "package_versions": to_json({"torch": "2<x>"}),
        "host": EVIL_HOST, "cpu_model": "CPU & co", "gpu_model": None, "python_version": "3.11",
        "torch_version": "2", "cpu_count": 2, "torch_threads": 2,
    }


def curve(ttt, rate, final):
    """A loss curve decaying geometrically from 1 until the trial stopped."""
    steps = np.unique(np.geomspace(1, max(int((ttt or 5.0) * 20), 2), 25).astype(int))
    pts = [(0, 0.0, "loss", 1.0)]
    pts += [(int(s), float(s) / 20, "loss", float(max(np.exp(-rate * s), final))) for s in steps]
    return pts


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Three problems (one evil-named), an evil optimizer, a sweep, a linear system, failures."""
    out = tmp_path_factory.mktemp("results")
    for s in range(3):
        for problem in (EVIL_PROBLEM, "p.two"):
            for opt, hp, ttt, rate in ((EVIL_OPT, None, 1.0 + 0.1 * s, 0.4), ("opt.b", None, 2.0 + 0.2 * s, 0.2),
                                       ("opt.sweep", {"lr": 0.1}, 1.5, 0.3), ("opt.sweep", {"lr": 0.01}, None, 0.01),
                                       ("opt.sweep", {"lr": 1.0}, None, 0.0)):
                if hp == {"lr": 1.0}:
                    r = row(problem, opt, s, None, hp, status="diverged", error=EVIL_ERROR)
                else:
                    r = row(problem, opt, s, ttt, hp)
                write_trial(out, r, curve(ttt, rate, 1e-4 if ttt else 1e-2))
        r = row("lin.sys", "solver.cg", s, 0.3 + 0.01 * s, kind="linear_system", targets={"rel_residual": 1e-8},
                metrics={"rel_residual": 1e-9})
        write_trial(out, r, [(i, i * 0.01, "rel_residual", 10.0 ** -i) for i in range(10)])
        write_trial(out, row("p.two", "opt.err", s, None, status="error", error="ValueError: <bad>"), [])
    return out


def test_aggregate_curve_holds_each_seed_s_last_value():
    x, med, lo, hi = aggregate_curve([([0, 1, 2], [1.0, 2.0, 3.0]), ([0, 2], [3.0, 1.0])])
    assert x.tolist() == [0, 1, 2]
    assert med.tolist() == [2.0, 2.5, 2.0] and lo.tolist() == [1.0, 2.0, 1.0] and hi.tolist() == [3.0, 3.0, 3.0]
    x, med, _, _ = aggregate_curve([([1, 2], [5.0, 4.0]), ([0], [9.0])])
    assert med.tolist() == [9.0, 7.0, 6.5]  # before seed 1 starts only seed 2 counts
    assert len(aggregate_curve([(np.arange(1000), np.arange(1000.0))], limit=50)[0]) <= 50


def test_scales_and_ticks():
    assert svgplot.wants_log([1e-8, 1.0]) and not svgplot.wants_log([0.1, 0.9]) and not svgplot.wants_log([0, 5])
    s = svgplot.Scale(1e-6, 1.0, 0, 100, log=True)
    assert s(1e-6) == 0 and s(1.0) == 100 and s.ticks()[0] == pytest.approx(1e-6)
    assert svgplot.Scale(0, 10, 0, 100).ticks() == [0, 2, 4, 6, 8, 10]


def test_report_escapes_every_plugin_string(results, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(out), "--title", "<i>t</i>"]) == 0
    page = out.read_text()
    assert page.count("<script") == 1  # ours, at the end
    for evil in (EVIL_PROBLEM, EVIL_OPT, EVIL_ERROR, EVIL_HOST, "<b>4</b>", "<i>t</i>", "s<u>ite", "2<x>", "<bad>"):
        assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;svg onload=alert(3)&gt;" in page and "CPU &amp; co" in page
    # self-contained: nothing to fetch, and a policy that forbids fetching anything
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//|file:)""", page, re.I)
    assert "@import" not in page and "url(http" not in page
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert "default-src 'none'" in unescape(csp) and "connect-src" not in csp
    # the sections are there
    for heading in ("Ranking and performance profiles", "Leaderboard", "Provenance", "Hyperparameter sensitivity",
                    "Failed, diverged, stalled and timed-out trials", "Time to target", "Performance profile: training"):
        assert heading in page
    assert "ValueError: &lt;bad&gt;" in page and "diverged" in page


def test_empty_results_and_bad_input(tmp_path, capsys):
    (tmp_path / "empty" / "trials").mkdir(parents=True)
    assert main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "e.html")]) == 0
    assert "No trials" in (tmp_path / "e.html").read_text()
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "m.html")]) == 2
    assert "not a results directory" in capsys.readouterr().err
    assert not (tmp_path / "m.html").exists()


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is not installed: scripts/test.sh installs Debian's chromium package"
    return exe


def test_page_renders_in_headless_chromium(results, tmp_path):
    page = render_report(read_trials(results), read_curves(results), [str(results)])
    html = tmp_path / "report.html"
    html.write_text(page)
    n_svg = page.count('<svg class="chart"')
    assert n_svg >= 10
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", html.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0 and "<body" in dom, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom).group(1)
    charts = int(re.search(r'data-charts="(\d+)"', body).group(1))
    drawn = int(re.search(r'data-charts-drawn="(\d+)"', body).group(1))
    assert charts == n_svg and drawn == n_svg  # every chart laid out marks with a non-empty box
    assert "data-pwned" not in body  # the injected script did not run
    assert dom.count("<script") == 1 and "<img" not in dom
    assert dom.count("<path") > 3 * n_svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text


def test_merged_runs_keep_one_curve_per_directory(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d, rate in zip(dirs, (0.5, 0.1)):  # the same trial (same trial_id) run twice
        write_trial(d, row("p.one", "opt.a", 0, 1.0), [(s, s * 0.1, "loss", float(np.exp(-rate * s)))
                                                        for s in range(0, 30, 3)])
    out = tmp_path / "r.html"
    assert main(["report", *map(str, dirs), "-o", str(out)]) == 0
    page = out.read_text()
    assert "opt.a (n=2)" in page and page.count("<svg") >= 3
