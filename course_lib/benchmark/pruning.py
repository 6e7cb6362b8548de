"""Benchmark section ``pruning``: the zoo's teacher and LeNet-300-100 pruned on MNIST-5k until accuracy falls.

Accuracies are fractions in ``[0, 1]`` on the test split, which only reports; sparsities are JSON keys
written as in :data:`CURVE_SPARSITIES` (``"0.9"``). A *seed* sets the fine-tuning batches, the augmentation
and, for random pruning, the mask; each run builds its own training loader from its seed, so a figure does
not depend on what ran before it.

- ``curve``: accuracy against sparsity, past the knee, for ``"teacher"`` and ``"lenet300"``. Besides
  ``sparsities`` (:data:`CURVE_SPARSITIES`) and ``knee_within`` (:data:`KNEE_WITHIN`), one entry per model:
  ``dense`` (its accuracy), ``finetune`` (the recipe, :data:`FINETUNE`) and, for each scope of
  :func:`~course_lib.pruning.magnitude_prune` (``"global"``: one threshold over all Linear/Conv2d weights;
  ``"layer"``: every layer at the same sparsity), the variants

  - ``no_finetune``: pruned and evaluated at once; the teacher keeps the BatchNorm statistics of the dense
    network (stale);
  - ``recalibrated`` (teacher only): the same pruned network after
    :func:`~course_lib.training.recalibrate_batchnorm` on :data:`RECALIBRATION_BATCHES` training batches.
    LeNet-300-100 has no BatchNorm: its ``no_finetune`` already uses nothing but its weights;
  - ``finetuned``: fine-tuned with the masks in force (:func:`finetune`), mean over seeds, and
    ``finetuned_per_seed``, at the sparsities of :data:`FINETUNED_SPARSITIES` (every curve sparsity, except for
    the teacher's layer-wise curve, which stops at 95%: past its knee it only falls);

  and ``knee``: scope -> variant -> the knee of that curve (a sparsity key, or ``None``): the largest sparsity up
  to which every point stays within ``knee_within`` of ``dense`` (:func:`~course_lib.benchmark.knee.free_up_to`).
- ``dense_accuracy``: the teacher's; ``magnitude`` / ``magnitude_per_seed``: the teacher's global
  ``finetuned`` curve at :data:`SPARSITIES`;
- ``random``: sparsity -> **median** over seeds of the teacher's test accuracy after random pruning
  (:func:`~course_lib.pruning.random_prune`, the article's approach: every layer loses the same fraction) and
  fine-tuning; ``random_per_seed`` lists the runs (the seeds can split into a recovered group and a failed
  one, which a mean would hide), ``random_no_finetune_per_seed`` and ``random_recalibrated_per_seed`` the
  same masks before fine-tuning, with stale and with recalibrated BatchNorm statistics;
- ``gradual``: model -> sparsity (:data:`GRADUAL_SPARSITIES`) -> ``gradual`` and ``one_shot`` (means) and their
  ``*_per_seed``: :func:`~course_lib.pruning.gradual_prune` (Zhu & Gupta's schedule over the first half of
  the fine-tuning budget) against one-shot global magnitude pruning and :func:`finetune`, the same budget
  and seeds;
- ``channel_curve``: channel sparsity (:data:`CHANNEL_SPARSITIES`, the fraction of each convolution's output
  channels removed by :func:`~course_lib.pruning.prune_channels`, filter l1 norm) -> ``accuracy`` (mean of
  ``accuracy_per_seed``, fine-tuned), ``params_ratio`` (dense / pruned parameters, > 1), ``macs_ratio`` (dense /
  pruned multiply-accumulates per image, :func:`~course_lib.metrics.layer_macs`: the work ratio that bounds a
  plausible speed-up) and
  ``latency_speedup`` (dense against pruned latency, a :func:`~course_lib.timing.timing_record`: read it with
  :func:`~course_lib.benchmark.results.speedup_of`); ``channel``: the entry at :data:`CHANNEL_SPARSITY`, with its
  ``sparsity``;
- ``unstructured_latency_speedup``: dense against :data:`SPARSE_SPARSITY`-sparse teacher (masks folded into dense
  weights) latency, a :func:`~course_lib.timing.timing_record`: zeros in a dense kernel cost as much as any other
  value;
- ``sparse_bytes``: that sparse model in CSR and bitmask formats (:func:`~course_lib.pruning.sparse_model_bytes`),
  ``dense``, the raw bytes of the dense model's tensors, and ``sparsity``.

Latencies come from one :func:`~course_lib.timing.compare_latency` call (same run, same batch of 64 test
images, the caller's threads). The fine-tunings (and gradual prunings) are independent runs, each seeded: they
run side by side, one per core on one thread each (:func:`~course_lib.benchmark.cache.parallel_map`), so the
figures do not depend on the core count. The fine-tuning recipes and :data:`CHANNEL_SPARSITY` were chosen on
the validation split (see :data:`FINETUNE`); ``book/code/pruning.ipynb`` reads this section from
``benchmark.json`` (:mod:`course_lib.resources`).
``quick=True`` fine-tunes on :data:`QUICK_TRAIN_IMAGES` training images with one seed, at
:data:`QUICK_SPARSITIES` only: it checks that the section runs, not the figures.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..data import load_mnist5k, make_loaders
from ..metrics import count_parameters, layer_macs
from ..pruning import gradual_prune, magnitude_prune, make_permanent, prune_channels, random_prune, sparse_model_bytes
from ..timing import compare_latency, timing_record
from ..training import evaluate, fine_tune, recalibrate_batchnorm
from ..zoo import RECIPES, get_model
from .cache import parallel_map
from .knee import free_up_to


@dataclass(frozen=True)
class FineTune:
    """A fine-tuning budget: ``epochs`` of AdamW at ``lr`` (cosine), with the zoo recipe's weight decay and shifts."""

    epochs: int
    lr: float


