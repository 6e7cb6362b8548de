r"""Knowledge distillation (Hinton et al., 2015): a small student learns from a large teacher.

The teacher's logits $v$ and the student's logits $z$ (both ``(N, K)``, $K$ classes) are softened
with a temperature $T$, $p = \mathrm{softmax}(v / T)$ and $q = \mathrm{softmax}(z / T)$, and the
student minimizes

$$\mathcal{L} = \alpha \, T^2 \, \mathrm{KL}(p \,\|\, q) + (1 - \alpha) \, \mathrm{CE}(y, q^{(1)}),$$

the KL divergence averaged over the batch, $q^{(1)}$ the student's ordinary ($T = 1$) softmax. The
gradient of the KL term with respect to $z$ is $(q - p) / T$ and shrinks like $1/T^2$ for large
$T$; the factor $T^2$ keeps the soft term on the same scale whatever $T$ (see the book's
``algorithms/distillation`` page). Hard-label distillation replaces the soft targets by the
teacher's arg-max predictions ("rounded teacher outputs").

Unlabeled examples (a *transfer set*) carry the label :data:`UNLABELED`: they get the soft term only,
and the hard term is the cross-entropy summed over the labeled examples of the batch divided by the
batch size ``N``, so that a fully labeled batch gives exactly the formula above.
:func:`with_few_labels` hides all labels but a stratified, seeded fraction; :func:`labeled` keeps the
labeled examples (Hinton et al., section 6: soft targets let a student learn from few labels).

Pure tensor functions first (:func:`soft_targets`, :func:`distillation_loss`,
:func:`hard_label_loss`), then one optimizer step (:func:`distillation_step`, what a training loop
calls) and the model-level verb :func:`distill` (a distilled copy of the student), then the few-label
helpers (those of Hinton et al.'s omitted-class experiment serve the benchmark alone, in
:mod:`course_lib.distillation._omitted_class`). The few-label experiment's loops, a fixed
number of steps (:func:`distill_steps`) and the temperature chosen on validation data
(:func:`temperature_sweep`), are in :mod:`course_lib.distillation.loops`. Feature (hint) distillation, FitNets
(Romero et al., 2015), is in :mod:`course_lib.distillation.features`: :func:`intermediate`,
:class:`HintRegressor`, :func:`hint_loss` and the verb :func:`hint_train`, all importable from here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .._validation import (
    changes_model,
    check_bool,
    check_float_tensor,
    check_fraction,
    check_int,
    check_loader,
    check_module,
    check_number,
    check_positive,
    check_tensor,
    verb,
)
from ..data import stratified_split
from ..training import Trained, train
from .features import HintRegressor, _frozen_teacher_and_student, hint_loss, hint_train, intermediate

UNLABELED = -1  # the label of an example of the transfer set whose label is not used (soft term only)

__all__ = ["UNLABELED", "soft_targets", "distillation_loss", "hard_label_loss", "distillation_step", "distill",
           "with_few_labels", "labeled",
           "intermediate", "HintRegressor", "hint_loss", "hint_train", "distill_steps", "temperature_sweep",
           "TemperatureChoice"]


def _check_temperature(temperature: float) -> None:
    check_positive(temperature, "temperature")


def _check_alpha(alpha: float) -> None:
    check_fraction(alpha, "alpha", meaning="the weight of the soft term")


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> None:
    check_float_tensor(student_logits, "student_logits")
    check_float_tensor(teacher_logits, "teacher_logits")
    check_tensor(labels, "labels")
    if student_logits.dim() != 2:
        raise ValueError(f"student_logits must have shape (N, K), got {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits must have the shape of student_logits {tuple(student_logits.shape)}, "
                         f"got {tuple(teacher_logits.shape)}")
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels must have shape ({student_logits.shape[0]},) to match student_logits "
                         f"{tuple(student_logits.shape)}, got {tuple(labels.shape)}")


def _labels_cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the labeled examples (label != UNLABELED), divided by the batch size."""
    return F.cross_entropy(student_logits, labels, ignore_index=UNLABELED, reduction="sum") / len(labels)


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softened class probabilities $\\mathrm{softmax}(z / T)$ over the last dimension.

    ``logits`` has any shape ``(..., K)``; the result has the same shape and sums to 1 over ``K``.
    ``temperature = 1`` is the ordinary softmax; larger values flatten it towards uniform.
    """
    check_float_tensor(logits, "logits", min_dim=1)
    _check_temperature(temperature)
    return torch.softmax(logits / temperature, dim=-1)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """Hinton et al.'s loss: ``alpha * T^2 * KL(p_T(teacher) || p_T(student)) + (1 - alpha) * CE(student, labels)``.

    Args:
        student_logits: ``(N, K)`` logits of the student (gradients flow into these).
        teacher_logits: ``(N, K)`` logits of the teacher; detached, so no gradient reaches the teacher.
        labels: ``(N,)`` integer class labels in ``[0, K)``, or :data:`UNLABELED` for an example of the
            transfer set without a label (it gets the soft term only).
        temperature: ``T > 0``, the softmax temperature of both soft distributions.
        alpha: weight in ``[0, 1]`` of the soft term; ``alpha = 0`` is plain cross-entropy.

    Returns:
        A scalar: the KL divergence summed over classes and averaged over the batch (``batchmean``),
        plus the cross-entropy summed over the labeled examples and divided by ``N`` (the mean
        cross-entropy when every example is labeled), both in nats.
    """
    _check_temperature(temperature)
    _check_alpha(alpha)
    _check_logits(student_logits, teacher_logits, labels)
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return alpha * temperature ** 2 * soft + (1.0 - alpha) * _labels_cross_entropy(student_logits, labels)


def hard_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                    alpha: float = 0.9) -> torch.Tensor:
    """Hard-label distillation: ``alpha * CE(student, argmax teacher) + (1 - alpha) * CE(student, labels)``.

    The teacher's arg-max predictions (its "rounded" outputs, ``(N,)``) replace the soft targets, so
    only the teacher's decision is transferred, not how sure it is nor which classes it finds
    similar. ``alpha = 1`` trains on the teacher's labels alone. Shapes, and :data:`UNLABELED` examples
    (the teacher's term only), as in :func:`distillation_loss`.
    """
    _check_alpha(alpha)
    _check_logits(student_logits, teacher_logits, labels)
    teacher_labels = teacher_logits.detach().argmax(dim=-1)
    return (alpha * F.cross_entropy(student_logits, teacher_labels)
            + (1.0 - alpha) * _labels_cross_entropy(student_logits, labels))


@changes_model
def distillation_step(student: nn.Module, teacher: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                      optimizer: torch.optim.Optimizer, temperature: float = 4.0, alpha: float = 0.9) -> float:
    """One optimizer step of the student on one batch; returns the loss before the step (a float).

    The teacher runs in eval mode without gradients; the student runs in train mode, its logits
    go into :func:`distillation_loss`, and ``optimizer`` (over the student's parameters) steps once.
    ``inputs`` ``(N, ...)`` and ``labels`` ``(N,)`` must be on the models' device.
    """
    check_module(student, "student")
    check_module(teacher, "teacher")
    teacher.eval()
    student.train()
    with torch.no_grad():
        teacher_logits = teacher(inputs)
    loss = distillation_loss(student(inputs), teacher_logits, labels, temperature, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@verb
def distill(student: nn.Module, teacher: nn.Module, loader: DataLoader, *, epochs: int,
            temperature: float = 4.0, alpha: float = 0.9, hard: bool = False,
            device: str | torch.device | None = None, **train_kwargs) -> Trained:
    """A copy of ``student`` trained for ``epochs`` to imitate ``teacher`` on the batches of ``loader``.

    The loss is :func:`distillation_loss` (soft targets at ``temperature``) or, with ``hard=True``,
    :func:`hard_label_loss` (the teacher's arg-max; ``temperature`` then plays no role). The labels
    of ``loader`` enter with weight ``1 - alpha``; examples labeled :data:`UNLABELED` (a transfer set, see
    :func:`with_few_labels`) learn from the teacher alone. A copy of the teacher, in eval mode on the training
    device, runs under ``torch.no_grad()``; it sees the same (possibly augmented) inputs as the student.
    ``train_kwargs`` go to :func:`course_lib.training.train` (``lr``, ``weight_decay``, ``augment``,
    ``val_loader``, ``seed``, ``progress``, ``optimizer`` as a factory of the copy's parameters, ...). Neither
    ``student`` nor ``teacher`` is changed.

    Returns:
        :class:`~course_lib.training.Trained`: the distilled student (eval mode) and its training history.
    """
    check_module(student, "student")
    check_module(teacher, "teacher")
    check_loader(loader)
    check_int(epochs, "epochs", 0)
    _check_temperature(temperature)
    _check_alpha(alpha)
    check_bool(hard, "hard")
    teacher, student, device = _frozen_teacher_and_student(teacher, student, device, train_kwargs,
                                                           "distill builds its own loss_fn from temperature, "
                                                           "alpha and hard")

    def loss_fn(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher(inputs)
        if hard:
            return hard_label_loss(model(inputs), teacher_logits, targets, alpha)
        return distillation_loss(model(inputs), teacher_logits, targets, temperature, alpha)

    history = train(student, loader, epochs, loss_fn=loss_fn, device=device, **train_kwargs)
    return Trained(student, history)


# --- Few labels: a labeled subset and an unlabeled transfer set (Hinton et al., 2015, section 6) ---

def _check_dataset(dataset: object) -> TensorDataset:
    if not isinstance(dataset, TensorDataset) or len(dataset.tensors) != 2:
        raise TypeError(f"dataset must be a TensorDataset of (images, labels), got {type(dataset).__name__}")
    return dataset


def with_few_labels(dataset: TensorDataset, fraction: float, *, seed: int) -> TensorDataset:
    """``dataset`` with the labels of all but a stratified, seeded ``fraction`` of its examples replaced by
    :data:`UNLABELED`; the images are shared, not copied.

    The ``round(fraction * N)`` examples that keep their label are drawn class by class in proportion to the
    class counts (:func:`course_lib.data.stratified_split`, largest remainders, seeded by ``seed``), so even
    35 labels out of 3,500 cover every digit. ``fraction`` is in ``(0, 1]``; at least one label must remain.
    """
    images, labels = _check_dataset(dataset).tensors
    fraction = check_number(fraction, "fraction", 0.0, 1.0, low_open=True, meaning="the share of labels kept")
    check_int(seed, "seed", 0)
    if (labels == UNLABELED).any():
        raise ValueError("dataset already has unlabeled examples; pass the fully labeled dataset")
    n_labeled = round(fraction * len(labels))
    if n_labeled < 1:
        raise ValueError(f"fraction {fraction:g} of {len(labels)} examples keeps no label; use a larger fraction")
    _, keep = stratified_split(labels.numpy(), n_labeled, seed)
    hidden = torch.full_like(labels, UNLABELED)
    hidden[keep] = labels[keep]
    return TensorDataset(images, hidden)


def labeled(dataset: TensorDataset) -> TensorDataset:
    """The examples of ``dataset`` that have a label (not :data:`UNLABELED`)."""
    images, labels = _check_dataset(dataset).tensors
    keep = labels != UNLABELED
    if not keep.any():
        raise ValueError("dataset has no labeled example")
    return TensorDataset(images[keep], labels[keep])


from .loops import TemperatureChoice, distill_steps, temperature_sweep  # noqa: E402 - they call distillation_step
