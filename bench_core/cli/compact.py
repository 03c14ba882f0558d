"""`bench compact DIR...`: merge the per-trial files of results directories into compacted files."""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench compact`."""
    p = sub.add_parser("compact", help="merge per-trial files into a few large Parquet files (safe "
                                       "beside a running bench run)")
    p.add_argument("dirs", nargs="+", help="results directories")
    p.set_defaults(func=run_compact_command)


def run_compact_command(args) -> int:
    """Compact each directory and print one line for it; 1 when another compaction held one."""
    import sys

    from ..analysis import check_results_dirs
    from ..compaction import CompactionBusy, compact

    check_results_dirs(args.dirs)
    busy = False
    for d in args.dirs:
        try:
            r = compact(d)
        except CompactionBusy as exc:
            print(f"bench compact: {exc}; try again when it has finished", file=sys.stderr)
            busy = True
            continue
        for path, why in r.quarantined:
            print(f"warning: {d}: a damaged compacted file moved to {path} ({why}); its trials run again "
                  "with bench run", file=sys.stderr)
        left = f", {r.left} per-trial file(s) left (held by a running bench run or damaged: see bench verify)" \
            if r.left else ""
        print(f"{d}: generation {r.generation}: {r.trials} trial(s), {r.points} curve point(s) in "
              f"trials/ and curves/compacted-{r.generation:06d}.parquet; {r.merged} trial(s) merged, "
              f"{r.removed} file(s) removed{left} ({r.seconds:.1f} s)")
    return 1 if busy else 0
