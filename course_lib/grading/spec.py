"""What an exercise is, and how a learner's answer is compared with the reference.

An :class:`Exercise` names the function the learner writes (same name and signature as the
reference in ``course_lib``), the reference itself (``"module:function"``, resolved lazily), and
two lists of :class:`Case`: *public* cases (small, fixed, shown in the feedback of
:func:`course_lib.grading.check`) and *hidden* cases (seeded random inputs and edge cases, run
only by the grader). A case builds fresh arguments each time it is asked (``make``), so that a
function that modifies its arguments (an optimizer step) is compared on equal terms, and so that
the grader and its sandbox build identical inputs from the same seed without sending them.

``observe(result, args, kwargs)`` turns what the function returned (and, for functions with side
effects, the arguments after the call) into plain data: tensors, numbers, strings, lists, dicts.
``compare(got, expected, args, kwargs)`` returns ``None`` when the answer is right, otherwise a
sentence for the learner. Both run on the grader's side for the reference; only ``observe`` runs
next to the learner's code, and only to extract raw data that the grader then checks itself.

A case that passes a bad argument says so with ``raises``: a word its error message must contain
(the argument's name). Its answer is then the exception itself (:func:`raised`: its type, the types
it derives from, its message), and the learner's function passes when it raises the reference's
type (or a subclass) with a message that names the argument (:func:`compare_raised`). Returning
instead of raising, or raising something else, is a wrong answer like any other.

An exercise also carries the learner's help: ``hint`` says *what* to compute (it becomes the stub's
``raise NotImplementedError(...)`` message), ``hints`` say *how*, one step at a time, shown on request
by :func:`course_lib.grading.checks.hint`.
"""
from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

Args = tuple[tuple, dict]


@dataclass(frozen=True)
class Case:
    """One test input: ``description`` is what a learner reads, ``make()`` builds ``(args, kwargs)``.

    ``raises``: for a bad argument, a word the error message must contain (the argument's name); the
    function must then raise the reference's exception type instead of returning.
    """

    description: str
    make: Callable[[], Args]
    raises: str | None = None


def generator(seed: int) -> torch.Generator:
    """A CPU random generator seeded with ``seed``: hidden cases draw from it, never from the global state."""
    return torch.Generator().manual_seed(seed)


def fixed_case(description: str, args: tuple, kwargs: dict | None = None, raises: str | None = None) -> Case:
    """A :class:`Case` with fixed arguments; each call of ``make()`` gives fresh clones of the tensors among
    ``args``, so a function that writes into its input cannot change the next case or the reference's call."""
    def make() -> Args:
        return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args), dict(kwargs or {})
    return Case(description, make, raises)


def identity_observe(result: Any, args: tuple, kwargs: dict) -> Any:
    """The default ``observe``: what the function returned."""
    return result


@dataclass(frozen=True)
class Exercise:
    """A function the learner writes, its reference, its cases, and its points.

    ``public_points`` go to the public cases, ``hidden_points`` to the hidden ones, each in
    proportion to the cases passed. ``rtol``/``atol`` are the tolerances of :func:`compare_values`;
    with ``dtypes`` a tensor must also have the reference's dtype (int64 codes, not floats holding
    integers). ``hint`` says what the function computes (the stub's message); ``hints`` are the steps
    :func:`course_lib.grading.checks.hint` shows one at a time. ``relies_on`` names the learner's earlier
    functions that this one calls (directly or through another): when a test fails, the feedback says to make
    those pass their own tests first (:meth:`relies_on_note`), since a mistake there fails these tests too.
    """

    name: str
    reference: str
    public: Callable[[], list[Case]]
    hidden: Callable[[int], list[Case]]
    hint: str
    public_points: float = 1.0
    hidden_points: float = 2.0
    observe: Callable[[Any, tuple, dict], Any] = identity_observe
    compare: Callable[[Any, Any, tuple, dict], str | None] | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    dtypes: bool = False
    hints: tuple[str, ...] = ()
    relies_on: tuple[str, ...] = ()

    @property
    def points(self) -> float:
        return self.public_points + self.hidden_points

    def relies_on_note(self) -> str:
        """The line added to the feedback of a failed test when the function calls the learner's earlier ones
        (``""`` when it calls none)."""
        if not self.relies_on:
            return ""
        names = list(self.relies_on)
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        pass_ = "it passes its" if len(names) == 1 else "those pass their"
        return (f"{self.name} calls your {listed}: make sure {pass_} own checks first, as a mistake there fails "
                "these tests too.")

    def reference_fn(self) -> Callable:
        return resolve(self.reference)

    def check_answer(self, got: Any, expected: Any, args: tuple, kwargs: dict) -> str | None:
        """``None`` if ``got`` is right, else a sentence saying how it differs from ``expected``."""
        if is_raised(expected):
            return compare_raised(got, expected)
        if self.compare is not None:
            return self.compare(got, expected, args, kwargs)
        return compare_values(got, expected, self.rtol, self.atol, dtypes=self.dtypes)


