"""A per-layer compression policy under a budget: each layer's sparsity and bit width, chosen from measured
sensitivity.

Layer $\\ell$ (a Linear or Conv2d weight of $n_\\ell$ entries, $C_\\ell$ output channels, $p_\\ell$ output positions
per input) gets an *option* $o = (s, b)$ from a grid: magnitude pruning to sparsity $s$ (it keeps
$k_\\ell(s) = n_\\ell - \\operatorname{round}(s\\,n_\\ell)$ weights, :func:`~course_lib.pruning.magnitude_mask`) and,
for $b < 32$, symmetric per-channel linear quantization of the kept weights to $b$-bit codes
(:func:`~course_lib.quantization.ptq.quantize_weight`); $b = 32$ keeps float32. Its *size* in the budget's unit:

- ``"parameters"``: the kept weights, $c_\\ell(o) = k_\\ell(s)$;
- ``"bytes"``: a bitmask of the kept positions (only if $s > 0$), the codes and one float32 scale per output
  channel (only if $b < 32$): $c_\\ell(o) = \\lceil (n_\\ell [s > 0] + b\\,k_\\ell(s) + 32\\,C_\\ell [b < 32]) / 8
  \\rceil$;
- ``"macs"``: the multiply-accumulates a sparse kernel does per input, $c_\\ell(o) = p_\\ell\\,k_\\ell(s)$.

Biases and BatchNorm parameters are outside the budget (the policy does not change them).

**Sensitivity** (Han et al., 2015, Sec. 4.4): $a_\\ell(o)$ is the validation metric (accuracy) with layer $\\ell$
alone set to $o$ and every other layer dense, measured without fine-tuning; $d_\\ell(o) = a - a_\\ell(o)$ is the drop
from the dense model's $a$. Assuming the drops add up across layers, the policy solves

$$\\min_{o_1, \\dots, o_L} \\sum_\\ell d_\\ell(o_\\ell) \\quad \\text{s.t.} \\quad
\\sum_\\ell c_\\ell(o_\\ell) \\le B ,$$

a multiple-choice knapsack, **greedily**: start with every layer dense ($s = 0$, $b = 32$) and, while the total
size exceeds $B$, move the one layer to the cheaper option with the least accuracy lost per unit saved,

$$(\\ell, o') = \\arg\\min_{\\ell,\\; o' : c_\\ell(o') < c_\\ell(o_\\ell)}
\\frac{d_\\ell(o') - d_\\ell(o_\\ell)}{c_\\ell(o_\\ell) - c_\\ell(o')} .$$

The last move usually overshoots (the grid is coarse), so a second pass spends what is left: while some layer's
costlier option fits in $B - \\sum_\\ell c_\\ell(o_\\ell)$ and lowers its drop, take the one that recovers the most
metric per unit spent.

The budget always holds (the sizes are exact counts); the accuracy is a greedy estimate, which fine-tuning with
the masks and the quantizer in force (:func:`apply_policy`, then :func:`course_lib.training.fine_tune`) improves.
Automated policies search the same space with reinforcement learning: AMC (He et al., 2018) for sparsities, HAQ
(Wang et al., 2019) for bit widths; MIT 6.5940's lab 1 picks per-layer sparsities from the scan by hand.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.data import DataLoader

from .._validation import (
    check_choice,
    check_layer_mapping,
    check_loader,
    check_module,
    check_number,
    check_sparsity,
    copy_model,
    reads_model,
    select_layers,
    verb,
)
from ..metrics import layer_macs
from ..pruning import magnitude_prune
from ..quantization.ptq import quantize_weight
from ..training import evaluate

UNITS = ("parameters", "bytes", "macs")
FLOAT_BITS = 32  # a width of 32 keeps the layer in float32
MIN_BITS, MAX_BITS = 2, 16  # quantized widths (1 bit would move pruned zeros to +-alpha)
SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
BITS = (32, 8, 4, 2)
Option = tuple[float, int]  # (sparsity, bits)


class QuantizedWeight(nn.Module):
    """Parametrization ``w -> quantize_weight(w, bits)``: symmetric per-channel fake quantization with the
    straight-through gradient, so fine-tuning keeps the weight on its ``bits``-bit grid (a zero stays zero)."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return quantize_weight(weight, self.bits, per_channel=True)


