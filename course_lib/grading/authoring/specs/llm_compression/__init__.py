"""Exercise 5, compression of language models: ``fake_group_quantize``, ``gptq_quantize``, ``outlier_stats``,
``smooth_scales``, ``awq_search_scales``, ``wanda_scores``, ``nm_mask`` and ``lm_distillation_loss``.

References: :mod:`course_lib.llm`. Every rule the notebook states has a public case: the range widened to contain 0,
round half to even, the scale floor of an all-zero group, groups of input columns, the weight's dtype kept
(compared); GPTQ equal to plain rounding for a diagonal Hessian, dead inputs (zeroed before the grid and the
damping), damping, group grids from the updated weights, its arguments left unchanged (observed); Pearson kurtosis
from population moments computed in float64, NaN for a constant channel, the median of an even number of channels,
an absmax equal to the threshold no outlier; SmoothQuant's clamps; AWQ's grid without 1, its normalisation and
floor, the first of equal errors, a custom block output; N:M ties broken by position, a bool mask; forward and
reverse KL, T^2, ignored positions, no gradient to the teacher. The errors the notebook names have public and hidden
cases. Inputs are float64 where sequential rounding decisions must agree across CPUs (GPTQ, AWQ).
"""
from __future__ import annotations

from ...exercise import Assignment, Question
from . import distill, scaling, sparsity, weights

ASSIGNMENT = Assignment(
    name="llm_compression",
    number=5,
    title="Compressing language models",
    exercises=(*weights.EXERCISES, *scaling.EXERCISES, *sparsity.EXERCISES, *distill.EXERCISES),
    questions=(
        Question("awq", "Look at AWQ's errors over alpha printed above. Why does scaling the salient input channels "
                        "up before rounding (and dividing the activations by the same scales) lower the output "
                        "error, and why does the error rise again for the largest alphas?"),
        Question("gptq", "GPTQ's weights are further from the original weights than plain rounding's, yet its "
                         "output error is smaller (both printed above). Explain, and say why GPTQ changes nothing "
                         "when the Hessian is diagonal."),
        Question("kl", "Which student covered both of the teacher's modes, the forward-KL or the reverse-KL one "
                       "(printed above)? Explain from the two formulas, and say which you would choose to distil a "
                       "language model whose samples must stay fluent."),
    ),
)
