"""The tall tiles from keep bits (cdrop/_src/walk_tall.c, bits_run.inc.h).

A 2-D view whose rows are closer in memory than its columns (Fortran order, ``x.T``) and too
wide for tiles of whole rows of keep bytes is walked in bands of whole rows (1024 for float32,
512 for float64, fewer for rows of more than 4096 columns): the band's keep bits are one range
of the stream, transposed 64 x 64 bits at a time into columns and applied down each column,
with unit strides by the instruction set's bits run, else through keep bytes.  A wrong bit
offset, a wrong edge of a 64 x 64 block, of a group of 512 columns or of a band, or a wrong
tail of a run changes only some elements, so every case compares all of them, bit for bit,
with the C-ordered copy: odd widths and widths whose last strip of 64 columns is narrow,
heights whose last band is shorter than 64 rows, offsets that put band starts next to block
(16384) edges or end the stream at 2**64, reversed axes, a row step (keep bytes instead of the
bits run), ``out=`` of another layout and several threads, on every kernel path.
"""
import numpy as np
import pytest

import cdrop
from helpers import assert_bits_equal

BLOCK = 16384

# (rows, columns): each takes the tall tiles for float32 (and the float64 ones for float64)
SHAPES32 = [
    (1100, 700),  # a band of 1024 rows and one of 76
    (1030, 529),  # a last strip of 17 columns, a last band of 6 rows
    (2100, 449),  # the narrowest tall width (449 * 1024 > 448 KiB), a last band of 52 rows
    (777, 3001),  # one band of 777 rows (not a multiple of 64), 6 groups of 512 columns
    (70, 40000),  # rows too long for 1024 of them: bands of 64 rows, a last one of 6
]
SHAPES64 = [(1100, 1001), (530, 1987)]


def _fortran(rng, shape, dt):
    return np.asfortranarray(rng.standard_normal(shape).astype(np.float32).astype(dt))


def _check(v, p=0.5, seed=7, offset=0, num_threads=1, out=None, msg=""):
    """dropout of view v (out of place, into `out` if given, and in place on a copy of the same
    layout) against the C-ordered copy."""
    want = cdrop.dropout(np.ascontiguousarray(v), p, seed=seed, offset=offset)
    got = cdrop.dropout(v, p, seed=seed, offset=offset, num_threads=num_threads, out=out)
    assert_bits_equal(got, want, f"{msg} out of place")
    w = v.copy(order="K")
    cdrop.dropout(w, p, seed=seed, offset=offset, num_threads=num_threads, inplace=True)
    assert_bits_equal(w, want, f"{msg} in place")


@pytest.mark.parametrize("p", [0.5, 0.3])
@pytest.mark.parametrize(
    "dt, shape",
    [(np.float32, s) for s in SHAPES32]
    + [(np.float64, s) for s in SHAPES64]
    + [(np.float16, (1100, 700))],
)
def test_fortran_views_equal_their_c_copies(kernel_path, dt, shape, p):
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    a = _fortran(rng, shape, dt)
    _check(a, p=p, msg=f"{kernel_path} {shape}")
    _check(a[::-1], p=p, msg=f"{kernel_path} {shape} rows reversed")
    _check(a[:, ::-1], p=p, msg=f"{kernel_path} {shape} columns reversed")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_transposes_and_row_steps_equal_their_c_copies(kernel_path, dt):
    rng = np.random.default_rng(3)
    c = rng.standard_normal((1500, 2100)).astype(dt)
    _check(c.T, msg=f"{kernel_path} x.T")
    _check(c.T[::2], msg=f"{kernel_path} x.T[::2] (keep bytes)")
    _check(c.T[::-3], msg=f"{kernel_path} x.T[::-3]")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [BLOCK - 3, 5 * BLOCK - 700 * 3 + 1, 2**64 - 1100 * 1001])
def test_offsets_near_block_edges_and_the_stream_end(dt, offset):
    rng = np.random.default_rng(11)
    a = _fortran(rng, (1100, 1001), dt)
    _check(a, offset=offset, msg=f"offset {offset}")
    _check(a, p=0.1, offset=offset, msg=f"offset {offset} p=0.1")


@pytest.mark.parametrize("num_threads", [2, 3])
@pytest.mark.parametrize("dt, shape", [(np.float32, (2100, 700)), (np.float64, (1100, 1001))])
def test_several_threads_give_the_same_bits(dt, shape, num_threads):
    rng = np.random.default_rng(5)
    a = _fortran(rng, shape, dt)
    _check(a, num_threads=num_threads, msg=f"{num_threads} threads")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_out_of_another_layout(dt):
    rng = np.random.default_rng(9)
    a = _fortran(rng, (1100, 1001), dt)
    want = cdrop.dropout(np.ascontiguousarray(a), 0.5, seed=2)
    # rows closer than columns, with a padded column pitch
    out = np.full((1001, 1200), np.nan, dt)[:, :1100].T
    cdrop.dropout(a, 0.5, seed=2, out=out)
    assert_bits_equal(out, want, "out= padded")
    # reversed rows (a negative row stride: keep bytes)
    out = np.full((1100, 1001), np.nan, dt, order="F")[::-1]
    cdrop.dropout(a, 0.5, seed=2, out=out, num_threads=2)
    assert_bits_equal(out, want, "out= rows reversed")
    # C order: another walk, the same bits
    out = np.full((1100, 1001), np.nan, dt)
    cdrop.dropout(a, 0.5, seed=2, out=out)
    assert_bits_equal(out, want, "out= C order")
