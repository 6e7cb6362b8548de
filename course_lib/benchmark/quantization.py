"""Benchmark section ``quantization``: where quantization stops being free, and what int8 kernels buy.

Reported (accuracies are fractions in ``[0, 1]`` on the test split, never used for tuning; every choice was
made on the validation split):

- ``fp32_accuracy``: the zoo teacher ``get_model("teacher")``;
- ``ptq.int8``, ``ptq.int4``: the teacher quantized post-training, simulated with fake quantization
  (:func:`~course_lib.quantization.post_training_quantize`): BatchNorm folded, weights symmetric per output
  channel and activations asymmetric with ``bits`` bits each (W8A8, W4A4), activation ranges from the
  :data:`OBSERVER` on :data:`CALIBRATION_BATCHES` training batches (deterministic: one value);
- ``qat.int4``: W4A4 quantization-aware training of the teacher
  (:func:`~course_lib.quantization.quantization_aware_train`), :data:`QAT_EPOCHS` epoch(s) from the PTQ model;
  ``qat.binary``: binary weights ``alpha * sign(w)``, ``alpha = mean|w|`` per output channel, on
  :data:`BINARY_LAYERS` (first and last layers in fp32, :func:`~course_lib.quantization.binarize_weights`),
  trained :data:`BINARY_EPOCHS` epochs with the STE. Both are means over ``seeds`` fine-tuning runs
  (``*_per_seed``: each run);
- ``curve``: accuracy against bit width on :data:`CURVE_MODELS` (LeNet-300-100, which has no BatchNorm, and
  the student, whose BatchNorm is folded into its weights), by :func:`bit_width_curve`: ``bits`` (the widths
  :data:`CURVE_BITS`), then per model ``fp32`` and three sweeps, ``weights`` (``W<b>``, activations in
  fp32), ``activations`` (``W8A<b>``, weights per channel) and ``both`` (``W<b>A<b>``); each sweep holds
  ``ptq`` and ``qat``, each a mapping ``per_channel`` / ``per_tensor`` (weight scales; ``activations`` has
  ``per_channel`` only) to one accuracy per width, QAT as the mean over ``seeds`` runs with
  ``<granularity>_per_seed`` (a list per seed). One bit of weight is ``alpha * sign(w)``. QAT trains
  :data:`CURVE_QAT_EPOCHS` epochs at the learning rate :data:`CURVE_QAT_LR`, chosen on validation at W2A2
  per channel among :data:`CURVE_QAT_LRS`. Also ``observer``, ``qat_epochs``, ``qat_lr``;
- ``qat_lr_scan``: that choice, repeated at every run (:func:`qat_lr_scan`): model -> learning rate -> validation
  accuracy of W2A2 per-channel QAT (seed 0), for :data:`CURVE_MODELS`;
- ``pt2e``: real int8 kernels by PT2E (:func:`~course_lib.quantization.compile_int8`: ``torch.export``,
  ``X86InductorQuantizer``, ``torch.compile`` with freezing: every convolution and Linear layer runs a oneDNN int8
  kernel, with its ReLU, and the max-pools run on int8 codes) against the fp32 teacher in eager mode and compiled
  the same way (:func:`~course_lib.acceleration.try_compile` with ``freezing=True``), at batch
  :data:`LATENCY_BATCH` (:func:`pt2e`). For each thread count of :data:`LATENCY_THREADS` (keys ``"1"``, ``"2"``)
  both models are compiled with that many intra-op threads (Inductor writes the count into the code it generates)
  and the three are timed side by side in one :func:`~course_lib.timing.compare_latency` call:
  ``speedup_vs_compiled`` and ``speedup_vs_eager`` (timing records, :func:`~course_lib.timing.timing_record`: the
  paired ratio fp32 time / int8 time with its spread, each variant's median and spread, the load and CPU
  capability) and ``rows``, the three variants' latencies (``{model, median_ms, p10_ms, p90_ms, cpu_wall_ratio,
  reliable, why}``). Also ``accuracy`` (the compiled int8 model on the test split) and ``fp32_accuracy``;
  ``fp32_bytes``, ``int8_bytes`` (``torch.save`` of each model's tensors) and ``size_ratio`` (fp32 / int8 bytes);
  ``batch_size``; ``threads`` (the headline count: the largest of :data:`LATENCY_THREADS`, whose records are
  also ``speedup_vs_compiled`` and ``speedup_vs_eager`` at the top of the entry); which int8 case was measured:
  ``int8_kernel`` (``"onednn/<isa>"``, the kernel oneDNN runs for these models,
  :func:`~course_lib.quantization.kernels.int8_kernel`), ``vnni`` (whether it adds int8 products straight into
  int32: VNNI or AMX, the case where int8 can approach 4x fp32) and ``saturates`` (AVX2-only kernels: pairs of
  products summed in int16 with saturation); ``reduce_range`` (whether activations were quantized to 7 bits,
  which avoids that saturation; :data:`REDUCE_RANGE`, the default of ``compile_int8``'s quantizer);
  ``omp_wait_policy`` (``OMP_WAIT_POLICY``, ``default`` if unset); ``kernels``: where each compiled model's
  time goes, on one thread (``{"threads": 1, "fp32_compiled": profile, "int8": profile}``, each a
  :meth:`~course_lib.acceleration.profiling.KernelProfile.as_dict`: ``kernels`` with name, input shape and ms per
  forward pass, ``total_ms``, ``other_ms``), which says which layer holds the whole model's speed-up back.

``quick=True`` fine-tunes one epoch on a 512-image subset, runs the curve on LeNet-300-100 at 8 and 2 bits
only and times few repeats: it checks that the section runs, not the targets.
"""
from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..acceleration import kernel_times, try_compile
from ..data import load_mnist5k, make_loaders
from ..metrics import model_size_bytes
from ..quantization import binarize_weights, compile_int8, post_training_quantize, quantization_aware_train
from ..quantization.kernels import int8_kernel
from ..timing import compare_latency, timing_record
from ..training import evaluate, set_seed, train
from ..zoo import RECIPES, get_model
from .results import latency_row

