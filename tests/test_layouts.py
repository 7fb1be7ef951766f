"""Non-contiguous layouts through the tile walk (cdrop/_src/walk_layout.c, issue 12 item 3).

The tile walk makes the keep bytes of a tile (whole matrices of the last three axes, whole rows,
or rows cut by columns) in index order, permutes them into the tile's memory order (8 x 8 byte
transposes, padded rows) and applies them in merged runs.  Whatever the layout, the result must
have the bits of the C-ordered copy's result, which tests/reference.py defines.  The shapes
below are chosen to hit the walk's edges: tiles of several matrices and their last partial tile,
whole-row tiles with a remainder of one row, a single band of rows split by columns (several
pieces, so two threads share it), rows of a multiple of 512 bytes (padded), transpose blocks with
edges (sizes not multiples of 8), negative and zero strides, 3-D transposes, offsets inside a
stream block, 1 and 2 threads, and every kernel path.
"""
import textwrap

import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal, run_python

try:
    import ml_dtypes
except ImportError:  # optional: the bfloat16 cases skip
    ml_dtypes = None

DTYPES = [np.float32, np.float64, np.float16,
          pytest.param("bfloat16", marks=pytest.mark.skipif(ml_dtypes is None,
                                                            reason="needs ml_dtypes"))]
P = 0.3
SEED = 20261129
OFFSETS = (0, 12345)  # 12345: every tile's first range starts inside a stream block


def _dtype(dt):
    return ml_dtypes.bfloat16 if dt == "bfloat16" else np.dtype(dt)


def _data(shape, dt):
    rng = np.random.default_rng(abs(hash(shape)) % 2**32)
    return rng.standard_normal(shape).astype(np.float32).astype(_dtype(dt))


# name -> function of a C-ordered array giving the view under test; each is a layout whose last
# two axes have rows closer in memory than columns (the tile walk), unless noted.
VIEWS = {
    "fortran": np.asfortranarray,
    "transpose": lambda x: x.T,
    "transpose_negative_rows": lambda x: x[::-1].T,
    "fortran_negative_columns": lambda x: np.asfortranarray(x)[:, ::-1],
    "fortran_every_other_row": lambda x: np.asfortranarray(x)[::2],
    "transpose_every_other_column": lambda x: x[:, ::2].T,
}

# (shape, what it exercises)
SHAPES_2D = {
    (37, 53): "one tile, transpose edges in both directions",
    (700, 600): "whole-row tiles: 320 rows, then 280 (transposed: 600 x 700)",
    (16, 70000): "one band of 16 rows cut into 5 tiles of columns",
    (40, 9000): "rows cut by columns: 2 x 2 tiles with partial edges",
    (1024, 1024): "rows of 1024 bytes: padded pitch",
    (3, 100001): "three rows: a tile of three row segments",
    (100001, 3): "three columns: columns of 100001 rows",
}


def _check(view, dt, offset, num_threads, mode):
    x = np.ascontiguousarray(view)
    expected = cdrop.dropout(x, P, seed=SEED, offset=offset)
    if mode == "inplace":
        got = view
        cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=num_threads, inplace=True)
    elif mode == "out_fortran":
        got = np.asfortranarray(np.full(view.shape, 3.0, dtype=view.dtype))
        cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=num_threads, out=got)
    else:
        got = cdrop.dropout(view, P, seed=SEED, offset=offset, num_threads=num_threads)
    assert_bits_equal(got, expected, f"{view.shape} {view.strides} t={num_threads} {mode}")


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", list(SHAPES_2D), ids=str)
@pytest.mark.parametrize("view", list(VIEWS))
def test_2d_views_give_the_bits_of_the_c_ordered_copy(view, shape, dt):
    for offset in OFFSETS:
        for num_threads in (1, 2):
            for mode in ("out_of_place", "inplace", "out_fortran"):
                v = VIEWS[view](_data(shape, dt))
                _check(v, dt, offset, num_threads, mode)


# (50, 400, 20) and (2000, 40, 16) under transpose(2, 1, 0): the matrices interleave in memory,
# and a tile takes 16 of them, with rows (and row segments) of each
SHAPES_3D = [(5, 3, 7), (70, 33, 9), (3, 130, 600), (20000, 8, 2), (2**12, 2, 16), (9, 1024, 64),
             (50, 400, 20), (2000, 40, 16)]
PERMS = [(0, 2, 1), (2, 1, 0), (1, 2, 0), (2, 0, 1), (1, 0, 2)]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", SHAPES_3D, ids=str)
@pytest.mark.parametrize("perm", PERMS, ids=str)
def test_3d_transposes_give_the_bits_of_the_c_ordered_copy(perm, shape, dt):
    for offset in OFFSETS:
        for num_threads in (1, 2):
            for mode in ("out_of_place", "inplace"):
                _check(_data(shape, dt).transpose(perm), dt, offset, num_threads, mode)
    f = np.asfortranarray(_data(shape, dt))
    _check(f, dt, 777, 2, "inplace")
    _check(f[::-1, :, ::2], dt, 777, 2, "out_of_place")


@pytest.mark.parametrize("dt", [np.float32, np.float16])
@pytest.mark.parametrize("tail", [(1, 2), (2, 2), (4, 2), (2, 8), (8, 4), (4, 16), (8, 8), (3, 4)],
                         ids=str)
