"""Bad input: a clear error naming the culprit, and nothing written to x or out."""
import math
from fractions import Fraction

import numpy as np
import pytest

import cdrop
from helpers import assert_bits_equal, mode_kwargs

N = 200_003  # large enough that a (wrong) write would go through the threaded kernels


def _x(dtype=np.float64, n=N):
    return np.random.default_rng(0).standard_normal(n).astype(dtype)


class Unchanged:
    """Snapshot arrays; `check()` asserts that none of their bytes changed."""

    def __init__(self, *arrays):
        self.arrays = [a for a in arrays if isinstance(a, np.ndarray)]
        self.copies = [np.array(a, copy=True, order="K") for a in self.arrays]

    def check(self):
        for a, c in zip(self.arrays, self.copies):
            if a.dtype == object:
                same = all(u is v for u, v in zip(a.ravel(), c.ravel()))
            else:
                same = a.tobytes() == c.tobytes()  # byte for byte, in logical order
            assert same, "a failing call modified its input or output"


def _raises_nothing_written(exc, match, x, *, out=None, **kwargs):
    guard = Unchanged(x, out)
    if out is not None:
        kwargs["out"] = out
    with pytest.raises(exc, match=match):
        cdrop.dropout(x, **kwargs)
    guard.check()


def _stable_id(value):
    """repr(value) as a test id, or the type's name where the repr shows an address (the same
    node id in every run, for -k, --lf and comparing runs)."""
    r = repr(value)
    return type(value).__name__ if " at 0x" in r else r


# The calls that draw a mask (training=False is checked on its own, below).
MODES = ["out_of_place", "inplace", "out"]


# ---------------------------------------------------------------------------------------------
# p
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("p", ["0.5", None, 0.5 + 0j, 1j, True, False, np.bool_(True), [0.5],
                               b"0.5"], ids=repr)
def test_p_wrong_type(p, mode):
    x = _x()
    _raises_nothing_written(TypeError, r"\bp\b", x, p=p, seed=1, **mode_kwargs(mode, x))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("p", [math.nan, math.inf, -math.inf, -0.1, 1.5, 1.0000001, -1e-300,
                               np.float32("nan"), np.float64(2.0), 2, -1, Fraction(3, 2)],
                         ids=repr)
def test_p_bad_value(p, mode):
    x = _x()
    # the message names p and its value
    value = repr(float(p)) if not math.isnan(float(p)) else "nan"
    _raises_nothing_written(ValueError, rf"\bp\b.*{value.replace('.', '[.]')}", x, p=p, seed=1,
                            **mode_kwargs(mode, x))


def test_p_huge_int_is_a_value_error():
    # 10**400 is a real number outside [0, 1]: ValueError, not an OverflowError from float()
    x = _x()
    _raises_nothing_written(ValueError, r"\bp\b", x, p=10**400, seed=1)
    _raises_nothing_written(ValueError, r"\bp\b", x, p=-(10**400), seed=1, inplace=True)


def test_p_accepts_real_numbers():
    x = _x(n=1000)
    ref = cdrop.dropout(x, 0.25, seed=1)
    for p in (np.float32(0.25), np.float64(0.25), Fraction(1, 4)):
        assert_bits_equal(cdrop.dropout(x, p, seed=1), ref)
    assert_bits_equal(cdrop.dropout(x, 0, seed=1), x)
    assert not cdrop.dropout(x, 1, seed=1).any()
    assert_bits_equal(cdrop.dropout(x, -0.0, seed=1), x)


# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------
BAD_DTYPES = ["int32", "int64", "bool", "complex64", "complex128", "object", "int16",
              "uint8", "longdouble"]


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_unsupported_dtype(dtype, inplace):
    if np.dtype(dtype) in (np.dtype(np.float64),):  # longdouble is float64 on some platforms
        pytest.skip("longdouble is float64 here")
    x = np.ones(1000, dtype=dtype)
    name = np.dtype(dtype).name
    _raises_nothing_written(TypeError, rf"(?s){name}.*float32.*float64|{name}.*float64.*float32",
                            x, p=0.5, seed=1, inplace=inplace)


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", [">f4", ">f8"])
def test_non_native_byte_order(dtype, inplace):
    if np.dtype(dtype).isnative:
        pytest.skip("big-endian host")
    x = np.ones(1000, dtype=dtype)
    _raises_nothing_written(TypeError, r"byte order|" + dtype, x, p=0.5, seed=1, inplace=inplace)


