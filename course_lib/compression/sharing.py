"""The gradient of a shared weight's code book (Han et al., 2016, "Deep Compression", section 3.3).

After weight sharing, a layer's weight is $W_{ij} = C_{I_{ij}}$: a code book $C$ of $k$ centroids and an index
$I_{ij}$ per weight. Fine-tuning moves the centroids, never the indices. By the chain rule the gradient of
centroid $C_c$ is the **sum** of the gradients of the weights that share it (the paper's eq. 3),

$$\\frac{\\partial L}{\\partial C_c} = \\sum_{i,j} \\frac{\\partial L}{\\partial W_{ij}}\\, \\mathbb{1}(I_{ij} = c),$$

not their mean: a centroid shared by many weights moves fast. With code 0 reserved for pruned weights
(``skip_zeros``) its value stays exactly 0, so its gradient is 0. Autograd computes the same sum for
``weight = codebook[indices]`` (:class:`course_lib.quantization.kmeans.SharedWeight`); this function is the
explicit form, for a training loop that updates ``codebook -= lr * centroid_gradient(...)`` by hand.
"""
from __future__ import annotations

import torch

from .._validation import check_bool, check_float_tensor, check_int, check_tensor


def centroid_gradient(weight_grad: torch.Tensor, indices: torch.Tensor, codes: int,
                      skip_zeros: bool = False) -> torch.Tensor:
    """The gradient of each of the ``codes`` centroids: the sum of ``weight_grad`` over the entries of its cluster.

    Args:
        weight_grad: ``dL/dW``, a floating-point tensor of the weight's shape.
        indices: the code-book index of each weight, an integer tensor of the same shape, values in
            ``[0, codes)``.
        codes: the number of centroids ``k``.
        skip_zeros: code 0 is the pinned zero of a pruned layer: its gradient is 0.

    Returns:
        ``(codes,)`` tensor in ``weight_grad``'s dtype; a centroid no weight uses gets 0. ValueError naming
        ``indices`` if its shape is not ``weight_grad``'s or an index is outside ``[0, codes)``.
    """
    check_float_tensor(weight_grad, "weight_grad")
    check_tensor(indices, "indices")
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"indices must be an integer tensor, got a tensor of dtype {indices.dtype}")
    codes = check_int(codes, "codes", 1)
    check_bool(skip_zeros, "skip_zeros")
    if indices.shape != weight_grad.shape:
        raise ValueError(f"indices must have weight_grad's shape {tuple(weight_grad.shape)}, "
                         f"got {tuple(indices.shape)}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= codes):
        raise ValueError(f"indices must lie in [0, {codes}), got values from {int(indices.min())} to "
                         f"{int(indices.max())}")
    flat = indices.reshape(-1).to(torch.int64)
    grad = torch.zeros(codes, dtype=weight_grad.dtype, device=weight_grad.device)
    grad.index_add_(0, flat.to(weight_grad.device), weight_grad.detach().reshape(-1))
    if skip_zeros:
        grad[0] = 0
    return grad
