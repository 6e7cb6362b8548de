"""The ``distillation`` section as the report reads it: its tables, the book's claims, its trade-off points."""
from __future__ import annotations

from typing import Any

from ..._tables import markdown_table
from ..results import MISSING, at, central, difference, get, mean_runs, number, numbers, percent, points, ratio_of
from .section import Claim, Evidence, Point, Section, plausible_speedup, speed_evidence


def label_fractions(d: dict) -> list[Any]:
    """The label fractions of ``low_label`` that have figures."""
    return [f for f in (at(d, "low_label", "fractions") or []) if isinstance(at(d, "low_label", f), dict)]


def _shifts(value: Any) -> str:
    """A bias shift, or one per seed (``"4, 3.5, 4 (per seed)"``)."""
    found = numbers(value)
    if found is not None:
        return ", ".join(f"{v:g}" for v in found) + " (per seed)"
    return MISSING if number(value) is None else f"{value:g}"


def tables(d: dict) -> list[str]:
    """The teacher and the student; the few-label experiment; the smaller student; FitNets; the omitted digit."""
    result = [markdown_table(["model", "parameters", "test accuracy"], [
        ["teacher", f"{get(d, 'teacher.params'):,}" if get(d, "teacher.params") else MISSING,
         percent(number(get(d, "teacher.accuracy")), 2)],
        ["student trained on the labels (scratch)", f"{get(d, 'student.params'):,}" if get(d, "student.params")
         else MISSING, mean_runs(get(d, "student.scratch_accuracy_per_seed"))],
        ["student distilled from the teacher", "same", mean_runs(get(d, "student.kd_accuracy_per_seed"))],
        ["distilled minus scratch", "",
         points(difference(get(d, "student.kd_accuracy"), get(d, "student.scratch_accuracy")))],
    ])]
    fractions = label_fractions(d)
    if fractions:
        rows = []
        for f in fractions:
            figures = at(d, "low_label", f)
            gap = lambda kind: number(at(figures, "gap_recovered", kind))  # noqa: E731
            rows.append([f"{float(f):.0%}", at(d, "low_label", "labels", f) or "",
                         percent(central(figures.get("scratch"))), percent(central(figures.get("kd"))),
                         percent(central(figures.get("kd_transfer"))),
                         MISSING if gap("kd") is None else f"{gap('kd'):.0%}",
                         MISSING if gap("kd_transfer") is None else f"{gap('kd_transfer'):.0%}"])
        result.append(markdown_table(["labels kept", "labeled images", "scratch", "distilled",
                                      "distilled + transfer set", "gap recovered (distilled)",
                                      "gap recovered (+ transfer)"], rows))
    small = d.get("all_labels") or {}
    if small:
        result.append(markdown_table(["smaller student, all labels", "test accuracy"], [
            ["parameters", f"{small['params']:,}" if isinstance(small.get("params"), int) else MISSING],
            ["scratch", mean_runs(small.get("scratch_per_seed", small.get("scratch")))],
            ["distilled", mean_runs(small.get("kd_per_seed", small.get("kd")))],
            ["gain (difference of the means)", points(number(small.get("gain")))],
            ["seed-to-seed spread (larger standard deviation)", points(number(small.get("spread")))]]))
    feature = d.get("feature_kd") or {}
    if feature:
        result.append(markdown_table(["hint (FitNets) distillation, same small student", "test accuracy"], [
            ["hint layers", f"student {feature.get('student_layer')}, teacher {feature.get('teacher_layer')}"],
            ["FitNets, then distillation", mean_runs(feature.get("fitnet_per_seed", feature.get("fitnet")))],
            ["distillation only", mean_runs(small.get("kd_per_seed", small.get("kd")))]]))
    o = d.get("omitted_digit") or {}
    if o:
        digit = o.get("digit", "?")
        result.append(markdown_table([f"test images of the omitted digit {digit} recognized", "fraction"], [
            ["student trained on the labels of the other digits", percent(number(o.get("scratch_accuracy")))],
            ["distilled student, uncorrected", percent(number(o.get("kd_accuracy")))],
            [f"distilled student, output bias of class {digit} raised by {_shifts(o.get('bias_shift'))} "
             "(chosen on validation)", percent(number(o.get("kd_accuracy_bias_corrected")))],
            ["that corrected student on all test digits", percent(number(o.get("kd_overall_accuracy_bias_corrected")))],
        ]))
    return result


