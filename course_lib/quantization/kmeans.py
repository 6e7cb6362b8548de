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
shared layer up that way, as a :mod:`torch.nn.utils.parametrize` parametrization (:class:`SharedWeight`):
the parameter behind ``layer.weight`` becomes the code book ``parametrizations.weight.original``
``(2**bits,)``, the parametrization holds the ``indices`` buffer (int64, the weight's shape), and every read
of ``layer.weight`` computes ``codebook[indices]``. :func:`course_lib.pruning.make_permanent` turns a copy's
shared layers back into ordinary weights.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._validation import (
    check_bool,
    check_choice,
    check_float_tensor,
    check_int,
    check_layer_mapping,
    check_module,
    copy_model,
    reads_model,
    select_layers,
    verb,
    weight_parametrization,
)

INITS = ("linear", "density", "random")
MAX_BITS = 16  # widest code book kmeans_codebook builds (2**16 centroids)


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
    check_float_tensor(weight, "weight")
    if weight.numel() == 0:
        raise ValueError("weight must have at least one entry, got an empty tensor")
    check_int(bits, "bits", 1, MAX_BITS)
    check_choice(init, "init", INITS)
    check_int(iters, "iters", 0)
    check_bool(skip_zeros, "skip_zeros")
    check_int(seed, "seed", 0)
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


class SharedWeight(nn.Module):
    """Parametrization ``codebook -> codebook[indices]`` of a shared layer's weight (code 0 pinned to 0.0, with
    no gradient, when ``skip_zeros``); the code book ``(codes,)`` is the trainable tensor."""

    def __init__(self, indices: torch.Tensor, codes: int, skip_zeros: bool) -> None:
        super().__init__()
        self.register_buffer("indices", indices)
        self.codes, self.skip_zeros = codes, skip_zeros

    def codebook(self, original: torch.Tensor) -> torch.Tensor:
        return torch.cat([original.new_zeros(1), original[1:]]) if self.skip_zeros else original

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return self.codebook(original)[self.indices]

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        """The code book whose shared weight is nearest to ``weight`` (least squares): each centroid is the mean
        of the entries assigned to it (0 for a code no entry uses)."""
        flat, codes = weight.detach().reshape(-1), self.indices.reshape(-1)
        sums = torch.zeros(self.codes, dtype=flat.dtype, device=flat.device).index_add_(0, codes, flat)
        counts = torch.bincount(codes, minlength=self.codes).to(flat.dtype)
        return sums / counts.clamp(min=1)


@reads_model
def is_shared(module: nn.Module) -> bool:
    """Whether :func:`share_weights` has set ``module``'s weight up as ``codebook[indices]``."""
    return weight_parametrization(module, SharedWeight) is not None


@reads_model
def codebook_of(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codebook (2**bits,), indices int64 of the weight's shape)`` of a shared layer, detached."""
    sharing = weight_parametrization(module, SharedWeight)
    if sharing is None:
        raise ValueError(f"{module.__class__.__name__} layer is not shared; call share_weights(model, bits=...) first")
    return sharing.codebook(module.parametrizations.weight.original).detach(), sharing.indices


@verb
def share_weights(model: nn.Module, *, bits: int | Mapping[str, int], layers: Iterable[str] | None = None,
                  init: str = "linear", iters: int = 50, skip_zeros: bool | None = None, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d weights (all, or ``layers``) are shared through k-means code books.

    Each layer's weight is clustered by :func:`kmeans_codebook` and becomes ``codebook[indices]``
    (:class:`SharedWeight`): training the copy fine-tunes the centroids with the summed gradients of their
    clusters (Han et al., 2016, eq. 3) while the assignment stays fixed. Biases and other parameters are
    left as they are.

    Args:
        bits: one code-book width in ``[1, 16]`` for the selected layers, or a mapping ``{layer name: bits}``
            (names as in ``model.named_modules()``; the layers are then its keys), e.g. 8 bits for conv and 5
            for fc layers as in the paper.
        layers: names of the layers to share when ``bits`` is one width (default: every Linear and Conv2d).
        skip_zeros: reserve code 0 for exact zeros (see :func:`kmeans_codebook`); ``None`` (default)
            does so for the layers that contain zeros, i.e. the pruned ones.
        init, iters, seed: as in :func:`kmeans_codebook`.
    """
    check_module(model)
    if isinstance(bits, Mapping):
        if layers is not None:
            raise ValueError("give the layers either as the keys of the bits mapping or as layers=, not both")
        widths = check_layer_mapping(bits, "bits", model)
    else:
        widths = dict.fromkeys(select_layers(model, layers), bits)
    for name, b in widths.items():
        check_int(b, f"bits[{name!r}]" if isinstance(bits, Mapping) else "bits", 1, MAX_BITS)
    if skip_zeros is not None:
        check_bool(skip_zeros, "skip_zeros (None or a bool)")
    shared = copy_model(model)
    found = select_layers(shared, widths)
    for name, b in widths.items():
        module = found[name]
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"layer {name!r} is already parametrized (a pruning mask, binary or shared weights); "
                             "share the weights of a model with plain weights, e.g. after "
                             "course_lib.pruning.make_permanent(model) (the zeros then stay zero)")
        weight = module.weight.detach()
        skip = bool((weight == 0).any()) if skip_zeros is None else skip_zeros
        codebook, indices = kmeans_codebook(weight, b, init, iters, skip_zeros=skip, seed=seed)
        parametrize.register_parametrization(module, "weight", SharedWeight(indices, len(codebook), skip))
        with torch.no_grad():  # the k-means centroids themselves (right_inverse gave the cluster means)
            module.parametrizations.weight.original.copy_(codebook)
    return shared
