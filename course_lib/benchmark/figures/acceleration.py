"""The ``acceleration`` section as the report reads it: its tables, the book's claims, its trade-off points."""
from __future__ import annotations

from ..._tables import markdown_table
from ..results import FREE_POINTS, MISSING, difference, get, latency, number, percent, points, speed, speedup_of, times
from .section import Claim, Evidence, Point, Section, plausible_speedup, speed_evidence

LOW_RANK = (("low_rank", "LeNet-300-100"), ("low_rank_teacher", "teacher"))  # key, model


def _measured(a: dict, key: str) -> dict:
    """The ``threads`` or ``batching`` entry as a dict with ``rows``; a file written before timings carried their
    spread and load stored the bare list of rows: its rows read as not measured reliably (:func:`latency`)."""
    entry = a.get(key)
    return {"rows": entry} if isinstance(entry, list) else entry if isinstance(entry, dict) else {}


def tables(a: dict) -> list[str]:
    """Threads, batching, DDP, folding and compilation; low rank on each model. Every time and speed-up with its
    spread, or why it was not measured reliably."""
    result = []
    threads = _measured(a, "threads")
    if isinstance(threads.get("rows"), list):
        top = max((r.get("threads", 0) for r in threads["rows"]), default=0)
        _, said = plausible_speedup(threads.get("speedup"), threads=top)
        result.append(markdown_table(
            ["intra-op threads" + (f" (batch {threads['batch_size']}, {threads.get('cores')} cores)"
                                   if "batch_size" in threads else ""), "latency",
             "speed-up over one thread"],
            [[r.get("threads"), latency(r), said if r.get("threads") == top else ""] for r in threads["rows"]]))
    batching = _measured(a, "batching")
    if isinstance(batching.get("rows"), list):
        result.append(markdown_table(["batch size (one thread)", "latency per call", "samples per second"], [
            [r.get("batch_size"), latency(r), f"{r['samples_per_s']:,.0f}" if r.get("reliable") is True
             and number(r.get("samples_per_s")) is not None else "not measured reliably"]
            for r in batching["rows"]]))
    rows = [["DDP, 2 processes: largest weight difference from one process",
             MISSING if number(get(a, "ddp.max_param_diff")) is None else f"{get(a, 'ddp.max_param_diff'):.1e}"],
            ["Conv-BatchNorm folding: largest logit difference",
             MISSING if number(get(a, "fusion.max_abs_diff")) is None else f"{get(a, 'fusion.max_abs_diff'):.1e}"],
            [f"Conv-BatchNorm folding: speed-up at batch {get(a, 'fusion.batch_size')}",
             speed(get(a, "fusion.speedup"))],
            ["Conv-BatchNorm folding: speed-up at batch 1", speed(get(a, "fusion.speedup_batch1"))],
            [f"torch.compile: speed-up at batch {get(a, 'compile.batch_size')} (compiling took "
             f"{get(a, 'compile.compile_seconds')} s)", speed(get(a, "compile.speedup"))]]
    result.append(markdown_table(["measurement", "value"], rows))
    low_rows = []
    for key, name in (("low_rank", "LeNet-300-100"), ("low_rank_teacher", "teacher, 3136 -> 256 layer")):
        low = a.get(key) or {}
        if low:
            low_rows.append([name, low.get("rank"), f"{percent(number(low.get('accuracy')))} "
                             f"({percent(number(low.get('dense_accuracy')))})",
                             times(number(low.get("params_ratio"))), times(number(low.get("macs_ratio"))),
                             plausible_speedup(low.get("speedup"), work_ratio=number(low.get("macs_ratio")))[1],
                             speed(low.get("speedup_batch1"))])
    if low_rows:
        result.append(markdown_table(["low rank", "rank (chosen on validation)", "test accuracy (dense)",
                                      "fewer parameters", "fewer multiply-accumulates",
                                      f"faster at batch {get(a, 'low_rank.batch_size')}", "faster at batch 1"],
                                     low_rows))
    return result


