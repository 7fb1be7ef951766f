"""Values of cdrop.dropout / cdrop.dropout_mask against the pure-NumPy oracle (tests/reference.py),
and the public API: names, signatures, show_config and the kernel path (CDROP_KERNEL).

Every comparison is bit-exact (integer views), so -0.0, +0.0 and NaN payloads count.
"""
import warnings
import zlib

import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal, bits, run_python

SEED = 20240601  # one seed for the matrix, so the memoised oracle draws are shared
DTYPES = [np.float32, np.float64]
PS = [0.0, 1e-9, 0.1, 0.5, 0.9, 1.0]
SHAPES = [(), (0,), (1,), (7,), (16385,), (3, 50000), (2, 3, 4, 5)]


# ---------------------------------------------------------------------------------------------
# Layouts: (make the parent array, take the view that is passed to cdrop).
# ---------------------------------------------------------------------------------------------
def _c(shape, dtype, rng):
    return rng.standard_normal(shape).astype(dtype)


def _f(shape, dtype, rng):
    return np.asfortranarray(_c(shape, dtype, rng))


LAYOUTS = {
    "C": (_c, lambda a: a),
    "F": (_f, lambda a: a),
    "step2": (_c, lambda a: a[::2]),
    "reversed": (_c, lambda a: a[::-1]),
    "transpose": (_c, lambda a: a.T),
    "cols1::3": (_c, lambda a: a[:, 1::3] if a.ndim >= 2 else a[1::3]),
}


def _layouts_for(shape):
    if len(shape) == 0:
        return ["C"]
    names = ["C", "step2", "reversed", "cols1::3"]
    if len(shape) >= 2:
        names += ["F", "transpose"]
    return names


CASES = [
    pytest.param(shape, layout, id=f"{'x'.join(map(str, shape)) or '0d'}-{layout}")
    for shape in SHAPES
    for layout in _layouts_for(shape)
]


def _snapshot(a):
    return np.array(a, copy=True, order="K")


def _unchanged(before, after):
    return np.array_equal(bits(before), bits(after))


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,layout", CASES)
def test_matches_oracle_all_modes(shape, layout, dtype, p, kernel_path):
    make, view_of = LAYOUTS[layout]
    rng = np.random.default_rng(zlib.crc32(f"{shape}-{layout}".encode()))
    parent = make(shape, dtype, rng)
    x = view_of(parent)
    x_before = _snapshot(x)
    expected = reference.dropout_ref(x, p, SEED)

    # out of place: a new array of x's shape and dtype, x unchanged
    y = cdrop.dropout(x, p, seed=SEED)
    assert isinstance(y, np.ndarray) and type(y) is np.ndarray
    assert y is not x and y.shape == x.shape and y.dtype == x.dtype
    assert not np.shares_memory(y, parent)
    assert_bits_equal(y, expected, "out of place")
    assert _unchanged(x_before, x), "out of place changed x"

    # out=: written there, returned
    out = np.full(x.shape, 7.0, dtype=dtype)
    r = cdrop.dropout(x, p, seed=SEED, out=out)
    assert r is out
    assert_bits_equal(out, expected, "out=")
    assert _unchanged(x_before, x), "out= changed x"

    # in place on the view of a copy of the parent: only the view's elements change
    parent2 = np.array(parent, copy=True, order="K")
    x2 = view_of(parent2)
    touched = np.zeros(parent.shape, dtype=bool)
    view_of(touched)[...] = True
    parent_before = _snapshot(parent2)
    r = cdrop.dropout(x2, p, seed=SEED, inplace=True)
    assert r is x2
    assert_bits_equal(x2, expected, "in place")
    assert np.array_equal(bits(parent2)[~touched], bits(parent_before)[~touched]), \
        "in place wrote outside the view"


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_3d_view(dtype, kernel_path):
    rng = np.random.default_rng(5)
    parent = rng.standard_normal((40, 30, 50)).astype(dtype)
    touched = np.zeros(parent.shape, dtype=bool)

    def view_of(a):
        return a[1::2, ::-1, 3:47:3].transpose(1, 2, 0)

    view_of(touched)[...] = True
    for p in (0.25, 0.5):
        x = view_of(parent)
        assert not x.flags.c_contiguous and not x.flags.f_contiguous
        expected = reference.dropout_ref(x, p, 77, offset=5)
        assert_bits_equal(cdrop.dropout(x, p, seed=77, offset=5), expected, "out of place")
        out = np.zeros(x.shape, dtype=dtype, order="F")
        cdrop.dropout(x, p, seed=77, offset=5, out=out)
        assert_bits_equal(out, expected, "out=")
        parent2 = parent.copy()
        cdrop.dropout(view_of(parent2), p, seed=77, offset=5, inplace=True)
        assert_bits_equal(view_of(parent2), expected, "in place")
        assert np.array_equal(bits(parent2)[~touched], bits(parent)[~touched])


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_out_into_strided_target(dtype):
    # both the source and the target are strided, with different layouts
    rng = np.random.default_rng(9)
    x = rng.standard_normal((300, 700)).astype(dtype)[::3, ::-2]
    big = np.zeros((200, 900), dtype=dtype)
    out = big[::2, 5:355]
    assert out.shape == x.shape
    y = cdrop.dropout(x, 0.3, seed=3, offset=11, out=out)
    assert y is out
    assert_bits_equal(out, reference.dropout_ref(x, 0.3, 3, offset=11))
    # the rest of `big` is still zero
    rest = np.ones(big.shape, dtype=bool)
    rest[::2, 5:355] = False
    assert not big[rest].any()


