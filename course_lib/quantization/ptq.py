"""Post-training quantization (PTQ) of a whole model, simulated with fake quantization.

The recipe of Jacob et al. (2018) and Krishnamoorthi (2018), in floating point so that any bit width
can be studied (real int8 kernels are in :mod:`~course_lib.quantization.deploy`):

1. fold every BatchNorm into the convolution before it (:func:`course_lib.acceleration.fold_batchnorm`),
   $W' = W \\gamma / \\sigma$, $b' = \\beta + (b - \\mu)\\gamma / \\sigma$ (what integer inference runs);
2. :func:`prepare`: wrap every ``Conv2d`` and ``Linear`` in a :class:`FakeQuantized` layer. Its
   weight is fake-quantized on the fly, symmetric signed codes, per output channel or per tensor;
   its input (the activation) gets an observer;
3. :func:`calibrate`: run calibration batches, then freeze each input's ``(scale, zero_point)``
   (asymmetric unsigned codes, like PyTorch's ``quint8``) from its observer.

:func:`post_training_quantize` does the three in one call and returns a new model. Biases stay in floating
point (integer kernels keep them in 32 bits with scale $s_W s_x$, a negligible error).
"""
from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import (
    check_bool,
    check_choice,
    check_int,
    check_loader,
    check_module,
    check_names,
    copy_model,
    verb,
    weight_layers,
)
from ..acceleration import fold_batchnorm
from ..training import model_device
from .affine import compute_qparams, fake_quantize, qrange
from .binary import binarize
from .observers import OBSERVERS, make_observer


def calibration_inputs(batches: Iterable, num_batches: int | None = None) -> Iterator[torch.Tensor]:
    """The input tensors of the first ``num_batches`` (all if ``None``) of ``batches``, which holds tensors or
    ``(inputs, targets)`` pairs (e.g. a DataLoader); ValueError once exhausted if it held none."""
    if num_batches is not None:
        check_int(num_batches, "num_batches (None or an integer)", 1)
    seen = 0
    for batch in batches:
        if num_batches is not None and seen == num_batches:
            return
        yield batch[0] if isinstance(batch, (tuple, list)) else batch
        seen += 1
    if seen == 0:
        raise ValueError("batches is empty: calibration needs at least one batch")


