"""bench-core's benchmarks: asv modules (bench_*.py, see asv.conf.json) and plain speed scripts.

asv imports every module in this folder to discover benchmarks, so every script here must be
import-safe: its work runs under ``if __name__ == "__main__":`` only.
"""
