"""asv track benchmarks of suites/asv.toml: time to target, steps to target, final value of the
target metric and fraction of failed seeds per (problem, optimizer), made by
bench_core.asv_tracks.make_tracks (which a plugin author uses the same way for their own suite;
see docs/tracking.md). The benchmarks' version is a hash of the suite file's content, so editing
suites/asv.toml starts new series by itself."""
from __future__ import annotations

from pathlib import Path

from bench_core.asv_tracks import (FAILED_STATUSES, make_tracks, run_tracked_suite, suite_grid,  # noqa: F401
                                   suite_version, values_from_store)

SUITE = Path(__file__).resolve().parent.parent / "suites" / "asv.toml"
#: asv starts a new series when this changes: the suite file's content and the row layout's version.
TRACK_VERSION = suite_version(SUITE)
PROBLEMS, OPTIMIZERS = suite_grid(SUITE)

SuiteTracks = make_tracks(SUITE)
