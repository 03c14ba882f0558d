"""Issue 15, damaged results and terminal text: every kind of damage to a results directory gets
one line naming the file, is counted once or skipped, is moved aside and run again by `bench run`,
and is reported by `bench verify`; names from plugins and suites are printed literally by the
progress bar. docs/reliability.md ("Damaged results directories") lists these cases.

One clean directory of three tiny trials is made once per module, in this process, and copied
for each case, so that the code identity (and so the trial ids) of the copies is the code under
test. The commands run in-process through ``bench_core.cli.main``.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

import bench_core
from bench_core import store
from bench_core.cli import main
from bench_core.errors import BenchInputError
from bench_core.executors.local import LocalExecutor
from bench_core.integrity import verify_dir
from bench_core.registry import build_registry
from bench_core.session import run_suite
from bench_core.suite import parse_suite

SUITE = """
name = "damaged"
seeds = [0, 1, 2]
[[problems]]
name = "synthetic.quadratic"
params = { dim = 5 }
budget = { max_steps = 20 }
[[optimizers]]
name = "torch.sgd"
hparams = { lr = 0.1 }
"""


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """(suite file, a clean results directory of its three trials, their ids by seed)."""
    tmp = tmp_path_factory.mktemp("clean")
    suite = tmp / "damaged.toml"
    suite.write_text(SUITE)
    out = tmp / "res"
    assert main(["run", str(suite), "--out", str(out)]) == 0
    ids = {row["seed"]: row["trial_id"] for row in store.read_trials(out).to_dict("records")}
    assert len(ids) == 3
    return suite, out, [ids[seed] for seed in sorted(ids)]


@pytest.fixture
def fresh(clean, tmp_path):
    """(suite file, a copy of the clean directory to damage, its trial ids by seed)."""
    suite, out, ids = clean
    copy = tmp_path / "res"
    shutil.copytree(out, copy)
    return suite, copy, ids


# --------------------------------------------------------------------------- the kinds of damage
def _truncated(out, t0, t1):
    path = store.trial_path(out, t0)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _zero_length(out, t0, t1):
    path = store.trial_path(out, t0)
    path.write_bytes(b"")
    return path


def _garbled(out, t0, t1):
    path = store.trial_path(out, t0)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xA5 for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))
    return path


def _foreign(out, t0, t1):
    path = store.trial_path(out, t0)
    pq.write_table(pa.table({"name": ["not a trial"], "value": [1.0]}), path)
    return path


def _curve_in_trials(out, t0, t1):
    path = store.trial_path(out, t0)
    shutil.copyfile(store.curve_path(out, t0), path)
    return path


def _two_rows(out, t0, t1):
    path = store.trial_path(out, t0)
    both = pa.concat_tables([pq.read_table(path), pq.read_table(store.trial_path(out, t1))])
    pq.write_table(both, path)
    return path


def _under_another_trials_name(out, t0, t1):
    path = store.trial_path(out, t0)
    shutil.copyfile(store.trial_path(out, t1), path)
    return path


def _duplicate_copy(out, t0, t1):
    path = out / "trials" / f"{t1} (copy).parquet"
    shutil.copyfile(store.trial_path(out, t1), path)
    return path


# name, damage, kind bench verify reports, trials `bench show` counts, trials `bench run` reruns
CASES = [
    ("truncated", _truncated, "unreadable", 2, 1),
    ("zero-length", _zero_length, "unreadable", 2, 1),
    ("garbled bytes", _garbled, "unreadable", 2, 1),
    ("foreign parquet", _foreign, "foreign", 2, 1),
    ("curve file in trials/", _curve_in_trials, "foreign", 2, 1),
    ("two rows", _two_rows, "rows", 2, 1),
    ("another trial's row (wrong trial id)", _under_another_trials_name, "wrong_id", 2, 1),
    # a file that is no trial of the suite: `bench run` leaves it where it is (show and verify
    # report it); the trial it copies counts once
    ("duplicate copy under another name", _duplicate_copy, "wrong_id", 3, 0),
]
IDS = [case[0] for case in CASES]


@pytest.fixture
def damaged(fresh, request):
    """A copy of the clean directory with one kind of damage: (suite, dir, damaged file, case)."""
    suite, copy, ids = fresh
    case = request.param
    path = case[1](copy, ids[0], ids[1])
    return suite, copy, path, case


def _lines_naming(text: str, path: Path) -> list[str]:
    return [line for line in text.splitlines() if path.name in line]


@pytest.mark.parametrize("damaged", CASES, ids=IDS, indirect=True)
def test_show_warns_once_naming_the_file_and_counts_each_trial_once(damaged, capsys):
    _, out, path, (_, _, _, counted, _) = damaged
    assert main(["show", str(out)]) == 0
    captured = capsys.readouterr()
    (warning,) = _lines_naming(captured.err, path)
    assert warning.startswith("warning: ") and warning.endswith("(skipped)")
    assert "1 damaged file(s) skipped" in captured.err
    assert "Traceback" not in captured.err
    assert f"{counted} ok" in captured.out  # the leaderboard's seeds
    df = store.read_trials(out, on_skip=lambda p, why: None)
    assert len(df) == counted and df["trial_id"].is_unique
    assert df.attrs["skipped"] == [(str(path), df.attrs["skipped"][0][1])]


@pytest.mark.parametrize("damaged", CASES, ids=IDS, indirect=True)
def test_run_moves_the_damaged_trial_aside_and_reruns_only_it(damaged, capsys):
    suite, out, path, (_, _, _, _, reruns) = damaged
    damaged_bytes = path.read_bytes()
    sound = {p: p.stat().st_mtime_ns for p in (out / "trials").glob("*.parquet") if p != path}
    assert main(["run", str(suite), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"{3 - reruns} trial(s) already complete" in captured.out
    assert {p: p.stat().st_mtime_ns for p in sound} == sound  # the sound trials were not touched
    moved = out / "quarantine" / "trials" / path.name
    if reruns:
        assert len(_lines_naming(captured.err, path)) == 1
        assert "1 damaged trial(s) moved into" in captured.err
        assert moved.read_bytes() == damaged_bytes
        assert (out / "quarantine" / "curves" / path.name).is_file()  # its curve went with it
        store.read_trial_file(path)  # rewritten by the rerun
        assert verify_dir(out).clean
        assert main(["verify", str(out)]) == 0
    else:
        assert not moved.exists() and path.read_bytes() == damaged_bytes
    df = store.read_trials(out, on_skip=lambda p, why: None)
    assert len(df) == 3 and df["trial_id"].is_unique


@pytest.mark.parametrize("damaged", CASES, ids=IDS, indirect=True)
def test_verify_reports_the_damage_and_exits_1(damaged, capsys):
    _, out, path, (_, _, kind, _, _) = damaged
    assert main(["verify", str(out)]) == 1
    captured = capsys.readouterr()
    assert path.name in captured.out and "1 problem(s)" in captured.out
    assert [(f.path, f.kind) for f in verify_dir(out).findings] == [(path, kind)]


@pytest.mark.parametrize("command", ["report", "compare", "history", "precision"])
def test_every_reading_command_skips_damage_with_one_line_per_file(clean, fresh, tmp_path, capsys, command):
    _, out, _ = clean
    _, copy, ids = fresh
    damaged = [_truncated(copy, ids[0], ids[1]), _curve_in_trials(copy, ids[1], ids[0]),
               _duplicate_copy(copy, ids[0], ids[2])]
    args = {"report": ["report", str(copy), "-o", str(tmp_path / "r.html")],
            "compare": ["compare", str(out), str(copy)], "history": ["history", str(copy)],
            "precision": ["precision", str(copy)]}[command]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for path in damaged:
        assert len(_lines_naming(err, path)) >= 1
    assert "3 damaged file(s) skipped" in err


@pytest.mark.parametrize("folder", ["trials", "curves"])
def test_garbled_bytes_anywhere_never_read_as_a_different_value(clean, tmp_path, folder):
    # every 97th offset of the file XORed: the read fails with DamagedFile (page checksums, the
    # footer's checks) or gives back exactly what was written (the bytes were statistics or
    # metadata no value depends on)
    _, out, ids = clean
    src = out / folder / f"{ids[0]}.parquet"
    read = store.read_trial_file if folder == "trials" else store.read_curve_file
    expected, data = read(src), src.read_bytes()
    dst = tmp_path / folder / src.name
    dst.parent.mkdir()
    detected = 0
    for offset in range(0, len(data) - 16, 97):
        garbled = bytearray(data)
        garbled[offset:offset + 16] = bytes(b ^ 0xA5 for b in garbled[offset:offset + 16])
        dst.write_bytes(bytes(garbled))
        try:
            assert read(dst).equals(expected), offset
        except store.DamagedFile:
            detected += 1
    assert detected > 0


# --------------------------------------------------------------------------- more kinds, for verify and run
def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(proc.stdout)


def _orphan_curve(out, t0):
    store.trial_path(out, t0).unlink()
    return store.curve_path(out, t0)


def _no_curve(out, t0):
    store.curve_path(out, t0).unlink()
    return store.trial_path(out, t0)


def _dead_temp(out, t0):
    host = store._writer_tag().rsplit("-", 1)[0]
    path = out / "trials" / f".{t0}.parquet.{host}-{_dead_pid()}.abc123.tmp"
    path.write_bytes(b"partial")
    return path


def _old_schema(out, t0):
    path = out / "trials" / "0123456789abcdef.parquet"
    pq.write_table(pa.table({"run_id": ["r"], "trial_id": ["0123456789abcdef"], "status": ["ok"]}), path)
    return path


def _stray(out, t0):
    path = out / "trials" / "notes.txt"
    path.write_text("not results")
    return path


def _truncated_curve(out, t0):
    path = store.curve_path(out, t0)
    path.write_bytes(path.read_bytes()[:-20])
    return path


VERIFY_CASES = [
    ("orphan curve", _orphan_curve, "orphan_curve"),
    ("trial without curve", _no_curve, "no_curve"),
    ("temp file of a dead writer", _dead_temp, "dead_temp"),
    ("row of an older bench-core", _old_schema, "old_schema"),
    ("file that is not parquet", _stray, "stray"),
    ("truncated curve", _truncated_curve, "unreadable"),
]


@pytest.mark.parametrize("name, damage, kind", VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES])
def test_verify_reports_every_other_kind(fresh, capsys, name, damage, kind):
    _, copy, ids = fresh
    path = damage(copy, ids[0])
    assert main(["verify", str(copy)]) == 1
    assert path.name in capsys.readouterr().out
    assert [(f.path, f.kind) for f in verify_dir(copy).findings] == [(path, kind)]


def test_verify_exits_0_on_a_clean_directory_and_2_on_one_that_is_not_results(clean, tmp_path, capsys):
    _, out, _ = clean
    assert main(["verify", str(out)]) == 0
    assert "3 trial file(s), 3 curve file(s): clean" in capsys.readouterr().out
    assert main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "not a results directory" in err and len(err.splitlines()) == 1


def test_a_damaged_curve_is_skipped_by_readers_and_its_trial_rerun(fresh, capsys):
    suite, copy, ids = fresh
    curve = _truncated_curve(copy, ids[0])
    skipped = []
    curves = store.read_curves(copy, on_skip=lambda p, why: skipped.append(p))
    assert skipped == [curve] and set(curves["trial_id"]) == set(ids[1:])
    assert main(["run", str(suite), "--out", str(copy)]) == 0
    captured = capsys.readouterr()
    assert len(_lines_naming(captured.err, curve)) == 1 and "2 trial(s) already complete" in captured.out
    assert (copy / "quarantine" / "curves" / curve.name).is_file()
    assert (copy / "quarantine" / "trials" / curve.name).is_file()
    assert verify_dir(copy).clean


def test_a_trial_without_its_curve_runs_again(fresh, capsys):
    suite, copy, ids = fresh
    trial = _no_curve(copy, ids[0])
    assert main(["run", str(suite), "--out", str(copy)]) == 0
    captured = capsys.readouterr()
    assert "1 damaged trial(s) moved into" in captured.err and "2 trial(s) already complete" in captured.out
    assert (copy / "quarantine" / "trials" / trial.name).is_file()
    assert verify_dir(copy).clean


def test_a_trial_read_from_two_directories_counts_once(clean, capsys):
    _, out, _ = clean
    df = store.read_trials(out, out)
    assert len(df) == 3
    err = capsys.readouterr().err
    assert err.count("already read from") == 3 and "3 damaged file(s) skipped" in err


def test_a_row_of_an_older_bench_core_is_still_refused_in_one_line(fresh):
    _, copy, ids = fresh
    old = _old_schema(copy, ids[0])
    with pytest.raises(BenchInputError) as info:
        store.read_trials(copy)
    message = str(info.value)
    assert str(old) in message and "older bench-core" in message and "\n" not in message


def test_a_file_is_checked_before_it_is_renamed_into_place(clean, tmp_path, monkeypatch):
    _, out, ids = clean
    (row,) = store.read_trials(out, trial_ids={ids[0]}).to_dict("records")
    real = pq.write_table

    def write_then_damage(table, where, **kwargs):
        real(table, where, **kwargs)
        Path(where).write_bytes(Path(where).read_bytes()[:100])  # a short write

    monkeypatch.setattr(pq, "write_table", write_then_damage)
    with pytest.raises(store.DamagedFile):
        store.write_trial(tmp_path, row, [])
    assert not list((tmp_path / "curves").iterdir())  # nothing renamed, no temporary file left


def test_quarantine_waits_for_the_claim_of_another_live_run(fresh):
    _, copy, ids = fresh
    path = _zero_length(copy, ids[0], ids[1])
    claim = store.TrialClaim.acquire(copy, ids[0])  # as if another run were rewriting the trial
    try:
        assert store.quarantine_trial(copy, ids[0]) is None
        assert path.exists()
    finally:
        claim.release()
    why, moved = store.quarantine_trial(copy, ids[0])
    assert str(path) in why and not path.exists()
    assert moved == [copy / "quarantine" / "trials" / path.name, copy / "quarantine" / "curves" / path.name]
    # a second damaged file of the same name keeps its name with a suffix
    shutil.copyfile(store.curve_path(copy, ids[1]), store.curve_path(copy, ids[0]))
    path.write_bytes(b"")
    _, again = store.quarantine_trial(copy, ids[0])
    assert again[0].name == f"{ids[0]}.1.parquet"


# --------------------------------------------------------------------------- terminal text
def _markup_plugin():
    import types

    import torch

    module = types.ModuleType("markup_test_plugin")

    def tagged_sgd(params, lr: float = 0.1, tag: str = ""):
        return torch.optim.SGD(params, lr=lr)

    @bench_core.hookimpl
    def bench_optimizers():
        return [bench_core.OptimizerSpec("markup.sgd", tagged_sgd, defaults={"lr": 0.1})]

    module.bench_optimizers = bench_optimizers
    return module


@pytest.mark.parametrize("tag", ["[/bold]", "[red]x[/]", "[link=file:///etc]"])
def test_the_progress_bar_prints_names_from_a_suite_literally(tmp_path, tag):
    registry = build_registry(plugins=[("markup_test_plugin", _markup_plugin())])
    data = {"name": "markup", "seeds": [0],
            "problems": [{"name": "synthetic.quadratic", "params": {"dim": 5}, "budget": {"max_steps": 20}}],
            "optimizers": [{"name": "markup.sgd", "hparams": {"lr": 0.1, "tag": tag}}]}
    suite = parse_suite(data, "markup.toml", registry)
    text = io.StringIO()
    console = Console(file=text, force_terminal=True, width=300, color_system=None)
    summary = run_suite(suite, tmp_path / "out", executor=LocalExecutor(registry), console=console)
    assert summary.ran == 1 and summary.rows[0]["status"] == "ok"
    assert f"tag={tag})" in text.getvalue()


def test_results_files_get_ordinary_permissions(tmp_path):
    """Written files are readable by others as an ordinary new file is (0666 less the umask),
    not mkstemp's 0600: results directories are shared between users and machines."""
    import os
    import stat

    from bench_core import store as store_module

    fd, tmp = store_module.temp_file(tmp_path, ".probe.")
    os.close(fd)
    assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o666 & ~store_module._UMASK
    store_module.ensure_root_note(tmp_path)
    note = tmp_path / store_module.ROOT_NOTE
    assert stat.S_IMODE(note.stat().st_mode) == 0o666 & ~store_module._UMASK
