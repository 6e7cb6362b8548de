"""The one timing helper: latency measured side by side, with the context it was measured in and a verdict.

A time taken while anything else runs on the machine is wrong by up to 10x, in either direction for a ratio.
:func:`compare_latency` therefore measures every variant in the same interleaved rounds, records wall clock and
process CPU time per call, the load average before and after, the cores and the CPU's int8 capabilities, and
judges each measurement (:data:`RULES`): a flagged one is measured again, and if it stays flagged it is returned
with ``reliable=False`` and the reason in ``why``. :func:`speedup` gives a ratio with its paired-round interval;
neither it nor a :class:`Latency` prints an unreliable figure as a fact.

Reliability rules (``compare_latency``'s keyword defaults; ``T`` threads in use, ``C = os.cpu_count()`` cores):

1. **Load**: the 1-minute load average ``L``, read before the warm-up and after the last round, satisfies
   ``L - T <= max(C - T, load_slack)`` (default ``load_slack=0.5``), i.e. ``L <= max(C, T + load_slack)``:
   the load of other processes (``L`` minus this process's share, counted as its ``T`` threads, the most it
   adds) must fit on the cores left free, and a background of ``load_slack`` is tolerated when ``T = C``.
   The load average cannot tell this process's recent work (a training cell just before) from others', and
   it moves slowly (an exponential average over 60 s, updated every 5 s): a timing of a few seconds barely
   moves it. So this rule only catches a machine that was busy around the measurement, and it errs towards
   passing; rule 2 sees what happened during the measurement itself.
2. **Descheduling**: on the CPU, ``sum(CPU time) / sum(wall time) >= min_cpu_ratio`` (default 0.9) over a
   variant's calls. A forward pass keeps at least one thread of the process running from start to end, so the
   process CPU time of a call (``time.process_time``: all threads; ``time.thread_time`` would miss the
   intra-op worker threads and count the caller's waits at their barriers as lost time) is at least its wall
   time unless every thread was off the CPU for a while: descheduled by other work (with several threads, one
   of them descheduled while another runs is not seen here; rules 1 and 3 are left for that). Not applied on CUDA,
   where the CPU legitimately waits for the GPU; pass ``min_cpu_ratio=0`` for a callable that sleeps or waits.
3. **Spread**: ``p90 / p10 <= max_spread`` (default 1.5) of each variant's wall times: a steady kernel on a
   quiet machine varies by a few tens of percent at most; a wider spread means interference came and went.

Each flagged comparison is measured again, up to ``retries`` times (default 2); the last attempt is returned.

**The allocator.** glibc's ``malloc`` gives each large block (above a threshold that it moves by itself, at most
32 MiB) fresh pages from the kernel and hands them back when the block is freed. A model whose activations cross
that threshold then pays, on every call, for the kernel zeroing its activations' pages (the eager teacher at batch
256: about 14,000 page faults and 30% of its time; the compiled one at batch 1,000: 37,000 and 40%), or not,
depending on what the process allocated before: the same model measures differently in two processes. So
:func:`compare_latency` and :func:`~course_lib.acceleration.kernel_times` first call :func:`steady_allocator`,
which fixes both thresholds for the process, as a deployment does with jemalloc or tcmalloc; each
:class:`Context` records ``allocator``.
"""
from __future__ import annotations

import ctypes
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from ._validation import check_int, check_module, check_number, check_tensor, reads_model
from .training import evaluating, model_device

INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "avx512f", "avx2")
"""The ``/proc/cpuinfo`` flags that decide which x86 int8 kernels run (VNNI: 32-bit accumulation; AVX2 alone:
16-bit sums that saturate) and how fast."""

RULES = {"max_spread": 1.5, "min_cpu_ratio": 0.9, "load_slack": 0.5, "retries": 2}
"""The default thresholds of the reliability rules (see the module's docstring)."""

