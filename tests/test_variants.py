"""The dropout family (issue 11) against its oracles in tests/reference.py: every dtype, layout,
offset, thread count and kernel path, bit for bit; dropout_add against its definition.

Gaussian oracles need reference.normals (the normal stream's NumPy twin, written by
wip-normal): those tests skip while it is missing.
"""
import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal

ml_dtypes = pytest.importorskip("ml_dtypes")

DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]
DTYPE_IDS = ["float16", "bfloat16", "float32", "float64"]
OFFSETS = [0, 5, 16384 - 7]  # 16384: the mask stream's block
BIG = 70_000  # above the threading cut-off (65,536 elements)


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3).astype(dtype)


def layouts(dtype, shape=(6, 5, 7)):
    """name -> array of `dtype` with the values of _data(shape) in various layouts."""
    base = _data(shape, dtype)
    big = _data((2 * shape[0], shape[1], 3 * shape[2]), dtype, seed=1)
    neg = _data(shape, dtype, seed=2)[::-1, :, ::-1]
    return {
        "C": base,
        "F": np.asfortranarray(base),
        "T": _data(shape[::-1], dtype, seed=3).T,
        "strided": big[::2, :, ::3],
        "negative": neg,
        "empty": np.empty((0,) + shape[1:], dtype),
    }


def _paths():
    return ["scalar", "portable", "avx2", "avx512"]


@pytest.fixture(params=_paths())
def path(request):
    from cdrop import _kernels

    got = _kernels.set_path(request.param)
    if got != request.param:
        pytest.skip(f"kernel path {request.param} not available here")
    yield got
    _kernels.set_path("auto")


def _cases(dtype):
    for name, x in layouts(dtype).items():
        for offset in OFFSETS:
            yield name, x, offset


# ---------------------------------------------------------------------------------------------
# Oracle equality
# ---------------------------------------------------------------------------------------------
NOISE_SHAPES = [(None, None, 1), (1, None, 1), (None, 1, None), (1, 1, 1), (None, None, None)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_noise_shape_dropout_equals_the_issues_oracle(dtype, path):
    for name, x, offset in _cases(dtype):
        for ns in NOISE_SHAPES:
            for p in (0.0, 0.3, 1.0):
                got = cdrop.dropout(x, p, seed=11, offset=offset, noise_shape=ns)
                exp = reference.noise_dropout_ref(x, p, 11, offset, ns)
                assert_bits_equal(got, exp, f"{name} {ns} offset={offset} p={p}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_noise_shape_in_place_and_out(dtype):
    for name, x, offset in _cases(dtype):
        exp = reference.noise_dropout_ref(x, 0.4, 3, offset, (None, 1, None))
        y = x.copy(order="K")
        assert cdrop.dropout(y, 0.4, seed=3, offset=offset, noise_shape=(None, 1, None),
                             inplace=True) is y
        assert_bits_equal(y, exp, name)
        out = np.full(x.shape, 7, dtype)
        assert cdrop.dropout(x, 0.4, seed=3, offset=offset, noise_shape=[None, 1, None],
                             out=out) is out
        assert_bits_equal(out, exp, name)


def test_noise_shape_of_x_own_shape_is_element_wise():
    x = _data((5, 8), np.float32)
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=1, noise_shape=(5, 8)),
                      cdrop.dropout(x, 0.5, seed=1))
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=1, noise_shape=(None, None)),
                      cdrop.dropout(x, 0.5, seed=1))


