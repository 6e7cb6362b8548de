"""The ``quantization`` section as the report reads it: its tables, the book's claims, its trade-off points."""
from __future__ import annotations

from ..._tables import markdown_table
from ..results import MISSING, central, first, get, number, percent, points, runs, times
from .section import Claim, Evidence, Point, Section


def _int8_speed_table(stats: dict, header: list[str], extra: list[list[str]] | None = None) -> str:
    """The times of fp32 eager, fp32 compiled and int8 (``stats``: a ``pt2e`` entry or its ``cpu_1thread``)."""
    def ms(key: str) -> str:
        return MISSING if number(stats.get(key)) is None else f"{stats[key]:.1f} ms"
    return markdown_table(header, [
        ["fp32, eager PyTorch", ms("fp32_eager_ms"), times(number(stats.get("speedup_vs_eager")))],
        ["fp32, compiled (torch.compile, freezing)", ms("fp32_compiled_ms"),
         times(number(stats.get("speedup_vs_compiled")))],
        ["int8, PT2E, compiled", ms("int8_ms"), ""], *(extra or [])])


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
    if pt2e:
        batch = f"batch {pt2e.get('batch_size')}"
        result.append(_int8_speed_table(pt2e, [f"{batch}, {pt2e.get('threads')} thread(s)", "median",
                                               "int8 is faster by"],
                                        [["file size, fp32 / int8", "", times(number(pt2e.get("size_ratio")))]]))
        if pt2e.get("cpu_1thread"):  # CPU time per call on one thread, which other processes do not inflate
            result.append(_int8_speed_table(pt2e["cpu_1thread"], [f"{batch}, CPU time per call, 1 thread", "mean",
                                                                  "int8 is faster by"]))
    return result


def _points(q: dict) -> list[Point]:
    """The int8 PT2E teacher against compiled and against eager fp32."""
    if not isinstance(q.get("pt2e"), dict):
        return []
    return [Point(name, number(get(q, "pt2e.accuracy")), number(get(q, "pt2e.fp32_accuracy")),
                  number(get(q, "pt2e.size_ratio")), number(get(q, f"pt2e.{key}")))
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
    compiled, eager = number(get(q, "pt2e.speedup_vs_compiled")), number(get(q, "pt2e.speedup_vs_eager"))
    if compiled is None:
        return None
    batch, cpu = get(q, "pt2e.batch_size"), number(get(q, "pt2e.cpu_1thread.speedup_vs_compiled"))
    evidence = (f"{times(compiled)} against compiled fp32, {times(eager)} against eager fp32"
                + (f" (batch {batch})" if batch else "")
                + (f"; CPU time on one thread: {times(cpu)} against compiled fp32" if cpu is not None else ""))
    return evidence, compiled > 1


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
        Claim("The int8 model's file is about four times smaller (3.5x or more).", _pt2e_size),
    ))
