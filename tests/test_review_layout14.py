"""An outsider's review of the tall tiles and the walks' runs (written against the tall tiles of
keep bytes with cursors; the tall tiles are now bands of keep bits, walk_tall.c, and the same
shapes, limits and checks apply to them).

2-D views whose rows are closer in memory than their columns (Fortran order, ``x.T``) and too
wide for tiles of whole rows were made in tiles of 1024 rows (512 for float64) whose rows resumed
the stream from cursors saved by the tile before.  A wrong cursor, a wrong piece boundary or a
wrong thread share changes bits only in some rows of some tiles, so these compare every element
with the C-ordered copy (and, for hand-picked shapes, with tests/reference.py) for shapes on
either side of the tile limits, offsets that put row starts on block (16384) and step (64)
edges or end the stream at 2**64, reversed axes, every thread count the brief names, and check
that no byte outside the view's elements changes (in place, out of place, ``out=`` of another
layout), also from a thread with a 64 KiB stack.
"""
import threading

import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal

try:
    import ml_dtypes
except ImportError:  # optional: the bfloat16 cases skip
    ml_dtypes = None

DTYPES = [np.float32, np.float64, np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes else [])
GUARD = 256  # random bytes on either side of an embedded array
THREADS = (1, 2, 3, 7, 64, 1000)
BLOCK = 16384


def _tall_rows(dt):
    return 512 if np.dtype(dt).itemsize == 8 else 1024


def _embed(rng, shape, dt, fortran, pad):
    """(buffer, view): a (h, w) view, Fortran-ordered (rows closer than columns) or C-ordered,
    the innermost memory axis padded by `pad` items, GUARD random bytes around it."""
    it = np.dtype(dt).itemsize
    ms = shape[::-1] if fortran else shape
    pm = (ms[0], ms[1] + pad)
    buf = np.frombuffer(rng.bytes(pm[0] * pm[1] * it + 2 * GUARD), np.uint8).copy()
    base = buf[GUARD:GUARD + pm[0] * pm[1] * it].view(dt).reshape(pm)[:, :ms[1]]
    base[...] = rng.standard_normal(ms).astype(np.float32).astype(dt)
    return buf, (base.T if fortran else base)


def _outside(buf, v):
    """Boolean mask of the bytes of `buf` that are not bytes of `v`'s elements."""
    start = v.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    idx = np.full(v.shape, start, np.int64)
    for ax in range(v.ndim):
        sh = [1] * v.ndim
        sh[ax] = v.shape[ax]
        idx = idx + (np.arange(v.shape[ax]) * v.strides[ax]).reshape(sh)
    m = np.ones(buf.size, bool)
    m[(idx.ravel()[:, None] + np.arange(v.itemsize)).ravel()] = False
    return m