# ---------------------------------------------------------------------------------------------
# p == 0, p == 1, training=False
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_p0_is_exact_copy_and_in_place_untouched(dtype):
    x = np.array([[1.5, -0.0, np.nan], [np.inf, -np.inf, 3e-39]], dtype=dtype).T  # non-contig
    before = _snapshot(x)
    y = cdrop.dropout(x, 0.0, seed=1)
    assert y is not x and not np.shares_memory(x, y)
    assert_bits_equal(y, before)
    r = cdrop.dropout(x, 0.0, seed=1, inplace=True)
    assert r is x
    assert_bits_equal(x, before)
    y[...] = 5  # the copy is independent of x
    assert_bits_equal(x, before)


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_p1_gives_positive_zeros_without_warnings(dtype, inplace):
    x = np.array([1.0, -1.0, np.nan, np.inf, -np.inf, -0.0, 1e30] * 5000, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            y = cdrop.dropout(x, 1.0, seed=1, inplace=inplace)
    assert (y is x) == inplace
    assert y.dtype == dtype and y.shape == x.shape
    assert not bits(y).any()  # +0.0 is all-zero bits: no -0.0, no NaN
    assert not np.signbit(y).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_p_close_to_one_no_warnings(dtype):
    # keep = 2**-53: threshold 0 (everything dropped), scale 2**53
    p = 1.0 - 2.0**-53
    x = np.ones(1000, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            y = cdrop.dropout(x, p, seed=1)
    assert_bits_equal(y, reference.dropout_ref(x, p, 1))
    assert not bits(y).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_false_returns_x_itself(dtype):
    x = np.arange(12, dtype=dtype).reshape(3, 4)[:, ::2]
    before = _snapshot(x)
    assert cdrop.dropout(x, 0.5, training=False) is x
    assert cdrop.dropout(x, 0.5, False, inplace=True) is x
    assert cdrop.dropout(x, 0.5, False, out=x) is x
    assert_bits_equal(x, before)
    out = np.full(x.shape, -1.0, dtype=dtype)
    r = cdrop.dropout(x, 0.5, training=False, out=out)
    assert r is out
    assert_bits_equal(out, before)
    assert_bits_equal(x, before)


def test_eval_mode_in_place_on_read_only_array_returns_it():
    x = np.ones(8, dtype=np.float32)
    x.flags.writeable = False
    assert cdrop.dropout(x, 0.5, training=False, inplace=True) is x
    assert cdrop.Dropout(0.5, inplace=True, seed=0).eval()(x) is x


def test_training_false_consumes_no_seed():
    x = np.ones(1000)
    cdrop.manual_seed(5)
    a = cdrop.dropout(x)
    cdrop.manual_seed(5)
    cdrop.dropout(x, training=False)
    b = cdrop.dropout(x)
    assert_bits_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Special values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.3, 0.5, 0.9])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_negative_zero(dtype, p, kernel_path):
    fi = np.finfo(dtype)
    pattern = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -2.5, fi.tiny / 4, fi.max,
                        -fi.max, -np.nan], dtype=dtype)
    n = 16384 + 1000
    x = np.resize(pattern, n)
    mask = reference.keep_mask(n, p, 99)
    for variant in ("out", "inplace", "strided"):
        if variant == "strided":
            parent = np.zeros(2 * n, dtype=dtype)
            parent[::2] = x
            src = parent[::2]
        else:
            src = x.copy()
        y = cdrop.dropout(src, p, seed=99, inplace=(variant == "inplace"))
        assert_bits_equal(y, reference.dropout_ref(x, p, 99), variant)
        dropped = y[~mask]
        assert not bits(dropped).any(), "a dropped element is not +0.0"
        kept_x, kept_y = x[mask], y[mask]
        assert np.array_equal(np.isnan(kept_y), np.isnan(kept_x))
        assert np.array_equal(np.isposinf(kept_y), np.isposinf(kept_x) | (kept_x == fi.max))
        assert np.array_equal(np.isneginf(kept_y), np.isneginf(kept_x) | (kept_x == -fi.max))
        negzero = (kept_x == 0) & np.signbit(kept_x)
        assert np.all(np.signbit(kept_y[negzero])), "a kept -0.0 lost its sign"