MODELS = ("teacher", "lenet300")
# Chosen on the validation split, global magnitude pruning, seed 0 (validation accuracy in %):
# teacher, 3 epochs: lr 1e-3 / 3e-3 / 1e-2 -> 97.8 / 98.4 / 97.4 at 99%, 99.2 / 99.0 / - at 90%
#   (1 epoch at 99%: 96.6 / 97.8 / 97.4);
# lenet300, 3 epochs: lr 1e-3 / 3e-3 / 1e-2 / 3e-2 -> 58.4 / 85.2 / 94.4 / 95.2 at 98%, - / - / 97.4 / 95.6 at 50%,
#   - / - / 97.0 / 96.4 at 90% (1 epoch at 98%: 44.0 / 54.8 / 84.4 / 93.2).
FINETUNE = {"teacher": FineTune(epochs=3, lr=3e-3), "lenet300": FineTune(epochs=3, lr=1e-2)}
CURVE_SPARSITIES = ("0.5", "0.7", "0.8", "0.9", "0.95", "0.97", "0.98", "0.99", "0.995")
FINETUNED_SPARSITIES = {("teacher", "layer"): ("0.5", "0.7", "0.8", "0.9", "0.95")}  # other curves: all
SPARSITIES = ("0.5", "0.8", "0.9", "0.95")  # random pruning, and the magnitude figures of the results page
GRADUAL_SPARSITIES = ("0.95", "0.99", "0.995")
SCOPES = ("global", "layer")
KNEE_WITHIN = 0.01  # the knee: the last sparsity before the curve first falls more than one point below dense
RECALIBRATION_BATCHES = 10
CHANNEL_SPARSITIES = (0.25, 0.5, 0.75)
CHANNEL_SPARSITY = 0.5
SPARSE_SPARSITY = 0.9  # the unstructured model whose sparse files and latency are measured
BATCH_SIZE = 64
QUICK_TRAIN_IMAGES = 256
QUICK_SPARSITIES = ("0.9", "0.99")


def train_loader(train_set: Dataset, seed: int) -> DataLoader:
    """The training batches of run ``seed``: shuffled by a generator of their own, seeded with ``seed``."""
    return DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(seed))


def finetune(model: nn.Module, train_set: Dataset, *, name: str = "teacher", seed: int = 0) -> nn.Module:
    """A copy of ``model`` fine-tuned with ``FINETUNE[name]`` and the zoo recipe of ``name`` (weight decay,
    shifts) on :func:`train_loader` ``(train_set, seed)``, masks kept in force; in eval mode."""
    budget, recipe = FINETUNE[name], RECIPES[name]
    return fine_tune(model, train_loader(train_set, seed), epochs=budget.epochs, lr=budget.lr,
                     weight_decay=recipe.weight_decay, augment=recipe.augment, device="cpu", progress=False,
                     seed=seed).model