@dataclass(frozen=True)
class Question:
    """A written question: the learner answers in a markdown cell whose metadata is
    ``{"course_grading": {"answer": id}}``; the grader collects the answer for the instructor.
    ``points`` are awarded by hand (0 for an ungraded question)."""

    id: str
    prompt: str
    points: float = 0.0


@dataclass(frozen=True)
class Assignment:
    """One exercise notebook: its exercises, the helpers a learner may use, its written questions.

    While the learner's functions are tested, the references and what they use in their modules
    are fenced off (:mod:`course_lib.grading.fence`): reaching them scores the exercise 0. ``allowed``
    names the course functions (``"module:function"``) that the notebook gives the learner and that
    stay usable. ``questions`` are the written answers collected for the instructor
    (:mod:`course_lib.grading.questions`).
    """

    name: str
    title: str
    exercises: Sequence[Exercise]
    allowed: Sequence[str] = field(default_factory=tuple)
    questions: Sequence[Question] = field(default_factory=tuple)

    def exercise(self, name: str) -> Exercise:
        for ex in self.exercises:
            if ex.name == name:
                return ex
        raise ValueError(f"{self.name} has no exercise {name!r}; its exercises are "
                         f"{', '.join(e.name for e in self.exercises)}")

    @property
    def max_score(self) -> float:
        return sum(ex.points for ex in self.exercises)


def resolve(reference: str) -> Callable:
    """The object named by ``"package.module:name"``."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def derived_seed(*parts: object) -> int:
    """A seed in ``[0, 2**31)`` drawn from ``parts`` (SHA-256): the same parts, the same seed, on any machine."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2 ** 31)


def hidden_seed(secret: int, assignment: str, exercise: str) -> int:
    """The seed of an exercise's hidden cases: learning it reveals nothing about other exercises' cases."""
    return derived_seed("hidden", secret, assignment, exercise)


