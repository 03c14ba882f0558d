"""The asv benchmarks (benchmarks/): every module imports, the track grid matches
suites/asv.toml, and the track values are what bench_core's store holds. asv itself is not run."""
from __future__ import annotations

import inspect
import json
import math
import os
import pkgutil
import re
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is a folder of the repository, not an installed package

import benchmarks  # noqa: E402
from bench_core.store import read_trials  # noqa: E402
from bench_core.suite import load_suite  # noqa: E402
from benchmarks import bench_hotpaths, bench_tracks  # noqa: E402
from bench_core.asv_tracks import make_tracks, suite_version  # noqa: E402

BENCH_PREFIXES = ("time_", "timeraw_", "mem_", "peakmem_", "track_")


def _benchmark_methods(cls):
    return [(n, f) for n, f in inspect.getmembers(cls, inspect.isfunction) if n.startswith(BENCH_PREFIXES)]


def test_asv_conf_points_at_benchmarks():
    from asv.util import load_json  # the same reader asv uses (the file has // comments)

    conf = load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    assert conf["benchmark_dir"] == "benchmarks"
    assert conf["environment_type"] == "virtualenv"
    assert conf["matrix"]["req"]["torch"] == ["2.13.0"]
    assert any("{wheel_file}[all]" in c for c in conf["install_command"])


def test_asv_discovers_exactly_our_benchmarks():
    """asv imports every module of benchmark_dir: each must be import-safe, and the plain scripts
    must not define anything asv would take for a benchmark."""
    from asv_runner.discovery import disc_benchmarks

    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)]
    assert {"bench_tracks", "bench_hotpaths", "harness_overhead"} <= set(names)
    found = sorted(b.name for b in disc_benchmarks(str(ROOT / "benchmarks")))
    assert found == [
        "bench_hotpaths.HarnessOverhead.time_loop", "bench_hotpaths.HarnessOverheadShare.track_overhead",
        "bench_hotpaths.OptimizerStep.peakmem_step", "bench_hotpaths.OptimizerStep.time_step",
        "bench_hotpaths.SolverIteration.peakmem_iteration", "bench_hotpaths.SolverIteration.time_iteration",
        "bench_tracks.SuiteTracks.track_failed_fraction",
        "bench_tracks.SuiteTracks.track_final_metric", "bench_tracks.SuiteTracks.track_steps_to_target",
        "bench_tracks.SuiteTracks.track_time_to_target"]


def test_track_grid_matches_suite():
    suite = load_suite(bench_tracks.SUITE)
    problems = list(dict.fromkeys(t.problem for t in suite.trials))
    optimizers = list(dict.fromkeys(t.optimizer for t in suite.trials))
    grid = bench_tracks.SuiteTracks.params
    assert bench_tracks.SuiteTracks.param_names == ["problem", "optimizer"]
    assert sorted(grid[0]) == sorted(problems)
    assert sorted(grid[1]) == sorted(optimizers)
    assert bench_tracks.suite_grid(ROOT / "suites" / "asv.toml") == (grid[0], grid[1])


def test_tracked_targets_are_lower_is_better():
    suite = load_suite(bench_tracks.SUITE)
    for trial in suite.trials:
        assert trial.device == "cpu"
        assert trial.targets
        for target in trial.targets:
            assert target.direction == "min", f"{trial.problem}: asv needs lower-is-better"


def test_every_benchmark_has_unit_and_pinned_version():
    tracks = _benchmark_methods(bench_tracks.SuiteTracks)
    assert {n for n, _ in tracks} == {"track_time_to_target", "track_steps_to_target", "track_final_metric",
                                      "track_failed_fraction"}
    for cls in (bench_tracks.SuiteTracks, bench_hotpaths.OptimizerStep, bench_hotpaths.SolverIteration,
                bench_hotpaths.HarnessOverhead, bench_hotpaths.HarnessOverheadShare):
        methods = _benchmark_methods(cls)
        assert methods, cls
        for name, fn in methods:
            assert isinstance(getattr(fn, "version", None), str), f"{cls.__name__}.{name}: no version"
            if name.startswith("track_"):
                assert getattr(fn, "unit", None), f"{cls.__name__}.{name}: no unit"


SMALL_SUITE = """
name = "asv-small"
seeds = [0, 1, 2]
device = "cpu"
dtype = "float32"

[[problems]]
name = "synthetic.quadratic"
params = { dim = 10, condition = 10.0 }
budget = { max_steps = 300 }
target = { loss = 1e-4 }

[[problems]]
name = "pde.poisson2d"
params = { n = 8 }
dtype = "float64"
budget = { max_steps = 100 }
target = { rel_residual = 1e-8 }

[[optimizers]]
name = "torch.sgd"
hparams = { lr = 0.3 }

[[optimizers]]
name = "torch.adam"
hparams = { lr = 1e-3 }

[[optimizers]]
name = "linear.cg"
"""