def test_noise_shape_0d():
    x = np.array(2.0, np.float32)
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=1, noise_shape=()), cdrop.dropout(x, 0.5, seed=1))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("scale_by_keep", [True, False])
def test_drop_path_equals_oracle(dtype, scale_by_keep, path):
    for name, x, offset in _cases(dtype):
        for p in (0.0, 0.5, 1.0):
            got = cdrop.drop_path(x, p, seed=4, offset=offset, scale_by_keep=scale_by_keep)
            exp = reference.drop_path_ref(x, p, 4, offset, scale_by_keep)
            assert_bits_equal(got, exp, f"{name} offset={offset} p={p}")
    x1 = _data(9, dtype)  # 1-d: one decision per element
    assert_bits_equal(cdrop.drop_path(x1, 0.5, seed=2), reference.drop_path_ref(x1, 0.5, 2))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_alpha_dropout_equals_oracle(dtype, path):
    for name, x, offset in _cases(dtype):
        for p in (0.0, 0.2, 0.7, 1.0):
            got = cdrop.alpha_dropout(x, p, seed=9, offset=offset)
            assert_bits_equal(got, reference.alpha_ref(x, p, 9, offset),
                              f"{name} offset={offset} p={p}")
    x0 = np.array(1.5, dtype)
    assert_bits_equal(cdrop.alpha_dropout(x0, 0.5, seed=1), reference.alpha_ref(x0, 0.5, 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_dropout_add_is_residual_plus_dropout_of_x_plus_bias(dtype, with_bias, path):
    for name, x, offset in _cases(dtype):
        r = _data(x.shape, dtype, seed=5)
        b = _data(x.shape[-1], dtype, seed=6) if with_bias else None
        for p in (0.0, 0.4, 1.0):
            exp = reference.dropout_add_ref(x, r, p, 8, offset, b)
            got = cdrop.dropout_add(x, r, p, bias=b, seed=8, offset=offset)
            assert_bits_equal(got, exp, f"{name} offset={offset} p={p}")
            # the issue's equality, through cdrop itself
            t = x if b is None else x + b
            assert_bits_equal(got, r + cdrop.dropout(t, p, seed=8, offset=offset), name)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_dropout_add_into_residual_or_x(dtype):
    x, r, b = _data((7, 9), dtype), _data((7, 9), dtype, 1), _data(9, dtype, 2)
    exp = reference.dropout_add_ref(x, r, 0.3, 1, 0, b)
    r2 = r.copy()
    assert cdrop.dropout_add(x, r2, 0.3, bias=b, seed=1, out=r2) is r2
    assert_bits_equal(r2, exp)
    x2 = x.copy()
    assert cdrop.dropout_add(x2, r, 0.3, bias=b, seed=1, out=x2) is x2
    assert_bits_equal(x2, exp)
    r3 = np.asfortranarray(r)  # out=residual in another layout than x
    assert cdrop.dropout_add(x, r3, 0.3, bias=b, seed=1, out=r3) is r3
    assert_bits_equal(r3, exp)


def test_dropout_add_eval_is_the_plain_sum():
    x, r, b = _data((4, 3), np.float32), _data((4, 3), np.float32, 1), _data(3, np.float32, 2)
    cdrop.manual_seed(1)
    y = cdrop.dropout_add(x, r, 0.5, False, bias=b)
    assert_bits_equal(y, r + (x + b))
    # no seed consumed: the next call takes the stream's first seed, derive(1, 0)
    assert_bits_equal(cdrop.dropout(x, 0.5), cdrop.dropout(x, 0.5, seed=reference.derive(1, 0)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gaussian_equal_oracles(dtype, path):
    if not hasattr(reference, "normals"):
        pytest.skip("reference.normals (wip-normal) is not merged yet")
    for name, x, offset in _cases(dtype):
        assert_bits_equal(cdrop.gaussian_dropout(x, 0.3, seed=2, offset=offset),
                          reference.gaussian_dropout_ref(x, 0.3, 2, offset), name)
        assert_bits_equal(cdrop.gaussian_noise(x, 0.7, seed=2, offset=offset),
                          reference.gaussian_noise_ref(x, 0.7, 2, offset), name)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gaussian_layouts_and_offsets_agree(dtype):
    """Without the oracle: the noise is a function of (seed, C-order index + offset) only."""
    x = _data((6, 5, 7), dtype)
    for fn, arg in ((cdrop.gaussian_dropout, 0.3), (cdrop.gaussian_noise, 0.7)):
        ref = fn(x, arg, seed=2)
        for name, y in layouts(dtype).items():
            if y.size:
                y = np.array(y, order="C")
                y[...] = x
                y = {"F": np.asfortranarray(y), "T": np.ascontiguousarray(y.T).T}.get(name, y)
                assert_bits_equal(fn(y, arg, seed=2), ref, name)
        flat = x.ravel()
        tail = fn(flat[11:], arg, seed=2, offset=11)
        assert_bits_equal(tail, ref.ravel()[11:], "offset")
        assert_bits_equal(fn(x, 0.0, seed=2), x, "zero noise copies")


@pytest.mark.parametrize("fn", ["noise", "drop_path", "alpha", "add", "gmul", "gadd"])
def test_thread_count_never_changes_a_result(fn):
    x = _data((BIG // 100 + 1, 100), np.float32)
    r = _data(x.shape, np.float32, 1)
    calls = {
        "noise": lambda n: cdrop.dropout(x, 0.5, seed=1, noise_shape=(None, 1), num_threads=n),
        "drop_path": lambda n: cdrop.drop_path(x, 0.5, seed=1, num_threads=n),
        "alpha": lambda n: cdrop.alpha_dropout(x, 0.5, seed=1, num_threads=n),
        "add": lambda n: cdrop.dropout_add(x, r, 0.5, bias=r[0], seed=1, num_threads=n),
        "gmul": lambda n: cdrop.gaussian_dropout(x, 0.5, seed=1, num_threads=n),
        "gadd": lambda n: cdrop.gaussian_noise(x, 0.5, seed=1, num_threads=n),
    }
    assert_bits_equal(calls[fn](1), calls[fn](2))
    if fn == "alpha":
        assert_bits_equal(calls[fn](2), reference.alpha_ref(x, 0.5, 1))
    if fn == "add":
        assert_bits_equal(calls[fn](2), reference.dropout_add_ref(x, r, 0.5, 1, 0, r[0]))


def test_misaligned_operands_give_the_same_bits():
    def mis(a):
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:].view(a.dtype).reshape(a.shape)
        raw[...] = a
        return raw

    x, r, b = _data((5, 6), np.float32), _data((5, 6), np.float32, 1), _data(6, np.float32, 2)
    assert_bits_equal(cdrop.alpha_dropout(mis(x), 0.5, seed=3), reference.alpha_ref(x, 0.5, 3))
    assert_bits_equal(cdrop.dropout_add(mis(x), mis(r), 0.5, bias=mis(b), seed=3),
                      reference.dropout_add_ref(x, r, 0.5, 3, 0, b))
    out = mis(np.zeros_like(x))
    cdrop.dropout(x, 0.5, seed=3, noise_shape=(None, 1), out=out)
    assert_bits_equal(out, reference.noise_dropout_ref(x, 0.5, 3, 0, (None, 1)))
    y = mis(x)
    cdrop.dropout_add(y, r, 0.5, seed=3, out=y)
    assert_bits_equal(y, reference.dropout_add_ref(x, r, 0.5, 3))


# ---------------------------------------------------------------------------------------------
# PyTorch's shapes and formulas
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,shape", [(1, (2, 3, 5)), (1, (3, 5)), (2, (2, 3, 4, 5)),
                                     (2, (3, 4, 5)), (3, (2, 3, 2, 2, 3)), (3, (3, 2, 2, 3))])
def test_channel_dropout_one_decision_per_sample_and_channel(k, shape):
    layer = getattr(cdrop, f"Dropout{k}d")(0.5, seed=3)
    x = np.ones(shape, np.float32)
    y = layer(x)
    batched = len(shape) == k + 2
    ns = shape[:2] + (1,) * k if batched else shape[:1] + (1,) * k
    exp = cdrop.dropout(x, 0.5, seed=reference.derive(3, 0), noise_shape=ns)
    assert_bits_equal(y, exp)
    assert_bits_equal(y, reference.noise_dropout_ref(x, 0.5, reference.derive(3, 0), 0, ns))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_channel_dropout_refuses_other_ranks(k):
    layer = getattr(cdrop, f"Dropout{k}d")(0.5, seed=3)
    for nd in (k, k + 3):
        with pytest.raises(ValueError, match=f"Dropout{k}d expects x with"):
            layer(np.ones((2,) * nd))
    assert layer._calls == 0  # nothing consumed


def test_feature_alpha_dropout_shares_what_torch_shares():
    layer = cdrop.FeatureAlphaDropout(0.5, seed=1)
    for shape in [(3, 4), (2, 3, 4), (2, 3, 4, 5)]:
        x = _data(shape, np.float32)
        s = reference.derive(1, layer._calls)
        y = layer(x)
        ns = shape[:2] + (1,) * (len(shape) - 2)
        assert_bits_equal(y, reference.alpha_ref(x, 0.5, s, 0, ns), str(shape))
    with pytest.raises(ValueError, match="at least 2 axes"):
        layer(np.ones(3))
    assert_bits_equal(cdrop.FeatureAlphaDropout(1.0, seed=1)(np.ones((2, 3))),
                      np.zeros((2, 3)))


def test_alpha_dropout_matches_pytorch_for_the_same_mask():
    torch = pytest.importorskip("torch")
    p = 0.3
    x = _data((50, 40), np.float32)
    mask = cdrop.dropout_mask(x.shape, p, seed=5)
    # ATen's _dropout_impl (alpha): noise = mask; b = (noise - 1) * (alpha * a) + alpha * a * p
    alpha = 1.7580993408473766
    a = 1.0 / np.sqrt((alpha * alpha * p + 1) * (1 - p))
    noise = torch.from_numpy(mask.astype(np.float32))
    b = (noise - 1) * (alpha * a) + alpha * a * p
    expected = (torch.from_numpy(x) * (noise * a) + b).numpy()
    got = cdrop.alpha_dropout(x, p, seed=5)
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6)
    # torch's own values for zeros: {b, a * alpha_p + b} (the signs of the formula)
    torch.manual_seed(0)
    t = torch.nn.functional.alpha_dropout(torch.zeros(1000), p, True).unique().numpy()
    mine = np.unique(cdrop.alpha_dropout(np.zeros(1000, np.float32), p, seed=1))
    np.testing.assert_allclose(np.sort(t), mine, rtol=1e-6)
    # p == 1: zeros, as torch gives
    z = torch.nn.functional.alpha_dropout(torch.ones(4), 1.0, True).numpy()
    assert_bits_equal(cdrop.alpha_dropout(np.ones(4, np.float32), 1.0, seed=1), z)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_alpha_dropout_keeps_mean_0_and_variance_1(p):
    n = 1_000_000
    x = np.random.default_rng(1).standard_normal(n)
    y = cdrop.alpha_dropout(x, p, seed=2)
    mean, var = y.mean(), y.var()
    m4 = np.mean((y - mean) ** 4)
    # CLT: the mean has standard error 1/sqrt(n), the variance sqrt((m4 - var^2)/n); 6 sigma
    assert abs(mean) < 6 / np.sqrt(n)
    assert abs(var - 1) < 6 * np.sqrt((m4 - var**2) / n)


def test_drop_path_needs_an_axis():
    with pytest.raises(ValueError, match="at least one axis"):
        cdrop.drop_path(np.array(1.0), 0.5, seed=1)


# ---------------------------------------------------------------------------------------------
# Errors: type vs value, names, nothing written, no seed consumed
# ---------------------------------------------------------------------------------------------
X = np.ones((4, 3), np.float32)
R = np.zeros((4, 3), np.float32)

ERRORS = [
    (TypeError, "p must be a real number", lambda: cdrop.alpha_dropout(X, "0.5")),
    (ValueError, "p must be a probability", lambda: cdrop.drop_path(X, 1.5)),
    (TypeError, "training must be a bool", lambda: cdrop.gaussian_noise(X, 0.1, 1)),
    (TypeError, "scale_by_keep must be a bool", lambda: cdrop.drop_path(X, 0.1,
                                                                          scale_by_keep=1)),
    (ValueError, "p must be in \\[0, 1\\)", lambda: cdrop.gaussian_dropout(X, 1.0)),
    (TypeError, "stddev must be a real number", lambda: cdrop.gaussian_noise(X, None)),
    (ValueError, "stddev must be finite and >= 0", lambda: cdrop.gaussian_noise(X, -1.0)),
    (ValueError, "stddev must be finite and >= 0", lambda: cdrop.gaussian_noise(X, np.nan)),
    (TypeError, "noise_shape must be a tuple", lambda: cdrop.dropout(X, noise_shape=4)),
    (TypeError, "noise_shape must be a tuple", lambda: cdrop.dropout(X, noise_shape=(4, 1.5))),
    (ValueError, "one entry per axis", lambda: cdrop.dropout(X, noise_shape=(4,))),
    (ValueError, "does not fit x's shape", lambda: cdrop.dropout(X, noise_shape=(2, 3))),
    (ValueError, "offset \\+ size", lambda: cdrop.dropout(X, noise_shape=(4, 1),
                                                           offset=2**64 - 3)),
    (TypeError, "x has unsupported dtype", lambda: cdrop.alpha_dropout(X.astype(int))),
    (ValueError, "x is read-only", lambda: cdrop.drop_path(np.broadcast_to(X, X.shape), 0.5,
                                                           inplace=True)),
    (TypeError, "out has dtype", lambda: cdrop.gaussian_noise(X, 0.1, out=R.astype(float))),
    (ValueError, "overlaps x only in part", lambda: (lambda b: cdrop.alpha_dropout(
        b[:6], out=b[2:]))(np.ones(8, np.float32))),
    (TypeError, "residual has dtype", lambda: cdrop.dropout_add(X, R.astype(float))),
    (ValueError, "residual has shape", lambda: cdrop.dropout_add(X, R[:2])),
    (TypeError, "bias has dtype", lambda: cdrop.dropout_add(X, R, bias=np.ones(3))),
    (ValueError, "bias of shape", lambda: cdrop.dropout_add(X, R, bias=np.ones(4, np.float32))),
    (TypeError, "residual must be an array", lambda: cdrop.dropout_add(X, None)),
    (ValueError, "out overlaps residual", lambda: (lambda b: cdrop.dropout_add(
        X, b[:12].reshape(4, 3), out=b[2:].reshape(4, 3)))(np.zeros(14, np.float32))),
    (ValueError, "seed must be in", lambda: cdrop.dropout_add(X, R, seed=-1)),
    (ValueError, "num_threads must be >= 1", lambda: cdrop.gaussian_dropout(X,
                                                                            num_threads=0)),
    (TypeError, "p must be a real number", lambda: cdrop.Dropout2d("x")),
    (ValueError, "p must be in \\[0, 1\\)", lambda: cdrop.GaussianDropout(1.0)),
    (ValueError, "stddev must be finite", lambda: cdrop.GaussianNoise(-2)),
    (TypeError, "inplace must be a bool", lambda: cdrop.AlphaDropout(0.5, inplace=1)),
]


@pytest.mark.parametrize("err,match,call", ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_name_the_argument_and_consume_no_seed(err, match, call):
    cdrop.manual_seed(5)
    expected_next = cdrop.dropout_mask(64, 0.5, seed=None)
    cdrop.manual_seed(5)
    before_x, before_r = X.copy(), R.copy()
    with pytest.raises(err, match=match):
        call()
    assert_bits_equal(X, before_x)
    assert_bits_equal(R, before_r)
    assert np.array_equal(cdrop.dropout_mask(64, 0.5, seed=None), expected_next)


def test_out_overlapping_residual_writes_nothing():
    buf = np.arange(14, dtype=np.float32)
    before = buf.copy()
    with pytest.raises(ValueError, match="out overlaps residual"):
        cdrop.dropout_add(X, buf[:12].reshape(4, 3), out=buf[2:].reshape(4, 3), seed=1)
    assert_bits_equal(buf, before)


def test_a_generator_seed_is_not_asked_on_failure():
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    with pytest.raises(ValueError):
        cdrop.dropout_add(X, R[:2], seed=g)
    with pytest.raises(ValueError):
        cdrop.dropout(X, 0.5, seed=g, noise_shape=(3, 3))
    assert g.bit_generator.state == state


def test_subclasses_and_masked_arrays_come_back_as_their_type():
    m = np.ma.masked_array(np.ones(6, np.float32), mask=[0, 1, 0, 0, 0, 1])
    for fn in (lambda a: cdrop.alpha_dropout(a, 0.5, seed=1),
               lambda a: cdrop.drop_path(a, 0.5, seed=1),
               lambda a: cdrop.gaussian_noise(a, 0.5, seed=1),
               lambda a: cdrop.dropout_add(a, np.zeros(6, np.float32), 0.5, seed=1)):
        y = fn(m)
        assert isinstance(y, np.ma.MaskedArray)
        assert (np.ma.getmask(y) == np.ma.getmask(m)).all()


def test_zero_d_inputs():
    x, r = np.array(1.5, np.float32), np.array(2.0, np.float32)
    s = 3
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=s, noise_shape=()),
                      reference.noise_dropout_ref(x, 0.5, s))
    assert_bits_equal(cdrop.alpha_dropout(x, 0.5, seed=s), reference.alpha_ref(x, 0.5, s))
    assert_bits_equal(cdrop.dropout_add(x, r, 0.5, seed=s, bias=np.float32(1)),
                      reference.dropout_add_ref(x, r, 0.5, s, 0, np.float32(1)))
    for fn in (cdrop.gaussian_dropout, cdrop.gaussian_noise):
        y = fn(x, 0.5, seed=s)
        assert y.shape == () and y.dtype == x.dtype
        assert_bits_equal(y, fn(np.array([1.5], np.float32), 0.5, seed=s)[0])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_gaussian_dropout_noise_has_mean_1_and_variance_p_over_1_minus_p(p):
    n = 1_000_000
    noise = cdrop.gaussian_dropout(np.ones(n), p, seed=3)
    var = p / (1 - p)
    # CLT: standard errors sqrt(var/n) for the mean and sqrt(2/n)*var for the variance
    # (normal noise); 6 sigma
    assert abs(noise.mean() - 1) < 6 * np.sqrt(var / n)
    assert abs(noise.var() - var) < 6 * np.sqrt(2 / n) * var


@pytest.mark.parametrize("stddev", [0.01, 1.0, 30.0])
def test_gaussian_noise_has_mean_0_and_the_given_stddev(stddev):
    n = 1_000_000
    noise = cdrop.gaussian_noise(np.zeros(n, np.float32), stddev, seed=4).astype(np.float64)
    assert abs(noise.mean()) < 6 * stddev / np.sqrt(n)
    assert abs(noise.var() - stddev**2) < 6 * np.sqrt(2 / n) * stddev**2
