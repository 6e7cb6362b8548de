r"""Feature (hint) distillation, FitNets (Romero et al., 2015): the student's middle learns the teacher's.

The teacher's *hint* $u_h(x)$ is the output of one of its intermediate layers, the student's *guided*
layer gives $v_g(x)$, and a small learned *regressor* $r$ maps the second onto the shape of the first.
The hint loss of a batch of $N$ examples is

$$\mathcal{L}_\mathrm{hint} = \frac{1}{N} \sum_{n=1}^{N} \tfrac12 \big\lVert u_h(x_n) - r(v_g(x_n)) \big\rVert_2^2 ,$$

the squared error summed over every feature (channels and positions) and averaged over the batch; its
gradient with respect to the regressed features is $(r(v_g) - u_h) / N$. Training is *stage-wise*, as in the
paper: stage 1 (:func:`hint_train`) trains the student's layers up to the guided layer, and the
regressor, on the hint loss alone; stage 2 trains the whole student with the logit loss
(:func:`course_lib.distillation.distill`), starting from stage 1's weights. The regressor serves stage 1
only and is discarded.

FitNets' regressor is a convolution without padding whose kernel makes the spatial sizes agree
(``k = side_guided - side_hint + 1``), followed by the hint layer's non-linearity; :class:`HintRegressor`
builds it (a ``Linear`` for flat features).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._validation import (
    changes_model,
    check_bool,
    check_int,
    check_loader,
    check_module,
    check_names,
    check_tensor,
    copy_model,
    verb,
)
from ..training import Trained, pick_device, train


class _Reached(Exception):
    """Raised by a forward hook to stop a forward pass once the wanted layer has run."""


def _submodule(model: nn.Module, layer: str, name: str, model_name: str) -> nn.Module:
    if not isinstance(layer, str):
        raise TypeError(f"{name} must be the name of a submodule of {model_name} (a string), got {layer!r}")
    modules = dict(model.named_modules())
    modules.pop("", None)
    check_names([layer], name, modules, f"submodules of the {model_name}")
    return modules[layer]


@changes_model
def intermediate(model: nn.Module, layer: str, inputs: torch.Tensor) -> torch.Tensor:
    """The output of ``model``'s submodule ``layer`` (a name as in ``model.named_modules()``) when ``model``
    runs on ``inputs``; the forward pass stops right after that layer, so the layers after it neither compute
    nor, in train mode, update their BatchNorm statistics (the layers before it do, as in any forward pass).
    Gradients flow as in the full model."""
    check_module(model)
    check_tensor(inputs, "inputs")
    module = _submodule(model, layer, "layer", "model")
    captured: list[torch.Tensor] = []

    def stop(_module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        captured.append(output)
        raise _Reached

    handle = module.register_forward_hook(stop)
    try:
        model(inputs)
    except _Reached:
        pass
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"layer {layer!r} did not run in {type(model).__name__}'s forward pass")
    return captured[0]


class HintRegressor(nn.Module):
    """FitNets' regressor from the student's guided features ``(N, C_s, H_s, W_s)`` to the teacher's hint
    ``(N, C_t, H_t, W_t)``: a ``k x k`` convolution without padding, ``k = H_s - H_t + 1`` (square maps, the
    guided map at least as large as the hint), then a ReLU when ``relu`` (the hint is a ReLU's output). Flat
    features ``(N, C_s) -> (N, C_t)`` get a ``Linear`` layer instead. Shapes exclude the batch dimension."""

    def __init__(self, guided_shape: tuple[int, ...], hint_shape: tuple[int, ...], *, relu: bool = True) -> None:
        super().__init__()
        guided_shape, hint_shape = tuple(guided_shape), tuple(hint_shape)
        check_bool(relu, "relu")
        if len(guided_shape) != len(hint_shape) or len(guided_shape) not in (1, 3):
            raise ValueError(f"guided_shape and hint_shape must both be (C,) or both (C, H, W), got {guided_shape} "
                             f"and {hint_shape}")
        if any(isinstance(d, bool) or not isinstance(d, int) for d in guided_shape + hint_shape):
            raise TypeError(f"guided_shape and hint_shape must hold integers, got {guided_shape} and {hint_shape}")
        if any(d < 1 for d in guided_shape + hint_shape):
            raise ValueError(f"guided_shape and hint_shape must hold positive integers, got {guided_shape} and "
                             f"{hint_shape}")
        if len(guided_shape) == 1:
            self.map: nn.Module = nn.Linear(guided_shape[0], hint_shape[0])
        else:
            (c_s, h_s, w_s), (c_t, h_t, w_t) = guided_shape, hint_shape
            if h_s != w_s or h_t != w_t or h_s < h_t:
                raise ValueError(f"the guided map must be square and at least as large as the square hint map, "
                                 f"got {guided_shape} and {hint_shape}")
            self.map = nn.Conv2d(c_s, c_t, h_s - h_t + 1)
        self.relu = relu

    def forward(self, guided: torch.Tensor) -> torch.Tensor:
        out = self.map(guided)
        return torch.relu(out) if self.relu else out


def hint_loss(regressed: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
    """FitNets' hint loss: ``0.5 * ((regressed - hint) ** 2)`` summed over all features, averaged over the batch.

    Args:
        regressed: ``(N, ...)`` the regressor's output on the student's guided features (gradients flow).
        hint: ``(N, ...)`` the teacher's hint, same shape; detached, so no gradient reaches the teacher.
    """
    check_tensor(regressed, "regressed", floating=True, min_dim=1)
    check_tensor(hint, "hint", floating=True, min_dim=1)
    if regressed.shape != hint.shape:
        raise ValueError(f"hint must have the shape of regressed {tuple(regressed.shape)}, got {tuple(hint.shape)}")
    return 0.5 * (regressed - hint.detach()).pow(2).sum() / len(regressed)


class _Guided(nn.Module):
    """The student up to its guided layer, followed by the regressor (stage 1's trainable model)."""

    def __init__(self, student: nn.Module, layer: str, regressor: HintRegressor) -> None:
        super().__init__()
        self.student, self.layer, self.regressor = student, layer, regressor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.regressor(intermediate(self.student, self.layer, inputs))


def _frozen_teacher_and_student(teacher: nn.Module, student: nn.Module, device: str | torch.device | None,
                                train_kwargs: dict, builds_loss: str) -> tuple[nn.Module, nn.Module, torch.device]:
    """How both distillation verbs start: refuse a ``loss_fn`` of the caller's (``builds_loss`` says why), pick
    the device, and copy the teacher (in eval mode on that device, to run under ``torch.no_grad()``) and the
    student (the copy that trains)."""
    if "loss_fn" in train_kwargs:
        raise ValueError(f"{builds_loss}; do not pass loss_fn")
    device = pick_device(device)
    return copy_model(teacher, "teacher").eval().to(device), copy_model(student, "student"), device


@verb
def hint_train(student: nn.Module, teacher: nn.Module, loader: DataLoader, *, student_layer: str,
               teacher_layer: str, epochs: int, relu: bool = True, device: str | torch.device | None = None,
               **train_kwargs) -> Trained:
    """FitNets' stage 1: a copy of ``student`` whose layers up to ``student_layer`` (the guided layer) are
    trained, with a :class:`HintRegressor`, to predict the output of ``teacher``'s ``teacher_layer`` (the hint)
    under :func:`hint_loss`, for ``epochs`` passes over ``loader`` (its labels are not used).

    Only the parameters that feed the guided layer and the regressor's change; the student's later layers
    are untouched (stage 2, :func:`course_lib.distillation.distill`, trains them). The teacher runs in eval
    mode without gradients on the same (possibly augmented) inputs. ``relu``: end the regressor with a ReLU
    (right when the hint is a ReLU's or a max-pool of a ReLU's output). ``train_kwargs`` go to
    :func:`course_lib.training.train` (``lr``, ``weight_decay``, ``augment``, ``seed``, ``optimizer`` as a
    factory, called with the parameters of the student and the regressor, ...). Neither ``student`` nor
    ``teacher`` is changed.

    Returns:
        :class:`~course_lib.training.Trained`: the student after stage 1 (eval mode) and the history of its
        hint loss; the regressor is discarded.
    """
    check_module(student, "student")
    check_module(teacher, "teacher")
    check_loader(loader)
    _submodule(student, student_layer, "student_layer", "student")
    _submodule(teacher, teacher_layer, "teacher_layer", "teacher")
    check_int(epochs, "epochs", 0)
    check_bool(relu, "relu")
    teacher, student, device = _frozen_teacher_and_student(teacher, student, device, train_kwargs,
                                                           "hint_train builds its own loss_fn (the hint loss)")
    inputs = next(iter(loader))[0][:2].to(device)
    with torch.no_grad():
        guided_shape = intermediate(student.to(device).eval(), student_layer, inputs).shape[1:]
        hint_shape = intermediate(teacher, teacher_layer, inputs).shape[1:]
    model = _Guided(student, student_layer, HintRegressor(tuple(guided_shape), tuple(hint_shape), relu=relu))

    def loss_fn(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            hint = intermediate(teacher, teacher_layer, inputs)
        return hint_loss(model(inputs), hint)

    history = train(model, loader, epochs, loss_fn=loss_fn, device=device, **train_kwargs)
    return Trained(student.eval(), history)
