"""The course benchmark: every technique measured on this machine, in one JSON file.

Each technique has a section module ``course_lib.benchmark.<section>`` (listed once, with how its figures read,
in :data:`course_lib.benchmark.figures.REGISTRY`) with a function
``run(quick: bool = False, seeds: int = 3) -> dict`` returning JSON-serializable figures (the keys
are documented in that module). :func:`run_section` imports a section lazily, runs it, and adds
``seconds`` (wall-clock time of the section) and ``machine`` (:func:`machine_info`: what it ran on, when, and
at what load); it validates
``seeds`` for every section. Speed figures
inside a section are paired ratios of latencies measured side by side in the same run
(:func:`course_lib.timing.compare_latency`), stored with their spread, load and CPU capability
(:func:`course_lib.timing.timing_record`); absolute times from different runs are never compared.

Command line (see ``python -m course_lib.benchmark --help``)::

    python -m course_lib.benchmark [--out results.json] [--only SECTION ...] [--seeds N] [--quick]
"""
from __future__ import annotations

import importlib
import os
import platform
import time
import traceback
from datetime import UTC, datetime
from typing import Any

import torch

from .._validation import check_int, check_names
from ..timing import cpu_info
from .figures import REGISTRY

SECTIONS = tuple(REGISTRY)  # in the order they run: each has a runner module here and its module in figures/


def machine_info() -> dict[str, Any]:
    """The machine a section ran on: torch and Python versions, intra-op threads, CPU model and count, the ATen
    kernels in use (``capability``: ``torch.backends.cpu.get_cpu_capability()``), the int8 flags of the CPU
    (:data:`course_lib.timing.INT8_FLAGS` it has), the kernel an int8 ``Linear`` runs here (``int8_kernel``:
    ``"library/isa"``, :func:`course_lib.quantization.kernels.int8_kernel`, or why it cannot say), CUDA device."""
    from ..quantization.kernels import int8_kernel

    cpu, flags = cpu_info()
    try:
        kernel = "/".join(int8_kernel())
    except ValueError as e:  # a CPU that is not x86, an engine the course does not describe
        kernel = f"unknown ({e})"
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "cpu": cpu, "cpu_count": os.cpu_count(), "capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_flags": list(flags), "int8_kernel": kernel, "cuda_device": cuda}


def check_sections(names: list[str] | tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming every entry of ``names`` that is not one of :data:`SECTIONS` (repeats are
    allowed)."""
    check_names(dict.fromkeys(names), "sections", SECTIONS, "sections of the benchmark")


def run_section(name: str, quick: bool = False, seeds: int = 3) -> dict[str, Any]:
    """Import ``course_lib.benchmark.<name>``, run it and return its figures plus ``seconds`` and ``machine``
    (:func:`machine_info`, with ``started``: the UTC time the section started, ISO 8601, and ``load_before`` /
    ``load_after``: the 1-minute load average when it started and when it ended, which say whether anything else
    ran on the machine meanwhile).

    A section that raises (or cannot be imported) is not fatal: its entry is
    ``{"error": "<Type>: <message>", "traceback": ..., "seconds": ..., "machine": ...}``.
    """
    check_sections([name])
    check_int(seeds, "seeds", 1)
    started, load_before = datetime.now(UTC).isoformat(timespec="seconds"), os.getloadavg()[0]
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"{__name__}.{name}")
        result = dict(module.run(quick=quick, seeds=seeds))
    except Exception as e:  # noqa: BLE001 (reported in the section's entry; the other sections still run)
        result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["machine"] = {**machine_info(), "started": started, "load_before": load_before,
                         "load_after": os.getloadavg()[0]}
    return result
