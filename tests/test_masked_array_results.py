"""A numpy.ma.MaskedArray keeps its mask through dropout, as it does through a ufunc.

MaskedArray.__array_wrap__ without a ufunc's context gives an all-False mask, under which
masked elements would silently become ordinary values of the result, so dropout gives a masked
result x's mask itself (a copy: the two masks stay independent).
"""
import numpy as np

import cdrop


def test_out_of_place_keeps_the_mask():
    x = np.ma.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], mask=[0, 1, 0, 0, 1, 0])
    y = cdrop.dropout(x, 0.5, seed=3)
    assert isinstance(y, np.ma.MaskedArray)
    assert np.array_equal(np.ma.getmaskarray(y), np.ma.getmaskarray(np.multiply(x, 2.0)))


def test_out_of_place_does_not_share_the_mask():
    x = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    y = cdrop.dropout(x, 0.5, seed=3)
    y[0] = np.ma.masked
    assert not x.mask[0]
