"""The course benchmark: every technique measured on this machine, in one JSON file.

Each technique has a section module ``course_lib.benchmark.<section>`` (listed once, with how its figures read,
in :data:`course_lib.benchmark.figures.REGISTRY`) with a function
``run(quick: bool = False, seeds: int = 3) -> dict`` returning JSON-serializable figures (the keys
are documented in that module). :func:`run_section` imports a section lazily, runs it, and adds
``seconds`` (wall-clock time of the section) and ``machine`` (:func:`machine_info`); it validates
``seeds`` for every section. Speed figures
inside a section are ratios of median latencies measured side by side in the same run
(:func:`course_lib.timing.compare_latency`); absolute times from different runs are never compared.

Command line (see ``python -m course_lib.benchmark --help``)::

    python -m course_lib.benchmark [--out results.json] [--only SECTION ...] [--seeds N] [--quick]
"""
from __future__ import annotations

import importlib
import os
import platform
import time
import traceback
from typing import Any

import torch

from .._validation import check_int, check_names
from .figures import REGISTRY

SECTIONS = tuple(REGISTRY)  # in the order they run: each has a runner module here and its module in figures/


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """The machine a section ran on: torch version, intra-op threads, CPU model and count, CUDA device."""
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "cuda_device": cuda}


def check_sections(names: list[str] | tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming every entry of ``names`` that is not one of :data:`SECTIONS` (repeats are
    allowed)."""
    check_names(dict.fromkeys(names), "sections", SECTIONS, "sections of the benchmark")


def run_section(name: str, quick: bool = False, seeds: int = 3) -> dict[str, Any]:
    """Import ``course_lib.benchmark.<name>``, run it and return its figures plus ``seconds`` and ``machine``.

    A section that raises (or cannot be imported) is not fatal: its entry is
    ``{"error": "<Type>: <message>", "traceback": ..., "seconds": ..., "machine": ...}``.
    """
    check_sections([name])
    check_int(seeds, "seeds", 1)
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"{__name__}.{name}")
        result = dict(module.run(quick=quick, seeds=seeds))
    except Exception as e:  # noqa: BLE001 (reported in the section's entry; the other sections still run)
        result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["machine"] = machine_info()
    return result
