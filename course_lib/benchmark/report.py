"""The results page's view of a benchmark file: what each section recorded about its run (:func:`about`) and its
figures as Markdown tables (:func:`section_tables`).

Nothing here holds a measured number: every figure shown comes from the file (read with
:mod:`~course_lib.benchmark.results`), so the results page of the book shows the reader's own measurements once
they re-run ``make benchmark``. How each section's figures read is its module of
:mod:`~course_lib.benchmark.figures`; the curves are :mod:`~course_lib.benchmark.curves`, the trade-off chart
:mod:`~course_lib.benchmark.tradeoffs`, the book's claims :mod:`~course_lib.benchmark.claims`.
"""
from __future__ import annotations

from .figures import REGISTRY
from .results import Results, number, ok_sections


def about(results: Results, name: str) -> str:
    """The machine, the start time, the load and the duration the benchmark recorded for section ``name``, as one
    sentence (the keys of :func:`course_lib.benchmark.run_section`'s ``machine``)."""
    section = results.get(name)
    if not isinstance(section, dict):
        return f"The benchmark file has no `{name}` section: run `python -m course_lib.benchmark --only {name}`."
    machine = section.get("machine") or {}
    keys = ("cpu", "cpu_count", "capability", "int8_kernel", "threads", "torch", "cuda_device", "started",
            "load_before", "load_after")
    desc = ", ".join(f"{k} {machine[k]:.2f}" if isinstance(machine[k], float) else f"{k} {machine[k]}"
                     for k in keys if isinstance(machine, dict) and machine.get(k) is not None)
    seconds = number(section.get("seconds"))
    took = f"ran in {seconds:.0f} s" if seconds is not None else "ran"
    seeds = f", {section['seeds']} seed(s) per trained model" if isinstance(section.get("seeds"), int) else ""
    failed = f" It FAILED: {section['error']}" if "error" in section else ""
    return f"Section `{name}` {took} on {desc or 'an unrecorded machine'}{seeds}.{failed}"


def section_tables(results: Results, section: str) -> list[str]:
    """Markdown tables of ``section``'s figures; ``[]`` if the section is missing or failed."""
    figures = ok_sections(results).get(section)
    if figures is None or section not in REGISTRY:
        return []
    return REGISTRY[section].tables(figures)
