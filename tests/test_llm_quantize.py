"""Tests of course_lib.llm.quantize against independent references: group quantization written as Python loops
(Python's round is also half to even), hand-worked grids, GPTQ's OBS update re-derived in float64 with an explicit
inverse Hessian and Schur complements, and the proxy loss of plain rounding."""
import pytest
import torch

from course_lib.llm import bits_per_weight, fake_group_quantize, gptq_quantize, input_hessian


def _loop_quantize(w, bits, group_size):
    """Group min/max quantization, one Python float at a time."""
    out = []
    for row in w.tolist():
        g = group_size or len(row)
        new = []
        for start in range(0, len(row), g):
            group = row[start:start + g]
            low, high = min(0.0, min(group)), max(0.0, max(group))
            scale = max((high - low) / (2 ** bits - 1), torch.finfo(torch.float32).eps)
            zero = round(-low / scale)
            new += [(min(max(round(v / scale) + zero, 0), 2 ** bits - 1) - zero) * scale for v in group]
        out.append(new)
    return torch.tensor(out, dtype=torch.float64)


def _proxy_loss(w, q, h):
    d = (w - q).double()
    return torch.trace(d @ h.double() @ d.T).item()


# --- fake_group_quantize ------------------------------------------------------------------------------

def test_hand_worked_grids_round_half_to_even():
    w = torch.tensor([[-1.0, 0.5, 1.5, 2.0]])
    # per row, 2 bits: range [-1, 2], scale 1, zero point 1: grid -1, 0, 1, 2; 0.5 -> 0 and 1.5 -> 2 (half to even)
    assert fake_group_quantize(w, 2, None).tolist() == [[-1.0, 0.0, 2.0, 2.0]]
    # groups of 2, 1 bit: [-1, 0.5] has scale 1.5, zero point round(2/3) = 1, grid {-1.5, 0};
    # [1.5, 2] has range [0, 2] (0 included), scale 2, zero point 0, grid {0, 2}
    assert fake_group_quantize(w, 1, 2).tolist() == [[-1.5, 0.0, 2.0, 2.0]]


@pytest.mark.parametrize("bits, group_size", [(2, None), (3, 4), (4, 8), (8, 2), (1, 16)])
def test_matches_the_loop_reference_exactly_in_float64(bits, group_size):
    w = torch.randn(5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(bits))
    w[0, :4] = torch.tensor([-1.0, 0.5, 1.5, 2.0])  # ties
    assert torch.equal(fake_group_quantize(w, bits, group_size), _loop_quantize(w, bits, group_size))


def test_zeros_stay_zero_dtype_is_kept_and_per_row_is_one_group():
    w = torch.randn(4, 12, generator=torch.Generator().manual_seed(0))
    w[:, ::3] = 0
    w[3] = 0  # an all-zero row
    q = fake_group_quantize(w, 3, 4)
    assert q.dtype == torch.float32 and (q[:, ::3] == 0).all() and (q[3] == 0).all()
    assert torch.equal(fake_group_quantize(w, 3, None), fake_group_quantize(w, 3, 12))
    for group in q[:3].reshape(-1, 4):
        assert len(group.unique()) <= 2 ** 3


@pytest.mark.parametrize("kwargs, error, match", [
    ({"bits": 0}, ValueError, r"bits must be an integer in \[1, 16\], got 0"),
    ({"bits": 4.0}, TypeError, "bits must be an integer"),
    ({"group_size": 3}, ValueError, r"group_size must be None or a positive integer dividing in_features \(8\)"),
    ({"group_size": 2.0}, TypeError, "group_size must be None or a positive integer"),
    ({"w": torch.ones(8)}, ValueError, r"w must be a non-empty 2-d \(out_features, in_features\) tensor"),
    ({"w": torch.ones(2, 8, dtype=torch.int64)}, TypeError, "w must be a floating-point tensor"),
    ({"w": torch.full((2, 8), float("nan"))}, ValueError, "w must be finite"),
])
def test_fake_group_quantize_errors(kwargs, error, match):
    args = {"w": torch.ones(2, 8), "bits": 4, "group_size": 4} | kwargs
    with pytest.raises(error, match=match):
        fake_group_quantize(args["w"], args["bits"], args["group_size"])


def test_bits_per_weight_counts_a_scale_and_a_zero_point_per_group():
    assert bits_per_weight(4, 64, 192) == 4 + (16 + 4) / 64
    assert bits_per_weight(3, None, 192) == 3 + (16 + 3) / 192
    assert bits_per_weight(8, 32, 64, scale_bits=32) == 8 + 40 / 32


def test_input_hessian_is_two_x_transpose_x_over_n():
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    flat = x.reshape(10, 3)
    expected = torch.stack([torch.stack([2 / 10 * (flat[:, i] * flat[:, j]).sum() for j in range(3)])
                            for i in range(3)])
    assert torch.allclose(input_hessian(x), expected, atol=1e-14)


# --- gptq_quantize -----------------------------------------------------------------------------------

