"""Benchmark section ``quantization``: the zoo teacher quantized post-training, trained quantized, and run on int8 kernels.

Reported (accuracies are fractions in ``[0, 1]`` on the test split, never used for tuning):

- ``fp32_accuracy``: the zoo teacher ``get_model("teacher")``;
- ``ptq.int8``, ``ptq.int4``: post-training quantization simulated with fake quantization
  (:func:`~course_lib.quantization.post_training_quantize`): BatchNorm folded, weights symmetric per
  output channel and activations asymmetric with ``bits`` bits each (W8A8, W4A4), activation ranges
  calibrated on ``CALIBRATION_BATCHES`` training batches with the observers chosen on the validation
  split in ``book/code/quantization.ipynb`` (deterministic: one value);
- ``qat.int4``: W4A4 quantization-aware training (:func:`~course_lib.quantization.quantization_aware_training`),
  ``QAT_EPOCHS`` epochs from the PTQ model; ``qat.binary``: binary weights ``alpha * sign(w)``,
  ``alpha = mean|w|`` per output channel, first and last layers in fp32
  (:func:`~course_lib.quantization.binarize_weights`), trained ``BINARY_EPOCHS`` epochs with the STE.
  Both are means over ``seeds`` fine-tuning runs of the same teacher (``*_per_seed``: each run);
- ``int8_size_ratio``: serialized bytes of the fp32 teacher / of its int8 version from ``torch.ao`` FX
  static quantization (:func:`~course_lib.quantization.int8_static_fx`, x86 backend; ``ptq.int8_kernels``
  is that model's test accuracy);
- ``int8_latency_speedup``: fp32 / int8 median latency of that same pair at batch ``LATENCY_BATCH``,
  measured side by side with :func:`~course_lib.metrics.compare_latency`; ``latency`` says how.

``quick=True`` fine-tunes one epoch on a 512-image subset and times few repeats: it checks that the
section runs, not the targets.
"""
from __future__ import annotations

import statistics

from torch import nn
from torch.utils.data import DataLoader, Subset

from ..data import load_mnist5k, make_loaders
from ..metrics import compare_latency, model_size_bytes, speedup
from ..quantization import binarize_weights, int8_static_fx, post_training_quantize, quantization_aware_training
from ..training import evaluate, set_seed, train
from ..zoo import RECIPES, get_model

CALIBRATION_BATCHES = 8
OBSERVERS = {8: ("minmax", {}), 4: ("percentile", {"percentile": 99.9})}  # chosen on the validation split in the chapter
QAT_EPOCHS, QAT_LR = 1, 1e-4
BINARY_EPOCHS, BINARY_LR = 2, 1e-3
LATENCY_BATCH = 256


def _mean(values: list[float]) -> float:
    return statistics.fmean(values)


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serialisable dict (accuracies as fractions in ``[0, 1]``)."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    set_seed(0)
    splits = load_mnist5k()
    loaders = make_loaders(splits, batch_size=RECIPES["teacher"].batch_size, seed=0)
    teacher = get_model("teacher")
    fp32 = evaluate(teacher, loaders.test)

    ptq = {}
    for bits, (observer, kwargs) in OBSERVERS.items():
        model = post_training_quantize(teacher, loaders.train, bits, bits, True, observer, CALIBRATION_BATCHES, **kwargs)
        ptq[f"int{bits}"] = evaluate(model, loaders.test)

    train_loader = loaders.train
    if quick:
        train_loader = DataLoader(Subset(splits.train, range(512)), batch_size=64, shuffle=True)
    qat_epochs, binary_epochs = (1, 1) if quick else (QAT_EPOCHS, BINARY_EPOCHS)
    observer, kwargs = OBSERVERS[4]
    qat_int4, binary = [], []
    for seed in range(seeds):
        model, _ = quantization_aware_training(teacher, train_loader, qat_epochs, 4, 4, True, observer,
                                               CALIBRATION_BATCHES, lr=QAT_LR, observer_kwargs=kwargs,
                                               progress=False, device="cpu", seed=seed)
        qat_int4.append(evaluate(model, loaders.test))
        set_seed(seed)
        model = binarize_weights(get_model("teacher"))
        train(model, train_loader, binary_epochs, lr=BINARY_LR, progress=False, device="cpu", seed=seed)
        binary.append(evaluate(model, loaders.test))

    float_graph = nn.Sequential(teacher.features, teacher.classifier).eval()  # FX cannot trace the input check
    example = splits.test.tensors[0][:LATENCY_BATCH]
    int8 = int8_static_fx(float_graph, loaders.train, example, backend="x86", num_batches=CALIBRATION_BATCHES)
    repeats = 5 if quick else 30
    latency = compare_latency({"fp32": float_graph, "int8": int8}, example, warmup=3, repeats=repeats)

    return {
        "fp32_accuracy": fp32,
        "ptq": {**ptq, "int8_kernels": evaluate(int8, loaders.test),
                "observers": {f"int{b}": o for b, (o, _) in OBSERVERS.items()},
                "calibration_batches": CALIBRATION_BATCHES},
        "qat": {"int4": _mean(qat_int4), "int4_per_seed": qat_int4, "int4_epochs": qat_epochs,
                "binary": _mean(binary), "binary_per_seed": binary, "binary_epochs": binary_epochs},
        "seeds": seeds,
        "fp32_bytes": model_size_bytes(teacher),
        "int8_bytes": model_size_bytes(int8),
        "int8_size_ratio": model_size_bytes(teacher) / model_size_bytes(int8),
        "int8_latency_speedup": speedup(latency["fp32"], latency["int8"]),
        "latency": {"model": "teacher", "batch": LATENCY_BATCH, "backend": "torch.ao FX static int8, x86",
                    "threads": latency["fp32"].threads, "repeats": repeats,
                    "fp32_ms": latency["fp32"].median_ms, "int8_ms": latency["int8"].median_ms},
    }
