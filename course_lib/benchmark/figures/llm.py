"""The ``llm`` section as the report reads it: its tables and the issue's measured targets as the book's claims.

Perplexities are per byte on the test split (lower is better); a method's *recovered* fraction is
``(rtn - method) / (rtn - fp32)``, the share of plain rounding's perplexity gap it closes. The section has no
trade-off points: the chart compares accuracies of classifiers, and a perplexity is not one.
"""
from __future__ import annotations

import statistics
from typing import Any

from ..._tables import markdown_table
from ..results import MISSING, at, get, number, numbers, percent, speed
from .section import INT8_GAIN, Claim, Evidence, Section, speed_evidence

RTN_LABELS = {"tensor": "per tensor", "channel": "per channel", "g64": "groups of 64", "g32": "groups of 32"}


def ppl(value: Any, digits: int = 2) -> str:
    """A perplexity with ``digits`` decimals, or ``"not measured"``."""
    found = number(value)
    return MISSING if found is None else f"{found:.{digits}f}"


def hard_label(d: dict) -> str:
    """The hard setting as words: ``"3 bits, groups of 64"``."""
    bits, group = get(d, "hard_setting.bits"), get(d, "hard_setting.group_size")
    if bits is None:
        return MISSING
    return f"{bits} bits, " + ("per channel" if group is None else f"groups of {group}")


def kd_difference(d: dict) -> tuple[float, float] | None:
    """(best distilled mean - cross-entropy mean, the larger per-seed standard deviation of the two): a positive
    first value is a lower (better) perplexity for the cross-entropy student. ``None`` without 2+ seeds each."""
    ce = numbers(get(d, "kd.cross_entropy_per_seed"))
    kl = [numbers(get(d, f"kd.{k}_kl_per_seed")) for k in ("forward", "reverse")]
    kl = [k for k in kl if k is not None and len(k) > 1]
    if ce is None or len(ce) < 2 or not kl:
        return None
    best = min(kl, key=statistics.fmean)
    return statistics.fmean(best) - statistics.fmean(ce), max(statistics.stdev(best), statistics.stdev(ce))


