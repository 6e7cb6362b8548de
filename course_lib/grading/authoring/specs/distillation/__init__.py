"""Exercise 1, knowledge distillation: ``soft_targets``, ``distillation_loss``, ``hard_label_loss``,
``distillation_step``, the few-label experiment's loop ``distill_steps`` and the ``temperature_sweep`` that
chooses $T$ on validation data.

References: :mod:`course_lib.distillation` (:func:`~course_lib.distillation.loops.distill_steps` and
:func:`~course_lib.distillation.loops.temperature_sweep` were written for this exercise). Every rule the notebook
states has a public case: the last dimension of any shape, no overflow for large logits, the dtype of the
logits kept; the KL divergence in the direction teacher to student, summed over classes and averaged over the
batch, times $T^2$; the hard term on the student's unsoftened logits; examples labeled ``UNLABELED`` (-1) with
the soft (or teacher's) term only and the label term summed over the labeled examples divided by the batch
size; no gradient into the teacher's logits (every case passes teacher logits that require a gradient); the
teacher in eval mode, unchanged and without gradients, the student in train mode, the loss as a Python float; a
new pass over the loader when it runs out; each temperature from the same weights and random state, Adam,
the choice on validation with ties to the lowest temperature, the test split evaluated for the chosen student
only (a test loader that counts its passes: one). An optimizer that holds gradients from an earlier step has a
public and a hidden case of ``distillation_step``. The errors the notebook names have public and hidden cases.
``distillation_step``, ``distill_steps`` and ``temperature_sweep`` call the learner's earlier functions: their
``relies_on`` note says so in the feedback of a failed test.

The three public cases and six hidden cases of ``soft_targets``, its stub message (beginning "the softened
probabilities") and its absence of error cases are relied on by ``tests/test_grading.py`` and
``tests/test_grading_attacks.py``.
"""
from __future__ import annotations

from ...exercise import Assignment, Question
from . import loops, losses, step

ASSIGNMENT = Assignment(
    name="distillation",
    number=1,
    title="Knowledge distillation",
    exercises=(*losses.EXERCISES, *step.EXERCISES, *loops.EXERCISES),
    questions=(
        Question("transfer", "Your student with the transfer set saw the same 105 labels as the labels-only student. "
                             "Where does its extra accuracy come from, and why does an `UNLABELED` image get the soft "
                             "term only? Use the numbers you measured."),
        Question("temperature", "Which temperature did your sweep choose, and by how many validation images did it "
                                "beat, or tie with, the others (one validation image is 0.2%)? Would you trust that "
                                "ranking on another seed? Why is the test accuracy computed for the chosen student "
                                "only?"),
        Question("imitation", "Compare the students' imitation of the teacher on the validation images: the KL "
                              "divergence to its soft targets and the cross-entropy to its decisions "
                              "(`hard_label_loss`). What does the soft term transfer that the teacher's decisions "
                              "do not?"),
    ),
)
