"""bench_core.figures and `bench plot`: every kind in every format opens, has labelled axes and no
text outside the figure; units, legend order, the profile's ρ = 0 and ρ = 1 inside the frame, and
SVG ids unique per figure so several share one page."""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import matplotlib.image
import numpy as np
import pytest

from bench_core import analysis, figures
from bench_core.cli import build_parser, main
from bench_core.cli.plot import build_figure
from bench_core.store import to_json, write_trial
from bench_core.trial import SCHEMA_VERSION

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def trial(problem, optimizer, seed, ttt, hparams=None, commit="c0ffee", kind="training", status=None,
          metrics=None, targets=None, day=0):
    """A trial row: reached its target after `ttt` seconds (None: it did not)."""
    hparams = hparams or {}
    key = json.dumps([problem, optimizer, hparams])
    reached = ttt is not None
    return {
        "schema_version": SCHEMA_VERSION, "key_id": hashlib.sha256(key.encode()).hexdigest()[:16],
        "code_id": commit, "trial_id": hashlib.sha256(f"{key}{seed}{commit}".encode()).hexdigest()[:16],
        "run_id": "r", "suite": "s", "problem": problem, "problem_params": to_json({}), "kind": kind,
        "optimizer": optimizer, "hparams": to_json(hparams), "label": optimizer, "seed": seed,
        "device": "cpu", "dtype": "float32", "budget": to_json({"max_steps": 100}),
        "targets": to_json(targets or {"loss": 1e-3}),
        "status": status or ("target_reached" if reached else "ok"), "steps": int((ttt or 5) * 20),
        "train_time_s": ttt or 5.0, "time_to_target_s": ttt, "steps_to_target": int(ttt * 20) if reached else None,
        "metrics": metrics or {"loss": 1e-4 if reached else 1e-2, "val_accuracy": 0.9,
                               "peak_memory_bytes": 3.0 * 2 ** 20 * (1 + seed)},
        "counters": {}, "git_commit": commit * 6 + "abcd", "git_dirty": False, "host": "h",
        "started_at": T0 + timedelta(days=day), "ended_at": T0 + timedelta(days=day, seconds=10),
    }


def loss_curve(ttt, rate):
    """Loss decaying geometrically until the trial stopped, and a rising validation accuracy."""
    steps = np.unique(np.geomspace(1, max(int((ttt or 5.0) * 20), 2), 20).astype(int))
    pts = [(0, 0.0, "loss", 1.0), (0, 0.0, "val_accuracy", 0.1)]
    for s in steps:
        pts += [(int(s), s / 20.0, "loss", float(max(np.exp(-rate * s), 1e-4))),
                (int(s), s / 20.0, "val_accuracy", float(1 - 0.9 * np.exp(-rate * s)))]
    return pts


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two training problems with a swept optimizer, a linear system, and a second commit."""
    out = tmp_path_factory.mktemp("fig_results")
    for s in range(3):
        for problem in ("p.one", "p.two_with_a_long_name.width1000.depth12.condition100000"):
            for opt, hp, ttt, rate in (("opt.a", None, 1.0 + 0.1 * s, 0.4), ("opt.b", None, 2.0 + 0.2 * s, 0.2),
                                       ("opt.sweep", {"lr": 0.1}, 1.5, 0.3),
                                       ("opt.sweep", {"lr": 0.01}, None, 0.01),
                                       ("opt.sweep", {"lr": 0.001}, None, 0.001)):
                write_trial(out, trial(problem, opt, s, ttt, hp), loss_curve(ttt, rate))
            write_trial(out, trial(problem, "opt.a", s, 0.9, commit="beef", day=1), loss_curve(0.9, 0.45))
        write_trial(out, trial("lin.sys", "solver.cg", s, 0.3, kind="linear_system",
                               targets={"rel_residual": 1e-8}, metrics={"rel_residual": 1e-9}),
                    [(i, i * 0.01, "rel_residual", 10.0 ** -i) for i in range(10)])
        write_trial(out, trial("lin.sys", "solver.jacobi", s, 0.6, kind="linear_system",
                               targets={"rel_residual": 1e-8}, metrics={"rel_residual": 1e-9}),
                    [(i, i * 0.02, "rel_residual", 10.0 ** (-i / 2)) for i in range(20)])
    return out


def clipped_texts(fig) -> list[str]:
    """What of a drawn figure leaves the figure (1 px tolerance): each title, axis label, legend
    entry and annotation by its text, and "tick labels" when the box of everything drawn (tick
    labels within the axes' limits included) leaves it."""
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    box = fig.bbox

    def outside(e):
        return e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1
    ticks = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
             for tick in axis.get_major_ticks() + axis.get_minor_ticks() for t in (tick.label1, tick.label2)}
    out = []
    for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent")):
        if id(t) in ticks or not t.get_visible() or not t.get_text().strip() \
                or (t.axes is not None and not t.axes.get_visible()):
            continue
        if outside(t.get_window_extent(renderer)):
            out.append(t.get_text())
    if outside(fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)):
        out.append("tick labels")
    return out


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


KIND_ARGS = {"curves": [], "profile": [], "time": [], "sensitivity": [], "history": ["--problem", "p.*"]}


