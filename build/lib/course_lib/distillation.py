r"""Knowledge distillation (Hinton et al., 2015): a small student learns from a large teacher.

The teacher's logits $v$ and the student's logits $z$ (both ``(N, K)``, $K$ classes) are softened
with a temperature $T$, $p = \mathrm{softmax}(v / T)$ and $q = \mathrm{softmax}(z / T)$, and the
student minimises

$$\mathcal{L} = \alpha \, T^2 \, \mathrm{KL}(p \,\|\, q) + (1 - \alpha) \, \mathrm{CE}(y, q^{(1)}),$$

the KL divergence averaged over the batch, $q^{(1)}$ the student's ordinary ($T = 1$) softmax. The
gradient of the KL term with respect to $z$ is $(q - p) / T$ and shrinks like $1/T^2$ for large
$T$; the factor $T^2$ keeps the soft term on the same scale whatever $T$ (see the book's
``algorithms/distillation`` page). Hard-label distillation replaces the soft targets by the
teacher's arg-max predictions ("rounded teacher outputs").

Pure tensor functions first (:func:`soft_targets`, :func:`distillation_loss`,
:func:`hard_label_loss`), then the model-level verbs (:func:`distillation_step`, :func:`distill`),
then the helpers of Hinton et al.'s omitted-class experiment.
"""
from __future__ import annotations