def rng_seed(exercise: str, kind: str, index: int, secret: int | None) -> int:
    """The seed of the random generators during one case (public cases: independent of the secret, so
    that :func:`course_lib.grading.check` in the notebook seeds them the same way)."""
    return derived_seed("rng", exercise, kind, index, secret if kind == "hidden" else "public")


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Seed ``torch``, ``random`` and ``numpy`` with ``seed`` inside the block, and restore their states after."""
    if seed is None:
        yield
        return
    import random

    import numpy as np
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        random.setstate(states[1])
        np.random.set_state(states[2])


def call_and_observe(fn: Callable, exercise: Exercise, case: Case, seed: int | None = None) -> dict[str, Any]:
    """Run ``fn`` on fresh arguments of ``case``, random generators seeded with ``seed``:
    ``{"value": plain data}`` or ``{"error": "Type: message"}``. For a case that ``raises``, the value
    is what the call did: :func:`raised` for an exception, ``{RETURNED: description}`` otherwise."""
    args, kwargs = case.make()
    try:
        with seeded(seed):
            result = fn(*args, **kwargs)
            if case.raises is None:
                return {"value": to_plain(exercise.observe(result, args, kwargs))}
    except NotImplementedError as e:
        return {"error": f"NotImplementedError: {e}", "not_implemented": True}
    except Exception as e:  # noqa: BLE001 - a learner's function may raise anything; report it
        if case.raises is not None:
            return {"value": raised(e, case.raises)}
        return {"error": f"{type(e).__name__}: {e}"}
    # a bad argument that did not raise: described from plain data only (no method of the result runs)
    try:
        description = describe(from_plain(to_plain(result)))[:MAX_MESSAGE]
    except Exception as e:  # noqa: BLE001 - a learner's object that cannot even be copied
        description = f"an object that could not be read ({type(e).__name__})"
    return {"value": {RETURNED: description}}


# ---------------------------------------------------------------------------------------------
# Bad arguments: the exception is the answer.

RAISED, RETURNED = "__raised__", "__returned__"
MAX_MESSAGE = 500


def raised(error: Exception, mentions: str) -> dict[str, Any]:
    """The observation of a call that raised ``error`` in a case whose message must mention ``mentions``."""
    types = [c.__name__ for c in type(error).__mro__ if c not in (object, BaseException)]
    try:
        message = str(error)[:MAX_MESSAGE]
    except Exception as e:  # noqa: BLE001 - a learner's exception whose message cannot be read
        message = f"(a message that could not be read: {type(e).__name__})"
    return {RAISED: type(error).__name__, "types": types, "message": message, "mentions": mentions}


def is_raised(value: Any) -> bool:
    """Whether ``value`` is the observation of an exception (:func:`raised`)."""
    return isinstance(value, dict) and RAISED in value


def compare_raised(got: Any, expected: dict[str, Any]) -> str | None:
    """``None`` if ``got`` raised ``expected``'s exception type (or a subclass of it) with a message that
    contains ``expected["mentions"]`` (case-insensitive), else what differs. Only ``expected`` (the
    reference's observation, made by the grader) says what the message must mention."""
    wanted, word = str(expected[RAISED]), str(expected["mentions"])
    what = f"{wanted} whose message names {word!r}"
    if isinstance(got, dict) and RETURNED in got:
        return f"returned {str(got[RETURNED])[:200]} instead of raising {what}"
    if not is_raised(got) or not isinstance(got.get("types"), list) or not isinstance(got.get("message"), str):
        return f"did not raise {what}"
    message = got["message"][:200]
    if wanted not in got["types"]:
        return f"raised {got[RAISED]}: {message}; expected {what}"
    if word.lower() not in got["message"].lower():
        return (f"raised {got[RAISED]}: {message}; the message must name {word!r}, the argument that is wrong, "
                "and say what is allowed")
    return None


# ---------------------------------------------------------------------------------------------
# Showing values to a learner, compactly.

def describe(value: Any, max_items: int = 12) -> str:
    """A short, readable rendering of ``value``: small tensors in full, large ones summarised."""
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


# ---------------------------------------------------------------------------------------------
# Plain data: what crosses from the sandbox to the grader (loadable with torch.load(weights_only=True)).

@dataclass(frozen=True)
class Unsupported:
    """Stands for a value of a type that cannot be compared (a learner's own class, a generator...)."""

    type_name: str


def to_plain(value: Any, depth: int = 0) -> Any:
    """``value`` as tensors, numbers, strings, ``None``, lists, tuples and dicts only."""
    if depth > 20:
        return {"__unsupported__": "deeply nested data"}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone().as_subclass(torch.Tensor)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value).__module__ == "numpy":
        try:
            return torch.as_tensor(value).clone()
        except (TypeError, RuntimeError):
            pass
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {(k if isinstance(k, (int, str)) else repr(k)): to_plain(v, depth + 1) for k, v in value.items()}
    return {"__unsupported__": f"{type(value).__module__}.{type(value).__qualname__}"}


def from_plain(value: Any) -> Any:
    """Undo the one marker :func:`to_plain` adds: ``{"__unsupported__": name}`` -> :class:`Unsupported`."""
    if isinstance(value, dict):
        if set(value) == {"__unsupported__"}:
            return Unsupported(str(value["__unsupported__"]))
        return {k: from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(from_plain(v) for v in value)
    return value


# ---------------------------------------------------------------------------------------------
# Comparing.

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
            return f"returned {len(got)} items{at}, expected {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = compare_values(g, e, rtol, atol, f"{where} item {i}".strip() if where else f"item {i}", dtypes)
            if msg:
                return msg
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
        return (f"returned a tensor of shape {tuple(got.shape)}{at}, expected shape {tuple(expected.shape)}: "
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
