"""What the benchmark's trainings share: the machine's cores (:func:`parallel_map`) and the teacher's logits,
computed once per image it can be shown (:class:`TeacherTable`).

A section's trainings are independent once each seeds itself (a seed fixes the initial weights, the batches,
the shifts and the masks): :func:`parallel_map` runs them in forked worker processes, one per core and one
thread each, so that a 2-core machine trains two at a time and every result is the one a single thread gives,
whatever the core count (two threads on one small model buy less, and change the last bits with the count).

Every distillation step runs the teacher forward on the student's batch. The students of the ``distillation``
section all train on images of the same training split, randomly shifted by up to ``max_shift`` pixels with zero
fill (:func:`course_lib.data.random_shift`), so the teacher only ever sees the ``(2 max_shift + 1)^2`` shifted
copies of each training image: 25 per image for the recipe's 2 pixels, 87,500 for MNIST-5k's 3,500 images,
about as many forward passes as 1.2 students of 1,100 steps of 64 need. :class:`TeacherTable` computes the
teacher's logits on all of them once and then answers each student step by looking its rows up, so a section
of ~45 distilled students runs the teacher about 1.2 times instead of ~45 (the teacher's forward passes on a
student's batches cost more than the zoo student's own training step). The answer is the teacher's: an input row is
found by its exact bytes, and a row not in the table is run through the teacher on the spot.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .._validation import check_int, check_module, check_tensor
from ..training import evaluating

TABLE_BATCH = 256  # images per teacher forward pass while the table is filled
_TASKS: Sequence[Callable[[], Any]] = ()  # what the workers of the running parallel_map inherit when forked


def _run_task(index: int) -> Any:
    torch.set_num_threads(1)
    return _TASKS[index]()


def parallel_map(tasks: Sequence[Callable[[], Any]], *, workers: int | None = None) -> list[Any]:
    """``[task() for task in tasks]``, computed by ``workers`` (default: the cores this process may run on,
    ``os.sched_getaffinity``, else ``os.cpu_count()``) forked processes with one intra-op thread each, handed out
    one task at a time as workers free up.

    A task is any zero-argument callable, closures included: the workers are forked after ``tasks`` is set, so
    they inherit it (and everything it refers to, such as the data and a :class:`TeacherTable`) instead of
    receiving it pickled; only the task's index goes out, and its result (which must pickle: a float, a plain
    model) comes back. A task must seed what it draws (:func:`course_lib.training.set_seed`, a generator), as its
    worker's random state is a copy of the caller's at some earlier point; then its result is the one a call
    on one thread gives. An exception in a task is raised here. With one worker, one task, or no ``fork`` start
    method (Windows, macOS defaults aside), the tasks run here, in order, on one thread; so they do when autograd
    refuses to train in a forked worker (:data:`BAD_FORK`: this process started autograd's device threads).
    """
    global _TASKS
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(len(tasks), check_int(workers, "workers", 1))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return _here(tasks)
    _TASKS = tasks
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run_task, range(len(tasks))))
    except RuntimeError as error:  # autograd refuses to run in a child forked after this process started its
        if BAD_FORK not in str(error):  # device threads: the tasks (seeded) then run here, with the same results
            raise
        return _here(tasks)
    finally:
        _TASKS = ()


BAD_FORK = "Unable to handle autograd's threading in combination with fork-based multiprocessing"


def _here(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """The tasks run in this process, in order, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [task() for task in tasks]
    finally:
        torch.set_num_threads(threads)


def _digests(images: torch.Tensor) -> list[bytes]:
    """A 128-bit BLAKE2b digest of each row of ``images`` ``(N, ...)`` (float32 bytes, C order)."""
    rows = images.detach().to("cpu", torch.float32).contiguous().numpy().reshape(len(images), -1)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]


def shifted_copies(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Every translate of every image of ``images`` ``(N, C, H, W)`` by ``(dy, dx)`` in
    ``[-max_shift, max_shift]^2``, zero fill, built as :func:`course_lib.data.random_shift` builds one (pad by
    ``max_shift``, then crop): ``((2 max_shift + 1)^2 N, C, H, W)``, bit for bit the images it can return."""
    check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    check_int(max_shift, "max_shift", 0)
    h, w = images.shape[-2:]
    padded = F.pad(images, [max_shift] * 4)
    offsets = range(2 * max_shift + 1)
    return torch.cat([padded[:, :, dy:dy + h, dx:dx + w] for dy in offsets for dx in offsets]).contiguous()


class TeacherTable(nn.Module):
    """A frozen teacher that answers from a table of its logits: ``table(x)`` equals ``teacher(x)`` in eval mode
    (to the float rounding of the batch each row was computed in).

    The table holds the teacher's logits on :func:`shifted_copies` ``(images, max_shift)``, computed in eval mode
    under ``torch.no_grad()`` in batches of :data:`TABLE_BATCH`, on one thread, the batches side by side
    (:func:`parallel_map`: the logits a serial loop gives). ``forward`` looks each row of its input up by its bytes
    (:func:`_digests`) and runs the teacher on the rows it does not find (and keeps them). ``seconds`` is the time
    spent running the teacher, ``rows`` the rows it ran on, so ``seconds_per_row`` is the teacher's cost of one
    image here; ``hits`` counts the rows answered from the table (what a caller would otherwise have run).

    A copy (``copy.deepcopy``, as every verb makes of its ``teacher``) is the table itself: the verbs that copy it
    read and fill the one table, and nothing trains the teacher inside (it is only ever run under
    ``torch.no_grad()``).
    """

    def __init__(self, teacher: nn.Module, images: torch.Tensor, *, max_shift: int) -> None:
        super().__init__()
        self.teacher = check_module(teacher, "teacher")
        self.seconds, self.rows, self.hits = 0.0, 0, 0
        self._index: dict[bytes, int] = {}
        self._logits: list[torch.Tensor] = []
        copies = shifted_copies(images, max_shift)
        batches = [copies[start:start + TABLE_BATCH] for start in range(0, len(copies), TABLE_BATCH)]
        for batch, (logits, seconds) in zip(batches, parallel_map([lambda b=b: self._run(b) for b in batches])):
            self._keep(batch, logits, seconds)

    def __deepcopy__(self, memo: dict) -> TeacherTable:
        return self

    @property
    def seconds_per_row(self) -> float:
        """Seconds of teacher forward pass per image, measured while the table was filled."""
        return self.seconds / max(self.rows, 1)

    def _run(self, images: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The teacher's logits on ``images`` (eval mode, no gradient) and the seconds they took."""
        start = time.perf_counter()
        with torch.no_grad(), evaluating(self.teacher):
            logits = self.teacher(images).detach()
        return logits, time.perf_counter() - start

    def _keep(self, images: torch.Tensor, logits: torch.Tensor, seconds: float) -> None:
        self.seconds += seconds
        self.rows += len(images)
        for digest, row in zip(_digests(images), logits):
            self._index.setdefault(digest, len(self._logits))
            self._logits.append(row)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's logits ``(N, classes)`` on ``x`` ``(N, ...)``."""
        digests = _digests(x)
        missing = [i for i, d in enumerate(digests) if d not in self._index]
        if missing:
            self._keep(x[missing], *self._run(x[missing]))
        self.hits += len(x) - len(missing)
        return torch.stack([self._logits[self._index[d]] for d in digests]).to(x.device)
