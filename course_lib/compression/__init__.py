"""Deep Compression (Han et al., 2016): prune, share weights, Huffman-code, and write a real file.

- :mod:`~course_lib.compression.huffman`: optimal prefix codes (:func:`huffman_code`) and bit streams;
- :mod:`~course_lib.compression.format`: the file format, :func:`compress` / :func:`decompress`;
- :mod:`~course_lib.compression.pipeline`: the three-stage pipeline on a model (:func:`deep_compress`, which
  works on copies and returns a :class:`Result`), stage by stage.

Weight sharing itself (k-means code books) lives in :mod:`course_lib.quantization.kmeans`.
"""
from . import pipeline
from .format import FileContents, LayerRecord, compress, decompress, read_records
from .huffman import huffman_code, huffman_decode, huffman_encode
from .pipeline import Config, Result, Stage, deep_compress, storage_bytes

__all__ = ["compress", "decompress", "read_records", "FileContents", "LayerRecord", "huffman_code", "huffman_encode",
           "huffman_decode", "deep_compress", "Config", "Result", "Stage", "storage_bytes", "pipeline"]

from .sharing import centroid_gradient  # noqa: E402  (exercise 4)

__all__ += ["centroid_gradient"]
