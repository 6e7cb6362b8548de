"""Deep Compression (Han et al., 2016): prune, share weights, Huffman-code, and write a real file.

- :mod:`~course_lib.compression.huffman`: optimal prefix codes (:func:`huffman_code`) and bit streams;
- :mod:`~course_lib.compression.format`: the file format, :func:`compress` / :func:`decompress`;
- :mod:`~course_lib.compression.pipeline`: the three-stage pipeline on a model, stage by stage.

Weight sharing itself (k-means code books) lives in :mod:`course_lib.quantization.kmeans`.
"""
from .format import LayerRecord, compress, decompress, read_records
from .huffman import canonical_code, encoded_bits, huffman_code, huffman_decode, huffman_encode, huffman_lengths
from . import pipeline
from .pipeline import Stage, deep_compress, stage_table, storage_bytes

__all__ = ["LayerRecord", "Stage", "canonical_code", "compress", "decompress", "deep_compress", "encoded_bits",
           "huffman_code", "huffman_decode", "huffman_encode", "huffman_lengths", "pipeline", "read_records",
           "stage_table", "storage_bytes"]
