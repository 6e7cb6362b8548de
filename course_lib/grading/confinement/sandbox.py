"""The learner's side of grading: one process per exercise, confined, with ``course_lib`` fenced.

The grader (:mod:`course_lib.grading.grade.sandbox_client`) starts ``python -I -B -c BOOT SNAPSHOT IN_FD OUT_FD``
through :mod:`course_lib.grading.confinement.confine`, or the grading's fork server
(:mod:`course_lib.grading.confinement.forkserver`) forks a process that calls :func:`main`; ``SNAPSHOT`` holds the
fenced copy of ``course_lib`` (:mod:`course_lib.grading.confinement.fence`) that this process imports. Over
``IN_FD`` it receives, as frames of :mod:`course_lib.grading.confinement.channel`, first the job (the assignment,
the one exercise, the notebook's definitions that exercise needs, the time for defining them), then one command
per case. Over
``OUT_FD``, a pipe of its own that no other process holds, it answers:

1. ``{"type": "defining", "statement": k}`` before each definition, then ``{"type": "ready", ...}``
   with the function's status (missing, the reference itself, not callable, or ok), the errors met
   and the statements skipped when the definitions' time ran out;
2. ``{"type": "case", "kind", "index", "result"}`` for each case, ``result`` being the raw
   observation of the learner's function (:func:`course_lib.grading.authoring.calling.call_and_observe`),
   encoded by :func:`course_lib.grading.confinement.channel.encode`; while a case runs, ``{"type": "fetch",
   "kind", "index", "position"}`` for each pass over a loader the grader serves and counts
   (:mod:`course_lib.grading.authoring.served`), answered with ``{"type": "batches", ...}`` over ``IN_FD``, and
   ``{"type": "forward", "kind", "index", "position", "inputs", "modes", "graph"}`` for each forward pass of a
   module the grader serves and runs, answered with ``{"type": "output", "output"}`` (or ``"error"``).

The hidden cases' seed arrives with the first hidden command, never before the public cases have
been answered. Nothing here knows an expected answer, and the grader trusts nothing it says beyond
"this is what the function returned for this exercise": a forged observation is still compared
with the reference's, in the grader.
"""
from __future__ import annotations

import ast
import builtins
import ctypes
import dataclasses
import functools
import gc
import signal
import time
from typing import Any

BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "from course_lib.grading.confinement.sandbox import main; main(int(sys.argv[2]), int(sys.argv[3]))")
PR_SET_DUMPABLE = 4


class DefinitionTimeout(BaseException):
    """Raised in a definition that is still running when the definitions' time is up."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise DefinitionTimeout


def define(statements: list[dict[str, Any]], seconds: float,
           out_fd: int) -> tuple[dict[str, Any], list[str], list[str]]:
    """Execute ``statements`` in a fresh namespace within ``seconds``; return it, the errors, the skipped."""
    from .channel import send

    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    errors, skipped = [], []
    deadline = time.monotonic() + seconds
    signal.signal(signal.SIGALRM, _on_alarm)
    for k, st in enumerate(statements):
        where = f"cell {st['cell']}, line {st['line']}"
        left = deadline - time.monotonic()
        if left <= 0:
            skipped.append(where)
            continue
        send(out_fd, {"type": "defining", "statement": k})
        try:
            tree = ast.parse(st["source"])
            ast.increment_lineno(tree, st["line"] - 1)
            code = compile(tree, f"<cell {st['cell']}>", "exec")
            signal.setitimer(signal.ITIMER_REAL, left)
            try:
                exec(code, namespace)  # noqa: S102 - the learner's definitions, in this confined process
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except DefinitionTimeout:
            skipped.append(where)
        except BaseException as e:  # noqa: BLE001 - report any failure of the learner's code
            errors.append(f"{where}: {type(e).__name__}: {e}"[:300])
    return namespace, errors, skipped


def course_function(fn: Any) -> str | None:
    """The ``course_lib`` function ``fn`` is (or wraps, through ``functools.partial`` or ``__wrapped__``)."""
    for _ in range(20):
        module = getattr(fn, "__module__", None)
        if isinstance(module, str) and (module == "course_lib" or module.startswith("course_lib.")):
            return f"{module}.{getattr(fn, '__qualname__', '?')}"
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
        else:
            return None
    return None


def function_status(namespace: dict[str, Any], name: str) -> tuple[str, str]:
    """``(status, detail)`` of the learner's ``name``: missing, reference, not_callable or ok."""
    if name not in namespace:
        return "missing", ""
    fn = namespace[name]
    reference = course_function(fn)
    if reference is not None:
        return "reference", reference
    if not callable(fn):
        return "not_callable", type(fn).__name__
    return "ok", ""


