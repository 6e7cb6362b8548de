"""Post-training quantization (PTQ) of a whole model, simulated with fake quantization.

The recipe of Jacob et al. (2018) and Krishnamoorthi (2018), in floating point so that any bit width
can be studied (real int8 kernels are in :mod:`~course_lib.quantization.deploy`):

1. :func:`fold_batchnorm`: fold every BatchNorm into the convolution before it,
   $W' = W \\gamma / \\sigma$, $b' = \\beta + (b - \\mu)\\gamma / \\sigma$ (what integer inference runs).
2. :func:`prepare`: wrap every ``Conv2d`` and ``Linear`` in a :class:`FakeQuantized` layer. Its
   weight is fake-quantized on the fly, symmetric signed codes, per output channel or per tensor;
   its input (the activation) gets an observer.
3. :func:`calibrate`: run calibration batches, then freeze each input's ``(scale, zero_point)``
   (asymmetric unsigned codes, like PyTorch's ``quint8``) from its observer.

:func:`post_training_quantize` does the three in one call. Biases stay in floating point (integer
kernels keep them in 32 bits with scale $s_W s_x$, a negligible error).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..acceleration.folding import fuse_conv_bn
from .affine import compute_qparams, fake_quantize, qrange
from .observers import OBSERVERS, make_observer


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) where each ``Conv2d`` directly followed by a ``BatchNorm2d`` in an
    ``nn.Sequential`` absorbs it and the BatchNorm becomes ``Identity``: quantization works on the folded
    weights, as the integer kernels will. The folding itself is :func:`course_lib.acceleration.fuse_conv_bn`."""
    return fuse_conv_bn(model)


def weight_qparams(weight: torch.Tensor, bits: int, per_channel: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric signed ``(scale, zero_point)`` from the weight's min and max: per output channel
    (``(C_out,)``, axis 0) or per tensor (0-d)."""
    w = weight.detach()
    if per_channel:
        flat = w.reshape(w.shape[0], -1)
        return compute_qparams(flat.amin(1), flat.amax(1), bits, signed=True, symmetric=True)
    return compute_qparams(w.min(), w.max(), bits, signed=True, symmetric=True)


def quantize_weight(weight: torch.Tensor, bits: int, per_channel: bool = True) -> torch.Tensor:
    """``weight`` fake-quantized to symmetric signed ``bits``-bit codes (gradient by the STE)."""
    scale, zero_point = weight_qparams(weight, bits, per_channel)
    return fake_quantize(weight, scale, zero_point, bits, signed=True, axis=0 if per_channel else None)


class FakeQuantized(nn.Module):
    """A ``Conv2d`` or ``Linear`` whose weight and input are fake-quantized in ``forward``.

    While ``calibrating`` the input goes to ``observer`` and the layer runs in floating point;
    after :meth:`freeze`, the input is fake-quantized with the frozen ``input_scale`` /
    ``input_zero_point`` (unsigned asymmetric ``activation_bits`` codes; ``activation_bits=None``
    leaves activations in floating point). The weight is always fake-quantized from its current
    values, so training the wrapped layer (QAT) updates its full-precision "shadow" weight.
    """

    def __init__(self, layer: nn.Module, bits: int = 8, activation_bits: int | None = 8,
                 per_channel: bool = True, observer: str = "minmax", **observer_kwargs) -> None:
        super().__init__()
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            raise ValueError(f"layer must be nn.Conv2d or nn.Linear, got {type(layer).__name__}")
        qrange(bits)
        self.layer, self.bits, self.per_channel = layer, bits, per_channel
        self.activation_bits = activation_bits
        self.calibrating = activation_bits is not None
        self.observer = (make_observer(observer, bits=activation_bits, signed=False, **observer_kwargs)
                         if activation_bits is not None else None)
        self.register_buffer("input_scale", torch.tensor(1.0))
        self.register_buffer("input_zero_point", torch.tensor(0))

    def freeze(self) -> None:
        """Fix the input's ``(scale, zero_point)`` from the observer and start fake-quantizing the input."""
        if self.observer is not None:
            scale, zero_point = self.observer.calculate_qparams()
            self.input_scale, self.input_zero_point = scale.to(self.input_scale.device), zero_point
            self.observer = None
        self.calibrating = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self.observer(x)
            return self.layer(x)
        if self.activation_bits is not None:
            x = fake_quantize(x, self.input_scale, self.input_zero_point, self.activation_bits, signed=False)
        weight = quantize_weight(self.layer.weight, self.bits, self.per_channel)
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, weight, self.layer.bias)
        return self.layer._conv_forward(x, weight, self.layer.bias)

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, activation_bits={self.activation_bits}, per_channel={self.per_channel}, "
                f"calibrating={self.calibrating}")