Variant = nn.Module | Callable[[torch.Tensor], Any]


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The x86 CPU's features as Linux's ``/proc/cpuinfo`` names them (``avx2``, ``avx512_vnni``, ...), from the text
    of ``/proc/cpuinfo`` (read when ``None``). Where that file is missing (Windows, macOS), those PyTorch's own checks
    know: AVX2, AVX-512 and AVX-512 VNNI. The one reader of the CPU's features in the course."""
    if cpuinfo is None:
        cpuinfo = _proc_cpuinfo()
        if not cpuinfo:
            found = {"sse4_1", "avx2"} if torch.cpu._is_avx2_supported() else set()
            found |= {"avx512f", "avx512bw", "avx512vl", "avx512dq"} if torch.cpu._is_avx512_supported() else set()
            found |= {"avx512_vnni"} if torch.cpu._is_vnni_supported() else set()
            return frozenset(found)
    line = next((line for line in cpuinfo.splitlines() if line.partition(":")[0].strip() == "flags"), "")
    return frozenset(line.partition(":")[2].split())


def cpu_info(cpuinfo: str | None = None) -> tuple[str, tuple[str, ...]]:
    """``(model name, int8 flags present)`` from the text of ``/proc/cpuinfo`` (read when ``None``; on a system
    without it, ``platform.processor()``). The flags are those of :data:`INT8_FLAGS` (see :func:`cpu_flags`), in
    that order."""
    text = _proc_cpuinfo() if cpuinfo is None else cpuinfo
    model = next((line.partition(":")[2].strip() for line in text.splitlines()
                  if line.partition(":")[0].strip() == "model name"), "")
    flags = cpu_flags(cpuinfo)
    return model or platform.processor(), tuple(f for f in INT8_FLAGS if f in flags)


@lru_cache(maxsize=1)
def _proc_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            return file.read()
    except OSError:
        return ""


def _cores() -> tuple[int, int]:
    """``(os.cpu_count(), cores this process may run on)``."""
    cores = os.cpu_count() or 1
    return cores, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores


STEADY_BYTES = 1 << 30
"""The block size from which :func:`steady_allocator` lets glibc map blocks of their own, and the free memory at the
top of the heap above which it gives memory back: 1 GiB, more than any activation of the course's models."""