def weight_qparams(weight: torch.Tensor, bits: int, per_channel: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric signed ``(scale, zero_point)`` from the weight's min and max: per output channel
    (``(C_out,)``, axis 0) or per tensor (0-d)."""
    w = weight.detach()
    if per_channel:
        flat = w.reshape(w.shape[0], -1)
        return compute_qparams(flat.amin(1), flat.amax(1), bits, signed=True, symmetric=True)
    return compute_qparams(w.min(), w.max(), bits, signed=True, symmetric=True)


def quantize_weight(weight: torch.Tensor, bits: int, per_channel: bool = True) -> torch.Tensor:
    """``weight`` fake-quantized to symmetric signed ``bits``-bit codes (gradient by the STE).

    One bit is the binary grid $\\{-\\alpha, +\\alpha\\}$, $\\alpha = \\operatorname{mean}|w|$
    (:func:`~course_lib.quantization.binary.binarize`): the signed 1-bit codes $\\{-1, 0\\}$ of the
    affine map would put every weight of a symmetric range on the code 0.
    """
    if bits == 1:
        return binarize(weight, per_channel)
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

    def __init__(self, layer: nn.Module, *, bits: int = 8, activation_bits: int | None = 8,
                 per_channel: bool = True, observer: str = "minmax",
                 observer_kwargs: Mapping[str, object] | None = None) -> None:
        super().__init__()
        if not isinstance(layer, (nn.Conv2d, nn.Linear)):
            raise TypeError(f"layer must be nn.Conv2d or nn.Linear, got {type(layer).__name__}")
        _check_settings(bits, activation_bits, per_channel, observer, observer_kwargs)
        self.layer, self.bits, self.per_channel = layer, bits, per_channel
        self.activation_bits = activation_bits
        self.calibrating = activation_bits is not None
        self.observer = (make_observer(observer, bits=activation_bits, signed=False, **(observer_kwargs or {}))
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


def _check_settings(bits: int, activation_bits: int | None, per_channel: bool, observer: str,
                    observer_kwargs: Mapping[str, object] | None) -> None:
    qrange(bits)
    if activation_bits is not None:
        check_int(activation_bits, "activation_bits (None or an integer)", 1, 32)
    check_bool(per_channel, "per_channel")
    check_choice(observer, "observer", tuple(OBSERVERS))
    if observer_kwargs is not None and not isinstance(observer_kwargs, Mapping):
        raise TypeError(f"observer_kwargs must be a mapping of the observer's keyword arguments or None, "
                        f"got {type(observer_kwargs).__name__}")
    if observer_kwargs:  # bits and signed are the layer's: the activation codes are unsigned activation_bits
        known = [p for p in inspect.signature(OBSERVERS[observer]).parameters if p not in ("bits", "signed")]
        check_names(observer_kwargs.keys(), "observer_kwargs", known,
                    f"keyword arguments of the {observer!r} observer, {OBSERVERS[observer].__name__}")


@verb
def prepare(model: nn.Module, *, bits: int = 8, activation_bits: int | None = 8, per_channel: bool = True,
            observer: str = "minmax", observer_kwargs: Mapping[str, object] | None = None) -> nn.Module:
    """A copy of ``model`` with BatchNorm folded and every Conv2d/Linear wrapped in :class:`FakeQuantized`.

    Args:
        bits: weight code width (symmetric, signed); activation_bits: input code width (asymmetric,
            unsigned), or ``None`` for weight-only quantization.
        per_channel: one weight scale per output channel (True) or per tensor (False).
        observer: activation observer, one of ``minmax``, ``moving_average``, ``percentile``, ``mse``;
            observer_kwargs: its keyword arguments (e.g. ``{"percentile": 99.9}``).
    """
    check_module(model)
    _check_settings(bits, activation_bits, per_channel, observer, observer_kwargs)
    model = fold_batchnorm(model)
    layers = weight_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to quantize")
    for name, layer in layers.items():
        model.set_submodule(name, FakeQuantized(layer, bits=bits, activation_bits=activation_bits,
                                                per_channel=per_channel, observer=observer,
                                                observer_kwargs=observer_kwargs))
    return model


@verb
@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable, *, num_batches: int | None = None) -> nn.Module:
    """A copy of a :func:`prepare`-d ``model`` calibrated on ``batches`` (tensors, or ``(inputs, targets)`` pairs,
    e.g. a DataLoader; the first ``num_batches``, all if ``None``) in eval mode, every :class:`FakeQuantized`
    layer then frozen."""
    check_module(model)
    check_loader(batches, "batches")
    if not any(isinstance(m, FakeQuantized) for m in model.modules()):
        raise ValueError("model has no FakeQuantized layer; call prepare(model, ...) first")
    calibrated = copy_model(model).eval()
    wrappers = [m for m in calibrated.modules() if isinstance(m, FakeQuantized)]
    device = model_device(calibrated)
    if any(m.calibrating for m in wrappers):
        for inputs in calibration_inputs(batches, num_batches):
            calibrated(inputs.to(device))
    for m in wrappers:
        m.freeze()
    return calibrated


@verb
def post_training_quantize(model: nn.Module, batches: Iterable, *, bits: int = 8, activation_bits: int | None = 8,
                           per_channel: bool = True, observer: str = "minmax",
                           observer_kwargs: Mapping[str, object] | None = None,
                           num_batches: int | None = None) -> nn.Module:
    """PTQ in one call: :func:`prepare` a copy of ``model``, then :func:`calibrate` it on ``batches``.

    Settings as in :func:`prepare` and :func:`calibrate`. Returns the fake-quantized copy in eval mode
    (``model`` is left untouched), ready for :func:`~course_lib.training.evaluate`.
    """
    check_module(model)
    check_loader(batches, "batches")
    prepared = prepare(model, bits=bits, activation_bits=activation_bits, per_channel=per_channel,
                       observer=observer, observer_kwargs=observer_kwargs)
    return calibrate(prepared, batches, num_batches=num_batches)
