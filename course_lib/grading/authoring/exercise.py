"""What an exercise is: the function a learner writes, its reference, its test cases and its help.

An :class:`Exercise` names the function the learner writes (same name and signature as the
reference, which lives in ``module`` of ``course_lib`` and is resolved lazily), and two lists of
:class:`Case`: *public* cases (small, fixed, shown in the feedback of
:func:`course_lib.grading.check`) and *hidden* cases (seeded random inputs and edge cases, run
only by the grader). A case builds fresh arguments each time it is asked (``make``), so that a
function that modifies its arguments (an optimizer step) is compared on equal terms, and so that
the grader and its sandbox build identical inputs from the same seed without sending them.

``observe(result, args, kwargs)`` turns what the function returned (and, for functions with side
effects, the arguments after the call) into plain data: tensors, numbers, strings, lists, dicts.
``compare(got, expected, args, kwargs)`` returns ``None`` when the answer is right, otherwise a
sentence for the learner. Both run on the grader's side for the reference; only ``observe`` runs
next to the learner's code, and only to extract raw data that the grader then checks itself.
A case that passes a bad argument says so with ``raises`` (:mod:`~course_lib.grading.authoring.calling`).

An exercise also carries the learner's help: ``hint`` says *what* to compute (it becomes the stub's
``raise NotImplementedError(...)`` message), ``hints`` say *how*, one step at a time, shown on request
by :func:`course_lib.grading.hint`. An :class:`Assignment` is one exercise notebook.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .calling import compare_raised, is_raised
from .compare import compare_values

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


def fixed_case(description: str, args: tuple, kwargs: dict | None = None, raises: str | None = None) -> Case:
    """A :class:`Case` with fixed arguments; each call of ``make()`` gives fresh clones of the tensors among
    ``args``, so a function that writes into its input cannot change the next case or the reference's call."""
    def make() -> Args:
        return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args), dict(kwargs or {})
    return Case(description, make, raises)


def identity_observe(result: Any, args: tuple, kwargs: dict) -> Any:
    """The default ``observe``: what the function returned."""
    return result


def resolve(reference: str) -> Callable:
    """The object named by ``"package.module:name"``."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Exercise:
    """A function the learner writes, the module of its reference (the function of the same name), its cases,
    and its points.

    ``public_points`` go to the public cases, ``hidden_points`` to the hidden ones, each in
    proportion to the cases passed. ``rtol``/``atol`` are the tolerances of :func:`compare_values`;
    with ``dtypes`` a tensor must also have the reference's dtype (int64 codes, not floats holding
    integers). ``hint`` says what the function computes (the stub's message); ``hints`` are the steps
    :func:`course_lib.grading.hint` shows one at a time. ``relies_on`` names the learner's earlier
    functions that this one calls (directly or through another): when a test fails, the feedback says to make
    those pass their own tests first (:meth:`relies_on_note`), since a mistake there fails these tests too.
    """

    name: str
    module: str
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
    def reference(self) -> str:
        """The reference as ``"module:name"``."""
        return f"{self.module}:{self.name}"

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

    ``number`` is its place in the course (the notebooks are ``NN_<name>.ipynb``). While the learner's
    functions are tested, the references and what they use in their modules are fenced off
    (:mod:`course_lib.grading.confinement.fence`): reaching them scores the exercise 0. ``allowed``
    names the course functions (``"module:function"``) that the notebook gives the learner and that
    stay usable. ``questions`` are the written answers collected for the instructor
    (:mod:`course_lib.grading.authoring.questions`).
    """

    name: str
    number: int
    title: str
    exercises: Sequence[Exercise]
    allowed: Sequence[str] = field(default_factory=tuple)
    questions: Sequence[Question] = field(default_factory=tuple)

    @property
    def notebook(self) -> str:
        """The notebook's name without its extension, as in ``solutions/`` and ``exercises/``: ``02_pruning``."""
        return f"{self.number:02d}_{self.name}"

    def exercise(self, name: str) -> Exercise:
        for ex in self.exercises:
            if ex.name == name:
                return ex
        raise ValueError(f"{self.name} has no exercise {name!r}; its exercises are "
                         f"{', '.join(e.name for e in self.exercises)}")

    @property
    def max_score(self) -> float:
        return sum(ex.points for ex in self.exercises)
