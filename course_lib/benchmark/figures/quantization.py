"""The ``quantization`` section as the report reads it: its tables, the book's claims, its trade-off points."""
from __future__ import annotations

from ..._tables import markdown_table
from ..results import MISSING, central, first, get, latency, number, percent, points, ratio_of, runs, times
from .section import INT8_GAIN, Claim, Evidence, Point, Section, plausible_speedup, speed_evidence

INT8_TARGET = 3.0  # the book's target for int8 over compiled fp32 on a VNNI CPU (VNNI's limit is about 4x)
MODELS = {"fp32_eager": "fp32, eager PyTorch", "fp32_compiled": "fp32, compiled (torch.compile, freezing)",
          "int8": "int8, PT2E, compiled"}
FUSED = "in everything else"  # a layer with no kernel of its own: Inductor fused it into the code it generated
VERSUS = {"fp32_eager": "speedup_vs_eager", "fp32_compiled": "speedup_vs_compiled"}  # the int8 record against each


def int8_speed(record: object) -> tuple[float | None, str]:
    """:func:`~.section.plausible_speedup` of an int8-over-fp32 record: the same work on kernels at most
    :data:`~.section.INT8_GAIN` times faster per operation."""
    return plausible_speedup(record, work_ratio=1.0, gain=INT8_GAIN)


def _int8_speed_table(timed: dict, batch: object) -> str:
    """The latencies of fp32 eager, fp32 compiled and int8 at one thread count (``timed``: ``pt2e["1"]``...), and
    how many times faster int8 is than each fp32 model (paired ratios, with their spread)."""
    rows = {r.get("model"): r for r in timed.get("rows") or [] if isinstance(r, dict)}
    versus = {name: (int8_speed(timed.get(key))[1] if timed.get(key) is not None else MISSING)
              for name, key in VERSUS.items()}
    threads = timed.get("threads")
    return markdown_table([f"batch {batch}, {threads} thread{'s' * (threads != 1)}", "latency",
                           "int8 is faster by"],
                          [[label, latency(rows.get(name)), versus.get(name, "")] for name, label in MODELS.items()])


def _kind(name: str) -> str:
    """The layer a kernel computes, from its operator's name."""
    return next((kind for key, kind in (("conv", "convolution"), ("pool", "max-pool")) if key in name.lower()),
                "fully connected")


def kernel_rows(kernels: dict) -> list[list[str]]:
    """The ``pt2e.kernels`` entry as table rows: each layer (by the shape it receives) with its time per forward
    pass in the compiled fp32 model and in the int8 model, int8's speed-up on it and its share of fp32's time;
    then everything else and the whole. A layer Inductor fused into its own code (fp32's max-pools) has no row of
    its own in that model: its time is in "everything else"."""
    fp32, int8 = kernels.get("fp32_compiled") or {}, kernels.get("int8") or {}
    per_model = []
    for profile in (fp32, int8):
        by_shape: dict[tuple, tuple[str, float]] = {}
        for k in profile.get("kernels") or []:
            shape = tuple(k.get("shape") or ())
            kind, ms = by_shape.get(shape, (_kind(k.get("name", "")), 0.0))
            by_shape[shape] = (kind, ms + (number(k.get("ms")) or 0.0))
        per_model.append(by_shape)
    total = number(fp32.get("total_ms"))
    shapes = list(dict.fromkeys([*per_model[1], *per_model[0]]))

    def row(label: str, a: float | None, b: float | None) -> list[str]:
        ms = [FUSED if v is None else f"{v:.2f}" for v in (a, b)]
        share = "" if a is None or not total else percent(a / total, 0)
        return [label, *ms, times(ratio_of(a, b)) if a and b else "", share]

    rows = [row(f"{(per_model[1].get(s) or per_model[0].get(s))[0]}, input {'x'.join(map(str, s))}",
                (per_model[0].get(s) or (None, None))[1], (per_model[1].get(s) or (None, None))[1]) for s in shapes]
    rows.append(row("everything else (Inductor's code: quantize/dequantize, fused ops; Python)",
                    number(fp32.get("other_ms")), number(int8.get("other_ms"))))
    rows.append(row("whole forward pass", total, number(int8.get("total_ms"))))
    return rows


def _int8_case(pt2e: dict) -> str:
    """What the int8 case the file records means for the speed-up (VNNI, saturating AVX2, or unknown)."""
    if pt2e.get("vnni") is True:
        return (f"int8 products are added straight into int32: int8 can approach {INT8_GAIN:g}x compiled fp32 (the "
                "table below says where the time goes)")
    if pt2e.get("saturates") is True:
        return ("no VNNI: pairs of 8-bit products are added in int16 with saturation, at about half VNNI's rate, "
                "so int8 gains less; with 8-bit activations (reduce_range off) a saturated pair comes out too small, "
                "7-bit activations (reduce_range) avoid it at the cost of one bit; the VNNI target does not apply")
    return MISSING