def test_small_slices_permuted_by_shuffles_give_the_bits_of_the_c_ordered_copy(tail, dt):
    # slices of 2 .. 64 keep bytes (a power of two) are permuted 64 bytes at a time with byte
    # shuffles, the rest byte by byte: 1001 slices leave a tail of whole slices for the latter
    # ((3, 4) is 12 bytes: the byte loop only)
    for n in (1001, 4096):
        for perm in ((0, 2, 1), (2, 1, 0)):
            v = _data((n,) + tail, dt).transpose(perm)
            for mode in ("out_of_place", "inplace"):
                _check(v.copy(order="K") if mode == "inplace" else v, dt, 77, 1, mode)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda x: np.asfortranarray(x),
    lambda x: x.T,
    lambda x: x.reshape(10, 6, 7).transpose(0, 2, 1),
    lambda x: x.reshape(10, 6, 7).transpose(2, 1, 0)[::-1],
], ids=["fortran", "transpose", "small_trailing_axes", "3d_negative"])
def test_views_match_the_reference(make, dt):
    # the oracle itself, not only the C-ordered copy
    for offset in (0, 16380):  # 16380: the view's elements straddle a block boundary
        v = make(_data((60, 7), dt).astype(dt))
        expected = reference.dropout_ref(v, P, SEED, offset=offset)
        assert_bits_equal(cdrop.dropout(v, P, seed=SEED, offset=offset), expected, "out")
        cdrop.dropout(v, P, seed=SEED, offset=offset, inplace=True)
        assert_bits_equal(v, expected, "inplace")


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.float16])
def test_zero_strides_into_a_fortran_output(dt):
    # a broadcast row (row stride 0) into a Fortran-ordered out: the tile walk with a source
    # whose innermost axis does not move
    row = _data((1, 5000), dt)
    src = np.broadcast_to(row, (300, 5000))
    for num_threads in (1, 2):
        out = np.asfortranarray(np.zeros((300, 5000), dt))
        cdrop.dropout(src, P, seed=SEED, offset=5, num_threads=num_threads, out=out)
        assert_bits_equal(out, cdrop.dropout(np.ascontiguousarray(src), P, seed=SEED, offset=5))
    src3 = np.broadcast_to(_data((1, 40, 1), dt), (30, 40, 50)).transpose(0, 2, 1)
    out3 = np.empty((30, 50, 40), dt)
    cdrop.dropout(src3, P, seed=SEED, out=out3, num_threads=2)
    assert_bits_equal(out3, cdrop.dropout(np.ascontiguousarray(src3), P, seed=SEED))


# Tall tiles: 2-D arrays whose rows are closer in memory than columns and too wide for tiles of
# whole rows take tiles of up to 1024 rows by a few hundred columns, each row segment made from
# its row's saved generator state (a cursor).  (1100, 700): a band of 1024 rows (512 for float64)
# and a short one; (1030, 529): a last column tile of 17 columns, narrower than a step; odd widths
# start rows inside steps and cut them across stream block edges; (600, 3000): a band of 600 rows.
TALL_SHAPES = [(1100, 700), (1030, 529), (2100, 1001), (600, 3000)]


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", TALL_SHAPES, ids=str)
def test_tall_tiles_give_the_bits_of_the_c_ordered_copy(shape, dt):
    # offsets: the first row at a block start, 5 elements before a block edge, and far out
    for offset in (0, 16384 - 5, 2**40 - 3):
        for view in ("fortran", "transpose_negative_rows", "fortran_negative_columns"):
            for num_threads, mode in ((1, "out_of_place"), (2, "inplace"), (2, "out_fortran")):
                _check(VIEWS[view](_data(shape, dt)), dt, offset, num_threads, mode)


def test_a_single_band_is_shared_by_two_threads():
    # (16, 2**18) Fortran: one band of rows, which the old band walk gave to one thread.  The
    # result cannot show which thread ran which piece, but it must not depend on the count.
    x = np.asfortranarray(_data((16, 2**18), np.float32))
    one = cdrop.dropout(x, P, seed=SEED, num_threads=1)
    for t in (2, 3, 7):
        assert_bits_equal(cdrop.dropout(x, P, seed=SEED, num_threads=t), one, f"t={t}")


@pytest.mark.parametrize("path", ["avx512", "avx2", "portable", "scalar"])
def test_every_kernel_path_gives_the_same_bits(path, tmp_path):
    # The keep bytes come from each path's CDROP_OP_U8 kernel; the permutation and the apply
    # step are shared C.  Digests from this process against those of a fresh one on `path`.
    code = textwrap.dedent(
        """
        import hashlib
        import numpy as np
        import cdrop

        def cases():
            rng = np.random.default_rng(5)
            for dt in (np.float32, np.float64, np.float16):
                x = rng.standard_normal((700, 600)).astype(dt)
                yield np.asfortranarray(x)
                yield x[::-1].T
                yield np.asfortranarray(rng.standard_normal((16, 70000)).astype(dt))
                yield np.asfortranarray(rng.standard_normal((1030, 1001)).astype(dt))
                yield rng.standard_normal((20000, 8, 2)).astype(dt).transpose(0, 2, 1)
                yield rng.standard_normal((70, 33, 9)).astype(dt).transpose(2, 1, 0)

        h = hashlib.sha256()
        for v in cases():
            for t in (1, 2):
                y = cdrop.dropout(v, 0.3, seed=9, offset=12345, num_threads=t)
                h.update(np.ascontiguousarray(y).tobytes())
                cdrop.dropout(v, 0.3, seed=9, offset=12345, num_threads=t, inplace=True)
                h.update(np.ascontiguousarray(v).tobytes())
        print(h.hexdigest())
        """
    )
    here = run_python(code, tmp_path, check=True).stdout.strip()
    there = run_python(code, tmp_path, env={"CDROP_KERNEL": path}, check=True).stdout.strip()
    assert there == here
