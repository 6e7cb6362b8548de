"""Pruning: remove the weights (unstructured) or channels (structured) a network needs least.

Pruning to sparsity $s$ keeps $k = n - \\operatorname{round}(s\\,n)$ of the $n$ prunable weights,

$$\\min_w L(w) \\quad \\text{subject to} \\quad \\lVert w \\rVert_0 \\le k ,$$

greedily: score each weight, zero the lowest-scored, fine-tune the rest with the mask in force.

- :mod:`.masks`: pure mask and score functions (magnitude, global magnitude, random, Taylor);
- :mod:`.unstructured`: model-level verbs that mask Linear/Conv2d weights through a
  :mod:`torch.nn.utils.parametrize` parametrization (masks enforced during training), :func:`make_permanent`,
  :func:`sparsity`;
- :mod:`.schedule`: Zhu & Gupta's gradual schedule and a per-layer sensitivity scan;
- :mod:`.structured`: channel scores and :func:`prune_channels`, a physically smaller model;
- :mod:`.storage`: sparse formats (CSR, bitmask) really serialized, and their size in bytes.

The model utilities a pruning experiment also needs are shared by every technique:
:func:`course_lib.training.recalibrate_batchnorm` (fresh BatchNorm statistics for a pruned network) and
:func:`course_lib.metrics.layer_macs` (the work each layer does).

Every verb returns a new model and leaves its argument untouched (see :mod:`course_lib`); the ones that
train (:func:`gradual_prune`) return a :class:`~course_lib.training.Trained`. Layers are chosen with
``layers=`` (names as in ``model.named_modules()``), the amount with ``sparsity=`` (the fraction removed).

References: Han et al. (2015), *Learning both weights and connections*; Molchanov et al. (2017),
*Pruning convolutional neural networks for resource efficient inference*; Li et al. (2017),
*Pruning filters for efficient ConvNets*; Zhu & Gupta (2017), *To prune, or not to prune*.
"""
# `masked_step` and `remove_channels` are graded in exercise 2: a graded function lives in a module of its own,
# because the grader's fence replaces it, and every helper of its module that it uses, with a tripwire in the learner's
# sandbox, which would break ungraded course code that shared the module.
from .masked_training import masked_step
from .masks import global_magnitude_masks, magnitude_mask, random_mask, taylor_importance
from .schedule import gradual_prune, gradual_sparsity, layer_sensitivity
from .storage import decode_sparse, encode_sparse, sparse_model_bytes
from .structured import channel_l1_norms, prune_channels
from .surgery import remove_channels
from .unstructured import (
    apply_masks,
    layer_sparsities,
    magnitude_prune,
    make_permanent,
    random_prune,
    sparsity,
    taylor_prune,
)

__all__ = [
    "magnitude_mask", "global_magnitude_masks", "random_mask", "taylor_importance", "channel_l1_norms",
    "magnitude_prune", "random_prune", "taylor_prune", "gradual_prune", "prune_channels", "apply_masks",
    "make_permanent", "sparsity", "layer_sparsities", "layer_sensitivity", "gradual_sparsity",
    "encode_sparse", "decode_sparse", "sparse_model_bytes", "masked_step", "remove_channels",
]
