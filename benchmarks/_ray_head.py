"""A real local Ray head for benchmarks/ray_study.py and tests/test_ray_cluster.py.

``local_ray_head()`` runs ``ray start --head --block`` on 127.0.0.1 (a free port, no dashboard,
its own temporary directory under /tmp) in its own process group, yields the address a driver
passes to ``ray.init(address=...)`` (``bench run --executor ray --address``), and stops the head
on the way out, also on Ctrl-C. It stops only the processes it started: SIGTERM to the head's
process group, then, after a few seconds, SIGKILL to what is left of the head's process tree
(Ray's daemons and workers). The head stays in the caller's session: with Linux's scheduler
autogroups (one per session) a head in a new session would get a CPU share of its own on a busy
machine, and its workers would outrun a process pool's for that reason alone. ``ray stop`` is not used: it
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
                **_own_group())
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


def _own_group() -> dict:
    """Popen options for a process group of its own (no terminal Ctrl-C) in the caller's
    session; Python 3.10 has no ``process_group`` and gets a new session instead."""
    return {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}


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


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _descendants(root: int) -> list[int]:
    """`root`'s live descendants (Linux: parents read from /proc)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [pid for pid in found if _alive(pid)]


def _stop(head: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the head's process group (ray start and the daemons it started), wait `grace_s`,
    then SIGKILL what is left of the head's process tree, noted before the SIGTERM (orphans lose
    their parent); reap the head. (The raylet takes 30 s to exit on SIGTERM; the results are
    written by then, so the grace is short, as ``ray stop -g``'s.)"""
    tree = _descendants(head.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(grace_s)
    end = time.monotonic() + 10
    while (left := [pid for pid in tree if _alive(pid)]) and time.monotonic() < end:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        head.kill()
    head.wait(10)
