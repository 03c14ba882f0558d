"""bench_pde: PDE problems (discretized linear systems; later time stepping and PDE learning)."""
