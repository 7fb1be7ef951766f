"""The common call (a float32/float64 ndarray, a float p in (0, 1), an int or None seed, the
other arguments at their defaults) takes a short path (the first block of
cdrop._dropout.dropout) that must give exactly what the general path gives: the same bits,
the same errors, the same seeds drawn, for ``dropout`` and for ``Dropout.forward``.  No timings
here (bench/ measures the speed)."""
import numpy as np
import pytest

import cdrop
from cdrop import _dropout
from helpers import assert_bits_equal


def _general(x, p, *, inplace=False, seed=None):
    # the general path, reached with an argument the common call does not take (an offset
    # that is zero but not the default int object)
    return cdrop.dropout(x, p, inplace=inplace, seed=seed, offset=np.int64(0))


def _layouts(dtype):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((33, 65)).astype(dtype)
    raw = np.zeros(4 * 200 + 1, np.uint8)[1:].view(dtype)  # misaligned (a view into bytes)
    raw[...] = rng.standard_normal(raw.size)
    return {
        "C": a, "F": np.asfortranarray(a), "strided": a[::2, ::3], "T": a.T,
        "0-d": np.array(1.5, dtype), "empty": np.empty((0, 4), dtype),
        "big": rng.standard_normal(70_000).astype(dtype),  # above the threading cut-off
        "misaligned": raw,
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_common_call_equals_the_general_path(dtype, p):
    for name, x in _layouts(dtype).items():
        expected = _general(x.copy(order="K"), p, seed=42)
        got = cdrop.dropout(x, p, seed=42)
        assert_bits_equal(got, expected, name)
        assert got.strides == np.empty_like(x).strides, name  # the layout of x
        y = x.copy(order="K")
        if not y.flags.aligned:
            y = x  # copy() aligns; keep the misaligned view itself
            y[...] = x.copy()
        before = y.copy()
        assert cdrop.dropout(y, p, seed=42, inplace=True) is y
        assert_bits_equal(y, _general(before, p, seed=42), f"{name} in place")


def test_common_call_draws_the_same_seeds_as_the_general_path():
    x = np.ones(1000, np.float32)
    cdrop.manual_seed(3)
    fast = [cdrop.dropout(x, 0.5) for _ in range(3)]
    cdrop.manual_seed(3)
    slow = [_general(x, 0.5) for _ in range(3)]
    for a, b in zip(fast, slow):
        assert_bits_equal(a, b)


@pytest.mark.parametrize("view", ["strided", "T strided"])
def test_in_place_on_views_the_common_call_leaves_to_the_general_path(view):
    base = np.arange(1, 65, dtype=np.float32).reshape(8, 8)
    x = base[::2] if view == "strided" else base.T[::2]
    expected = cdrop.dropout(x.copy(), 0.5, seed=1)
    assert cdrop.dropout(x, 0.5, seed=1, inplace=True) is x
    assert_bits_equal(x, expected)


def test_in_place_on_a_zero_stride_keeps_its_message():
    x = np.lib.stride_tricks.as_strided(np.ones(10), (10,), (0,), writeable=True)
    with pytest.raises(ValueError, match="x has overlapping elements"):
        cdrop.dropout(x, 0.5, seed=1, inplace=True)


def test_read_only_in_place_keeps_its_message():
    x = np.ones(100, np.float32)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="x is read-only"):
        cdrop.dropout(x, 0.5, seed=1, inplace=True)
    with pytest.raises(ValueError, match="x is read-only"):
        cdrop.dropout(x, 0.5, inplace=True)  # seed=None: and no seed drawn
    layer = cdrop.Dropout(0.5, inplace=True, seed=1)
    with pytest.raises(ValueError, match="x is read-only"):
        layer(x)


def test_common_calls_do_not_take_the_general_path(monkeypatch):
    def general(*args):
        raise AssertionError("the common call went through the general path")

    # the general path starts by checking p: a call that reaches check_p took it
    monkeypatch.setattr(_dropout, "check_p", general)
    x = np.ones(1000, np.float32)
    cdrop.dropout(x, 0.5)
    cdrop.dropout(x, 0.5, seed=7)
    cdrop.dropout(x, 0.5, inplace=True, seed=7)
    cdrop.dropout(x.astype(np.float64), 0.25, True, seed=None)
    layer = cdrop.Dropout(0.5, seed=1)
    layer(x)
    layer.forward(x)
    cdrop.Dropout(0.5, inplace=True, seed=1)(x)
    with pytest.raises(AssertionError, match="general path"):
        cdrop.dropout(x, 0.5, seed=7, num_threads=1)  # not a common call


