"""Execute the learner's notebook, confined, within its own time, for the learner: it never changes the score.

Executing tells the learner which cells raise or hang when run top to bottom. The grader runs it
between the public and the hidden cases, with every sandbox stopped: the kernel never runs while a
case is being run, and no process holds a hidden input yet, so the errors reported here cannot
carry one. The kernel is an ordinary IPython kernel started through :mod:`course_lib.grading.confinement.confine`
(limits, hidden paths and no network as the sandboxes, and a user of its own when the grader is
root), talking to nbclient over Unix sockets in its private folder (ZeroMQ's ``ipc`` transport: no
TCP port, and it works from inside a network namespace). It imports an unfenced copy of
``course_lib``, so ``check(...)`` cells work. Only the cells' errors are kept, each cut to a few
hundred characters: what a notebook prints is dropped.
"""
from __future__ import annotations

import logging
import queue
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync

from .options import Options
from .supervise import CONFINE
from .workspace import Workspace

KERNEL_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from ipykernel import kernelapp; "
               "kernelapp.launch_new_instance()")


@dataclass
class Execution:
    """What happened when the notebook ran: seconds, cells that raised, timed out or were not run (code cells
    numbered from 1, as JupyterLab shows them after Restart & Run all)."""

    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    timed_out: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    ran: bool = False


class _ConfinedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command goes through the confinement launcher."""

    launcher: list[str] = []

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [*self.launcher, "-f", self.connection_file]


class _ErrorsOnly(NotebookClient):
    """Keeps a cell's error (cut short) and drops everything else it outputs."""

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
        if msg["msg_type"] == "error":
            content = msg["content"]
            outs.append(nbformat.v4.new_output("error", ename=str(content.get("ename", ""))[:100],
                                               evalue=str(content.get("evalue", ""))[:300], traceback=[]))
        return None


def _not_a_stopped_poll(record: logging.LogRecord) -> bool:
    """False for asyncio's report of nbclient's output poll left waiting when a cell was stopped (noise)."""
    return not (record.exc_info and isinstance(record.exc_info[1], queue.Empty))


logging.getLogger("asyncio").addFilter(_not_a_stopped_poll)


def execute(nb: nbformat.NotebookNode, workspace: Workspace, options: Options) -> Execution:
    """Run a copy of ``nb`` in a confined kernel, each cell within ``options.cell_timeout`` seconds and all of them
    within ``options.execution_timeout``; never raises for the notebook's own errors."""
    nb = nbformat.from_dict(nb)
    result = Execution(ran=True)
    start = time.monotonic()
    cell_timeout = options.cell_timeout
    deadline = start + options.execution_timeout
    folder = workspace.folder("kernel", {}, kernel=True)
    connection = folder / "kernel.json"
    limits = options.process_limits(cpu_seconds=int(options.execution_timeout) + 10, open_files=1024)
    # the zoo's trained models ship inside the course_lib copy the kernel imports: nothing else to reach
    confinement = workspace.confinement(folder, limits, chown=(str(connection),), kernel=True)
    km = _ConfinedKernelManager(kernel_name="python3", transport="ipc", ip=str(folder / "ipc"),
                                connection_file=str(connection))
    km.launcher = [sys.executable, "-I", "-S", CONFINE, confinement.to_json(), "--",
                   sys.executable, "-s", "-c", KERNEL_BOOT, str(folder)]
    client = _ErrorsOnly(nb, km=km, timeout=int(cell_timeout), allow_errors=True, interrupt_on_timeout=False,
                         record_timing=False, startup_timeout=120, resources={"metadata": {"path": str(folder)}})
    try:
        with client.setup_kernel(env=workspace.environment(folder), cwd=str(folder)):
            _run_cells(client, nb, result, cell_timeout, deadline)
    except Exception as e:  # noqa: BLE001 - no kernel, a kernel dying at start...: the score stands anyway
        result.errors.append(f"the notebook could not be executed: {type(e).__name__}: {e}"[:300])
    result.seconds = time.monotonic() - start
    return result


def _run_cells(client: NotebookClient, nb: nbformat.NotebookNode, result: Execution, cell_timeout: float,
               deadline: float) -> None:
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    for number, i in enumerate(code, 1):  # cells are named by number, as JupyterLab's [n] after Run all
        cell = nb.cells[i]
        remaining = deadline - time.monotonic()
        if remaining < 1:
            result.skipped.append(number)
            continue
        client.timeout = max(1, int(min(cell_timeout, remaining)))
        try:
            client.execute_cell(cell, i)
        except CellTimeoutError:
            result.timed_out.append(number)
            run_sync(client.km.interrupt_kernel)()
        except DeadKernelError:
            result.errors.append(f"cell {number}: the kernel died")
            result.skipped += list(range(number + 1, len(code) + 1))
            return
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                result.errors.append(f"cell {number}: {out.get('ename')}: {out.get('evalue', '')}"[:300])


def notes(run: Execution) -> list[str]:
    """The lines of the learner's feedback about the execution."""
    if not run.ran:
        return ["The notebook was not executed (its execution never changes the score)."]
    lines = [f"The notebook ran for {run.seconds:.0f} s (for your information: this never changes the score)."]
    if run.errors:
        lines.append("Cells that raised an error: " + "; ".join(run.errors[:20]))
    if run.timed_out:
        lines.append("Cells stopped at the time limit: " + ", ".join(map(str, run.timed_out)))
    if run.skipped:
        lines.append("Cells not run (time limit reached or kernel dead): " + ", ".join(map(str, run.skipped)))
    return lines
