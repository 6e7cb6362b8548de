"""Exercise 2, pruning: masks, the global threshold, importance scores, the masked training step, the sensitivity
scan, channel selection and the Conv-BN-Conv surgery.

References: :mod:`course_lib.pruning` (:func:`~course_lib.pruning.masked_training.masked_step` and
:func:`~course_lib.pruning.surgery.remove_channels` were written for this exercise). Convention: at
sparsity $s$ exactly ``round(s * n)`` of the ``n`` entries are zeroed (Python's ``round``, half to even);
masks hold 0 and 1 (``bool`` masks are accepted). Every rule the notebook states has a public case; the
errors it names have public and hidden cases. The public cases of ``taylor_importance`` (shape ``(3,)``) and
``channel_l1_norms`` (shape ``(2, 2, 2, 2)``) and the absence of error cases for them and for
``global_magnitude_masks`` are relied on by ``tests/test_grading_attacks.py``.
"""
from __future__ import annotations

from ...exercise import Assignment, Question
from . import channels, masks, training

ASSIGNMENT = Assignment(
    name="pruning",
    number=2,
    title="Pruning",
    exercises=(*masks.EXERCISES, *training.EXERCISES, *channels.EXERCISES),
    questions=(
        Question("revival", "Fine-tuned without the masks, your pruned LeNet-300-100 lost part of its sparsity. Which "
                            "mechanisms of the optimizer move a weight that is exactly zero, and why does re-applying "
                            "the mask after each step (not before it) prevent it?"),
        Question("scores", "Your channel selection ranks the teacher's first-layer filters by their L1 norm, but a "
                           "BatchNorm follows that convolution. Why is the filter's norm a weak score there, and "
                           "which quantity would you rank by instead? Use the numbers you measured."),
        Question("speed", "The 90%-sparse LeNet-300-100 is not faster than the dense one, while the teacher with half "
                          "of its first-layer channels removed is. Explain why, and say what unstructured sparsity "
                          "would need to pay off in time."),
    ),
)
