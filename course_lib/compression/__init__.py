"""Deep Compression (Han et al., 2016): prune, share weights, Huffman-code, and write a real file.

- :mod:`~course_lib.compression.huffman`: optimal prefix codes (:func:`huffman_code`) and bit streams;
- :mod:`~course_lib.compression.format`: the file format, :func:`compress` / :func:`decompress`;
- :mod:`~course_lib.compression.pipeline`: the three-stage pipeline on a model (:func:`deep_compress`, which
  works on copies and returns a :class:`Result`), stage by stage;
- :mod:`~course_lib.compression.policy`: per-layer sparsity and bit width chosen from measured sensitivity under a
  budget of parameters, bytes or MACs (:func:`choose_policy`, :func:`apply_policy`).

Weight sharing itself (k-means code books) lives in :mod:`course_lib.quantization.kmeans`.
"""
from . import pipeline
from .format import FileContents, LayerRecord, compress, decompress, read_records
from .huffman import huffman_code, huffman_decode, huffman_encode
from .pipeline import Config, Result, Stage, deep_compress, storage_bytes
from .policy import Policy, apply_policy, choose_policy, make_policy, policy_scan

# `centroid_gradient` is graded in exercise 4: a graded function lives in a module of its own, because the
# grader's fence replaces it, and every helper of its module that it uses, with a tripwire in the learner's
# sandbox, which would break ungraded course code that shared the module.
from .sharing import centroid_gradient

__all__ = ["compress", "decompress", "read_records", "FileContents", "LayerRecord", "huffman_code", "huffman_encode",
           "huffman_decode", "deep_compress", "Config", "Result", "Stage", "storage_bytes", "pipeline",
           "centroid_gradient", "Policy", "choose_policy", "apply_policy", "make_policy",
           "policy_scan"]
