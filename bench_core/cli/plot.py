"""`bench plot DIR... --kind curves|profile|time|sensitivity|history -o FILE`: one figure of
results directories as PDF, SVG or PNG, for papers (bench_core.figures draws it; matplotlib is
imported only when the command runs)."""
from __future__ import annotations

import fnmatch
from pathlib import Path

KINDS = ("curves", "profile", "time", "sensitivity", "history")
FORMATS = ("pdf", "svg", "png")


def add_parser(sub) -> None:
    """Register `bench plot`."""
    p = sub.add_parser("plot", help="save one figure of results directories as PDF, SVG or PNG")
    p.add_argument("dirs", nargs="+", help="results directories (merged)")
    p.add_argument("--kind", choices=KINDS, default="curves",
                   help="curves (a metric over steps or time, median and range over seeds), profile "
                        "(performance profiles), time (time to target), sensitivity (final metric per "
                        "hyperparameter setting), history (a metric over commits); default curves")
    p.add_argument("--format", choices=FORMATS, help="file format (default: from the suffix of -o, else pdf)")
    p.add_argument("-o", "--output", help="file to write (default KIND.FORMAT)")
    p.add_argument("--problem", help="only problems matching this glob (one panel per problem)")
    p.add_argument("--metric", help="curves: the metric to plot (default: each problem's primary metric); "
                                    "history: final (default), time_to_target_s, ... or a metric name")
    p.add_argument("--x", choices=("step", "time"), default="step", help="curves: against steps or time")
    p.add_argument("--every-setting", action="store_true",
                   help="curves: draw every hyperparameter setting, not only each optimizer's best")
    p.add_argument("--no-title", action="store_true", help="leave the panel titles out (for a caption instead)")
    p.set_defaults(func=run_plot_command)


def _output(args) -> tuple[Path, str]:
    """The file to write and its format."""
    from ..errors import BenchInputError

    suffix = Path(args.output).suffix.lstrip(".").lower() if args.output else ""
    fmt = args.format or (suffix if suffix in FORMATS else "pdf")
    if args.output and suffix in FORMATS and suffix != fmt:
        raise BenchInputError(f"-o {args.output}: the suffix says {suffix}, --format says {fmt}")
    return Path(args.output or f"{args.kind}.{fmt}"), fmt


def build_figure(args, trials, curve_index):
    """The figure `args` ask for, from labelled trials and their curve index
    (``bench_core.figures.load``); BenchInputError when the selection leaves nothing to draw."""
    from .. import analysis, figures
    from ..errors import BenchInputError

    if args.problem:
        keep = [fnmatch.fnmatchcase(lab, args.problem) or fnmatch.fnmatchcase(p, args.problem)
                for lab, p in zip(trials["problem_label"], trials["problem"])]
        trials = trials[keep]
        if not len(trials):
            raise BenchInputError(f"--problem {args.problem}: no problem matches")
    if not len(trials):
        raise BenchInputError("no trials in these results directories")
    title = not args.no_title
    colours = figures.colour_map(trials)
    if args.kind == "history":
        from ..history import FINAL, build_history, select

        # history matches a setting across code versions: labels per key, not per code
        df = select(analysis.setting_labels(trials, by_code=False), args.metric or FINAL)
        series, _ = build_history(df, args.metric or FINAL)  # directions: those the rows recorded
        return figures.history_figure(series, title=title), "no series to plot"
    rows = analysis.leaderboard(trials)
    settings = analysis.settings_summary(trials)
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    if args.kind == "curves":
        if args.metric:
            known = sorted({m for p in problems for m in figures.problem_metrics(trials, curve_index, p)})
            if args.metric not in known:
                raise BenchInputError(f"--metric: no curve of {args.metric!r} on these problems "
                                      f"(curves: {', '.join(known) or 'none'})")
        fig = figures.curves_figure(trials, curve_index, problems, args.metric, args.x, args.every_setting,
                                    rows, settings, colours, title=title)
        return fig, "no curves recorded"
    if args.kind == "profile":
        profiles = analysis.performance_profiles(trials, settings=settings)
        return figures.profile_figure(profiles, colours, title=title), "no performance profile"
    if args.kind == "time":
        return figures.time_figure(rows, problems, colours, title=title), "no setting reached its target"
    return (figures.sensitivity_figure(settings, problems, colours, title=title),
            "no optimizer ran several settings on one problem")


def run_plot_command(args) -> int:
    """Draw the figure and write it (atomically); say where."""
    from .. import figures
    from ..analysis import check_results_dirs
    from ..errors import BenchInputError
    from ..store import write_atomically
    from .tables import wide_console

    check_results_dirs(args.dirs)
    out, fmt = _output(args)
    trials, curve_index = figures.load(args.dirs)
    fig, why = build_figure(args, trials, curve_index)
    if fig is None:
        raise BenchInputError(f"--kind {args.kind}: nothing to plot ({why})")
    write_atomically(out, lambda tmp: figures.save(fig, tmp, fmt))
    wide_console().print(f"plot: {out}", highlight=False)
    return 0
