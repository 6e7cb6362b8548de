"""Quantization: store and compute with few-bit integers instead of 32-bit floats.

One concept per module, pure tensor functions first, then model-level verbs:

- :mod:`.affine`: ``compute_qparams``, ``quantize``, ``dequantize``, ``fake_quantize`` (the affine map
  $q = \\operatorname{clamp}(\\operatorname{round}(x/s) + z)$, $\\hat x = s(q - z)$, and its STE gradient);
- :mod:`.observers`: min-max, moving-average, percentile and MSE range estimation for calibration;
- :mod:`.ptq`: post-training quantization of a whole model (BatchNorm folded, per-tensor or
  per-channel weights, calibrated activations), simulated with fake quantization;
- :mod:`.qat`: quantization-aware training on top of :func:`course_lib.training.train`;
- :mod:`.binary`: binary weights $\\alpha \\operatorname{sign}(w)$, $\\alpha = \\operatorname{mean}|w|$;
- :mod:`.kmeans`: weight sharing with $k$-means code books (Deep Compression);
- :mod:`.deploy`: real int8 kernels (PT2E: ``torch.export``, ``X86InductorQuantizer``, ``torch.compile``);
- :mod:`.kernels`: which int8 kernel runs on this CPU (``int8_kernel``), and ``saturating_linear``, what the
  x86 kernels without VNNI compute (neighbouring products added in int16, with saturation).

Every verb returns a new model and leaves its argument untouched (see :mod:`course_lib`);
:func:`quantization_aware_train`, which trains, returns a :class:`~course_lib.training.Trained`. Binary and
shared weights are :mod:`torch.nn.utils.parametrize` parametrizations, like pruning masks.
"""
from .affine import compute_qparams, dequantize, fake_quantize, qrange, quantize
from .binary import binarize, binarize_weights, binary_alpha
from .deploy import compile_int8

# `quantized_linear` is graded in exercise 3: a graded function lives in a module of its own, because the
# grader's fence replaces it, and every helper of its module that it uses, with a tripwire in the learner's
# sandbox, which would break ungraded course code that shared the module.
from .integer import quantized_linear
from .kernels import Int8Kernel, int8_kernel, saturating_accumulator, saturating_linear
from .kmeans import kmeans_codebook, share_weights
from .ptq import post_training_quantize
from .qat import quantization_aware_train

__all__ = [
    "qrange", "compute_qparams", "quantize", "dequantize", "fake_quantize", "binary_alpha", "binarize",
    "kmeans_codebook",
    "post_training_quantize", "quantization_aware_train", "binarize_weights", "share_weights", "compile_int8",
    "quantized_linear", "Int8Kernel", "int8_kernel", "saturating_accumulator", "saturating_linear",
]
