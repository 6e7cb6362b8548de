"""The benchmark's sections as the report reads them, one module each: :data:`REGISTRY` is the one list.

A new section is a runner module ``course_lib.benchmark.<name>`` (its ``run`` writes the figures), a module
here whose ``SECTION`` says how its figures read (:class:`~.section.Section`: tables, claims, trade-off points,
curves), and its entry in :data:`REGISTRY`, whose order is the benchmark's and the results page's.
"""
from __future__ import annotations

from . import acceleration, deep_compression, distillation, llm, pruning, pruning_policy, quantization
from .section import Claim, Evidence, Point, Section

REGISTRY: dict[str, Section] = {s.name: s for s in (distillation.SECTION, pruning.SECTION, pruning_policy.SECTION,
                                                     quantization.SECTION,
                                                     acceleration.SECTION, deep_compression.SECTION,
                                                     llm.SECTION)}

__all__ = ["REGISTRY", "Section", "Claim", "Point", "Evidence"]
