"""Hostile ndarray subclasses: what a subclass reports through Python (``shape``, ``dtype``,
``__array_function__``) must not decide where the kernels write.

Each case runs in a fresh Python (a regression would be a write past a buffer, which can kill
the process): the arrays the kernels could write live inside a larger uint8 buffer whose guard
bytes, before and after, must stay untouched, and the call either gives the right result or
raises a TypeError/ValueError.  The compiled entry points are also called directly with buffers
that disagree: they must refuse them with a ValueError, having written nothing.
"""
import json
import os
import textwrap

import numpy as np
import pytest

import cdrop
from cdrop import _kernels
from helpers import run_python

# Shared by every child: a guarded buffer, the subclasses, and the report.
PRELUDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import cdrop

    GUARD = 1 << 16  # bytes of 0xAB before and after each guarded array
    N = 4096

    def guarded(n, dtype):
        # n elements of dtype inside a uint8 buffer with GUARD guard bytes on each side
        dtype = np.dtype(dtype)
        buf = np.full(2 * GUARD + n * dtype.itemsize, 0xAB, dtype=np.uint8)
        return buf, buf[GUARD:GUARD + n * dtype.itemsize].view(dtype)

    def guards_intact(buf):
        return bool((buf[:GUARD] == 0xAB).all() and (buf[-GUARD:] == 0xAB).all())

    class EmptyLikeShrinks(np.ndarray):
        # np.empty_like(x) gives a 1-element array (inside a guarded buffer)
        bufs = []

        def __array_function__(self, func, types, args, kwargs):
            if func is np.empty_like:
                buf, a = guarded(1, self.dtype)
                EmptyLikeShrinks.bufs.append(buf)
                return a.view(type(self))
            return super().__array_function__(func, types, args, kwargs)

    class LyingShape(np.ndarray):
        # reports the shape it is told to, whatever its real shape
        @property
        def shape(self):
            return self.__dict__.get("claimed", np.ndarray.shape.__get__(self))

    class LyingDtype(np.ndarray):
        @property
        def dtype(self):
            return self.__dict__.get("claimed", np.ndarray.dtype.__get__(self))

    def report(**kw):
        print(json.dumps(kw))
    """
)

CASES = {
    # out of place: the subclass's np.empty_like returns one element for 4096
    "empty_like returns 1 element": """
        x = np.ones(N, np.float32).view(EmptyLikeShrinks)
        try:
            y = cdrop.dropout(x, 0.5, seed=1)
            ok = np.array_equal(np.asarray(y), cdrop.dropout(np.ones(N, np.float32), 0.5, seed=1))
            report(raised=None, ok=bool(ok), guards=all(map(guards_intact, EmptyLikeShrinks.bufs)))
        except (TypeError, ValueError) as exc:
            report(raised=str(exc), ok=True, guards=all(map(guards_intact, EmptyLikeShrinks.bufs)))
    """,
    # out= holds 1 element but claims x's shape
    "out claims a larger shape": """
        x = np.ones(N, np.float32)
        buf, o = guarded(1, np.float32)
        out = o.view(LyingShape)
        out.claimed = x.shape
        try:
            cdrop.dropout(x, 0.5, seed=1, out=out)
            report(raised=None, ok=False, guards=guards_intact(buf))
        except (TypeError, ValueError) as exc:
            report(raised=str(exc), ok=True, guards=guards_intact(buf))
    """,
    # out= holds float32 items but claims float64, like x
    "out claims a wider dtype": """
        x = np.ones(N, np.float64)
        buf, o = guarded(N, np.float32)
        out = o.view(LyingDtype)
        out.claimed = np.dtype(np.float64)
        try:
            cdrop.dropout(x, 0.5, seed=1, out=out)
            report(raised=None, ok=False, guards=guards_intact(buf))
        except (TypeError, ValueError) as exc:
            report(raised=str(exc), ok=True, guards=guards_intact(buf))
    """,
    # x holds 1 element but claims N; out really has N (in a guarded buffer)
    "x claims a larger shape": """
        x = np.ones(1, np.float32).view(LyingShape)
        x.claimed = (N,)
        buf, out = guarded(N, np.float32)
        before = out.copy()
        try:
            cdrop.dropout(x, 0.5, seed=1, out=out)
            report(raised=None, ok=False, guards=guards_intact(buf))
        except (TypeError, ValueError) as exc:
            report(raised=str(exc), ok=bool(np.array_equal(out, before)),
                   guards=guards_intact(buf))
    """,
    # in place on an x that claims more elements than it has
    "in place on x that claims a larger shape": """
        buf, a = guarded(1, np.float32)
        a[...] = 1.0
        x = a.view(LyingShape)
        x.claimed = (N,)
        try:
            y = cdrop.dropout(x, 0.5, seed=1, inplace=True)
            ok = y is x and np.array_equal(np.asarray(a),
                                           cdrop.dropout(np.ones(1, np.float32), 0.5, seed=1))
            report(raised=None, ok=bool(ok), guards=guards_intact(buf))
        except (TypeError, ValueError) as exc:
            report(raised=str(exc), ok=True, guards=guards_intact(buf))
    """,
    # the layer, out of place, with the shrinking np.empty_like
    "Dropout layer, empty_like returns 1 element": """
        x = np.ones(N, np.float32).view(EmptyLikeShrinks)
        layer = cdrop.Dropout(0.5, seed=1)
        try:
            y = layer(x)
            ok = np.array_equal(np.asarray(y), cdrop.Dropout(0.5, seed=1)(np.ones(N, np.float32)))
            report(raised=None, ok=bool(ok), guards=all(map(guards_intact, EmptyLikeShrinks.bufs)))
        except (TypeError, ValueError) as exc:
            report(raised=str(exc), ok=True, guards=all(map(guards_intact, EmptyLikeShrinks.bufs)))
    """,
}


def _run_child(body):
    # a fresh Python, so that a crash fails the test instead of killing pytest
    return run_python(PRELUDE + textwrap.dedent(body), os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_subclass_cannot_make_the_kernel_write_past_a_buffer(case):
    proc = _run_child(CASES[case])
    assert proc.returncode == 0, (
        f"the child died (status {proc.returncode}): a write past a buffer?\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["guards"], f"{case}: guard bytes around the buffer were overwritten ({result})"
    assert result["ok"], f"{case}: wrong result or the call wrote before failing ({result})"


def test_subclass_result_is_wrapped_as_a_ufunc_would_wrap_it():
    # A well-behaved subclass still gets its own type back, through __array_wrap__, with the
    # metadata its __array_finalize__ copies from x (what np.multiply(x, c) would give).
    class Tagged(np.ndarray):
        def __array_finalize__(self, obj):
            self.tag = getattr(obj, "tag", None)

    x = np.ones(1000, np.float32).view(Tagged)
    x.tag = "m/s"
    for y in (cdrop.dropout(x, 0.5, seed=1), cdrop.dropout(x, 0.0, seed=1),
              cdrop.dropout(x, 1.0, seed=1), cdrop.Dropout(0.5, seed=1)(x)):
        assert type(y) is Tagged and y.tag == "m/s"
    assert np.array_equal(cdrop.dropout(x, 0.5, seed=1).view(np.ndarray),
                          cdrop.dropout(np.ones(1000, np.float32), 0.5, seed=1))


# ---------------------------------------------------------------------------------------------
# The compiled entry points check the buffers they receive
# ---------------------------------------------------------------------------------------------
def _guarded(n, dtype):
    dtype = np.dtype(dtype)
    guard = 4096
    buf = np.full(2 * guard + n * dtype.itemsize, 0xAB, dtype=np.uint8)
    return buf, buf[guard:guard + n * dtype.itemsize].view(dtype)


@pytest.mark.parametrize("src_shape,src_dtype,dst_shape,dst_dtype", [
    ((1000,), np.float32, (999,), np.float32),     # shorter dst
    ((1000,), np.float32, (1,), np.float32),
    ((1000,), np.float64, (1000,), np.float32),    # narrower dst items
    ((1000,), np.float32, (1000,), np.float64),
    ((10, 100), np.float32, (100, 10), np.float32),  # same size, another shape
    ((1000,), np.float32, (1000, 1), np.float32),  # another ndim
    ((1000,), np.int8, (1000,), np.int8),          # items of neither 2, 4 nor 8 bytes
])
def test_apply_refuses_buffers_that_disagree(src_shape, src_dtype, dst_shape, dst_dtype):
    src = np.ones(src_shape, src_dtype)
    buf, dst = _guarded(int(np.prod(dst_shape)), dst_dtype)
    dst = dst.reshape(dst_shape)
    before = buf.copy()
    with pytest.raises(ValueError, match="apply"):
        _kernels.apply(src, dst, 1, 0, 0.5, 1)
    assert np.array_equal(buf, before), "apply wrote before refusing"


def test_apply_refuses_a_read_only_dst():
    src = np.ones(100, np.float32)
    dst = np.zeros(100, np.float32)
    dst.flags.writeable = False
    with pytest.raises(ValueError):
        _kernels.apply(src, dst, 1, 0, 0.5, 1)
    assert not dst.any()


@pytest.mark.parametrize("n,nbytes,packed", [(1000, 999, False), (1000, 1001, False),
                                              (1000, 124, True), (1001, 125, True),
                                              (1000, 1000, True)])
def test_keep_mask_refuses_an_out_of_another_size(n, nbytes, packed):
    buf, out = _guarded(nbytes, np.uint8)
    before = buf.copy()
    with pytest.raises(ValueError, match="keep_mask"):
        _kernels.keep_mask(out, n, 1, 0, 0.5, 1, packed)
    assert np.array_equal(buf, before), "keep_mask wrote before refusing"


def test_keep_mask_refuses_items_wider_than_a_byte():
    out = np.zeros(1000, np.float32)
    with pytest.raises(ValueError, match="keep_mask"):
        _kernels.keep_mask(out, 1000, 1, 0, 0.5, 1, False)
    assert not out.any()


def test_compiled_checks_accept_what_the_python_layer_passes():
    # the checks refuse nothing that cdrop itself passes: every layout and both dtypes
    for dtype in (np.float32, np.float64):
        x = np.arange(1, 601, dtype=dtype).reshape(20, 30)
        for view in (x, x.T, x[::2, ::-3], np.asfortranarray(x), x[None, :, None]):
            y = cdrop.dropout(view, 0.5, seed=3)
            out = np.empty_like(view)
            _kernels.apply(view, out, 3, 0, 0.5, 1)
            assert np.array_equal(y, out)
    for packed in (False, True):
        m = cdrop.dropout_mask(1001, 0.5, seed=3, packed=packed)
        assert m.size == (126 if packed else 1001)
