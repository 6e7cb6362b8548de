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

from collections.abc import Mapping

from torch import nn
from torch.utils.data import DataLoader

from .._validation import check_int, check_loader, check_module, verb
from ..training import Trained, train
from .ptq import post_training_quantize


@verb
def quantization_aware_train(model: nn.Module, loader: DataLoader, *, epochs: int, bits: int = 8,
                             activation_bits: int | None = 8, per_channel: bool = True, observer: str = "minmax",
                             observer_kwargs: Mapping[str, object] | None = None, num_batches: int | None = None,
                             lr: float = 1e-4, **train_kwargs) -> Trained:
    """Quantize a copy of ``model`` post-training on ``loader``, then fine-tune it for ``epochs`` with fake
    quantization.

    Args:
        loader: training batches; its first ``num_batches`` (all if ``None``) calibrate the activation ranges.
        bits, activation_bits, per_channel, observer, observer_kwargs: as in
            :func:`~course_lib.quantization.post_training_quantize`.
        lr: learning rate of the fine-tuning (small: the model starts trained).
        train_kwargs: passed on to :func:`course_lib.training.train` (``weight_decay``, ``augment``, ``seed``,
            ``optimizer`` as a factory of the copy's parameters...).

    Returns:
        :class:`~course_lib.training.Trained`: the quantized model (eval mode) and its training history;
        ``model`` itself is left untouched.
    """
    check_module(model)
    check_loader(loader)
    check_int(epochs, "epochs", 0)
    quantized = post_training_quantize(model, loader, bits=bits, activation_bits=activation_bits,
                                       per_channel=per_channel, observer=observer, observer_kwargs=observer_kwargs,
                                       num_batches=num_batches)
    history = train(quantized, loader, epochs, lr=lr, **train_kwargs)
    return Trained(quantized.eval(), history)
