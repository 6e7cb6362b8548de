"""Structured pruning: remove whole output channels of convolutions, for a smaller dense model.

Removing output channel $j$ of convolution $\\ell$ removes filter $W^{(\\ell)}_j$ (and its bias), entry $j$
of the BatchNorm that follows, input channel $j$ of convolution $\\ell + 1$ and, after the last
convolution, the $H' W'$ columns of the first Linear layer that read channel $j$ of the flattened
features (PyTorch flattens ``(C, H', W')`` channel-major, so channel $j$ is columns
$j H' W', \\dots, (j + 1) H' W' - 1$). The result is an ordinary, smaller network: faster with dense kernels.
Filters are ranked by their $\\ell_1$ norm (Li et al., 2017) or by any per-channel score.

:func:`prune_channels` works on any plain CNN whose forward runs its layers one after another (for
instance ``nn.Sequential`` blocks, nested or not, with or without ``.features``/``.classifier``): it runs the
model once on an example input with hooks on its layers, checks that each layer's input is exactly the
previous layer's output, and cuts every layer that the removed channels flow through.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .._validation import (
    check_float_tensor,
    check_layer_mapping,
    check_module,
    check_sparsity,
    check_tensor,
    select_layers,
    verb,
)
from ..metrics import random_images
from ..training import evaluating, model_device
from .surgery import slice_batchnorm, slice_conv
from .unstructured import make_permanent

_CHANNELWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
                nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.MaxPool2d, nn.AvgPool2d,
                nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Dropout2d, nn.Identity)
_SUPPORTED = ("a model whose forward runs its layers one after another (nn.Sequential blocks): Conv2d "
              "(groups=1), BatchNorm2d, elementwise activations, pooling, Dropout, Flatten and Linear")


def channel_l1_norms(conv_weight: torch.Tensor) -> torch.Tensor:
    """$\\ell_1$ norm of each filter, $\\lVert W_j \\rVert_1 = \\sum_{i,u,v} |W_{j,i,u,v}|$:
    ``(C_out, C_in, kh, kw)`` -> ``(C_out,)``."""
    check_tensor(conv_weight, "conv_weight")
    if conv_weight.dim() != 4:
        raise ValueError(f"conv_weight must be a 4-D tensor (C_out, C_in, kh, kw), got shape "
                         f"{tuple(conv_weight.shape)}")
    return conv_weight.detach().abs().sum(dim=(1, 2, 3))


def channels_to_keep(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Sorted indices of the channels kept when the ``round(sparsity * C)`` lowest of ``scores`` ``(C,)`` are
    removed."""
    sparsity = check_sparsity(sparsity, of="channels", high_open=True)
    check_tensor(scores, "scores")
    if scores.dim() != 1:
        raise ValueError(f"scores must have shape (C,), got {tuple(scores.shape)}")
    keep = scores.numel() - round(sparsity * scores.numel())
    if keep < 1:
        raise ValueError(f"sparsity={sparsity} would remove all {scores.numel()} channels of a layer; use a smaller "
                         "sparsity")
    return torch.topk(scores, keep).indices.sort().values


def _slice_linear_inputs(linear: nn.Linear, columns: torch.Tensor) -> nn.Linear:
    new = nn.Linear(len(columns), linear.out_features, bias=linear.bias is not None,
                    device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(linear.weight[:, columns])
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    return new


def _example_input(model: nn.Module, example_input: torch.Tensor | None) -> torch.Tensor:
    if example_input is not None:
        return check_float_tensor(example_input, "example_input", min_dim=4)[:1]
    return random_images(model)


def _layer_chain(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, torch.Size]]:
    """The leaf modules ``model`` calls on ``x``, in order, with the shape of each one's input.

    Raises ValueError where a layer's input is not exactly the previous layer's output (the forward
    computes something the hooks cannot see: a functional call, a residual add, a reshape), from the
    first Conv2d up to the first Linear after it, which is where removed channels flow.
    """
    names = {m: name for name, m in model.named_modules() if not any(True for _ in m.children())}
    calls: list[list] = []

    def before(module: nn.Module, args: tuple) -> None:
        if any(c[1] is module for c in calls):
            raise ValueError(f"prune_channels needs each layer to be called once; {names[module]} is called twice")
        inp = args[0] if args and isinstance(args[0], torch.Tensor) else None
        calls.append([names[module], module, None if inp is None else inp.detach().clone(), None])

    def after(module: nn.Module, args: tuple, output: object) -> None:
        calls[-1][3] = output.detach().clone() if isinstance(output, torch.Tensor) else None

    handles = [m.register_forward_pre_hook(before) for m in names] + [m.register_forward_hook(after) for m in names]
    try:
        with torch.no_grad(), evaluating(model):
            model(x.to(model_device(model)))
    except (RuntimeError, ValueError) as e:
        if "called twice" in str(e):
            raise
        raise ValueError(f"prune_channels runs the model once on an example input of shape {tuple(x.shape)}, "
                         f"which failed ({type(e).__name__}: {str(e).splitlines()[0]}); pass example_input=") from e
    finally:
        for h in handles:
            h.remove()
    first_conv = next((i for i, c in enumerate(calls) if isinstance(c[1], nn.Conv2d)), None)
    if first_conv is None:
        raise ValueError(f"prune_channels supports {_SUPPORTED}; the forward of {type(model).__name__} calls no Conv2d")
    last = next((i for i, c in enumerate(calls) if i > first_conv and isinstance(c[1], nn.Linear)), len(calls) - 1)
    for (prev_name, _, _, out), (name, module, inp, _) in zip(calls[first_conv:last], calls[first_conv + 1:last + 1]):
        if inp is None or out is None or inp.shape != out.shape or not torch.equal(inp, out):
            raise ValueError(f"prune_channels supports {_SUPPORTED}; the input of {name} ({type(module).__name__}) "
                             f"is not the output of {prev_name}: the forward computes something between them "
                             "(a functional call, a residual connection, a reshape) that it cannot see")
    return [(name, module, None if inp is None else inp.shape) for name, module, inp, _ in calls]


