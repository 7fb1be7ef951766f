"""Blocks of a larger array (issue 13, item 1): ``global_shape=`` and ``start=``.

The contract (docs/rng.md, "Blocks of a larger array"): for a block ``big[sl]`` of a C-ordered
array of shape G that starts at S,

    dropout(big[sl], p, seed=s, offset=o, global_shape=G, start=S) == dropout(big, ...)[sl]

bit for bit, for any layout of the block, any dtype and every kernel path; the same for
dropout_mask and noise_shape (whose entries then refer to G).  Each case is checked against
both the whole-array call and the NumPy oracle of tests/reference.py, which draws the stream
over the block's counters independently of the kernels.
"""
import numpy as np
import pytest

import cdrop
import reference as ref

try:
    import ml_dtypes

    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - the test extra installs it
    BF16 = None

DTYPES = [np.float32, np.float64, np.float16] + ([BF16] if BF16 is not None else [])
U64 = 1 << 64


def _bits(a):
    """The bytes of `a` in C order: NaN payloads and -0.0 compared exactly."""
    return np.ascontiguousarray(a).view(np.uint8)


def _slices(start, shape):
    return tuple(slice(a, a + n) for a, n in zip(start, shape))


def _layout(a, how, rng):
    """The block in another memory layout, same values."""
    if how == "C":  # (np.array, not np.ascontiguousarray, which makes a 0-d array 1-d)
        return np.array(a, order="C", copy=True)
    if how == "F":
        return np.array(a, order="F", copy=True)
    if a.ndim == 0:  # no strides to vary
        return np.array(a, copy=True)
    if how == "reversed":  # negative strides along every axis
        b = np.empty_like(a)[(slice(None, None, -1),) * a.ndim]
        b[...] = a
        return b
    if how == "strided":  # every other element of a larger buffer
        b = np.empty(tuple(2 * n for n in a.shape), a.dtype)[(slice(None, None, 2),) * a.ndim]
        b[...] = a
        return b
    raise AssertionError(how)


def _random_case(rng, max_ndim=4):
    nd = int(rng.integers(0, max_ndim + 1))
    lim = {0: [], 1: [70000], 2: [200, 300], 3: [30, 40, 50], 4: [8, 9, 10, 11]}[nd]
    gshape = tuple(int(rng.integers(1, m + 1)) for m in lim)
    start = tuple(int(rng.integers(0, g)) for g in gshape)
    shape = tuple(int(rng.integers(1, g - s + 1)) for g, s in zip(gshape, start))
    return gshape, start, shape


@pytest.mark.parametrize("seed", range(6))
def test_block_equals_the_whole_arrays_block_on_every_path(kernel_path, seed):
    rng = np.random.default_rng(seed)
    for _ in range(12):
        gshape, start, shape = _random_case(rng)
        dtype = DTYPES[int(rng.integers(len(DTYPES)))]
        p = float(rng.choice([0.1, 0.3, 0.5, 0.9]))
        offset = [0, 12345, U64 - int(np.prod(gshape))][int(rng.integers(3))]
        big = np.asarray(rng.standard_normal(gshape)).astype(dtype)
        sl = _slices(start, shape)
        want = cdrop.dropout(big, p, seed=seed, offset=offset)[sl]
        oracle = ref.block_dropout_ref(big[sl], p, seed, gshape, start, offset)
        assert np.array_equal(_bits(want), _bits(oracle))
        for how in ("C", "F", "reversed", "strided"):
            blk = _layout(big[sl], how, rng)
            got = cdrop.dropout(blk, p, seed=seed, offset=offset, global_shape=gshape,
                                start=start)
            assert got.shape == shape and got.dtype == blk.dtype
            assert np.array_equal(_bits(got), _bits(want)), (
                gshape, start, shape, dtype, p, offset, how)


