"""Hostile plugins (tests/fixtures/hostile_plugin, slow_plugin): clashing names are ambiguous and
refused, an entry point named like a built-in keeps both plugins, a slow import is reported
broken within its limit, an unknown name names the plugins that failed to load, and `bench
list` / `bench tune` print plugin text literally."""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import bench_core
from bench_core.cli import main
from bench_core.errors import AmbiguousNameError, BenchInputError, UnknownNameError
from bench_core.executors import registry_extensions
from bench_core.registry import build_registry
from conftest import FIXTURES, run_bench

HOSTILE = FIXTURES / "hostile_plugin"
SLOW = FIXTURES / "slow_plugin"


def install_fixture(name: str, target: Path) -> Path:
    """pip-install the fixture package tests/fixtures/<name> (with its entry points) into `target`."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(FIXTURES / name)],
                   check=True, capture_output=True)
    return target


def fixture_entry_points(package: Path, *names: str) -> list:
    """The entry points `names` that tests/fixtures/<package>/pyproject.toml declares, as
    EntryPoint objects (without a distribution: the source folder is put on sys.path instead)."""
    declared = tomllib.loads((package / "pyproject.toml").read_text())["project"]["entry-points"]["bench_core"]
    return [importlib.metadata.EntryPoint(name, declared[name], "bench_core") for name in names]


def builtin_entry_points() -> list:
    """bench-core's own entry points (not a fixture's: pip leaves its egg-info in the fixture's
    source folder, which these tests put on sys.path)."""
    return [ep for ep in importlib.metadata.entry_points(group="bench_core")
            if ep.dist is not None and ep.dist.name == "bench-core"]


@pytest.fixture
def hostile(monkeypatch):
    """The hostile fixture plugins importable from their source folder; the registry reset after."""
    monkeypatch.syspath_prepend(str(HOSTILE))
    yield lambda *names: builtin_entry_points() + fixture_entry_points(HOSTILE, *names)
    bench_core.set_registry(None)


def test_a_name_from_two_plugins_is_ambiguous_and_no_plugin_wins(hostile, write_suite, capsys):
    reg = build_registry(entry_point_list=hostile("clash_a", "clash_b"))
    # torch.adam: the built-in and the shadow; hostile.twin: two third-party plugins
    assert reg.clashes[("optimizer", "torch.adam")].plugins == ["bench_optim", "clash_a"]
    assert reg.clashes[("optimizer", "hostile.twin")].plugins == ["clash_a", "clash_b"]
    with pytest.raises(AmbiguousNameError, match="'torch.adam' is ambiguous: provided by plugins bench_optim and clash_a"):
        reg.optimizer("torch.adam")
    assert "torch.adam" not in reg.optimizers and "hostile.twin" not in reg.optimizers
    # a metric declared both ways by two plugins is ambiguous; bench_core's own declaration stands
    assert reg.clashes[("metric", "hostile.score")].plugins == ["clash_a", "clash_b"]
    assert reg.direction("hostile.score") is None
    assert reg.direction("val_accuracy") == "max"
    assert [(e.plugin, e.hook) for e in reg.errors] == [("clash_a", "bench_metrics")]
    assert "'val_accuracy' declared lower-is-better here" in reg.errors[0].message
    # the genuine plugin is not listed as failed and its other optimizers work
    assert reg.optimizer("torch.adamw").plugin == "bench_optim"
    assert any("'torch.adam' is ambiguous" in line for line in reg.warnings())

    bench_core.set_registry(reg)
    suite = write_suite("""
