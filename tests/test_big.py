"""More than 2**31 elements through every public entry point: indexing must be 64-bit everywhere.

Slow, and each test needs 9-19 GiB of available memory (it skips, with the reason, where that
is not available).  Offsets near the end of the 2**64 index space are in test_errors.py.
"""
import gc
import math
import time

import numpy as np
import pytest

import cdrop
import reference
from helpers import mem_available_gib

N = 2**31 + 2**20 + 3  # float32: about 8.6 GB
SEED = 11
P = 0.5


def _need_memory(gib):
    avail = mem_available_gib()
    if avail is None:
        pytest.skip("cannot read MemAvailable from /proc/meminfo")
    if avail < gib:
        pytest.skip(f"needs {gib} GiB of available memory, {avail:.1f} GiB available")


def _check_window(values, start, what):
    """values = the dropout of ones at global indices start .. start + len(values) - 1."""
    expected = reference.dropout_ref(np.ones(len(values), np.float32), P, SEED, offset=start)
    assert np.array_equal(values.view(np.uint32), expected.view(np.uint32)), what


@pytest.mark.slow
def test_in_place_over_2_31_elements():
    _need_memory(12)
    t0 = time.perf_counter()
    x = np.ones(N, dtype=np.float32)
    try:
        r = cdrop.dropout(x, P, seed=SEED, inplace=True)
        assert r is x
        # (a) the very end
        _check_window(x[-5000:], N - 5000, "last 5000 elements")
        # (b) around index 2**31 (where a 32-bit index would wrap)
        _check_window(x[2**31 - 2500:2**31 + 2500], 2**31 - 2500, "around 2**31")
        # around 2**32 / 4 bytes: the byte offset 2**32 of a float32 array, element 2**30
        _check_window(x[2**30 - 100:2**30 + 100], 2**30 - 100, "around 2**30")
        # (c) kept fraction of a few 10^6-element samples, 6-sigma binomial bound each
        q = reference.threshold(P) / 2**32
        for start in (0, 2**31 - 10**6 // 2, N - 10**6, 1_500_000_000):
            sample = x[start:start + 10**6]
            k = int(np.count_nonzero(sample))
            assert abs(k - 10**6 * q) <= 6 * math.sqrt(10**6 * q * (1 - q)), (start, k)
            assert set(np.unique(sample).tolist()) <= {0.0, 2.0}
        # the kept/dropped pattern at the end equals the stand-alone mask's
        tail_mask = cdrop.dropout_mask(2**20, P, seed=SEED, offset=N - 2**20)
        assert np.array_equal(x[-2**20:] != 0, tail_mask)
    finally:
        del x
        gc.collect()
    print(f"in place over {N} float32 elements: {time.perf_counter() - t0:.1f} s")


@pytest.mark.slow
def test_packed_mask_over_2_31_elements():
    _need_memory(4)
    bits = cdrop.dropout_mask(N, P, seed=SEED, packed=True)
    try:
        assert bits.shape == ((N + 7) // 8,) and bits.dtype == np.uint8
        start = (N - 5000) // 8 * 8  # a byte-aligned element index near the end
        expected = reference.packed_mask(N - start, P, SEED, offset=start)
        assert np.array_equal(bits[start // 8:], expected)
        assert bits[-1] >> (N % 8) == 0  # padding bits are zero
        mid = 2**31 - 4096
        expected = reference.packed_mask(8192, P, SEED, offset=mid)
        assert np.array_equal(bits[mid // 8:mid // 8 + 1024], expected)
    finally:
        del bits
        gc.collect()


@pytest.mark.slow
def test_bool_mask_over_2_31_elements():
    _need_memory(6)
    m = cdrop.dropout_mask(N, P, seed=SEED)
    try:
        assert m.shape == (N,) and m.dtype == np.bool_
        assert np.array_equal(m[-5000:], reference.keep_mask(5000, P, SEED, offset=N - 5000))
        assert np.array_equal(m[2**31 - 100:2**31 + 100],
                              reference.keep_mask(200, P, SEED, offset=2**31 - 100))
    finally:
        del m
        gc.collect()


ONE = np.float32(1.0)


@pytest.mark.slow
def test_out_of_place_and_out_over_2_31_elements():
    # The input is a zero-stride broadcast of 1.0 (no memory): out of place, the strided walk
    # reads it with 64-bit indices and the result (~8.6 GB) is the only big allocation.
    _need_memory(11)
    src = np.broadcast_to(ONE, (N,))
    y = cdrop.dropout(src, P, seed=SEED)
    try:
        assert y.shape == (N,) and y.dtype == np.float32 and y.flags.c_contiguous
        _check_window(y[-5000:], N - 5000, "out of place: last 5000 elements")
        _check_window(y[2**31 - 2500:2**31 + 2500], 2**31 - 2500, "out of place: around 2**31")
        # out= into the same (refilled) buffer gives the same result
        y.fill(7.0)
        r = cdrop.dropout(src, P, seed=SEED, out=y)
        assert r is y
        _check_window(y[-5000:], N - 5000, "out=: last 5000 elements")
        _check_window(y[2**31 - 2500:2**31 + 2500], 2**31 - 2500, "out=: around 2**31")
        assert not np.any(y[::997] == 7.0)  # every part was written
    finally:
        del y
        gc.collect()


@pytest.mark.slow
def test_layer_forward_backward_over_2_31_elements():
    # In-place forward on ~8.6 GB of ones; backward of a broadcast gradient of ones allocates
    # another 8.6 GB and must equal the forward output bit for bit (same mask, same scale).
    _need_memory(19)
    x = np.ones(N, dtype=np.float32)
    try:
        layer = cdrop.Dropout(P, inplace=True, seed=SEED)
        y = layer(x)
        assert y is x
        g = layer.backward(np.broadcast_to(ONE, (N,)))
        try:
            assert g.shape == (N,) and g.dtype == np.float32
            step = 2**26  # compare in slices: no 8.6 GB temporaries
            for a in range(0, N, step):
                assert np.array_equal(g[a:a + step].view(np.uint32),
                                      y[a:a + step].view(np.uint32)), f"slice at {a}"
            # and the mask is the one of the layer's call seed, at the end of the array
            call_seed = layer._last[0]  # the seed of the forward call (a private attribute)
            expected = reference.dropout_ref(np.ones(5000, np.float32), P, call_seed,
                                             offset=N - 5000)
            assert np.array_equal(y[-5000:].view(np.uint32), expected.view(np.uint32))
        finally:
            del g
    finally:
        del x
        gc.collect()


# A 2-D shape of more than 2**31 elements whose rows are not a power of two long.
R, C = 2**16 + 1, 32771


def _check_rows(view, rows, what):
    for r in rows:
        _check_window(np.ascontiguousarray(view[r]), r * C, f"{what}: row {r}")


@pytest.mark.slow
def test_strided_and_fortran_views_over_2_31_elements():
    # In place on views of one ~8.6 GB buffer: reversed columns (the strided walk) and a
    # transposed, Fortran-ordered view (the band walk).  Element (r, c) of a view has the
    # logical index r * C + c whatever its address.
    assert R * C > 2**31
    _need_memory(11)
    buf = np.ones(R * C, dtype=np.float32)
    try:
        rows = (0, 2**15 + 3, 2**31 // C, R - 1)  # 2**31 // C: the row holding index 2**31
        rev = buf.reshape(R, C)[:, ::-1]
        cdrop.dropout(rev, P, seed=SEED, inplace=True)
        _check_rows(rev, rows, "reversed columns")
        buf.fill(1.0)
        fview = buf.reshape(C, R).T  # shape (R, C), Fortran order
        assert fview.shape == (R, C) and fview.flags.f_contiguous
        cdrop.dropout(fview, P, seed=SEED, inplace=True)
        _check_rows(fview, rows, "Fortran order")
    finally:
        del buf
        gc.collect()
