"""Models of the course: the article's teacher/student CNN pair (corrected) and the LeNets.

The article's teacher flattened its features with a hard-coded ``64 * 16 * 16``; that is only
right for one input size and pooling layout. Here the flatten width is computed from
``image_size`` (two 2x2 max-pools: ``28 -> 7`` for MNIST, ``32 -> 8`` for CIFAR-10), so each
model is correct for the data set it is built for.
"""
from __future__ import annotations

import torch
from torch import nn

from ._validation import check_fraction, check_int, check_ints

MODELS = ("teacher", "student", "lenet300", "lenet5")
_INPUTS = {"mnist5k": (1, 28), "mnist": (1, 28), "cifar10": (3, 32)}


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ConvNet(nn.Module):
    """Conv-BN-ReLU blocks with 2x2 max-pools, then a two-layer classifier (Linear-BN-ReLU-Dropout-Linear).

    The hidden layer is batch-normalised like the convolutions: its 3,136 inputs are all non-negative
    (they come out of a ReLU and a max-pool), so without normalisation the first optimizer steps push
    many hidden units below zero for every input and they never fire again (about three quarters of
    them, measured on the teacher trained with AdamW); with BatchNorm each unit stays centred and fires
    on about half of the inputs.

    ``widths`` lists the output channels of the conv blocks, grouped into two stages
    (``widths[:split]`` before the first pool, the rest before the second; a single width gets a
    single pool). Input
    ``(N, in_channels, image_size, image_size)``, output logits ``(N, num_classes)``.
    """

    def __init__(self, widths: tuple[int, ...], hidden: int, in_channels: int = 1,
                 image_size: int = 28, num_classes: int = 10, dropout: float = 0.0) -> None:
        super().__init__()
        widths = check_ints(widths, "widths", 1)
        check_int(hidden, "hidden", 1)
        check_int(in_channels, "in_channels", 1)
        check_int(image_size, "image_size", 1)
        check_int(num_classes, "num_classes", 1)
        check_fraction(dropout, "dropout", meaning="the probability of zeroing a hidden unit", high_open=True)
        pools = min(len(widths), 2)
        if image_size % 2 ** pools:
            raise ValueError(f"image_size must be divisible by {2 ** pools} ({pools} 2x2 pool(s)), got {image_size}")
        split = (len(widths) + 1) // 2
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            layers += _conv_block(c, w)
            c = w
            if i + 1 in (split, len(widths)):
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** pools
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c * side * side, hidden, bias=False), nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        self.in_channels, self.image_size = in_channels, image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(f"expected input of shape (N, {self.in_channels}, {self.image_size}, "
                             f"{self.image_size}), got {tuple(x.shape)}")
        return self.classifier(self.features(x))


def teacher_cnn(dataset: str = "mnist5k") -> ConvNet:
    """The teacher: 2 conv layers (32, 64 channels) and a 256-unit hidden layer (~0.83M parameters on MNIST)."""
    c, s = _input_of(dataset)
    return ConvNet((32, 64), 256, in_channels=c, image_size=s, dropout=0.3)


def student_cnn(dataset: str = "mnist5k") -> ConvNet:
    """The student: 2 conv layers (8, 16 channels) and a 32-unit hidden layer (~27k parameters on MNIST)."""
    c, s = _input_of(dataset)
    return ConvNet((8, 16), 32, in_channels=c, image_size=s)


class LeNet300100(nn.Module):
    """LeNet-300-100 (LeCun et al., 1998): 784-300-100-10 fully connected, as in Han et al. (2015)."""

    def __init__(self, in_features: int = 784, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, 300), nn.ReLU(inplace=True),
                                 nn.Linear(300, 100), nn.ReLU(inplace=True), nn.Linear(100, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LeNet5(nn.Module):
    """LeNet-5 as in Han et al. (2015): conv 20@5x5, pool, conv 50@5x5, pool, fc 500, fc 10 (28x28 input)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, 20, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                      nn.Conv2d(20, 50, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(50 * 4 * 4, 500), nn.ReLU(inplace=True),
                                        nn.Linear(500, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _input_of(dataset: str) -> tuple[int, int]:
    if dataset not in _INPUTS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(_INPUTS)}")
    return _INPUTS[dataset]


def build_model(name: str, dataset: str = "mnist5k") -> nn.Module:
    """Build an untrained model by name (``teacher``, ``student``, ``lenet300``, ``lenet5``) for ``dataset``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    c, s = _input_of(dataset)
    if name == "teacher":
        return teacher_cnn(dataset)
    if name == "student":
        return student_cnn(dataset)
    if s != 28 or c != 1:
        raise ValueError(f"{name} is defined for 28x28 grey images (MNIST), not {dataset!r}")
    return LeNet300100() if name == "lenet300" else LeNet5()