@pytest.mark.parametrize("case", [
    # (global shape, start, block shape): rows of the block walk's two kinds and their edges
    ((3, 100000), (1, 5), (2, 99990)),         # rows longer than a piece (2**16 columns)
    ((64, 20000), (3, 7), (50, 19000)),        # long rows that cross stream blocks
    ((1000, 1000), (10, 10), (500, 10)),       # narrow rows, many per stream block
    ((50000, 3), (1, 1), (49000, 1)),          # a last axis of length 1: one element per row
    ((40, 50, 1024), (3, 0, 0), (30, 20, 1024)),  # rows that merge: 20 * 1024 counters each
    ((7, 16384), (0, 0), (7, 16383)),          # rows that end one short of a stream block
    ((300, 700), (0, 699), (300, 1)),          # the last column
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_walk_shapes(kernel_path, case, dtype):
    gshape, start, shape = case
    big = np.arange(np.prod(gshape), dtype=dtype).reshape(gshape) + 1
    sl = _slices(start, shape)
    want = ref.block_dropout_ref(big[sl], 0.3, 11, gshape, start, 5)
    for x in (np.ascontiguousarray(big[sl]), big[sl]):
        got = cdrop.dropout(x, 0.3, seed=11, offset=5, global_shape=gshape, start=start)
        assert np.array_equal(got, want)


def test_thread_count_and_pieces_do_not_change_bits():
    gshape, start, shape = (4096, 3000), (100, 1000), (3000, 1900)
    big = np.ones(gshape, np.float32)
    sl = _slices(start, shape)
    want = cdrop.dropout(big, 0.2, seed=3)[sl]
    for narrow in (False, True):  # rows of 1900 (one kernel call each) and of 7 (windows)
        s = (start[0], start[1]) if not narrow else (start[0], 5)
        shp = shape if not narrow else (shape[0], 7)
        w = want if not narrow else cdrop.dropout(big, 0.2, seed=3)[_slices(s, shp)]
        x = np.ones(shp, np.float32)
        for nt in (1, 2, 3, 8):
            got = cdrop.dropout(x, 0.2, seed=3, global_shape=gshape, start=s, num_threads=nt)
            assert np.array_equal(got, w), (narrow, nt)


@pytest.mark.parametrize("mode", ["inplace", "out", "out_fortran", "misaligned"])
def test_output_modes(mode):
    gshape, start, shape = (50, 60, 70), (5, 6, 7), (20, 30, 40)
    big = np.random.default_rng(1).standard_normal(gshape).astype(np.float32)
    sl = _slices(start, shape)
    want = cdrop.dropout(big, 0.4, seed=9)[sl]
    x = big[sl].copy()
    kw = dict(seed=9, global_shape=gshape, start=start)
    if mode == "inplace":
        r = cdrop.dropout(x, 0.4, inplace=True, **kw)
        assert r is x
    elif mode == "out":
        o = np.empty_like(x)
        r = cdrop.dropout(x, 0.4, out=o, **kw)
        assert r is o
    elif mode == "out_fortran":
        o = np.empty(shape, np.float32, order="F")
        r = cdrop.dropout(x, 0.4, out=o, **kw)
        assert r is o
    else:  # a float32 view one byte into a buffer: the kernels refuse it, the fallback copies
        buf = np.zeros(x.nbytes + 1, np.uint8)
        o = buf[1:].view(np.float32).reshape(shape)
        r = cdrop.dropout(x, 0.4, out=o, **kw)
        assert r is o
    assert np.array_equal(r, want)


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("packed", [False, True])
def test_dropout_mask_of_a_block(kernel_path, p, packed):
    rng = np.random.default_rng(int(p * 100) + packed)
    for _ in range(10):
        gshape, start, shape = _random_case(rng)
        sl = _slices(start, shape)
        whole = cdrop.dropout_mask(gshape, p, seed=4, offset=77)[sl]
        got = cdrop.dropout_mask(shape, p, seed=4, offset=77, global_shape=gshape, start=start,
                                 packed=packed)
        if packed:
            want = np.packbits(whole.ravel(), bitorder="little")
            assert got.dtype == np.uint8 and np.array_equal(got, want)
        else:
            assert got.dtype == bool and got.shape == shape and np.array_equal(got, whole)
            assert np.array_equal(got, ref.block_keep_mask(shape, p, 4, gshape, start, 77))


def test_noise_shape_refers_to_the_global_shape(kernel_path):
    gshape = (6, 5, 40, 30)
    big = np.random.default_rng(2).standard_normal(gshape).astype(np.float32)
    for ns in [(None, None, 1, 1), (None, 1, None, 1), (1, 1, 1, None), (6, 5, 40, 30)]:
        want_big = cdrop.dropout(big, 0.5, seed=8, offset=3, noise_shape=ns)
        for start, shape in [((1, 2, 10, 5), (3, 2, 20, 25)), ((0, 0, 0, 0), (6, 5, 40, 30)),
                             ((5, 4, 39, 29), (1, 1, 1, 1))]:
            sl = _slices(start, shape)
            got = cdrop.dropout(np.ascontiguousarray(big[sl]), 0.5, seed=8, offset=3,
                                noise_shape=ns, global_shape=gshape, start=start)
            assert np.array_equal(got, want_big[sl]), (ns, start)


def test_whole_array_and_row_runs_equal_offset_calls():
    # A block of whole trailing axes is a run of counters: the same as the offset of its first
    # element, the rule that chunks along the first axis always had.
    x = np.random.default_rng(3).standard_normal((10, 20, 30)).astype(np.float32)
    got = cdrop.dropout(x[4:7], 0.3, seed=1, global_shape=x.shape, start=(4, 0, 0))
    assert np.array_equal(got, cdrop.dropout(x[4:7], 0.3, seed=1, offset=4 * 600))
    same = cdrop.dropout(x, 0.3, seed=1, global_shape=x.shape, start=(0, 0, 0))
    assert np.array_equal(same, cdrop.dropout(x, 0.3, seed=1))


def test_zero_d_and_empty_blocks():
    x = np.array(2.0, np.float32)
    assert cdrop.dropout(x, 0.5, seed=1, global_shape=(), start=()) == cdrop.dropout(x, 0.5,
                                                                                     seed=1)
    e = np.ones((0, 5), np.float32)
    assert cdrop.dropout(e, 0.5, seed=1, global_shape=(3, 5), start=(3, 0)).shape == (0, 5)
    # an empty block at the very end of the index space: nothing is counted
    assert cdrop.dropout(e, 0.5, seed=1, offset=U64 - 15, global_shape=(3, 5),
                         start=(3, 0)).shape == (0, 5)
    assert cdrop.dropout_mask((0,), 0.5, seed=1, global_shape=(0,), start=(0,)).shape == (0,)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(global_shape=(10, 10)), TypeError, "global_shape and start go together"),
    (dict(start=(0, 0)), TypeError, "global_shape and start go together"),
    (dict(global_shape=(10,), start=(0,)), ValueError, "global_shape must have one entry"),
    (dict(global_shape=(10, 10), start=(0, 0, 0)), ValueError, "start must have one entry"),
    (dict(global_shape=(10, 10), start=(0, -1)), ValueError, "negative"),
    (dict(global_shape=(10, 10), start=(8, 0)), ValueError, "outside global_shape on axis 0"),
    (dict(global_shape=(10, 3), start=(0, 0)), ValueError, "outside global_shape on axis 1"),
    (dict(global_shape=(10, 10), start=(0, 0.5)), TypeError, "start must be a tuple of ints"),
    (dict(global_shape="ab", start=(0, 0)), TypeError, "global_shape must be a tuple of ints"),
    (dict(global_shape=(10, 10), start=(0, 0), offset=U64 - 99), ValueError, "offset"),
    (dict(global_shape=(10, 10), start=(0, 0), noise_shape=(4, 1)), ValueError, "noise_shape"),
])
def test_bad_blocks_raise_and_write_nothing(kw, exc, match):
    x = np.ones((4, 4), np.float32)
    cdrop.manual_seed(5)
    with pytest.raises(exc, match=match):
        cdrop.dropout(x, 0.5, inplace=True, **kw)  # seed=None: the package stream's next seed
    assert (x == 1).all()
    after = cdrop.dropout_mask(64, 0.5, seed=None)
    cdrop.manual_seed(5)
    assert np.array_equal(after, cdrop.dropout_mask(64, 0.5, seed=None))  # no seed consumed
    mask_kw = {k: v for k, v in kw.items() if k != "noise_shape"}
    if "noise_shape" not in kw:
        with pytest.raises(exc, match=match):
            cdrop.dropout_mask((4, 4), 0.5, seed=1, **mask_kw)


