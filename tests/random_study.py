"""A small random study of two sides (base, head) with everything compare and history must
handle: groups of several sizes (1 to 12 seeds), ties, missed targets, timeouts, NaN and
negative metrics, a metric without a recorded direction, seeds repeated within a side, keys on
one side only, keys whose seeds are not shared, a GPU key and a side holding two codes.
Deterministic for a given seed; used by tests/test_compare_vectorized.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
from test_compare import row


def random_study(seed: int = 0, keys: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(base, head): trials DataFrames as ``read_trials`` returns them."""
    rng = np.random.default_rng(seed)
    base, head = [], []
    sizes = [1, 2, 3, 4, 5, 7, 8, 9, 12]
    for k in range(keys):
        problem, optimizer = f"p{k % 3}", f"o{k % 5}"
        hparams = {"lr": [0.1, 0.01, 0.001][(k // 15) % 3], "k": k // 15}
        device = "cuda" if k % 11 == 7 else "cpu"
        n = sizes[k % len(sizes)]
        factor = float(rng.choice([1.0, 1.0, 1.1, 0.7, 1.4]))
        shift = 100 if k % 13 == 5 else 0  # head's seeds disjoint from base's: unpaired
        for side, rows, f, s0 in (("b", base, 1.0, 0), ("h", head, factor, shift)):
            if side == "h" and k % 17 == 3:
                continue  # key only in base
            for s in range(n):
                reached = rng.random() > 0.2
                ttt = round(float(rng.uniform(0.5, 2.0)), 2 if k % 4 == 0 else 6) * f if reached else None
                tie = k % 6 == 0 and side == "h"  # deterministic values equal to base's
                loss = 1e-4 * (1 + s) if tie else float(rng.choice([1e-4, 2e-4, rng.uniform(1e-5, 1e-3)]))
                metrics = {"loss": loss, "val_loss": float(rng.normal(0, 1)) if k % 7 == 2 else loss * 3,
                           "peak_mem": float(rng.integers(1, 4))}
                if rng.random() < 0.1:
                    metrics["loss"] = float("nan")
                if rng.random() < 0.1:
                    del metrics["val_loss"]
                status = "timeout" if (k % 9 == 4 and s == 0) else None
                r = row(optimizer=optimizer, seed=s0 + s, ttt=ttt, problem=problem, metrics=metrics,
                        device=device, hparams=hparams, code="c1" if side == "b" else "c2",
                        steps=int(rng.integers(10, 60)), status=status,
                        train_time=float(rng.uniform(1, 3)) * f, load=0.5 if side == "b" else 0.7)
                r["setup_time_s"], r["eval_time_s"] = float(rng.uniform(0.1, 0.2)) * f, 0.0 if tie else 0.01
                r["ended_at"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=len(rows))
                rows.append(r)
                if k % 10 == 1 and s == 0:  # the same seed twice in one side
                    rows.append({**r, "metrics": {**metrics, "loss": 5e-4},
                                 "time_to_target_s": None if ttt is None else ttt * 1.5})
    old = dict(base[0], code_id="c0", ended_at=pd.Timestamp("2025-01-01", tz="UTC"), time_to_target_s=9.0)
    base.append(old)  # an older code's row of one key: left out
    return pd.DataFrame(base), pd.DataFrame(head)
