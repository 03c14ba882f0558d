"""``--filter`` expressions (``bench run``, ``bench show``): ``problem=GLOB``, ``optimizer=GLOB``
(the optimizer's name), ``seed=N``, or a bare GLOB matched against the problem or the optimizer
name; a trial is kept when it matches every filter. One parser for the suite's planned trials
(bench_core.suite) and for results read back (bench_core.results); imports no torch."""
from __future__ import annotations

import fnmatch
from typing import Callable

from .errors import BenchInputError

#: The keys a filter may name.
KEYS = ("problem", "optimizer", "seed")


def parse_filters(filters: list[str]) -> list[tuple[str, str]]:
    """(key, pattern) per filter, key "" for a bare GLOB; BenchInputError naming the first
    filter with another key."""
    parsed = []
    for f in filters:
        key, sep, pattern = f.partition("=")
        if not sep:
            key, pattern = "", f
        if key not in ("",) + KEYS:
            raise BenchInputError(f"--filter {f}: key must be problem, optimizer or seed")
        parsed.append((key, pattern))
    return parsed


def matcher(filters: list[str]) -> Callable[[str, str, object], bool]:
    """A predicate ``match(problem, optimizer, seed)``: true when a trial matches every filter
    (the filters checked first, see ``parse_filters``)."""
    parsed = parse_filters(filters)

    def match(problem: str, optimizer: str, seed) -> bool:
        for key, pattern in parsed:
            if key == "seed":
                ok = str(seed) == pattern
            elif key:
                ok = fnmatch.fnmatchcase(problem if key == "problem" else optimizer, pattern)
            else:
                ok = fnmatch.fnmatchcase(problem, pattern) or fnmatch.fnmatchcase(optimizer, pattern)
            if not ok:
                return False
        return True

    return match
