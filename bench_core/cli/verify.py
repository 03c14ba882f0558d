"""`bench verify DIR...`: the integrity of results directories, as a table.

Exit code 0 when every directory is clean, 1 when one has damage (unreadable files, files of
another schema or of an older bench-core, trial files without exactly one row or holding another
trial's row, orphan curves, trials without curves, temporary files of dead writers), 2 when an
argument is not a results directory. The checks are bench_core.integrity's; nothing is written.
"""
from __future__ import annotations


def add_parser(sub) -> None:
    """Register `bench verify`."""
    p = sub.add_parser("verify", help="check results directories for damaged, foreign or orphan files")
    p.add_argument("dirs", nargs="+", help="results directories")
    p.set_defaults(func=run_verify_command)


def run_verify_command(args) -> int:
    """Print a table of findings for each damaged directory and a line per directory; 1 if any is damaged."""
    from rich.markup import escape
    from rich.table import Table

    from ..analysis import check_results_dirs
    from ..integrity import KINDS, verify_dir
    from .tables import wide_console

    check_results_dirs(args.dirs)
    reports = [verify_dir(d) for d in args.dirs]
    console = wide_console()
    for r in reports:
        if r.clean:
            continue
        table = Table(title=escape(f"{r.out}: damage found"), title_justify="left")
        table.add_column("file", no_wrap=True)  # relative to the directory, whole on one line
        table.add_column("damage", overflow="fold")
        table.add_column("detail", overflow="fold")
        for f in r.findings:
            table.add_row(escape(str(f.path.relative_to(r.out))), escape(KINDS[f.kind]), escape(f.why))
        console.print(table)
    for r in reports:
        state = "clean" if r.clean else f"{len(r.findings)} problem(s)"
        line = f"{r.out}: {r.trial_files} trial file(s), {r.curve_files} curve file(s): {state}"
        if r.quarantined:
            line += f"; {r.quarantined} file(s) in quarantine/ (moved aside by bench run)"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    damaged = [r for r in reports if not r.clean]
    if damaged:
        console.print("bench run SUITE --out DIR moves the suite's damaged trials into DIR/quarantine/ and "
                      "runs them again", markup=False, highlight=False, soft_wrap=True)
    return 1 if damaged else 0
