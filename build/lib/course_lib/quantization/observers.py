"""Observers: modules that watch the values flowing through them and choose the range to quantize.

An observer is called like an identity layer on calibration batches; :meth:`Observer.calculate_qparams`
then turns the range it settled on into ``(scale, zero_point)`` with
:func:`~course_lib.quantization.affine.compute_qparams`. The range is the trade-off of the chapter
(Nagel et al., 2021): the full ``[min, max]`` never clips but lets one outlier coarsen the grid for
every value; a percentile or the MSE-optimal threshold clips the tails to refine the grid.

- :class:`MinMaxObserver`: running minimum and maximum (no clipping).
- :class:`MovingAverageObserver`: exponential moving averages of each batch's min and max
  (``range <- range + momentum * (batch range - range)``), as PyTorch's QAT default.
- :class:`PercentileObserver`: the ``percentile`` and ``100 - percentile`` percentiles of the values seen.
- :class:`MSEObserver`: the range ``t * [min, max]``, ``t`` in ``(0, 1]`` on a grid, that minimises the
  mean squared error ``mean((x - fake_quantize(x))^2)`` of the values seen.

With ``axis`` set, each slice along ``axis`` (a weight's output channel) gets its own range.
Percentile and MSE observers keep the values they see (at most ``max_samples`` per batch and channel,
drawn with a seeded generator), so they are meant for a few calibration batches.
"""
from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import nn

from .affine import compute_qparams, fake_quantize, qrange


class Observer(nn.Module):
    """Base class: records statistics of its input in ``forward`` (returning the input unchanged).

    Args:
        bits, signed, symmetric: the code grid, as in :func:`compute_qparams`.
        axis: ``None`` for one range per tensor, or the dimension of the channels (0 for weights).
    """

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False, axis: int | None = None) -> None:
        super().__init__()
        qrange(bits, signed)
        if symmetric and not signed:
            raise ValueError("symmetric=True needs signed=True (see compute_qparams)")
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, Integral)):
            raise ValueError(f"axis must be None or an integer, got {axis!r}")
        self.bits, self.signed, self.symmetric, self.axis = bits, signed, symmetric, axis
        self.batches = 0

    def _channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as ``(C, -1)`` with channels along ``axis`` (``(1, -1)`` per tensor), detached, float32."""
        x = x.detach().float()
        if self.axis is None:
            return x.reshape(1, -1)
        if not -x.dim() <= self.axis < x.dim():
            raise ValueError(f"axis {self.axis} is out of range for an input of shape {tuple(x.shape)}")
        return x.movedim(self.axis, 0).reshape(x.shape[self.axis], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
            raise ValueError("an observer takes a non-empty floating-point tensor")
        self.observe(self._channels_first(x))
        self.batches += 1
        return x

    def observe(self, x: torch.Tensor) -> None:
        """Update the statistics with ``x`` of shape ``(C, N)``."""
        raise NotImplementedError

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_min, x_max)``, each ``(C,)`` (``C = 1`` per tensor)."""
        raise NotImplementedError

    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, zero_point)`` for the range observed: ``(C,)`` with ``axis``, 0-d tensors without."""
        if self.batches == 0:
            raise ValueError(f"{type(self).__name__} has not observed anything yet; run calibration data through it")
        lo, hi = self.range()
        scale, zero_point = compute_qparams(lo, hi, self.bits, self.signed, self.symmetric)
        if self.axis is None:
            return scale.reshape(()), zero_point.reshape(())
        return scale, zero_point

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}, symmetric={self.symmetric}, axis={self.axis}"


class MinMaxObserver(Observer):
    """The smallest and largest value seen (per channel with ``axis``)."""

    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.amin(1), x.amax(1)
        if self.batches:
            lo, hi = torch.minimum(lo, self.min_val), torch.maximum(hi, self.max_val)
        self.register_buffer("min_val", lo)
        self.register_buffer("max_val", hi)

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.min_val, self.max_val


class MovingAverageObserver(MinMaxObserver):
    """Exponential moving average of each batch's min and max, ``momentum`` the weight of the new batch."""

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False, axis: int | None = None,
                 momentum: float = 0.01) -> None:
        super().__init__(bits, signed, symmetric, axis)
        if isinstance(momentum, bool) or not isinstance(momentum, Real) or not 0 < momentum <= 1:
            raise ValueError(f"momentum must be a number in (0, 1], got {momentum!r}")
        self.momentum = float(momentum)

    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.amin(1), x.amax(1)
        if self.batches:
            lo = self.min_val + self.momentum * (lo - self.min_val)
            hi = self.max_val + self.momentum * (hi - self.max_val)
        self.register_buffer("min_val", lo)
        self.register_buffer("max_val", hi)


