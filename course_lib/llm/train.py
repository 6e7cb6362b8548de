r"""Training the byte-level GPT: random windows that start with BOS, AdamW, warm-up then cosine decay.

Each step draws ``batch_size`` windows at uniformly random offsets $a$ of the token stream and minimizes the
mean next-token cross-entropy of ``[BOS, x_a, ..., x_{a+c-2}]`` predicting $x_a \dots x_{a+c-1}$
($c$ = the model's context), the same windows :func:`~course_lib.llm.perplexity` evaluates. AdamW
(Loshchilov & Hutter, 2019) decays only the matrices (Linear and embedding weights), not biases or
LayerNorm parameters, as nanoGPT does; the learning rate rises linearly for ``warmup_steps`` then follows a
cosine from ``lr`` down to ``min_lr`` at the last step; gradients are clipped to a global norm.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .._validation import changes_model, check_int, check_module, check_number, check_positive, copy_model, verb
from ..training import Trained, pick_device, progress_enabled
from .model import BOS, check_ids
from .perplexity import perplexity

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
EvalHook = Callable[[int, nn.Module], None]


@dataclass(frozen=True)
class LMRecipe:
    """How :func:`train_lm` trains: ``steps`` optimizer steps of ``batch_size`` windows; AdamW with
    ``lr``, ``betas`` and ``weight_decay``; ``warmup_steps`` of linear warm-up then a cosine to ``min_lr``;
    gradients clipped to norm ``grad_clip``; validation perplexity every ``eval_every`` steps on the first
    ``eval_tokens`` validation tokens; ``seed`` for the initial state of the run (windows, dropout)."""

    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_tokens: int = 32768
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch_size", 1), ("warmup_steps", 0), ("eval_every", 1),
                          ("eval_tokens", 1), ("seed", 0)):
            check_int(getattr(self, name), name, low)
        check_positive(self.lr, "lr")
        check_number(self.min_lr, "min_lr", 0.0, self.lr)
        check_number(self.weight_decay, "weight_decay", 0.0)
        check_positive(self.grad_clip, "grad_clip")
        if not (isinstance(self.betas, tuple) and len(self.betas) == 2):
            raise TypeError(f"betas must be a tuple of two numbers in [0, 1), got {self.betas!r}")
        for beta in self.betas:
            check_number(beta, "betas entry", 0.0, 1.0, high_open=True)


@dataclass
class LMHistory:
    """Per evaluation point: the ``step``, the mean training ``loss`` (nats per token) since the previous
    point, and the ``val_perplexity`` (when validation tokens were given)."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_perplexity: list[float] = field(default_factory=list)


def sample_windows(tokens: torch.Tensor, context: int, count: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` windows at uniformly random offsets of ``tokens`` ``(n,)``, ``n >= context``: inputs
    ``[BOS, x_a, ..., x_{a+context-2}]`` and targets ``x_a ... x_{a+context-1}``, both ``(count, context)``."""
    context, count = check_int(context, "context", 1), check_int(count, "count", 1)
    check_ids(tokens, "tokens", context)
    starts = torch.randint(0, len(tokens) - context + 1, (count,), generator=generator)
    targets = tokens[starts[:, None] + torch.arange(context)].to(torch.int64)
    inputs = torch.cat([torch.full((count, 1), BOS, dtype=torch.int64), targets[:, :-1]], dim=1)
    return inputs, targets


@changes_model
def lm_cross_entropy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The default loss: mean next-token cross-entropy of ``model(inputs)`` ``(B, T, V)`` against ``targets``."""
    return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())


def _learning_rate(step: int, recipe: LMRecipe) -> float:
    """The learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to ``min_lr``."""
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - 1 - recipe.warmup_steps)
    return recipe.min_lr + 0.5 * (recipe.lr - recipe.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


@verb
def train_lm(model: nn.Module, tokens: torch.Tensor, *, recipe: LMRecipe | None = None,
             val_tokens: torch.Tensor | None = None, loss_fn: LossFn = lm_cross_entropy,
             device: str | torch.device | None = None, progress: bool | None = None,
             on_eval: EvalHook | None = None) -> Trained:
    """Train a copy of ``model`` (a :class:`~course_lib.llm.GPT`) on the byte ids ``tokens`` ``(n,)``.

    ``recipe`` (default ``LMRecipe()``) says how; ``loss_fn(model, inputs, targets)`` replaces the cross-entropy
    (e.g. with :func:`~course_lib.llm.lm_distillation_loss` against a teacher's logits of the same ``inputs``).
    ``model`` is left untouched; returns a :class:`~course_lib.training.Trained` whose ``history`` is an
    :class:`LMHistory` and whose model is in eval mode on ``device`` (default:
    :func:`~course_lib.training.pick_device`). ``on_eval(step, model)``, if given, is called at every evaluation
    point (every ``recipe.eval_every`` steps and after the last) with the number of steps done and the model
    being trained, e.g. to measure or save checkpoints; it must leave the model's weights as they are (the model
    is back in train mode for the next step).
    """
    check_module(model)
    recipe = LMRecipe() if recipe is None else recipe
    if not isinstance(recipe, LMRecipe):
        raise TypeError(f"recipe must be an LMRecipe or None, got {recipe!r:.80} ({type(recipe).__name__})")
    context = getattr(getattr(model, "config", None), "context", None)
    if not isinstance(context, int):
        raise TypeError(f"model must have a config.context (a course_lib.llm.GPT), got a {type(model).__name__}")
    check_ids(tokens, "tokens", context)
    if val_tokens is not None:
        check_ids(val_tokens, "val_tokens")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable (model, inputs, targets) -> loss, got {loss_fn!r:.80} "
                        f"({type(loss_fn).__name__})")
    if on_eval is not None and not callable(on_eval):
        raise TypeError(f"on_eval must be None or a callable (step, model) -> None, got {on_eval!r:.80} "
                        f"({type(on_eval).__name__})")
    progress, device = progress_enabled(progress), pick_device(device)
    generator = torch.Generator().manual_seed(recipe.seed)  # the windows
    torch.manual_seed(recipe.seed)  # the dropout
    model = copy_model(model).to(device)
    matrices = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    others = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": recipe.weight_decay},
                                   {"params": others, "weight_decay": 0.0}], lr=recipe.lr, betas=recipe.betas)
    history, running, counted = LMHistory(), 0.0, 0
    bar = tqdm(range(recipe.steps), desc="train_lm", disable=not progress, leave=False)
    for step in bar:
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, recipe)
        inputs, targets = sample_windows(tokens, context, recipe.batch_size, generator)
        loss = loss_fn(model, inputs.to(device), targets.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimizer.step()
        running, counted = running + loss.item(), counted + 1
        if (step + 1) % recipe.eval_every == 0 or step + 1 == recipe.steps:
            history.step.append(step + 1)
            history.loss.append(running / counted)
            running, counted = 0.0, 0
            if val_tokens is not None:
                history.val_perplexity.append(perplexity(model, val_tokens[:recipe.eval_tokens], context))
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
            if on_eval is not None:
                on_eval(step + 1, model)
    model.eval()
    return Trained(model, history)
