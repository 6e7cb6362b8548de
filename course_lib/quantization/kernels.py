"""Which int8 kernel computes a quantized ``Linear`` on this CPU, and what the x86 kernels without VNNI compute.

PyTorch's int8 ``Linear`` runs one of three libraries: FBGEMM for the ``x86`` quantized engine (the default on
x86 CPUs with AVX2) and ``fbgemm``; oneDNN for the ``onednn`` engine (the default on CPUs without AVX2) and for
the int8 models that PT2E and Inductor compile (:mod:`.deploy`); QNNPACK for ``qnnpack``. Activations are
unsigned codes $u = q_x + 128 \\in [0, 255]$ (``quint8``, zero point $z_u = z_x + 128$), weights signed codes
$w \\in [-128, 127]$. The kernels compute $\\sum_i u_i w_i$ and subtract $z_u \\sum_i w_i$ (exactly: the weights'
sums are computed once, in int32). What differs is how they add up $\\sum_i u_i w_i$:

- **VNNI** (``vpdpbusd``: AVX-512 VNNI, AVX-VNNI) and **AMX** (``tdpbusd``) add products straight into int32:
  exact, the arithmetic of :func:`~.integer.quantized_linear`. QNNPACK widens the codes to 16 bits and multiplies
  into int32: exact too.
- **Without VNNI** (AVX2, AVX-512 without VNNI, and oneDNN's SSE4.1 kernels on CPUs without AVX2), ``vpmaddubsw``
  adds neighbouring products in *pairs*, in int16 with saturation, before ``vpmaddwd`` widens them to int32:

  $$a_{n,o} = \\sum_j \\operatorname{sat}_{16}\\big(u_{n,2j}\\, w_{o,2j} + u_{n,2j+1}\\, w_{o,2j+1}\\big)
  - z_u \\sum_i w_{o,i}, \\qquad \\operatorname{sat}_{16}(v) = \\min\\big(\\max(v, -2^{15}),\\ 2^{15} - 1\\big)$$

  (an odd number of inputs is padded with a zero). A pair reaches $2 \\cdot 255 \\cdot 127 = 64770$ where two
  neighbouring activations are large and their weights large with the same sign: it is cut to $32767$ and the
  layer's output comes out too small. With 7-bit activations (``reduce_range``, $u \\le 127$) a pair stays
  within $2 \\cdot 127 \\cdot 128 = 32512 < 2^{15}$ and never saturates: this is why PyTorch's x86 observers and
  ``X86InductorQuantizer`` offer ``reduce_range`` ("on earlier CPUs without VNNI", torchao's docstring says).

:func:`int8_kernel` says which kernel a library runs here; :func:`saturating_linear` computes the saturated layer.
It is FBGEMM's arithmetic exactly (PyTorch 2.14, ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2`` or ``AVX512`` on an AVX-512
VNNI CPU: the same output codes, up to the one code of PyTorch's float32 bias). oneDNN's AVX2 and SSE4.1 kernels
pair the same neighbours up to 256 inputs; beyond, they split the inputs into blocks, and a block of odd length
shifts the pairs after it (measured, oneDNN 3.12).
"""
from __future__ import annotations

import os
import platform
from collections.abc import Collection, Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._validation import check_choice, check_int
from ..timing import cpu_flags
from .integer import _check_codes, requantize

ENGINES = {"x86": "fbgemm", "fbgemm": "fbgemm", "onednn": "onednn", "qnnpack": "qnnpack"}  # quantized engine -> library
SATURATING = frozenset({"avx512", "avx2", "sse41"})  # the instruction sets that add products with vpmaddubsw

_AVX512 = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl"})
_NEEDS = {"amx": _AVX512 | {"amx_tile", "amx_int8"}, "avx512_vnni": _AVX512 | {"avx512_vnni"},
          "avx_vnni": frozenset({"avx2", "avx_vnni"}), "avx512": _AVX512, "avx2": frozenset({"avx2"}),
          "sse41": frozenset({"sse4_1"})}  # /proc/cpuinfo flags
# FBGEMM (src/Utils.cc): detected from the CPU; FBGEMM_ENABLE_INSTRUCTIONS may choose one at or below it.
_FBGEMM = ("avx2", "avx512", "avx512_vnni")
_FBGEMM_FORCED = {"AVX2": "avx2", "AVX512": "avx512", "AVX512_256": "avx512", "AVX512_E1": "avx512_vnni",
                  "AVX512_E1_256": "avx512_vnni"}