class _SampleObserver(Observer):
    """Keeps (a seeded random subset of) the values it sees, ``(C, N)``."""

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False, axis: int | None = None,
                 max_samples: int = 16384, seed: int = 0) -> None:
        super().__init__(bits, signed, symmetric, axis)
        if isinstance(max_samples, bool) or not isinstance(max_samples, Integral) or max_samples < 1:
            raise ValueError(f"max_samples must be a positive integer, got {max_samples!r}")
        self.max_samples = int(max_samples)
        self.generator = torch.Generator().manual_seed(seed)
        self.samples: list[torch.Tensor] = []

    def observe(self, x: torch.Tensor) -> None:
        if x.shape[1] > self.max_samples:
            keep = torch.randperm(x.shape[1], generator=self.generator)[: self.max_samples]
            x = x[:, keep.to(x.device)]
        if self.samples and self.samples[0].shape[0] != x.shape[0]:
            raise ValueError(f"expected {self.samples[0].shape[0]} channels, got {x.shape[0]}")
        self.samples.append(x.cpu())

    def values(self) -> torch.Tensor:
        return torch.cat(self.samples, dim=1)


class PercentileObserver(_SampleObserver):
    """The range ``[P_{100-p}, P_p]`` of the values seen, ``p = percentile`` in ``(50, 100]`` (100 = min-max)."""

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False, axis: int | None = None,
                 percentile: float = 99.99, max_samples: int = 16384, seed: int = 0) -> None:
        super().__init__(bits, signed, symmetric, axis, max_samples, seed)
        if isinstance(percentile, bool) or not isinstance(percentile, Real) or not 50 < percentile <= 100:
            raise ValueError(f"percentile must be a number in (50, 100], got {percentile!r}")
        self.percentile = float(percentile)

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        values = self.values()
        q = torch.tensor([1 - self.percentile / 100, self.percentile / 100], dtype=values.dtype)
        lo, hi = torch.quantile(values, q, dim=1)
        return lo, hi


class MSEObserver(_SampleObserver):
    """The range ``t * [min, max]`` minimising the fake-quantization MSE, ``t`` in ``{1/steps, 2/steps, ..., 1}``."""

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False, axis: int | None = None,
                 steps: int = 50, max_samples: int = 16384, seed: int = 0) -> None:
        super().__init__(bits, signed, symmetric, axis, max_samples, seed)
        if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        self.steps = int(steps)

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        values = self.values()
        lo, hi = values.amin(1).clamp(max=0), values.amax(1).clamp(min=0)
        best_err = torch.full(lo.shape, float("inf"))
        best_t = torch.ones(lo.shape)
        for t in torch.arange(1, self.steps + 1, dtype=torch.float32) / self.steps:
            scale, zero_point = compute_qparams(t * lo, t * hi, self.bits, self.signed, self.symmetric)
            err = ((values - fake_quantize(values, scale, zero_point, self.bits, self.signed, axis=0)) ** 2).mean(1)
            better = err < best_err
            best_err, best_t = torch.where(better, err, best_err), torch.where(better, t, best_t)
        return best_t * lo, best_t * hi


OBSERVERS = {"minmax": MinMaxObserver, "moving_average": MovingAverageObserver,
             "percentile": PercentileObserver, "mse": MSEObserver}


def make_observer(name: str, **kwargs) -> Observer:
    """An observer by name (``minmax``, ``moving_average``, ``percentile``, ``mse``) with its keyword arguments."""
    if name not in OBSERVERS:
        raise ValueError(f"unknown observer {name!r}; choose one of {', '.join(OBSERVERS)}")
    return OBSERVERS[name](**kwargs)
