"""course_lib._validation: TypeError for a wrong type, ValueError for a bad value, one message style, and the
one meaning of layers= across the verbs."""
import math

import pytest
import torch
from torch import nn

from course_lib import _validation as V
from course_lib.acceleration import factorize_linears, fold_batchnorm, to_channels_last
from course_lib.pruning import magnitude_prune, prune_channels
from course_lib.quantization import binarize_weights, post_training_quantize, share_weights


@pytest.mark.parametrize("call,error,message", [
    (lambda: V.check_int(True, "rank", 1), TypeError, "rank must be an integer >= 1, got True (bool)"),
    (lambda: V.check_int(2.0, "rank", 1), TypeError, "rank must be an integer >= 1, got 2.0 (float)"),
    (lambda: V.check_int(0, "rank", 1, 4), ValueError, "rank must be an integer in [1, 4], got 0"),
    (lambda: V.check_number("1", "lr"), TypeError, "lr must be a finite number, got '1' (str)"),
    (lambda: V.check_number(math.inf, "lr", 0.0), ValueError, "lr must be a finite number >= 0, got inf"),
    (lambda: V.check_positive(0, "temperature"), ValueError, "temperature must be a finite number > 0, got 0.0"),
    (lambda: V.check_fraction(2.0, "tolerance", meaning="the accuracy that may be lost"), ValueError,
     "tolerance must be a finite number in [0, 1] (the accuracy that may be lost), got 2.0"),
    (lambda: V.check_sparsity(1.0, of="channels", high_open=True), ValueError,
     "sparsity must be a finite number in [0, 1) (the fraction of channels to remove), got 1.0"),
    (lambda: V.check_bool(1, "hard"), TypeError, "hard must be True or False, got 1 (int)"),
    (lambda: V.check_choice("x", "scope", ("global", "layer")), ValueError,
     "scope must be one of 'global', 'layer', got 'x'"),
    (lambda: V.check_module([1], "model"), TypeError, "model must be a torch.nn.Module, got [1] (list)"),
    (lambda: V.check_float_tensor(torch.arange(3), "x"), TypeError,
     "x must be a floating-point tensor, got a tensor of dtype torch.int64 and shape (3,)"),
    (lambda: V.check_float_tensor(torch.tensor(1.0), "w", min_dim=1), ValueError,
     "w must be a floating-point tensor with at least 1 dimension, got a tensor of dtype torch.float32 and shape ()"),
])
def test_checks_raise_the_right_error_with_the_common_message(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


def test_checks_return_the_value_converted():
    assert V.check_int(3, "n") == 3 and V.check_number(1, "x") == 1.0 and isinstance(V.check_number(1, "x"), float)
    assert V.check_fraction(0.25, "f") == 0.25


def _net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))


def test_select_layers_is_the_one_meaning_of_layers():
    assert list(V.select_layers(_net(), None)) == ["0", "3"]
    assert list(V.select_layers(_net(), ["3"])) == ["3"]
    with pytest.raises(ValueError, match=r"layers must name Linear/Conv2d layers of the model \(0, 3\); '1' is not"):
        V.select_layers(_net(), ["1"])
    with pytest.raises(ValueError, match="at least one"):
        V.select_layers(_net(), [])
    with pytest.raises(ValueError, match="at most once"):
        V.select_layers(_net(), ["0", "0"])
    with pytest.raises(TypeError, match="an iterable of names"):
        V.select_layers(_net(), "0")
    with pytest.raises(TypeError, match="bits must be a mapping"):
        V.check_layer_mapping([("0", 2)], "bits", _net())


@pytest.mark.parametrize("verb", [
    lambda m, layers: magnitude_prune(m, sparsity=0.5, layers=layers),
    lambda m, layers: binarize_weights(m, layers=layers),
    lambda m, layers: share_weights(m, bits=2, layers=layers),
    lambda m, layers: prune_channels(m, sparsity=0.5, layers=layers),
    lambda m, layers: factorize_linears(m, rank=2, layers=layers),
])
def test_every_verb_rejects_an_unknown_layer_the_same_way(verb):
    with pytest.raises(ValueError, match=r"layers must name .*'nope' is not among them"):
        verb(_net(), ["nope"])


@pytest.mark.parametrize("verb", [
    lambda m: magnitude_prune(m, sparsity=0.5), lambda m: binarize_weights(m), lambda m: share_weights(m, bits=2),
    lambda m: prune_channels(m, sparsity=0.5), lambda m: factorize_linears(m, rank=2), fold_batchnorm,
    to_channels_last, lambda m: post_training_quantize(m, [torch.rand(2, 1, 28, 28)]),
])
def test_every_verb_rejects_a_non_module_with_a_type_error(verb):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got 'net' \\(str\\)"):
        verb("net")