def test_array_like_of_ints_is_a_dtype_error():
    with pytest.raises(TypeError, match="int"):
        cdrop.dropout([1, 2, 3], 0.5, seed=1)


# ---------------------------------------------------------------------------------------------
# In place
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_inplace_read_only(p):
    x = _x()
    x.setflags(write=False)
    _raises_nothing_written(ValueError, "read-only", x, p=p, seed=1, inplace=True)
    # out=x is in place too
    _raises_nothing_written(ValueError, "read-only", x, p=p, seed=1, out=x)


def test_inplace_broadcast_to():
    base = np.ones(100)
    x = np.broadcast_to(base, (1000, 100))
    _raises_nothing_written(ValueError, "read-only|overlap", x, p=0.5, seed=1, inplace=True)
    assert (base == 1).all()
    # out of place is fine and follows the logical shape
    y = cdrop.dropout(x, 0.5, seed=1)
    assert y.shape == (1000, 100)
    assert_bits_equal(y, cdrop.dropout(np.ascontiguousarray(x), 0.5, seed=1))


def test_inplace_on_list_or_scalar():
    lst = [1.0, 2.0, 3.0]
    with pytest.raises(TypeError, match="ndarray"):
        cdrop.dropout(lst, 0.5, seed=1, inplace=True)
    assert lst == [1.0, 2.0, 3.0]
    with pytest.raises(TypeError, match="ndarray"):
        cdrop.dropout(2.0, 0.5, seed=1, inplace=True)


def test_inplace_with_another_out():
    x = _x()
    out = np.zeros_like(x)
    _raises_nothing_written(ValueError, "inplace", x, p=0.5, seed=1, inplace=True, out=out)
    guard = Unchanged(out)
    guard.check()


def test_inplace_with_out_over_the_same_elements():
    x = np.arange(1, 65, dtype=np.float64)
    expected = cdrop.dropout(x, 0.5, seed=3)
    cdrop.dropout(x, 0.5, seed=3, inplace=True, out=x[:])
    assert np.array_equal(x, expected)


# ---------------------------------------------------------------------------------------------
# out
# ---------------------------------------------------------------------------------------------
def test_out_wrong_shape():
    x = _x()
    for out in (np.zeros(N + 1), np.zeros((1, N)), np.zeros(())):
        _raises_nothing_written(ValueError, "shape", x, out=out, p=0.5, seed=1)


def test_out_wrong_dtype():
    x = _x(np.float32)
    for dtype in (np.float64, np.int32, ">f4"):
        _raises_nothing_written(TypeError, "dtype", x, out=np.zeros(N, dtype), p=0.5, seed=1)


def test_out_read_only():
    x = _x()
    out = np.zeros(N)
    out.setflags(write=False)
    _raises_nothing_written(ValueError, "read-only", x, out=out, p=0.5, seed=1)


def test_out_not_an_ndarray():
    x = _x(n=10)
    for out in ([0.0] * 10, memoryview(bytearray(80)), 3.0):
        _raises_nothing_written(TypeError, "out.*ndarray|ndarray.*out", x, out=out, p=0.5, seed=1)


@pytest.mark.parametrize("shift", [1, -1, 5000])
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_out_partially_overlapping_x(shift, p):
    n = N
    buf = np.random.default_rng(1).standard_normal(n + abs(shift))
    x = buf[max(0, -shift):max(0, -shift) + n]
    out = buf[max(0, shift):max(0, shift) + n]
    assert np.shares_memory(x, out) and x.shape == out.shape
    guard = Unchanged(buf)
    try:
        r = cdrop.dropout(x, p, seed=1, out=out)
    except ValueError as exc:
        assert "overlap" in str(exc)
        guard.check()
    else:  # the spec also allows a correct result
        expected = cdrop.dropout(guard.copies[0][max(0, -shift):max(0, -shift) + n], p, seed=1)
        assert r is out
        assert_bits_equal(out, expected)


def test_out_reversed_view_of_x():
    x = _x(n=1000)
    guard = Unchanged(x)
    try:
        cdrop.dropout(x, 0.5, seed=1, out=x[::-1])
    except ValueError as exc:
        assert "overlap" in str(exc)
        guard.check()
    else:
        expected = cdrop.dropout(guard.copies[0], 0.5, seed=1)
        assert_bits_equal(x[::-1], expected)


