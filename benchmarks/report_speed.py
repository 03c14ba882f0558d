"""How long `bench report` takes on large results directories, against DuckDB's group-by on the
same files in the same run (not a test; prints a table).

    python benchmarks/report_speed.py [--trials 1000 10000] [--compacted-trials 100000] [--work DIR]
    python benchmarks/report_speed.py --breakdown DIR   # where `bench report DIR` spends its time

Reuses benchmarks/large_results.py: the same synthetic study (10 optimizers × 5 seeds × up to 50
problems, 100 curve points per trial), written file by file as `bench run` lays it out (`--trials`;
timed, then `bench compact`ed and timed again) or straight in the compacted layout
(`--compacted-trials`). Each `bench report` runs as a subprocess (wall time and peak memory from
GNU time); the anchor, DuckDB's median time to target per problem and label over
``DIR/trials/*.parquet``, runs as a subprocess just before it. Also prints the page's size, its
number of figures and the size of the files written beside it, and the load average before each
block. ``--breakdown`` times `html_report.write_report` in process, its time split between the
store's readers, bench_core.analysis, the figures (built and saved as SVG), the CSVs and the rest.
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import large_results  # the generators and the timer


def _time_report(base: Path, out: Path, timeout: float) -> None:
    """Print the anchor and `bench report` of `base` (with the page's size and figure count)."""
    print(f"  load {os.getloadavg()[0]:.2f}", flush=True)
    anchor, _, _ = large_results.measure([sys.executable, "-c", large_results.DUCKDB, str(base)])
    print(f"  {'duckdb group-by (anchor)':28s} {anchor:8.2f} s", flush=True)
    out.unlink(missing_ok=True)
    # timeout(1) kills the report itself (measure's own timeout kills GNU time, not its child)
    wall, peak, rc = large_results.measure(["timeout", "-s", "KILL", str(int(timeout)), sys.executable, "-m",
                                            "bench_core.cli", "report", str(base), "-o", str(out)],
                                           timeout=timeout + 60)
    if rc != 0 or not out.exists():
        print(f"  {'bench report':28s} {wall:8.2f} s  exit {rc} (killed after {timeout:.0f} s?)", flush=True)
        return
    page = out.read_text(encoding="utf-8")
    n_figures = page.count('<svg class="chart"')
    folder = out.with_name(f"{out.stem}_files")
    beside = sum(f.stat().st_size for f in folder.iterdir()) if folder.is_dir() else 0
    print(f"  {'bench report':28s} {wall:8.2f} s  cpu {large_results.measure.cpu:.1f} s  {peak:.2f} GB  "
          f"x{wall / anchor:.1f}  page {len(page) / 2 ** 20:.1f} MiB, {n_figures} figures, "
          f"{beside / 2 ** 20:.1f} MiB beside it", flush=True)


#: what --breakdown times: (module, function names, the part they count in)
_PARTS = (("store", ("read_trials", "read_curves"), "store: read trials and curves"),
          ("analysis", ("leaderboard", "settings_summary", "performance_profiles", "ranking", "setting_labels"),
           "bench_core.analysis"),
          ("figures", ("curves_figure", "time_figure", "sensitivity_figure", "profile_figure", "to_svg"),
           "figures (built, saved as SVG)"),
          ("html_report", ("trials_csv_bytes", "leaderboard_csv"), "CSVs (trials, leaderboard)"))


def breakdown(d: str) -> None:
    """Where ``html_report.write_report`` of `d` spends its wall and CPU time, by part (_PARTS;
    the functions of one part do not call another part's, so nothing counts twice)."""
    import importlib

    t0, c0 = time.perf_counter(), time.process_time()
    from bench_core import html_report
    spent: dict = {}
    inside: set = set()  # parts being timed: a call within one (leaderboard calling ranking) counts once

    def timed(f, part):
        @functools.wraps(f)
        def g(*args, **kwargs):
            if part in inside:
                return f(*args, **kwargs)
            inside.add(part)
            t, c = time.perf_counter(), time.process_time()
            try:
                return f(*args, **kwargs)
            finally:
                inside.discard(part)
                w, cpu = spent.get(part, (0.0, 0.0))
                spent[part] = (w + time.perf_counter() - t, cpu + time.process_time() - c)
        return g
    for module, names, part in _PARTS:
        mod = importlib.import_module(f"bench_core.{module}")
        for name in names:
            setattr(mod, name, timed(getattr(mod, name), part))
    print(f"  {'import':34s} wall {time.perf_counter() - t0:6.2f} s  cpu {time.process_time() - c0:6.2f} s")
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        html_report.write_report([d], Path(tmp) / "report.html")
    total = (time.perf_counter() - t0, time.process_time() - c0)
    for _, _, part in _PARTS:
        w, c = spent.get(part, (0.0, 0.0))
        print(f"  {part:34s} wall {w:6.2f} s  cpu {c:6.2f} s")
    rest = [t - sum(v[i] for v in spent.values()) for i, t in enumerate(total)]
    print(f"  {'the rest (tables, page, writes)':34s} wall {rest[0]:6.2f} s  cpu {rest[1]:6.2f} s")
    print(f"  {'write_report':34s} wall {total[0]:6.2f} s  cpu {total[1]:6.2f} s  (load {os.getloadavg()[0]:.2f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="*", default=[1000, 10000],
                    help="sizes written file by file (timed before and after bench compact)")
    ap.add_argument("--compacted-trials", type=int, nargs="*", default=[100000],
                    help="sizes written straight as compacted directories")
    ap.add_argument("--points", type=int, default=100, help="curve points per trial (default 100)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds before a report is killed")
    ap.add_argument("--work", help="where to write the directories (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the directories")
    ap.add_argument("--breakdown", metavar="DIR", help="only time write_report of DIR in process, by part")
    a = ap.parse_args(argv)
    if a.breakdown:
        breakdown(a.breakdown)
        return 0
    root = Path(a.work or tempfile.mkdtemp(prefix="report-speed-"))
    print(f"{os.cpu_count()} CPUs", flush=True)
    for n, layout in [(n, "files") for n in a.trials] + [(n, "compacted") for n in a.compacted_trials]:
        base = root / f"n{n}-{layout}"
        shutil.rmtree(base, ignore_errors=True)
        t0 = time.perf_counter()
        (large_results.generate if layout == "files" else large_results.generate_compacted)(
            base, large_results.trial_rows(n), a.points)
        print(f"\n{n} trials, {layout} (written in {time.perf_counter() - t0:.1f} s)", flush=True)
        _time_report(base, root / "report.html", a.timeout)
        if layout == "files":
            wall, _, rc = large_results.measure([sys.executable, "-m", "bench_core.cli", "compact", str(base)])
            print(f"\n{n} trials, compacted by bench compact ({wall:.1f} s, exit {rc})", flush=True)
            _time_report(base, root / "report.html", a.timeout)
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    if not a.keep and not a.work:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload after: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
