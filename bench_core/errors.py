"""Error types: bad user input (exit code 2, one line) versus everything else."""
from __future__ import annotations

import difflib


class BenchInputError(Exception):
    """Bad input from the user: a missing file, malformed TOML, an unknown name, a wrong type.

    The CLI prints its message as one line and exits with code 2. The message names the file
    and the key where it can.
    """


class UnknownNameError(BenchInputError, KeyError):
    """A problem, optimizer or metric name that no plugin provides.

    `failed` holds one line per plugin that failed to load (or whose hook for this kind of spec
    failed), since the name may be theirs; the message names them first (three at most), then
    suggests the nearest known name:
    ``unknown optimizer 'ext.lion' (plugin ext failed to load: ImportError: ...; did you mean 'po.lion'?)``.
    """

    def __init__(self, what: str, name: str, known, failed: list[str] = ()):
        self.what, self.name = what, name
        failed = list(failed)
        notes = failed[:3]
        if len(failed) > 3:
            notes.append(f"{len(failed) - 3} more plugins failed (bench list)")
        near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
        notes += [f"did you mean {near[0]!r}?"] if near else []
        hint = f" ({'; '.join(notes)})" if notes else ""
        super().__init__(f"unknown {what} {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]


class AmbiguousNameError(BenchInputError, KeyError):
    """A problem, optimizer or metric name that several plugins provide: no suite may use it
    until all but one of them are uninstalled (bench never picks one)."""

    def __init__(self, what: str, name: str, plugins: list[str]):
        self.what, self.name, self.plugins = what, name, list(plugins)
        super().__init__(f"{what} {name!r} is ambiguous: provided by plugins {_and(self.plugins)}; "
                         "uninstall all but one of them")

    def __str__(self) -> str:
        return self.args[0]


def _and(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
