"""Weight sharing: k-means code books against a NumPy Lloyd's algorithm, the paper's eq. 3 for the code-book
gradient, and the shared layer as a torch.nn.utils.parametrize parametrization."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.pruning import make_permanent
from course_lib.quantization.kmeans import codebook_of, is_shared, kmeans_codebook, share_weights


def _numpy_lloyd(values, centroids, iters=200):
    for _ in range(iters):
        assign = np.argmin(np.abs(values[:, None] - centroids[None]), axis=1)
        new = np.array([values[assign == j].mean() if (assign == j).any() else c for j, c in enumerate(centroids)])
        if np.allclose(new, centroids, rtol=0, atol=0):
            break
        centroids = new
    return centroids


def test_linear_init_with_zero_iterations():
    w = torch.tensor([-1.0, 0.2, 3.0])
    codebook, _ = kmeans_codebook(w, 2, iters=0)
    assert torch.allclose(codebook, torch.linspace(-1.0, 3.0, 4))


def test_centroids_are_cluster_means_like_numpy_reference():
    w = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    codebook, indices = kmeans_codebook(w, 3, iters=200)
    ref = _numpy_lloyd(w.double().numpy(), np.linspace(w.min().item(), w.max().item(), 8))
    assert np.allclose(codebook.double().numpy(), ref, atol=1e-6)
    for j in range(8):
        assert torch.isclose(codebook[j], w[indices == j].mean(), atol=1e-6)


def test_zeros_preserved_with_skip_zeros():
    w = torch.randn(50, 40, generator=torch.Generator().manual_seed(1))
    w[w.abs() < 0.8] = 0
    codebook, indices = kmeans_codebook(w, 4, skip_zeros=True)
    assert codebook[0] == 0
    assert torch.equal(codebook[indices] == 0, w == 0)


def test_codebook_gradient_is_sum_of_weight_gradients():
    torch.manual_seed(0)
    layer = share_weights(torch.nn.Linear(6, 3), bits=2)
    x = torch.randn(5, 6)
    layer(x).pow(2).sum().backward()
    codebook, indices = codebook_of(layer)
    dense = torch.nn.Linear(6, 3)
    with torch.no_grad():
        dense.weight.copy_(codebook[indices])
        dense.bias.copy_(layer.bias)
    dense(x).pow(2).sum().backward()
    expected = torch.zeros(4).index_add_(0, indices.reshape(-1), dense.weight.grad.reshape(-1))
    assert torch.allclose(layer.parametrizations.weight.original.grad, expected, atol=1e-5)


def test_share_weights_returns_a_shared_copy_that_trains_deepcopies_and_unshares():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shared = share_weights(model, bits={"0": 2})
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and not is_shared(model[0])
    assert is_shared(shared[0]) and not is_shared(shared[2])
    codebook, indices = kmeans_codebook(model[0].weight.detach(), 2)
    assert torch.equal(codebook_of(shared[0])[0], codebook) and torch.equal(shared[0].weight, codebook[indices])
    opt = torch.optim.SGD(shared.parameters(), lr=0.1)
    shared(torch.randn(4, 8)).sum().backward()
    opt.step()
    twin = copy.deepcopy(shared)  # right after a step: no cached weight holds a graph
    assert torch.equal(twin[0].weight, shared[0].weight)
    assert len(torch.unique(shared[0].weight)) <= 4 and torch.equal(codebook_of(shared[0])[1], indices)
    weight = shared[0].weight.detach().clone()
    plain = make_permanent(twin)
    assert isinstance(plain[0].weight, nn.Parameter) and torch.equal(plain[0].weight, weight)
    assert is_shared(twin[0]) and torch.equal(twin[0].weight, weight)  # unsharing a copy leaves its source shared


def test_assigning_a_weight_stores_the_least_squares_code_book():
    layer = share_weights(nn.Linear(4, 2), bits=1)
    _, indices = codebook_of(layer)
    target = torch.arange(8.0).reshape(2, 4)
    layer.weight = target  # right_inverse: each centroid becomes the mean of its cluster's entries
    for code in (0, 1):
        if (indices == code).any():
            assert codebook_of(layer)[0][code] == target[indices == code].mean()


def test_bad_bits_rejected():
    with pytest.raises(ValueError, match=r"bits must be an integer in \[1, 16\], got 0"):
        kmeans_codebook(torch.randn(4), 0)
    with pytest.raises(TypeError, match="bits"):
        share_weights(nn.Linear(2, 2), bits=2.0)
    with pytest.raises(ValueError, match="'1' is not among them"):
        share_weights(nn.Sequential(nn.Linear(2, 2)), bits={"1": 2})
