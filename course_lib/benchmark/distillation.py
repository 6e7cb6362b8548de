"""Benchmark section ``distillation``: where distilling the zoo teacher into a student pays, on MNIST-5k.

Every student is trained with the zoo student's recipe (AdamW, cosine schedule, weight decay, random shifts of
up to 2 pixels, batches of 64) for the same number of optimizer steps, ``steps`` (the recipe's 20 epochs of
the 3,500-image training split: 1,100), whatever the size of its training set; only the loss and the data
change. Seed ``s`` fixes the initial weights, the batches and the labeled subset. Hyperparameters (``T``,
``alpha``, the hint layers, the omitted-digit experiment's length) are chosen on the **validation** split, on
seed 0, one axis at a time (the temperature at ``alpha = 0.9``, then ``alpha`` at that temperature; ties go to
the lower temperature and to ``alpha = 0.9``); a run made for the choice is reused as seed 0's run. The
``selection`` entries hold the validation accuracies they were chosen from. Accuracies are fractions in
``[0, 1]`` on the test split, which is never used for a choice; ``*_per_seed`` lists seeds ``0..seeds-1``;
``seconds`` entries are training times of one student (mean over seeds, on this machine and its load; their
ratios are what the chapter uses): its wall-clock time plus, for a distilled student, the teacher's forward
passes on its batches, counted at the time per image the teacher took to fill the section's
:class:`~course_lib.benchmark.cache.TeacherTable`. The teacher runs once per image it can be shown (every
training image, every shift), and each student step looks its logits up, exact to float rounding: the students
are the ones the teacher would have taught step by step, at a fraction of the time. Students train side by side,
one per core, on one thread each (:func:`~course_lib.benchmark.cache.parallel_map`; the section sets one thread,
and restores the caller's count), so the results do not depend on the core count. Top-level ``seeds``,
``steps``, ``temperature`` and ``alpha`` repeat the seed count, the step budget and ``low_label``'s choice.

Reported:

- ``teacher.params``, ``teacher.bytes``, ``teacher.accuracy``: the zoo teacher ``get_model("teacher")``;
  ``student.params``, ``student.bytes``, ``student.speedup`` (teacher against student latency at batch 64 on one
  thread, side by side, as the chapter measures it: a :func:`~course_lib.timing.timing_record`, read it with
  :func:`~course_lib.benchmark.results.speedup_of`),
  ``student.macs_ratio`` (teacher / student multiply-accumulates per image, :func:`~course_lib.metrics.layer_macs`,
  the work ratio that bounds a plausible speed-up): the zoo student's architecture; ``student.scratch_accuracy``
  (all labels) and ``student.kd_accuracy`` (distilled on all labels at ``low_label``'s ``T`` and ``alpha``),
  means, ``*_std`` (sample standard deviations) and ``*_per_seed``.
- ``low_label``: ``fractions`` of the training labels kept (stratified by class, seeded,
  :func:`course_lib.distillation.with_few_labels`), ``labels`` (how many), ``temperature``, ``alpha``,
  ``selection``; per fraction (key ``"0.03"`` ...): ``scratch`` (the student trained on the labeled images
  alone), ``kd`` (distilled from the teacher on those images, labels included), ``kd_transfer`` (the same,
  with the rest of the training split added as an unlabeled transfer set, shifts as in the recipe),
  each a list per seed; ``gap_recovered`` ``{kd, kd_transfer}`` (mean over seeds) and
  ``gap_recovered_per_seed``, with ``gap = (acc - scratch) / (all_labels - scratch)`` computed seed by seed
  against that seed's all-label student (``student.scratch_accuracy_per_seed``), on the test split;
  ``seconds`` ``{scratch, kd, kd_transfer}``.
- ``all_labels``: a smaller ConvNet (``widths``, ``hidden``, ``params``) trained on all labels from scratch
  and distilled (``temperature``, ``alpha``, ``selection``): ``scratch``/``kd`` per seed, means, standard
  deviations, ``gain`` (difference of the means), ``spread`` (the larger of the two standard deviations) and
  ``train_accuracy`` (on the training split, unshifted, mean over seeds).
- ``feature_kd``: FitNets on that small student (:func:`course_lib.distillation.hint_train`, stage-wise):
  ``student_layer``, ``teacher_layer`` (chosen on validation among ``candidates``, ``selection``),
  ``hint_steps`` of stage 1, then ``distill`` at ``all_labels``' ``T`` and ``alpha``; ``fitnet`` per seed
  and mean, against ``all_labels``' ``kd`` and ``scratch`` (same seeds); ``seconds`` ``{kd, fitnet}``.
- ``omitted_digit``: every training image of ``digit`` is removed (Hinton et al., 2015, section 3); ``T`` and
  ``alpha``, then ``steps`` (1 or 2 times the recipe's), chosen on the validation split's accuracy (all
  digits); ``selection`` lists every setting tried with its validation accuracy and the fraction of the
  validation split's images of ``digit`` it recognized; ``scratch_accuracy``
  (labels only, seed 0) and ``kd_accuracy`` (mean over seeds, ``kd_accuracy_per_seed``): the fraction of the
  test split's images of ``digit`` recognized, uncorrected; ``bias_shift`` (chosen on validation, per seed),
  ``kd_accuracy_bias_corrected`` and ``kd_overall_accuracy_bias_corrected`` (all test digits), means.

``quick=True`` trains each student for 20 steps on a tenth of the training split (350 images, stratified), with
one value per hyperparameter: it checks that the section runs and writes every key, not the results.
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..data import Splits, load_mnist5k, make_loaders
from ..distillation import distill, hint_train, labeled, with_few_labels
from ..distillation._omitted_class import best_bias_shift, class_accuracy, without_class
from ..metrics import count_parameters, layer_macs, model_size_bytes
from ..models import ConvNet, build_model
from ..timing import compare_latency, timing_record
from ..training import evaluate, set_seed, train
from ..zoo import RECIPES, get_model
from .cache import TeacherTable, parallel_map

RECIPE = RECIPES["student"]
STEPS = 1100                    # the zoo student's 20 epochs of 55 batches
QUICK_STEPS = 20
FRACTIONS = (0.01, 0.03, 0.1)
SELECTION_FRACTION = 0.03       # T and alpha of low_label are chosen at this fraction (the target)
TEMPERATURES = (1.0, 4.0, 20.0)
ALPHAS = (0.5, 0.9, 1.0)
SMALL_STUDENT = {"widths": (2, 4), "hidden": 8}
HINT_LAYERS = (("features.3", "features.3"), ("features.7", "features.7"))  # (student, teacher): after each stage
HINT_STEPS = 275                # stage 1: 5 epochs
OMITTED_DIGIT = 3
OMITTED_TEMPERATURES = (8.0, 20.0, 50.0)
OMITTED_ALPHAS = (0.9, 1.0)
OMITTED_STEPS_MULTIPLES = (1, 2)  # then the training length, in multiples of STEPS, at the chosen T and alpha


def small_student() -> nn.Module:
    """The all-label experiment's student: a ConvNet with :data:`SMALL_STUDENT`'s widths and hidden units."""
    return ConvNet(SMALL_STUDENT["widths"], SMALL_STUDENT["hidden"])


def _loader(splits: Splits, train_set: TensorDataset, seed: int):
    return make_loaders(Splits(train_set, splits.val, splits.test, splits.name, splits.classes),
                        batch_size=RECIPE.batch_size, seed=seed).train


def _recipe(steps: int, loader) -> dict:
    return dict(epochs=max(1, round(steps / len(loader))), lr=RECIPE.lr, weight_decay=RECIPE.weight_decay,
                augment=RECIPE.augment, progress=False, device="cpu")


def train_student(splits: Splits, *, seed: int, steps: int = STEPS, train_set: TensorDataset | None = None,
                  teacher: nn.Module | None = None, build: Callable[[], nn.Module] | None = None,
                  **distill_kwargs) -> nn.Module:
    """A student trained with the zoo student's recipe for about ``steps`` optimizer steps (whole epochs over
    ``train_set``, default ``splits.train``) after ``set_seed(seed)``: on the labels, or, when ``teacher`` is
    given, distilled from it with :func:`~course_lib.distillation.distill` (``distill_kwargs``: ``temperature``,
    ``alpha``, ``hard``; examples labeled ``UNLABELED`` learn from the teacher alone). ``build`` makes the
    untrained student (default: the zoo's student architecture), after seeding. Eval mode. The chapter
    ``book/code/distillation.ipynb`` trains its students with it."""
    if teacher is None and distill_kwargs:
        raise ValueError(f"{', '.join(distill_kwargs)} are distillation settings; pass teacher= to use them")
    set_seed(seed)
    loader = _loader(splits, splits.train if train_set is None else train_set, seed)
    student = copy.deepcopy((build or (lambda: build_model("student", RECIPE.dataset)))())
    if teacher is None:
        kwargs = _recipe(steps, loader)
        train(student, loader, kwargs.pop("epochs"), **kwargs)
        return student.eval()
    return distill(student, teacher, loader, **_recipe(steps, loader), **distill_kwargs).model


def fitnet_student(splits: Splits, *, seed: int, teacher: nn.Module, student_layer: str, teacher_layer: str,
                   hint_steps: int, steps: int = STEPS, build: Callable[[], nn.Module] = small_student,
                   table: TeacherTable | None = None, **distill_kwargs) -> nn.Module:
    """FitNets, stage-wise: ``hint_steps`` of :func:`~course_lib.distillation.hint_train` on the training split,
    then :func:`train_student` distils the result for ``steps`` (same seed, recipe and batches), from ``table``
    (``teacher``'s :class:`~course_lib.benchmark.cache.TeacherTable`) when given, else from ``teacher``."""
    set_seed(seed)
    loader = _loader(splits, splits.train, seed)
    stage1 = hint_train(build(), teacher, loader, student_layer=student_layer, teacher_layer=teacher_layer,
                        **_recipe(hint_steps, loader)).model
    return train_student(splits, seed=seed, steps=steps, teacher=teacher if table is None else table,
                         build=lambda: stage1, **distill_kwargs)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _mean_or_none(values: list[float | None]) -> float | None:
    return None if None in values else statistics.fmean(values)


def _choose(score: Callable[..., float], temperatures: tuple[float, ...], alphas: tuple[float, ...], *,
            prepare: Callable[[list[tuple[float, float]]], None] = lambda settings: None
            ) -> tuple[float, float, dict[str, float]]:
    """``T`` then ``alpha`` maximising ``score(temperature, alpha)`` (validation accuracy), one axis at a time:
    the temperature at ``alpha = 0.9`` (or the first alpha), then alpha at that temperature; ties to the first.
    ``prepare(settings)`` is called with each axis's ``(T, alpha)`` pairs before they are scored (to train their
    students side by side)."""
    first = 0.9 if 0.9 in alphas else alphas[0]
    prepare([(t, first) for t in temperatures])
    scores = {(t, first): score(t, first) for t in temperatures}
    best_t = max(temperatures, key=lambda t: scores[t, first])
    prepare([(best_t, a) for a in alphas if (best_t, a) not in scores])
    for a in alphas:
        if (best_t, a) not in scores:
            scores[best_t, a] = score(best_t, a)
    best_a = max(alphas, key=lambda a: (scores[best_t, a], a == first))
    return best_t, best_a, {f"T={t:g},alpha={a:g}": s for (t, a), s in scores.items()}


def _gap(acc: float, few: float, full: float) -> float | None:
    """The share of the gap from ``few`` (labels alone) to ``full`` (all labels) that ``acc`` closes; ``None``
    when there is no gap to close."""
    return (acc - few) / (full - few) if full != few else None


class _Runs:
    """What every step of the section shares: the data, the teacher and its table of logits, the budget, and the
    students trained so far (a run made to choose a setting is reused as that seed's run)."""

    def __init__(self, splits: Splits, teacher: nn.Module, quick: bool, seeds: int) -> None:
        self.splits, self.loaders, self.teacher = splits, make_loaders(splits), teacher
        self.table = TeacherTable(teacher, splits.train.tensors[0], max_shift=RECIPE.augment)
        self.quick, self.seeds = quick, seeds
        self.steps = QUICK_STEPS if quick else STEPS
        self.temperatures, self.alphas = (TEMPERATURES[1:2], ALPHAS[1:2]) if quick else (TEMPERATURES, ALPHAS)
        self.trained: dict[tuple, tuple[nn.Module, float]] = {}

    def _job(self, seed: int, data: str, train_set: TensorDataset | None = None, *, length: int | None = None,
             **kwargs) -> tuple[tuple, Callable[[], tuple[nn.Module, float]]]:
        length = self.steps if length is None else length
        key = (seed, data, length, tuple(sorted((k, v) for k, v in kwargs.items() if k != "teacher")))
        if kwargs.get("teacher") is self.teacher:
            kwargs = {**kwargs, "teacher": self.table}
        return key, lambda: self.timed(lambda: train_student(self.splits, seed=seed, steps=length,
                                                             train_set=train_set, **kwargs))

    def student(self, seed: int, data: str, train_set: TensorDataset | None = None, *, length: int | None = None,
                **kwargs) -> tuple[nn.Module, float]:
        """:func:`train_student` on ``train_set`` (named ``data``) for ``length`` steps (default the section's),
        and the seconds it took; trained once per seed, data, length and setting."""
        key, job = self._job(seed, data, train_set, length=length, **kwargs)
        if key not in self.trained:
            self.trained[key] = job()
        return self.trained[key]

    def train(self, *jobs: dict) -> None:
        """Train side by side (:func:`~course_lib.benchmark.cache.parallel_map`) the students of ``jobs`` (each the
        arguments of :meth:`student`, ``data`` and ``seed`` included) not trained yet; the same students as
        :meth:`student` would train one by one."""
        todo: dict[tuple, Callable] = {}
        for arguments in jobs:
            key, job = self._job(**arguments)
            if key not in self.trained:
                todo.setdefault(key, job)
        self.trained.update(zip(todo, parallel_map(list(todo.values()))))

    def timed(self, fn: Callable[[], nn.Module]) -> tuple[nn.Module, float]:
        """``fn()`` and its seconds: wall clock, plus the teacher's time per image for each row the table
        answered (what running the teacher on them would have cost)."""
        hits, start = self.table.hits, time.perf_counter()
        model = fn()
        return model, time.perf_counter() - start + (self.table.hits - hits) * self.table.seconds_per_row

    def test(self, model: nn.Module) -> float:
        return evaluate(model, self.loaders.test)

    def val(self, model: nn.Module) -> float:
        return evaluate(model, self.loaders.val)


def run(quick: bool = False, seeds: int = 3) -> dict:
    """Run the section; returns a JSON-serializable dict (accuracies as fractions in ``[0, 1]``)."""
    splits = load_mnist5k()
    if quick:
        splits = Splits(labeled(with_few_labels(splits.train, 0.1, seed=0)), splits.val, splits.test, splits.name,
                        splits.classes)
    teacher = get_model("teacher")
    zoo_student = get_model("student")
    latency = compare_latency({"teacher": teacher, "student": zoo_student}, splits.test.tensors[0][:64],
                              warmup=2 if quick else 5, repeats=5 if quick else 50, threads=1)  # as the chapter
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the students train side by side, one per core (parallel_map), on one thread each
    try:
        runs = _Runs(splits, teacher, quick, seeds)
        low_label, kd, all_scratch, all_kd = _few_labels(runs)
        all_labels = _all_labels(runs)
        feature_kd = _feature_kd(runs, all_labels)
        omitted = _omitted_digit(runs)
    finally:
        torch.set_num_threads(threads)
    (zs_mean, zs_std), (zk_mean, zk_std) = _mean_std(all_scratch), _mean_std(all_kd)
    return {
        "teacher": {"params": count_parameters(teacher), "bytes": model_size_bytes(teacher),
                    "accuracy": runs.test(teacher)},
        "student": {"params": count_parameters(zoo_student), "bytes": model_size_bytes(zoo_student),
                    "scratch_accuracy": zs_mean, "scratch_accuracy_std": zs_std,
                    "scratch_accuracy_per_seed": all_scratch,
                    "kd_accuracy": zk_mean, "kd_accuracy_std": zk_std, "kd_accuracy_per_seed": all_kd,
                    "speedup": timing_record(latency["teacher"], latency["student"]),
                    "macs_ratio": sum(layer_macs(teacher).values()) / sum(layer_macs(zoo_student).values())},
        "seeds": seeds,
        "steps": runs.steps,
        "temperature": kd["temperature"],
        "alpha": kd["alpha"],
        "low_label": low_label,
        "all_labels": all_labels,
        "feature_kd": feature_kd,
        "omitted_digit": omitted,
    }


def _few_labels(runs: _Runs) -> tuple[dict, dict, list[float], list[float]]:
    """``low_label`` (``T`` and ``alpha`` chosen at :data:`SELECTION_FRACTION`), the distillation settings chosen,
    and the test accuracies of the all-label students, from scratch and distilled with them, per seed."""
    splits, teacher, seeds = runs.splits, runs.teacher, runs.seeds

    def few(fraction: float, seed: int) -> TensorDataset:
        return with_few_labels(splits.train, fraction, seed=seed)

    def chosen_on(t: float, a: float) -> dict:
        return dict(seed=0, data=f"{SELECTION_FRACTION}", train_set=labeled(few(SELECTION_FRACTION, 0)),
                    teacher=teacher, temperature=t, alpha=a)

    def methods(fraction: float, seed: int, kd: dict) -> dict[str, dict]:
        subset = few(fraction, seed)
        return {"scratch": dict(seed=seed, data=f"{fraction}", train_set=labeled(subset)),
                "kd": dict(seed=seed, data=f"{fraction}", train_set=labeled(subset), **kd),
                "kd_transfer": dict(seed=seed, data=f"{fraction}+transfer", train_set=subset, **kd)}

    scratch = [dict(seed=s, data="all") for s in range(seeds)] + [
        methods(f, s, {})["scratch"] for f in FRACTIONS for s in range(seeds)]  # trained beside the first choice
    t_few, a_few, selection = _choose(lambda t, a: runs.val(runs.student(**chosen_on(t, a))[0]), runs.temperatures,
                                      runs.alphas, prepare=lambda settings: runs.train(
                                          *(chosen_on(t, a) for t, a in settings), *scratch))
    kd = dict(teacher=teacher, temperature=t_few, alpha=a_few)
    runs.train(*(dict(seed=s, data="all", **kd) for s in range(seeds)),
               *(job for f in FRACTIONS for s in range(seeds) for job in methods(f, s, kd).values()))
    all_scratch = [runs.test(runs.student(s, "all")[0]) for s in range(seeds)]
    all_kd = [runs.test(runs.student(s, "all", **kd)[0]) for s in range(seeds)]
    low_label: dict = {"fractions": list(FRACTIONS), "temperature": t_few, "alpha": a_few,
                       "selection": {"fraction": SELECTION_FRACTION, "method": "kd", "val_accuracy": selection},
                       "labels": {str(f): len(labeled(few(f, 0))) for f in FRACTIONS}}
    for fraction in FRACTIONS:
        accs: dict[str, list[float]] = {"scratch": [], "kd": [], "kd_transfer": []}
        secs: dict[str, list[float]] = {k: [] for k in accs}
        for seed in range(seeds):
            for method, job in methods(fraction, seed, kd).items():
                model, seconds = runs.student(**job)
                accs[method].append(runs.test(model))
                secs[method].append(seconds)
        per_seed = {m: [_gap(accs[m][s], accs["scratch"][s], all_scratch[s]) for s in range(seeds)]
                    for m in ("kd", "kd_transfer")}
        low_label[str(fraction)] = {**accs, "gap_recovered": {m: _mean_or_none(v) for m, v in per_seed.items()},
                                    "gap_recovered_per_seed": per_seed,
                                    "seconds": {m: statistics.fmean(v) for m, v in secs.items()}}
    return low_label, kd, all_scratch, all_kd


def _all_labels(runs: _Runs) -> dict:
    """``all_labels``: the smaller student on every label, from scratch and distilled (``T``, ``alpha`` chosen)."""
    teacher, seeds, small = runs.teacher, runs.seeds, dict(build=small_student)
    scratch = [dict(seed=s, data="all", **small) for s in range(seeds)]  # trained beside the first choice
    t_all, a_all, selection = _choose(
        lambda t, a: runs.val(runs.student(0, "all", teacher=teacher, temperature=t, alpha=a, **small)[0]),
        runs.temperatures, runs.alphas, prepare=lambda settings: runs.train(
            *(dict(seed=0, data="all", teacher=teacher, temperature=t, alpha=a, **small) for t, a in settings),
            *scratch))
    kd_small = dict(teacher=teacher, temperature=t_all, alpha=a_all, **small)
    runs.train(*(dict(seed=s, data="all", **kd_small) for s in range(seeds)))
    small_scratch = [runs.student(s, "all", **small) for s in range(seeds)]
    small_kd = [runs.student(s, "all", **kd_small) for s in range(seeds)]
    scratch_acc, kd_acc = [runs.test(m) for m, _ in small_scratch], [runs.test(m) for m, _ in small_kd]
    (s_mean, s_std), (k_mean, k_std) = _mean_std(scratch_acc), _mean_std(kd_acc)
    train_loader = make_loaders(runs.splits).train
    return {"widths": list(SMALL_STUDENT["widths"]), "hidden": SMALL_STUDENT["hidden"],
            "params": count_parameters(small_student()), "temperature": t_all, "alpha": a_all,
            "selection": selection, "scratch": scratch_acc, "kd": kd_acc,
            "scratch_mean": s_mean, "scratch_std": s_std, "kd_mean": k_mean, "kd_std": k_std,
            "gain": k_mean - s_mean, "spread": max(s_std, k_std),
            "train_accuracy": {"scratch": statistics.fmean(evaluate(m, train_loader) for m, _ in small_scratch),
                               "kd": statistics.fmean(evaluate(m, train_loader) for m, _ in small_kd)},
            "seconds": {"scratch": statistics.fmean(t for _, t in small_scratch),
                        "kd": statistics.fmean(t for _, t in small_kd)}}


def _feature_kd(runs: _Runs, all_labels: dict) -> dict:
    """``feature_kd``: FitNets on the smaller student at ``all_labels``' ``T`` and ``alpha``, its hint layers chosen
    on validation among :data:`HINT_LAYERS`, against ``all_labels``' students."""
    hint_steps = QUICK_STEPS if runs.quick else HINT_STEPS
    candidates = HINT_LAYERS[1:] if runs.quick else HINT_LAYERS
    t_all, a_all = all_labels["temperature"], all_labels["alpha"]
    fitnets: dict[tuple[int, tuple[str, str]], tuple[nn.Module, float]] = {}

    def train(*runs_to_train: tuple[int, tuple[str, str]]) -> None:
        """The FitNets students of ``(seed, layers)`` not trained yet, side by side."""
        todo = [r for r in dict.fromkeys(runs_to_train) if r not in fitnets]
        fitnets.update(zip(todo, parallel_map([lambda seed=seed, layers=layers: runs.timed(lambda: fitnet_student(
            runs.splits, seed=seed, teacher=runs.teacher, student_layer=layers[0], teacher_layer=layers[1],
            hint_steps=hint_steps, steps=runs.steps, table=runs.table, temperature=t_all, alpha=a_all))
            for seed, layers in todo])))

    train(*((0, layers) for layers in candidates))
    selection = {layers: runs.val(fitnets[0, layers][0]) for layers in candidates}
    chosen = max(candidates, key=lambda layers: selection[layers])
    train(*((s, chosen) for s in range(runs.seeds)))
    fit_runs = [fitnets[s, chosen] for s in range(runs.seeds)]
    fit_acc = [runs.test(m) for m, _ in fit_runs]
    return {"student_layer": chosen[0], "teacher_layer": chosen[1], "hint_steps": hint_steps,
            "candidates": [list(c) for c in candidates],
            "selection": {f"{s}->{t}": v for (s, t), v in selection.items()},
            "temperature": t_all, "alpha": a_all, "fitnet": fit_acc, "fitnet_mean": statistics.fmean(fit_acc),
            "fitnet_std": _mean_std(fit_acc)[1], "kd": all_labels["kd"], "kd_mean": all_labels["kd_mean"],
            "scratch": all_labels["scratch"], "scratch_mean": all_labels["scratch_mean"],
            "seconds": {"kd": all_labels["seconds"]["kd"], "fitnet": statistics.fmean(t for _, t in fit_runs)}}


def _omitted_digit(runs: _Runs) -> dict:
    """``omitted_digit``: students distilled without :data:`OMITTED_DIGIT` (``T``, ``alpha``, then the length
    chosen on validation), before and after the bias correction chosen on validation."""
    splits, teacher, steps = runs.splits, runs.teacher, runs.steps
    transfer = without_class(splits.train, OMITTED_DIGIT)
    o_temps, o_alphas = ((OMITTED_TEMPERATURES[1:2], OMITTED_ALPHAS[1:]) if runs.quick
                         else (OMITTED_TEMPERATURES, OMITTED_ALPHAS))
    o_lengths = (steps,) if runs.quick else tuple(steps * m for m in OMITTED_STEPS_MULTIPLES)
    tried: dict[str, dict[str, float]] = {}
    scratch = dict(seed=0, data=f"without {OMITTED_DIGIT}", train_set=transfer)

    def job(seed: int, t: float, a: float, length: int) -> dict:
        return dict(seed=seed, data=f"without {OMITTED_DIGIT}", train_set=transfer, length=length, teacher=teacher,
                    temperature=t, alpha=a)

    def blind(seed: int, t: float, a: float, length: int) -> nn.Module:
        model = runs.student(**job(seed, t, a, length))[0]
        if seed == 0:
            tried[f"T={t:g},alpha={a:g},steps={length}"] = {
                "val_accuracy": runs.val(model),
                "val_digit_accuracy": class_accuracy(model, splits.val, OMITTED_DIGIT)}
        return model

    t_om, a_om, _ = _choose(lambda t, a: runs.val(blind(0, t, a, o_lengths[0])), o_temps, o_alphas,
                            prepare=lambda settings: runs.train(*(job(0, t, a, o_lengths[0]) for t, a in settings),
                                                                scratch))
    runs.train(*(job(0, t_om, a_om, n) for n in o_lengths))
    l_om = max(o_lengths, key=lambda n: runs.val(blind(0, t_om, a_om, n)))
    runs.train(*(job(s, t_om, a_om, l_om) for s in range(runs.seeds)))
    uncorrected, shifts, corrected, overall = [], [], [], []
    for seed in range(runs.seeds):
        model = copy.deepcopy(blind(seed, t_om, a_om, l_om))
        uncorrected.append(class_accuracy(model, splits.test, OMITTED_DIGIT))
        shifts.append(best_bias_shift(model, runs.loaders.val, OMITTED_DIGIT))
        with torch.no_grad():
            model.classifier[-1].bias[OMITTED_DIGIT] += shifts[-1]
        corrected.append(class_accuracy(model, splits.test, OMITTED_DIGIT))
        overall.append(runs.test(model))
    return {"digit": OMITTED_DIGIT, "temperature": t_om, "alpha": a_om, "steps": l_om, "selection": tried,
            "scratch_accuracy": class_accuracy(runs.student(**scratch)[0], splits.test, OMITTED_DIGIT),
            "kd_accuracy": statistics.fmean(uncorrected), "kd_accuracy_per_seed": uncorrected,
            "bias_shift": shifts, "kd_accuracy_bias_corrected": statistics.fmean(corrected),
            "kd_accuracy_bias_corrected_per_seed": corrected,
            "kd_overall_accuracy_bias_corrected": statistics.fmean(overall)}