# ---------------------------------------------------------------------------------------------
# Inputs other than float ndarrays of native order
# ---------------------------------------------------------------------------------------------
def test_array_likes_out_of_place():
    lst = [[0.5, -1.0, 2.0], [3.0, 4.0, -5.0]]
    y = cdrop.dropout(lst, 0.5, seed=4)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == (2, 3)
    assert_bits_equal(y, reference.dropout_ref(np.asarray(lst), 0.5, 4))
    assert lst == [[0.5, -1.0, 2.0], [3.0, 4.0, -5.0]]
    y0 = cdrop.dropout(2.0, 0.5, seed=4)
    assert isinstance(y0, np.ndarray) and y0.shape == () and y0.dtype == np.float64
    assert_bits_equal(y0, reference.dropout_ref(np.asarray(2.0), 0.5, 4))
    t = cdrop.dropout((1.0, 2.0, 3.0, 4.0), 0.5, seed=4, offset=2)
    assert_bits_equal(t, reference.dropout_ref(np.array([1.0, 2.0, 3.0, 4.0]), 0.5, 4, 2))


@pytest.mark.parametrize("n", [1, 15, 16, 17, 40000])
@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_view(dtype, n, kernel_path):
    size = np.dtype(dtype).itemsize

    def misaligned():
        a = np.frombuffer(bytearray(size * n + 1), dtype=np.uint8)[1:].view(dtype)
        assert a.flags.writeable
        return a

    x = misaligned()
    x[...] = np.linspace(-3, 3, n, dtype=dtype)
    x_before = x.copy()
    expected = reference.dropout_ref(x_before, 0.5, 123, offset=3)
    y = cdrop.dropout(x, 0.5, seed=123, offset=3)
    assert_bits_equal(y, expected, "out of place")
    assert_bits_equal(x, x_before, "x changed")
    out = misaligned()
    assert cdrop.dropout(x, 0.5, seed=123, offset=3, out=out) is out
    assert_bits_equal(out, expected, "misaligned out=")
    r = cdrop.dropout(x, 0.5, seed=123, offset=3, inplace=True)
    assert r is x
    assert_bits_equal(x, expected, "in place")


