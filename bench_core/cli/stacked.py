"""Table rows stacked into one row of multi-line cells, for tables of many rows.

rich renders a table cell by cell, and each cell costs the same whatever it holds: a section of
several rows (one key's quantities, one series' points) stacked into a single row, each cell
the lines of its column one below the other (each row padded to the height of its tallest
cell), renders to the same text, styles included, in a fraction of the time.
"""
from __future__ import annotations


def stacked(rows: list[list]) -> list:
    """One row of rich Text cells holding `rows` (lists of Text, one per column) one below the
    other."""
    from rich.text import Text

    heights = [max(cell.plain.count("\n") + 1 for cell in row) for row in rows]
    out = []
    for j in range(len(rows[0])):
        parts = []
        for row, height in zip(rows, heights):
            cell = row[j].copy()
            cell.append("\n" * (height - 1 - cell.plain.count("\n")))
            parts.append(cell)
        out.append(Text("\n").join(parts))
    return out