@lru_cache(maxsize=1)
def steady_allocator() -> str:
    """Fix glibc's ``malloc`` thresholds for this process (``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` at
    :data:`STEADY_BYTES`), so that a large tensor freed and allocated again reuses the same pages instead of
    faulting in fresh ones on each call (see the module docstring). Once per process, and for the rest of it: a
    process that times models keeps the memory it freed (up to its peak use). Returns what holds, as
    :class:`Context` records it: ``"glibc, thresholds 1 GiB"``, or ``"default"`` where the C library is not glibc
    (macOS, Windows, musl) or refuses."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "default"
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    try:
        libc = ctypes.CDLL(None)
        done = libc.mallopt(m_mmap_threshold, STEADY_BYTES) == 1 and libc.mallopt(m_trim_threshold, STEADY_BYTES) == 1
    except (OSError, AttributeError):
        return "default"
    return f"glibc, thresholds {STEADY_BYTES >> 30} GiB" if done else "default"


@dataclass(frozen=True)
class Context:
    """Where and how one comparison was measured, shared by its variants.

    Loads are 1-minute load averages; ``cores`` is ``os.cpu_count()``, ``affinity`` the cores this process may
    use; ``capability`` is ``torch.backends.cpu.get_cpu_capability()`` (the ATen kernels in use: ``AVX512``,
    ``AVX2``, ``DEFAULT``); ``threads`` the most intra-op threads any variant used; ``device`` the devices the
    variants ran on (comma-separated); ``started`` an ISO UTC time; ``seconds`` the wall time of the attempt;
    ``attempt`` its number (1 = first measurement); ``allocator`` what :func:`steady_allocator` fixed
    (``"unrecorded"`` in a record made before it)."""

    load_before: float
    load_after: float
    cores: int
    affinity: int
    capability: str
    cpu_model: str
    cpu_flags: tuple[str, ...]
    torch_version: str
    threads: int
    device: str
    started: str
    seconds: float
    attempt: int
    allocator: str = "unrecorded"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_flags": list(self.cpu_flags)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Context:
        return cls(**{**data, "cpu_flags": tuple(data["cpu_flags"])})


def summary(values: list[float] | tuple[float, ...]) -> tuple[float, float, float]:
    """``(median, p10, p90)`` of ``values``; percentiles interpolate linearly between order statistics (as
    ``numpy.percentile``'s default), so they stay inside the data however few the values."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[0], deciles[-1]


class _Flagged:
    """``reliable`` and ``why`` of a figure from its ``problems``, the reliability rules it broke."""

    problems: tuple[str, ...]

    @property
    def reliable(self) -> bool:
        return not self.problems

    @property
    def why(self) -> str:
        """Why the figure is not reliable (``""`` when it is)."""
        return "; ".join(self.problems)


@dataclass(frozen=True)
class Latency(_Flagged):
    """Latency of one variant in a comparison: per-round times in milliseconds, in round order.

    ``wall_ms[r]`` and ``cpu_ms[r]`` are the wall clock (``time.perf_counter``) and process CPU time
    (``time.process_time``: all threads of the process, spin-waits included) of the call in measured round ``r``;
    ``threads`` and ``batch_size`` (the input's first dimension) are the variant's; ``run`` names the attempt of
    :func:`compare_latency` that measured it (variants with the same ``run`` have paired rounds);
    ``problems`` the broken rules (empty: reliable)."""

    name: str
    wall_ms: tuple[float, ...]
    cpu_ms: tuple[float, ...]
    threads: int
    batch_size: int
    context: Context
    run: str
    problems: tuple[str, ...] = field(default=())

    @property
    def repeats(self) -> int:
        return len(self.wall_ms)

    @property
    def median_ms(self) -> float:
        return summary(self.wall_ms)[0]

    @property
    def p10_ms(self) -> float:
        return summary(self.wall_ms)[1]

    @property
    def p90_ms(self) -> float:
        return summary(self.wall_ms)[2]

    @property
    def cpu_median_ms(self) -> float:
        return summary(self.cpu_ms)[0]

    @property
    def spread(self) -> float:
        """``p90 / p10`` of the wall times."""
        return self.p90_ms / self.p10_ms

    @property
    def cpu_wall_ratio(self) -> float:
        """``sum(cpu_ms) / sum(wall_ms)``: about 1 or more when never descheduled (up to ``threads``)."""
        return sum(self.cpu_ms) / sum(self.wall_ms)

    def __str__(self) -> str:
        if not self.reliable:
            return f"not measured reliably: {self.why}"
        return (f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}; "
                f"CPU {self.cpu_median_ms:.3f} ms; batch {self.batch_size}, "
                f"{self.threads} thread{'s' * (self.threads != 1)}, {self.repeats} rounds)")

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: the summary (``median_ms``, ``p10_ms``, ``p90_ms``, ``cpu_median_ms``, ``cpu_wall_ratio``,
        ``spread``, ``reliable``, ``why``) and everything :meth:`from_dict` needs (samples, context, run)."""
        return {"name": self.name, "median_ms": self.median_ms, "p10_ms": self.p10_ms, "p90_ms": self.p90_ms,
                "cpu_median_ms": self.cpu_median_ms, "cpu_wall_ratio": self.cpu_wall_ratio, "spread": self.spread,
                "repeats": self.repeats, "threads": self.threads, "batch_size": self.batch_size,
                "reliable": self.reliable, "why": self.why, "problems": list(self.problems), "run": self.run,
                "wall_ms": list(self.wall_ms), "cpu_ms": list(self.cpu_ms), "context": self.context.as_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Latency:
        return cls(data["name"], tuple(data["wall_ms"]), tuple(data["cpu_ms"]), data["threads"], data["batch_size"],
                   Context.from_dict(data["context"]), data["run"], tuple(data["problems"]))


@dataclass(frozen=True)
class Speedup(_Flagged):
    """How many times faster ``candidate`` is than ``baseline``: the median and p10/p90 of the per-round
    ratios ``baseline time / candidate time`` over ``rounds`` paired rounds.

    ``float(s)`` is the median; ``str(s)`` and ``format(s, spec)`` state it only when reliable, and otherwise say
    why it is not (``f"{s:.1f}x"`` gives ``"2.5x"`` or ``"not measured reliably: ...x"``)."""

    baseline: str
    candidate: str
    ratio: float
    p10: float
    p90: float
    rounds: int
    problems: tuple[str, ...] = field(default=())

    def __float__(self) -> float:
        return self.ratio

    def __str__(self) -> str:
        if not self.reliable:
            return f"not measured reliably: {self.why}"
        return f"{self.ratio:.2f}x (p10 {self.p10:.2f}, p90 {self.p90:.2f})"

    def __format__(self, spec: str) -> str:
        return format(self.ratio, spec) if spec and self.reliable else str(self)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": list(self.problems), "reliable": self.reliable, "why": self.why}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Speedup:
        return cls(data["baseline"], data["candidate"], data["ratio"], data["p10"], data["p90"], data["rounds"],
                   tuple(data["problems"]))


def load_problem(load_before: float, load_after: float, *, cores: int, threads: int, load_slack: float) -> str:
    """Rule 1: ``""`` if both loads satisfy ``load - threads <= max(cores - threads, load_slack)``, else why not."""
    allowed = max(cores, threads + load_slack)
    high = [f"{load:.1f} {when}" for load, when in ((load_before, "before"), (load_after, "after")) if load > allowed]
    if not high:
        return ""
    return (f"load {' and '.join(high)} timing on {cores} cores "
            f"({threads} thread{'s' * (threads != 1)} in use; at most {allowed:g} allowed)")


def speedup(baseline: Latency, candidate: Latency) -> Speedup:
    """How many times faster ``candidate`` is than ``baseline``, from the rounds of one :func:`compare_latency`.

    The rounds are interleaved, so round ``r``'s ratio ``baseline.wall_ms[r] / candidate.wall_ms[r]`` compares two
    calls made moments apart: a paired sample. The result is their median with p10/p90; it is reliable when both
    measurements are. ValueError if the two come from different runs (their rounds are not paired).
    """
    for value, name in ((baseline, "baseline"), (candidate, "candidate")):
        if not isinstance(value, Latency):
            raise TypeError(f"{name} must be a Latency from compare_latency, got {value!r:.80} "
                            f"({type(value).__name__})")
    if baseline.run != candidate.run or baseline.repeats != candidate.repeats:
        raise ValueError(f"baseline and candidate must come from one compare_latency call (paired rounds), got "
                         f"{baseline.name!r} from run {baseline.run} and {candidate.name!r} from run {candidate.run}")
    ratios = [b / c for b, c in zip(baseline.wall_ms, candidate.wall_ms, strict=True)]
    problems = tuple(dict.fromkeys(baseline.problems + candidate.problems))
    return Speedup(baseline.name, candidate.name, *summary(ratios), len(ratios), problems)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_inputs(example_input: object, names: list[str]) -> dict[str, torch.Tensor]:
    """Per-variant inputs from ``example_input`` (a tensor, or {name: tensor} naming every variant)."""
    if not isinstance(example_input, Mapping):
        return dict.fromkeys(names, check_tensor(example_input, "example_input", min_dim=1))
    if set(example_input) != set(names):
        raise ValueError(f"example_input must give the input of each of the models ({', '.join(map(repr, names))}), "
                         f"got {', '.join(map(repr, example_input)) or 'none'}")
    return {name: check_tensor(example_input[name], f"example_input[{name!r}]", min_dim=1) for name in names}


def _check_threads(threads: object, names: list[str]) -> dict[str, int]:
    """Per-variant intra-op threads from ``threads`` (None, an int, or {name: int} naming every variant)."""
    if threads is None:
        return dict.fromkeys(names, torch.get_num_threads())
    if not isinstance(threads, Mapping):
        return dict.fromkeys(names, check_int(threads, "threads", 1))
    if set(threads) != set(names):
        raise ValueError(f"threads must give the threads of each of the models ({', '.join(map(repr, names))}), "
                         f"got {', '.join(map(repr, threads)) or 'none'}")
    return {name: check_int(threads[name], f"threads[{name!r}]", 1) for name in names}


def _attempt(runners: dict[str, tuple[Callable, torch.Tensor, torch.device]], threads: dict[str, int],
             warmup: int, repeats: int, attempt: int, rules: dict[str, float],
             wall_clock: Callable[[], float], cpu_clock: Callable[[], float],
             read_load: Callable[[], tuple[float, ...]]) -> dict[str, Latency]:
    """One measurement of every variant: warm-up, then rounds whose order rotates by one variant per round."""
    names = list(runners)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = read_load()[0]
    begin = wall_clock()
    with torch.inference_mode():
        for round_ in range(warmup + repeats):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                run, x, device = runners[name]
                if torch.get_num_threads() != threads[name]:
                    torch.set_num_threads(threads[name])
                _sync(device)
                wall0, cpu0 = wall_clock(), cpu_clock()
                run(x)
                _sync(device)
                cpu1, wall1 = cpu_clock(), wall_clock()
                if round_ >= warmup:
                    wall[name].append((wall1 - wall0) * 1e3)
                    cpu[name].append((cpu1 - cpu0) * 1e3)
    seconds = wall_clock() - begin
    load_after = read_load()[0]
    cores, affinity = _cores()
    model_name, flags = cpu_info()
    used = max(threads.values())
    devices = sorted({str(device) for _, _, device in runners.values()})
    context = Context(load_before, load_after, cores, affinity, torch.backends.cpu.get_cpu_capability(), model_name,
                      flags, torch.__version__, used, ",".join(devices), started, seconds, attempt,
                      steady_allocator())
    load = load_problem(load_before, load_after, cores=cores, threads=used, load_slack=rules["load_slack"])
    shared = [load] if load else []
    run_id = uuid.uuid4().hex[:12]
    result = {}
    for name, (_, x, device) in runners.items():
        problems = shared + _variant_problems(name, wall[name], cpu[name], device, rules)
        result[name] = Latency(name, tuple(wall[name]), tuple(cpu[name]), threads[name], len(x), context, run_id,
                               tuple(problems))
    return result


def _variant_problems(name: str, wall_ms: list[float], cpu_ms: list[float], device: torch.device,
                      rules: dict[str, float]) -> list[str]:
    """Rules 2 (descheduling, on the CPU only) and 3 (spread) for one variant's times."""
    problems = []
    _, p10, p90 = summary(wall_ms)
    if p90 / p10 > rules["max_spread"]:
        problems.append(f"{name}: p90/p10 = {p90 / p10:.2f} > {rules['max_spread']:g}")
    ratio = sum(cpu_ms) / sum(wall_ms)
    if device.type == "cpu" and ratio < rules["min_cpu_ratio"]:
        problems.append(f"{name}: CPU/wall time = {ratio:.2f} < {rules['min_cpu_ratio']:g} (descheduled)")
    return problems