def tables(q: dict) -> list[str]:
    """The accuracy of each quantized teacher; the int8 kernels' speed, in wall-clock and in CPU time."""
    fp32 = number(q.get("fp32_accuracy"))
    models = [["fp32 teacher", percent(fp32, 2), ""],
              ["int8 post-training (W8A8, simulated)", percent(number(get(q, "ptq.int8")), 2), ""],
              ["int4 post-training (W4A4, simulated)", percent(number(get(q, "ptq.int4")), 2), ""],
              ["int4 quantization-aware training",
               percent(first(central(get(q, "qat.int4_per_seed")), get(q, "qat.int4")), 2),
               runs(get(q, "qat.int4_per_seed"))],
              ["binary middle layers, trained",
               percent(first(central(get(q, "qat.binary_per_seed")), get(q, "qat.binary")), 2),
               runs(get(q, "qat.binary_per_seed"))],
              ["int8 kernels (PT2E, compiled)", percent(number(get(q, "pt2e.accuracy")), 2), ""]]
    result = [markdown_table(["model", "test accuracy", "runs"], models)]
    pt2e = q.get("pt2e") or {}
    for key, timed in pt2e.items():
        if key.isdigit() and isinstance(timed, dict):  # one table per thread count
            result.append(_int8_speed_table(timed, pt2e.get("batch_size")))
    if pt2e:
        result.append(markdown_table(["int8 case measured", "value"], [
            ["oneDNN int8 kernel (library/instruction set)", str(pt2e.get("int8_kernel", MISSING))],
            ["products added straight into int32 (VNNI, AMX)", str(pt2e.get("vnni", MISSING))],
            ["pairs of products saturated in int16 (no VNNI)", str(pt2e.get("saturates", MISSING))],
            ["7-bit activations (reduce_range)", str(pt2e.get("reduce_range", MISSING))],
            ["what this case means", _int8_case(pt2e)],
            ["file size, fp32 / int8", times(number(pt2e.get("size_ratio")))]]))
    if isinstance(pt2e.get("kernels"), dict):
        result.append(markdown_table(
            [f"where the time goes (batch {pt2e.get('batch_size')}, 1 thread, one profiled run)", "fp32 compiled, ms",
             "int8, ms", "int8 faster by", "share of fp32 time"], kernel_rows(pt2e["kernels"])))
    return result


def _points(q: dict) -> list[Point]:
    """The int8 PT2E teacher against compiled and against eager fp32."""
    if not isinstance(q.get("pt2e"), dict):
        return []
    return [Point(name, number(get(q, "pt2e.accuracy")), number(get(q, "pt2e.fp32_accuracy")),
                  number(get(q, "pt2e.size_ratio")), int8_speed(get(q, f"pt2e.{key}"))[0])
            for name, key in (("int8 PT2E vs compiled fp32", "speedup_vs_compiled"),
                              ("int8 PT2E vs eager fp32", "speedup_vs_eager"))]


def _ptq_int8(q: dict) -> Evidence:
    fp32, int8 = number(q.get("fp32_accuracy")), number(get(q, "ptq.int8"))
    if fp32 is None or int8 is None:
        return None
    return f"{percent(int8)} against {percent(fp32)} ({points(int8 - fp32)})", fp32 - int8 <= 0.005


def _pt2e_accuracy(q: dict) -> Evidence:
    fp32, int8 = number(get(q, "pt2e.fp32_accuracy")), number(get(q, "pt2e.accuracy"))
    if fp32 is None or int8 is None:
        return None
    return f"{percent(int8)} against {percent(fp32)} ({points(int8 - fp32)})", fp32 - int8 <= 0.005


def _pt2e_speed(q: dict) -> Evidence:
    compiled = get(q, "pt2e.speedup_vs_compiled")
    if compiled is None:
        return None
    eager = int8_speed(get(q, "pt2e.speedup_vs_eager"))[1] if get(q, "pt2e.speedup_vs_eager") else MISSING
    return _with(speed_evidence(compiled, lambda s: s > 1, prefix="against compiled fp32: ", work_ratio=1.0,
                                gain=INT8_GAIN),
                 f"; against eager fp32: {eager} (batch {get(q, 'pt2e.batch_size')}, {get(q, 'pt2e.threads')} threads)")


def _with(evidence: Evidence, more: str) -> Evidence:
    """``evidence`` with ``more`` added to its text."""
    return None if evidence is None else (evidence[0] + more, evidence[1])


def _pt2e_target(q: dict) -> Evidence:
    """The int8 target on a VNNI CPU; not measured on a CPU without VNNI (the file's tables give its ratio)."""
    if get(q, "pt2e.vnni") is not True:
        return None
    others = "; ".join(f"{key} thread(s): {int8_speed(get(q, f'pt2e.{key}.speedup_vs_compiled'))[1]}"
                       for key in get(q, "pt2e") if key.isdigit() and key != str(get(q, "pt2e.threads")))
    return _with(speed_evidence(get(q, "pt2e.speedup_vs_compiled"), lambda s: s >= INT8_TARGET,
                                prefix=f"{get(q, 'pt2e.int8_kernel')}, {get(q, 'pt2e.threads')} threads: ",
                                work_ratio=1.0, gain=INT8_GAIN), f" ({others})" if others else "")


def _pt2e_size(q: dict) -> Evidence:
    ratio = number(get(q, "pt2e.size_ratio"))
    return None if ratio is None else (f"{times(ratio)} smaller", ratio >= 3.5)


SECTION = Section(
    "quantization", tables, points=_points, x_label="bits per value", aggressive="lower", marker="D",
    claims=(
        Claim("8-bit post-training quantization of the teacher costs at most half a point of accuracy.", _ptq_int8),
        Claim("On real int8 kernels (PT2E, compiled) the teacher keeps its fp32 accuracy within half a point.",
              _pt2e_accuracy),
        Claim("int8 kernels are faster than fp32 compiled the same way, the best fp32 baseline, and not only faster "
              "than eager fp32.", _pt2e_speed),
        Claim(f"On a CPU with VNNI, int8 kernels are at least {INT8_TARGET:g} times faster than compiled fp32 at "
              "batch 256 (VNNI's limit is about 4x).", _pt2e_target),
        Claim("The int8 model's file is about four times smaller (3.5x or more).", _pt2e_size),
    ))