def test_offset_at_the_end_of_the_index_space():
    gshape = (100, 300)
    off = U64 - 100 * 300
    big = np.ones(gshape, np.float64)
    sl = _slices((50, 100), (50, 200))
    got = cdrop.dropout(np.ones((50, 200)), 0.5, seed=2, offset=off, global_shape=gshape,
                        start=(50, 100))
    assert np.array_equal(got, cdrop.dropout(big, 0.5, seed=2, offset=off)[sl])


@pytest.mark.parametrize("dtype", DTYPES)
def test_variants_of_a_block(kernel_path, dtype):
    rng = np.random.default_rng(7)
    gshape, start, shape = (12, 30, 40), (3, 5, 6), (8, 20, 30)
    sl = _slices(start, shape)
    big = rng.standard_normal(gshape).astype(dtype)
    res = rng.standard_normal(gshape).astype(dtype)
    bias = rng.standard_normal(gshape[-1]).astype(dtype)
    kw = dict(seed=6, offset=9, global_shape=gshape, start=start)
    for how in ("C", "F", "strided"):
        x, r = _layout(big[sl], how, rng), _layout(res[sl], how, rng)
        pairs = [
            (cdrop.alpha_dropout(x, 0.3, **kw), cdrop.alpha_dropout(big, 0.3, seed=6, offset=9)),
            (cdrop.drop_path(x, 0.3, **kw), cdrop.drop_path(big, 0.3, seed=6, offset=9)),
            (cdrop.dropout_add(x, r, 0.3, **kw),
             cdrop.dropout_add(big, res, 0.3, seed=6, offset=9)),
            (cdrop.dropout_add(x, r, 0.3, bias=bias[start[2]:start[2] + shape[2]], **kw),
             cdrop.dropout_add(big, res, 0.3, bias=bias, seed=6, offset=9)),
        ]
        for k, (got, whole) in enumerate(pairs):
            assert np.array_equal(_bits(got), _bits(whole[sl])), (how, k)


def test_variant_blocks_validate_before_writing():
    x = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="outside global_shape"):
        cdrop.alpha_dropout(x, 0.5, inplace=True, seed=1, global_shape=(4, 3), start=(0, 0))
    with pytest.raises(TypeError, match="go together"):
        cdrop.drop_path(x, 0.5, inplace=True, seed=1, start=(0, 0))
    with pytest.raises(ValueError, match="offset"):
        cdrop.dropout_add(x, x.copy(), 0.5, out=x, seed=1, offset=U64 - 20,
                          global_shape=(8, 4), start=(0, 0))
    assert (x == 1).all()