def tables(d: dict) -> list[str]:
    """Plain rounding; the hard setting's methods (AWQ sequence, GPTQ); SmoothQuant; sparsity; distillation;
    all-MiniLM-L6-v2's census and W8A8 (:func:`minilm_tables`); speed."""
    rtn = d.get("rtn") or {}
    bits = sorted({int(k.split("-")[0]) for k in rtn}, reverse=True)
    result = [markdown_table(["plain rounding, test perplexity (bits per weight)", *RTN_LABELS.values()], [
        [f"{b} bits", *(f"{ppl(rtn.get(f'{b}-{g}'))} ({number(at(d, 'rtn_bits_per_weight', f'{b}-{g}')) or 0:.2f})"
                        for g in RTN_LABELS)] for b in bits]
        + [["float32", ppl(d.get("fp32_ppl")), "", "", ""]])]
    awq, rec = d.get("awq") or {}, get(d, "awq.recovered") or {}
    rows = [["plain rounding", ppl(awq.get("rtn")), ""]]
    for key, label in (("salient_1pct", "salient 1% of input channels kept in float"),
                       ("random_1pct", "random 1% kept"), ("weight_norm_1pct", "1% by weight norm kept")):
        rows.append([label, ppl(awq.get(key)), percent(number(rec.get(key)), 0)])
    for s, v in (awq.get("scaled") or {}).items():
        rows.append([f"salient 1% scaled by s = {s}", ppl(v), percent(number(rec.get(f"scaled_{s}")), 0)])
    rows += [["AWQ, searched scales", ppl(awq.get("searched")), percent(number(rec.get("searched")), 0)],
             ["GPTQ", ppl(get(d, "gptq.ppl")), percent(number(get(d, "gptq.recovered")), 0)],
             ["GPTQ after AWQ", ppl(get(d, "gptq.after_awq")), percent(number(get(d, "gptq.after_awq_recovered")), 0)],
             ["float32", ppl(d.get("fp32_ppl")), ""]]
    result.append(markdown_table([f"{hard_label(d)}: method", "test perplexity", "gap recovered"], rows))
    cross = get(d, "gptq.cross_domain") or {}
    if cross:
        result.append(markdown_table([f"evaluated on {cross.get('eval')} text", "test perplexity"], [
            ["float32", ppl(cross.get("fp32"))], ["plain rounding", ppl(cross.get("rtn"))],
            ["GPTQ calibrated on docstrings", ppl(cross.get("calibrated_on_docstrings"))],
            ["GPTQ calibrated on topics", ppl(cross.get("calibrated_on_topics"))]]))
    sq = d.get("smoothquant") or {}
    if sq:
        result.append(markdown_table(["W8A8, per-tensor static activations", "naive", "smoothed, alpha 0.5",
                                      "smoothed, alpha chosen on validation"], [
            [f"{a}-bit activations", ppl(at(sq, a, "naive"), 3), ppl(at(sq, a, "alpha_0.5"), 3),
             f"{ppl(at(sq, a, 'chosen'), 3)} (alpha {at(sq, a, 'alpha')})"] for a in ("8", "6") if a in sq]
            + [["float32", ppl(d.get("fp32_ppl"), 3), "", ""]]))
    sparsity = d.get("sparsity") or {}
    if sparsity:
        patterns = list(sparsity.get("magnitude") or {})
        result.append(markdown_table(["pruned, test perplexity", *patterns], [
            [scores, *(ppl(at(sparsity, scores, p)) for p in patterns)] for scores in ("magnitude", "wanda")]))
    kd = d.get("kd") or {}
    if kd:
        result.append(markdown_table([f"2-layer student ({kd.get('params', MISSING):,} parameters), "
                                      f"{kd.get('steps')} steps", "test perplexity (mean)", "per seed"], [
            [loss.replace("_", " "), ppl(kd.get(loss)),
             ", ".join(f"{v:.2f}" for v in numbers(kd.get(f"{loss}_per_seed")) or [])]
            for loss in ("cross_entropy", "forward_kl", "reverse_kl")]))
    result += minilm_tables(d.get("minilm") or {})
    if isinstance(d.get("speed"), dict):
        result.append(markdown_table(["int8 weight-only vs float32", "speed-up"], [
            [f"4096 x 4096 Linear, batch {b}", speed(get(d, f"speed.batch_{b}"))] for b in (1, 64)]
            + [[f"GPT, torchao, one {label}", speed(get(d, f"speed.torchao_gpt.{label}"))]
               for label in ("token", "window") if get(d, "speed.torchao_gpt") is not None]))
    return result


def minilm_tables(mini: dict) -> list[str]:
    """all-MiniLM-L6-v2: its census per kind of Linear input (over the layers) and W8A8 naive or smoothed."""
    census, result = mini.get("census") or {}, []
    if census:
        rows = []
        for kind in ("query", "attn_out", "fc", "fc_out"):
            sites = [v for k, v in census.items() if k.endswith(f".{kind}")]
            channels: dict[int, int] = {}
            for site in sites:
                for c in site.get("outliers") or []:
                    channels[c] = channels.get(c, 0) + 1
            rows.append([kind, f"{max(number(v.get('max_over_median')) or 0 for v in sites):.2f}",
                         f"{max(number(v.get('kurtosis_max')) or 0 for v in sites):.1f}",
                         ", ".join(f"{c} ({n} of {len(sites)} layers)" for c, n in sorted(channels.items())) or "none"])
        result.append(markdown_table(["all-MiniLM-L6-v2, input of", "largest max / median", "largest kurtosis",
                                      "outlier channels"], rows))
    w8a8 = mini.get("w8a8") or {}
    if w8a8:
        def fc_error(r: dict) -> str:
            errors = [number(v) for k, v in (r.get("error") or {}).items() if k.endswith(".fc")]
            return MISSING if not errors or None in errors else f"{statistics.fmean(errors):.4f}"
        result.append(markdown_table(["all-MiniLM-L6-v2, W8A8", "embedding cosine to float (mean)", "(min)",
                                      "fc output error (mean)"], [
            [k.replace("_", " "), ppl(r.get("cosine_mean"), 4), ppl(r.get("cosine_min"), 4), fc_error(r)]
            for k, r in w8a8.items()]))
    return result