@pytest.fixture(scope="module")
def small_results(tmp_path_factory):
    """setup_cache of SuiteTracks on a small suite of the same shape as suites/asv.toml."""
    tmp = tmp_path_factory.mktemp("asv_cache")
    suite = tmp / "small.toml"
    suite.write_text(SMALL_SUITE)
    tracks = make_tracks(suite, module="tests_asv_small")  # what a plugin author's module does
    assert tracks.params == [["synthetic.quadratic", "pde.poisson2d"], ["torch.sgd", "torch.adam", "linear.cg"]]
    mp = pytest.MonkeyPatch()
    mp.chdir(tmp)  # asv runs setup_cache in a cache folder of its own
    try:
        out = tracks().setup_cache()
    finally:
        mp.undo()
    return out


def _expected(trials, problem, optimizer, column):
    rows = trials[(trials["problem"] == problem) & (trials["optimizer"] == optimizer)]
    if column == "final":
        metric = next(iter(json.loads(rows["targets"].iloc[0])))
        return statistics.median(m[metric] for m in rows["metrics"])
    values = [float(v) if s == "target_reached" else math.inf for s, v in zip(rows["status"], rows[column])]
    median = statistics.median(values)
    return median if math.isfinite(median) else math.nan


def test_track_values_equal_store(small_results):
    trials = read_trials(small_results)
    assert len(trials) == 3 * 3  # quadratic x (sgd, adam), poisson x cg; three seeds
    bench = bench_tracks.SuiteTracks()
    checked = 0
    for problem, optimizer in [("synthetic.quadratic", "torch.sgd"), ("synthetic.quadratic", "torch.adam"),
                               ("pde.poisson2d", "linear.cg")]:
        bench.setup(small_results, problem, optimizer)
        for method, column in (("track_time_to_target", "time_to_target_s"),
                               ("track_steps_to_target", "steps_to_target"), ("track_final_metric", "final")):
            got = getattr(bench, method)(small_results, problem, optimizer)
            want = _expected(trials, problem, optimizer, column)
            assert (math.isnan(got) and math.isnan(want)) or got == want, (problem, optimizer, method)
            checked += 1
    assert checked == 9
    bench.setup(small_results, "pde.poisson2d", "linear.cg")
    assert bench.track_steps_to_target(small_results, "pde.poisson2d", "linear.cg") > 0
    # adam with lr=1e-3 does not reach the target in 300 steps: time-to-target is NaN (asv: failed)
    bench.setup(small_results, "synthetic.quadratic", "torch.adam")
    assert math.isnan(bench.track_time_to_target(small_results, "synthetic.quadratic", "torch.adam"))
    sub = trials[(trials["problem"] == "synthetic.quadratic") & (trials["optimizer"] == "torch.adam")]
    want = float(sub["status"].isin(["diverged", "stalled", "error", "timeout"]).mean())
    assert bench.track_failed_fraction(small_results, "synthetic.quadratic", "torch.adam") == want


def test_pairs_outside_the_suite_are_skipped(small_results):
    with pytest.raises(NotImplementedError):
        bench_tracks.SuiteTracks().setup(small_results, "pde.poisson2d", "torch.sgd")


def test_hotpath_benchmarks_run_once():
    """One call of each hot-path benchmark (no timing asserted)."""
    step = bench_hotpaths.OptimizerStep()
    step.setup("torch.sgd")
    before = [p.detach().clone() for p in step.params_]
    step.time_step("torch.sgd")
    assert any(not (a == p).all() for a, p in zip(before, step.params_))
    with pytest.raises(NotImplementedError):
        step.setup("no.such.optimizer")
    it = bench_hotpaths.SolverIteration()
    it.setup("linear.cg")
    it.time_iteration("linear.cg")


PLUGIN_BENCHMARK = """
from pathlib import Path
from bench_core.asv_tracks import make_tracks

SuiteTracks = make_tracks(Path(__file__).resolve().parent.parent / "suites" / "mine.toml")
"""


