"""The ``pruning_policy`` section as the report reads it: its table and the book's claims."""
from __future__ import annotations

from ..._tables import markdown_table
from ..results import MISSING, difference, number, percent, points
from .section import Claim, Evidence, Section

MODELS = {"teacher": "teacher", "lenet300": "LeNet-300-100"}
UNITS = {"parameters": "weights", "bytes": "bytes"}
METHODS = ("uniform", "global", "policy")
TARGET_GAIN = 0.01  # the policy's target over uniform, where uniform loses at least UNIFORM_LOSS
UNIFORM_LOSS = 0.02


def comparisons(p: dict) -> list[tuple[str, str, str, dict, float | None]]:
    """``(model label, unit, budget key, entry, dense accuracy)`` for every budget of the section, in order."""
    found = []
    for model, label in MODELS.items():
        entry = p.get(model)
        if not isinstance(entry, dict):
            continue
        for unit in UNITS:
            for key, budget in (entry.get(unit) or {}).items():
                if isinstance(budget, dict):
                    found.append((label, unit, key, budget, number(entry.get("dense"))))
    return found


def _accuracy(budget: dict, method: str) -> float | None:
    return number((budget.get(method) or {}).get("accuracy"))


def tables(p: dict) -> list[str]:
    """Each budget: its size and the three methods' sizes and fine-tuned test accuracies."""
    rows = []
    for label, unit, key, budget, dense in comparisons(p):
        sizes = [(budget.get(m) or {}).get("size") for m in METHODS]
        rows.append([label, f"{number(budget.get('budget')) or 0:,.0f} {UNITS[unit]} (uniform {key})", percent(dense),
                     *(percent(_accuracy(budget, m)) for m in METHODS),
                     " / ".join(f"{s:,}" if isinstance(s, int) else MISSING for s in sizes)])
    return [markdown_table(["model", "budget", "dense", "uniform", "global", "policy",
                            "sizes (uniform / global / policy)"], rows)]


def _target(p: dict) -> Evidence:
    rows = []
    for label, unit, key, budget, dense in comparisons(p):
        loss, gain = difference(dense, _accuracy(budget, "uniform")), difference(_accuracy(budget, "policy"),
                                                                                  _accuracy(budget, "uniform"))
        if loss is not None and gain is not None and loss >= UNIFORM_LOSS:
            rows.append((f"{label} {key} ({UNITS[unit]}): uniform {points(-loss)}, policy {points(gain)} over it",
                         gain >= TARGET_GAIN))
    if not rows:
        return None
    return "; ".join(text for text, _ in rows), all(ok for _, ok in rows)


def _within_budget(p: dict) -> Evidence:
    rows = [(f"{label} {key}", (budget.get("policy") or {}).get("size"), number(budget.get("budget")))
            for label, _, key, budget, _ in comparisons(p)]
    rows = [(name, size, limit) for name, size, limit in rows if isinstance(size, int) and limit is not None]
    if not rows:
        return None
    over = [name for name, size, limit in rows if size > limit]
    return (f"{len(rows) - len(over)} of {len(rows)} within their budget" + (f" (over: {', '.join(over)})"
                                                                             if over else ""), not over)


SECTION = Section(
    "pruning_policy", tables, x_label="budget", aggressive="higher", marker="P",
    claims=(
        Claim("At equal size, the per-layer policy chosen from the sensitivity scan is at least one point more "
              "accurate than uniform per-layer settings wherever uniform loses at least two points (teacher and "
              "LeNet-300-100, fine-tuned alike).", _target),
        Claim("The policy's models, counted after fine-tuning, stay within their budget.", _within_budget),
    ))
