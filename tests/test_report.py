"""`bench report`: a self-contained page whose every plugin/suite string is escaped, rendered in
headless Chromium to check that the figures drew with no text outside them, that nothing injected
ran and that the leaderboard sorts; every figure has axis labels; the page's CSV download holds the
leaderboard."""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html import unescape

import numpy as np
import pytest

from bench_core import analysis
from bench_core.cli import main
from bench_core.html_report import aggregate_curve, script_hash
from bench_core.store import read_trials, to_json, write_trial
from bench_core.trial import SCHEMA_VERSION

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
        "schema_version": SCHEMA_VERSION, "code_id": "code0",
        "key_id": hashlib.sha256(json.dumps([problem, optimizer, hparams]).encode()).hexdigest()[:16],
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
                metrics={"rel_residual": 1e-9, "peak_memory_bytes": 3.0 * 2 ** 20})
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


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    """The page of `results`, written once by `bench report` (figures take a while to draw)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(results), "-o", str(out), "--title", "<i>t</i>"]) == 0
    return out


def _svgs(page: str) -> list[str]:
    return re.findall(r'<svg class="chart".*?</svg>', page, flags=re.DOTALL)


def test_report_escapes_every_plugin_string(report):
    page = report.read_text()
    assert page.count("<script") == 1  # ours, at the end
    for evil in (EVIL_PROBLEM, EVIL_OPT, EVIL_ERROR, EVIL_HOST, "<b>4</b>", "<i>t</i>", "s<u>ite", "2<x>", "<bad>"):
        assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;svg onload=alert(3)&gt;" in page and "CPU &amp; co" in page
    # self-contained: nothing to fetch, and a policy that forbids fetching anything
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//|file:)""", page, re.IGNORECASE)
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


