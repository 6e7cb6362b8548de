r"""Perplexity of a language model on a token stream, evaluated in windows that each start with BOS.

For $N$ predicted tokens with model probabilities $p(x_i \mid \text{its window})$,

$$\mathrm{NLL} = -\frac{1}{N}\sum_{i=1}^{N} \ln p(x_i \mid \cdot), \qquad \mathrm{PPL} = e^{\mathrm{NLL}},
\qquad \text{bits per character} = \mathrm{NLL} / \ln 2 = \log_2 \mathrm{PPL}.$$

A model that spreads its probability evenly over $V$ tokens has perplexity $V$; a perfect model has 1. With
byte tokens, bits per character is bits per byte, the same thing on the course's ASCII corpus.

Windows. The stream $x_0 \dots x_{n-1}$ is cut into windows of ``context`` predicted tokens starting every
``stride`` tokens: the window at $a$ feeds ``[BOS, x_a, ..., x_{e-2}]`` and predicts $x_a \dots x_{e-1}$,
$e = \min(a + \mathrm{context}, n)$; windows stop at the first one that reaches the end. Each token is counted
once, in the first window that predicts it, so with ``stride = context`` (the default: non-overlapping
windows) $x_a$ is predicted from BOS alone and $x_{a+j}$ from $j$ previous tokens, and with a smaller stride
every window but the first counts only its last ``stride`` tokens, each seen with at least
``context - stride`` tokens before it (the "sliding window" evaluation of Press et al., 2021, and of the
Hugging Face perplexity guide, here with BOS kept at the start of every window).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_int, check_module, check_number, reads_model
from ..training import evaluating
from .model import BOS, check_ids


def _windows(n: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """``(start, end, first counted position)`` of each window over a stream of ``n`` tokens."""
    windows, covered, start = [], 0, 0
    while True:
        end = min(start + context, n)
        windows.append((start, end, covered))
        covered = end
        if end == n:
            return windows
        start += stride


@reads_model
@torch.inference_mode()
def perplexity(model: nn.Module, tokens: torch.Tensor, context: int, *, stride: int | None = None,
               batch_size: int = 32) -> float:
    """$\\exp$ of the mean negative log-likelihood per predicted token of ``tokens`` under ``model``.

    Args:
        model: maps ids ``(B, T)`` to logits ``(B, T, V)`` (a :class:`~course_lib.llm.GPT`); run in eval mode
            on its own device, its train/eval modes restored afterwards.
        tokens: ``(n,)`` integer ids of the text, without BOS (:func:`~course_lib.llm.encode`), ``n >= 1``.
        context: predicted tokens per window, the model's positions (BOS included) at most.
        stride: tokens between window starts, in ``[1, context]``; ``None`` means ``context``
            (non-overlapping windows). See the module docstring.
        batch_size: windows per forward pass (any value gives the same result).

    Returns:
        The perplexity, a float $\\ge 1$; :func:`bits_per_character` converts it. The sum of log-likelihoods
        is accumulated in float64.
    """
    check_module(model)
    check_ids(tokens, "tokens")
    context = check_int(context, "context", 1)
    stride = context if stride is None else check_int(stride, f"stride (None or, for context {context}, an integer)",
                                                      1, context)
    batch_size = check_int(batch_size, "batch_size", 1)
    device = next(model.parameters(), torch.empty(0)).device
    tokens = tokens.to(device, torch.int64)
    windows = _windows(len(tokens), context, stride)
    full, last = windows[:-1], windows[-1:]  # only the last window can be shorter than context
    total, count = 0.0, 0
    with evaluating(model):
        for group in [full[i:i + batch_size] for i in range(0, len(full), batch_size)] + [last]:
            targets = torch.stack([tokens[a:e] for a, e, _ in group])  # (B, T), T = e - a
            bos = torch.full((len(group), 1), BOS, dtype=torch.int64, device=device)
            logits = model(torch.cat([bos, targets[:, :-1]], dim=1))
            log_probs = torch.log_softmax(logits.double(), dim=-1).gather(-1, targets[..., None])[..., 0]
            for row, (a, _, covered) in zip(log_probs, group):
                total -= row[covered - a:].sum().item()  # the first covered - a targets were counted before
                count += len(row) - (covered - a)
    return math.exp(total / count)


def bits_per_character(perplexity: float) -> float:
    """$\\log_2$ of a perplexity: the mean code length per byte token, in bits (8 for uniform bytes)."""
    return math.log2(check_number(perplexity, "perplexity", 1.0))