def test_misaligned_is_really_misaligned():
    x = np.frombuffer(bytearray(4 * 100 + 1), dtype=np.uint8)[1:].view(np.float32)
    assert not x.flags.aligned  # otherwise test_misaligned_view tests nothing special


# ---------------------------------------------------------------------------------------------
# Scale, precision and dtype independence of the mask
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.2, 1 / 3, 0.5, 0.7, 0.99, 1e-9])
def test_scale_in_float32(p, kernel_path):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(50000) * 1000).astype(np.float32)
    y = cdrop.dropout(x, p, seed=8)
    kept = y != 0
    assert kept.any()
    scale32 = np.float32(1 / (1 - p))
    assert_bits_equal(y[kept], x[kept] * scale32, "kept value != x * float32(1/(1-p))")
    assert np.array_equal(kept, reference.keep_mask(50000, p, 8) & (x != 0))
    if p in (0.1, 1 / 3, 0.7):
        # the test can tell the float32 product from the float64 product rounded to float32
        wide = (x[kept].astype(np.float64) * (1 / (1 - p))).astype(np.float32)
        assert not np.array_equal(bits(wide), bits(x[kept] * scale32))


@pytest.mark.parametrize("p", [0.1, 1 / 3, 0.7])
def test_scale_in_float64(p):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(50000)
    y = cdrop.dropout(x, p, seed=8)
    kept = reference.keep_mask(50000, p, 8)
    assert_bits_equal(y[kept], x[kept] * (1.0 / (1.0 - p)))
    assert not bits(y[~kept]).any()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_float32_and_float64_same_mask(p):
    shape = (3, 40000)
    a = cdrop.dropout(np.ones(shape, np.float32), p, seed=31)
    b = cdrop.dropout(np.ones(shape, np.float64), p, seed=31)
    assert np.array_equal(a != 0, b != 0)
    assert 0 < np.count_nonzero(a) < a.size


# ---------------------------------------------------------------------------------------------
# dropout_mask
# ---------------------------------------------------------------------------------------------
MASK_SHAPES = [(), (0,), 1, 7, (16385,), (3, 50000), (2, 3, 4, 5), (5, 0, 3)]


@pytest.mark.parametrize("offset", [0, 5, 16383, 2**40 + 3])
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("shape", MASK_SHAPES, ids=str)
def test_dropout_mask_matches_oracle(shape, p, offset, kernel_path):
    m = cdrop.dropout_mask(shape, p, seed=SEED, offset=offset)
    expected = reference.keep_mask(shape, p, SEED, offset)
    assert m.dtype == np.bool_ and m.shape == expected.shape
    assert np.array_equal(m, expected)
    packed = cdrop.dropout_mask(shape, p, seed=SEED, offset=offset, packed=True)
    assert packed.dtype == np.uint8 and packed.ndim == 1
    assert packed.shape == ((expected.size + 7) // 8,)
    assert np.array_equal(packed, np.packbits(expected.ravel(), bitorder="little"))
    assert np.array_equal(packed, reference.packed_mask(shape, p, SEED, offset))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(), (1,), (13,), (16385,), (3, 50000), (2, 3, 4, 5)], ids=str)
def test_dropout_mask_is_the_applied_mask(shape, p):
    m = cdrop.dropout_mask(shape, p, seed=6, offset=9)
    for dtype in DTYPES:
        y = cdrop.dropout(np.ones(shape, dtype), p, seed=6, offset=9)
        assert np.array_equal(m, y != 0)


def test_dropout_mask_near_end_of_index_space():
    n = 40
    off = 2**64 - n
    assert np.array_equal(cdrop.dropout_mask(n, 0.5, seed=2, offset=off),
                          reference.keep_mask(n, 0.5, 2, off))
    x = np.arange(1, n + 1, dtype=np.float64)
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=2, offset=off),
                      reference.dropout_ref(x, 0.5, 2, off))


