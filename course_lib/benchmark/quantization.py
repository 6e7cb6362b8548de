"""Benchmark section ``quantization``: the zoo teacher quantized post-training, trained quantized, and run on int8 kernels.

Reported (accuracies are fractions in ``[0, 1]`` on the test split, never used for tuning):

- ``fp32_accuracy``: the zoo teacher ``get_model("teacher")``;
- ``ptq.int8``, ``ptq.int4``: post-training quantization simulated with fake quantization
  (:func:`~course_lib.quantization.post_training_quantize`): BatchNorm folded, weights symmetric per
  output channel and activations asymmetric with ``bits`` bits each (W8A8, W4A4), activation ranges
  calibrated on :data:`CALIBRATION_BATCHES` training batches with the observers :data:`OBSERVERS`, chosen on the
  validation split (the chapter ``book/code/quantization.ipynb`` imports them and its scan prints whether it
  still picks them; deterministic: one value);
- ``qat.int4``: W4A4 quantization-aware training (:func:`~course_lib.quantization.quantization_aware_train`),
  :data:`QAT_EPOCHS` epochs from the PTQ model; ``qat.binary``: binary weights ``alpha * sign(w)``,
  ``alpha = mean|w|`` per output channel, on :data:`BINARY_LAYERS` (first and last layers in fp32,
  :func:`~course_lib.quantization.binarize_weights`), trained :data:`BINARY_EPOCHS` epochs with the STE.
  Both are means over ``seeds`` fine-tuning runs of the same teacher (``*_per_seed``: each run);
- ``pt2e``: real int8 kernels by PT2E (:func:`~course_lib.quantization.compile_int8`: ``torch.export``,
  ``X86InductorQuantizer``, ``torch.compile`` with freezing) against the fp32 teacher in eager mode and
  compiled the same way (:func:`~course_lib.acceleration.try_compile` with ``freezing=True``), timed side by
  side in one :func:`~course_lib.metrics.compare_latency` call at batch :data:`LATENCY_BATCH`:
  ``fp32_eager_ms``, ``fp32_compiled_ms``, ``int8_ms`` (medians), ``speedup_vs_compiled`` and
  ``speedup_vs_eager`` (ratios of medians), ``accuracy`` (the compiled int8 model on the test split) and
  ``fp32_accuracy``; ``fp32_bytes``, ``int8_bytes`` (``torch.save`` of each model's tensors) and
  ``size_ratio`` (fp32 / int8 bytes); ``batch_size``, ``threads``, ``repeats``.

``quick=True`` fine-tunes one epoch on a 512-image subset and times few repeats: it checks that the
section runs, not the targets.
"""
from __future__ import annotations

import statistics
from typing import Any

from torch import nn
from torch.utils.data import DataLoader, Subset

from ..acceleration import try_compile
from ..data import load_mnist5k, make_loaders
from ..metrics import compare_latency, model_size_bytes, speedup
from ..quantization import binarize_weights, compile_int8, post_training_quantize, quantization_aware_train
from ..training import evaluate, set_seed, train
from ..zoo import RECIPES, get_model

CALIBRATION_BATCHES = 8
OBSERVERS = {8: ("minmax", {}), 4: ("percentile", {"percentile": 99.9})}  # chosen on the validation split in the chapter
QAT_EPOCHS, QAT_LR = 1, 1e-4
BINARY_EPOCHS, BINARY_LR = 2, 1e-3
BINARY_LAYERS = ("features.4", "classifier.1")  # the teacher's middle layers; its first and last stay in fp32
LATENCY_BATCH = 256
QUICK_TRAIN_IMAGES = 512


def pt2e(teacher: nn.Module, loaders, example, repeats: int) -> dict[str, Any]:
    """The ``pt2e`` entry: int8 kernels against fp32 eager and fp32 compiled, measured side by side on ``example``."""
    int8 = compile_int8(teacher, loaders.train, example_input=example, num_batches=CALIBRATION_BATCHES)
    compiled = try_compile(teacher, example, freezing=True)
    if compiled.model is None:
        raise RuntimeError(f"torch.compile of the fp32 teacher failed: {compiled.error}")
    latency = compare_latency({"fp32_eager": teacher, "fp32_compiled": compiled.model, "int8": int8}, example,
                              warmup=3, repeats=repeats)
    return {"fp32_eager_ms": latency["fp32_eager"].median_ms, "fp32_compiled_ms": latency["fp32_compiled"].median_ms,
            "int8_ms": latency["int8"].median_ms,
            "speedup_vs_compiled": speedup(latency["fp32_compiled"], latency["int8"]),
            "speedup_vs_eager": speedup(latency["fp32_eager"], latency["int8"]),
            "accuracy": evaluate(int8, loaders.test), "fp32_accuracy": evaluate(teacher, loaders.test),
            "fp32_bytes": model_size_bytes(teacher), "int8_bytes": model_size_bytes(int8),
            "size_ratio": model_size_bytes(teacher) / model_size_bytes(int8),
            "batch_size": len(example), "threads": latency["int8"].threads, "repeats": repeats}


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serialisable dict (accuracies as fractions in ``[0, 1]``)."""
    set_seed(0)
    splits = load_mnist5k()
    loaders = make_loaders(splits, batch_size=RECIPES["teacher"].batch_size, seed=0)
    teacher = get_model("teacher")
    fp32 = evaluate(teacher, loaders.test)

    ptq = {}
    for bits, (observer, kwargs) in OBSERVERS.items():
        model = post_training_quantize(teacher, loaders.train, bits=bits, activation_bits=bits, observer=observer,
                                       observer_kwargs=kwargs, num_batches=CALIBRATION_BATCHES)
        ptq[f"int{bits}"] = evaluate(model, loaders.test)

    train_loader = loaders.train
    if quick:
        train_loader = DataLoader(Subset(splits.train, range(QUICK_TRAIN_IMAGES)), batch_size=64, shuffle=True)
    qat_epochs, binary_epochs = (1, 1) if quick else (QAT_EPOCHS, BINARY_EPOCHS)
    observer, kwargs = OBSERVERS[4]
    qat_int4, binary = [], []
    for seed in range(seeds):
        qat = quantization_aware_train(teacher, train_loader, epochs=qat_epochs, bits=4, activation_bits=4,
                                       observer=observer, observer_kwargs=kwargs, num_batches=CALIBRATION_BATCHES,
                                       lr=QAT_LR, progress=False, device="cpu", seed=seed)
        qat_int4.append(evaluate(qat.model, loaders.test))
        model = binarize_weights(teacher, layers=BINARY_LAYERS)
        train(model, train_loader, binary_epochs, lr=BINARY_LR, progress=False, device="cpu", seed=seed)
        binary.append(evaluate(model, loaders.test))

    example = splits.test.tensors[0][:LATENCY_BATCH]
    return {
        "fp32_accuracy": fp32,
        "ptq": {**ptq, "observers": {f"int{b}": o for b, (o, _) in OBSERVERS.items()},
                "calibration_batches": CALIBRATION_BATCHES},
        "qat": {"int4": statistics.fmean(qat_int4), "int4_per_seed": qat_int4, "int4_epochs": qat_epochs,
                "binary": statistics.fmean(binary), "binary_per_seed": binary, "binary_epochs": binary_epochs},
        "pt2e": pt2e(teacher, loaders, example, repeats=5 if quick else 30),
        "seeds": seeds,
    }