def test_out_is_x_means_in_place():
    x = _x()
    expected = cdrop.dropout(x, 0.5, seed=1)
    r = cdrop.dropout(x, 0.5, seed=1, out=x)
    assert r is x
    assert_bits_equal(x, expected)
    # the same view through another object is in place as well
    y = _x()
    r = cdrop.dropout(y, 0.5, seed=1, out=y[:])
    assert_bits_equal(y, expected)
    # inplace=True together with out=x is allowed
    z = _x()
    assert cdrop.dropout(z, 0.5, seed=1, inplace=True, out=z) is z
    assert_bits_equal(z, expected)


def test_out_over_the_same_elements_through_another_object_is_returned():
    x = np.arange(1, 4097, dtype=np.float32)
    expected = cdrop.dropout(x, 0.5, seed=1)
    view = x[:]
    got = cdrop.dropout(x, 0.5, seed=1, out=view)
    assert got is view
    assert np.array_equal(x, expected)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_read_only_x_with_writeable_out_over_its_elements(p):
    base = np.arange(1, 4097, dtype=np.float32)
    expected = cdrop.dropout(base, p, seed=2)
    x = base.view()
    x.flags.writeable = False
    got = cdrop.dropout(x, p, seed=2, out=base)
    assert got is base
    assert np.array_equal(base, expected)


def test_zero_stride_targets():
    from numpy.lib.stride_tricks import as_strided

    x = _x(n=10)
    buf = np.zeros(10)
    out = as_strided(buf, shape=(10,), strides=(0,))  # writeable, ten elements in one place
    guard = Unchanged(buf)
    with pytest.raises(ValueError, match="out"):
        cdrop.dropout(x, 0.5, seed=1, out=out)
    guard.check()
    base = np.ones(10)
    xs = as_strided(base, shape=(10,), strides=(0,))
    guard = Unchanged(base)
    with pytest.raises(ValueError, match="x"):
        cdrop.dropout(xs, 0.5, seed=1, inplace=True)
    guard.check()


def test_out_interleaved_but_disjoint_is_fine():
    buf = np.random.default_rng(3).standard_normal(2 * N)
    x, out = buf[0::2], buf[1::2]
    expected = cdrop.dropout(x.copy(), 0.5, seed=1)
    x_before = x.copy()
    assert cdrop.dropout(x, 0.5, seed=1, out=out) is out
    assert_bits_equal(out, expected)
    assert_bits_equal(x, x_before)


# ---------------------------------------------------------------------------------------------
# seed, num_threads, offset
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed,exc", [(-1, ValueError), (2**64, ValueError), (-(2**70), ValueError),
                                      (1.5, TypeError), ("a", TypeError), (1.0, TypeError),
                                      (True, TypeError), ([1], TypeError), (object(), TypeError),
                                      (np.random.RandomState(0), TypeError)], ids=_stable_id)
def test_bad_seed(seed, exc, mode):
    x = _x()
    _raises_nothing_written(exc, "seed", x, p=0.5, seed=seed, **mode_kwargs(mode, x))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nt,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                    ("2", TypeError), (True, TypeError)], ids=repr)
def test_bad_num_threads(nt, exc, mode):
    x = _x()
    _raises_nothing_written(exc, "num_threads", x, p=0.5, seed=1, num_threads=nt,
                            **mode_kwargs(mode, x))


@pytest.mark.parametrize("nt", [2**31, 2**40])
def test_huge_num_threads_is_clamped_or_rejected_cleanly(nt):
    # More threads than a C int can count: either the call works (and gives the usual result,
    # as for any thread count) or it is refused with a ValueError naming num_threads.
    x = _x()
    guard = Unchanged(x)
    try:
        y = cdrop.dropout(x, 0.5, seed=1, num_threads=nt)
    except ValueError as exc:
        assert "num_threads" in str(exc)
        guard.check()
    else:
        assert_bits_equal(y, cdrop.dropout(x, 0.5, seed=1, num_threads=1))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("offset,exc", [(-1, ValueError), (-(2**64), ValueError),
                                        (1.5, TypeError), ("0", TypeError), (None, TypeError)],
                         ids=repr)
def test_bad_offset(offset, exc, mode):
    x = _x()
    _raises_nothing_written(exc, "offset", x, p=0.5, seed=1, offset=offset,
                            **mode_kwargs(mode, x))


