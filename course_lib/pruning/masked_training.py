"""Fine-tuning a pruned model by hand: one optimizer step that keeps the pruned weights at zero.

A pruned weight $w \\odot m$ does not stay pruned by itself. The gradient of the loss with respect to a
zeroed weight is generally not zero, and momentum and weight decay move it too, so the next optimizer step
revives it; the article prunes, then retrains with the mask forgotten. The remedy is to enforce the mask
after every step,

$$w \\leftarrow \\operatorname{step}(w) \\odot m ,$$

in place and outside autograd (``torch.no_grad()``: ``weight *= mask`` on a leaf tensor that requires grad
raises otherwise, the article's other bug). :mod:`course_lib.pruning.unstructured` gets the same effect with a
parametrization; :func:`masked_step` is the explicit form for a hand-written training loop.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import changes_model, check_module, check_tensor


def _checked_masks(model: nn.Module, masks: object) -> dict[str, tuple[nn.Parameter, torch.Tensor]]:
    """``{name: (parameter, mask)}`` for ``masks`` ``{parameter name: mask of its shape}``; errors name ``masks``."""
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a mapping {{parameter name: mask}}, got {type(masks).__name__}")
    params = dict(model.named_parameters())
    checked = {}
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"masks must be keyed by parameter names of the model ({', '.join(params)}); "
                             f"{name!r} is not one of them")
        check_tensor(mask, f"masks[{name!r}]")
        if mask.shape != params[name].shape:
            raise ValueError(f"masks[{name!r}] must have the shape of the parameter {tuple(params[name].shape)}, "
                             f"got {tuple(mask.shape)}")
        checked[name] = (params[name], mask)
    return checked


@changes_model
def masked_step(model: nn.Module, masks: Mapping[str, torch.Tensor], inputs: torch.Tensor, labels: torch.Tensor,
                optimizer: torch.optim.Optimizer) -> float:
    """One optimizer step of cross-entropy training of ``model`` that leaves its pruned weights exactly zero.

    The model is put in train mode, the gradients are zeroed, ``F.cross_entropy(model(inputs), labels)`` is
    back-propagated and ``optimizer.step()`` taken; then every parameter named in ``masks`` is multiplied in
    place by its mask (0 = pruned), without autograd.

    Args:
        model: the network, trained in place (its parameters are those ``optimizer`` updates).
        masks: ``{parameter name as in model.named_parameters(): mask of that parameter's shape}``;
            parameters not named are not masked.
        inputs, labels: one batch, ``(N, ...)`` and ``(N,)`` class indices.
        optimizer: any ``torch.optim`` optimizer over the model's parameters (momentum and Adam's moments
            would revive pruned weights without the mask; weight decay alone cannot move an exact zero).

    Returns:
        The batch's loss before the step, a float. ValueError (naming ``masks``) for a key that is not a
        parameter of the model or a mask of another shape; nothing is changed then.
    """
    check_module(model)
    checked = _checked_masks(model, masks)
    model.train()
    loss = F.cross_entropy(model(inputs), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        for param, mask in checked.values():
            param.mul_(mask.to(param.device, param.dtype))
    return loss.item()