def _random_case(rng):
    dt = DTYPES[rng.integers(len(DTYPES))]
    tall = _tall_rows(dt)
    if rng.random() < 0.5:  # around the tile limits
        h = int(rng.choice([1, 2, 63, 64, 65, tall // 2, tall, 2 * tall, 3 * tall]))
        w = int(rng.choice([1, 2, 255, 256, 257, 4096, 4096 + 256, 8192, BLOCK]))
        h, w = max(1, h + int(rng.integers(-2, 3))), max(1, w + int(rng.integers(-2, 3)))
    else:  # any tall height, widths near multiples of the tile width (tiny last tiles)
        h = int(rng.integers(60, 2200))
        cw = (262144 // min(h, tall)) & ~63
        w = max(1, cw * int(rng.integers(1, 20)) + int(rng.integers(-2, 3)))
    while h * w > 1_500_000:
        h = max(1, h // 2)
    buf, v = _embed(rng, (h, w), dt, rng.random() < 0.85, int(rng.choice([0, 0, 1, 5])))
    if rng.random() < 0.3:
        v = v[::-1]
    if rng.random() < 0.3:
        v = v[:, ::-1]
    if rng.random() < 0.1 and v.shape[0] > 2:
        v = v[::2]
    n = v.size
    r = rng.random()
    if r < 0.2:  # the stream ends at 2**64
        off = 2**64 - n - int(rng.integers(0, 3))
    elif r < 0.5:  # row starts on block or step edges
        off = int(rng.integers(1, 8)) * BLOCK - int(rng.choice([0, 1, 63, 64, w, 3 * w]))
    else:
        off = int(rng.integers(0, 2**40))
    off = max(0, min(off, 2**64 - n))
    p = float(rng.choice([0.0, 0.1, 0.5, 0.9, 1.0, rng.random()]))
    return buf, v, dt, p, off


def _check_case(rng, buf, v, dt, p, off, nt, mode):
    seed = int(rng.integers(0, 2**63))
    expected = cdrop.dropout(np.ascontiguousarray(v), p, seed=seed, offset=off, num_threads=1)
    before = buf.copy()
    what = f"{np.dtype(dt).name} {v.shape} strides {v.strides} p={p} offset={off} nt={nt} {mode}"
    if mode == "inplace":
        got = cdrop.dropout(v, p, seed=seed, offset=off, num_threads=nt, inplace=True)
        m = _outside(buf, v)
        assert np.array_equal(buf[m], before[m]), f"wrote outside the view: {what}"
    elif mode == "copy":
        got = cdrop.dropout(v, p, seed=seed, offset=off, num_threads=nt)
        assert np.array_equal(buf, before), f"wrote to x: {what}"
    else:  # out= of its own layout, embedded too
        ob, o = _embed(rng, v.shape, dt, rng.random() < 0.5, int(rng.choice([0, 3])))
        if rng.random() < 0.3:
            o = o[::-1]
        if rng.random() < 0.3:
            o = o[:, ::-1]
        ob0 = ob.copy()
        got = cdrop.dropout(v, p, seed=seed, offset=off, num_threads=nt, out=o)
        assert got is o
        m = _outside(ob, o)
        assert np.array_equal(ob[m], ob0[m]), f"wrote outside out: {what} out {o.strides}"
        assert np.array_equal(buf, before), f"wrote to x: {what}"
    assert_bits_equal(got, expected, what)


def test_random_tall_views_equal_their_copies_and_write_nothing_else(kernel_path):
    rng = np.random.default_rng(14_000 + len(kernel_path))
    for i in range(30):
        buf, v, dt, p, off = _random_case(rng)
        nt = int(rng.choice(THREADS))
        _check_case(rng, buf, v, dt, p, off, nt, ("inplace", "copy", "out")[i % 3])


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "extra_rows, w, where",
    [(0, 4096, "block"), (1, 4097, "end"), (3, 256 * 16 + 1, "step"), (-1, 255, "block"),
     (2, 1, "end"), (1, 4096 + 255, "step")],
)
def test_tall_tile_edges_match_the_reference(dt, extra_rows, w, where):
    """Heights just around one tile, 1-row last bands, widths at the tile and piece
    limits, with offsets that start a row on a block or step edge or end the stream at 2**64."""
    h = _tall_rows(dt) + extra_rows
    n = h * w
    off = {"block": 5 * BLOCK - w, "step": 64 * 3 - 1, "end": 2**64 - n}[where]
    rng = np.random.default_rng(h * w)
    x = np.asfortranarray(rng.standard_normal((h, w)).astype(np.float32).astype(dt))
    expected = reference.dropout_ref(np.ascontiguousarray(x), 0.375, 99, off)
    for nt in (1, 3, 5, 1000):  # 3, 5: npieces % nt != 0 for some shapes
        for v, e in ((x, expected), (x[::-1, ::-1], None)):
            want = e if e is not None else cdrop.dropout(np.ascontiguousarray(v), 0.375, seed=99,
                                                         offset=off, num_threads=1)
            got = cdrop.dropout(v, 0.375, seed=99, offset=off, num_threads=nt)
            assert_bits_equal(got, want, f"{v.shape} {v.strides} nt={nt} offset={off}")
            # in place too: a new result may reuse the memory of an equal one just freed, so
            # that an element the walk skipped would still hold the right bits
            y = np.array(v, order="F")[::-1, ::-1] if v is not x else np.array(v, order="F")
            y[...] = v
            cdrop.dropout(y, 0.375, seed=99, offset=off, num_threads=nt, inplace=True)
            assert_bits_equal(y, want, f"in place {y.shape} {y.strides} nt={nt} offset={off}")


@pytest.mark.parametrize("p", [5e-324, 2.0**-40, 2.0**-33, 2.0**-32, 1 - 2.0**-32, 1 - 1e-16])
def test_extreme_p_on_tall_tiles_match_the_reference(kernel_path, p):
    """thr = 0 and ties (isa_portable.c's keep-mask table and tie loop) through the tall tiles."""
    rng = np.random.default_rng(7)
    x = np.asfortranarray(rng.standard_normal((1100, 300)).astype(np.float32))
    off = 2**64 - x.size - 5
    expected = reference.dropout_ref(np.ascontiguousarray(x), p, 7, off)
    for nt in (1, 3):
        assert_bits_equal(cdrop.dropout(x, p, seed=7, offset=off, num_threads=nt), expected,
                          f"p={p} nt={nt}")


def test_tall_tiles_from_a_thread_with_a_small_stack():
    rng = np.random.default_rng(3)
    x = np.asfortranarray(rng.standard_normal((2100, 9000)).astype(np.float32))
    views = [x, x[::-1, ::-1], x.astype(np.float64, order="F")[:1030]]
    expected = [cdrop.dropout(np.ascontiguousarray(v), 0.5, seed=3) for v in views]
    got, errors = [], []

    def work():
        try:
            for v in views:
                got.append(cdrop.dropout(v, 0.5, seed=3, num_threads=1))
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
    for g, e in zip(got, expected):
        assert_bits_equal(g, e, "64 KiB stack")


def test_subclass_and_read_only_tall_views():
    class Sub(np.ndarray):
        pass

    rng = np.random.default_rng(1)
    x = np.asfortranarray(rng.standard_normal((1100, 5000)).astype(np.float32))
    expected = cdrop.dropout(np.ascontiguousarray(x), 0.5, seed=1)
    y = cdrop.dropout(x.view(Sub), 0.5, seed=1, num_threads=2)
    assert type(y) is Sub
    assert_bits_equal(np.asarray(y), expected, "subclass")
    x.flags.writeable = False
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=1), expected, "read-only, out of place")
    with pytest.raises(ValueError, match="x is read-only"):
        cdrop.dropout(x, 0.5, seed=1, inplace=True)