@pytest.mark.parametrize("mode", MODES)
def test_offset_past_end_of_index_space(mode):
    x = _x(n=10)
    _raises_nothing_written(ValueError, "offset", x, p=0.5, seed=1, offset=2**64 - 5,
                            **mode_kwargs(mode, x))
    _raises_nothing_written(ValueError, "offset", x, p=0.5, seed=1, offset=2**64,
                            **mode_kwargs(mode, x))
    with pytest.raises(ValueError, match="offset"):
        cdrop.dropout_mask(10, 0.5, seed=1, offset=2**64 - 5)


def test_offset_at_end_of_index_space_is_valid():
    x = _x(n=10)
    y = cdrop.dropout(x, 0.5, seed=1, offset=2**64 - 10)
    assert y.shape == (10,)
    assert cdrop.dropout_mask(10, 0.5, seed=1, offset=2**64 - 10).shape == (10,)


def test_offset_2_64_on_empty_array_is_valid():
    # docs/rng.md section 3: 0 <= offset and offset + n <= 2**64, so offset = 2**64 is a valid
    # offset for n = 0 elements.
    for mode in MODES:
        x = np.empty(0)
        y = cdrop.dropout(x, 0.5, seed=1, offset=2**64, **mode_kwargs(mode, x))
        assert y.shape == (0,)
    m = cdrop.dropout_mask(0, 0.5, seed=1, offset=2**64)
    assert m.shape == (0,)
    assert cdrop.dropout_mask((0, 3), 0.5, seed=1, offset=2**64, packed=True).shape == (0,)


def test_errors_in_training_false_mode_still_validate_out():
    x = _x()
    _raises_nothing_written(ValueError, "shape", x, out=np.zeros(N + 1), p=0.5, training=False)
    _raises_nothing_written(TypeError, r"\bp\b", x, p="a", training=False)


@pytest.mark.parametrize("seed,exc", [("junk", TypeError), (-5, ValueError), (2**64, ValueError)])
def test_eval_mode_still_validates_the_seed(seed, exc):
    with pytest.raises(exc, match="seed"):
        cdrop.dropout(np.ones(4), 0.5, training=False, seed=seed)


# ---------------------------------------------------------------------------------------------
# dropout_mask
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,exc", [(-1, ValueError), ((3, -1), ValueError), ("a", TypeError),
                                       ((2.0, 3), TypeError), (None, TypeError),
                                       (1.5, TypeError)], ids=repr)
def test_dropout_mask_bad_shape(shape, exc):
    with pytest.raises(exc, match="shape"):
        cdrop.dropout_mask(shape, 0.5, seed=1)


def test_dropout_mask_needs_seed_keyword():
    with pytest.raises(TypeError, match="seed"):
        cdrop.dropout_mask(10, 0.5)
    with pytest.raises(TypeError):
        cdrop.dropout_mask(10, 0.5, 1)  # seed is keyword-only


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"p": 1.5}, ValueError, r"\bp\b"),
    ({"p": "x"}, TypeError, r"\bp\b"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 0.5}, TypeError, "seed"),
    ({"offset": -1}, ValueError, "offset"),
    ({"num_threads": 0}, ValueError, "num_threads"),
], ids=str)
def test_dropout_mask_bad_arguments(kwargs, exc, match):
    args = {"p": 0.5, "seed": 1}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        cdrop.dropout_mask(100, **args)


# ---------------------------------------------------------------------------------------------
# Package-level settings
# ---------------------------------------------------------------------------------------------
def test_set_num_threads_bad():
    before = cdrop.get_num_threads()
    with pytest.raises(ValueError, match=">= 1"):
        cdrop.set_num_threads(0)
    with pytest.raises(ValueError, match=">= 1"):
        cdrop.set_num_threads(-3)
    with pytest.raises(TypeError):
        cdrop.set_num_threads(1.5)
    with pytest.raises(TypeError):
        cdrop.set_num_threads("2")
    assert cdrop.get_num_threads() == before  # a failed call changes nothing


def test_manual_seed_bad():
    x = np.ones(1000)
    cdrop.manual_seed(5)
    expected = cdrop.dropout(x)
    cdrop.manual_seed(5)
    for bad, exc in [(-1, ValueError), (2**64, ValueError), (1.5, TypeError), ("1", TypeError),
                     (None, TypeError)]:
        with pytest.raises(exc, match="seed"):
            cdrop.manual_seed(bad)
    # the failed calls did not reset or advance the stream
    assert_bits_equal(cdrop.dropout(x), expected)
