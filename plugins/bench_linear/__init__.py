"""bench_linear: iterative solvers and preconditioners for linear systems."""
