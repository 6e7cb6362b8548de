"""The book's claims that the benchmark measures, each checked against a results file.

Every chapter states what its technique buys and where it stops being free. Those statements that
``python -m course_lib.benchmark`` measures are listed here, in :data:`CLAIMS`, each with the chapter that
makes it and a check that reads the documented keys of its section and returns the evidence (the figures, as
text) and whether the claim holds in that file. A claim whose figures are missing (the section did not run,
failed, or predates the key) is "not measured", never assumed. ``book/results.ipynb`` shows the checks, so a
reader who re-runs ``make benchmark`` sees which claims hold on their machine.

The thresholds are the ones the statements spell out ("within one point", "at least 40 times"); nothing here
holds a measured number.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._tables import markdown_table
from .report import (FREE_POINTS, MISSING, Results, at, central, compressed_networks, difference, first, get,
                     label_fractions, number, ok_sections, percent, points, ratio_of, times)

__all__ = ["Claim", "CLAIMS", "check_claims", "claims_table"]


Evidence = tuple[str, bool] | None  # (what the file says, whether the claim holds), None: not measured


@dataclass(frozen=True)
class Claim:
    """A claim of the book that the benchmark measures: ``check(section figures)`` gives its evidence."""

    section: str
    chapter: str  # the page that makes it, as a {doc} target from book/results.ipynb
    statement: str
    check: Callable[[dict[str, Any]], Evidence]


def _all_defined(*values: Any) -> bool:
    return all(v is not None for v in values)


def _distill_speed(d: dict) -> Evidence:
    ratio = ratio_of(get(d, "teacher.params"), get(d, "student.params"))
    speed = number(get(d, "student.speedup"))
    if not _all_defined(ratio, speed):
        return None
    return f"{ratio:.0f}x fewer parameters, {speed:.2f}x faster", speed >= 2


def _low_label_beats_scratch(d: dict) -> Evidence:
    rows = []
    for f in label_fractions(d):
        scratch, kd = central(at(d, "low_label", f, "scratch")), central(at(d, "low_label", f, "kd_transfer"))
        if _all_defined(scratch, kd):
            rows.append((f, scratch, kd))
    if not rows:
        return None
    evidence = "; ".join(f"{float(f):.0%} of the labels: {percent(s)} -> {percent(k)}" for f, s, k in rows)
    return evidence, all(k > s for _, s, k in rows)


def _low_label_gap(d: dict) -> Evidence:
    gap = number(at(d, "low_label", "0.03", "gap_recovered", "kd_transfer"))
    if gap is None:
        return None
    return f"{gap:.0%} of the gap recovered (Hinton et al., 2015: 87% at 3% of their speech data)", gap > 0.5


def _omitted_digit(d: dict) -> Evidence:
    o = d.get("omitted_digit") or {}
    corrected, raw = number(o.get("kd_accuracy_bias_corrected")), number(o.get("kd_accuracy"))
    if not _all_defined(corrected, raw):
        return None
    return (f"digit {o.get('digit')}: {percent(raw)} uncorrected, {percent(corrected)} after the bias correction "
            f"(student on labels only: {percent(number(o.get('scratch_accuracy')))})"), corrected > 0.5


def _magnitude_90(p: dict) -> Evidence:
    dense = number(p.get("dense_accuracy"))
    pruned = first(central(at(p, "magnitude_per_seed", "0.9")), at(p, "magnitude", "0.9"))
    if not _all_defined(dense, pruned):
        return None
    return f"{percent(pruned)} against {percent(dense)} dense ({points(pruned - dense)})", dense - pruned <= FREE_POINTS


def _random_vs_magnitude(p: dict) -> Evidence:
    rows = []
    for s in sorted(set(p.get("random_per_seed") or {}) & set(p.get("magnitude_per_seed") or {}), key=float):
        rnd, mag = central(p["random_per_seed"][s], "median"), central(p["magnitude_per_seed"][s])
        if _all_defined(rnd, mag):
            rows.append((s, rnd, mag))
    if not rows:
        return None
    evidence = "; ".join(f"{float(s):.0%}: {percent(r)} (median) vs {percent(m)}" for s, r, m in rows)
    return evidence, all(r < m for _, r, m in rows)


def _unstructured_speed(p: dict) -> Evidence:
    speed = number(p.get("unstructured_latency_speedup"))
    if speed is None:
        return None
    return f"{times(speed)} the dense teacher's speed", speed < 1.1


def _channel_speed(p: dict) -> Evidence:
    speed, ratio = number(get(p, "channel.latency_speedup")), number(get(p, "channel.params_ratio"))
    if speed is None:
        return None
    return f"{times(speed)} faster, {times(ratio)} fewer parameters", speed > 1.1


def _sparse_file(p: dict) -> Evidence:
    stored = p.get("sparse_bytes") or {}
    sparsity, dense = number(stored.get("sparsity")), number(stored.get("dense"))
    files = {f: number(stored.get(f)) for f in ("csr", "bitmask") if number(stored.get(f))}
    if not files or not _all_defined(sparsity, dense) or sparsity >= 1:
        return None
    best = min(files, key=files.get)
    ratio = dense / files[best]
    return (f"{', '.join(f'{f} {dense / b:.1f}x' for f, b in files.items())} smaller; "
            f"{1 / (1 - sparsity):.0f}x fewer weights"), ratio < 1 / (1 - sparsity)


def _ptq_int8(q: dict) -> Evidence:
    fp32, int8 = number(q.get("fp32_accuracy")), number(get(q, "ptq.int8"))
    if not _all_defined(fp32, int8):
        return None
    return f"{percent(int8)} against {percent(fp32)} ({points(int8 - fp32)})", fp32 - int8 <= 0.005


def _pt2e_accuracy(q: dict) -> Evidence:
    fp32, int8 = number(get(q, "pt2e.fp32_accuracy")), number(get(q, "pt2e.accuracy"))
    if not _all_defined(fp32, int8):
        return None
    return f"{percent(int8)} against {percent(fp32)} ({points(int8 - fp32)})", fp32 - int8 <= 0.005


def _pt2e_speed(q: dict) -> Evidence:
    compiled, eager = number(get(q, "pt2e.speedup_vs_compiled")), number(get(q, "pt2e.speedup_vs_eager"))
    if compiled is None:
        return None
    batch, cpu = get(q, "pt2e.batch_size"), number(get(q, "pt2e.cpu_1thread.speedup_vs_compiled"))
    return (f"{times(compiled)} against compiled fp32, {times(eager)} against eager fp32"
            + (f" (batch {batch})" if batch else "")
            + (f"; CPU time on one thread: {times(cpu)} against compiled fp32" if cpu is not None else "")), compiled > 1


def _pt2e_size(q: dict) -> Evidence:
    ratio = number(get(q, "pt2e.size_ratio"))
    return None if ratio is None else (f"{times(ratio)} smaller", ratio >= 3.5)


def _ddp(a: dict) -> Evidence:
    diff = number(get(a, "ddp.max_param_diff"))
    return None if diff is None else (f"largest weight difference {diff:.1e}", diff < 1e-5)


def _fold_exact(a: dict) -> Evidence:
    diff = number(get(a, "fusion.max_abs_diff"))
    return None if diff is None else (f"largest logit difference {diff:.1e}", diff < 1e-4)


def _fold_speed(a: dict) -> Evidence:
    speed, speed1 = number(get(a, "fusion.speedup")), number(get(a, "fusion.speedup_batch1"))
    if speed is None:
        return None
    return (f"{times(speed)} at batch {get(a, 'fusion.batch_size')}, {times(speed1)} at batch 1",
            speed >= 0.95 and (speed1 is None or speed1 >= 0.95))


def _low_rank_pays(a: dict) -> Evidence:
    low = a.get("low_rank") or {}
    speed, change = number(low.get("speedup")), difference(low.get("accuracy"), low.get("dense_accuracy"))
    if not _all_defined(speed, change):
        return None
    return (f"rank {low.get('rank')}: {times(speed)} faster at batch {low.get('batch_size')}, "
            f"{points(change)}"), speed > 1 and -change <= FREE_POINTS


def _low_rank_amdahl(a: dict) -> Evidence:
    low = a.get("low_rank_teacher") or {}
    ratio, speed = number(low.get("params_ratio")), number(low.get("speedup"))
    if not _all_defined(ratio, speed):
        return None
    return f"rank {low.get('rank')}: {times(ratio)} fewer parameters, {times(speed)} faster", ratio > 2 * speed


def _compile(a: dict) -> Evidence:
    speed = number(get(a, "compile.speedup"))
    if speed is None:
        return None
    return f"{times(speed)} at batch {get(a, 'compile.batch_size')}", speed > 1


def _dc_ratio(c: dict) -> Evidence:
    rows = [(n, number(f.get("compression_ratio"))) for n, f in compressed_networks(c)]
    rows = [(n, r) for n, r in rows if r is not None]
    if not rows:
        return None
    return "; ".join(f"{n}: {times(r, 1)}" for n, r in rows), all(r >= 40 for _, r in rows)


def _dc_accuracy(c: dict) -> Evidence:
    rows = [(n, difference(f.get("compressed_accuracy"), f.get("dense_accuracy"))) for n, f in compressed_networks(c)]
    rows = [(n, d) for n, d in rows if d is not None]
    if not rows:
        return None
    return "; ".join(f"{n}: {points(d)}" for n, d in rows), all(d >= -0.02 for _, d in rows)


def _dc_roundtrip(c: dict) -> Evidence:
    equal = [f.get("roundtrip_equal") for _, f in compressed_networks(c) if isinstance(f.get("roundtrip_equal"), bool)]
    return None if not equal else (f"identical logits on the test split: {all(equal)}", all(equal))


CLAIMS = (
    Claim("distillation", "code/distillation", "The student has a small fraction of the teacher's parameters and "
          "answers at least twice as fast.", _distill_speed),
    Claim("distillation", "code/distillation", "With few labels, distilling from the teacher (with the unlabeled "
          "rest of the training images as a transfer set) beats training on the labeled images alone, at every "
          "fraction of labels measured.", _low_label_beats_scratch),
    Claim("distillation", "code/distillation", "At 3% of the labels, distillation with the transfer set recovers "
          "most of the gap between the student trained on those labels and the student trained on all of them.",
          _low_label_gap),
    Claim("distillation", "code/distillation", "A student that never saw the omitted digit recognizes most of its "
          "test images once that class's output bias is corrected.", _omitted_digit),
    Claim("pruning", "code/pruning", "Global magnitude pruning to 90% sparsity, with one epoch of fine-tuning, "
          "stays within one point of the dense teacher.", _magnitude_90),
    Claim("pruning", "code/pruning", "Random pruning, the article's criterion, does worse than magnitude pruning "
          "at every sparsity measured.", _random_vs_magnitude),
    Claim("pruning", "code/pruning", "Zeros in a dense kernel buy no speed: the 90%-sparse teacher is not faster "
          "than the dense one (less than 1.1x).", _unstructured_speed),
    Claim("pruning", "code/pruning", "Removing whole channels buys speed with ordinary dense kernels (more than "
          "1.1x).", _channel_speed),
    Claim("pruning", "code/pruning", "A sparse file is smaller than the dense one by less than the factor of weights "
          "removed: the positions of the kept weights cost bytes too.", _sparse_file),
    Claim("quantization", "code/quantization", "8-bit post-training quantization of the teacher costs at most half "
          "a point of accuracy.", _ptq_int8),
    Claim("quantization", "code/quantization", "On real int8 kernels (PT2E, compiled) the teacher keeps its fp32 "
          "accuracy within half a point.", _pt2e_accuracy),
    Claim("quantization", "code/quantization", "int8 kernels are faster than fp32 compiled the same way, the best "
          "fp32 baseline, and not only faster than eager fp32.", _pt2e_speed),
    Claim("quantization", "code/quantization", "The int8 model's file is about four times smaller (3.5x or more).",
          _pt2e_size),
    Claim("acceleration", "code/acceleration", "Data-parallel training on 2 processes gives the weights that one "
          "process gives on the same batches, up to float rounding (less than 1e-5).", _ddp),
    Claim("acceleration", "code/acceleration", "Folding BatchNorm into the layers before it changes the logits only "
          "by float rounding (less than 1e-4).", _fold_exact),
    Claim("acceleration", "code/acceleration", "Folding BatchNorm costs no time (at least 0.95x at both batch "
          "sizes).", _fold_speed),
    Claim("acceleration", "code/acceleration", "Low rank pays where the Linear layers are the work: LeNet-300-100 at "
          "the rank chosen on validation is faster and within one point of accuracy.", _low_rank_pays),
    Claim("acceleration", "code/acceleration", "On the teacher, whose convolutions do most of the arithmetic, low "
          "rank shrinks the parameters more than twice as much as the latency (Amdahl's law).", _low_rank_amdahl),
    Claim("acceleration", "code/acceleration", "torch.compile makes the teacher faster than eager PyTorch.", _compile),
    Claim("deep_compression", "code/deep_compression", "Deep Compression makes the files of LeNet-300-100 and "
          "LeNet-5 at least 40 times smaller than their float32 weights, as in the paper.", _dc_ratio),
    Claim("deep_compression", "code/deep_compression", "Deep Compression costs at most two points of test "
          "accuracy.", _dc_accuracy),
    Claim("deep_compression", "code/deep_compression", "The compressed file loads back to a model with identical "
          "predictions.", _dc_roundtrip),
)
VERDICTS = {True: "holds", False: "**does not hold**", None: MISSING}


def check_claims(results: Results, section: str | None = None) -> list[dict[str, Any]]:
    """Every claim of :data:`CLAIMS` (of ``section`` only, if given) checked against ``results``: dicts with
    ``section``, ``chapter``, ``statement``, ``evidence`` (the figures, or ``"not measured"``) and ``holds``
    (``True``, ``False``, or ``None`` when the file lacks a figure it needs or the section failed)."""
    ok = ok_sections(results)
    checked = []
    for claim in CLAIMS:
        if section is not None and claim.section != section:
            continue
        found = claim.check(ok[claim.section]) if claim.section in ok else None
        evidence, holds = found if found is not None else (MISSING, None)
        checked.append({"section": claim.section, "chapter": claim.chapter, "statement": claim.statement,
                        "evidence": evidence, "holds": holds})
    return checked


def claims_table(results: Results, section: str) -> str | None:
    """The claims of ``section`` as a Markdown table (claim, measured, verdict), or ``None`` if it has none."""
    rows = [[c["statement"], c["evidence"], VERDICTS[c["holds"]]] for c in check_claims(results, section)]
    return markdown_table(["the book's claim", "measured", "on this file"], rows) if rows else None
