"""Quantization: store and compute with few-bit integers instead of 32-bit floats.

One concept per module, pure tensor functions first, then model-level verbs:

- :mod:`.affine`: ``compute_qparams``, ``quantize``, ``dequantize``, ``fake_quantize`` (the affine map
  $q = \\operatorname{clamp}(\\operatorname{round}(x/s) + z)$, $\\hat x = s(q - z)$, and its STE gradient);
- :mod:`.observers`: min-max, moving-average, percentile and MSE range estimation for calibration;
- :mod:`.ptq`: post-training quantization of a whole model (BatchNorm folding, per-tensor or
  per-channel weights, calibrated activations), simulated with fake quantization;
- :mod:`.qat`: quantization-aware training on top of :func:`course_lib.training.train`;
- :mod:`.binary`: binary weights $\\alpha \\operatorname{sign}(w)$, $\\alpha = \\operatorname{mean}|w|$;
- :mod:`.kmeans`: weight sharing with $k$-means code books (Deep Compression);
- :mod:`.deploy`: real int8 kernels (``torch.ao`` FX static quantization).
"""
from .affine import compute_qparams, dequantize, fake_quantize, qrange, quantize
from .binary import Binarize, binarize, binarize_weights, binary_alpha
from .deploy import int8_static_fx
from .kmeans import codebook_of, kmeans_codebook, share_weights, unshare_weights
from .observers import (MinMaxObserver, MovingAverageObserver, MSEObserver, Observer, PercentileObserver,
                        make_observer)
from .ptq import FakeQuantized, calibrate, fold_batchnorm, post_training_quantize, prepare, quantize_weight
from .qat import quantization_aware_training

__all__ = [
    "qrange", "compute_qparams", "quantize", "dequantize", "fake_quantize",
    "Observer", "MinMaxObserver", "MovingAverageObserver", "PercentileObserver", "MSEObserver", "make_observer",
    "fold_batchnorm", "quantize_weight", "FakeQuantized", "prepare", "calibrate", "post_training_quantize",
    "quantization_aware_training",
    "binary_alpha", "binarize", "Binarize", "binarize_weights",
    "kmeans_codebook", "share_weights", "unshare_weights", "codebook_of",
    "int8_static_fx",
]
