"""The identity of the code that runs a trial: bench-core and the plugins that provide its problem
and its optimizer.

Each component is described by its distribution (name, version), the git commit of the tree its
source lives in (never the current directory's), whether that tree is dirty, and a hash of its
Python source files. The hash is what makes edit-and-rerun safe: a trial's id contains the
fingerprint, so a changed source file, a new version of a plugin or of a library it requires
gives new trial ids and the trials run again. A commit that changes no source reuses its results.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

#: Libraries whose version shapes every result, whichever plugin runs.
CORE_LIBRARIES = ("torch", "numpy", "scipy")
#: Extras that hold tools around the trials (tests, tracking, clusters), not code that shapes results.
TOOL_EXTRAS = ("test", "asv", "ray")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def git_state(directory: str) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git tree that holds `directory`, dirty meaning uncommitted changes
    under `directory` itself; (None, None) outside git."""
    path = Path(directory)
    commit = _git(["rev-parse", "HEAD"], path)
    if not commit:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no", "--", "."], path)
    return commit, bool(status)


@functools.lru_cache(maxsize=None)
def source_hash(directory: str) -> str:
    """SHA-256 (16 hex digits) of the Python source files under `directory` (or of one file)."""
    root = Path(directory)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(root.parent) if root.is_file() else f.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _top_level_distributions(path: tuple) -> dict:
    return importlib.metadata.packages_distributions()


@functools.lru_cache(maxsize=None)
def installed_version(dist: str) -> str | None:
    """The installed version of distribution `dist`, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=None)
def _required(dist: str) -> tuple:
    try:
        return tuple(importlib.metadata.requires(dist) or [])
    except importlib.metadata.PackageNotFoundError:
        return ()


def required_versions(dist: str | None) -> dict:
    """Installed versions of the distributions `dist` requires (its extras too when installed,
    but for TOOL_EXTRAS)."""
    if dist is None:
        return {}
    reqs = _required(dist)
    out = {}
    for req in reqs:
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        if extra and extra.group(1) in TOOL_EXTRAS:
            continue
        name = re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0]
        version = installed_version(name) if name else None
        if version:
            out[name] = version
    return dict(sorted(out.items()))


def component(module_name: str) -> dict:
    """The identity of the code of one top-level package or module (by its import name)."""
    top = module_name.split(".")[0]
    module = sys.modules.get(top)
    if module is None:
        module = __import__(top)
    return _component(top, getattr(module, "__file__", None), tuple(sys.path))


@functools.lru_cache(maxsize=None)
def _component(top: str, file: str | None, path: tuple) -> dict:
    dists = _top_level_distributions(tuple(sys.path)).get(top, [])
    dist = dists[0] if dists else None
    info = {"module": top, "distribution": dist, "version": installed_version(dist) if dist else None}
    if file:
        where = Path(file).resolve()
        where = where.parent if where.name == "__init__.py" else where
        commit, dirty = git_state(str(where if where.is_dir() else where.parent))
        info.update(commit=commit, dirty=dirty, source_hash=source_hash(str(where)))
    return info


def plugin_module(registry, plugin_name: str) -> str | None:
    """The import name of the module a registered plugin is, or None (e.g. a plugin object)."""
    plugin = registry.manager.get_plugin(plugin_name) if plugin_name else None
    name = getattr(plugin, "__name__", None) if plugin is not None else None
    if not isinstance(name, str) or name not in sys.modules:
        module = getattr(type(plugin), "__module__", None) if plugin is not None else None
        return module if isinstance(module, str) and module in sys.modules else None
    return name


def trial_code(registry, problem_plugin: str, optimizer_plugin: str) -> dict:
    """The code identity of a trial: bench-core, the problem's and the optimizer's plugins, and
    the versions of the libraries they require."""
    core = component("bench_core")
    code = {"bench_core": core}
    requires = {name: installed_version(name) for name in CORE_LIBRARIES}
    requires.update(required_versions(core["distribution"]))
    for role, plugin in (("problem_plugin", problem_plugin), ("optimizer_plugin", optimizer_plugin)):
        module = plugin_module(registry, plugin)
        comp = component(module) if module else {"module": None, "plugin": plugin}
        comp = {**comp, "plugin": plugin}
        code[role] = comp
        requires.update(required_versions(comp.get("distribution")))
    code["requires"] = {k: v for k, v in sorted(requires.items()) if v}
    return code


def code_id(code: dict) -> str:
    """A short fingerprint (12 hex digits) of a code identity: versions and source hashes, not
    commits, so that a commit that changes no source keeps the fingerprint."""
    stripped = {k: ({f: v for f, v in c.items() if f not in ("commit", "dirty", "plugin")} if isinstance(c, dict) else c)
                for k, c in code.items()}
    text = json.dumps(stripped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
