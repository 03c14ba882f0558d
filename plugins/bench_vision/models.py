"""The networks of the vision problems: an MLP, a small CNN and a small ResNet (own code, plain torch)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

import bench_core


def mlp(in_features: int, width: int, depth: int, classes: int = 10, parametrization: str = "sp",
        base_width: int | None = None) -> nn.Module:
    """Flatten, then `depth` hidden layers of `width` ReLU units, then a linear classifier.

    ``parametrization`` (the width dimension is `width`; width_mult = width / base_width):

    - "sp": torch's default initialization.
    - "mup": μP as in Table 3 of "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
      Hyperparameter Transfer": input and hidden weights keep torch's init (variance ∝ 1/fan_in),
      biases start at zero, the readout starts at zero; no multipliers (the learning rates per
      role come from the optimizer's rule, ``bench_core.parametrization``).
    - "umup": u-μP ("u-μP: The Unit-Scaled Maximal Update Parametrization"): unit-variance
      weights, zero biases, each matmul scaled at the op by 1/sqrt(fan_in), the readout by 1/fan_in.

    The model carries ``width_roles``: (tensor, role, width_mult) for every parameter.
    """
    if parametrization not in bench_core.PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {', '.join(bench_core.PARAMETRIZATIONS)}, "
                         f"got {parametrization!r}")
    m = width / (base_width or width)
    layers: list[nn.Module] = [nn.Flatten()]
    roles: list[tuple] = []
    d = in_features
    for i in range(depth + 1):
        last = i == depth
        fan_out = classes if last else width
        if parametrization == "umup":
            lin = bench_core.ScaledLinear(d, fan_out, multiplier=1.0 / d if last else d ** -0.5)
            nn.init.normal_(lin.weight, 0.0, 1.0)
        else:
            lin = nn.Linear(d, fan_out)
            if parametrization == "mup" and last:
                nn.init.zeros_(lin.weight)
        if parametrization != "sp":
            nn.init.zeros_(lin.bias)
        role = "output" if last and depth > 0 else "input" if i == 0 else "hidden"
        roles += [(lin.weight, role, m if depth > 0 else 1.0), (lin.bias, "vector", 1.0 if last else m)]
        layers += [lin] if last else [lin, nn.ReLU()]
        d = width
    model = nn.Sequential(*layers)
    model.width_roles = roles
    return model


def cnn(in_channels: int, channels: int, image_size: int, classes: int = 10) -> nn.Module:
    """Two 3×3 conv + ReLU + 2×2 max-pool stages (`channels`, 2·`channels`), then a linear classifier."""
    s = image_size // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * channels * s * s, classes))


class _Block(nn.Module):
    """A basic residual block: two 3×3 convs with batch norm; a strided 1×1 conv on the shortcut
    when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    """A CIFAR-style ResNet: a 3×3 stem of `width` channels, three stages of `blocks` residual
    blocks (width, 2·width, 4·width; stride 2 between stages), global average pooling, linear."""

    def __init__(self, width: int = 16, blocks: int = 1, classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        layers, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            for j in range(blocks):
                layers.append(_Block(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        out = self.layers(self.stem(x))
        return self.head(out.mean(dim=(2, 3)))