class Sub(np.ndarray):
    pass


@pytest.mark.parametrize("inplace", [False, True])
def test_layer_common_call_equals_the_general_path(inplace):
    x = np.random.default_rng(1).standard_normal((64, 33)).astype(np.float32)
    a, b = cdrop.Dropout(0.5, seed=9, inplace=inplace), cdrop.Dropout(0.5, seed=9, inplace=inplace)
    for call in range(3):
        xa, xb = x.copy(), x.copy().view(Sub)  # a subclass takes the general path
        ya, yb = a(xa), b(xb)
        assert type(yb) is Sub
        assert_bits_equal(ya, yb.view(np.ndarray), f"call {call}")
        assert (ya is xa) == inplace
        assert_bits_equal(a.backward(x), b.backward(x), f"backward after call {call}")


def test_subclass_forward_is_still_called():
    calls = []

    class Logged(cdrop.Dropout):
        def forward(self, x):
            calls.append(x.shape)
            return super().forward(x)

    class Deeper(Logged):
        pass

    for cls in (Logged, Deeper):
        cls(0.5, seed=1)(np.ones(8))
    assert calls == [(8,), (8,)]


# --- the dropout family's element-wise functions have the same kind of short path ------------
def _family_calls(x, r, b):
    """(name, common call, general call) pairs: the general path is reached with an offset that
    is zero but not the default int object."""
    z = np.int64(0)
    return [
        ("alpha", lambda s: cdrop.alpha_dropout(x, 0.3, seed=s),
         lambda s: cdrop.alpha_dropout(x, 0.3, seed=s, offset=z)),
        ("gaussian_dropout", lambda s: cdrop.gaussian_dropout(x, 0.3, seed=s),
         lambda s: cdrop.gaussian_dropout(x, 0.3, seed=s, offset=z)),
        ("gaussian_noise", lambda s: cdrop.gaussian_noise(x, 0.7, seed=s),
         lambda s: cdrop.gaussian_noise(x, 0.7, seed=s, offset=z)),
        ("dropout_add", lambda s: cdrop.dropout_add(x, r, 0.3, seed=s),
         lambda s: cdrop.dropout_add(x, r, 0.3, seed=s, offset=z)),
        ("dropout_add bias", lambda s: cdrop.dropout_add(x, r, 0.3, bias=b, seed=s),
         lambda s: cdrop.dropout_add(x, r, 0.3, bias=b, seed=s, offset=z)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_family_common_calls_equal_the_general_path(dtype):
    for name, x in _layouts(dtype).items():
        rng = np.random.default_rng(1)
        r = rng.standard_normal(x.shape).astype(dtype)
        b = rng.standard_normal(x.shape[-1:]).astype(dtype) if x.ndim else None
        for what, fast, general in _family_calls(x, r, b):
            if b is None and "bias" in what:
                continue
            got, want = fast(42), general(42)
            assert_bits_equal(got, want, f"{what} {name}")
            assert got.strides == np.empty_like(x).strides, f"{what} {name}"
            cdrop.manual_seed(5)
            got = [fast(None) for _ in range(2)]
            cdrop.manual_seed(5)
            want = [general(None) for _ in range(2)]
            for a, w in zip(got, want):  # the same seeds drawn, one per call
                assert_bits_equal(a, w, f"{what} {name} seed=None")


def test_family_common_calls_refuse_what_the_general_path_refuses():
    x = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="residual"):
        cdrop.dropout_add(x, np.ones(9, np.float32), 0.3, seed=1)
    with pytest.raises(ValueError, match="bias"):
        cdrop.dropout_add(x, x, 0.3, bias=np.ones(3, np.float32), seed=1)
    with pytest.raises(TypeError):
        cdrop.dropout_add(x, np.ones(8, np.float64), 0.3, seed=1)
    with pytest.raises(ValueError, match="seed"):
        cdrop.alpha_dropout(x, 0.3, seed=2**64)
    with pytest.raises(ValueError, match="stddev"):
        cdrop.gaussian_noise(x, -1.0, seed=1)