def _recovered(d: dict, label: str, value: Any, target: float) -> Evidence:
    found = number(value)
    if found is None:
        return None
    return f"{label}: {percent(found, 0)} of the gap recovered at {hard_label(d)}", found >= target


def _rtn8(d: dict) -> Evidence:
    fp32, int8 = number(d.get("fp32_ppl")), number(get(d, "rtn.8-channel"))
    if fp32 is None or int8 is None:
        return None
    return f"{int8:.3f} against {fp32:.3f} ({int8 / fp32 - 1:+.2%})", int8 <= 1.01 * fp32


def _salient(d: dict) -> Evidence:
    salient, random = number(get(d, "awq.recovered.salient_1pct")), number(get(d, "awq.recovered.random_1pct"))
    if salient is None or random is None:
        return None
    return f"salient 1%: {percent(salient, 0)} of the gap, random 1%: {percent(random, 0)}", salient >= 2 * random


def _smooth(d: dict) -> Evidence:
    fp32, naive, smooth = (number(d.get("fp32_ppl")), number(at(d, "smoothquant", "8", "naive")),
                           number(at(d, "smoothquant", "8", "alpha_0.5")))
    if None in (fp32, naive, smooth):
        return None
    return (f"W8A8 increase: naive {naive - fp32:+.3f}, smoothed (alpha 0.5) {smooth - fp32:+.3f}",
            smooth - fp32 <= 0.5 * (naive - fp32))


def _wanda(d: dict) -> Evidence:
    fp32, mag, wanda = (number(d.get("fp32_ppl")), number(get(d, "sparsity.magnitude.2:4")),
                        number(get(d, "sparsity.wanda.2:4")))
    if None in (fp32, mag, wanda):
        return None
    return (f"2:4 increase: magnitude {mag - fp32:+.2f}, Wanda {wanda - fp32:+.2f}",
            wanda - fp32 <= 0.8 * (mag - fp32))


def _kd(d: dict) -> Evidence:
    found = kd_difference(d)
    if found is None:
        return None
    diff, sigma = found
    return (f"best distilled minus cross-entropy: {diff:+.3f} perplexity (larger seed spread {sigma:.3f})",
            diff < -2 * sigma)


def _speed(d: dict) -> Evidence:
    return speed_evidence(get(d, "speed.batch_1"), lambda s: s > 1, work_ratio=1.0, gain=INT8_GAIN,
                          prefix=f"capability {get(d, 'speed.capability')}: ")


SECTION = Section(
    "llm", tables, x_label="bits per weight", aggressive="lower", marker="s",
    claims=(
        Claim("8-bit per-channel rounding of the GPT keeps its perplexity within 1%.", _rtn8),
        Claim("Where plain rounding costs at least 15% perplexity, GPTQ recovers at least half of the gap.",
              lambda d: _recovered(d, "GPTQ", get(d, "gptq.recovered"), 0.5)),
        Claim("There, AWQ's searched scales recover at least 30% of the gap.",
              lambda d: _recovered(d, "AWQ", get(d, "awq.recovered.searched"), 0.3)),
        Claim("Keeping the salient 1% of input channels (by activation) recovers at least twice the gap a random 1% "
              "does.", _salient),
        Claim("SmoothQuant's smoothing at alpha 0.5 at least halves the W8A8 perplexity increase.", _smooth),
        Claim("At 2:4 sparsity, Wanda's perplexity increase is at most 0.8 times magnitude pruning's.", _wanda),
        Claim("The distilled 2-layer student beats the one trained on cross-entropy (3 seeds, by more than 2 "
              "standard deviations).", _kd),
        Claim("int8 weight-only is faster than float32 on a 4096 x 4096 Linear at batch 1 (decoding is "
              "memory-bound).", _speed),
    ))