@dataclass(frozen=True)
class LayerChoice:
    """One layer's setting: ``sparsity``, ``bits`` (32: float), its ``size`` in the policy's unit, and the metric
    the scan measured with this layer alone so set (``accuracy``; ``None`` in a policy made by hand)."""

    sparsity: float
    bits: int
    size: int
    accuracy: float | None = None


@dataclass(frozen=True)
class Policy:
    """What :func:`choose_policy` chose: ``layers`` (name -> :class:`LayerChoice`) for a ``budget`` in ``unit``;
    ``reference`` is the dense model's metric on the validation loader (``None`` in a policy made by hand,
    :func:`make_policy`). :meth:`apply` makes the model."""

    unit: str
    budget: float
    layers: dict[str, LayerChoice]
    reference: float | None = None

    @property
    def size(self) -> int:
        """Total size of the chosen layers in ``unit`` (at most ``budget``)."""
        return sum(c.size for c in self.layers.values())

    @property
    def estimated_drop(self) -> float | None:
        """The objective: the sum of the layers' measured drops, $\\sum_\\ell d_\\ell(o_\\ell)$ (``None`` by hand)."""
        if self.reference is None or any(c.accuracy is None for c in self.layers.values()):
            return None
        return sum(self.reference - c.accuracy for c in self.layers.values())

    def apply(self, model: nn.Module) -> nn.Module:
        """``apply_policy(model, policy=self)``."""
        return apply_policy(model, policy=self)


@dataclass(frozen=True)
class Scan:
    """A sensitivity scan: ``reference`` (the dense metric) and ``accuracy[layer][(sparsity, bits)]``."""

    reference: float
    accuracy: dict[str, dict[Option, float]]


def _check_grid(sparsities: object, bits: object) -> tuple[list[float], list[int]]:
    """The grid, with the dense option (0 and 32) always in it."""
    for value, name in ((sparsities, "sparsities"), (bits, "bits")):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise TypeError(f"{name} must be an iterable such as {SPARSITIES if name == 'sparsities' else BITS}, "
                            f"got {value!r} ({type(value).__name__})")
    grid_s = sorted({0.0, *(check_sparsity(s, "sparsities entry", high_open=True) for s in sparsities)})
    return grid_s, sorted({FLOAT_BITS, *(_check_bits(b, "bits entries") for b in bits)}, reverse=True)


def _check_bits(value: object, name: str) -> int:
    """A bit width: an integer in ``[MIN_BITS, MAX_BITS]``, or 32 (float)."""
    allowed = f"integers in [{MIN_BITS}, {MAX_BITS}] or {FLOAT_BITS} (float)"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    if value != FLOAT_BITS and not MIN_BITS <= value <= MAX_BITS:
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def _configure(model: nn.Module, settings: Mapping[str, Option]) -> nn.Module:
    """A copy of ``model`` with each named layer pruned and quantized as ``settings`` say (masks and quantizers as
    parametrizations, so both stay in force while the copy trains)."""
    pruned = {name: s for name, (s, _) in settings.items() if s > 0}
    work = magnitude_prune(model, sparsity=pruned, scope="layer") if pruned else copy_model(model)
    layers = select_layers(work, None)
    for name, (_, b) in settings.items():
        if b != FLOAT_BITS:
            parametrize.register_parametrization(layers[name], "weight", QuantizedWeight(b))
    return work


def _best_move(names: list[str], options: list[Option], current: dict[str, Option],
               drop: dict[str, dict[Option, float]], size: Callable[[str, Option], int]) -> tuple[str, Option]:
    """The greedy rule: the (layer, cheaper option) losing the least metric per unit saved (ties: the larger
    saving, then the first layer)."""
    moves = []
    for n in names:
        for o in options:
            saved = size(n, current[n]) - size(n, o)
            if saved > 0:
                moves.append(((drop[n][o] - drop[n][current[n]]) / saved, -saved, n, o))
    _, _, name, option = min(moves, key=lambda move: move[:2])
    return name, option


