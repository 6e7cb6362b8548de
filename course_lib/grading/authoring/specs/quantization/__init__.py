"""Exercise 3, quantization: ``compute_qparams``, ``quantize``, ``dequantize``, ``fake_quantize`` and its gradient,
``binarize`` (alpha * sign with the straight-through gradient) and ``quantized_linear`` (integer-only inference).

References: :mod:`course_lib.quantization` (:func:`~course_lib.quantization.integer.quantized_linear` was written
for this exercise). Every rule the notebook states has a public case: rounding half to even, clamping at both
ends of the code range, int64 codes and float32 values (dtypes are compared), per-channel parameters along
either axis, the straight-through gradient (zero where clamped), sign(0) = +1, int32 accumulation and
requantization; the errors it names have public and hidden cases. ``compute_qparams`` and ``dequantize`` have
no error cases: ``tests/test_grading_attacks.py`` grades versions of them without argument checks.
"""
from __future__ import annotations

from ...exercise import Assignment, Question
from . import affine, integer

ASSIGNMENT = Assignment(
    name="quantization",
    number=3,
    title="Quantization",
    exercises=(*affine.EXERCISES, *integer.EXERCISES),
    allowed=("course_lib.quantization:qrange",),
    questions=(
        Question("zero", "Why must the real value 0 be exactly representable (a zero point that is an integer code)? "
                         "Name a place in a network where an error there would not average out."),
        Question("qat", "At 2 bits, compare your post-training result with one epoch of quantization-aware training. "
                        "Rounding has a zero derivative almost everywhere: why can QAT still train, and what does the "
                        "straight-through estimator ignore?"),
        Question("integer", "In your integer-only layer, which operation is not integer arithmetic, and how would "
                            "integer hardware do it? Why is the bias quantized with the scale `x_scale * w_scale` "
                            "and not with `y_scale`?"),
    ),
)
