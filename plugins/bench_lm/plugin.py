"""Entry point of the bench_lm plugin: registers its problems and the metrics they report."""
from __future__ import annotations

import bench_core


@bench_core.hookimpl
def bench_problems():
    """lm.char_gpt and lm.modular_arithmetic."""
    return []