def compare_latency(models: Mapping[str, Variant], example_input: torch.Tensor | Mapping[str, torch.Tensor], *,
                    warmup: int = 10, repeats: int = 50, threads: int | Mapping[str, int] | None = None,
                    retries: int = RULES["retries"], max_spread: float = RULES["max_spread"],
                    min_cpu_ratio: float = RULES["min_cpu_ratio"], load_slack: float = RULES["load_slack"],
                    wall_clock: Callable[[], float] = time.perf_counter,
                    cpu_clock: Callable[[], float] = time.process_time,
                    read_load: Callable[[], tuple[float, ...]] = os.getloadavg) -> dict[str, Latency]:
    """Latency of each variant on ``example_input`` ``(N, ...)``, measured side by side and judged.

    Each variant is a module (run in eval mode, its train/eval modes restored afterwards; the input is moved to
    its device) or a callable taking the input (run on the input's device). ``example_input`` is one input for
    all, or ``{name: input}`` for each (to compare batch sizes in the same rounds). ``warmup`` rounds, then
    ``repeats`` measured rounds; each round calls every variant once, the order rotated by one per round (A B,
    B A, ...) so that neither drift nor going first favours one. Everything runs under
    ``torch.inference_mode()``, with CUDA synchronised around each call, and with ``threads`` intra-op threads:
    one count for all, ``{name: count}`` for each (set between calls, e.g. to compare 1 and 2 threads), or
    ``None`` (the current setting); the setting is restored afterwards.

    Each result carries its :class:`Context` and a verdict: a comparison breaking a rule of the module's docstring
    (thresholds ``max_spread``, ``min_cpu_ratio``, ``load_slack``) is measured again up to ``retries`` times; the
    last attempt is returned, flagged ``reliable=False`` with the reasons in ``why`` if it still breaks one.
    ``wall_clock``, ``cpu_clock`` (seconds) and ``read_load`` (like ``os.getloadavg``) can be replaced, for tests.

    Returns:
        ``{name: Latency}`` in the order of ``models``; :func:`speedup` turns two of them into a ratio.
    """
    if not isinstance(models, Mapping):
        raise TypeError(f"models must be a dict {{name: model}}, got {type(models).__name__}")
    if not models:
        raise ValueError("models must name at least one model, got an empty dict")
    check_int(warmup, "warmup", 0)
    check_int(repeats, "repeats", 1)
    check_int(retries, "retries", 0)
    rules = {"max_spread": check_number(max_spread, "max_spread", 1.0),
             "min_cpu_ratio": check_number(min_cpu_ratio, "min_cpu_ratio", 0.0),
             "load_slack": check_number(load_slack, "load_slack", 0.0)}
    for name, model in models.items():
        if not callable(model):
            raise TypeError(f"models[{name!r}] must be a torch.nn.Module or a callable, got {model!r:.80} "
                            f"({type(model).__name__})")
    inputs = _check_inputs(example_input, list(models))
    per_variant = _check_threads(threads, list(models))
    steady_allocator()
    previous = torch.get_num_threads()
    try:
        with ExitStack() as modes:
            runners = {}
            for name, model in models.items():
                if isinstance(model, nn.Module):
                    modes.enter_context(evaluating(model))
                    device = model_device(model)
                else:
                    device = inputs[name].device
                runners[name] = (model, inputs[name].to(device), device)
            for attempt in range(1, retries + 2):
                result = _attempt(runners, per_variant, warmup, repeats, attempt, rules, wall_clock, cpu_clock,
                                  read_load)
                if all(latency.reliable for latency in result.values()):
                    break
        return result
    finally:
        torch.set_num_threads(previous)


