"""Weight sharing by k-means clustering (Han et al., 2016, "Deep Compression", section 3).

The $n$ weights $W = \\{w_1, \\dots, w_n\\}$ of one layer are partitioned into $k = 2^b$ clusters
$C = \\{c_1, \\dots, c_k\\}$ minimising the within-cluster sum of squares

$$\\arg\\min_C \\sum_{i=1}^{k} \\sum_{w \\in c_i} \\lvert w - c_i \\rvert^2 ,$$

and every weight is replaced by its cluster's centroid: the layer then stores one ``b``-bit index per
weight and a code book of $2^b$ floats. Centroids start spread linearly between the smallest and the
largest weight (*linear* initialisation, the paper's choice: it keeps a few centroids on the rare large
weights, which matter most), or at the quantiles of the weights (*density*), or at randomly drawn weights
(*random*, Forgy). Lloyd's algorithm then alternates assignment to the nearest centroid and centroid =
mean of its cluster until no assignment changes.

For a pruned layer (``skip_zeros=True``) code 0 is reserved for the pruned weights, with value exactly 0,
and the $2^b - 1$ other centroids cluster the non-zero weights only: zeros stay zero.

After sharing, the code book is fine-tuned: with $I_{ij}$ the index of weight $W_{ij}$, the gradient of
centroid $C_k$ is the sum of the gradients of the weights in its cluster (the paper's eq. 3),

$$\\frac{\\partial L}{\\partial C_k} = \\sum_{i,j} \\frac{\\partial L}{\\partial W_{ij}} \\,\\mathbb{1}(I_{ij} = k),$$

which is exactly what autograd computes for ``weight = codebook[indices]``. :func:`share_weights` sets a
shared layer up that way, in the style of :mod:`torch.nn.utils.prune`: the layer's ``weight`` parameter is
replaced by a parameter ``weight_codebook`` ``(2**bits,)`` and a buffer ``weight_indices`` (int64, the
weight's shape), and a forward pre-hook recomputes ``weight`` from them before every forward pass.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

INITS = ("linear", "density", "random")


def _check_bits(bits: object, low: int = 1, high: int = 16) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not low <= bits <= high:
        raise ValueError(f"bits must be an integer in [{low}, {high}], got {bits!r}")


def _initial_centroids(values: torch.Tensor, k: int, init: str, seed: int) -> torch.Tensor:
    """``k`` initial centroids (float64) for the 1-D ``values`` by ``init``."""
    if init == "linear":
        return torch.linspace(values.min().item(), values.max().item(), k, dtype=torch.float64)
    if init == "density":
        return torch.quantile(values, (torch.arange(k, dtype=torch.float64) + 0.5) / k)
    generator = torch.Generator().manual_seed(seed)
    picks = (torch.randperm(len(values), generator=generator)[:k] if len(values) >= k
             else torch.randint(len(values), (k,), generator=generator))
    return values[picks].sort().values


def _assign(values: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid for each value; ties go to the centroid listed first."""
    order = torch.argsort(centroids, stable=True)
    ranked = centroids[order]
    midpoints = (ranked[1:] + ranked[:-1]) / 2
    return order[torch.bucketize(values, midpoints, right=False)]


def _lloyd(values: torch.Tensor, centroids: torch.Tensor, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's algorithm in float64; an empty cluster keeps its centroid. Returns (centroids, assignment)."""
    k = len(centroids)
    assignment = _assign(values, centroids)
    for _ in range(iters):
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, assignment, values)
        counts = torch.bincount(assignment, minlength=k)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        new = _assign(values, centroids)
        if torch.equal(new, assignment):
            break
        assignment = new
    return centroids, assignment


