"""The networks of the vision problems: an MLP, a small CNN and a small ResNet (own code, plain torch)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def mlp(in_features: int, width: int, depth: int, classes: int = 10) -> nn.Module:
    """Flatten, then `depth` hidden layers of `width` ReLU units, then a linear classifier."""
    layers: list[nn.Module] = [nn.Flatten()]
    d = in_features
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, classes))
    return nn.Sequential(*layers)


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
