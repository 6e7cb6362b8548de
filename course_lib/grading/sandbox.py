"""Run one exercise's tests on the learner's function, in a process of its own.

``python -I -m course_lib.grading.sandbox JOB.json OUT_DIR`` is started by the grader for a
notebook's exercises (again for the remaining ones if one of them hangs or ends the process). It

1. fences off the reference implementations: every function and class defined in the
   assignment's reference modules (``course_lib.distillation`` ...) is replaced, in every loaded
   ``course_lib`` module, by a *tripwire* that, when called, names itself in
   ``OUT_DIR/<exercise>.tripped`` and ends the process with status :data:`REFERENCE_EXIT`;
2. executes only the defining statements of the notebook's code cells
   (:func:`course_lib.grading.extract.definition_nodes`) in a fresh namespace;
3. refuses a function that *is* a reference (by identity, through ``__wrapped__`` or
   ``functools.partial``, or by its module of origin);
4. runs the public and hidden cases on it and writes the raw observations and errors to
   ``OUT_DIR/<exercise>.pt`` (plain tensors and Python data, loadable with ``weights_only=True``).

It never sees the expected answers: the grader computes those from the references in its own
process, which never runs the learner's code, and compares. Anything the learner's code does here
(monkeypatching torch, the specs or this module) can only change what this process reports about
the learner's own function.
"""
from __future__ import annotations

import ast
import builtins
import functools
import importlib
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from .extract import definition_nodes
from .spec import Assignment, Exercise, call_and_observe
from .specs import get_assignment


REFERENCE_EXIT = 86  # exit status of a sandbox whose learner code touched a reference


class Tripwire:
    """Stands in for a reference function or class: calling it, or reaching into it, ends the process.

    It writes the reference's name to the fence's current ``log_path`` and exits with
    :data:`REFERENCE_EXIT` at once (``os._exit``), so the learner's code cannot catch it and go on.
    """

    def __init__(self, qualname: str, fence: Fence):
        object.__setattr__(self, "_qualname", qualname)
        object.__setattr__(self, "_fence", fence)

    def _trip(self) -> None:
        with open(self._fence.log_path, "w") as f:
            f.write(self._qualname)
        os._exit(REFERENCE_EXIT)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._trip()

    def __getattr__(self, name: str) -> Any:
        self._trip()


class Fence:
    """The reference modules' functions and classes, replaced by tripwires in every ``course_lib`` module."""

    def __init__(self, modules: list[str]):
        self.prefixes = tuple(modules)
        self.log_path = os.devnull
        self.originals: dict[int, tuple[Any, str]] = {}  # the objects are kept, so that their ids stay theirs
        for name in modules:
            importlib.import_module(name)
        fenced = [m for n, m in list(sys.modules.items()) if self._fenced(n)]
        for module in fenced:
            for value in vars(module).values():
                if (inspect.isfunction(value) or inspect.isclass(value)) and self._fenced(value.__module__):
                    self.originals[id(value)] = (value, f"{value.__module__}.{value.__qualname__}")
        for name, module in list(sys.modules.items()):
            if name == "course_lib" or name.startswith("course_lib."):
                for attr, value in list(vars(module).items()):
                    if id(value) in self.originals:
                        setattr(module, attr, Tripwire(self.originals[id(value)][1], self))

    def _fenced(self, module_name: str | None) -> bool:
        return bool(module_name) and any(module_name == p or module_name.startswith(p + ".") for p in self.prefixes)

    def reference_behind(self, fn: Any) -> str | None:
        """The reference ``fn`` is (or wraps), or ``None`` if it is the learner's own."""
        for _ in range(20):
            if isinstance(fn, Tripwire):
                return fn._qualname
            if id(fn) in self.originals:
                return self.originals[id(fn)][1]
            module = getattr(fn, "__module__", None)
            if isinstance(module, str) and (self._fenced(module) or module.startswith("course_lib")):
                return f"{module}.{getattr(fn, '__qualname__', '?')}"
            if isinstance(fn, functools.partial):
                fn = fn.func
            elif hasattr(fn, "__wrapped__"):
                fn = fn.__wrapped__
            else:
                return None
        return None


def learner_namespace(assignment: Assignment, cells: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Execute the defining statements of ``cells`` in a fresh namespace; return it and the errors met."""
    graded = {ex.name for ex in assignment.exercises}
    namespace: dict[str, Any] = {"__name__": "__learner__", "__builtins__": builtins}
    errors = []
    for cell in cells:
        for node in definition_nodes(cell["source"], graded):
            try:
                code = compile(ast.Module(body=[node], type_ignores=[]), f"<cell {cell['index']}>", "exec")
                exec(code, namespace)  # noqa: S102 - the learner's definitions, in this throw-away process
            except BaseException as e:  # noqa: BLE001 - report any failure of the learner's code
                errors.append(f"cell {cell['index']}, line {node.lineno}: {type(e).__name__}: {e}")
    return namespace, errors


def run_exercise(exercise: Exercise, namespace: dict[str, Any], fence: Fence, seed: int) -> dict[str, Any]:
    """Steps 3 and 4 of the module docstring for one exercise: the report the grader reads."""
    report: dict[str, Any] = {"status": "ok", "message": "", "cases": []}
    fn = namespace.get(exercise.name)
    reference = fence.reference_behind(fn) if fn is not None else None
    if fn is None:
        report["status"] = "missing"
    elif reference is not None:
        report["status"] = "reference"
        report["message"] = reference
    elif not callable(fn):
        report["status"] = "not_callable"
        report["message"] = type(fn).__name__
    else:
        for case in list(exercise.public()) + list(exercise.hidden(seed)):
            try:
                report["cases"].append(call_and_observe(fn, exercise, case))
            except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt from the learner's code
                report["cases"].append({"error": f"{type(e).__name__}: {e}"})
    return report


def main(argv: list[str] | None = None) -> int:
    """``JOB.json OUT_DIR``: write ``OUT_DIR/<exercise>.pt`` for each exercise of the job, in order."""
    job_path, out_dir = argv if argv is not None else sys.argv[1:]
    save, replace = torch.save, os.replace  # taken before any of the learner's code runs
    job = json.loads(Path(job_path).read_text())
    assignment = get_assignment(job["assignment"])
    exercises = [assignment.exercise(name) for name in job["exercises"]]
    fence = Fence(list(assignment.reference_modules))
    fence.log_path = str(Path(out_dir, f"{exercises[0].name}.tripped"))
    namespace, errors = learner_namespace(assignment, job["cells"])
    for exercise in exercises:
        fence.log_path = str(Path(out_dir, f"{exercise.name}.tripped"))
        report = run_exercise(exercise, namespace, fence, int(job["seed"]))
        report["definition_errors"] = errors
        partial = Path(out_dir, f"{exercise.name}.partial")
        save(report, partial)
        replace(partial, Path(out_dir, f"{exercise.name}.pt"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