from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .training import History, pick_device, predict, train


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, Real) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> None:
    if student_logits.dim() != 2:
        raise ValueError(f"student_logits must have shape (N, K), got {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits must have the shape of student_logits {tuple(student_logits.shape)}, "
                         f"got {tuple(teacher_logits.shape)}")
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(f"labels must have shape ({student_logits.shape[0]},) to match student_logits "
                         f"{tuple(student_logits.shape)}, got {tuple(labels.shape)}")


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softened class probabilities $\\mathrm{softmax}(z / T)$ over the last dimension.

    ``logits`` has any shape ``(..., K)``; the result has the same shape and sums to 1 over ``K``.
    ``temperature = 1`` is the ordinary softmax; larger values flatten it towards uniform.
    """
    _check_temperature(temperature)
    return torch.softmax(logits / temperature, dim=-1)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """Hinton et al.'s loss: ``alpha * T^2 * KL(p_T(teacher) || p_T(student)) + (1 - alpha) * CE(student, labels)``.

    Args:
        student_logits: ``(N, K)`` logits of the student (gradients flow into these).
        teacher_logits: ``(N, K)`` logits of the teacher; detached, so no gradient reaches the teacher.
        labels: ``(N,)`` integer class labels in ``[0, K)``.
        temperature: ``T > 0``, the softmax temperature of both soft distributions.
        alpha: weight in ``[0, 1]`` of the soft term; ``alpha = 0`` is plain cross-entropy.

    Returns:
        A scalar: the KL divergence summed over classes and averaged over the batch (``batchmean``),
        plus the mean cross-entropy, both in nats.
    """
    _check_temperature(temperature)
    _check_alpha(alpha)
    _check_logits(student_logits, teacher_logits, labels)
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * temperature ** 2 * soft + (1.0 - alpha) * hard


def hard_label_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                    alpha: float = 0.9) -> torch.Tensor:
    """Hard-label distillation: ``alpha * CE(student, argmax teacher) + (1 - alpha) * CE(student, labels)``.

    The teacher's arg-max predictions (its "rounded" outputs, ``(N,)``) replace the soft targets, so
    only the teacher's decision is transferred, not how sure it is nor which classes it finds
    similar. ``alpha = 1`` trains on the teacher's labels alone. Shapes as in :func:`distillation_loss`.
    """
    _check_alpha(alpha)
    _check_logits(student_logits, teacher_logits, labels)
    teacher_labels = teacher_logits.detach().argmax(dim=-1)
    return (alpha * F.cross_entropy(student_logits, teacher_labels)
            + (1.0 - alpha) * F.cross_entropy(student_logits, labels))


def distillation_step(student: nn.Module, teacher: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                      optimizer: torch.optim.Optimizer, temperature: float = 4.0, alpha: float = 0.9) -> float:
    """One optimizer step of the student on one batch; returns the loss before the step (a float).

    The teacher runs in eval mode without gradients; the student runs in train mode, its logits
    go into :func:`distillation_loss`, and ``optimizer`` (over the student's parameters) steps once.
    ``inputs`` ``(N, ...)`` and ``labels`` ``(N,)`` must be on the models' device.
    """
    teacher.eval()
    student.train()
    with torch.no_grad():
        teacher_logits = teacher(inputs)
    loss = distillation_loss(student(inputs), teacher_logits, labels, temperature, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def distill(student: nn.Module, teacher: nn.Module, loader: DataLoader, epochs: int, *,
            temperature: float = 4.0, alpha: float = 0.9, hard: bool = False,
            device: str | torch.device | None = None, **train_kwargs) -> History:
    """Train ``student`` in place to imitate ``teacher`` on the batches of ``loader``; the teacher is never updated.

    The loss is :func:`distillation_loss` (soft targets at ``temperature``) or, with ``hard=True``,
    :func:`hard_label_loss` (the teacher's arg-max; ``temperature`` then plays no role). The labels
    of ``loader`` enter with weight ``1 - alpha``. The teacher is put in eval mode, moved to the
    training device and run under ``torch.no_grad()``; it sees the same (possibly augmented) inputs
    as the student. ``train_kwargs`` go to :func:`course_lib.training.train` (``lr``,
    ``weight_decay``, ``augment``, ``val_loader``, ``seed``, ``progress``, ...).
    Returns the student's training :class:`~course_lib.training.History`.
    """
    _check_temperature(temperature)
    _check_alpha(alpha)
    if not isinstance(hard, bool):
        raise ValueError(f"hard must be True or False, got {hard!r}")
    if "loss_fn" in train_kwargs:
        raise ValueError("distill builds its own loss_fn from temperature, alpha and hard; do not pass loss_fn")
    device = pick_device(device)
    teacher.eval().to(device)

    def loss_fn(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher(inputs)
        if hard:
            return hard_label_loss(model(inputs), teacher_logits, targets, alpha)
        return distillation_loss(model(inputs), teacher_logits, targets, temperature, alpha)

    return train(student, loader, epochs, loss_fn=loss_fn, device=device, **train_kwargs)


# --- The omitted-class experiment (Hinton et al., 2015, section 3) ---------------------------------

def without_class(dataset: TensorDataset, label: int) -> TensorDataset:
    """The examples of a ``TensorDataset`` of (images, labels) whose label is not ``label``."""
    images, labels = dataset.tensors
    keep = labels != label
    if keep.all():
        raise ValueError(f"label {label!r} does not occur in dataset (labels {sorted(labels.unique().tolist())})")
    return TensorDataset(images[keep], labels[keep])


def class_accuracy(model: nn.Module, dataset: TensorDataset, label: int) -> float:
    """Fraction of the examples of class ``label`` in ``dataset`` that ``model`` assigns to ``label``."""
    logits, labels = predict(model, DataLoader(dataset, batch_size=500))
    mine = labels == label
    if not mine.any():
        raise ValueError(f"label {label!r} does not occur in dataset")
    return (logits[mine].argmax(1) == label).float().mean().item()


def best_bias_shift(model: nn.Module, loader: DataLoader, label: int,
                    shifts: tuple[float, ...] = tuple(0.5 * i for i in range(21))) -> float:
    """The shift of class ``label``'s logit, among ``shifts``, that maximises accuracy on ``loader``.

    Adding ``shift`` to the output bias of one class adds it to that class's logit for every input
    (a student that never saw the class under-rates it), so the choice is made on the logits of
    ``loader``, which must be a validation set, never the test set. Ties go to the first shift.
    """
    if not shifts:
        raise ValueError("shifts must list at least one value")
    logits, labels = predict(model, loader)
    bump = torch.zeros(logits.shape[1])
    accuracies = []
    for shift in shifts:
        bump[label] = shift
        accuracies.append(((logits + bump).argmax(1) == labels).float().mean().item())
    return shifts[accuracies.index(max(accuracies))]
