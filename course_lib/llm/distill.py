r"""Token-level distillation of a language model: match the teacher's next-token distribution at every position.

With teacher logits $v$ and student logits $z$ at one position (vocabulary $V$), softened by the temperature
$T$, $p = \mathrm{softmax}(v/T)$ and $q = \mathrm{softmax}(z/T)$:

$$\text{forward: } T^2\,\mathrm{KL}(p \,\|\, q) = T^2 \sum_k p_k (\ln p_k - \ln q_k), \qquad
\text{reverse: } T^2\,\mathrm{KL}(q \,\|\, p) = T^2 \sum_k q_k (\ln q_k - \ln p_k),$$

averaged over the positions that count. Forward KL (Hinton et al., 2015; the usual word-level distillation
of Kim & Rush, 2016) is mean-seeking: the student must cover every token the teacher deems likely. Reverse
KL (Gu et al., 2024, *MiniLLM: knowledge distillation of large language models*) is mode-seeking: the
student is punished for putting mass where the teacher puts little, and may ignore some of the teacher's
modes. $T^2$ keeps the gradient's scale independent of $T$ (see :mod:`course_lib.distillation`).
"""
from __future__ import annotations

import torch

from .._validation import check_choice, check_float_tensor, check_int, check_positive, check_tensor


def lm_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
                         direction: str = "forward", targets: torch.Tensor | None = None,
                         ignore_index: int = -100) -> torch.Tensor:
    """$T^2$ times the KL divergence between teacher and student next-token distributions, mean over positions.

    Args:
        student_logits, teacher_logits: ``(..., V)``, the same shape (e.g. ``(B, T, V)``); no gradient flows
            to the teacher.
        temperature: $T > 0$.
        direction: ``"forward"`` for $\\mathrm{KL}(p_T \\| p_S)$, ``"reverse"`` for $\\mathrm{KL}(p_S \\| p_T)$.
        targets: optional integer tensor of the leading shape ``(...)`` (the next-token labels the
            cross-entropy would use); positions where it equals ``ignore_index`` do not count. ``None``:
            every position counts.

    Returns:
        A scalar: the sum over counted positions divided by their number (0 when none counts). Computed in
        float32 at least (float64 logits stay float64).
    """
    check_float_tensor(student_logits, "student_logits", min_dim=1)
    check_float_tensor(teacher_logits, "teacher_logits", min_dim=1)
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits must have the shape of student_logits {tuple(student_logits.shape)}, "
                         f"got {tuple(teacher_logits.shape)}")
    temperature = check_positive(temperature, "temperature")
    check_choice(direction, "direction", ("forward", "reverse"))
    ignore_index = check_int(ignore_index, "ignore_index")
    dtype = torch.promote_types(student_logits.dtype, torch.float32)
    log_q = torch.log_softmax(student_logits.to(dtype) / temperature, dim=-1)
    log_p = torch.log_softmax(teacher_logits.detach().to(dtype) / temperature, dim=-1)
    if direction == "forward":
        per_position = (log_p.exp() * (log_p - log_q)).sum(-1)
    else:
        per_position = (log_q.exp() * (log_q - log_p)).sum(-1)
    if targets is None:
        counted = torch.ones_like(per_position, dtype=torch.bool)
    else:
        check_tensor(targets, "targets")
        allowed = f"an integer tensor of shape {tuple(per_position.shape)} (the logits' leading dimensions)"
        given = f"got a tensor of dtype {targets.dtype} and shape {tuple(targets.shape)}"
        if targets.is_floating_point() or targets.is_complex():
            raise TypeError(f"targets must be {allowed}, {given}")
        if targets.shape != per_position.shape:
            raise ValueError(f"targets must be {allowed}, {given}")
        counted = targets != ignore_index
    total = torch.where(counted, per_position, torch.zeros_like(per_position)).sum()
    return temperature ** 2 * total / counted.sum().clamp(min=1)
