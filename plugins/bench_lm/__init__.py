"""bench_lm: language-model training problems (character-level GPT on Shakespeare, modular arithmetic)."""
