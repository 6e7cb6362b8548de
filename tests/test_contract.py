"""The contract of course_lib (its docstring), checked for every public function that takes a model.

Each such function is registered in ``course_lib._validation.CONTRACT``: a *verb* (a new model, ``@verb``), a
*reader* (a measurement, ``@reads_model``) or *in place* by design (a training loop, ``@changes_model``). Every
verb and reader has a :class:`Case` below, a call on a tiny pruned CNN with small settings; a public function
taking a model that is not registered, or a registered verb or reader without a case, fails
``test_every_function_taking_a_model_is_registered_and_has_a_case``, so a new verb cannot skip these tests.

The argument is a small Conv-BN-ReLU-pool-Linear network whose conv is pruned (a parametrization), trained in
mixed modes (train mode, its dropout in eval mode) with one frozen parameter: a verb or reader must leave its
weights, buffers, parametrizations, modes, classes, ``requires_grad`` flags and output as they were.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.data import DataLoader, TensorDataset

import course_lib
from course_lib._validation import CONTRACT

SKIPPED_PACKAGES = ("course_lib.grading", "course_lib.benchmark", "course_lib.notebooks")
MODULES = [importlib.import_module(info.name) for info in pkgutil.walk_packages(course_lib.__path__, "course_lib.")
           if not info.name.startswith(SKIPPED_PACKAGES) and info.name.rsplit(".", 1)[1] != "__main__"]

from course_lib.acceleration import (  # noqa: E402
    batch_throughput,
    ddp_train,
    factorize_linears,
    fold_batchnorm,
    kernel_times,
    max_param_diff,
    single_process_train,
    thread_latency,
    to_channels_last,
    try_compile,
)
from course_lib.compression import Config, compress, deep_compress  # noqa: E402
from course_lib.compression.pipeline import choose_bits, choose_index_bits, paper_bits, storage_bytes  # noqa: E402
from course_lib.compression.policy import (  # noqa: E402
    LayerChoice,
    Policy,
    apply_policy,
    choose_policy,
    make_policy,
    policy_scan,
)
from course_lib.distillation import distill, hint_train, temperature_sweep  # noqa: E402
from course_lib.llm import GPT, GPTConfig, LMRecipe, fold_scales, generate, perplexity, train_lm  # noqa: E402
from course_lib.metrics import count_parameters, layer_macs, model_size_bytes, random_images  # noqa: E402
from course_lib.pruning import (  # noqa: E402
    apply_masks,
    gradual_prune,
    layer_sensitivity,
    layer_sparsities,
    magnitude_prune,
    make_permanent,
    prune_channels,
    random_prune,
    sparse_model_bytes,
    sparsity,
    taylor_prune,
)
from course_lib.pruning.storage import other_tensor_bytes  # noqa: E402
from course_lib.pruning.unstructured import taylor_scores, trainable_weight  # noqa: E402
from course_lib.quantization import (  # noqa: E402
    binarize_weights,
    compile_int8,
    post_training_quantize,
    quantization_aware_train,
    share_weights,
)
from course_lib.quantization.deploy import convert_int8  # noqa: E402
from course_lib.quantization.kmeans import codebook_of, is_shared  # noqa: E402
from course_lib.quantization.ptq import calibrate, prepare  # noqa: E402
from course_lib.timing import measure_latency  # noqa: E402
from course_lib.training import evaluate, evaluating, fine_tune, model_device, predict, recalibrate_batchnorm  # noqa: E402
from course_lib.zoo import accuracies, perplexities  # noqa: E402

SIDE = 8  # the tiny model's image side
DATA = TensorDataset(torch.rand(16, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0)),
                     torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(1)))
LOADER = DataLoader(DATA, batch_size=8)
EMPTY = DataLoader(TensorDataset(torch.zeros(0, 1, SIDE, SIDE), torch.zeros(0, dtype=torch.int64)), batch_size=8)
X = DATA.tensors[0][:2]
QUIET = {"progress": False, "device": "cpu"}
# the names a verb may take positionally: the model(s) and the data; every setting is keyword-only
DATA_ARGUMENTS = {"model", "student", "teacher", "loader", "batches", "dataset", "train_loader", "val_loader",
                  "test_loader", "tokens"}
TOKENS = torch.randint(0, 256, (64,), generator=torch.Generator().manual_seed(3))  # byte ids for the tiny GPT
IDS = torch.randint(0, 256, (2, 8), generator=torch.Generator().manual_seed(4))


def tiny(seed: int = 0) -> nn.Module:
    """Conv(1->4)-BN-ReLU-pool-Flatten-Linear(64->8)-ReLU-Dropout-Linear(8->3) for 1x8x8 images."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    model.image_size = SIDE
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model


