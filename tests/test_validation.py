"""course_lib._validation: TypeError for a wrong type, ValueError for a bad value, one message style, the one
meaning of layers= across the verbs, and loaders. Every verb's contract is checked in tests/test_contract.py."""
import math
import re

import pytest
import torch
from torch import nn

from course_lib import _validation as V
from course_lib.acceleration import factorize_linears
from course_lib.compression import Config, deep_compress
from course_lib.pruning import apply_masks, magnitude_prune, prune_channels
from course_lib.quantization import binarize_weights, share_weights


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


@pytest.mark.parametrize("call, argument", [
    (lambda m: magnitude_prune(m, sparsity={"nope": 0.5}, scope="layer"), "sparsity"),
    (lambda m: share_weights(m, bits={"nope": 2}), "bits"),
    (lambda m: apply_masks(m, masks={"nope": torch.ones(1)}), "masks"),
    (lambda m: prune_channels(m, sparsity=0.5, scores={"nope": torch.ones(4)}), "scores"),
    (lambda m: deep_compress(m, [1], [1], [1], config=Config({"nope": 0.5})), "config.sparsities"),
    (lambda m: deep_compress(m, [1], [1], [1], config=Config({"0": 0.5}, index_bits={"nope": 4})),
     "config.index_bits"),
])
def test_an_unknown_key_of_a_per_layer_mapping_names_the_argument(call, argument):
    """Before: every such error read "layers must name ...", whatever the argument."""
    with pytest.raises(ValueError, match=rf"^the keys of {re.escape(argument)} must name .*'nope' is not among them"):
        call(_net())


def test_check_loader_refuses_what_yields_no_batch():
    assert V.check_loader([1], "loader") == [1]
    assert V.check_loader(iter([]), "loader") is not None  # no length: checked by whoever iterates it
    with pytest.raises(ValueError, match="batches must yield at least one batch, got an empty list"):
        V.check_loader([], "batches")
    for value, given in ((None, "None (NoneType)"), (torch.zeros(2), "a tensor of dtype torch.float32"),
                         ("data", "'data' (str)")):
        with pytest.raises(TypeError, match=re.escape(f"loader must be an iterable of batches such as a DataLoader, "
                                                      f"got {given}")):
            V.check_loader(value, "loader")