def test_dropout_mask_large_seed_and_generator():
    m = cdrop.dropout_mask(1000, 0.5, seed=2**64 - 1)
    assert np.array_equal(m, reference.keep_mask(1000, 0.5, 2**64 - 1))
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    s = int(g2.integers(0, 2**64, dtype=np.uint64))
    assert np.array_equal(cdrop.dropout_mask(1000, 0.5, seed=g1), reference.keep_mask(1000, 0.5, s))


def test_mask_shape_from_an_integer_array():
    m = cdrop.dropout_mask(np.array([2, 3]), 0.5, seed=4)
    assert m.shape == (2, 3)
    assert np.array_equal(m, cdrop.dropout_mask((2, 3), 0.5, seed=4))


def test_empty_arrays_all_modes():
    for dtype in DTYPES:
        for shape in [(0,), (3, 0), (0, 5, 2)]:
            x = np.empty(shape, dtype)
            y = cdrop.dropout(x, 0.5, seed=1)
            assert y.shape == shape and y.dtype == dtype and y is not x
            assert cdrop.dropout(x, 0.5, seed=1, inplace=True) is x
            out = np.empty(shape, dtype)
            assert cdrop.dropout(x, 0.5, seed=1, out=out) is out


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_d_in_place(dtype):
    for seed in range(20):
        x = np.array(3.0, dtype=dtype)
        r = cdrop.dropout(x, 0.5, seed=seed, inplace=True)
        assert r is x
        assert_bits_equal(x, reference.dropout_ref(np.array(3.0, dtype=dtype), 0.5, seed))


def test_many_dimensions_strided_threaded():
    # 20 axes, reversed and transposed: the strided walk carries through many axes, 2 threads
    x = np.arange(2**20, dtype=np.float32).reshape((2,) * 20)
    v = x.transpose(list(range(19, -1, -1)))[::-1, :, ::-1]
    for nt in (1, 2):
        assert_bits_equal(cdrop.dropout(v, 0.5, seed=3, offset=1, num_threads=nt),
                          reference.dropout_ref(v, 0.5, 3, offset=1))
    # length-1 axes between strided ones
    y = np.random.default_rng(0).standard_normal((3, 1, 5, 1, 7))[:, :, ::-2]
    assert_bits_equal(cdrop.dropout(y, 0.5, seed=3), reference.dropout_ref(y, 0.5, 3))


# ---------------------------------------------------------------------------------------------
# Property test: random shapes, slices and offsets against the oracle
# ---------------------------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _views(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 40)) for _ in range(ndim))
    dtype = draw(st.sampled_from(DTYPES))
    order = draw(st.sampled_from("CF"))
    base = np.arange(1, math_prod(shape) + 1, dtype=dtype).reshape(shape, order=order)
    index = []
    for n in shape:
        step = draw(st.sampled_from([1, 2, 3, -1, -2]))
        start = draw(st.integers(0, n - 1))
        index.append(slice(start, None, step))
    view = base[tuple(index)]
    if draw(st.booleans()):
        view = view.T
    return view


def math_prod(shape):
    out = 1
    for n in shape:
        out *= n
    return out


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(view=_views(), p=st.sampled_from([0.0, 0.05, 0.5, 0.77, 1.0]),
       seed=st.integers(0, 2**64 - 1), offset=st.integers(0, 2**40))
def test_property_random_views(view, p, seed, offset):
    expected = reference.dropout_ref(view, p, seed, offset)
    assert_bits_equal(cdrop.dropout(view, p, seed=seed, offset=offset), expected, "out of place")
    w = view.copy(order="K")
    cdrop.dropout(w, p, seed=seed, offset=offset, inplace=True)
    assert_bits_equal(w, expected, "in place")
    assert np.array_equal(cdrop.dropout_mask(view.shape, p, seed=seed, offset=offset),
                          reference.keep_mask(view.shape, p, seed, offset))