def test_a_plugin_authors_suite_is_tracked_with_a_few_lines(tmp_path):
    """make_tracks in someone else's benchmarks module: asv discovers the four tracks there, with
    the grid of their suite, a version that follows the suite file's content, and a setup cache
    keyed by their module."""
    from asv_runner.discovery import disc_benchmarks

    (tmp_path / "suites").mkdir()
    suite = tmp_path / "suites" / "mine.toml"
    suite.write_text(SMALL_SUITE)
    bench_dir = tmp_path / "mybench"
    bench_dir.mkdir()
    (bench_dir / "__init__.py").write_text("")
    (bench_dir / "bench_mine.py").write_text(PLUGIN_BENCHMARK)
    sys.path.insert(0, str(tmp_path))
    try:
        found = {b.name: b for b in disc_benchmarks(str(bench_dir))}
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "mybench" or m.startswith("mybench.")]:
            del sys.modules[name]
    assert sorted(found) == ["bench_mine.SuiteTracks.track_failed_fraction", "bench_mine.SuiteTracks.track_final_metric",
                             "bench_mine.SuiteTracks.track_steps_to_target",
                             "bench_mine.SuiteTracks.track_time_to_target"]
    bench = found["bench_mine.SuiteTracks.track_time_to_target"]
    assert bench.version == suite_version(suite)
    assert bench.setup_cache_key.startswith("bench_mine:")
    assert bench.params == [["'synthetic.quadratic'", "'pde.poisson2d'"], ["'torch.sgd'", "'torch.adam'", "'linear.cg'"]]
    before = suite_version(suite)
    suite.write_text(SMALL_SUITE.replace("max_steps = 300", "max_steps = 301"))
    assert suite_version(suite) != before  # an edited suite starts new series by itself
    with pytest.raises(ValueError, match="one make_tracks per benchmarks module"):
        make_tracks(suite, module="tests_asv_small")


# --------------------------------------------------------------------------- the published site offline
ASV_CONF = ('{"version": 1, "project": "tiny", "repo": ".", "branches": ["master"], "environment_type": '
            '"existing", "benchmark_dir": "benchmarks", "results_dir": "results", "html_dir": "html"}')


def _load_in_chromium(html_dir: Path, tmp_path: Path) -> str:
    """The DOM of html_dir/index.html served on localhost, with every other host unresolvable."""
    import shutil
    import subprocess
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is not installed: scripts/test.sh installs Debian's chromium package"

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(html_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--virtual-time-budget=8000",
               f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
               f"http://127.0.0.1:{server.server_address[1]}/index.html"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    finally:
        server.shutdown()


def test_published_site_renders_offline_in_chromium(tmp_path):
    """asv publish on a one-benchmark project, then scripts/asv_offline.py rewrite: the page draws
    its summary grid and plot with every CDN unreachable; the page as asv wrote it does not."""
    import shutil
    import subprocess

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import asv_offline
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    missing = [f"{n}:{p}" for n, p in asv_offline.REFERENCES.values()
               if not (asv_offline.package_dir(asv_offline.DEFAULT_VENDOR, n) / p).is_file()]
    assert not missing, (f"{asv_offline.DEFAULT_VENDOR} lacks {missing[:2]}: run `python scripts/asv_offline.py "
                         "fetch` (scripts/setup.sh does)")
    project = tmp_path / "tiny"
    (project / "benchmarks").mkdir(parents=True)
    (project / "benchmarks" / "__init__.py").write_text("")
    (project / "benchmarks" / "bench_tiny.py").write_text("def track_answer():\n    return 42.0\n")
    (project / "asv.conf.json").write_text(ASV_CONF)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(tmp_path)}

    def sh(*cmd):
        proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc.stdout
    sh("git", "init", "-q", "-b", "master")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "one")
    commit = sh("git", "rev-parse", "HEAD").strip()
    sh(sys.executable, "-m", "asv", "machine", "--yes")
    sh(sys.executable, "-m", "asv", "run", "--quick", "-E", f"existing:{sys.executable}", "--set-commit-hash", commit)
    sh(sys.executable, "-m", "asv", "publish")
    html = project / "html"
    original = tmp_path / "original"
    shutil.copytree(html, original)
    assert asv_offline.main(["rewrite", str(html)]) == 0
    page = (html / "index.html").read_text()
    assert "https://" not in "".join(re.findall(r"<script[^>]*>|<link[^>]*stylesheet[^>]*>", page))
    dom = _load_in_chromium(html, tmp_path)
    assert "bench_tiny.track_answer" in dom and "flot-base" in dom, dom[-2000:]
    assert "continental origin of swallow" not in dom
    broken = _load_in_chromium(original, tmp_path)
    assert "flot-base" not in broken  # CDNs unreachable: asv's own page gives up (error.html)
    (html / "index.html").write_text(page.replace("vendor/jquery@3.3.1/dist/jquery.min.js",
                                                  "https://example.invalid/jquery-9.min.js"))
    assert asv_offline.main(["rewrite", str(html)]) == 2  # a CDN file it does not know: refused