@reads_model
def measure_latency(model: nn.Module, example_input: torch.Tensor, *, warmup: int = 10, repeats: int = 50,
                    threads: int | None = None, **rules: Any) -> Latency:
    """Latency of ``model`` alone on ``example_input`` (see :func:`compare_latency`, which takes ``rules``).
    To compare models, measure them together with :func:`compare_latency`: only its rounds are paired."""
    return compare_latency({"model": check_module(model)}, example_input, warmup=warmup, repeats=repeats,
                           threads=threads, **rules)["model"]


def timing_record(baseline: Latency, candidate: Latency) -> dict[str, Any]:
    """A speed-up as ``benchmark.json`` stores it: ``speedup`` (the median paired ratio ``baseline / candidate``),
    ``p10``/``p90`` of the ratios, ``reliable`` and ``why`` (:func:`speedup`); per variant (``baseline``,
    ``candidate``) its ``name``, ``median_ms``, ``p10_ms``, ``p90_ms``, ``spread`` (p90/p10), ``cpu_wall_ratio``,
    ``threads`` and ``batch_size``; and the ``context`` it was measured in (load before and after, cores, the ATen
    ``capability``, the CPU's model and int8 flags, time, attempt). Readers take ``record["speedup"]``, and state
    it only when ``record["reliable"]`` (:func:`course_lib.benchmark.results.speedup_of`)."""
    s = speedup(baseline, candidate)

    def variant(latency: Latency) -> dict[str, Any]:
        return {"name": latency.name, "median_ms": latency.median_ms, "p10_ms": latency.p10_ms,
                "p90_ms": latency.p90_ms, "spread": latency.spread, "cpu_wall_ratio": latency.cpu_wall_ratio,
                "threads": latency.threads, "batch_size": latency.batch_size}

    return {"speedup": s.ratio, "p10": s.p10, "p90": s.p90, "rounds": s.rounds, "reliable": s.reliable,
            "why": s.why, "baseline": variant(baseline), "candidate": variant(candidate),
            "context": baseline.context.as_dict()}
