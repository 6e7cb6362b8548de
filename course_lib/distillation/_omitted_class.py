"""The omitted-class experiment of Hinton et al. (2015, section 3), for the benchmark alone (not exported).

A student distilled on a transfer set without one digit never sees it, yet learns it from the teacher's soft
targets; its bias for that class is too low, and shifting that one logit (chosen on validation data) recovers
much of it. :func:`without_class` builds the transfer set, :func:`class_accuracy` measures one class and
:func:`best_bias_shift` chooses the shift. Used by :mod:`course_lib.benchmark.distillation`.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .._validation import check_int
from ..training import predict
from . import _check_dataset

EVAL_BATCH_SIZE = 500  # batch size of the evaluation passes of class_accuracy (any value gives the same result)


def without_class(dataset: TensorDataset, label: int) -> TensorDataset:
    """The examples of a ``TensorDataset`` of (images, labels) whose label is not ``label``."""
    images, labels = _check_dataset(dataset).tensors
    check_int(label, "label")
    keep = labels != label
    if keep.all():
        raise ValueError(f"label {label!r} does not occur in dataset (labels {sorted(labels.unique().tolist())})")
    return TensorDataset(images[keep], labels[keep])


def class_accuracy(model: nn.Module, dataset: TensorDataset, label: int) -> float:
    """Fraction of the examples of class ``label`` in ``dataset`` that ``model`` assigns to ``label``."""
    check_int(label, "label")
    logits, labels = predict(model, DataLoader(dataset, batch_size=EVAL_BATCH_SIZE))
    mine = labels == label
    if not mine.any():
        raise ValueError(f"label {label!r} does not occur in dataset")
    return (logits[mine].argmax(1) == label).float().mean().item()


def best_bias_shift(model: nn.Module, loader: DataLoader, label: int, *,
                    shifts: tuple[float, ...] = tuple(0.5 * i for i in range(21))) -> float:
    """The shift of class ``label``'s logit, among ``shifts``, that maximizes accuracy on ``loader``.

    Adding ``shift`` to the output bias of one class adds it to that class's logit for every input
    (a student that never saw the class under-rates it), so the choice is made on the logits of
    ``loader``, which must be a validation set, never the test set. Ties go to the first shift.
    """
    check_int(label, "label")
    if not shifts:
        raise ValueError("shifts must list at least one value, got none")
    logits, labels = predict(model, loader)
    bump = torch.zeros(logits.shape[1])
    accuracies = []
    for shift in shifts:
        bump[label] = shift
        accuracies.append(((logits + bump).argmax(1) == labels).float().mean().item())
    return shifts[accuracies.index(max(accuracies))]
