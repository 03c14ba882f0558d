"""The integrity of a results directory, as `bench verify DIR` reports it.

``verify_dir(DIR)`` reads every file of ``DIR/trials`` and ``DIR/curves`` in full, with the
checks of bench_core.store (``read_trial_file``, ``read_curve_file``: readable with their page
checksums, the right schema and schema version, one row per trial file, the trial id of the file
name), and looks at how the files fit together. Compacted files (``compacted-<gen>.parquet``,
bench_core.compaction) of the current generation are read in full too (each trial once, this
schema version); those of another generation are leftovers of an interrupted compaction. Each
problem is a ``Finding`` whose ``kind`` is one of ``KINDS``. It writes nothing; `bench run` is what repairs (it moves a damaged trial of its
suite aside and runs it again).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .store import (COMPACTION_FILE, DamagedFile, compacted_generation, compacted_path, current_generation,
                    read_compacted_curves, read_compacted_trials, read_curve_file, read_trial_file, stale_temps)

#: kind -> what it means, as the verify table shows it.
KINDS = {
    "unreadable": "not a readable Parquet file",
    "foreign": "a Parquet file of another schema",
    "rows": "a trial file without exactly one row",
    "wrong_id": "a row whose trial id is not its file name",
    "old_schema": "a row of an older bench-core",
    "orphan_curve": "a curve without its trial",
    "no_curve": "a trial without its curve",
    "dead_temp": "a temporary file of a dead writer",
    "stray": "not a .parquet file",
    "leftover": "a compacted file of an interrupted compaction",
}


@dataclass(frozen=True)
class Finding:
    """One problem of a results directory: the file, its kind (a key of KINDS) and why."""

    path: Path
    kind: str
    why: str


@dataclass
class DirReport:
    """What ``verify_dir`` found in one results directory."""

    out: Path
    trial_files: int = 0
    curve_files: int = 0
    #: trials in the current compacted trial file (counted in trial_files as one file)
    compacted_trials: int = 0
    findings: list = field(default_factory=list)
    #: files that `bench run` moved into DIR/quarantine/ (not damage of the directory any more)
    quarantined: int = 0

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.findings


def verify_dir(out: str | Path) -> DirReport:
    """Check every file of the results directory `out` (which must have a trials/ folder)."""
    out = Path(out)
    report = DirReport(out)
    trials = _parquet_files(out / "trials", report)
    curves = _parquet_files(out / "curves", report)
    report.trial_files, report.curve_files = len(trials), len(curves)
    compacted_ids = _check_compacted(out, report)
    gen = current_generation(out)
    report.compacted_trials = len(compacted_ids)
    report.trial_files += int(gen > 0 and compacted_path(out, "trials", gen).is_file())
    report.curve_files += int(gen > 0 and compacted_path(out, "curves", gen).is_file())
    sound_trials = set()
    for path in trials:
        try:
            read_trial_file(path)
            sound_trials.add(path.stem)
        except DamagedFile as damage:
            report.findings.append(Finding(path, damage.kind, damage.why))
    curve_stems = set()
    for path in curves:
        curve_stems.add(path.stem)
        try:
            read_curve_file(path)
        except DamagedFile as damage:
            report.findings.append(Finding(path, damage.kind, damage.why))
    trial_stems = {p.stem for p in trials}
    for path in curves:
        if path.stem not in trial_stems and path.stem not in compacted_ids:
            report.findings.append(Finding(path, "orphan_curve", f"no trials/{path.name} (its trial was "
                                                                 "never written, or was removed)"))
    for path in trials:
        if path.stem in sound_trials and path.stem not in curve_stems:
            report.findings.append(Finding(path, "no_curve", f"no curves/{path.name} (bench run writes "
                                                             "the curve first, so it was removed)"))
    for tmp in stale_temps(out):
        report.findings.append(Finding(tmp, "dead_temp", "left by a writer that died; the next "
                                                         "bench run into this directory removes it"))
    quarantine = out / "quarantine"
    report.quarantined = sum(1 for p in quarantine.rglob("*") if p.is_file()) if quarantine.is_dir() else 0
    return report


def _check_compacted(out: Path, report: DirReport) -> set:
    """Check the compacted files of `out`; the trial ids of the current compacted trial file."""
    gen = current_generation(out)
    ids: set = set()
    for sub in ("trials", "curves"):
        folder = out / sub
        for path in sorted(folder.glob("compacted-*.parquet")) if folder.is_dir() else []:
            g = compacted_generation(path.name)
            if g is not None and g != gen:
                report.findings.append(Finding(path, "leftover", f"generation {g}, not the current {gen} "
                                                                 f"({COMPACTION_FILE}); the next bench compact "
                                                                 "removes it"))
    if not gen:
        return ids
    trial_file, curve_file = compacted_path(out, "trials", gen), compacted_path(out, "curves", gen)
    for path in (trial_file, curve_file):
        if not path.is_file():
            report.findings.append(Finding(path, "unreadable", f"missing (named by {COMPACTION_FILE})"))
    if trial_file.is_file():
        try:
            ids = set(read_compacted_trials(trial_file).column("trial_id").to_pylist())
        except DamagedFile as damage:
            report.findings.append(Finding(trial_file, damage.kind, damage.why))
    if curve_file.is_file():
        try:
            curve_ids = set(read_compacted_curves(curve_file).column("trial_id").unique().to_pylist())
        except DamagedFile as damage:
            report.findings.append(Finding(curve_file, damage.kind, damage.why))
        else:
            orphans = sorted(curve_ids - ids)
            if orphans and trial_file.is_file() and ids:
                report.findings.append(Finding(curve_file, "orphan_curve",
                                               f"points of {len(orphans)} trial(s) not in {trial_file.name} "
                                               f"(first {orphans[0]})"))
    return ids


def _parquet_files(folder: Path, report: DirReport) -> list[Path]:
    """The *.parquet files of `folder` (sorted); other visible files are findings of kind stray
    (readers of the folder as a dataset would try to read them). Hidden files are skipped:
    temporary files and claims are checked apart."""
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        if path.is_file() and path.suffix == ".parquet":
            if compacted_generation(path.name) is None:  # compacted files: _check_compacted
                files.append(path)
        else:
            report.findings.append(Finding(path, "stray", f"not a .parquet file in {folder.name}/ "
                                                          "(pyarrow and pandas would read it as one)"))
    return files
