"""Exercise 4, Deep Compression: ``kmeans_codebook``, ``centroid_gradient``, ``sparse_offsets``, ``huffman_code``
and ``huffman_encode``, which together write a compressed layer to a real file.

References: :mod:`course_lib.quantization.kmeans`, :mod:`course_lib.compression`
(:func:`~course_lib.compression.sharing.centroid_gradient` was written for this exercise; the relative indices
are :func:`course_lib.compression.format.sparse_offsets`, the format's own). Every rule the notebook states has a
public case; the errors it names have public and hidden cases.

Two answers are judged by what they must satisfy rather than word for word. A code book (``kmeans_codebook``)
must match the reference's centroids, and its indices may differ only where a weight is equally close to two
centroids (within float32 rounding: a float32 Lloyd iteration may break such a tie the other way). A Huffman
code (``huffman_code``) may be any optimal one when counts tie: it must give every symbol (and only those) a
non-empty bit string, be prefix-free, and have the optimal total length $\\sum_s n_s \\ell_s$ (the reference's).
The public cases of ``huffman_code`` and the absence of error cases for it are relied on by
``tests/test_grading_attacks.py``.
"""
from __future__ import annotations

from ...exercise import Assignment, Question
from . import coding, sharing

ASSIGNMENT = Assignment(
    name="deep_compression",
    number=4,
    title="Deep Compression",
    exercises=(*sharing.EXERCISES, *coding.EXERCISES),
    questions=(
        Question("zeros", "Your file Huffman-codes the sparse streams (the offsets and codes of the stored entries); "
                          "the alternative Huffman-codes all the indices as one dense stream, zeros included. Which "
                          "was smaller, by how much (both are printed above), and why is a Huffman code far from the "
                          "entropy when one symbol has probability above one half?"),
        Question("sum", "Why is the gradient of a centroid the sum of its weights' gradients, not their mean? What "
                        "would the mean do to a centroid shared by thousands of weights?"),
        Question("bytes", "Where do the bytes of your file go (its parts are printed above)? Which stage of the "
                          "pipeline (pruning, sharing or Huffman coding) gave the largest factor, and what would you "
                          "change to go further?"),
    ),
)