def prepare(model: nn.Module, bits: int = 8, activation_bits: int | None = 8, per_channel: bool = True,
            observer: str = "minmax", **observer_kwargs) -> nn.Module:
    """A copy of ``model`` with BatchNorm folded and every Conv2d/Linear wrapped in :class:`FakeQuantized`.

    Args:
        bits: weight code width (symmetric, signed); activation_bits: input code width (asymmetric,
            unsigned), or ``None`` for weight-only quantization.
        per_channel: one weight scale per output channel (True) or per tensor (False).
        observer: activation observer, one of ``minmax``, ``moving_average``, ``percentile``, ``mse``,
            with its keyword arguments (e.g. ``percentile=99.9``).
    """
    qrange(bits)
    if activation_bits is not None:
        qrange(activation_bits)
    if observer not in OBSERVERS:
        raise ValueError(f"unknown observer {observer!r}; choose one of {', '.join(OBSERVERS)}")
    if not isinstance(per_channel, bool):
        raise ValueError(f"per_channel must be True or False, got {per_channel!r}")
    model = fold_batchnorm(model)
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ValueError("model has no Conv2d or Linear layer to quantize")
    for name, layer in layers:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, FakeQuantized(layer, bits, activation_bits, per_channel, observer, **observer_kwargs))
    return model


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable, num_batches: int | None = None) -> nn.Module:
    """Run calibration ``batches`` (tensors, or ``(inputs, targets)`` pairs, e.g. a DataLoader) through a
    :func:`prepare`-d model in eval mode, then freeze every :class:`FakeQuantized` layer; returns the model."""
    wrappers = [m for m in model.modules() if isinstance(m, FakeQuantized)]
    if not wrappers:
        raise ValueError("model has no FakeQuantized layer; call prepare(model, ...) first")
    if num_batches is not None and (isinstance(num_batches, bool) or not isinstance(num_batches, int)
                                    or num_batches < 1):
        raise ValueError(f"num_batches must be a positive integer or None, got {num_batches!r}")
    device = next(model.parameters()).device
    model.eval()
    seen = 0
    if any(m.calibrating for m in wrappers):
        for batch in batches:
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(inputs.to(device))
            seen += 1
            if num_batches is not None and seen >= num_batches:
                break
        if seen == 0:
            raise ValueError("batches is empty: calibration needs at least one batch")
    for m in wrappers:
        m.freeze()
    return model


def post_training_quantize(model: nn.Module, batches: Iterable, bits: int = 8, activation_bits: int | None = 8,
                           per_channel: bool = True, observer: str = "minmax", num_batches: int | None = None,
                           **observer_kwargs) -> nn.Module:
    """PTQ in one call: :func:`prepare` a copy of ``model`` then :func:`calibrate` it on ``batches``.

    Returns the fake-quantized copy (``model`` is left untouched), ready for :func:`~course_lib.training.evaluate`.
    """
    prepared = prepare(model, bits, activation_bits, per_channel, observer, **observer_kwargs)
    return calibrate(prepared, batches, num_batches)
