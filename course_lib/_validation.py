"""Argument checks shared by every public entry point of ``course_lib``.

One rule and one message style: a value of the wrong *type* raises ``TypeError``, a value of the right
type outside what is allowed raises ``ValueError``, and the message says
``"<argument> must be <what is allowed>, got <what was given>"``. ``bool`` is never accepted where a
number is expected (``True`` is an ``int`` in Python, but ``rank=True`` is a mistake, not a rank).
Each check returns the value, converted where that helps (``int``, ``float``), so it can be used inline.

It also holds the contract's machinery (see :mod:`course_lib`): the registry of the functions that take a model
(:func:`verb`, :func:`reads_model`, :func:`changes_model`) and :func:`copy_model`, the one copy every verb makes.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from numbers import Integral, Real
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrize

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)


def _given(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of dtype {value.dtype} and shape {tuple(value.shape)}"
    if isinstance(value, nn.Module):
        return f"a {type(value).__name__}"
    text = repr(value)
    return f"{text[:80]}..." if len(text) > 80 else text


def _type_error(name: str, allowed: str, value: object) -> TypeError:
    kind = "" if isinstance(value, (torch.Tensor, nn.Module)) else f" ({type(value).__name__})"
    return TypeError(f"{name} must be {allowed}, got {_given(value)}{kind}")


def _value_error(name: str, allowed: str, value: object) -> ValueError:
    return ValueError(f"{name} must be {allowed}, got {_given(value)}")


def _range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_int(value: object, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int``; TypeError unless an integer (not bool), ValueError outside ``[low, high]``."""
    allowed = "an integer" + _range(low, high)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _type_error(name, allowed, value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise _value_error(name, allowed, value)
    return int(value)


def check_number(value: object, name: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, meaning: str = "") -> float:
    """``value`` as a finite ``float``; TypeError unless a real number (not bool), ValueError if NaN,
    infinite, or outside the interval (``low_open``/``high_open`` exclude the end points). ``meaning``
    (e.g. ``"the fraction of weights to zero"``) is added to the message."""
    allowed = "a finite number" + _range(low, high, low_open, high_open) + (f" ({meaning})" if meaning else "")
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _type_error(name, allowed, value)
    value = float(value)
    if not math.isfinite(value) \
            or (low is not None and (value <= low if low_open else value < low)) \
            or (high is not None and (value >= high if high_open else value > high)):
        raise _value_error(name, allowed, value)
    return value


def check_positive(value: object, name: str) -> float:
    """A finite number ``> 0`` (a learning rate, a temperature, a scale)."""
    return check_number(value, name, 0.0, None, low_open=True)


def check_fraction(value: object, name: str, *, meaning: str = "", high_open: bool = False) -> float:
    """A number in ``[0, 1]`` (``[0, 1)`` with ``high_open``); ``meaning`` as in :func:`check_number`."""
    return check_number(value, name, 0.0, 1.0, high_open=high_open, meaning=meaning)


def check_ints(values: object, name: str, low: int | None = None, high: int | None = None) -> tuple[int, ...]:
    """A non-empty tuple or list of integers, each checked by :func:`check_int`; returned as a tuple."""
    if not isinstance(values, (tuple, list)):
        raise _type_error(name, "a tuple of integers" + _range(low, high), values)
    if not values:
        raise ValueError(f"{name} must hold at least one integer{_range(low, high)}, got none")
    return tuple(check_int(v, f"{name} entry", low, high) for v in values)


def check_bool(value: object, name: str) -> bool:
    """``True`` or ``False`` (not 0, 1 or None)."""
    if not isinstance(value, bool):
        raise _type_error(name, "True or False", value)
    return value


def check_choice(value: T, name: str, choices: Collection[T]) -> T:
    """One of ``choices`` (compared with ``==``): TypeError, listing them, if ``value`` has none of their types
    (``observer=1`` where names are expected), ValueError otherwise."""
    allowed = "one of " + ", ".join(map(repr, choices))
    if not any(type(value) is type(choice) for choice in choices):
        raise _type_error(name, allowed, value)
    if value not in choices:
        raise _value_error(name, allowed, value)
    return value


def check_module(value: object, name: str = "model") -> nn.Module:
    """A ``torch.nn.Module``."""
    if not isinstance(value, nn.Module):
        raise _type_error(name, "a torch.nn.Module", value)
    return value


def check_tensor(value: object, name: str, *, floating: bool = False, min_dim: int = 0) -> torch.Tensor:
    """A ``torch.Tensor`` (TypeError otherwise, and for an integer or bool tensor when ``floating``);
    ValueError if it has fewer than ``min_dim`` dimensions."""
    allowed = ("a floating-point tensor" if floating else "a tensor") + \
        (f" with at least {min_dim} dimension{'s' if min_dim > 1 else ''}" if min_dim else "")
    if not isinstance(value, torch.Tensor) or (floating and not value.is_floating_point()):
        raise _type_error(name, allowed, value)
    if value.dim() < min_dim:
        raise _value_error(name, allowed, value)
    return value


def check_float_tensor(value: object, name: str, *, min_dim: int = 0) -> torch.Tensor:
    """A floating-point tensor (see :func:`check_tensor`)."""
    return check_tensor(value, name, floating=True, min_dim=min_dim)


def check_names(names: Iterable[str], name: str, known: Collection[str], what: str) -> list[str]:
    """``names`` as a non-empty list of distinct strings, each one of ``known``: the names of a selection
    (``what`` says what they must name, e.g. ``"Linear/Conv2d layers of the model"``)."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise _type_error(name, f"an iterable of names of {what}", names)
    names = list(names)
    if not all(isinstance(n, str) for n in names):
        raise _type_error(name, f"names (strings) of {what}", names)
    choices = f"{what} ({', '.join(known)})"
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{name} must name {choices}; {', '.join(map(repr, unknown))} "
                         f"{'is' if len(unknown) == 1 else 'are'} not among them")
    if not names:
        raise ValueError(f"{name} must name at least one of the {choices}, got none")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} must name each of the {what} at most once, got {names!r}")
    return names


def weight_parametrization(module: nn.Module, kind: type[T]) -> T | None:
    """The :mod:`torch.nn.utils.parametrize` parametrization of type ``kind`` on ``module.weight``, or ``None``."""
    if not parametrize.is_parametrized(module, "weight"):
        return None
    return next((p for p in module.parametrizations.weight if isinstance(p, kind)), None)


def weight_layers(model: nn.Module, kinds: tuple[type[nn.Module], ...] = WEIGHT_LAYERS) -> dict[str, nn.Module]:
    """The layers of ``model`` of the given ``kinds`` (default Linear and Conv2d) by qualified name, in
    ``model.named_modules()`` order."""
    return {name: m for name, m in check_module(model).named_modules() if isinstance(m, kinds)}


def select_layers(model: nn.Module, layers: Iterable[str] | None, *,
                  kinds: tuple[type[nn.Module], ...] = WEIGHT_LAYERS, name: str = "layers") -> dict[str, nn.Module]:
    """The layers a verb works on: every layer of ``kinds`` when ``layers`` is ``None``, else those named.

    This is the one meaning of the ``layers=`` keyword of every verb: names as in ``model.named_modules()``.
    ValueError if the model has no such layer or a name is not one of them; the messages call the
    selection ``name`` (the argument that gave the names).
    """
    found = weight_layers(model, kinds)
    kind_names = "/".join(k.__name__ for k in kinds)
    if not found:
        raise ValueError(f"{type(model).__name__} has no {kind_names} layer")
    if layers is None:
        return found
    return {n: found[n] for n in check_names(layers, name, found, f"{kind_names} layers of the model")}


def check_layer_mapping(mapping: object, name: str, model: nn.Module,
                        kinds: tuple[type[nn.Module], ...] = WEIGHT_LAYERS) -> dict[str, Any]:
    """A per-layer mapping of settings (``{layer name: value}``, e.g. per-layer sparsities or bits) whose
    keys are validated like ``layers=`` (:func:`select_layers`), the errors naming ``the keys of <name>``;
    returns it as a ``dict``."""
    if not isinstance(mapping, Mapping):
        raise _type_error(name, "a mapping {layer name: value}", mapping)
    select_layers(model, mapping.keys(), kinds=kinds, name=f"the keys of {name}")
    return dict(mapping)


def check_sparsity(value: object, name: str = "sparsity", *, of: str = "weights", high_open: bool = False) -> float:
    """A sparsity: the fraction in ``[0, 1]`` (``[0, 1)`` with ``high_open``) of the ``of`` to remove."""
    return check_fraction(value, name, meaning=f"the fraction of {of} to remove", high_open=high_open)


def check_loader(loader: object, name: str = "loader") -> Iterable:
    """An iterable of batches (a ``DataLoader``, a list of ``(inputs, targets)`` pairs or of tensors): TypeError
    for anything else (``None``, a tensor, a string), ValueError if it has a length and it is 0. A loader
    without a length is checked by whoever iterates it (it must yield at least one batch)."""
    if isinstance(loader, (str, bytes, torch.Tensor)) or not isinstance(loader, Iterable):
        raise _type_error(name, "an iterable of batches such as a DataLoader", loader)
    try:
        empty = len(loader) == 0
    except TypeError:  # an iterable dataset: its length is unknown
        empty = False
    if empty:
        raise ValueError(f"{name} must yield at least one batch, got an empty {type(loader).__name__}")
    return loader


# --- The contract: which public functions take a model, and what they promise about it ---------------------

CONTRACT: dict[str, Callable[..., Any]] = {}
"""Every public function of the package whose first argument is a model, by ``module.name``; each carries its
kind in ``__contract__``: ``"verb"`` (:func:`verb`), ``"reader"`` (:func:`reads_model`) or ``"in_place"``
(:func:`changes_model`). ``tests/test_contract.py`` checks each kind's promise, and fails for a public function
taking a model first that is not registered."""


def _register(function: F, kind: str) -> F:
    function.__contract__ = kind
    CONTRACT[f"{function.__module__}.{function.__qualname__}"] = function
    return function


def verb(function: F) -> F:
    """Register a model-level verb: it returns a new model (or a ``Trained``/``Result`` holding one) made with
    :func:`copy_model`, leaves its argument as it was (weights, buffers, parametrizations, train/eval modes,
    classes), takes its settings keyword-only, and rejects bad arguments with the package's messages."""
    return _register(function, "verb")


def reads_model(function: F) -> F:
    """Register a function that measures or reads a model (a count, a score, a file) and leaves it as it was,
    train/eval modes included."""
    return _register(function, "reader")


def changes_model(function: F) -> F:
    """Register a function that changes the model it is given, by design (a training loop, one optimizer step,
    loading weights, a forward pass that updates BatchNorm statistics)."""
    return _register(function, "in_place")


def copy_model(model: nn.Module, name: str = "model") -> nn.Module:
    """A deep copy of ``model`` (checked to be a module) that shares nothing with it: the copy every verb works on.

    :mod:`torch.nn.utils.parametrize` gives a parametrized module a class of its own and ``copy.deepcopy`` reuses
    that class, while ``parametrize.remove_parametrizations`` edits it (it deletes the ``weight`` property). Each
    parametrized module of the copy therefore gets a class of its own too, so removing a parametrization from the
    copy leaves ``model`` working.
    """
    copied = copy.deepcopy(check_module(model, name))
    for module in copied.modules():
        if parametrize.is_parametrized(module):
            cls = type(module)
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
    return copied


def plain_weights(model: nn.Module) -> nn.Module:
    """``model`` (a copy made by :func:`copy_model`) with every parametrized ``weight`` (pruning mask, binary or
    shared weights) replaced, in place, by a plain parameter holding the value the layer computed with."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
