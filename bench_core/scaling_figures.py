"""Figures of the scaling fits (``bench_core.scaling.analyze``'s result) with matplotlib.

Computing only: each function returns a ``matplotlib.figure.Figure`` (or None when the result
has nothing for it), drawn on its own Agg canvas under ``bench_core.figures.STYLE``:

- ``size_figure``: the final metric at the best lr against parameters, one series per group,
  with the fitted power law;
- ``transfer_figure``: the best learning rate against width, one series per (optimizer,
  parametrization), with the fitted slope in the legend (flat under μP, drifting under SP);
- ``speedup_figure``: each optimizer's speed-up over the baseline against parameters;
- ``chinchilla_figure``: the L(N, D) points against D per size, with the fitted surface.

``write_figures(result, outdir)`` writes those that apply as PNG (atomically) and returns
their paths; ``html_section(result)`` is an HTML fragment with them inlined as SVG, or "" when
the result has no size sweep (for the HTML report).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np


def _figure(title: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .figures import STYLE

    width, height = STYLE["figure.figsize"]
    fig = Figure(figsize=(width, height + 2.0))  # room for the legend under the axes
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title)
    return fig, ax


def _legend(fig, ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=9, ncol=1)
    fig.tight_layout()


def size_figure(result: dict):
    """Final metric at the best lr against parameter count, with each group's power law."""
    fits = {f["label"]: f for f in result["size"] if f["axis"] == "n_params"}
    points = result["points"]["size"]
    if not fits:
        return None
    from matplotlib import rc_context

    from .figures import STYLE

    with rc_context(STYLE):
        fig, ax = _figure(f"{result['metric']} at the best lr against size")
        for label, fit in fits.items():
            pts = [p for p in points if p["label"] == label]
            x = np.array([p["n_params"] for p in pts])
            line = ax.plot(x, [p["final"] for p in pts], "o", ms=4)[0]
            grid = np.geomspace(x.min(), x.max(), 50)
            y = fit["a"] * grid ** -fit["alpha"] + fit["c"]
            ax.plot(grid, y, "-", color=line.get_color(),
                    label=f"{label}: α={fit['alpha']:.2f} [{fit['alpha_ci'][0]:.2f}, {fit['alpha_ci'][1]:.2f}]")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters N")
        ax.set_ylabel(result["metric"])
        _legend(fig, ax)
    return fig


def transfer_figure(result: dict):
    """Best learning rate against width per (problem, optimizer, parametrization), slope in the legend."""
    fits = result["lr_transfer"]
    if not fits:
        return None
    from matplotlib import rc_context

    from .figures import STYLE

    with rc_context(STYLE):
        fig, ax = _figure("learning-rate transfer: best lr against width")
        for fit in fits:
            pts = [p for p in result["points"]["lr"] if p["label"] == fit["label"]]
            style = "-" if fit["parametrization"] == "sp" else "--"
            ax.plot([p["width"] for p in pts], [p["lr_star"] for p in pts], style, marker="o", ms=4,
                    label=f"{fit['label']}: slope {fit['slope']:+.2f} "
                          f"[{fit['slope_ci'][0]:+.2f}, {fit['slope_ci'][1]:+.2f}]")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width")
        ax.set_ylabel("best learning rate")
        _legend(fig, ax)
    return fig


