"""Showing values to a learner, compactly (:func:`describe`), and comparing an answer with the reference's
(:func:`compare_values`): ``None`` when it is right, otherwise the sentence the feedback shows."""
from __future__ import annotations

import math
from typing import Any

import torch

from .plain import Unsupported


def describe(value: Any, max_items: int = 12) -> str:
    """A short, readable rendering of ``value``: small tensors in full, large ones summarized."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if t.numel() <= max_items:
            body = _fmt_list(t.tolist())
            return f"tensor({body})" if t.dim() else f"tensor({_fmt_number(t.item())})"
        if t.dtype == torch.bool:
            return f"bool tensor of shape {tuple(t.shape)} with {int(t.sum())} True"
        flat = t.flatten()[:6].tolist()
        stats = (f", mean {_fmt_number(t.float().mean().item())}" if t.is_floating_point() else "")
        return f"tensor of shape {tuple(t.shape)}{stats}, first values {_fmt_list(flat)[:-1]}, ...]"
    if isinstance(value, float):
        return _fmt_number(value)
    if isinstance(value, dict):
        items = list(value.items())
        shown = ", ".join(f"{k!r}: {describe(v, max_items)}" for k, v in items[:max_items])
        return "{" + shown + (", ..." if len(items) > max_items else "") + "}"
    if isinstance(value, (list, tuple)):
        if len(value) > max_items:
            return f"{type(value).__name__} of {len(value)} items"
        inner = ", ".join(describe(v, max_items) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, Unsupported):
        return f"an object of type {value.type_name}"
    return repr(value)


def _with_shape(t: torch.Tensor) -> str:
    """``t`` described with its shape (a large tensor's description already holds it)."""
    shown = describe(t)
    return f"a {shown}" if shown.startswith(("tensor of shape", "bool tensor of shape")) else \
        f"{shown} of shape {tuple(t.shape)}"


def _whole(got: list | tuple, expected: list | tuple, limit: int = 300) -> str:
    """The whole returned and expected sequences, when short enough to read (a swapped pair shows as such)."""
    mine, theirs = describe(got), describe(expected)
    return f" (you returned {mine}; expected {theirs})" if len(mine) + len(theirs) <= limit else ""


def _fmt_number(x: Any) -> str:
    if isinstance(x, bool) or isinstance(x, int):
        return str(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.4g}"


def _fmt_list(x: Any) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_fmt_list(v) for v in x) + "]"
    return _fmt_number(x)


def compare_values(got: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-5, where: str = "",
                   dtypes: bool = False) -> str | None:
    """``None`` if ``got`` matches ``expected`` (values, within tolerances), else what differs.

    Tensors are compared by shape and values (``bool``, integer and float tensors holding the same
    numbers are equal: a mask of ``0.``/``1.`` matches a mask of ``False``/``True``), and by dtype too
    with ``dtypes``; Python numbers and 0-d tensors are interchangeable; lists, tuples and dicts are
    compared item by item.
    """
    at = f" as {where}" if where else ""
    if isinstance(got, Unsupported):
        return f"returned {describe(got)}{at}, expected {describe(expected)}"
    if isinstance(expected, torch.Tensor) or (isinstance(expected, (int, float)) and not isinstance(expected, bool)
                                              and isinstance(got, torch.Tensor)):
        if dtypes and isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor) \
                and got.dtype != expected.dtype:
            return (f"returned a tensor of dtype {got.dtype}{at}, expected dtype {expected.dtype} (values not "
                    f"compared): {describe(expected)}")
        return _compare_tensors(got, torch.as_tensor(expected), rtol, atol, at, shown_expected=expected)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return None if got == expected and type(got) is type(expected) else \
            f"returned {describe(got)}{at}, expected {describe(expected)}"
    if isinstance(expected, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"returned {describe(got)}{at}, expected a number like {describe(expected)}"
        if _compare_tensors(torch.tensor(float(got)), torch.tensor(float(expected)), rtol, atol, at) is None:
            return None
        return f"returned {describe(got)}{at}, expected {describe(expected)}"  # numbers shown as numbers
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"returned {describe(got)}{at}, expected a {type(expected).__name__} of {len(expected)} items"
        if len(got) != len(expected):
            return f"returned {len(got)} items{at}: {describe(got)}; expected {len(expected)}: {describe(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = compare_values(g, e, rtol, atol, f"{where} item {i}".strip() if where else f"item {i}", dtypes)
            if msg:
                return msg + _whole(got, expected)
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"returned {describe(got)}{at}, expected a dict"
        if set(got) != set(expected):
            return f"returned keys {sorted(got, key=repr)}{at}, expected keys {sorted(expected, key=repr)}"
        for k in expected:
            msg = compare_values(got[k], expected[k], rtol, atol, f"{where}, {k}" if where else str(k), dtypes)
            if msg:
                return msg
        return None
    return f"cannot compare {describe(got)} with {describe(expected)}{at}"


def _compare_tensors(got: Any, expected: torch.Tensor, rtol: float, atol: float, at: str,
                     shown_expected: Any = None) -> str | None:
    # what the function returned and what was expected, as the feedback shows them: a Python number stays a number
    shown, shown_expected = got, expected if shown_expected is None else shown_expected
    if isinstance(got, (int, float)) and not isinstance(got, bool) and expected.dim() == 0:
        got = torch.tensor(float(got))
    if not isinstance(got, torch.Tensor):
        return f"returned {describe(got)}{at}, expected a tensor {describe(expected)}"
    if got.shape != expected.shape:
        return (f"returned {_with_shape(got)}{at}; expected a tensor of shape {tuple(expected.shape)}: "
                f"{describe(shown_expected)}")
    if got.is_complex() or expected.is_complex():
        return f"returned a complex tensor{at}, expected {describe(shown_expected)}"
    g, e = got.double(), expected.double()
    nan_mismatch = torch.isnan(g) != torch.isnan(e)
    close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True) & ~nan_mismatch
    if bool(close.all()):
        return None
    diff = torch.where(close, torch.zeros_like(g), (g - e).abs().nan_to_num(nan=math.inf))
    idx = tuple(int(i) for i in torch.unravel_index(diff.flatten().argmax(), diff.shape)) if diff.dim() else ()
    wrong = int((~close).sum())
    if g.numel() == 1:
        return f"returned {describe(shown)}{at}, expected {describe(shown_expected)}"
    where = f" at index {idx}" if idx else ""
    return (f"returned {describe(got)}{at}, expected {describe(expected)}; {wrong} of {g.numel()} values differ, "
            f"the largest difference{where}: {_fmt_number(g[idx].item())} instead of {_fmt_number(e[idx].item())}")
