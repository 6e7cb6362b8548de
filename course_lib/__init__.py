"""course_lib: the package behind *Compress & Accelerate*, a course on making neural networks smaller and faster.

Ground floor: :mod:`~course_lib.data`, :mod:`~course_lib.models`; then :mod:`~course_lib.training`,
:mod:`~course_lib.metrics` and the model cache :mod:`~course_lib.zoo`; one module per technique
(:mod:`~course_lib.distillation`, :mod:`~course_lib.pruning`, :mod:`~course_lib.acceleration`,
:mod:`~course_lib.quantization`, which builds on acceleration's Conv-BN folding and compilation, and
:mod:`~course_lib.compression`, which builds on pruning and quantization); on top, :mod:`~course_lib.grading`
and :mod:`~course_lib.benchmark`.

The contract of every model-level verb (``distill``, ``hint_train``, ``magnitude_prune``, ``random_prune``,
``taylor_prune``, ``gradual_prune``, ``prune_channels``, ``apply_masks``, ``make_permanent``,
``post_training_quantize``, ``quantization_aware_train``, ``binarize_weights``, ``share_weights``, ``compile_int8``,
``fold_batchnorm``, ``factorize_linears``, ``to_channels_last``, ``deep_compress``, ``fine_tune``):

1. **It returns a new model and leaves its argument untouched** (it deep-copies first). This is the one
   rule every verb can keep (PT2E conversion and channel surgery can only build a new module), and a zoo
   model reused across a chapter's experiments stays as it was. :func:`course_lib.training.train` is the
   exception by design: it is the training loop, and it trains the model it is given, in place.
2. **It returns the model**, or, if it trains (``distill``, ``hint_train``, ``gradual_prune``,
   ``quantization_aware_train``, ``fine_tune``), a :class:`~course_lib.training.Trained` ``(model, history)``;
   ``deep_compress`` returns its :class:`~course_lib.compression.Result` (the model, the stage table and the widths used).
3. **The model and its data come first, everything else is keyword-only**: ``magnitude_prune(model,
   sparsity=0.9)``, ``distill(student, teacher, loader, epochs=3, temperature=4.0)``.
4. **One keyword chooses layers**: ``layers=`` (an iterable of names as in ``model.named_modules()``;
   ``None``: every layer the verb applies to). Per-layer settings are mappings with such names as keys
   (``sparsity={"net.1": 0.92}``, ``bits={"features.0": 8}``), validated the same way.
5. **Names say what they mean**: ``sparsity`` is the fraction removed (weights or channels), ``scope`` is
   ``"global"`` or ``"layer"``, ``bits`` is a code width.
6. **Bad arguments fail early and alike**: a wrong type raises ``TypeError``, a bad value ``ValueError``,
   with the message ``"<argument> must be <what is allowed>, got <what was given>"``.

Pruning masks, binary weights and shared weights are all :mod:`torch.nn.utils.parametrize`
parametrizations of ``weight``: ``layer.weight`` is what the layer computes with, training updates the
tensor behind it, any such model can be deep-copied, and :func:`course_lib.pruning.make_permanent` folds them.
The pure tensor functions that the exercises reimplement (``soft_targets``, ``magnitude_mask``,
``quantize``, ``huffman_code``, ...) keep their plain positional signatures.
"""
from __future__ import annotations

__version__ = "0.1.0"


def repository_url() -> str:
    """The course's source repository, ``[project.urls] Repository`` of ``pyproject.toml`` (the one setting)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("course_lib").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    raise RuntimeError("course_lib is not installed with its metadata (pip install -e .); "
                       "the repository address is [project.urls] Repository in pyproject.toml")
