"""The settings a `bench tune` run wrote (TOML ``[[tuned]]`` tables), read by a suite's ``hparams_from``."""
from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import BenchInputError
from .store import to_json


class TunedSettings:
    """The settings of a tuned file, looked up per optimizer and problem (``hparams_from``)."""

    def __init__(self, entries: list[dict], source: str):
        self.entries, self.source = entries, source

    @classmethod
    def load(cls, path: str | Path, key: str) -> "TunedSettings":
        """Read a file written by ``write_tuned``; BenchInputError names `key` on any mistake."""
        path = Path(path)
        if not path.is_file():
            raise BenchInputError(f"{key}: tuned file {path} not found")
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BenchInputError(f"{key}: {path}: malformed TOML: {exc}") from None
        entries = data.get("tuned", [])
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("optimizer"), str) and isinstance(e.get("problem"), str)
                and isinstance(e.get("hparams", {}), dict) for e in entries):
            raise BenchInputError(f"{key}: {path}: expected [[tuned]] tables with optimizer, problem, hparams")
        return cls(entries, str(path))

    def hparams_for(self, optimizer: str, problem: str, params: dict, key: str) -> dict:
        """The tuned hyperparameters of `optimizer` on `problem` (with `params`; when the file
        has no entry with these exact params, its only entry for the problem)."""
        same = [e for e in self.entries if e["optimizer"] == optimizer and e["problem"] == problem]
        exact = [e for e in same if to_json(e.get("problem_params", {})) == to_json(params)]
        chosen = exact or (same if len(same) == 1 else [])
        if not chosen:
            what = "no" if not same else f"{len(same)} (with other params, none matching)"
            raise BenchInputError(f"{key}: {self.source} has {what} tuned setting for optimizer"
                                  f" {optimizer!r} on problem {problem!r}")
        return dict(chosen[0].get("hparams", {}))