class _Jobs:
    """Fine-tuning runs, each a task returning a test accuracy, registered under a key and then run side by side
    (:func:`~course_lib.benchmark.cache.parallel_map`): ``jobs[key]`` is the accuracy after :meth:`run`."""

    def __init__(self) -> None:
        self.tasks: dict[tuple, Callable[[], float]] = {}
        self.done: dict[tuple, float] = {}

    def add(self, key: tuple, task: Callable[[], float]) -> None:
        self.tasks[key] = task

    def run(self) -> None:
        self.done.update(zip(self.tasks, parallel_map(list(self.tasks.values()))))
        self.tasks = {}

    def __getitem__(self, key: tuple) -> float:
        return self.done[key]


def _tuned(model: nn.Module, train_set: Dataset, test: DataLoader, name: str, seed: int) -> float:
    """Test accuracy of ``model`` after :func:`finetune` with ``name``'s recipe and ``seed``."""
    return evaluate(finetune(model, train_set, name=name, seed=seed), test)


def _curve(name: str, model: nn.Module, train_set: Dataset, test: DataLoader, sparsities: tuple[str, ...],
           seeds: int, jobs: _Jobs) -> Callable[[], dict]:
    """One model's entry of ``curve`` (see the module docstring): its fine-tunings go to ``jobs``; the entry is what
    the returned function gives once they have run."""
    dense = evaluate(model, test)
    entry: dict = {"dense": dense, "finetune": asdict(FINETUNE[name])}
    recalibrate = name == "teacher"
    tuned = {scope: [s for s in sparsities if s in FINETUNED_SPARSITIES.get((name, scope), sparsities)]
             for scope in SCOPES}
    for scope in SCOPES:
        variants: dict[str, dict] = {"no_finetune": {}, **({"recalibrated": {}} if recalibrate else {})}
        for s in sparsities:
            pruned = magnitude_prune(model, sparsity=float(s), scope=scope)
            variants["no_finetune"][s] = evaluate(pruned, test)
            if recalibrate:
                variants["recalibrated"][s] = evaluate(
                    recalibrate_batchnorm(pruned, train_loader(train_set, 0), batches=RECALIBRATION_BATCHES), test)
            if s in tuned[scope]:
                for seed in range(seeds):
                    jobs.add((name, scope, s, seed), lambda m=pruned, seed=seed: _tuned(m, train_set, test, name, seed))
        entry[scope] = variants

    def finish() -> dict:
        for scope in SCOPES:
            runs = {s: [jobs[name, scope, s, seed] for seed in range(seeds)] for s in tuned[scope]}
            entry[scope]["finetuned"] = {s: statistics.fmean(r) for s, r in runs.items()}
            entry[scope]["finetuned_per_seed"] = runs
        entry["knee"] = {scope: {v: free_up_to(entry[scope][v], reference=dense, within=KNEE_WITHIN)[0]
                                 for v in entry[scope] if not v.endswith("_per_seed")}
                         for scope in SCOPES}
        return entry

    return finish


def _random(teacher: nn.Module, train_set: Dataset, test: DataLoader, sparsities: tuple[str, ...],
            seeds: int, jobs: _Jobs) -> Callable[[], dict]:
    """The ``random*`` entries: the masks' accuracies now, their fine-tunings in ``jobs``; the returned function
    gives the entries once those have run."""
    result: dict = {"random_no_finetune_per_seed": {}, "random_recalibrated_per_seed": {}}
    for s in sparsities:
        for seed in range(seeds):
            pruned = random_prune(teacher, sparsity=float(s), generator=torch.Generator().manual_seed(seed))
            recalibrated = recalibrate_batchnorm(pruned, train_loader(train_set, 0), batches=RECALIBRATION_BATCHES)
            result["random_no_finetune_per_seed"].setdefault(s, []).append(evaluate(pruned, test))
            result["random_recalibrated_per_seed"].setdefault(s, []).append(evaluate(recalibrated, test))
            jobs.add(("random", s, seed), lambda m=pruned, seed=seed: _tuned(m, train_set, test, "teacher", seed))

    def finish() -> dict:
        tuned = {s: [jobs["random", s, seed] for seed in range(seeds)] for s in sparsities}
        return {"random_per_seed": tuned, **result, "random": {s: statistics.median(v) for s, v in tuned.items()}}

    return finish