@pytest.mark.parametrize("kind", sorted(KIND_ARGS))
def test_each_kind_has_labelled_axes_and_nothing_clipped(results, kind):
    args = build_parser().parse_args(["plot", str(results), "--kind", kind, *KIND_ARGS[kind]])
    trials, index = figures.load([results])
    fig, _ = build_figure(args, trials, index)
    assert fig is not None and visible_axes(fig)
    for ax in visible_axes(fig):
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), (kind, ax.get_title())
    assert clipped_texts(fig) == []
    w, h = fig.get_size_inches()
    assert w == pytest.approx(7.0) and h >= 2.5


@pytest.mark.parametrize("fmt, kinds", [("pdf", ("curves",)), ("svg", ("profile", "sensitivity")), ("png", ("time",))])
def test_bench_plot_files_open(results, tmp_path, fmt, kinds):
    """Each format once, each kind once (every kind's axes and clipping: the test above)."""
    for kind in kinds:
        out = tmp_path / f"{kind}.{fmt}"
        assert main(["plot", str(results), "--kind", kind, "--format", fmt, "-o", str(out)]) == 0
        data = out.read_bytes()
        if fmt == "pdf":
            assert data.startswith(b"%PDF")
        elif fmt == "png":
            img = matplotlib.image.imread(out)
            assert img.shape[0] > 400 and img.shape[1] > 1000  # 7 in at 200 dpi
        else:
            root = ET.fromstring(data)
            texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text]
            assert texts, "svg.fonttype none keeps text as <text>"
        assert not list(tmp_path.glob(".*.tmp"))


def test_bench_plot_options_and_errors(results, tmp_path, capsys):
    out = tmp_path / "c.svg"
    assert main(["plot", str(results), "--problem", "p.one", "--metric", "val_accuracy", "--x", "time",
                 "--every-setting", "-o", str(out)]) == 0
    svg = out.read_text()
    assert "val_accuracy" in svg and "opt.sweep(lr=0.001)" in svg and "training time (s)" in svg
    assert main(["plot", str(results), "--metric", "nope", "-o", str(tmp_path / "x.pdf")]) == 2
    assert "no curve of 'nope'" in capsys.readouterr().err
    assert main(["plot", str(results), "--problem", "zzz*", "-o", str(tmp_path / "x.pdf")]) == 2
    assert main(["plot", str(results), "--format", "png", "-o", str(tmp_path / "x.pdf")]) == 2
    assert main(["plot", str(tmp_path / "missing"), "-o", str(tmp_path / "x.pdf")]) == 2
    assert not (tmp_path / "x.pdf").exists()


def test_profile_frame_and_legend_order(results):
    trials, _ = figures.load([results])
    profiles = analysis.performance_profiles(trials)
    fig = figures.profile_figure([p for p in profiles if p["kind"] == "training"])
    ax = visible_axes(fig)[0]
    lo, hi = ax.get_ylim()
    assert lo < 0 < 1 < hi  # ρ = 0 and ρ = 1 are not hidden on the frame
    entries = [t.get_text() for t in fig.legends[0].get_texts()]
    scores = [float(e.rsplit("score ", 1)[1].rstrip(")")) for e in entries]
    assert scores == sorted(scores, reverse=True) and entries[0].startswith("opt.a")


def test_curves_legend_follows_the_leaderboard(results):
    trials, index = figures.load([results])
    fig = figures.curves_figure(trials, index, ["p.one"], every_setting=True)
    entries = [t.get_text().split(" (n=")[0] for t in fig.legends[0].get_texts() if t.get_text() != "target"]
    order = [r["optimizer"] for r in analysis.leaderboard(trials) if r["problem"] == "p.one"]
    assert entries == order and len(entries) == 6
    best_only = figures.curves_figure(trials, index, ["p.one"])
    assert len(best_only.legends[0].get_texts()) == 4  # each optimizer's best setting (settings_summary), target


def test_units():
    assert figures.time_unit([0.02, 0.5]) == (1e3, "ms") and figures.time_unit([0.5, 3.0]) == (1.0, "s")
    assert figures.metric_unit("peak_memory_bytes") == (2.0 ** -20, "MiB")
    assert figures.metric_axis_label("peak_memory_bytes") == "peak_memory (MiB)"
    assert figures.metric_axis_label("loss") == "loss"
    assert figures.wants_log([1e-8, 1.0]) and not figures.wants_log([0.1, 0.9]) and not figures.wants_log([0, 5])
    assert figures.wrap("opt(a=1, b=2, c=3)", 8).count("\n") >= 1


def test_svg_for_a_page_has_prefixed_unique_ids(results):
    trials, index = figures.load([results])
    svgs = [figures.to_svg(figures.curves_figure(trials, index, [p]), f"f{i}")
            for i, p in enumerate(["p.one", "lin.sys"])]
    ids = []
    for i, svg in enumerate(svgs):
        root = ET.fromstring(svg)
        assert root.get("viewBox") and root.get("class") == "chart" and root.get("width") is None
        mine = [e.get("id") for e in root.iter() if e.get("id")]
        assert all(x.startswith(f"f{i}-") for x in mine)
        ids += mine
        assert f'id="f{i}-xlabel"' in svg and f'id="f{i}-ylabel"' in svg
        assert "<metadata" not in svg and "<?xml" not in svg
    assert len(ids) == len(set(ids))