def mixed_modes(model: nn.Module) -> nn.Module:
    """Train mode with the dropout in eval mode and one frozen parameter: what a careless restore would change."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    next(p for name, p in model.named_parameters() if name.endswith("bias")).requires_grad_(False)
    return model


def pruned() -> nn.Module:
    """The usual argument: the tiny model with its conv pruned (a Mask parametrization), in mixed modes."""
    return mixed_modes(magnitude_prune(tiny(), sparsity=0.5, layers=["0"]))


def shared() -> nn.Module:
    return mixed_modes(share_weights(make_permanent(pruned()), bits=2))


def prepared() -> nn.Module:
    return mixed_modes(prepare(pruned(), bits=4))


def tiny_gpt() -> nn.Module:
    torch.manual_seed(0)
    return mixed_modes(GPT(GPTConfig(context=8, n_layer=1, n_head=2, width=8)))


def lenet() -> nn.Module:
    from course_lib.models import build_model

    return mixed_modes(magnitude_prune(build_model("lenet300"), sparsity=0.5, layers=["net.1"]))


@dataclass(frozen=True)
class Case:
    """How to call one function: ``run(model, **overrides)`` with small settings; ``setting`` is a keyword with a
    value of the wrong type and a value out of range (``None``: a verb without settings); ``loaders`` the data
    keywords ``run`` accepts, each refused when empty or ``None``."""

    run: Callable[..., Any]
    setting: tuple[str, Any, Any] | None = None
    loaders: tuple[str, ...] = ()
    argument: Callable[[], nn.Module] = pruned
    first: str = "model"
    slow: bool = False
    inputs: torch.Tensor = torch.rand(2, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(2))  # for the output


def _with(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    return {**defaults, **overrides}


def _data(kw: dict[str, Any], *names: str) -> list[Any]:
    return [kw.pop(name, LOADER) for name in names]


def _enter(model: nn.Module) -> None:
    with evaluating(model):
        model(X)


SMALL_CONFIG = Config({"5": 0.5}, bits=2, index_bits=4, prune_epochs=1, share_epochs=1)
SMALL_POLICY = Policy("bytes", 100, {"5": LayerChoice(0.5, 4, 100), "8": LayerChoice(0.0, 2, 10)})

VERBS: dict[str, Case] = {
    "magnitude_prune": Case(lambda m, **kw: magnitude_prune(m, **_with({"sparsity": 0.5}, kw)),
                            ("sparsity", "half", 1.5)),
    "random_prune": Case(lambda m, **kw: random_prune(m, **_with({"sparsity": 0.5}, kw)), ("sparsity", "half", -0.1)),
    "taylor_prune": Case(lambda m, **kw: taylor_prune(m, *_data(kw, "loader"), **_with({"sparsity": 0.5,
                                                                                         "batches": 1}, kw)),
                         ("batches", 1.5, 0), ("loader",)),
    "gradual_prune": Case(lambda m, **kw: gradual_prune(m, *_data(kw, "loader"), **_with(
        {"sparsity": 0.5, "epochs": 1, "prune_steps": 2, **QUIET}, kw)), ("prune_during", "half", 0.0), ("loader",)),
    "prune_channels": Case(lambda m, **kw: prune_channels(m, **_with({"sparsity": 0.5}, kw)),
                           ("sparsity", "half", 1.0)),
    "apply_masks": Case(lambda m, **kw: apply_masks(m, **_with({"masks": {"5": torch.ones(8, 64)}}, kw)),
                        ("masks", [("5", 1)], {"5": torch.full((8, 64), 0.5)})),
    "make_permanent": Case(lambda m, **kw: make_permanent(m, **kw)),
    "prepare": Case(lambda m, **kw: prepare(m, **_with({"bits": 4}, kw)), ("per_channel", 1, None)),
    "calibrate": Case(lambda m, **kw: calibrate(m, *_data(kw, "batches"), **_with({"num_batches": 1}, kw)),
                      ("num_batches", 1.5, 0), ("batches",), prepared),
    "post_training_quantize": Case(lambda m, **kw: post_training_quantize(m, *_data(kw, "batches"),
                                                                          **_with({"bits": 4}, kw)),
                                   ("observer", 1, "bogus"), ("batches",)),
    "quantization_aware_train": Case(lambda m, **kw: quantization_aware_train(m, *_data(kw, "loader"), **_with(
        {"epochs": 1, "bits": 4, **QUIET}, kw)), ("epochs", 1.5, -1), ("loader",)),
    "binarize_weights": Case(lambda m, **kw: binarize_weights(m, **_with({"layers": ["5", "8"]}, kw)),
                             ("layers", "5", ["nope"])),
    "share_weights": Case(lambda m, **kw: share_weights(m, **_with({"bits": 2, "layers": ["5", "8"]}, kw)),
                          ("bits", 2.5, 0)),
    "convert_int8": Case(lambda m, **kw: convert_int8(m, *_data(kw, "batches"), **_with({"example_input": X}, kw)),
                         ("num_batches", 1.5, 0), ("batches",), slow=True),
    "compile_int8": Case(lambda m, **kw: compile_int8(m, *_data(kw, "batches"), **_with({"example_input": X}, kw)),
                         ("num_batches", 1.5, 0), ("batches",), slow=True),
    "fold_batchnorm": Case(lambda m, **kw: fold_batchnorm(m, **kw)),
    "factorize_linears": Case(lambda m, **kw: factorize_linears(m, **_with({"rank": 2}, kw)), ("rank", 2.5, 0)),
    "to_channels_last": Case(lambda m, **kw: to_channels_last(m, **kw)),
    "ddp_train": Case(lambda m, **kw: ddp_train(m, DATA, **_with({"batch_size": 8}, kw)), ("lr", "fast", 0),
                      argument=lambda: mixed_modes(tiny()), slow=True),  # its processes cannot unpickle a mask
    "single_process_train": Case(lambda m, **kw: single_process_train(m, DATA, **_with({"batch_size": 8}, kw)),
                                 ("lr", "fast", 0)),
    "deep_compress": Case(lambda m, **kw: deep_compress(m, *_data(kw, "train_loader", "val_loader", "test_loader"),
                                                        **_with({"config": SMALL_CONFIG, "device": "cpu"}, kw)),
                          ("config", {"sparsities": {"5": 0.5}}, Config({"nope": 0.5})),
                          ("train_loader", "val_loader", "test_loader")),
    "apply_policy": Case(lambda m, **kw: apply_policy(m, **_with({"policy": SMALL_POLICY}, kw)),
                         ("policy", {"5": (0.5, 4)}, Policy("bytes", 1, {"nope": LayerChoice(0.5, 4, 1)}))),
    "fine_tune": Case(lambda m, **kw: fine_tune(m, *_data(kw, "loader"), **_with({"epochs": 1, **QUIET}, kw)),
                      ("epochs", 1.5, -1), ("loader",)),
    "recalibrate_batchnorm": Case(lambda m, **kw: recalibrate_batchnorm(m, *_data(kw, "loader"),
                                                                        **_with({"batches": 1}, kw)),
                                  ("batches", 1.5, 0), ("loader",)),
    "distill": Case(lambda m, **kw: distill(m, tiny(1), *_data(kw, "loader"), **_with({"epochs": 1, **QUIET}, kw)),
                    ("temperature", "hot", 0), ("loader",), first="student"),
    "hint_train": Case(lambda m, **kw: hint_train(m, tiny(1), *_data(kw, "loader"), **_with(
        {"student_layer": "0", "teacher_layer": "0", "epochs": 1, **QUIET}, kw)), ("student_layer", 0, "nope"),
        ("loader",), first="student"),
    "train_lm": Case(lambda m, **kw: train_lm(m, TOKENS, **_with(
        {"recipe": LMRecipe(steps=2, batch_size=2, warmup_steps=0, eval_every=1, eval_tokens=16), **QUIET}, kw)),
        ("recipe", {"steps": 2}, None), argument=tiny_gpt, inputs=IDS),
    "fold_scales": Case(lambda m, **kw: fold_scales(m, **_with({"scales": {"blocks.0.ln_1": torch.full((8,), 2.0)}},
                                                                kw)),
                        ("scales", [1], {"nope": torch.ones(8)}), argument=tiny_gpt, inputs=IDS),
}

READERS: dict[str, Case] = {
    "model_device": Case(model_device),
    "predict": Case(lambda m, **kw: predict(m, *_data(kw, "loader")), loaders=("loader",)),
    "evaluate": Case(lambda m, **kw: evaluate(m, *_data(kw, "loader")), loaders=("loader",)),
    "evaluating": Case(_enter),
    "random_images": Case(random_images),
    "count_parameters": Case(count_parameters),
    "model_size_bytes": Case(model_size_bytes),
    "measure_latency": Case(lambda m: measure_latency(m, X, warmup=0, repeats=1)),
    "layer_macs": Case(layer_macs),
    "other_tensor_bytes": Case(other_tensor_bytes),
    "sparse_model_bytes": Case(sparse_model_bytes),
    "trainable_weight": Case(lambda m: trainable_weight(m[0])),
    "taylor_scores": Case(lambda m, **kw: taylor_scores(m, *_data(kw, "loader"), batches=1), loaders=("loader",)),
    "layer_sparsities": Case(layer_sparsities),
    "sparsity": Case(sparsity),
    "layer_sensitivity": Case(lambda m, **kw: layer_sensitivity(m, *_data(kw, "loader"), sparsities=(0.5,)),
                              loaders=("loader",)),
    "is_shared": Case(lambda m: is_shared(m[5])),
    "codebook_of": Case(lambda m: codebook_of(m[5]), argument=shared),
    "try_compile": Case(lambda m: try_compile(m, X), slow=True),
    "thread_latency": Case(lambda m: thread_latency(m, X, threads=(1,), repeats=1, warmup=0)),
    "kernel_times": Case(lambda m: kernel_times(m, X, repeats=1, warmup=0)),
    "batch_throughput": Case(lambda m: batch_throughput(m, batch_sizes=(1,), repeats=1)),
    "max_param_diff": Case(lambda m: max_param_diff(m, m)),
    "compress": Case(compress, argument=shared),
    "paper_bits": Case(paper_bits),
    "choose_bits": Case(lambda m, **kw: choose_bits(m, *_data(kw, "loader"), candidates=(2,)), loaders=("loader",)),
    "storage_bytes": Case(lambda m: storage_bytes(m, coding="sparse")),
    "choose_index_bits": Case(lambda m: choose_index_bits(m, candidates=(3, 4)), argument=shared),
    "choose_policy": Case(lambda m, **kw: choose_policy(m, *_data(kw, "loader"), budget=300, sparsities=(0.5,)),
                          loaders=("loader",)),
    "policy_scan": Case(lambda m, **kw: policy_scan(m, *_data(kw, "loader"), sparsities=(0.5,), bits=(4,)),
                        loaders=("loader",)),
    "make_policy": Case(lambda m: make_policy(m, settings={"5": (0.5, 4)}, unit="bytes")),
    "temperature_sweep": Case(lambda m, **kw: temperature_sweep(m, tiny(1), *_data(kw, "train_loader", "val_loader",
                                                                                   "test_loader"), [1.0], steps=1),
                              loaders=("train_loader", "val_loader", "test_loader"), first="student"),
    "generate": Case(lambda m: generate(m, torch.tensor([65, 66]), 2), argument=tiny_gpt, inputs=IDS),
    "perplexity": Case(lambda m: perplexity(m, TOKENS, 8), argument=tiny_gpt, inputs=IDS),
    "perplexities": Case(perplexities, argument=tiny_gpt, inputs=IDS, slow=True),
    "accuracies": Case(lambda m: accuracies(m, "lenet300"), argument=lenet, slow=True,
                       inputs=torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))),
}


def _registered(kind: str) -> dict[str, Callable]:
    return {f.__name__: f for f in CONTRACT.values() if f.__contract__ == kind}


def _params(kind: str, cases: dict[str, Case]) -> list:
    names = sorted(set(_registered(kind)) | set(cases))
    return [pytest.param(name, marks=pytest.mark.slow) if name in cases and cases[name].slow else name
            for name in names]


def _loader_params(cases: dict[str, Case]) -> list:
    return [pytest.param(name, loader, id=f"{name}-{loader}",
                         marks=[pytest.mark.slow] if case.slow else [])
            for name, case in sorted(cases.items()) for loader in case.loaders]


def _case(cases: dict[str, Case], name: str) -> Case:
    assert name in cases, f"{name} is registered but tests/test_contract.py has no Case for it: add one"
    return cases[name]


def _snapshot(model: nn.Module, inputs: torch.Tensor) -> dict[str, Any]:
    """Everything a verb or a reader must leave as it was, and the eval-mode output on ``inputs``."""
    with torch.no_grad():
        output = copy.deepcopy(model).eval()(inputs)
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "modes": [(name, m.training) for name, m in model.named_modules()],
            "classes": [(name, type(m)) for name, m in model.named_modules()],
            "requires_grad": [(name, p.requires_grad) for name, p in model.named_parameters()],
            "parametrizations": [(name, {t: [type(p) for p in plist] for t, plist in m.parametrizations.items()})
                                 for name, m in model.named_modules() if parametrize.is_parametrized(m)],
            "output": output}


def _assert_unchanged(model: nn.Module, inputs: torch.Tensor, before: dict[str, Any]) -> None:
    after = _snapshot(model, inputs)
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), f"{key} changed"
    for part in ("modes", "classes", "requires_grad", "parametrizations"):
        assert after[part] == before[part], f"the argument's {part} changed"
    assert torch.equal(after["output"], before["output"]), "the argument's output changed"


def _model_of(result: Any) -> nn.Module:
    model = getattr(result, "model", result)  # Trained and Result hold the model
    assert isinstance(model, nn.Module), f"a verb must return a model, a Trained or a Result, got {type(result)}"
    return model


def _storages(model: nn.Module) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in model.state_dict().values() if t.numel()}


def _public_functions_taking_a_model() -> list[Callable]:
    found = []
    for module in MODULES:
        if any(part.startswith("_") for part in module.__name__.split(".")[1:]):
            continue
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue
            first = next(iter(inspect.signature(obj, eval_str=True).parameters.values()), None)
            if first is not None and (first.annotation is nn.Module or first.name in ("model", "student")):
                found.append(obj)
    return found


def test_every_function_taking_a_model_is_registered_and_has_a_case():
    functions = _public_functions_taking_a_model()
    unregistered = [f"{f.__module__}.{f.__name__}" for f in functions if not hasattr(f, "__contract__")]
    assert not unregistered, ("register these with @verb, @reads_model or @changes_model "
                              f"(course_lib._validation): {unregistered}")
    names = [f.__name__ for f in CONTRACT.values()]
    assert sorted({n for n in names if names.count(n) > 1}) == [], "registered functions that share a name"
    for kind, cases in (("verb", VERBS), ("reader", READERS)):
        registered = _registered(kind)
        assert sorted(set(registered) - set(cases)) == [], f"{kind}s without a Case"
        assert sorted(set(cases) - set(registered)) == [], f"Cases of functions not registered as {kind}s"
    assert {"train", "distillation_step", "load_weights"} <= set(_registered("in_place"))


@pytest.mark.parametrize("name", _params("verb", VERBS))
def test_a_verb_leaves_its_argument_as_it_was_and_returns_an_independent_model(name):
    case = _case(VERBS, name)
    argument = case.argument()
    before = _snapshot(argument, case.inputs)
    result = _model_of(case.run(argument))
    assert result is not argument
    _assert_unchanged(argument, case.inputs, before)
    assert not _storages(result) & _storages(argument), "the result shares tensors with its argument"
    for module in result.modules():  # PyTorch's own undoing of a parametrization must not reach the argument
        if parametrize.is_parametrized(module):
            for tensor in list(module.parametrizations):
                parametrize.remove_parametrizations(module, tensor)
    _assert_unchanged(argument, case.inputs, before)


@pytest.mark.parametrize("name", _params("verb", VERBS))
def test_a_verb_takes_its_model_and_data_first_and_every_setting_by_keyword(name):
    verbs = _registered("verb")
    assert name in verbs, f"{name} has a Case but is not registered with @verb"
    signature = inspect.signature(verbs[name])
    positional = [p.name for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    assert set(positional) <= DATA_ARGUMENTS, f"settings that are not keyword-only: {set(positional) - DATA_ARGUMENTS}"
    assert positional[0] in ("model", "student")


@pytest.mark.parametrize("name", _params("verb", VERBS))
def test_a_verb_rejects_bad_arguments_with_the_package_errors_naming_them(name):
    case = _case(VERBS, name)
    with pytest.raises(TypeError, match=rf"^{case.first} must be a torch.nn.Module, got 'net' \(str\)"):
        case.run("net")
    if case.setting is None:
        return
    setting, wrong_type, bad_value = case.setting
    with pytest.raises(TypeError, match=rf"\b{re.escape(setting)}\b"):
        case.run(case.argument(), **{setting: wrong_type})
    if bad_value is not None:
        with pytest.raises(ValueError, match=rf"\b{re.escape(setting)}\b"):
            case.run(case.argument(), **{setting: bad_value})


@pytest.mark.parametrize("name, loader", _loader_params(VERBS) + _loader_params(READERS))
def test_an_empty_or_missing_loader_is_refused(name, loader):
    case = VERBS.get(name) or READERS[name]
    with pytest.raises(ValueError, match=rf"^{loader} must yield at least one batch, got an empty DataLoader"):
        case.run(case.argument(), **{loader: EMPTY})
    with pytest.raises(TypeError, match=rf"^{loader} must be an iterable of batches such as a DataLoader, got None"):
        case.run(case.argument(), **{loader: None})


@pytest.mark.parametrize("name", _params("reader", READERS))
def test_a_reader_leaves_its_argument_as_it_was(name):
    case = _case(READERS, name)
    argument = case.argument()
    before = _snapshot(argument, case.inputs)
    case.run(argument)
    _assert_unchanged(argument, case.inputs, before)
