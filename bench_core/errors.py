"""Error types: bad user input (exit code 2, one line) versus everything else."""
from __future__ import annotations

import difflib


class BenchInputError(Exception):
    """Bad input from the user: a missing file, malformed TOML, an unknown name, a wrong type.

    The CLI prints its message as one line and exits with code 2. The message names the file
    and the key where it can.
    """


class UnknownNameError(BenchInputError, KeyError):
    """A problem, optimizer or metric name that no plugin provides."""

    def __init__(self, what: str, name: str, known):
        self.what, self.name = what, name
        near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        super().__init__(f"unknown {what} {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]
