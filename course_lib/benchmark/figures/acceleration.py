"""The ``acceleration`` section as the report reads it: its tables, the book's claims, its trade-off points."""
from __future__ import annotations

from ..._tables import markdown_table
from ..results import FREE_POINTS, MISSING, difference, get, number, percent, points, times
from .section import Claim, Evidence, Point, Section

LOW_RANK = (("low_rank", "LeNet-300-100"), ("low_rank_teacher", "teacher"))  # key, model


def tables(a: dict) -> list[str]:
    """Threads, batching, DDP, folding and compilation; low rank on each model."""
    result = []
    if isinstance(a.get("threads"), list):
        result.append(markdown_table(["intra-op threads", "median (ms)", "speed-up"], [
            [r.get("threads"), f"{r.get('median_ms', 0):.2f}", times(number(r.get("speedup")))] for r in a["threads"]]))
    if isinstance(a.get("batching"), list):
        result.append(markdown_table(["batch size", "median per call (ms)", "samples per second"], [
            [r.get("batch_size"), f"{r.get('median_ms', 0):.2f}", f"{r.get('samples_per_s', 0):,.0f}"]
            for r in a["batching"]]))
    rows = [["DDP, 2 processes: largest weight difference from one process",
             MISSING if number(get(a, "ddp.max_param_diff")) is None else f"{get(a, 'ddp.max_param_diff'):.1e}"],
            ["Conv-BatchNorm folding: largest logit difference",
             MISSING if number(get(a, "fusion.max_abs_diff")) is None else f"{get(a, 'fusion.max_abs_diff'):.1e}"],
            [f"Conv-BatchNorm folding: speed-up at batch {get(a, 'fusion.batch_size')} / at batch 1",
             f"{times(number(get(a, 'fusion.speedup')))} / {times(number(get(a, 'fusion.speedup_batch1')))}"],
            [f"torch.compile: speed-up at batch {get(a, 'compile.batch_size')} (compiling took "
             f"{get(a, 'compile.compile_seconds')} s)", times(number(get(a, "compile.speedup")))]]
    result.append(markdown_table(["measurement", "value"], rows))
    low_rows = []
    for key, name in (("low_rank", "LeNet-300-100"), ("low_rank_teacher", "teacher, 3136 -> 256 layer")):
        low = a.get(key) or {}
        if low:
            low_rows.append([name, low.get("rank"), f"{percent(number(low.get('accuracy')))} "
                             f"({percent(number(low.get('dense_accuracy')))})",
                             times(number(low.get("params_ratio"))), times(number(low.get("speedup"))),
                             times(number(low.get("speedup_batch1")))])
    if low_rows:
        result.append(markdown_table(["low rank", "rank (chosen on validation)", "test accuracy (dense)",
                                      "fewer parameters", f"faster at batch {get(a, 'low_rank.batch_size')}",
                                      "faster at batch 1"], low_rows))
    return result


def _points(a: dict) -> list[Point]:
    """Conv-BN folding, and low rank on each model."""
    found = []
    if isinstance(a.get("fusion"), dict):
        found.append(Point("Conv-BN folding", number(get(a, "fusion.accuracy")),
                           number(get(a, "fusion.dense_accuracy")), number(get(a, "fusion.params_ratio")),
                           number(get(a, "fusion.speedup"))))
    for key, model in LOW_RANK:
        if isinstance(a.get(key), dict):
            found.append(Point(f"low rank {get(a, f'{key}.rank')}, {model}", number(get(a, f"{key}.accuracy")),
                               number(get(a, f"{key}.dense_accuracy")), number(get(a, f"{key}.params_ratio")),
                               number(get(a, f"{key}.speedup"))))
    return found


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
    if speed is None or change is None:
        return None
    return (f"rank {low.get('rank')}: {times(speed)} faster at batch {low.get('batch_size')}, "
            f"{points(change)}"), speed > 1 and -change <= FREE_POINTS


def _low_rank_amdahl(a: dict) -> Evidence:
    low = a.get("low_rank_teacher") or {}
    ratio, speed = number(low.get("params_ratio")), number(low.get("speedup"))
    if ratio is None or speed is None:
        return None
    return f"rank {low.get('rank')}: {times(ratio)} fewer parameters, {times(speed)} faster", ratio > 2 * speed


def _compile(a: dict) -> Evidence:
    speed = number(get(a, "compile.speedup"))
    if speed is None:
        return None
    return f"{times(speed)} at batch {get(a, 'compile.batch_size')}", speed > 1


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
    ))