def _dump_dom(html, tmp_path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium 1280 px wide."""
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--window-size=1280,2000", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", html.as_uri()]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "<body" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def test_page_renders_in_headless_chromium(report, tmp_path):
    page = report.read_text()
    n_svg = page.count('<svg class="chart"')
    assert n_svg >= 10
    dom = _dump_dom(report, tmp_path)
    body = re.search(r"<body([^>]*)>", dom).group(1)
    charts = int(re.search(r'data-charts="(\d+)"', body).group(1))
    drawn = int(re.search(r'data-charts-drawn="(\d+)"', body).group(1))
    assert charts == n_svg and drawn == n_svg  # every chart laid out marks with a non-empty box
    assert re.search(r'data-text-clipped="(\d+)"', body).group(1) == "0"  # no text box leaves its figure
    assert "data-pwned" not in body  # the injected script did not run
    assert dom.count("<script") == 1 and "<img" not in dom
    assert dom.count("<path") > 3 * n_svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text


# Clicks the leaderboard's "train s" header twice and records the column's sort keys after each.
SORT_TEST = ("(function(){var t=document.querySelector('table.sortable'),th=t.tHead.rows[0].cells[8];"
             "function col(){return Array.prototype.map.call(t.tBodies[0].rows,function(r){"
             "return r.cells[8].getAttribute('data-v');}).join('|');}"
             "th.click();var a=col();th.click();var d=col();"
             "document.body.setAttribute('data-asc',a);document.body.setAttribute('data-desc',d);"
             "document.body.setAttribute('data-sort',th.getAttribute('aria-sort'));})();")


def test_leaderboard_sorts_on_a_click_in_chromium(report, tmp_path):
    page = report.read_text()
    ours = script_hash(re.search(r"<script>(.*?)</script>", page, flags=re.DOTALL).group(1))
    escaped = ours.replace("'", "&#x27;")
    assert escaped in page  # the page's script is the one its policy allows
    # the test's script runs after the page's, allowed by its own hash added to the policy
    page = page.replace(escaped, escaped + " " + script_hash(SORT_TEST).replace("'", "&#x27;"), 1)
    page = page.replace("</body>", f"<script>{SORT_TEST}</script></body>")
    html = tmp_path / "sort.html"
    html.write_text(page)
    body = re.search(r"<body([^>]*)>", _dump_dom(html, tmp_path)).group(1)
    asc = [float(v) for v in re.search(r'data-asc="([^"]*)"', body).group(1).split("|")]
    desc = [float(v) for v in re.search(r'data-desc="([^"]*)"', body).group(1).split("|")]
    assert asc == sorted(asc) and desc == sorted(asc, reverse=True) and len(set(asc)) > 2
    assert 'data-sort="descending"' in body


def test_every_figure_has_axis_labels_and_text_inside(report):
    svgs = _svgs(report.read_text())
    assert len(svgs) >= 10
    ns = "{http://www.w3.org/2000/svg}"
    for svg in svgs:
        root = ET.fromstring(svg)
        _, _, w, h = map(float, root.get("viewBox").split())
        groups = {g.get("id", "").rsplit("-", 1)[-1]: g for g in root.iter(f"{ns}g")}
        for label in ("xlabel", "ylabel"):
            assert "".join(groups[label].itertext()).strip(), f"a figure without its {label}"
        for t in root.iter(f"{ns}text"):
            text = "".join(t.itertext())
            moved = re.search(r"translate\((-?[\d.]+)[ ,]+(-?[\d.]+)\)", t.get("transform", ""))
            if not t.get("x") and not moved:
                continue  # mathtext (10^k): placed by its group, in tspans; the Chromium test measures it
            x, y = (float(t.get("x")), float(t.get("y"))) if t.get("x") else map(float, moved.groups())
            style = t.get("style", "")
            size = float(re.search(r"font-size: ([\d.]+)px", style).group(1))
            assert size >= 9.5, (text, size)
            assert 2 <= x <= w - 2 and 2 <= y <= h - 2, (text, x, y, w, h)  # the anchor, with a margin
            rotated = re.search(r"rotate\((-?[\d.]+)", t.get("transform", ""))
            if rotated is None or float(rotated.group(1)) == 0:  # horizontal: its (underestimated) width fits
                width = 0.45 * size * len(text)
                anchor = re.search(r"text-anchor: (\w+)", style)
                start = {"middle": x - width / 2, "end": x - width}.get(anchor.group(1) if anchor else "start", x)
                assert start >= -1 and start + width <= w + 1, (text, start, width, w)


def test_csv_download_holds_the_leaderboard(report, results):
    page = report.read_text()
    link = re.search(r'<a class="download" download="leaderboard.csv" href="data:text/csv;base64,([^"]*)"', page)
    assert link and not (report.parent / "report_files").exists()  # a small study's page is one file
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(link.group(1)).decode())))
    expected = analysis.leaderboard(analysis.setting_labels(read_trials(results)))
    assert [(r["problem"], r["setting"]) for r in rows] == [(r["problem"], r["optimizer"]) for r in expected]
    for got, want in zip(rows, expected):
        ttt = want["time_to_target_s"]
        assert (got["time_to_target_s"] == "") if ttt is None else float(got["time_to_target_s"]) == ttt
        assert int(got["seeds"]) == want["seeds"] and float(got["success_rate"]) == want["success_rate"]
    assert EVIL_PROBLEM in {r["problem"] for r in rows}  # the raw name in the data, never raw in the page
    trials_link = re.search(r'download="trials.csv" href="data:text/csv;base64,([^"]*)"', page)
    trials = list(csv.DictReader(io.StringIO(base64.b64decode(trials_link.group(1)).decode())))
    assert len(trials) == len(read_trials(results))
    assert "peak_memory (MiB)" in page  # byte counts in MiB


def test_merged_runs_keep_one_curve_per_directory(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d, rate in zip(dirs, (0.5, 0.1)):  # the same trial (same trial_id) run twice
        write_trial(d, row("p.one", "opt.a", 0, 1.0), [(s, s * 0.1, "loss", float(np.exp(-rate * s)))
                                                        for s in range(0, 30, 3)])
    out = tmp_path / "r.html"
    assert main(["report", *map(str, dirs), "-o", str(out)]) == 0
    page = out.read_text()
    assert "opt.a (n=2)" in page and page.count("<svg") >= 3
