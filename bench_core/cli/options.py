"""Options shared by several commands: the executor and its watchdog (`bench run`, `bench tune`)."""
from __future__ import annotations

import math

from ..errors import BenchInputError


def add_executor_options(p) -> None:
    """--executor, --jobs, --address and --trial-timeout, shared by `bench run` and `bench tune`."""
    p.add_argument("--executor", default="local", choices=["local", "process", "ray"],
                   help="where trials run: local (default), process (a worker pool), ray (a Ray cluster)")
    p.add_argument("--jobs", type=int, help="run trials in N worker processes (implies --executor process)")
    p.add_argument("--address", help="address of an existing Ray cluster (default: $RAY_ADDRESS, else start a local one)")
    p.add_argument("--trial-timeout", type=float, metavar="SECONDS",
                   help="with --jobs or --executor ray: kill a trial without max_seconds after SECONDS and "
                        "record it as timeout (default 3600; not part of the trial's key)")


def make_executor(args):
    """The executor that --executor, --jobs and --address ask for."""
    from ..executors import get_executor

    if args.jobs is not None and args.jobs < 1:
        raise BenchInputError(f"--jobs: expected a positive number of worker processes, got {args.jobs}")
    name = args.executor
    if name == "local" and args.jobs is not None:
        name = "process"
    if args.address and name != "ray":
        raise BenchInputError("--address: only with --executor ray")
    timeout = getattr(args, "trial_timeout", None)
    watchdog = {} if timeout is None else {"trial_timeout": timeout}
    if timeout is not None:
        if not (math.isfinite(timeout) and timeout > 0):
            raise BenchInputError(f"--trial-timeout: expected a positive number of seconds, got {timeout:g}")
        if name == "local":
            raise BenchInputError("--trial-timeout: only with --jobs N or --executor process|ray "
                                  "(the local executor runs trials in this process and cannot stop a hung step)")
    if name == "process":
        return get_executor(name, jobs=args.jobs, **watchdog)
    if name == "ray":
        return get_executor(name, address=args.address, **watchdog)
    return get_executor(name)


def ensure_results_dir(out: str) -> None:
    """Create the results directory `out` (and its parents), or raise BenchInputError in one line
    when it names a file or cannot be created."""
    from pathlib import Path

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise BenchInputError(f"--out {out}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchInputError(f"--out {out}: cannot create the results directory ({exc.strerror or exc})") from None
