"""Views of contiguous rows whose third-last axis is closer in memory than the second-last: the
slab walk (cdrop/_src/walk_layout.c, issue 12 item 3).

``(B, A, C).transpose(1, 0, 2)`` is a Fortran-like (a, b) array of C-element rows.  The slab
walk visits it in memory order (b outer, a inner); each a's keep bytes come from its own cursor
(the resumable producer), a tile of J b's at a time, applied while the next tile's are made.  A
band holds at most 256 a's (fewer for long rows: 128 KiB of keep bytes per tile) and a piece is a
band by a segment of b's (whole stream blocks per slab where the row length allows).  A wrong
cursor, band, segment or tile edge changes bits only in some rows, so every element is compared
with the C-ordered copy's result: shapes on either side of those limits, slabs just above one
stream block, odd row lengths (tiles that cut steps and blocks), offsets on and off block edges,
reversed axes, rows that are not adjacent, an outer axis, ``out=`` of the same and of another
layout, and thread counts below and above the number of pieces.
"""
import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal

P = 0.3
SEED = 20261130
BLOCK = 16384
THREADS = (1, 2, 7, 1000)


def _data(shape, dt, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    return rng.standard_normal(shape).astype(np.float32).astype(dt)


# (base shape of a C-ordered array, what its transpose(1, 0, 2) exercises)
SHAPES = {
    (128, 128, 128): "slabs of exactly one block: every segment seeds",
    (130, 37, 129): "odd rows (129): tiles of b's cut steps and blocks, one segment",
    (9, 66, 2048): "rows of 8 KiB (float32): bands of 64 a's and 2, segments of 8 b's and 1",
    (300, 257, 64): "257 a's: a band of 256 and one of 1; segments of 256 b's and 44",
    (1100, 3, 16): "three a's of 16-element rows, segments of 1024 b's and 76",
    (127, 5, 129): "slabs of 16383 elements, one short of a block: the strided walk",
}


def _check(view, offset, num_threads, mode):
    expected = cdrop.dropout(np.ascontiguousarray(view), P, seed=SEED, offset=offset)
    if mode == "inplace":
        got = view
        cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=num_threads, inplace=True)
    elif mode == "out_same":  # an output laid out like the view, in another buffer
        base = np.full(view.transpose(1, 0, 2).shape, 3.0, view.dtype)
        got = base.transpose(1, 0, 2)
        cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=num_threads, out=got)
    elif mode == "out_c":  # a C-ordered output: the a's are not closer than the b's there
        got = np.full(view.shape, 3.0, view.dtype)
        cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=num_threads, out=got)
    else:
        got = cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=num_threads)
    assert_bits_equal(got, expected, f"{view.shape} {view.strides} off={offset} "
                                     f"t={num_threads} {mode}")


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("base", list(SHAPES), ids=str)
def test_slab_views_give_the_bits_of_the_c_ordered_copy(base, dt):
    # offsets: slabs on block starts, 5 elements before a block edge, far out
    for offset in (0, BLOCK - 5, 2**40 - 3):
        for num_threads, mode in ((1, "out_of_place"), (2, "inplace"), (7, "out_same"),
                                  (1000, "out_c")):
            _check(_data(base, dt).transpose(1, 0, 2), offset, num_threads, mode)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda x: x[::-1].transpose(1, 0, 2),  # b reversed
    lambda x: x[:, ::-1].transpose(1, 0, 2),  # a reversed
    lambda x: x[::-1, ::-1].transpose(1, 0, 2),  # both
    lambda x: x[:, ::2].transpose(1, 0, 2),  # every other a: rows not adjacent
    lambda x: x[:, :, :100].transpose(1, 0, 2),  # rows cut short: not adjacent either
], ids=["b_reversed", "a_reversed", "both_reversed", "every_other_a", "rows_cut"])
def test_slab_views_with_gaps_and_negative_strides_give_the_bits_of_the_c_ordered_copy(make, dt):
    for offset in (0, 12345):
        for num_threads in THREADS:
            _check(make(_data((200, 70, 130), dt)), offset, num_threads,
                   "inplace" if num_threads == 2 else "out_of_place")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_slab_views_with_an_outer_axis_give_the_bits_of_the_c_ordered_copy(dt):
    # (3, B, A, C).transpose(0, 2, 1, 3): pieces over the outer index too
    for base in ((3, 130, 37, 129), (2, 64, 300, 256)):
        x = _data(base, dt)
        for view in (x.transpose(0, 2, 1, 3), x[::-1].transpose(0, 2, 1, 3)):
            for offset in (0, 777):
                expected = cdrop.dropout(np.ascontiguousarray(view), P, seed=SEED,
                                         offset=offset)
                for t in THREADS:
                    got = cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=t)
                    assert_bits_equal(got, expected, f"{base} t={t}")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_slab_views_match_the_reference(dt):
    # the C-ordered copy is itself checked against tests/reference.py elsewhere; here the slab
    # walk's result directly, at a block edge and at the last index of the stream
    for offset in (BLOCK - 5, 2**64 - 130 * 37 * 129):
        x = _data((130, 37, 129), dt)
        view = x.transpose(1, 0, 2)
        got = cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=2)
        want = reference.dropout_ref(view, P, SEED, offset)
        assert_bits_equal(got, want, f"off={offset}")