CALIBRATION_BATCHES = 8
KERNEL_REPEATS = 20  # forward passes profiled per model for the ``kernels`` entry
# Activation ranges: the clipping threshold that minimises the quantization error of the calibration values
# (eq-quant-clip); the chapter's validation scan compares it with min-max and percentiles at 8 to 1 bits.
OBSERVER = ("mse", {})
QAT_EPOCHS, QAT_LR = 1, 1e-4
BINARY_EPOCHS, BINARY_LR = 2, 1e-3
BINARY_LAYERS = ("features.4", "classifier.1")  # the teacher's middle layers; its first and last stay in fp32
CURVE_MODELS = ("lenet300", "student")
CURVE_BITS = (8, 4, 3, 2, 1)
CURVE_QAT_EPOCHS = 3
CURVE_QAT_LRS = (1e-4, 1e-3, 1e-2)
CURVE_QAT_LR = 1e-3  # the best of CURVE_QAT_LRS on validation at W2A2 (the entry qat_lr_scan)
SWEEPS = {"weights": (True, False), "activations": (True,), "both": (True, False)}  # per_channel values
LATENCY_BATCH, LATENCY_THREADS = 256, (1, 2)
QUICK_TRAIN_IMAGES = 512
REDUCE_RANGE = False  # compile_int8's quantizer config: 8-bit activations (7 bits avoid AVX2's int16 saturation)
VNNI_ISAS = frozenset({"amx", "avx512_vnni", "avx_vnni"})  # int8 products added straight into int32


def sweep_widths(sweep: str, bits: int) -> tuple[int, int | None]:
    """``(weight bits, activation bits)`` of point ``bits`` of a sweep of :data:`SWEEPS` (``None``: fp32)."""
    return {"weights": (bits, None), "activations": (8, bits), "both": (bits, bits)}[sweep]


def granularity(per_channel: bool) -> str:
    """The key of a weight-scale granularity in the results: ``per_channel`` or ``per_tensor``."""
    return "per_channel" if per_channel else "per_tensor"


