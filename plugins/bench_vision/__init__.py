"""bench_vision: image-classification training problems (MNIST digits, scikit-learn digits, synthetic CIFAR-shaped images)."""
