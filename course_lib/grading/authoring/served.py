"""Loaders whose passes are counted where the learner's code cannot reach: observations it cannot alter.

A rule such as "the test loader is read once, for the chosen student only" is observed by counting the passes
(calls of ``iter``) over a loader. A :class:`CountingLoader` counts them in the process that iterates it: right
for the reference (in the grader) and for ``check`` (in the learner's kernel), but in a sandbox the count would be
the learner's to change (``loader.passes = 1``, a patched ``__iter__``). So a sandbox replaces every
:class:`CountingLoader` among a case's arguments (:func:`serving`) by a :class:`ServedLoader` that holds
no data: each pass asks the grader for the batches (:data:`FETCH`, a request over the sandbox's pipe). The grader
builds the same case itself, answers with the batches of its own loader, counts the requests, and writes that
count into the observation, under the loader's ``counted_as``, over whatever the sandbox reported.

A module whose use decides a verdict (``distillation_step``'s teacher: it must run in eval mode, build no autograd
graph and end unchanged) is served the same way (:func:`serve`): in a sandbox the learner's code gets a
:class:`ServedModule` in its place, the same tree of submodules with zeros for its weights, whose forward sends
the input, every submodule's mode and whether it would build a graph (autograd on and a parameter that requires
a gradient) to the grader (:data:`FORWARD`). The grader runs its own copy of the module in those modes, without
a graph, answers with the output, counts the passes that would have built a graph, and writes that count and its
copy's parameters and buffers after the call into the observation. What the learner's process does to its
``ServedModule`` afterwards changes nothing; what it asks of it is what it did.
"""
from __future__ import annotations

import copy
import gc
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

FETCH: Callable[[int], list[Any]] | None = None  # set by a sandbox: position -> the batches, from the grader
# set by a sandbox: (position, input, every submodule's mode, builds a graph) -> the output, from the grader
FORWARD: Callable[[int, torch.Tensor, list[bool], bool], torch.Tensor] | None = None


class CountingLoader(DataLoader):
    """A ``DataLoader`` that counts its passes (the calls of ``iter(loader)``: a ``for`` loop, ``evaluate``);
    ``counted_as``: the name of the count in an observation."""

    def __init__(self, *args: Any, counted_as: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes, self.counted_as = 0, counted_as

    def __iter__(self):  # noqa: ANN204 - DataLoader's own iterator type
        self.passes += 1
        return super().__iter__()


class ServedLoader:
    """A loader without data, in a sandbox: each pass fetches the batches of argument ``position`` from the
    grader, which counts the passes."""

    def __init__(self, position: int, batches: int, counted_as: str) -> None:
        self.position, self.batches, self.counted_as, self.passes = position, batches, counted_as, 0

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[Any]:
        if FETCH is None:
            raise RuntimeError("a served loader is read in a sandbox only")
        self.passes += 1  # what the sandbox reports; the grader's own count replaces it
        return iter(FETCH(self.position))

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"in the grader this loader gives its batches by iteration only (no .{name}): "
                             "`for inputs, labels in loader`")


def builds_graph(module: nn.Module) -> bool:
    """Whether a forward pass of ``module`` now would build an autograd graph: autograd is on and at least one of
    its parameters requires a gradient (``torch.no_grad()``, ``torch.inference_mode()`` or
    ``requires_grad_(False)`` each prevent it; detaching the output afterwards does not)."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters())


def _count_graph(module: nn.Module, args: tuple) -> None:
    module.graph_passes += builds_graph(module)


def serve(module: nn.Module, *, state_as: str, graph_passes_as: str | None = None) -> nn.Module:
    """Mark a case's ``module`` to be run by the grader in a sandbox (see the module docstring), and count, here,
    its forward passes that build a graph (``module.graph_passes``). ``state_as`` and ``graph_passes_as``: the
    names, in the case's observation, of the module's parameters and buffers after the call and of that count
    (``None``: not observed), which a sandbox's grader replaces by its own. Returns ``module``."""
    module.served_as = (state_as, graph_passes_as)
    module.graph_passes = 0
    module.register_forward_pre_hook(_count_graph)
    return module


class ServedModule(nn.Module):
    """In a sandbox, a served module: its tree of submodules (their modes can be set as usual), zeros for its
    parameters and buffers, and a forward that the grader runs (:data:`FORWARD`)."""

    served_position: int

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if FORWARD is None:
            raise RuntimeError("a served module is run in a sandbox only")
        if kwargs or len(args) != 1 or not isinstance(args[0], torch.Tensor):
            raise TypeError("in the grader this module takes one input tensor, `module(inputs)`; got "
                            f"{len(args)} positional argument(s) and keyword(s) {sorted(kwargs)}")
        return FORWARD(self.served_position, args[0].detach(), [m.training for m in self.modules()],
                       builds_graph(self))


def _served_copy(module: nn.Module, position: int) -> nn.Module:
    """``module`` as a :class:`ServedModule` of argument ``position``: same submodules and modes, zero weights."""
    shell = copy.deepcopy(module)
    with torch.no_grad():
        for tensor in [*shell.parameters(), *shell.buffers()]:
            tensor.zero_()
    shell.__class__ = type(f"Served{type(module).__name__}", (ServedModule, type(module)), {})
    shell.served_position = position
    return shell


def serving(make: Callable[[], tuple[tuple, dict]]) -> Callable[[], tuple[tuple, dict]]:
    """A case's ``make`` for a sandbox: every :class:`CountingLoader` argument replaced by a :class:`ServedLoader`
    and every served module (:func:`serve`) by its :class:`ServedModule`, the originals and their data collected
    before the learner's code runs, so that it cannot find them."""
    def make_served() -> tuple[tuple, dict]:
        args, kwargs = make()
        modules = served_modules(args)
        args = tuple(ServedLoader(k, len(a), a.counted_as) if isinstance(a, CountingLoader)
                     else _served_copy(a, k) if k in modules else a for k, a in enumerate(args))
        gc.collect()
        return args, kwargs
    return make_served


def counted_loaders(args: tuple) -> dict[int, CountingLoader]:
    """``{position: loader}`` of the :class:`CountingLoader` arguments of a case (the grader's own copy)."""
    return {k: a for k, a in enumerate(args) if isinstance(a, CountingLoader)}


def served_modules(args: tuple) -> dict[int, nn.Module]:
    """``{position: module}`` of the served modules (:func:`serve`) among the arguments of a case."""
    return {k: a for k, a in enumerate(args)
            if isinstance(a, nn.Module) and not isinstance(a, ServedModule) and "served_as" in vars(a)}
