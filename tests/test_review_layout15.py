"""An outsider's review of the layout walks of session 15: the tall tiles from keep BITS
(walk_tall.c, bits_run.inc.h), the slab walk (walk_layout.c) and the resumable block loop
(walk.inc.h) that the slabs' cursors use.

Each case compares ``cdrop.dropout(view)`` with ``cdrop.dropout(np.ascontiguousarray(view))``
bit for bit (and with tests/reference.py where the size allows).  The shapes sit on either side
of the walks' limits: bands of 1024 rows (512 for float64), at least 64, fewer when the band's
bits would pass 512 KiB (4097 columns: 960 rows; 65536: 64; 65537: no tall tiles), widths around
the tile fill (C * rows > 458752), 64-row chunks of the bit transposes cut short, 512-column
groups cut short; slabs with odd A/B/C, rows of 1 to 16 KiB, slabs just above and below a
stream block, an outer axis.  The seeded random loop (tests/tools/fuzz_layout15.py, which runs
for minutes from the command line) adds guard bytes around the views and out= of another layout.
"""
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
import fuzz_layout15  # noqa: E402

try:
    import ml_dtypes
except ImportError:  # optional: the bfloat16 cases skip
    ml_dtypes = None

DTYPES = [np.float32, np.float64, np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes else [])
BLOCK = 16384


def _data(shape, dt, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    return rng.standard_normal(shape).astype(np.float32).astype(dt)


def _expect(view, p, seed, offset):
    return cdrop.dropout(np.ascontiguousarray(view), p, seed=seed, offset=offset, num_threads=1)


def _name(dt):
    return np.dtype(dt).name


@pytest.mark.parametrize("dt", DTYPES, ids=_name)
@pytest.mark.parametrize(
    "R, C, what",
    [
        (961, 4097, "bits capped at 512 KiB: bands of 960 rows, then 1"),
        (65, 65536, "bands of 64 rows, the least, then 1"),
        (64, 65537, "one row too wide for a band of 64: the older tiles"),
        (1025, 449, "just over the tile fill for 1024-row bands (float32, halves)"),
        (513, 897, "just over the tile fill for 512-row bands (float64)"),
        (100, 4700, "one band of 100 rows: a 64-row chunk and a 36-row chunk"),
        (2 * 1024 + 1, 1500, "a last band of one row"),
    ],
)
def test_tall_band_limits_give_the_bits_of_the_c_ordered_copy(dt, R, C, what):
    x = np.asfortranarray(_data((R, C), dt))
    big = R * C > 1_000_000  # the runtime: fewer variants of the largest
    for v in (x,) if big else (x, x[::-1, ::-1]):
        for off, p, nt in ((5 * BLOCK - C, 0.5, 3), (2**64 - v.size, 0.1, 7), (0, 0.3, 2),
                           (64 * 9 - 1, 1 - 1e-16, 1))[:2 if big else 4]:
            got = cdrop.dropout(v, p, seed=15, offset=off, num_threads=nt)
            assert_bits_equal(got, _expect(v, p, 15, off), f"{what}: {v.strides} off={off}")


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=_name)
def test_tall_bands_match_the_reference(dt):
    # the bits kernel's range, the transposes and bits_run straight against the oracle
    x = np.asfortranarray(_data((1030, 600), dt))
    for off in (BLOCK - 600, 2**64 - x.size):
        for p in (5e-324, 0.3):
            want = reference.dropout_ref(np.ascontiguousarray(x), p, 5, off)
            assert_bits_equal(cdrop.dropout(x, p, seed=5, offset=off, num_threads=2), want,
                              f"p={p} off={off}")


@pytest.mark.parametrize("dt", DTYPES, ids=_name)
def test_tall_views_with_strided_columns_and_rows(dt):
    """C.T[::2] (rows 2 items apart: keep bytes from the bits), every other column, and an
    out= of another layout, in place too."""
    base = _data((3000, 2200), dt)
    for v in (base.T[::2], base.T[:, ::2], base[::2].T, base.T[::-2, ::3]):
        expected = _expect(v, 0.4, 9, 12345)
        for nt in (1, 2):
            assert_bits_equal(cdrop.dropout(v, 0.4, seed=9, offset=12345, num_threads=nt),
                              expected, f"{v.shape} {v.strides}")
        out = np.full(v.shape, 3.0, dt)  # C order: not the tall walk for x, nor for out
        cdrop.dropout(v, 0.4, seed=9, offset=12345, out=out, num_threads=3)
        assert_bits_equal(out, expected, f"out= C order, {v.strides}")
        y = v.copy(order="F")
        cdrop.dropout(y, 0.4, seed=9, offset=12345, inplace=True, num_threads=2)
        assert_bits_equal(y, expected, f"in place, {y.strides}")