# oneDNN (src/cpu/x64/cpu_isa_traits.hpp): the first in _ONEDNN that the CPU has and ONEDNN_MAX_CPU_ISA allows
# (any value not listed here allows all: unset, DEFAULT, ALL, the AMX ones).
_ONEDNN = ("amx", "avx512_vnni", "avx_vnni", "avx512", "avx2", "sse41")
_ONEDNN_CAPS = {"SSE41": {"sse41"}, "AVX": {"sse41"}, "AVX2": {"avx2", "sse41"},
                "AVX2_VNNI": {"avx_vnni", "avx2", "sse41"}, "AVX2_VNNI_2": {"avx_vnni", "avx2", "sse41"},
                "AVX512_CORE": {"avx512", "avx2", "sse41"},
                "AVX512_CORE_VNNI": {"avx512_vnni", "avx512", "avx2", "sse41"},
                "AVX512_CORE_BF16": {"avx512_vnni", "avx512", "avx2", "sse41"},
                "AVX10_1_512": set(_ONEDNN[1:]), "AVX512_CORE_FP16": set(_ONEDNN[1:]), "AVX10_2_512": set(_ONEDNN[1:])}


class Int8Kernel(NamedTuple):
    """The library that runs an int8 ``Linear`` and the instruction set it dispatches to.

    ``isa`` is ``"amx"``, ``"avx512_vnni"``, ``"avx_vnni"`` (exact int32 products), ``"avx512"``, ``"avx2"``,
    ``"sse41"`` (pairs saturated in int16) or, for QNNPACK, ``"sse2"`` / ``"neon"`` (exact).
    """
    library: str
    isa: str

    @property
    def saturates(self) -> bool:
        """Whether neighbouring products are added in int16 with saturation (see :func:`saturating_linear`)."""
        return self.isa in SATURATING


def int8_kernel(library: str | None = None, *, flags: Collection[str] | None = None,
                environ: Mapping[str, str] | None = None) -> Int8Kernel:
    """The kernel that ``library`` (``"fbgemm"``, ``"onednn"``, ``"qnnpack"``) runs for an int8 ``Linear``.

    ``library=None`` takes the library of ``torch.backends.quantized.engine``. The choice follows each library's
    own dispatch, which ``ATEN_CPU_CAPABILITY`` does not change: FBGEMM picks AVX-512 VNNI, else AVX-512, else
    AVX2 (it needs AVX2), and ``FBGEMM_ENABLE_INSTRUCTIONS`` (``AVX2``, ``AVX512``, ``AVX512_E1``...) may choose
    one the CPU has; oneDNN picks AMX, AVX-512 VNNI, AVX-VNNI, AVX-512, AVX2, SSE4.1, in that order, among those
    ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) allows. Both libraries read their variable once, at their first
    int8 product: set it before the process starts.

    Args:
        flags: the CPU's x86 feature flags as ``/proc/cpuinfo`` names them (``avx2``, ``avx512_vnni``,
            ``avx_vnni``, ``amx_int8``...); ``None`` reads this CPU's.
        environ: the environment variables; ``None`` reads ``os.environ``.

    Returns:
        ``Int8Kernel(library, isa)``; its ``saturates`` says whether :func:`saturating_linear` is what the kernel
        computes (else :func:`~.integer.quantized_linear`). TypeError if ``library`` is not a string; ValueError
        for a library or engine that is not one of the three, a CPU the library cannot run on, or FBGEMM and
        oneDNN on a CPU that is not x86 (their kernels there are not described here).
    """
    if library is None:
        engine = torch.backends.quantized.engine
        library = ENGINES.get(engine)
        if library is None:
            raise ValueError(f"torch.backends.quantized.engine must be one of {', '.join(map(repr, ENGINES))}, "
                             f"got {engine!r}")
    if not isinstance(library, str):
        raise TypeError(f"library must be None or a string, got {type(library).__name__}")
    check_choice(library, "library", ("fbgemm", "onednn", "qnnpack"))
    environ = os.environ if environ is None else environ
    machine = platform.machine().lower()
    x86 = flags is not None or machine in ("x86_64", "amd64", "i386", "i686", "x86")
    if library == "qnnpack":
        return Int8Kernel(library, "sse2" if x86 else "neon")
    if not x86:
        raise ValueError(f"library must be 'qnnpack' on a {machine} CPU: int8_kernel describes FBGEMM's and "
                         f"oneDNN's kernels on x86 CPUs only, got {library!r}")
    flags = cpu_flags() if flags is None else frozenset(flags)
    if library == "fbgemm":
        detected = next((isa for isa in reversed(_FBGEMM) if _NEEDS[isa] <= flags), None)
        if detected is None:
            raise ValueError("library must be 'onednn' or 'qnnpack' on a CPU without AVX2 (FBGEMM needs it), "
                             "got 'fbgemm'")
        forced = _FBGEMM_FORCED.get(environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper())
        return Int8Kernel(library, forced if forced and _FBGEMM.index(forced) <= _FBGEMM.index(detected)
                          else detected)
    cap = environ.get("ONEDNN_MAX_CPU_ISA", environ.get("DNNL_MAX_CPU_ISA", "")).upper()
    allowed = _ONEDNN_CAPS.get(cap, set(_ONEDNN))
    isa = next((isa for isa in _ONEDNN if isa in allowed and _NEEDS[isa] <= flags), None)
    if isa is None:
        raise ValueError("library must be 'qnnpack' on a CPU without SSE4.1 (oneDNN's int8 kernels need it), "
                         "got 'onednn'")
    return Int8Kernel(library, isa)