@pytest.mark.parametrize("group_size, block_size", [(None, 128), (4, 128), (4, 3), (8, 5)])
def test_gptq_with_a_diagonal_hessian_is_plain_rounding(group_size, block_size):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 16, generator=g)
    for h in (torch.eye(16), torch.diag(torch.rand(16, generator=g) + 0.1)):
        expected = fake_group_quantize(w, 3, group_size)
        assert torch.equal(gptq_quantize(w, h, 3, group_size, block_size=block_size), expected)


def _correlated_hessian(n_in, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, n_in, generator=g) @ torch.randn(n_in, n_in, generator=g) + torch.randn(n_in, generator=g)
    return input_hessian(x)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("bits, group_size", [(3, None), (4, 8), (2, 16)])
def test_gptq_has_a_lower_proxy_loss_than_plain_rounding(seed, bits, group_size):
    h = _correlated_hessian(32, seed)
    w = torch.randn(16, 32, generator=torch.Generator().manual_seed(100 + seed))
    gptq = gptq_quantize(w, h, bits, group_size, damp=0.01)
    assert _proxy_loss(w, gptq, h) < _proxy_loss(w, fake_group_quantize(w, bits, group_size), h)


def test_gptq_does_not_depend_on_the_block_size():
    h = _correlated_hessian(24, 7).double()
    w = torch.randn(8, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    results = [gptq_quantize(w, h, 3, 8, block_size=b) for b in (1, 5, 8, 128)]
    assert all(torch.allclose(r, results[0], atol=1e-12) for r in results[1:])


def test_gptq_is_the_obs_update_re_derived_in_float64():
    # Rows hold -1 and 2 among their entries, so with 2 bits per row the grid is {-1, 0, 1, 2} (scale 1, zero
    # point 1) and quantizing is round-then-clamp to [-1, 2]. OBS (Frantar et al., eqs. 2-3): quantize
    # column q, move its error onto the remaining columns with the inverse Hessian, drop q from the inverse.
    # By hand for row 0: H^-1 = [[1, -2, -1], [-2, 5, 2], [-1, 2, 2]] (det H = 1). Column 0: 0.4 -> 0, error 0.4,
    # update -0.4 * H^-1[:, 0] / 1 = [-0.4, 0.8, 0.4] -> [0, -0.2, 2.4]; H^-1 without column 0 = diag(0, 1, 1),
    # so column 1 (-0.2 -> 0) moves nothing, and column 2: 2.4 -> 2. GPTQ gives [0, 0, 2]; plain rounding [0, -1, 2].
    w = torch.tensor([[0.4, -1.0, 2.0], [2.0, 0.3, -1.0]], dtype=torch.float64)
    h = torch.tensor([[6.0, 2.0, 1.0], [2.0, 1.0, 0.0], [1.0, 0.0, 1.0]], dtype=torch.float64)
    hand_inverse = torch.tensor([[1.0, -2, -1], [-2, 5, 2], [-1, 2, 2]], dtype=torch.float64)
    assert torch.allclose(torch.linalg.inv(h), hand_inverse)
    expected = torch.zeros_like(w)
    for r in range(2):
        row, hinv = w[r].clone(), torch.linalg.inv(h)
        for q in range(3):
            value = min(max(round(row[q].item()), -1), 2)
            expected[r, q] = value
            row = row - (row[q] - value) / hinv[q, q] * hinv[:, q]
            hinv = hinv - torch.outer(hinv[:, q], hinv[q, :]) / hinv[q, q]
    result = gptq_quantize(w, h, 2, None, damp=0.0)
    assert torch.equal(result, expected) and result[0].tolist() == [0.0, 0.0, 2.0]
    assert fake_group_quantize(w, 2, None)[0].tolist() == [0.0, -1.0, 2.0]


def test_gptq_zeroes_dead_inputs():
    h = _correlated_hessian(8, 0)
    h[3, :] = 0
    h[:, 3] = 0
    q = gptq_quantize(torch.randn(4, 8), h, 4, None)
    assert (q[:, 3] == 0).all()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"hessian": torch.eye(7)}, ValueError, r"hessian must have shape \(in_features, in_features\) = \(8, 8\)"),
    ({"hessian": torch.full((8, 8), float("inf"))}, ValueError, "hessian must be finite"),
    ({"hessian": -torch.eye(8), "damp": 0.0}, ValueError, "must be positive definite; pass a larger damp"),
    ({"damp": -0.1}, ValueError, "damp must be a finite number >= 0"),
    ({"block_size": 0}, ValueError, "block_size must be an integer >= 1"),
    ({"group_size": 3}, ValueError, "group_size must be None or a positive integer dividing"),
    ({"weight": torch.ones(2, 8, dtype=torch.float16)}, TypeError, "weight must be a float32 or float64 tensor"),
])
def test_gptq_errors(kwargs, error, match):
    args = {"weight": torch.ones(2, 8), "hessian": torch.eye(8), "bits": 4, "group_size": None} | kwargs
    with pytest.raises(error, match=match):
        gptq_quantize(**args)
