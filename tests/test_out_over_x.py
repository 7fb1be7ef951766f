"""``out=`` over x's own memory: the same elements in the same order is in-place dropout, compared
by the addresses the two views reach (the strides of length-1 axes never matter); the same
memory in another order, or a part of it, is refused with a message that says which."""
import numpy as np
import pytest

import cdrop
from helpers import assert_bits_equal


def test_out_over_the_same_elements_with_another_length_1_stride():
    a = np.arange(1, 13, dtype=np.float64).reshape(3, 4)
    x, out = a[1][None], a[1:2]  # shape (1, 4): strides (0, 8) and (32, 8)
    assert x.strides != out.strides
    expected = cdrop.dropout(a[1:2].copy(), 0.5, seed=1)
    assert cdrop.dropout(x, 0.5, seed=1, out=out) is out
    assert_bits_equal(a[1:2], expected)
    assert_bits_equal(a[[0, 2]], np.arange(1, 13, dtype=np.float64).reshape(3, 4)[[0, 2]])


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_in_place_with_out_over_the_same_elements(p):
    a = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    expected = cdrop.dropout(a[1:2].copy(), p, seed=2)
    x = a[1][None]
    assert cdrop.dropout(x, p, seed=2, inplace=True, out=a[1:2]) is not None
    assert_bits_equal(a[1:2], expected)


def test_length_1_axes_anywhere():
    base = np.arange(1, 25, dtype=np.float64)
    x = np.lib.stride_tricks.as_strided(base, shape=(1, 24, 1), strides=(0, 8, 0))
    out = np.lib.stride_tricks.as_strided(base, shape=(1, 24, 1), strides=(999 * 8, 8, -8),
                                          writeable=True)
    expected = cdrop.dropout(base.copy().reshape(1, 24, 1), 0.5, seed=3)
    cdrop.dropout(x, 0.5, seed=3, out=out)
    assert_bits_equal(base.reshape(1, 24, 1), expected)


@pytest.mark.parametrize("make_out", [lambda x: x.T, lambda x: x[::-1], lambda x: x[:, ::-1],
                                      lambda x: x[::-1, ::-1].T],
                         ids=["T", "rows reversed", "columns reversed", "both and T"])
def test_same_memory_in_another_order_is_refused_as_such(make_out):
    x = np.arange(1, 17, dtype=np.float64).reshape(4, 4)
    before = x.copy()
    with pytest.raises(ValueError, match="overlap") as info:
        cdrop.dropout(x, 0.5, seed=1, out=make_out(x))
    msg = str(info.value)
    assert "only in part" not in msg and "different order" in msg, msg
    assert_bits_equal(x, before)


def test_reversed_1d_view_is_refused_as_another_order():
    x = np.arange(1, 101, dtype=np.float32)
    with pytest.raises(ValueError, match="different order"):
        cdrop.dropout(x, 0.5, seed=1, out=x[::-1])


def test_partial_overlap_still_says_in_part():
    buf = np.arange(1, 102, dtype=np.float64)
    with pytest.raises(ValueError, match="only in part"):
        cdrop.dropout(buf[:100], 0.5, seed=1, out=buf[1:])
    x = np.arange(1, 17, dtype=np.float64).reshape(4, 4)
    with pytest.raises(ValueError, match="only in part"):  # columns 1-2 in both
        cdrop.dropout(x[:, :3], 0.5, seed=1, out=x[:, 1:])
    with pytest.raises(ValueError, match="only in part"):  # the same rows, other columns too
        cdrop.dropout(x[:3], 0.5, seed=1, out=x[1:][::-1])
