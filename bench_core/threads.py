"""CPU thread policy: each trial runs with its own thread count, for torch and the BLAS alike.

torch's intra-op pool and the BLAS/OpenMP libraries numpy and scipy load (OpenBLAS, MKL, libgomp)
are set to the trial's count (threadpoolctl), and restored afterwards. With more than one thread,
idle OpenMP workers that spin while another library runs are told to sleep instead
(``OMP_WAIT_POLICY=PASSIVE``, ``KMP_BLOCKTIME=0``), which only takes effect when set before the
libraries load: ``quiet_openmp()`` runs first thing in `bench`, on ``import bench_core`` and in
every worker process; ``BENCH_CORE_OPENMP=inherit`` turns it off (the environment stays as given).
"""
from __future__ import annotations

import contextlib
import json
import os

#: Environment that keeps idle OpenMP threads from spinning against other libraries.
QUIET_OPENMP = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


#: Set to "inherit" to keep quiet_openmp() from touching the environment.
OPT_OUT = "BENCH_CORE_OPENMP"


def quiet_openmp() -> None:
    """Set QUIET_OPENMP in the environment where the user has not set those variables (unless
    BENCH_CORE_OPENMP=inherit)."""
    if os.environ.get(OPT_OUT) == "inherit":
        return
    for key, value in QUIET_OPENMP.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def trial_threads(n: int):
    """Run the block with `n` CPU threads in torch and in every BLAS/OpenMP library."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def blas_info() -> str:
    """JSON list of the loaded BLAS/OpenMP libraries with their thread counts (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
    return json.dumps([{k: lib.get(k) for k in keep if lib.get(k) is not None} for lib in threadpool_info()],
                      sort_keys=True)


def load_average() -> float | None:
    """The 1-minute load average of this machine (None where the OS has none)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def available_cpus() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def load_warning(threads: int, jobs: int = 1) -> str | None:
    """A warning when the machine's load leaves fewer free cores than `jobs` trials of
    `threads` threads need (timings would then measure the other load), else None."""
    load = load_average()
    cores = available_cpus()
    if load is None or load + threads * jobs <= cores + 0.5:
        return None
    return (f"load average {load:.1f} on {cores} cores leaves fewer than the {threads * jobs} free cores "
            f"this run needs ({jobs} x {threads} threads): timings will include the other load")
