"""Quantization-aware training (QAT): fine-tune a model through its fake-quantized forward pass.

The model is first quantized post-training (:func:`~course_lib.quantization.ptq.post_training_quantize`:
BatchNorm folded, activation ranges calibrated and frozen), then trained with
:func:`course_lib.training.train`. Every forward pass fake-quantizes the weights from their
full-precision "shadow" values, and the straight-through estimator
(:func:`~course_lib.quantization.affine.fake_quantize`) lets the gradient reach them: the optimizer moves
the shadow weights by less than a grid step at a time, and they change code once the steps add up
(Jacob et al., 2018; Krishnamoorthi, 2018).
"""
from __future__ import annotations

from torch import nn
from torch.utils.data import DataLoader

from ..training import History, train
from .ptq import post_training_quantize


def quantization_aware_training(model: nn.Module, loader: DataLoader, epochs: int, bits: int = 4,
                                activation_bits: int | None = 4, per_channel: bool = True,
                                observer: str = "minmax", num_batches: int | None = None, *, lr: float = 1e-4,
                                observer_kwargs: dict | None = None, **train_kwargs) -> tuple[nn.Module, History]:
    """Quantize a copy of ``model`` post-training on ``loader``, then fine-tune it for ``epochs`` with fake quantization.

    Args:
        loader: training batches; its first ``num_batches`` (all if ``None``) calibrate the activation ranges.
        bits, activation_bits, per_channel, observer: as in :func:`~course_lib.quantization.ptq.prepare`.
        lr: learning rate of the fine-tuning (small: the model starts trained).
        observer_kwargs: keyword arguments of the observer (e.g. ``{"percentile": 99.9}``).
        train_kwargs: passed on to :func:`course_lib.training.train` (``weight_decay``, ``augment``, ``seed``...).

    Returns:
        ``(quantized model in eval mode, training History)``; ``model`` itself is left untouched.
    """
    quantized = post_training_quantize(model, loader, bits, activation_bits, per_channel, observer, num_batches,
                                       **(observer_kwargs or {}))
    history = train(quantized, loader, epochs, lr=lr, **train_kwargs)
    return quantized.eval(), history
