"""Number formatting shared by the terminal tables (bench_core.cli) and the HTML report."""
from __future__ import annotations

import math


def fmt(value, digits: int = 3) -> str:
    """A value as a table shows it: "—" for None and NaN, "∞" for infinity, whole floats without
    a decimal point, other floats to `digits` significant digits."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value.is_integer() and abs(value) < 1e7:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)