def bit_width_curve(model: nn.Module, loaders, *, bits: Sequence[int] = CURVE_BITS, seeds: Sequence[int] = (0,),
                    qat_epochs: int = CURVE_QAT_EPOCHS, qat_lr: float = CURVE_QAT_LR,
                    train_loader: DataLoader | None = None) -> dict[str, Any]:
    """Test accuracy of ``model`` quantized to each width of ``bits``, for every sweep of :data:`SWEEPS`,
    per channel and per tensor, by PTQ and by QAT (one run per seed, on ``train_loader``, default
    ``loaders.train``); the layout is ``curve.<model>`` of the module docstring."""
    train_loader = loaders.train if train_loader is None else train_loader
    observer, observer_kwargs = OBSERVER
    result: dict[str, Any] = {"fp32": evaluate(model, loaders.test)}
    for sweep, granularities in SWEEPS.items():
        ptq, qat = {}, {}
        for per_channel in granularities:
            key, runs = granularity(per_channel), []
            ptq[key] = []
            for width in bits:
                weight_bits, activation_bits = sweep_widths(sweep, width)
                settings = dict(bits=weight_bits, activation_bits=activation_bits, per_channel=per_channel,
                                observer=observer, observer_kwargs=observer_kwargs, num_batches=CALIBRATION_BATCHES)
                ptq[key].append(evaluate(post_training_quantize(model, loaders.train, **settings), loaders.test))
                runs.append([evaluate(quantization_aware_train(model, train_loader, epochs=qat_epochs, lr=qat_lr,
                                                               progress=False, device="cpu", seed=seed,
                                                               **settings).model, loaders.test)
                             for seed in seeds])
            qat[key] = [statistics.fmean(r) for r in runs]
            qat[f"{key}_per_seed"] = [list(r) for r in zip(*runs)]
        result[sweep] = {"ptq": ptq, "qat": qat}
    return result


def qat_lr_scan(model: nn.Module, loaders, *, lrs: Sequence[float] = CURVE_QAT_LRS, epochs: int = CURVE_QAT_EPOCHS,
                train_loader: DataLoader | None = None) -> dict[str, float]:
    """Validation accuracy of W2A2 per-channel QAT (seed 0) at each learning rate of ``lrs`` (keys: ``f"{lr:g}"``)."""
    observer, observer_kwargs = OBSERVER
    train_loader = loaders.train if train_loader is None else train_loader
    return {f"{lr:g}": evaluate(quantization_aware_train(model, train_loader, epochs=epochs, lr=lr, bits=2,
                                                         activation_bits=2, observer=observer,
                                                         observer_kwargs=observer_kwargs,
                                                         num_batches=CALIBRATION_BATCHES, progress=False,
                                                         device="cpu", seed=0).model, loaders.val)
            for lr in lrs}