def kmeans_codebook(weight: torch.Tensor, bits: int, init: str = "linear", iters: int = 50, *,
                    skip_zeros: bool = False, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the entries of ``weight`` into ``2**bits`` shared values with 1-D k-means.

    Args:
        weight: a floating-point tensor of any shape (a layer's weight).
        bits: index width ``b`` in ``[1, 16]``; the code book has ``2**b`` entries.
        init: ``"linear"`` (evenly spaced between min and max, Han et al.'s choice), ``"density"``
            (at the quantiles ``(j + 1/2) / 2**b``) or ``"random"`` (``2**b`` weights drawn without
            replacement with ``seed``, Forgy's method).
        iters: at most this many Lloyd iterations (it stops earlier once no assignment changes);
            ``0`` keeps the initial centroids and only assigns.
        skip_zeros: reserve code 0 for the exact zeros (value ``0.0``) and cluster only the non-zero
            entries into the other ``2**b - 1`` centroids, so that pruned weights stay pruned.
        seed: seed of the ``"random"`` initialisation (ignored otherwise).

    Returns:
        ``(codebook, indices)``: ``codebook`` ``(2**bits,)`` in ``weight``'s dtype, and ``indices``
        ``int64`` of ``weight``'s shape with values in ``[0, 2**bits)``, so that
        ``codebook[indices]`` is the shared weight. A centroid whose cluster ends up empty keeps its
        initial value. Centroids are computed in float64 and rounded once at the end.
    """
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        raise ValueError(f"weight must be a floating-point tensor, got {type(weight).__name__}"
                         + (f" of dtype {weight.dtype}" if isinstance(weight, torch.Tensor) else ""))
    if weight.numel() == 0:
        raise ValueError("weight must have at least one entry, got an empty tensor")
    _check_bits(bits)
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ValueError(f"iters must be a non-negative integer, got {iters!r}")
    if not torch.isfinite(weight).all():
        raise ValueError("weight must be finite, got NaN or infinite entries")
    flat = weight.detach().reshape(-1).to("cpu", torch.float64)
    k = 2 ** bits
    indices = torch.zeros(flat.shape, dtype=torch.int64)
    codebook = torch.zeros(k, dtype=torch.float64)
    if skip_zeros:
        nonzero = flat != 0
        if nonzero.any():
            values = flat[nonzero]
            centroids, assignment = _lloyd(values, _initial_centroids(values, k - 1, init, seed), iters)
            codebook[1:] = centroids
            indices[nonzero] = assignment + 1
    else:
        codebook, indices = _lloyd(flat, _initial_centroids(flat, k, init, seed), iters)
    return codebook.to(weight.dtype).to(weight.device), indices.reshape(weight.shape).to(weight.device)


class WeightSharing:
    """Hooks of a shared layer: before forward, ``weight = codebook[indices]`` (code 0 pinned to 0 if
    ``skip_zeros``); after forward, ``weight`` is detached, so that outside a forward pass it is a plain
    tensor (the module can then be deep-copied) while the graph built by the forward pass still reaches
    the code book."""

    def __init__(self, skip_zeros: bool) -> None:
        self.skip_zeros = skip_zeros

    def codebook(self, module: nn.Module) -> torch.Tensor:
        """The layer's code book ``(2**bits,)``; with ``skip_zeros`` entry 0 is exactly 0 and gets no gradient."""
        codebook = module.weight_codebook
        if self.skip_zeros:
            codebook = torch.cat([codebook.new_zeros(1), codebook[1:]])
        return codebook

    def __call__(self, module: nn.Module, inputs: object) -> None:
        module.weight = self.codebook(module)[module.weight_indices]

    def detach(self, module: nn.Module, inputs: object, output: object) -> None:
        module.weight = module.weight.detach()


def _sharing_hook(module: nn.Module) -> WeightSharing | None:
    return next((h for h in module._forward_pre_hooks.values() if isinstance(h, WeightSharing)), None)


def is_shared(module: nn.Module) -> bool:
    """Whether :func:`share_weights` has set ``module``'s weight up as ``codebook[indices]``."""
    return _sharing_hook(module) is not None


def codebook_of(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codebook (2**bits,), indices int64 of the weight's shape)`` of a shared layer, detached."""
    hook = _sharing_hook(module)
    if hook is None:
        raise ValueError(f"{module.__class__.__name__} layer is not shared; call share_weights(model, bits) first")
    return hook.codebook(module).detach(), module.weight_indices


def _shareable_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def share_weights(model: nn.Module, bits: int | Mapping[str, int], init: str = "linear", iters: int = 50, *,
                  skip_zeros: bool | None = None, seed: int = 0) -> nn.Module:
    """Share the weights of ``model``'s Linear and Conv2d layers (in place) and return the model.

    Each layer's weight is clustered by :func:`kmeans_codebook` and replaced by a trainable
    ``weight_codebook`` ``(2**bits,)`` parameter and a ``weight_indices`` buffer; its ``weight`` is
    recomputed as ``codebook[indices]`` before every forward pass, so training the model afterwards
    fine-tunes the centroids with the summed gradients of their clusters (Han et al., 2016, eq. 3) while
    the assignment stays fixed. Biases and other parameters are left as they are.

    Args:
        bits: one width for every layer, or ``{layer name: bits}`` (names as in ``model.named_modules()``)
            to share only those layers, e.g. 8 bits for conv and 5 for fc layers as in the paper.
        skip_zeros: reserve code 0 for exact zeros (see :func:`kmeans_codebook`); ``None`` (default)
            does so for the layers that contain zeros, i.e. the pruned ones.
        init, iters, seed: as in :func:`kmeans_codebook`.
    """
    layers = _shareable_layers(model)
    if isinstance(bits, Mapping):
        unknown = sorted(set(bits) - set(layers))
        if unknown:
            raise ValueError(f"bits names layers {unknown} that are not Linear/Conv2d layers of the model; "
                             f"choose among {sorted(layers)}")
        widths = dict(bits)
    else:
        widths = {name: bits for name in layers}
    for name, b in widths.items():
        _check_bits(b)
        module = layers[name]
        if is_shared(module):
            raise ValueError(f"layer {name!r} is already shared")
        if hasattr(module, "weight_orig"):
            raise ValueError(f"layer {name!r} carries a pruning mask; call course_lib.pruning.make_permanent(model) "
                             "before sharing its weights (the zeros then stay zero)")
        weight = module.weight.detach()
        skip = bool((weight == 0).any()) if skip_zeros is None else skip_zeros
        codebook, indices = kmeans_codebook(weight, b, init, iters, skip_zeros=skip, seed=seed)
        del module._parameters["weight"]
        module.register_parameter("weight_codebook", nn.Parameter(codebook))
        module.register_buffer("weight_indices", indices)
        hook = WeightSharing(skip)
        module.register_forward_pre_hook(hook)
        module.register_forward_hook(hook.detach)
        hook(module, None)
        hook.detach(module, None, None)
    return model


def unshare_weights(model: nn.Module) -> nn.Module:
    """Turn every shared layer back into an ordinary ``weight`` parameter holding ``codebook[indices]`` (in place)."""
    for module in _shareable_layers(model).values():
        hook = _sharing_hook(module)
        if hook is None:
            continue
        weight = hook.codebook(module).detach()[module.weight_indices]
        for key, h in list(module._forward_pre_hooks.items()):
            if h is hook:
                del module._forward_pre_hooks[key]
        for key, h in list(module._forward_hooks.items()):
            if getattr(h, "__self__", None) is hook:
                del module._forward_hooks[key]
        del module.weight_codebook, module.weight_indices
        if hasattr(module, "weight"):
            del module.weight
        module.weight = nn.Parameter(weight.clone())
    return model