def served_cases(cases: list) -> list:
    """``cases`` whose counting loaders the grader serves (:mod:`course_lib.grading.authoring.served`)."""
    from ..authoring.served import serving

    return [dataclasses.replace(case, make=serving(case.make)) for case in cases]


def main(in_fd: int, out_fd: int) -> None:
    """Serve one exercise: the job, then one command per case, until the grader closes ``IN_FD``."""
    libc = ctypes.CDLL(None)
    if hasattr(libc, "prctl"):  # Linux: no ptrace, no /proc/PID/mem, environ or fd for other processes
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    from . import tripwire
    from .channel import decode, encode, receive, send

    tripwire.CHANNEL = out_fd
    job = receive(in_fd)
    import torch

    from ..authoring import served
    from ..authoring.calling import call_and_observe
    from ..authoring.specs import get_assignment

    torch.set_num_threads(1)
    exercise = get_assignment(job["assignment"]).exercise(job["exercise"])
    public = exercise.public()
    if public:  # before the learner's code and the clock: what building a case imports (an optimizer imports
        public[0].make()  # torch._dynamo, seconds on a busy machine) is not charged to the learner's function
    gc.collect()  # the course's objects out of the collector's sight: the collection before each case with a
    gc.freeze()  # served loader (:func:`served_cases`) then scans only what was made since, not torch's objects
    namespace, errors, skipped = define(job["statements"], job["definition_seconds"], out_fd)
    status, detail = function_status(namespace, exercise.name)
    send(out_fd, {"type": "ready", "status": status, "detail": detail, "errors": errors, "skipped": skipped})
    if status != "ok":
        return
    fn, cases, current = namespace[exercise.name], {"public": served_cases(public)}, {}

    def fetch(position: int) -> list[Any]:  # a served loader's pass: the grader sends the batches, and counts
        send(out_fd, {"type": "fetch", **current, "position": position})
        reply = receive(in_fd)
        if reply is None or reply.get("type") != "batches":
            raise RuntimeError("the grader served no batches")
        return decode(reply["batches"])
    def forward(position: int, inputs: Any, modes: list[bool], graph: bool) -> Any:  # a served module's pass
        send(out_fd, {"type": "forward", **current, "position": position, "inputs": encode(inputs),
                      "modes": modes, "graph": graph})
        reply = receive(in_fd)
        if reply is None or reply.get("type") != "output":
            raise RuntimeError("the grader ran no forward pass")
        if "error" in reply:
            raise RuntimeError(str(reply["error"]))
        return decode(reply["output"])
    served.FETCH, served.FORWARD = fetch, forward
    while (command := receive(in_fd)) is not None:
        kind, index = command["kind"], command["index"]
        current.update(kind=kind, index=index)
        if kind == "hidden" and "hidden" not in cases:
            cases["hidden"] = served_cases(exercise.hidden(command["hidden_seed"]))
        try:
            result = call_and_observe(fn, exercise, cases[kind][index], seed=command["rng_seed"])
        except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... from the learner's code
            result = {"error": f"{type(e).__name__}: {e}"}
        send(out_fd, {"type": "case", "kind": kind, "index": index, "result": encode(result)})
