import numpy as np
import pytest
import torch

from course_lib.quantization.kmeans import codebook_of, kmeans_codebook, share_weights


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
    layer = torch.nn.Linear(6, 3)
    share_weights(layer, 2)
    x = torch.randn(5, 6)
    layer(x).pow(2).sum().backward()
    codebook, indices = codebook_of(layer)
    dense = torch.nn.Linear(6, 3)
    with torch.no_grad():
        dense.weight.copy_(codebook[indices]); dense.bias.copy_(layer.bias)
    dense(x).pow(2).sum().backward()
    expected = torch.zeros(4).index_add_(0, indices.reshape(-1), dense.weight.grad.reshape(-1))
    assert torch.allclose(layer.weight_codebook.grad, expected, atol=1e-5)


def test_bad_bits_rejected():
    with pytest.raises(ValueError, match="bits"):
        kmeans_codebook(torch.randn(4), 0)
