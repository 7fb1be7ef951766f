"""Flags are bools, and error messages say what was passed and what to do instead.

* ``training``, ``inplace``, ``packed`` and the layer's ``inplace`` and ``train(mode)`` take a
  bool or ``numpy.bool_``; anything else is a TypeError naming the argument.  A positional seed
  (``dropout(x, 0.5, 1234)`` sets ``training=1234``) is the mistake this catches, and its
  message shows the keyword form.
* Messages name the type that was passed where a value is not numbers at all (None, text), give
  a conversion hint for dtypes that convert (int16), point torch users at
  ``t.detach().numpy()``, and name ``shape`` for a shape NumPy cannot allocate.
"""
import numpy as np
import pytest

import cdrop
from helpers import assert_bits_equal


def _x(n=1000, dtype=np.float32):
    return np.random.default_rng(0).standard_normal(n).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------
def test_positional_seed_is_refused_with_the_keyword_form():
    x = _x()
    before = x.copy()
    with pytest.raises(TypeError, match=r"training must be a bool, got int \(did you mean "
                                        r"seed=1234\? seed is keyword-only\)"):
        cdrop.dropout(x, 0.5, 1234)
    assert_bits_equal(x, before)
    with pytest.raises(TypeError, match=r"training.*seed=7"):
        cdrop.dropout(x, 0.5, np.int64(7))
    with pytest.raises(TypeError, match=r"training.*seed=<Generator>"):
        cdrop.dropout(x, 0.5, np.random.default_rng(0))


@pytest.mark.parametrize("value", ["no", "", 1, 0, 1.0, None, np.array(True), np.array([1, 0]),
                                   [True]], ids=repr)
def test_training_must_be_a_bool(value):
    x = _x()
    before = x.copy()
    with pytest.raises(TypeError, match=r"\btraining must be a bool, got "):
        cdrop.dropout(x, 0.5, value, seed=1)
    assert_bits_equal(x, before)


@pytest.mark.parametrize("value", ["yes", 1, 0, None, np.array(True)], ids=repr)
def test_inplace_packed_and_the_layer_flags_must_be_bools(value):
    x = _x()
    before = x.copy()
    with pytest.raises(TypeError, match=r"\binplace must be a bool"):
        cdrop.dropout(x, 0.5, seed=1, inplace=value)
    assert_bits_equal(x, before)
    with pytest.raises(TypeError, match=r"\bpacked must be a bool"):
        cdrop.dropout_mask(10, 0.5, seed=1, packed=value)
    with pytest.raises(TypeError, match=r"\binplace must be a bool"):
        cdrop.Dropout(0.5, inplace=value)
    layer = cdrop.Dropout(0.5, seed=1)
    with pytest.raises(TypeError, match=r"\bmode must be a bool"):
        layer.train(value)
    assert layer.training is True  # unchanged


def test_numpy_bools_are_flags():
    x = _x()
    assert cdrop.dropout(x, 0.5, np.False_, seed=1) is x
    assert_bits_equal(cdrop.dropout(x, 0.5, np.True_, seed=1), cdrop.dropout(x, 0.5, seed=1))
    y = x.copy()
    assert cdrop.dropout(y, 0.5, seed=1, inplace=np.True_) is y
    assert_bits_equal(y, cdrop.dropout(x, 0.5, seed=1))
    assert np.array_equal(cdrop.dropout_mask(10, 0.5, seed=1, packed=np.True_),
                          cdrop.dropout_mask(10, 0.5, seed=1, packed=True))
    layer = cdrop.Dropout(0.5, inplace=np.False_, seed=1)
    assert layer.inplace is False
    assert layer.train(np.False_).training is False
    assert layer.train(np.True_).training is True


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("inplace", [False, True])
def test_int16_error_says_how_to_convert(inplace):
    x = np.ones(100, np.int16)
    with pytest.raises(TypeError, match=r"int16.*convert it with x\.astype\('float32'\)"):
        cdrop.dropout(x, 0.5, seed=1, inplace=inplace)


def test_grad_int16_error_names_grad():
    layer = cdrop.Dropout(0.5, seed=1)
    layer(np.ones(10))
    with pytest.raises(TypeError, match=r"grad.*int16.*grad\.astype\('float32'\)"):
        layer.backward(np.ones(10, np.int16))


@pytest.mark.parametrize("value,type_name", [(None, "NoneType"), ("abc", "str"),
                                             ({"a": 1}, "dict"), (b"xy", "bytes"),
                                             (object(), "object")], ids=repr)
def test_non_numbers_name_the_type_that_was_passed(value, type_name):
    with pytest.raises(TypeError, match=rf"\bx\b.*\bgot {type_name}$") as info:
        cdrop.dropout(value, 0.5, seed=1)
    assert "dtype object" not in str(info.value) and "<U" not in str(info.value)


def test_array_likes_of_other_numbers_keep_a_dtype_message():
    with pytest.raises(TypeError, match=r"int64.*list.*float32 and float64.*np\.asarray"):
        cdrop.dropout([1, 2, 3], 0.5, seed=1)


def test_manual_seed_none_is_refused_without_listing_none_as_accepted():
    cdrop.manual_seed(5)
    expected = cdrop.dropout_mask(64, 0.5, seed=None)
    cdrop.manual_seed(5)
    with pytest.raises(TypeError, match=r"manual_seed.*\bint\b.*got NoneType") as info:
        cdrop.manual_seed(None)
    assert "None" not in str(info.value).replace("NoneType", "")  # not listed as accepted
    assert "Generator" not in str(info.value)
    with pytest.raises(TypeError, match=r"manual_seed.*\bint\b.*not a numpy\.random\.Generator"):
        cdrop.manual_seed(np.random.default_rng(0))
    assert np.array_equal(cdrop.dropout_mask(64, 0.5, seed=None), expected)  # stream untouched


def test_torch_tensor_that_requires_grad_is_a_type_error_with_a_hint():
    torch = pytest.importorskip("torch")
    t = torch.ones(100, requires_grad=True)
    with pytest.raises(TypeError, match=r"t\.detach\(\)\.numpy\(\)"):
        cdrop.dropout(t, 0.5, seed=1)
    with pytest.raises(TypeError, match=r"inplace=True needs x to be a numpy\.ndarray, got "
                                        r"Tensor.*t\.detach\(\)\.numpy\(\)"):
        cdrop.dropout(t, 0.5, seed=1, inplace=True)
    p = torch.nn.Parameter(torch.ones(10))  # a Tensor subclass
    with pytest.raises(TypeError, match=r"detach\(\)\.numpy\(\)"):
        cdrop.dropout(p, 0.5, seed=1)
    with pytest.raises(TypeError, match=r"grad.*detach\(\)\.numpy\(\)"):
        layer = cdrop.Dropout(0.5, seed=1)
        layer(np.ones(100, np.float32))
        layer.backward(t)


def test_torch_tensor_without_grad_still_converts():
    torch = pytest.importorskip("torch")
    t = torch.ones(100)
    y = cdrop.dropout(t, 0.5, seed=1)
    assert isinstance(y, np.ndarray)
    assert_bits_equal(y, cdrop.dropout(np.ones(100, np.float32), 0.5, seed=1))


@pytest.mark.parametrize("shape", [(2**63,), (2**62, 4), (1,) * 65], ids=str)
def test_dropout_mask_unallocatable_shape_names_shape(shape):
    with pytest.raises((ValueError, MemoryError), match=r"\bshape\b"):
        cdrop.dropout_mask(shape, 0.5, seed=1)