name = "clash"
[[problems]]
name = "synthetic.quadratic"
budget = { max_steps = 5 }
[[optimizers]]
name = "torch.adam"
""")
    assert main(["run", str(suite), "--out", str(suite.parent / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bench: error: {suite}: optimizers[0].name: optimizer 'torch.adam' is ambiguous: "
                   "provided by plugins bench_optim and clash_a; uninstall all but one of them"]
    assert not (suite.parent / "out").exists()


def test_an_entry_point_named_like_a_builtin_keeps_both_plugins(hostile):
    reg = build_registry(entry_point_list=hostile("bench_optim"))
    assert not reg.errors and not reg.clashes
    assert reg.optimizer("torch.adamw").plugin == "bench_optim"  # the built-in keeps its name
    renamed = "bench_optim@bench_hostile_plugin.fake_optim"  # no distribution: named by its module
    assert reg.optimizer("fake.opt").plugin == renamed
    assert reg.notices == [f"entry point 'bench_optim' of module bench_hostile_plugin.fake_optim has the name "
                           f"of the plugin from distribution bench-core {importlib.metadata.version('bench-core')}: "
                           f"registered as {renamed!r}"]
    # a worker process finds both through the entry points itself: neither is sent as an extra module
    assert renamed in reg.entry_point_plugins
    assert all(name != renamed for name, _ in registry_extensions(reg))


def test_a_slow_import_is_reported_broken_within_its_limit_and_the_rest_work(monkeypatch):
    monkeypatch.syspath_prepend(str(SLOW))
    monkeypatch.setenv("BENCH_PLUGIN_IMPORT_TIMEOUT", "0.5")
    reg = build_registry(entry_point_list=builtin_entry_points() + fixture_entry_points(SLOW, "slow"))
    [error] = reg.errors
    assert error.plugin == "slow" and error.hook is None
    assert "import of bench_slow_plugin did not return within 0.5 s (BENCH_PLUGIN_IMPORT_TIMEOUT)" in error.message
    assert "still running at " in error.message and "bench_slow_plugin" in error.message
    assert reg.optimizer("torch.adamw").plugin == "bench_optim"
    with pytest.raises(UnknownNameError, match=r"plugin slow failed to load: import of bench_slow_plugin"):
        reg.optimizer("slow.sgd")


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_import_time_limit_is_bad_input(monkeypatch, value):
    monkeypatch.setenv("BENCH_PLUGIN_IMPORT_TIMEOUT", value)
    with pytest.raises(BenchInputError, match="BENCH_PLUGIN_IMPORT_TIMEOUT: expected a positive number"):
        build_registry(entry_points=False)


def test_an_unknown_name_names_the_plugin_that_failed_to_load(hostile, write_suite, capsys):
    reg = build_registry(entry_point_list=hostile("hostile_lion"))
    with pytest.raises(UnknownNameError) as info:
        reg.optimizer("hostile_lion.lion")
    message = str(info.value)
    assert message.startswith("unknown optimizer 'hostile_lion.lion' (plugin hostile_lion failed to load: "
                              "ModuleNotFoundError: No module named 'lion_pytorch_is_not_installed'")
    assert "lion.py:2" in message

    bench_core.set_registry(reg)
    suite = write_suite("""
name = "lion"
[[problems]]
name = "synthetic.quadratic"
[[optimizers]]
name = "hostile_lion.lion"
""")
    assert main(["run", str(suite), "--out", str(suite.parent / "out")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"bench: error: {suite}: optimizers[0].name: unknown optimizer 'hostile_lion.lion' "
                           "(plugin hostile_lion failed to load: ModuleNotFoundError")


def test_bench_list_and_tune_print_plugin_text_literally(hostile, write_suite, tmp_path, capsys):
    bench_core.set_registry(build_registry(entry_point_list=hostile("markup", "clash_a", "clash_b", "hostile_lion")))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for text in ("markup.[/bold]sgd", "[bold red]loud[/bold red] [/]", "markup.[/bold]sphere", "[/red] closes nothing"):
        assert text in out
    twins = [line for line in out.splitlines() if line.startswith("│ hostile.twin")]
    assert len(twins) == 2 and all("CLASH" in line for line in twins)
    assert "clash_a" in twins[0] and "clash_b" in twins[1]
    assert "optimizer 'hostile.twin' is ambiguous: provided by plugins clash_a and clash_b" in out
    assert "plugin hostile_lion failed to load: ModuleNotFoundError" in out

    suite = write_suite("""
name = "markup"
[[problems]]
name = "markup.[/bold]sphere"
budget = { max_steps = 5 }
[[optimizers]]
name = "markup.[/bold]sgd"
""")
    assert main(["tune", str(suite), "--budget", "2", "--out", str(tmp_path / "tune")]) == 0
    out = capsys.readouterr().out
    assert "markup.[/bold]sphere" in out and "markup.[/bold]sgd" in out
    assert '"tag": "[/bold]"' in out or '"tag": "[red]x"' in out


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> Path:
    return install_fixture("hostile_plugin", tmp_path_factory.mktemp("hostile_site"))


def test_the_real_cli_reports_clashes_renamed_and_failed_plugins(hostile_site, tmp_path):
    listed = run_bench("list", "optimizers", cwd=tmp_path, pythonpath=hostile_site)
    assert listed.returncode == 0, listed.stderr
    version = importlib.metadata.version("bench-core")
    assert (f"entry point 'bench_optim' of distribution bench-hostile-plugin 0.0.1 has the name of the plugin "
            f"from distribution bench-core {version}: registered as 'bench_optim@bench-hostile-plugin'") in listed.stdout
    assert "optimizer 'torch.adam' is ambiguous: provided by plugins bench_optim and clash_a" in listed.stdout
    assert "bench_optim@bench-hostile-plugin" in listed.stdout and "torch.adamw" in listed.stdout

    (tmp_path / "s.toml").write_text("""
name = "fine"
[[problems]]
name = "synthetic.quadratic"
params = { dim = 4 }
budget = { max_steps = 5 }
[[optimizers]]
name = "torch.sgd"
""")
    ran = run_bench("run", "s.toml", "--out", "res", cwd=tmp_path, pythonpath=hostile_site)
    assert ran.returncode == 0, ran.stderr
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("bench: warning: ")]
    assert any("'torch.adam' is ambiguous" in line for line in warnings)
    assert any("plugin hostile_lion failed to load" in line for line in warnings)
    assert any("registered as 'bench_optim@bench-hostile-plugin'" in line for line in warnings)
    assert len(list((tmp_path / "res" / "trials").glob("*.parquet"))) == 1

