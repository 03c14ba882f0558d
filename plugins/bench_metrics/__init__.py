"""bench_metrics: problem-independent metrics (memory, optimizer-state bytes)."""