def _points(a: dict) -> list[Point]:
    """Conv-BN folding, and low rank on each model."""
    found = []
    if isinstance(a.get("fusion"), dict):
        found.append(Point("Conv-BN folding", number(get(a, "fusion.accuracy")),
                           number(get(a, "fusion.dense_accuracy")), number(get(a, "fusion.params_ratio")),
                           speedup_of(get(a, "fusion.speedup"))))
    for key, model in LOW_RANK:
        if isinstance(a.get(key), dict):
            found.append(Point(f"low rank {get(a, f'{key}.rank')}, {model}", number(get(a, f"{key}.accuracy")),
                               number(get(a, f"{key}.dense_accuracy")), number(get(a, f"{key}.params_ratio")),
                               plausible_speedup(get(a, f"{key}.speedup"),
                                                 work_ratio=number(get(a, f"{key}.macs_ratio")))[0]))
    return found


def _ddp(a: dict) -> Evidence:
    diff = number(get(a, "ddp.max_param_diff"))
    return None if diff is None else (f"largest weight difference {diff:.1e}", diff < 1e-5)


def _fold_exact(a: dict) -> Evidence:
    diff = number(get(a, "fusion.max_abs_diff"))
    return None if diff is None else (f"largest logit difference {diff:.1e}", diff < 1e-4)


def _fold_speed(a: dict) -> Evidence:
    batch, batch1 = get(a, "fusion.speedup"), get(a, "fusion.speedup_batch1")
    if batch is None:
        return None
    work = number(get(a, "fusion.macs_ratio"))
    speed_b, text_b = plausible_speedup(batch, work_ratio=work)
    speed_1, text_1 = plausible_speedup(batch1, work_ratio=work)
    text = f"{text_b} at batch {get(a, 'fusion.batch_size')}; {text_1} at batch 1"
    if speed_b is None or (batch1 is not None and speed_1 is None):
        return text, None
    return text, speed_b >= 0.95 and (speed_1 is None or speed_1 >= 0.95)


def _low_rank_pays(a: dict) -> Evidence:
    low = a.get("low_rank") or {}
    change = difference(low.get("accuracy"), low.get("dense_accuracy"))
    if change is None:
        return None
    return speed_evidence(low.get("speedup"), lambda s: s > 1 and -change <= FREE_POINTS,
                          prefix=f"rank {low.get('rank')}, {points(change)}: ",
                          work_ratio=number(low.get("macs_ratio")))


def _low_rank_amdahl(a: dict) -> Evidence:
    low = a.get("low_rank_teacher") or {}
    ratio = number(low.get("params_ratio"))
    if ratio is None:
        return None
    return speed_evidence(low.get("speedup"), lambda s: ratio > 2 * s,
                          prefix=f"rank {low.get('rank')}: {times(ratio)} fewer parameters; speed-up: ",
                          work_ratio=number(low.get("macs_ratio")))


def _compile(a: dict) -> Evidence:
    return speed_evidence(get(a, "compile.speedup"), lambda s: s > 1,
                          prefix=f"at batch {get(a, 'compile.batch_size')}: ")


def _threads(a: dict) -> Evidence:
    threads = _measured(a, "threads")
    rows = threads.get("rows") if isinstance(threads.get("rows"), list) else []
    top = max((r.get("threads", 0) for r in rows), default=0)
    cores = number(threads.get("cores"))
    if top < 2 or cores is None or cores < top:
        return None
    return speed_evidence(threads.get("speedup"), lambda s: s > 1,
                          prefix=f"{top} threads at batch {threads.get('batch_size')}: ", threads=top)


SECTION = Section(
    "acceleration", tables, points=_points, marker="^",
    claims=(
        Claim("Data-parallel training on 2 processes gives the weights that one process gives on the same batches, "
              "up to float rounding (less than 1e-5).", _ddp),
        Claim("Folding BatchNorm into the layers before it changes the logits only by float rounding (less than "
              "1e-4).", _fold_exact),
        Claim("Folding BatchNorm costs no time (at least 0.95x at both batch sizes).", _fold_speed),
        Claim("Low rank pays where the Linear layers are the work: LeNet-300-100 at the rank chosen on validation is "
              "faster and within one point of accuracy.", _low_rank_pays),
        Claim("On the teacher, whose convolutions do most of the arithmetic, low rank shrinks the parameters more "
              "than twice as much as the latency (Amdahl's law).", _low_rank_amdahl),
        Claim("torch.compile makes the teacher faster than eager PyTorch.", _compile),
        Claim("Two intra-op threads on two free cores make the teacher faster than one thread at batch 64.",
              _threads),
    ))