def _best_refill(names: list[str], options: list[Option], current: dict[str, Option],
                 drop: dict[str, dict[Option, float]], size: Callable[[str, Option], int],
                 left: float) -> tuple[str, Option] | None:
    """The refill rule: the (layer, costlier option) that fits in the ``left`` budget and recovers the most metric
    per unit spent, or ``None`` if no such move lowers the drop."""
    moves = []
    for n in names:
        for o in options:
            spent = size(n, o) - size(n, current[n])
            if 0 < spent <= left and drop[n][o] < drop[n][current[n]]:
                moves.append(((drop[n][current[n]] - drop[n][o]) / spent, -spent, n, o))
    if not moves:
        return None
    _, _, name, option = max(moves, key=lambda move: move[:2])
    return name, option


def _sizes(model: nn.Module, unit: str) -> Callable[[str, Option], int]:
    """``size(layer, option)`` in ``unit`` (see the module docstring)."""
    layers = select_layers(model, None)
    positions = ({name: macs // layers[name].weight.numel() for name, macs in layer_macs(model).items()}
                 if unit == "macs" else {})

    def size(name: str, option: Option) -> int:
        s, b = option
        n = layers[name].weight.numel()
        kept = n - round(s * n)
        if unit == "parameters":
            return kept
        if unit == "macs":
            return positions[name] * kept
        scales = FLOAT_BITS * layers[name].weight.shape[0] if b != FLOAT_BITS else 0
        return math.ceil(((n if s > 0 else 0) + b * kept + scales) / 8)

    return size


@reads_model
def make_policy(model: nn.Module, *, settings: Mapping[str, Option], unit: str = "parameters") -> Policy:
    """A policy by hand, ``settings`` = ``{layer name: (sparsity, bits)}`` (a uniform setting, or the per-layer
    sparsities global pruning gave), with each layer's size in ``unit`` and the total as its budget: what a chosen
    policy is compared with at equal size."""
    check_module(model)
    check_choice(unit, "unit", UNITS)
    settings = check_layer_mapping(settings, "settings", model)
    checked = {}
    for name, option in settings.items():
        if not isinstance(option, tuple) or len(option) != 2:
            raise TypeError(f"settings[{name!r}] must be a pair (sparsity, bits), got {option!r}")
        checked[name] = (check_sparsity(option[0], f"settings[{name!r}] sparsity", high_open=True),
                          _check_bits(option[1], f"settings[{name!r}] bits"))
    size = _sizes(model, unit)
    layers = {name: LayerChoice(s, b, size(name, (s, b))) for name, (s, b) in checked.items()}
    return Policy(unit, sum(c.size for c in layers.values()), layers)


@reads_model
def policy_scan(model: nn.Module, loader: DataLoader, *, sparsities: Iterable[float] = SPARSITIES,
                bits: Iterable[int] = BITS, layers: Iterable[str] | None = None,
                metric: Callable[[nn.Module, DataLoader], float] = evaluate) -> Scan:
    """The sensitivity scan behind :func:`choose_policy`: ``metric(model with ONE layer at (s, b), loader)`` for
    every selected layer and every option of the grid ``sparsities x bits`` (0 and 32 are always added; the dense
    option is not measured, it is ``reference``). Like :func:`~course_lib.pruning.layer_sensitivity`, with bit
    widths too; ``metric`` may recalibrate BatchNorm before it evaluates (pruning shifts the statistics)."""
    check_module(model)
    check_loader(loader)
    grid_s, grid_b = _check_grid(sparsities, bits)
    if not callable(metric):
        raise TypeError(f"metric must be a function (model, loader) -> float, got {metric!r}")
    names = list(select_layers(model, layers))
    reference = metric(copy_model(model), loader)
    accuracy: dict[str, dict[Option, float]] = {}
    for name in names:
        accuracy[name] = {(s, b): reference if (s, b) == (0.0, FLOAT_BITS) else
                          metric(_configure(model, {name: (s, b)}), loader) for s in grid_s for b in grid_b}
    return Scan(reference, accuracy)


@reads_model
def choose_policy(model: nn.Module, loader: DataLoader, *, budget: float, unit: str = "parameters",
                  sparsities: Iterable[float] = SPARSITIES, bits: Iterable[int] = BITS,
                  layers: Iterable[str] | None = None, metric: Callable[[nn.Module, DataLoader], float] = evaluate,
                  scan: Scan | None = None) -> Policy:
    """Per-layer sparsity and bit width for ``model`` within ``budget`` ``unit``, chosen greedily from the
    sensitivity measured on ``loader`` (the validation split; see the module docstring for the sizes, the
    objective and the greedy rule).

    Args:
        budget: the most the selected layers may hold, in ``unit``: ``"parameters"`` (kept weights),
            ``"bytes"`` (bitmask + codes + scales) or ``"macs"`` (sparse multiply-accumulates per input).
            Bit widths change only the bytes: with another unit every layer stays float32 (``bits`` is ignored).
        sparsities, bits, layers, metric: the grid and the layers of the scan (:func:`policy_scan`).
        scan: a :func:`policy_scan` of this model to reuse instead of measuring again (``loader`` is then unused);
            it must cover the grid.

    Returns a :class:`Policy`; ValueError if even the smallest option of every layer exceeds ``budget``.
    """
    check_module(model)
    check_loader(loader)
    check_choice(unit, "unit", UNITS)
    budget = check_number(budget, "budget", 0.0, None, low_open=True, meaning=f"the most {unit} the layers may hold")
    grid_s, grid_b = _check_grid(sparsities, bits if unit == "bytes" else (FLOAT_BITS,))
    names = list(select_layers(model, layers))
    if scan is None:
        scan = policy_scan(model, loader, sparsities=grid_s, bits=grid_b, layers=names, metric=metric)
    elif not isinstance(scan, Scan):
        raise TypeError(f"scan must be a Scan from policy_scan or None, got {type(scan).__name__}")
    options = [(s, b) for s in grid_s for b in grid_b]
    missing = [name for name in names if name not in scan.accuracy or not set(options) <= set(scan.accuracy[name])]
    if missing:
        raise ValueError(f"scan must cover every option of the grid for the layers {names}; it lacks some for "
                         f"{missing}")
    size = _sizes(model, unit)
    smallest = sum(min(size(name, o) for o in options) for name in names)
    if budget < smallest:
        raise ValueError(f"budget must be at least {smallest:,} {unit}, the smallest this grid reaches "
                         f"(every layer at its smallest option), got {budget:g}")
    drop = {name: {o: scan.reference - scan.accuracy[name][o] for o in options} for name in names}
    current = dict.fromkeys(names, (0.0, FLOAT_BITS))
    total = sum(size(name, current[name]) for name in names)
    while total > budget:
        name, option = _best_move(names, options, current, drop, size)
        total += size(name, option) - size(name, current[name])
        current[name] = option
    while (move := _best_refill(names, options, current, drop, size, budget - total)) is not None:
        name, option = move
        total += size(name, option) - size(name, current[name])
        current[name] = option
    choices = {name: LayerChoice(s, b, size(name, (s, b)), scan.accuracy[name][(s, b)])
               for name, (s, b) in current.items()}
    return Policy(unit, budget, choices, scan.reference)


@verb
def apply_policy(model: nn.Module, *, policy: Policy) -> nn.Module:
    """A copy of ``model`` with each layer of ``policy`` magnitude-pruned to its sparsity (a mask, as
    :func:`~course_lib.pruning.magnitude_prune` with ``scope="layer"``) and, below 32 bits, its weight quantized
    to its bit width (:class:`QuantizedWeight`); both are parametrizations, in force while the copy fine-tunes
    (:func:`course_lib.training.fine_tune`); :func:`~course_lib.pruning.make_permanent` folds them."""
    check_module(model)
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a Policy from choose_policy, got {type(policy).__name__}")
    select_layers(model, policy.layers, name="the layers of policy")
    return _configure(model, {name: (c.sparsity, c.bits) for name, c in policy.layers.items()})