def _reaches_output(chain: list[tuple[str, nn.Module, torch.Size]], index: int) -> bool:
    """Whether the output channels of the conv at ``chain[index]`` reach the model's output unchanged in number."""
    return not any(isinstance(m, (nn.Conv2d, nn.Linear)) for _, m, _ in chain[index + 1:])


def _channels_kept(name: str, conv: nn.Conv2d, scores: Mapping[str, torch.Tensor], sparsity: float) -> torch.Tensor:
    """The output channels of ``conv`` that stay: its highest ``scores[name]`` (default: filter l1 norms)."""
    score = check_tensor(scores[name], f"scores[{name!r}]") if name in scores else channel_l1_norms(conv.weight)
    if score.shape != (conv.out_channels,):
        raise ValueError(f"scores[{name!r}] must have shape ({conv.out_channels},), got {tuple(score.shape)}")
    return channels_to_keep(score.detach().cpu(), sparsity)


@verb
def prune_channels(model: nn.Module, *, sparsity: float, scores: Mapping[str, torch.Tensor] | None = None,
                   layers: Iterable[str] | None = None, example_input: torch.Tensor | None = None) -> nn.Module:
    """A physically smaller copy of ``model``: ``round(sparsity * C_out)`` output channels removed from each conv.

    Args:
        model: a plain CNN (see the module docstring); not modified. Unstructured masks, if any, are
            folded in first.
        sparsity: fraction in ``[0, 1)`` of each pruned convolution's output channels to remove.
        scores: per-channel importance ``(C_out,)`` by conv name; the lowest are removed. Default:
            :func:`channel_l1_norms` of each filter.
        layers: names of the convolutions to prune (default: every conv whose channels feed another
            Conv2d or Linear layer, i.e. all but a last conv that produces the model's output).
        example_input: one input the model accepts, used to follow the layers (default: one random image
            of the size the model says it expects, :func:`course_lib.metrics.random_images`).

    Returns:
        A new model of the same class: each pruned conv keeps its highest-scored filters; the BatchNorm
        after it, the next conv's input channels and, after a Flatten, the first Linear layer's input
        columns are cut to match. Its output equals the original's whenever the removed channels'
        activations were exactly zero. ValueError, naming the layer, for a grouped convolution, a layer
        the removed channels cannot pass through, or a forward that is not a chain of its layers.
    """
    check_module(model)
    sparsity = check_sparsity(sparsity, of="channels", high_open=True)
    convs = select_layers(model, None, kinds=(nn.Conv2d,))
    scores = {} if scores is None else check_layer_mapping(scores, "scores", model, kinds=(nn.Conv2d,))
    small = make_permanent(model)
    chain = _layer_chain(small, _example_input(small, example_input))
    position = {name: i for i, (name, _, _) in enumerate(chain)}
    feeding = [name for name in convs if name in position and not _reaches_output(chain, position[name])]
    selected = set(feeding if layers is None else select_layers(model, layers, kinds=(nn.Conv2d,)))
    invalid = sorted(selected - set(feeding))
    if invalid:
        raise ValueError(f"layers must name convolutions whose channels feed another Conv2d or Linear layer "
                         f"({', '.join(feeding)}); {', '.join(invalid)} reach the model's output or are not called, "
                         "and removing their channels would change the output")
    keep = None  # indices of the channels of the current activation that are kept (None: all of them)
    for name, module, in_shape in chain:
        if isinstance(module, nn.Conv2d):
            out_keep = _channels_kept(name, module, scores, sparsity) if name in selected else None
            if keep is not None or out_keep is not None:
                if module.groups != 1:
                    raise ValueError(f"prune_channels does not support grouped convolutions; {name} has "
                                     f"groups={module.groups}")
                new = slice_conv(module, torch.arange(module.out_channels) if out_keep is None else out_keep,
                                  torch.arange(module.in_channels) if keep is None else keep)
                small.set_submodule(name, new)
            keep = out_keep
        elif keep is None or isinstance(module, _CHANNELWISE):
            continue
        elif isinstance(module, nn.BatchNorm2d):
            small.set_submodule(name, slice_batchnorm(module, keep))
        elif isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1 \
                and in_shape is not None and len(in_shape) == 4:
            positions = in_shape[2] * in_shape[3]  # Flatten is channel-major: channel j is one block of columns
            keep = (keep[:, None] * positions + torch.arange(positions)).reshape(-1)
        elif isinstance(module, nn.Linear):
            small.set_submodule(name, _slice_linear_inputs(module, keep))
            keep = None
        else:
            raise ValueError(f"prune_channels supports {_SUPPORTED}; the removed channels would flow through "
                             f"{name} ({type(module).__name__}), which it cannot cut")
    return small