@pytest.mark.parametrize("dt", DTYPES, ids=_name)
@pytest.mark.parametrize(
    "base",
    [(128, 1, 128), (2, 5, 8192), (16385, 3, 1), (5462, 7, 3), (300, 257, 63), (64, 17, 8191),
     (4, 511, 4096), (8193, 2, 2)],
    ids=str,
)
def test_slab_limits_give_the_bits_of_the_c_ordered_copy(dt, base):
    """(B, A, C).transpose(1, 0, 2): one a (no slab walk), 16 KiB rows, rows of 1 and 3
    elements, slabs of exactly and just above a block, bands of 256 a's and a short one."""
    base = base if base[2] * np.dtype(dt).itemsize <= 16384 else (base[0], base[1], base[2] // 2)
    x = _data(base, dt)
    for v in (x.transpose(1, 0, 2), x[::-1, ::-1].transpose(1, 0, 2)):
        for off, p, nt in ((0, 0.3, 2), (BLOCK - 3, 0.5, 7), (2**64 - v.size, 0.9, 1000)):
            got = cdrop.dropout(v, p, seed=2, offset=off, num_threads=nt)
            assert_bits_equal(got, _expect(v, p, 2, off), f"{v.shape} {v.strides} off={off}")


def test_slab_and_tall_views_from_a_thread_with_a_small_stack():
    x = np.asfortranarray(_data((1100, 1000), np.float32))
    s = _data((400, 65, 300), np.float64).transpose(1, 0, 2)
    h = np.asfortranarray(_data((1500, 900), np.float16))
    views = [x, x[::-1], s, s[:, ::-1], h]
    expected = [_expect(v, 0.3, 3, 2**64 - v.size) for v in views]
    got, errors = [], []

    def work():
        try:
            for v in views:
                for nt in (1, 2):
                    got.append(cdrop.dropout(v, 0.3, seed=3, offset=2**64 - v.size,
                                             num_threads=nt))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    old = threading.stack_size(64 * 1024)
    try:
        t = threading.Thread(target=work)
        t.start()
    finally:
        threading.stack_size(old)
    t.join()
    assert not errors, errors
    for i, g in enumerate(got):
        assert_bits_equal(g, expected[i // 2], f"64 KiB stack, view {i // 2}")


def test_subclass_read_only_and_broadcast_sources_of_the_new_walks():
    class Sub(np.ndarray):
        pass

    s = _data((300, 70, 129), np.float32).transpose(1, 0, 2)
    y = cdrop.dropout(s.view(Sub), 0.5, seed=1, num_threads=2)
    assert type(y) is Sub
    assert_bits_equal(np.asarray(y), _expect(s, 0.5, 1, 0), "subclass slab")
    r = np.array(s.transpose(1, 0, 2)).transpose(1, 0, 2)  # a copy of the slab layout
    r.flags.writeable = False
    assert_bits_equal(cdrop.dropout(r, 0.5, seed=1), _expect(s, 0.5, 1, 0), "read-only slab")
    with pytest.raises(ValueError, match="x is read-only"):
        cdrop.dropout(r, 0.5, seed=1, inplace=True)
    # broadcast sources into tall and slab outputs (a zero stride read down a column)
    row = _data((3000,), np.float32)
    src = np.broadcast_to(row, (1100, 3000))
    out = np.zeros((1100, 3000), np.float32, order="F")
    cdrop.dropout(src, 0.3, seed=4, out=out, num_threads=2)
    assert_bits_equal(out, _expect(src, 0.3, 4, 0), "broadcast row into Fortran out")
    m = _data((300, 129), np.float64)
    src = np.broadcast_to(m, (7, 300, 129))
    out = np.zeros((300, 7, 129)).transpose(1, 0, 2)
    cdrop.dropout(src, 0.3, seed=4, out=out, num_threads=2)
    assert_bits_equal(out, _expect(src, 0.3, 4, 0), "broadcast into a slab out")


@pytest.mark.parametrize("path", ["avx512", "avx2", "portable", "scalar"])
def test_random_layouts_with_guard_bytes_equal_their_copies(path):
    """A bounded run of the fuzz tool's random cases on one kernel path (tall, slab, any)."""
    from cdrop import _kernels

    old = _kernels.get_path()
    if _kernels.set_path(path) != path:
        _kernels.set_path(old)
        pytest.skip(f"kernel path {path} is not available here")
    try:
        fails = [e for i in range(12)
                 if (e := fuzz_layout15.run_case(1500, i, [path], ["tall", "slab", "any"]))]
    finally:
        _kernels.set_path(old)
    assert not fails, "\n".join(fails)


@pytest.mark.parametrize("dt", DTYPES, ids=_name)
def test_every_bit_pattern_through_the_new_walks_matches_the_reference(dt):
    """NaN payloads, signalling NaNs, infinities, subnormals and -0.0 (random bit patterns)
    through bits_run (unit columns), keep bytes from bits (a row step), the slabs and the
    small-slice shuffle: the same bits as tests/reference.py."""
    it = np.dtype(dt).itemsize
    u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[it]
    rng = np.random.default_rng(it)

    def raw(shape):
        return rng.integers(0, 2 ** (8 * it), size=shape, dtype=u).view(dt)

    views = [np.asfortranarray(raw((1100, 500))), np.asfortranarray(raw((1100, 500)))[::-1, ::2],
             raw((300, 70, 129)).transpose(1, 0, 2), raw((3000, 8, 2)).transpose(0, 2, 1)]
    for v in views:
        for p in (0.3, 0.999):
            off = 2**64 - v.size
            got = cdrop.dropout(v, p, seed=3, offset=off, num_threads=2)
            want = reference.dropout_ref(v, p, 3, off)
            assert np.array_equal(np.ascontiguousarray(got).view(u), want.view(u)), (
                f"{v.shape} {v.strides} p={p}")