def saturating_accumulator(x_q: torch.Tensor, x_zero_point: int, w_q: torch.Tensor) -> torch.Tensor:
    """The ``(N, out_features)`` int64 accumulator $a$ of the x86 kernels without VNNI (module docstring).

    ``x_q`` ``(N, in_features)`` and ``w_q`` ``(out_features, in_features)`` are int8 codes as for
    :func:`~.integer.quantized_linear` (the kernel sees $u = q_x + 128$ and $z_u = z_x + 128$). Computed as the
    exact $\\sum_i u_i w_i$ plus, for each pair $p_j = u_{2j} w_{2j} + u_{2j+1} w_{2j+1}$ that saturates,
    $\\operatorname{sat}_{16}(p_j) - p_j$. The exact sum is a float64 product: each product is below $2^{15}$ in
    magnitude, so every partial sum is an integer below $2^{53}$ and exact in any order. Only a pair with
    $u_{2j} + u_{2j+1} > 256$ can saturate ($|p_j| \\le 128\\, (u_{2j} + u_{2j+1})$): only those pairs are multiplied
    out, in blocks, against every output feature.
    """
    out_features, in_features = _check_codes(x_q, w_q)
    x_zero_point = check_int(x_zero_point, "x_zero_point", -128, 127)
    u, w = x_q.to(torch.int64) + 128, w_q.to(torch.int64)
    accumulator = (u.double() @ w.double().t()).long() - (x_zero_point + 128) * w.sum(1)
    odd = in_features % 2
    u_pairs = F.pad(u, (0, odd)).reshape(len(u), -1, 2)              # (N, pairs, 2)
    w_pairs = F.pad(w, (0, odd)).reshape(out_features, -1, 2).transpose(0, 1)  # (pairs, out_features, 2)
    rows, pairs = torch.nonzero(u_pairs.sum(-1) > 256, as_tuple=True)
    for block in range(0, len(rows), 4096):
        n, j = rows[block:block + 4096], pairs[block:block + 4096]
        sums = (u_pairs[n, j, None, :] * w_pairs[j]).sum(-1)         # vpmaddubsw before saturating: (block, out)
        accumulator.index_add_(0, n, sums.clamp(-2 ** 15, 2 ** 15 - 1) - sums)
    return accumulator


def saturating_linear(x_q: torch.Tensor, x_scale: float, x_zero_point: int, w_q: torch.Tensor,
                      w_scale: float | torch.Tensor, bias: torch.Tensor | None, y_scale: float,
                      y_zero_point: int) -> torch.Tensor:
    """:func:`~.integer.quantized_linear` with the accumulator of the x86 kernels without VNNI
    (:func:`saturating_accumulator`): the ``(N, out_features)`` int8 output codes such a CPU gives.

    Arguments and errors as for :func:`~.integer.quantized_linear`; with 7-bit activations (codes in
    ``[-128, -1]``, ``reduce_range``) the two are equal.
    """
    return requantize(saturating_accumulator(x_q, x_zero_point, w_q), x_scale, w_scale, bias, y_scale, y_zero_point)
