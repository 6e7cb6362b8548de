"""Which int8 kernel runs (hand-made CPU flags and environments, against FBGEMM's and oneDNN's dispatch rules), and
the saturating accumulator of the x86 kernels without VNNI (hand-worked sums, the exact layer where nothing
saturates), and the requantization both layers share."""
from __future__ import annotations

import pytest
import torch

from course_lib.quantization import Int8Kernel, int8_kernel, quantized_linear, saturating_accumulator, saturating_linear
from course_lib.quantization.integer import requantize

AVX2 = {"sse4_1", "avx2", "fma"}                                   # AMD Zen 2/3, Intel Haswell
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512dq", "avx512vl"}    # Intel Skylake-SP
VNNI = AVX512 | {"avx512_vnni"}                                     # Intel Cascade Lake, AMD Zen 4
CLIENT = AVX2 | {"avx_vnni"}                                        # Intel Alder Lake: AVX-VNNI, no AVX-512
AMX = VNNI | {"avx_vnni", "amx_tile", "amx_int8"}                   # Intel Sapphire Rapids


def _codes(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int8)


# --- int8_kernel -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, environ, isa", [
    (VNNI, {}, "avx512_vnni"), (AVX512, {}, "avx512"), (AVX2, {}, "avx2"),
    (CLIENT, {}, "avx2"), (AMX, {}, "avx512_vnni"),                          # FBGEMM uses neither AVX-VNNI nor AMX
    (VNNI, {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}, "avx2"),
    (VNNI, {"FBGEMM_ENABLE_INSTRUCTIONS": "avx512"}, "avx512"),             # FBGEMM upper-cases the value
    (VNNI, {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX512_256"}, "avx512"),
    (AVX512, {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX512_E1"}, "avx512"),         # not above what the CPU has
    (AVX2, {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX512"}, "avx2"),
    (VNNI, {"FBGEMM_ENABLE_INSTRUCTIONS": "SSE"}, "avx512_vnni"),            # an unknown value is ignored
    (VNNI, {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "default"}, "avx512_vnni")])  # not FBGEMM's
def test_fbgemm_runs_the_best_kernel_the_cpu_has_or_the_one_forced_below_it(flags, environ, isa):
    kernel = int8_kernel("fbgemm", flags=flags, environ=environ)
    assert kernel == Int8Kernel("fbgemm", isa) and kernel.saturates == (isa != "avx512_vnni")


@pytest.mark.parametrize("flags, environ, isa", [
    (AMX, {}, "amx"), (VNNI, {}, "avx512_vnni"), (CLIENT, {}, "avx_vnni"), (AVX512, {}, "avx512"),
    (AVX2, {}, "avx2"), ({"sse4_1"}, {}, "sse41"),
    (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "avx512_vnni"),
    (AMX, {"ONEDNN_MAX_CPU_ISA": "avx512_core"}, "avx512"),
    (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI"}, "avx_vnni"),
    (VNNI, {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI"}, "avx2"),                     # AVX-512 VNNI is not AVX-VNNI
    (VNNI, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "avx2"), (VNNI, {"ONEDNN_MAX_CPU_ISA": "AVX"}, "sse41"),
    (VNNI, {"DNNL_MAX_CPU_ISA": "SSE41"}, "sse41"),
    (VNNI, {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "SSE41"}, "avx2"),
    (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX10_1_512"}, "avx512_vnni"), (AMX, {"ONEDNN_MAX_CPU_ISA": "ALL"}, "amx"),
    (VNNI, {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}, "avx512_vnni")])          # not oneDNN's
def test_onednn_runs_the_best_kernel_the_cpu_has_among_those_its_cap_allows(flags, environ, isa):
    kernel = int8_kernel("onednn", flags=flags, environ=environ)
    assert kernel == Int8Kernel("onednn", isa)
    assert kernel.saturates == (isa in ("avx512", "avx2", "sse41"))


def test_qnnpack_never_saturates_and_the_engine_names_the_library(monkeypatch):
    assert not int8_kernel("qnnpack", flags=AVX2, environ={}).saturates
    monkeypatch.setattr(torch.backends.quantized, "engine", "qnnpack")
    assert int8_kernel(flags=AVX2, environ={}).library == "qnnpack"


def test_this_cpu_reports_a_kernel_of_its_engine():
    engine = torch.backends.quantized.engine
    if engine not in ("x86", "fbgemm", "onednn", "qnnpack"):
        pytest.skip(f"no int8 engine here ({engine})")
    kernel = int8_kernel()
    assert kernel.library == {"x86": "fbgemm", "fbgemm": "fbgemm"}.get(engine, engine)


@pytest.mark.parametrize("library, flags, error, match", [
    ("fbgemm", {"sse4_1"}, ValueError, "FBGEMM needs"),
    ("onednn", set(), ValueError, "oneDNN's int8 kernels need"),
    ("x86", AVX2, ValueError, "library must be one of 'fbgemm', 'onednn', 'qnnpack', got 'x86'"),
    (3, AVX2, TypeError, "library must be None or a string, got int")])
def test_int8_kernel_refuses_what_it_cannot_describe(library, flags, error, match):
    with pytest.raises(error, match=match):
        int8_kernel(library, flags=flags, environ={})


# --- saturating_accumulator, saturating_linear ---------------------------------------------------------------------

@pytest.mark.parametrize("x_q, x_zero_point, w_q, expected", [
    # u = q_x + 128 = (255, 255), z_u = 0: exact 2 * 255 * 127 = 64770; the pair is cut to 2**15 - 1
    ([[127, 127]], -128, [[127, 127]], 32767),
    ([[127, 127]], -128, [[-128, -128]], -32768),       # 2 * 255 * (-128) = -65280 -> -2**15
    ([[127, 127]], -128, [[127, -128]], -255),          # 32385 - 32640: large products of opposite signs fit
    ([[127, 127, 127]], -128, [[127, 127, 127]], 32767 + 32385),  # odd: the third product is paired with a zero
    ([[127, 127, 127, 127]], -128, [[127, 0, 127, 127]], 32385 + 32767),  # pairs are (0, 1), (2, 3)
    ([[127, 127]], 0, [[127, 127]], 32767 - 128 * 254),  # z_u = 128 is subtracted exactly: 255, not 2 * 127 * 127
    ([[-1, -1]], -128, [[-128, -128]], -2 * 127 * 128)])  # 7-bit activations: the largest pair fits
def test_the_saturating_accumulator_by_hand(x_q, x_zero_point, w_q, expected):
    accumulator = saturating_accumulator(_codes(x_q), x_zero_point, _codes(w_q))
    assert accumulator.dtype == torch.int64 and accumulator.tolist() == [[expected]]


def _by_definition(x_q: torch.Tensor, x_zero_point: int, w_q: torch.Tensor) -> torch.Tensor:
    """sum_j sat16(u[2j] w[2j] + u[2j+1] w[2j+1]) - z_u sum_i w[i], every pair written out (an odd last input
    paired with a zero)."""
    def padded(codes: torch.Tensor) -> list[list[int]]:
        return [row + [0] * (len(row) % 2) for row in codes.tolist()]

    def pair(a: list[int], b: list[int], k: int) -> int:
        return min(max(a[k] * b[k] + a[k + 1] * b[k + 1], -2 ** 15), 2 ** 15 - 1)

    u, w = padded(x_q.long() + 128), padded(w_q.long())
    return torch.tensor([[sum(pair(a, b, k) for k in range(0, len(a), 2)) - (x_zero_point + 128) * sum(b) for b in w]
                         for a in u])


@pytest.mark.parametrize("seed", range(6))
def test_the_saturating_accumulator_is_its_definition_pair_by_pair(seed):
    """Dense random codes (most pairs can saturate) and sparse ones, odd and even widths."""
    g = torch.Generator().manual_seed(seed)
    inputs, low = (7, 33, 64, 65, 130, 9)[seed], (-128, 0, 100, -128, 60, 127)[seed]
    x_q = torch.randint(low, 128, (5, inputs), generator=g).to(torch.int8)
    x_q[torch.rand(5, inputs, generator=g) < 0.3] = -128  # zeros of the kernel's u
    w_q = torch.randint(-128, 128, (4, inputs), generator=g).to(torch.int8)
    zero_point = int(torch.randint(-128, 128, (1,), generator=g))
    assert torch.equal(saturating_accumulator(x_q, zero_point, w_q), _by_definition(x_q, zero_point, w_q))


def test_where_no_pair_saturates_the_saturating_layer_is_the_exact_one():
    """With 7-bit activations ($u \\le 127$, codes in [-128, -1]) no pair passes $2 \\cdot 127 \\cdot 128 < 2^{15}$."""
    g = torch.Generator().manual_seed(0)
    x_q = torch.randint(-128, 0, (20, 75), generator=g).to(torch.int8)
    w_q = torch.randint(-128, 128, (9, 75), generator=g).to(torch.int8)
    exact = (x_q.long() + 5) @ w_q.long().t()
    assert torch.equal(saturating_accumulator(x_q, -5, w_q), exact)
    args = (0.02, -5, w_q, torch.rand(9, generator=g) * 0.01 + 0.001, torch.randn(9, generator=g), 3.0, 7)
    assert torch.equal(saturating_linear(x_q, *args), quantized_linear(x_q, *args))


def test_8_bit_activations_saturate_and_shrink_the_output():
    x_q = torch.full((1, 64), 127, dtype=torch.int8)   # u = 255 everywhere, z_u = 0
    w_q = torch.full((1, 64), 127, dtype=torch.int8)
    assert saturating_accumulator(x_q, -128, w_q).item() == 32 * 32767 < 64 * 255 * 127
    exact = quantized_linear(x_q, 1.0, -128, w_q, 1.0, None, 64 * 255 * 127 / 100, 0)
    saturated = saturating_linear(x_q, 1.0, -128, w_q, 1.0, None, 64 * 255 * 127 / 100, 0)
    assert exact.item() == 100 and saturated.item() == 51  # 32 * 32767 / (64 * 255 * 127 / 100) = 50.6


@pytest.mark.parametrize("args, error, match", [
    ((torch.ones(2, 3), 0, torch.ones(2, 3, dtype=torch.int8)), TypeError, "x_q must be an int8"),
    ((torch.ones(2, 4, dtype=torch.int8), 0, torch.ones(2, 3, dtype=torch.int8)), ValueError,
     "x_q must have w_q's 3 input features"),
    ((torch.ones(2, 3, dtype=torch.int8), 128, torch.ones(2, 3, dtype=torch.int8)), ValueError, "x_zero_point")])
def test_the_saturating_accumulator_refuses_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        saturating_accumulator(*args)


# --- requantize ------------------------------------------------------------------------------------------------

def test_requantize_rounds_half_to_even_adds_the_bias_codes_and_clamps():
    accumulator = torch.tensor([[5, 15, 2000, -2000]], dtype=torch.int32)
    # M = 0.1 * 1.0 / 1.0: 0.5 -> 0, 1.5 -> 2, 200 -> 127, -200 -> -128; bias 0.3 is 3 codes of 0.1: 0.8 -> 1
    assert requantize(accumulator, 0.1, 1.0, None, 1.0, 0).tolist() == [[0, 2, 127, -128]]
    assert requantize(accumulator, 0.1, 1.0, torch.full((4,), 0.3), 1.0, 0).tolist() == [[1, 2, 127, -128]]


@pytest.mark.parametrize("accumulator, error, match", [
    (torch.ones(2, 3), TypeError, "accumulator must be an int32 or int64 tensor, got a tensor of dtype torch.float32"),
    ([[1, 2]], TypeError, "accumulator must be an int32 or int64 tensor, got list"),
    (torch.ones(3, dtype=torch.int32), ValueError, "accumulator must have 2 dimensions")])
def test_requantize_refuses_what_is_not_an_accumulator(accumulator, error, match):
    with pytest.raises(error, match=match):
        requantize(accumulator, 0.1, 1.0, None, 1.0, 0)
