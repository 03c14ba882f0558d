"""bench_synthetic: small synthetic training problems with known answers."""