def _speed(d: dict) -> Evidence:
    """At least 2x faster; ``student.speedup`` is a timing record, bounded by ``student.macs_ratio`` (teacher /
    student multiply-accumulates) when the file has it."""
    ratio = ratio_of(get(d, "teacher.params"), get(d, "student.params"))
    if ratio is None:
        return None
    macs = number(get(d, "student.macs_ratio"))
    work = "" if macs is None else f", {macs:.1f}x fewer multiply-accumulates"
    return speed_evidence(get(d, "student.speedup"), lambda s: s >= 2, work_ratio=macs,
                          prefix=f"{ratio:.0f}x fewer parameters{work}; speed-up: ")


def _low_label_beats_scratch(d: dict) -> Evidence:
    rows = []
    for f in label_fractions(d):
        scratch, kd = central(at(d, "low_label", f, "scratch")), central(at(d, "low_label", f, "kd_transfer"))
        if scratch is not None and kd is not None:
            rows.append((f, scratch, kd))
    if not rows:
        return None
    evidence = "; ".join(f"{float(f):.0%} of the labels: {percent(s)} -> {percent(k)}" for f, s, k in rows)
    return evidence, all(k > s for _, s, k in rows)


def _low_label_gap(d: dict) -> Evidence:
    gap = number(at(d, "low_label", "0.03", "gap_recovered", "kd_transfer"))
    if gap is None:
        return None
    kd = number(at(d, "low_label", "0.03", "gap_recovered", "kd"))
    plain = "" if kd is None else (f"; distilled on the labeled images alone: {kd:.1%}, the figure to compare with "
                                   "Hinton et al.'s 87% on 3% of their speech data, which used no other data")
    return f"{gap:.0%} of the gap recovered with the transfer set{plain}", gap > 0.5


def _omitted_digit(d: dict) -> Evidence:
    o = d.get("omitted_digit") or {}
    corrected, raw = number(o.get("kd_accuracy_bias_corrected")), number(o.get("kd_accuracy"))
    if corrected is None or raw is None:
        return None
    return (f"digit {o.get('digit')}: {percent(raw)} uncorrected, {percent(corrected)} after the bias correction "
            f"(student on labels only: {percent(number(o.get('scratch_accuracy')))})"), corrected > 0.5


def _points(d: dict) -> list[Point]:
    """The student from scratch and the distilled one, each against the teacher: one above the other."""
    ratio = ratio_of(get(d, "teacher.params"), get(d, "student.params"))
    speed = plausible_speedup(get(d, "student.speedup"), work_ratio=number(get(d, "student.macs_ratio")))[0]
    return [Point(name, number(get(d, f"student.{key}")), number(get(d, "teacher.accuracy")), ratio, speed)
            for name, key in (("student from scratch", "scratch_accuracy"), ("distilled student", "kd_accuracy"))]


SECTION = Section(
    "distillation", tables, points=_points, x_label="fraction of the training labels", aggressive="lower",
    marker="o", arrow=("student from scratch", "distilled student"),
    claims=(
        Claim("The student has a small fraction of the teacher's parameters and answers at least twice as fast.",
              _speed),
        Claim("With few labels, distilling from the teacher (with the unlabeled rest of the training images as a "
              "transfer set) beats training on the labeled images alone, at every fraction of labels measured.",
              _low_label_beats_scratch),
        Claim("At 3% of the labels, distillation with the transfer set recovers most of the gap between the student "
              "trained on those labels and the student trained on all of them.", _low_label_gap),
        Claim("A student that never saw the omitted digit recognizes most of its test images once that class's "
              "output bias is corrected.", _omitted_digit),
    ))