def _gradual(name: str, model: nn.Module, train_set: Dataset, test: DataLoader, sparsities: tuple[str, ...],
             seeds: int, jobs: _Jobs) -> Callable[[dict], dict]:
    """Gradual against one-shot pruning at ``sparsities``: the gradual runs go to ``jobs``; the returned function
    takes the model's global curve (its one-shot runs: same recipe, same seeds) once they have run."""
    budget, recipe = FINETUNE[name], RECIPES[name]
    for s in sparsities:
        for seed in range(seeds):
            jobs.add(("gradual", name, s, seed), lambda s=s, seed=seed: evaluate(gradual_prune(
                model, train_loader(train_set, seed), sparsity=float(s), epochs=budget.epochs, prune_steps=10,
                prune_during=0.5, lr=budget.lr, weight_decay=recipe.weight_decay, augment=recipe.augment,
                device="cpu", progress=False, seed=seed).model, test))

    def finish(one_shot: dict) -> dict:
        result = {}
        for s in sparsities:
            runs = [jobs["gradual", name, s, seed] for seed in range(seeds)]
            result[s] = {"gradual": statistics.fmean(runs), "gradual_per_seed": runs,
                         "one_shot": one_shot["finetuned"][s], "one_shot_per_seed": one_shot["finetuned_per_seed"][s]}
        return result

    return finish


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serializable dict (accuracies as fractions in ``[0, 1]``)."""
    splits = load_mnist5k()
    test = make_loaders(splits).test
    train_set = splits.train
    curve_sparsities, sparsities, gradual_sparsities = CURVE_SPARSITIES, SPARSITIES, GRADUAL_SPARSITIES
    if quick:  # a few batches, two sparsities: the section runs end to end in seconds
        seeds = 1
        train_set = Subset(splits.train, range(QUICK_TRAIN_IMAGES))
        curve_sparsities = sparsities = gradual_sparsities = QUICK_SPARSITIES
    models = {name: get_model(name) for name in MODELS}
    teacher = models["teacher"]
    slim = {s: prune_channels(teacher, sparsity=s) for s in CHANNEL_SPARSITIES}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the fine-tunings run side by side, one per core (parallel_map), on one thread each
    try:
        jobs = _Jobs()
        curves = {name: _curve(name, model, train_set, test, curve_sparsities, seeds, jobs)
                  for name, model in models.items()}
        gradual_of = {name: _gradual(name, model, train_set, test, gradual_sparsities, seeds, jobs)
                      for name, model in models.items()}
        random_of = _random(teacher, train_set, test, sparsities, seeds, jobs)
        for s, m in slim.items():
            for seed in range(seeds):
                jobs.add(("channel", s, seed), lambda m=m, seed=seed: _tuned(m, train_set, test, "teacher", seed))
        jobs.run()
    finally:
        torch.set_num_threads(threads)
    curve = {"sparsities": list(curve_sparsities), "knee_within": KNEE_WITHIN,
             **{name: finish() for name, finish in curves.items()}}
    gradual = {name: finish(curve[name]["global"]) for name, finish in gradual_of.items()}
    teacher_global = curve["teacher"]["global"]
    channel_accuracy = {s: [jobs["channel", s, seed] for seed in range(seeds)] for s in slim}
    unstructured = make_permanent(magnitude_prune(teacher, sparsity=SPARSE_SPARSITY))
    latency = compare_latency({"dense": teacher, "unstructured": unstructured,
                               **{f"channel {s}": m for s, m in slim.items()}},
                              splits.test.tensors[0][:64], warmup=5, repeats=20 if quick else 100)
    channel_curve = {str(s): {"accuracy": statistics.fmean(channel_accuracy[s]),
                              "accuracy_per_seed": channel_accuracy[s],
                              "params_ratio": count_parameters(teacher) / count_parameters(m),
                              "macs_ratio": sum(layer_macs(teacher).values()) / sum(layer_macs(m).values()),
                              "latency_speedup": timing_record(latency["dense"], latency[f"channel {s}"])}
                     for s, m in slim.items()}
    return {
        "curve": curve,
        "dense_accuracy": curve["teacher"]["dense"],
        "magnitude": {s: teacher_global["finetuned"][s] for s in sparsities if s in teacher_global["finetuned"]},
        "magnitude_per_seed": {s: teacher_global["finetuned_per_seed"][s] for s in sparsities
                               if s in teacher_global["finetuned"]},
        **random_of(),
        "gradual": gradual,
        "channel_curve": channel_curve,
        "channel": {"sparsity": CHANNEL_SPARSITY, **channel_curve[str(CHANNEL_SPARSITY)]},
        "unstructured_latency_speedup": timing_record(latency["dense"], latency["unstructured"]),
        "sparse_bytes": {"sparsity": SPARSE_SPARSITY,
                         "csr": sparse_model_bytes(unstructured, format="csr"),
                         "bitmask": sparse_model_bytes(unstructured, format="bitmask"),
                         "dense": sum(t.numel() * t.element_size() for t in teacher.state_dict().values())},
        "seeds": seeds,
        "recalibration_batches": RECALIBRATION_BATCHES,
    }