# ---------------------------------------------------------------------------------------------
# Public API shape (issue: "exact names: other code and users depend on them")
# ---------------------------------------------------------------------------------------------
def _check_signature(fn, expected):
    import inspect

    params = inspect.signature(fn).parameters
    for name, (kind, default) in expected.items():
        assert name in params, f"{fn.__name__} lacks parameter {name}"
        prm = params[name]
        assert prm.kind == kind, (name, prm.kind)
        assert prm.default is default or prm.default == default, (name, prm.default)
    # any extra parameter must be optional and keyword-only
    for name, prm in params.items():
        if name not in expected:
            assert prm.kind == prm.KEYWORD_ONLY and prm.default is not prm.empty, name


def test_public_signatures():
    import inspect

    P = inspect.Parameter
    empty = P.empty
    _check_signature(cdrop.dropout, {
        "x": (P.POSITIONAL_OR_KEYWORD, empty), "p": (P.POSITIONAL_OR_KEYWORD, 0.5),
        "training": (P.POSITIONAL_OR_KEYWORD, True), "inplace": (P.KEYWORD_ONLY, False),
        "out": (P.KEYWORD_ONLY, None), "seed": (P.KEYWORD_ONLY, None),
        "offset": (P.KEYWORD_ONLY, 0), "num_threads": (P.KEYWORD_ONLY, None)})
    _check_signature(cdrop.dropout_mask, {
        "shape": (P.POSITIONAL_OR_KEYWORD, empty), "p": (P.POSITIONAL_OR_KEYWORD, 0.5),
        "seed": (P.KEYWORD_ONLY, empty), "offset": (P.KEYWORD_ONLY, 0),
        "packed": (P.KEYWORD_ONLY, False)})
    _check_signature(cdrop.Dropout, {
        "p": (P.POSITIONAL_OR_KEYWORD, 0.5), "inplace": (P.KEYWORD_ONLY, False),
        "seed": (P.KEYWORD_ONLY, None)})
    for name in ("Dropout", "dropout", "dropout_mask", "manual_seed", "set_num_threads",
                 "get_num_threads", "show_config", "__version__"):
        assert hasattr(cdrop, name), name


def test_show_config():
    cfg = cdrop.show_config()
    for key in ("version", "openmp", "simd", "max_threads"):
        assert key in cfg, key
    assert cfg["version"] == cdrop.__version__
    assert isinstance(cfg["openmp"], bool)
    assert cfg["simd"] in ("avx512", "avx2", "portable", "scalar")
    assert isinstance(cfg["max_threads"], int) and cfg["max_threads"] >= 1
    from cdrop import _kernels

    try:
        assert _kernels.set_path("scalar") == "scalar"
        assert cdrop.show_config()["simd"] == "scalar" == _kernels.get_path()
        portable = _kernels.set_path("portable")  # "scalar" where the compiler had no vector ext.
        assert portable in ("portable", "scalar")
        assert cdrop.show_config()["simd"] == portable == _kernels.get_path()
    finally:
        _kernels.set_path("auto")
    assert cdrop.show_config()["simd"] == _kernels.get_path()


# ---------------------------------------------------------------------------------------------
# The kernel path chosen at import (CDROP_KERNEL), in a fresh interpreter
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["scalar", "portable", "auto"])
def test_cdrop_kernel_environment_variable(tmp_path, path):
    proc = run_python("""
        import cdrop
        print(cdrop.show_config()["simd"])
    """, tmp_path, env={"CDROP_KERNEL": path}, check=True)
    expected = cdrop._kernels.set_path(path)  # what this build runs for the name
    cdrop._kernels.set_path("auto")
    assert proc.stdout.strip() == expected


def test_bad_cdrop_kernel_warns_instead_of_breaking_import(tmp_path):
    proc = run_python("import cdrop; print(cdrop.show_config()['simd'])", tmp_path,
                      env={"CDROP_KERNEL": "bogus"})
    assert proc.returncode == 0, proc.stderr
    assert "CDROP_KERNEL ignored" in proc.stderr
    assert proc.stdout.strip() in ("avx512", "avx2", "portable", "scalar")
