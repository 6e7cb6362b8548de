"""course_lib: the package behind *Compress & Accelerate*, a course on making neural networks smaller and faster.

Ground floor: :mod:`~course_lib.data`, :mod:`~course_lib.models`; then :mod:`~course_lib.training`,
:mod:`~course_lib.metrics` and the model cache :mod:`~course_lib.zoo`; one module per technique
(:mod:`~course_lib.distillation`, :mod:`~course_lib.pruning`, :mod:`~course_lib.quantization`,
:mod:`~course_lib.acceleration`, :mod:`~course_lib.compression`); on top, :mod:`~course_lib.grading`
and :mod:`~course_lib.benchmark`.
"""
__version__ = "0.1.0"
