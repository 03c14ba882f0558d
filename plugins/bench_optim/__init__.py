"""bench_optim: optimizers for training problems (adapters to libraries and own implementations)."""