def _timed(teacher: nn.Module, loaders, example: torch.Tensor, threads: int, repeats: int
           ) -> tuple[dict[str, Any], nn.Module]:
    """One thread count of the ``pt2e`` entry: both models compiled with ``threads`` intra-op threads, the three
    timed side by side with that many; returns the figures and the int8 model."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        int8 = compile_int8(teacher, loaders.train, example_input=example, num_batches=CALIBRATION_BATCHES)
        compiled = try_compile(teacher, example, freezing=True)
    finally:
        torch.set_num_threads(previous)
    if compiled.model is None:
        raise RuntimeError(f"torch.compile of the fp32 teacher failed: {compiled.error}")
    models = {"fp32_eager": teacher, "fp32_compiled": compiled.model, "int8": int8}
    latency = compare_latency(models, example, warmup=10, repeats=repeats, threads=threads)
    rows = [{"model": name, **latency_row(lat)} for name, lat in latency.items()]
    return {"threads": threads, "rows": rows,
            "speedup_vs_compiled": timing_record(latency["fp32_compiled"], latency["int8"]),
            "speedup_vs_eager": timing_record(latency["fp32_eager"], latency["int8"])}, int8


def pt2e(teacher: nn.Module, loaders, example: torch.Tensor, repeats: int) -> dict[str, Any]:
    """The ``pt2e`` entry: int8 kernels against fp32 eager and fp32 compiled, measured side by side on ``example``
    with each thread count of :data:`LATENCY_THREADS` (see the module docstring for the keys)."""
    by_threads, int8 = {}, None
    for threads in LATENCY_THREADS:
        by_threads[str(threads)], int8 = _timed(teacher, loaders, example, threads, repeats)
    headline = by_threads[str(max(LATENCY_THREADS))]
    kernels = _kernels(teacher, int8, example)
    kernel = int8_kernel("onednn")  # PT2E's int8 convolutions and Linear layers run in oneDNN
    return {**by_threads, "threads": headline["threads"],
            "speedup_vs_compiled": headline["speedup_vs_compiled"], "speedup_vs_eager": headline["speedup_vs_eager"],
            "accuracy": evaluate(int8, loaders.test), "fp32_accuracy": evaluate(teacher, loaders.test),
            "fp32_bytes": model_size_bytes(teacher), "int8_bytes": model_size_bytes(int8),
            "size_ratio": model_size_bytes(teacher) / model_size_bytes(int8), "batch_size": len(example),
            "repeats": repeats, "int8_kernel": "/".join(kernel), "vnni": kernel.isa in VNNI_ISAS,
            "saturates": kernel.saturates, "reduce_range": REDUCE_RANGE,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "kernels": kernels}


def _kernels(teacher: nn.Module, int8: nn.Module, example: torch.Tensor) -> dict[str, Any]:
    """Where each compiled model's time goes, on one thread: :func:`~course_lib.acceleration.kernel_times` of
    the fp32 teacher compiled with freezing and of the int8 model (``{"threads": 1, name: profile}``)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        compiled = try_compile(teacher, example, freezing=True).model
        return {"threads": 1, "fp32_compiled": kernel_times(compiled, example, repeats=KERNEL_REPEATS).as_dict(),
                "int8": kernel_times(int8, example, repeats=KERNEL_REPEATS).as_dict()}
    finally:
        torch.set_num_threads(previous)


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serialisable dict (accuracies as fractions in ``[0, 1]``)."""
    set_seed(0)
    splits = load_mnist5k()
    loaders = make_loaders(splits, batch_size=RECIPES["teacher"].batch_size, seed=0)
    teacher = get_model("teacher")
    fp32 = evaluate(teacher, loaders.test)
    observer, observer_kwargs = OBSERVER

    ptq = {}
    for bits in (8, 4):
        model = post_training_quantize(teacher, loaders.train, bits=bits, activation_bits=bits, observer=observer,
                                       observer_kwargs=observer_kwargs, num_batches=CALIBRATION_BATCHES)
        ptq[f"int{bits}"] = evaluate(model, loaders.test)

    train_loader = loaders.train
    if quick:
        train_loader = DataLoader(Subset(splits.train, range(QUICK_TRAIN_IMAGES)), batch_size=64, shuffle=True)
    qat_epochs, binary_epochs = (1, 1) if quick else (QAT_EPOCHS, BINARY_EPOCHS)
    qat_int4, binary = [], []
    for seed in range(seeds):
        qat = quantization_aware_train(teacher, train_loader, epochs=qat_epochs, bits=4, activation_bits=4,
                                       observer=observer, observer_kwargs=observer_kwargs,
                                       num_batches=CALIBRATION_BATCHES, lr=QAT_LR, progress=False, device="cpu",
                                       seed=seed)
        qat_int4.append(evaluate(qat.model, loaders.test))
        model = binarize_weights(teacher, layers=BINARY_LAYERS)
        train(model, train_loader, binary_epochs, lr=BINARY_LR, progress=False, device="cpu", seed=seed)
        binary.append(evaluate(model, loaders.test))

    curve_models, curve_bits = (CURVE_MODELS[:1], (8, 2)) if quick else (CURVE_MODELS, CURVE_BITS)
    curve_epochs = 1 if quick else CURVE_QAT_EPOCHS
    curve: dict[str, Any] = {"bits": list(curve_bits), "observer": observer, "qat_epochs": curve_epochs,
                             "qat_lr": CURVE_QAT_LR}
    lr_scan = {}
    for name in curve_models:
        model = get_model(name)
        lr_scan[name] = qat_lr_scan(model, loaders, epochs=curve_epochs, train_loader=train_loader)
        curve[name] = bit_width_curve(model, loaders, bits=curve_bits, seeds=range(seeds), qat_epochs=curve_epochs,
                                      train_loader=train_loader)

    example = splits.test.tensors[0][:LATENCY_BATCH]
    return {
        "fp32_accuracy": fp32,
        "ptq": {**ptq, "observer": observer, "calibration_batches": CALIBRATION_BATCHES},
        "qat": {"int4": statistics.fmean(qat_int4), "int4_per_seed": qat_int4, "int4_epochs": qat_epochs,
                "binary": statistics.fmean(binary), "binary_per_seed": binary, "binary_epochs": binary_epochs},
        "curve": curve,
        "qat_lr_scan": lr_scan,
        "pt2e": pt2e(teacher, loaders, example, repeats=5 if quick else 50),
        "seeds": seeds,
    }
