"""Run one exercise's tests on the learner's function, in a process of its own.

``python -I -m course_lib.grading.sandbox JOB.json OUT.pt`` is started by the grader once per
exercise, with a time limit. It

1. fences off the reference implementations: every function and class defined in the
   assignment's reference modules (``course_lib.distillation`` ...) is replaced, in every loaded
   ``course_lib`` module, by a *tripwire* that records the call and raises;
2. executes only the defining statements of the notebook's code cells
   (:func:`course_lib.grading.extract.definition_nodes`) in a fresh namespace;
3. refuses a function that *is* a reference (by identity, through ``__wrapped__`` or
   ``functools.partial``, or by its module of origin);
4. runs the public and hidden cases on it and writes the raw observations, the errors and the
   tripwires hit to ``OUT.pt`` (plain tensors and Python data, loadable with ``weights_only=True``).

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
import sys
from pathlib import Path
from typing import Any

import torch

from .extract import definition_nodes
from .spec import Exercise, call_and_observe
from .specs import get_assignment


class ReferenceUsed(Exception):
    """Raised by a tripwire: the learner's function called course_lib's reference."""


class Tripwire:
    """Stands in for a reference function or class: calling it, or reaching into it, is recorded and raises."""

    def __init__(self, qualname: str, log: set[str]):
        object.__setattr__(self, "_qualname", qualname)
        object.__setattr__(self, "_log", log)

    def _trip(self) -> ReferenceUsed:
        self._log.add(self._qualname)
        return ReferenceUsed(f"{self._qualname} is course_lib's reference implementation; write your own")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._trip()

    def __getattr__(self, name: str) -> Any:
        raise self._trip()


class Fence:
    """The reference modules' functions and classes, replaced by tripwires in every ``course_lib`` module."""

    def __init__(self, modules: list[str]):
        self.prefixes = tuple(modules)
        self.tripped: set[str] = set()
        self.originals: dict[int, str] = {}
        for name in modules:
            importlib.import_module(name)
        fenced = [m for n, m in list(sys.modules.items()) if self._fenced(n)]
        for module in fenced:
            for value in vars(module).values():
                if (inspect.isfunction(value) or inspect.isclass(value)) and self._fenced(value.__module__):
                    self.originals[id(value)] = f"{value.__module__}.{value.__qualname__}"
        for name, module in list(sys.modules.items()):
            if name == "course_lib" or name.startswith("course_lib."):
                for attr, value in list(vars(module).items()):
                    if id(value) in self.originals:
                        setattr(module, attr, Tripwire(self.originals[id(value)], self.tripped))

    def _fenced(self, module_name: str | None) -> bool:
        return bool(module_name) and any(module_name == p or module_name.startswith(p + ".") for p in self.prefixes)

    def reference_behind(self, fn: Any) -> str | None:
        """The reference ``fn`` is (or wraps), or ``None`` if it is the learner's own."""
        for _ in range(20):
            if isinstance(fn, Tripwire):
                return fn._qualname
            if id(fn) in self.originals:
                return self.originals[id(fn)]
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


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Do steps 1-4 of the module docstring for ``job`` and return the report."""
    assignment = get_assignment(job["assignment"])
    exercise: Exercise = assignment.exercise(job["exercise"])
    cases = list(exercise.public()) + list(exercise.hidden(int(job["seed"])))
    fence = Fence(list(assignment.reference_modules))
    report: dict[str, Any] = {"status": "ok", "message": "", "definition_errors": [], "cases": [], "tripped": []}
    graded = {ex.name for ex in assignment.exercises}
    namespace: dict[str, Any] = {"__name__": "__learner__", "__builtins__": builtins}
    for cell in job["cells"]:
        for node in definition_nodes(cell["source"], graded):
            try:
                code = compile(ast.Module(body=[node], type_ignores=[]), f"<cell {cell['index']}>", "exec")
                exec(code, namespace)  # noqa: S102 - the learner's definitions, in this throw-away process
            except BaseException as e:  # noqa: BLE001 - report any failure of the learner's code
                report["definition_errors"].append(f"cell {cell['index']}, line {node.lineno}: "
                                                   f"{type(e).__name__}: {e}")
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
        for case in cases:
            try:
                report["cases"].append(call_and_observe(fn, exercise, case))
            except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt from the learner's code
                report["cases"].append({"error": f"{type(e).__name__}: {e}"})
    report["tripped"] = sorted(fence.tripped)
    return report


def main(argv: list[str] | None = None) -> int:
    job_path, out_path = argv if argv is not None else sys.argv[1:]
    save = torch.save
    report = run_job(json.loads(Path(job_path).read_text()))
    save(report, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
