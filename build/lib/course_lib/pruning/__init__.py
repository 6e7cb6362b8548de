"""Pruning: remove the weights (unstructured) or channels (structured) a network needs least.

Pruning to sparsity $s$ keeps $k = n - \\operatorname{round}(s\\,n)$ of the $n$ prunable weights,

$$\\min_w L(w) \\quad \\text{subject to} \\quad \\lVert w \\rVert_0 \\le k ,$$

greedily: score each weight, zero the lowest-scored, fine-tune the rest with the mask in force.

- :mod:`.masks`: pure mask and score functions (magnitude, global magnitude, random, Taylor);
- :mod:`.unstructured`: model-level verbs on Linear/Conv2d weights through :mod:`torch.nn.utils.prune`
  (masks enforced during training), :func:`make_permanent`, :func:`sparsity`;
- :mod:`.schedule`: Zhu & Gupta's gradual schedule and a per-layer sensitivity scan;
- :mod:`.structured`: channel scores and :func:`prune_channels`, a physically smaller model;
- :mod:`.storage`: sparse formats (CSR, bitmask) really serialized, and their size in bytes.

References: Han et al. (2015), *Learning both weights and connections*; Molchanov et al. (2017),
*Pruning convolutional neural networks for resource efficient inference*; Li et al. (2017),
*Pruning filters for efficient ConvNets*; Zhu & Gupta (2017), *To prune, or not to prune*.
"""
from .masks import check_sparsity, global_magnitude_masks, magnitude_mask, random_mask, taylor_importance
from .schedule import gradual_prune, gradual_sparsity, layer_sensitivity
from .storage import FORMATS, decode_sparse, encode_sparse, sparse_model_bytes
from .structured import channel_l1_norms, channels_to_keep, prune_channels
from .unstructured import (PRUNABLE, apply_masks, effective_weight, global_magnitude_prune, is_pruned,
                           layer_sparsities, make_permanent, prunable_modules, random_prune, sparsity,
                           taylor_prune, taylor_scores)

__all__ = [
    "FORMATS", "PRUNABLE", "apply_masks", "channel_l1_norms", "channels_to_keep", "check_sparsity",
    "decode_sparse", "effective_weight", "encode_sparse", "global_magnitude_masks", "global_magnitude_prune",
    "gradual_prune", "gradual_sparsity", "is_pruned", "layer_sensitivity", "layer_sparsities", "magnitude_mask",
    "make_permanent", "prunable_modules", "prune_channels", "random_mask", "random_prune", "sparse_model_bytes",
    "sparsity", "taylor_importance", "taylor_prune", "taylor_scores",
]
