"""The README's plugin example works as written: it registers and runs through the harness."""
from __future__ import annotations

import re
import types
from pathlib import Path

from bench_core.registry import build_registry
from bench_core.runner import run_trial
from bench_core.suite import parse_suite

README = Path(__file__).resolve().parent.parent / "README.md"


def _plugin_example() -> str:
    text = README.read_text()
    section = text.split("## Write your own optimizer plugin", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_plugin_example_runs():
    code = _plugin_example()
    assert len([l for l in code.splitlines() if l.strip()]) <= 20
    module = types.ModuleType("readme_plugin")
    exec(compile(code, "README.md", "exec"), module.__dict__)
    registry = build_registry(plugins=[("readme", module)])
    assert registry.optimizer("mine.signsgd").plugin == "readme"
    suite = parse_suite({"problems": [{"name": "synthetic.quadratic", "params": {"dim": 10, "condition": 10.0},
                                       "budget": {"max_steps": 200}, "target": {"loss": 1e-2}}],
                         "optimizers": [{"name": "mine.signsgd", "hparams": {"lr": 0.01}}]},
                        "inline", registry)
    row, _ = run_trial(suite.trials[0], registry)
    assert row["status"] == "target_reached", row["error"]