def speedup_figure(result: dict):
    """Speed-up over the baseline against parameters, one series per optimizer and group."""
    fits = result["speedup"]
    if not fits:
        return None
    from matplotlib import rc_context

    from .figures import STYLE

    with rc_context(STYLE):
        fig, ax = _figure(f"speed-up over {result['baseline']} (steps to its final loss)")
        for fit in fits:
            x, y = zip(*fit["speedups"])
            ax.plot(x, y, marker="o", ms=4, label=f"{fit['label']}: slope {fit['slope']:+.2f} "
                                                  f"[{fit['slope_ci'][0]:+.2f}, {fit['slope_ci'][1]:+.2f}]")
        ax.axhline(1.0, color="0.4", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.set_xlabel("parameters N")
        ax.set_ylabel("speed-up")
        _legend(fig, ax)
    return fig


def chinchilla_figure(result: dict):
    """L(N, D) points against D, one series per N, with the fitted surface's curves."""
    fit = result.get("chinchilla")
    if not fit:
        return None
    from matplotlib import rc_context

    from .figures import STYLE

    pts = result["points"]["chinchilla"]
    with rc_context(STYLE):
        fig, ax = _figure(f"L(N, D): α={fit['alpha']:.2f}, β={fit['beta']:.2f}, E={fit['E']:.2f}")
        for n in sorted({p["N"] for p in pts}):
            sel = sorted((p["D"], p["L"]) for p in pts if p["N"] == n)
            d = np.array([s[0] for s in sel])
            line = ax.plot(d, [s[1] for s in sel], "o", ms=4)[0]
            grid = np.geomspace(d.min(), d.max(), 50)
            ax.plot(grid, fit["E"] + fit["A"] / n ** fit["alpha"] + fit["B"] / grid ** fit["beta"], "-",
                    color=line.get_color(), label=f"N = {n:,.0f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("data D (tokens)")
        ax.set_ylabel(result["metric"])
        _legend(fig, ax)
    return fig


FIGURES = {"scaling_size": size_figure, "scaling_transfer": transfer_figure,
           "scaling_speedup": speedup_figure, "scaling_chinchilla": chinchilla_figure}


def write_figures(result: dict, outdir, fmt: str = "png") -> list[Path]:
    """Write each figure that applies to OUTDIR/<name>.<fmt> atomically; return the paths."""
    from .figures import save
    from .store import write_atomically

    out = []
    for name, build in FIGURES.items():
        fig = build(result)
        if fig is None:
            continue
        path = Path(outdir) / f"{name}.{fmt}"
        write_atomically(path, lambda tmp, fig=fig: save(fig, tmp, fmt))
        out.append(path)
    return out


def html_section(result: dict, figure=None) -> str:
    """An HTML fragment (heading, what was fit, the figures inlined as SVG by ``figure(fig)``,
    default ``bench_core.figures.to_svg``), or "" when the result has no fit (no size sweep)."""
    from .figures import to_svg

    if not (result["size"] or result["lr_transfer"] or result["speedup"] or result.get("chinchilla")):
        return ""
    figure = figure or (lambda fig: to_svg(fig, prefix=f"scaling{id(fig)}"))
    parts = ['<section id="scaling"><h2>Scaling</h2>',
             f"<p>Fits of {html.escape(result['metric'])} by <code>bench scaling</code> "
             "(power laws, learning-rate transfer, speed-ups over "
             f"{html.escape(result['baseline'])}, L(N, D)), 95% bootstrap intervals; "
             "<code>bench scaling DIR</code> prints the numbers.</p>"]
    charts = [figure(fig) for fig in (build(result) for build in FIGURES.values()) if fig is not None]
    parts.append(f'<div class="charts">{"".join(charts)}</div>')
    if result["notes"]:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in result["notes"]) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def has_size_sweep(trials) -> bool:
    """Whether the trial rows hold a size sweep (a group of ``bench_core.scaling.study_table``
    run at two sizes or more): only then does ``report_section`` find a fit, and need the curves."""
    from .scaling import study_table

    if trials is None or not len(trials) or "kind" not in trials or not (trials["kind"] == "training").any():
        return False
    if not (trials.groupby("problem")["problem_params"].nunique() > 1).any():
        return False  # sizes are problem parameters that vary within a problem: none vary
    table, _, _ = study_table(trials)
    return bool(len(table)) and bool((table.groupby("group")["size"].nunique() >= 2).any())


def report_section(trials, curves, figure=None) -> str:
    """``html_section`` of a report's trial rows and curve points (DataFrames as
    ``bench_core.store`` reads them), 100 bootstrap samples: "" when they hold no size sweep."""
    from .scaling import analyze

    if trials is None or not len(trials) or "kind" not in trials or not (trials["kind"] == "training").any():
        return ""
    return html_section(analyze(trials, curves, n_boot=100), figure)
