"""The book's claims that the benchmark measures, each checked against a results file.

Every chapter states what its technique buys and where it stops being free. Those statements that
``python -m course_lib.benchmark`` measures are listed with their section (``claims`` of each
:class:`~course_lib.benchmark.figures.Section`), each with a check that reads the documented keys of its section and
returns the evidence (the figures, as text) and whether the claim holds in that file. A claim whose figures are
missing (the section did not run, failed, or predates the key) is "not measured", never assumed; a claim whose
speed-up was measured but not reliably (:func:`~course_lib.benchmark.results.speedup_of`), or breaks a
plausibility rule (:func:`~course_lib.benchmark.figures.section.plausible_speedup`: no more speed than the work
saved allows, no two threads five times slower than one), is "not measured reliably", with the reason: it neither
holds nor fails.
``book/results.ipynb`` shows the checks, so a reader who re-runs ``make benchmark`` sees which claims hold on their
machine.

The thresholds are the ones the statements spell out ("within one point", "at least 40 times"); nothing here
holds a measured number.
"""
from __future__ import annotations

from typing import Any

from .._tables import markdown_table
from .figures import REGISTRY, Claim
from .results import MISSING, Results, ok_sections

__all__ = ["Claim", "check_claims", "claims_table"]

UNRELIABLE = "not measured reliably"
VERDICTS = {True: "supported", False: "**not supported**"}  # by this one run, on this machine


def verdict(evidence: str, holds: bool | None) -> str:
    """``"supported"``, ``"**not supported**"``, ``"not measured"`` (no figure) or ``"not measured reliably"``."""
    if holds is not None:
        return VERDICTS[holds]
    return MISSING if evidence == MISSING else UNRELIABLE


def check_claims(results: Results, section: str | None = None) -> list[dict[str, Any]]:
    """Every claim of every section (of ``section`` only, if given) checked against ``results``: dicts with
    ``section``, ``chapter``, ``statement``, ``evidence`` (the figures, or ``"not measured"``), ``holds``
    (``True``, ``False``, or ``None`` when the file lacks a figure it needs, the section failed, or a figure was not
    measured reliably) and ``verdict`` (:func:`verdict`)."""
    ok = ok_sections(results)
    checked = []
    for name, sec in REGISTRY.items():
        if section is not None and name != section:
            continue
        for claim in sec.claims:
            found = claim.check(ok[name]) if name in ok else None
            evidence, holds = found if found is not None else (MISSING, None)
            checked.append({"section": name, "chapter": sec.chapter, "statement": claim.statement,
                            "evidence": evidence, "holds": holds, "verdict": verdict(evidence, holds)})
    return checked


def claims_table(results: Results, section: str) -> str | None:
    """The claims of ``section`` as a Markdown table (the chapter's statement, what the run measured, whether that run
    supports it), or ``None`` if it has none."""
    rows = [[c["statement"], c["evidence"], c["verdict"]] for c in check_claims(results, section)]
    return markdown_table(["what the chapter says", "what this run measured", "this run"], rows) if rows else None
