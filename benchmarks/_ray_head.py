"""A real local Ray head for benchmarks/ray_study.py and tests/test_ray_cluster.py.

``local_ray_head()`` runs ``ray start --head --block`` on 127.0.0.1 (a free port, no dashboard,
its own temporary directory under /tmp) in a new session, yields the address a driver passes to
``ray.init(address=...)`` (``bench run --executor ray --address``), and stops the head on the way
out, also on Ctrl-C. It stops only the processes it started: SIGTERM to the head's process group,
then, after a few seconds, SIGKILL to whatever is left of its session (Ray's daemons and workers). ``ray stop`` is not used: it
stops every Ray process on the machine, including other users' heads. Token authentication is
off on both sides (``RAY_AUTH_MODE=disabled``) while the head runs: a local ``ray.init()`` may
have left a token in ``~/.ray/auth_token``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
STARTED = "Ray runtime started"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_ray_head(num_cpus: int = 2, start_timeout_s: float = 180.0, env: dict | None = None):
    """Start a Ray head on 127.0.0.1 with `num_cpus` CPUs and yield its address "127.0.0.1:PORT";
    `env` adds variables to the head's environment (its workers inherit them)."""
    temp_dir = tempfile.mkdtemp(prefix="ray-head-", dir="/tmp")
    port = free_port()
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    head_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    log_path = Path(temp_dir) / "ray-start.log"
    head = None
    try:
        with open(log_path, "w") as log:
            head = subprocess.Popen(
                [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
                 "--num-cpus", str(num_cpus), "--num-gpus", "0", "--include-dashboard", "false",
                 "--object-store-memory", "100000000", "--temp-dir", temp_dir, "--disable-usage-stats"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=head_env,
                start_new_session=True)
        _wait_started(head, log_path, start_timeout_s)
        yield f"127.0.0.1:{port}"
    finally:
        _disconnect()
        if head is not None:
            _stop(head)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_started(head: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while STARTED not in log_path.read_text(errors="replace"):
        if head.poll() is not None or time.monotonic() > end:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"ray start --head did not start (exit {head.poll()}): " + " | ".join(tail))
        time.sleep(0.2)


def _disconnect() -> None:
    """Disconnect this process's Ray driver, if it connected."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()


def _session_pids(sid: int) -> list[int]:
    """The live (not zombie) processes of session `sid` (Linux: from /proc)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z" and os.getsid(int(name)) == sid:
                    pids.append(int(name))
    return pids


def _stop(head: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the head's process group (ray start and the daemons it started), wait `grace_s`,
    then SIGKILL what is left of its session; reap the head. (The raylet takes 30 s to exit on
    SIGTERM; the results are written by then, so the grace is short, as ``ray stop -g``'s.)"""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(grace_s)
    end = time.monotonic() + 10
    while (left := _session_pids(head.pid)) and time.monotonic() < end:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(10)
