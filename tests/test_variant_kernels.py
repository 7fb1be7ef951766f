"""The compiled core of the dropout family, `_kernels.apply_variant`, against a NumPy oracle of
its contract (cdrop/_src/variant.h): every operation, dtype, kernel path, layout and output
mode, the fused contiguous kernels (consumer_family.inc.h) and the generic walk
(walk_variant.c) alike.  The public functions built on it have their own tests; this file pins
the kernel so that a wrong bit is found where it is made."""
import numpy as np
import pytest

import cdrop
import reference
from cdrop import _kernels as K

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), BF16]
PATHS = ["scalar", "portable", "avx2", "avx512"]
OPS = ["drop", "alpha", "add", "add_bias", "gmul", "gadd"]


@pytest.fixture(params=PATHS)
def path(request):
    old = K.get_path()
    got = K.set_path(request.param)
    if got != request.param:
        K.set_path(old)
        pytest.skip(f"no {request.param} kernels on this CPU")
    yield got
    K.set_path(old)


def _is_half(dt):
    return dt.itemsize == 2


def _kernel_view(a):
    """bfloat16 arrays go to the kernels as uint16 views (as cdrop does)."""
    return a.view(np.uint16) if a.dtype == BF16 else a


def bits(a):
    """The bit patterns of `a` (any layout), for exact comparisons of any dtype."""
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def _normals(shape, seed, offset):
    """The stream's float32 normals of a C-ordered array of `shape` (docs/rng.md, "Normal
    numbers"), from the pure-NumPy reference."""
    return reference.normals(seed, offset, int(np.prod(shape))).reshape(shape)


def oracle(op, x, seed, offset, p, keep, r, b, c0, c1, c2):
    dt = x.dtype
    W = np.float32 if _is_half(dt) else dt.type
    xw = x.astype(W)
    C0, C1, C2 = W(c0), W(c1), W(c2)
    if keep is None and op not in ("gmul", "gadd"):
        keep = cdrop.dropout_mask(x.shape, p, seed=seed, offset=offset)
    if op == "drop":
        return np.where(keep, xw * C0, W(0)).astype(dt)
    if op == "alpha":
        return np.where(keep, xw * C0 + C1, C2).astype(dt)
    if op in ("add", "add_bias"):
        t = x if b is None else (xw + b.astype(W)).astype(dt)
        d = np.where(keep, (t.astype(W) * C0).astype(dt).astype(W), W(0)).astype(dt)
        return (r.astype(W) + d.astype(W)).astype(dt)
    z = _normals(x.shape, seed, offset).astype(W)
    if op == "gmul":
        return (xw * (W(1) + C0 * z)).astype(dt)
    return (xw + C0 * z).astype(dt)


def run(op, x, y, seed, offset, p, nt, keep=None, r=None, b=None, c=(1.25, 0.5, -0.75)):
    kop = {"drop": K.OP_DROP, "alpha": K.OP_ALPHA, "add": K.OP_ADD, "add_bias": K.OP_ADD,
           "gmul": K.OP_GMUL, "gadd": K.OP_GADD}[op]
    bias = None if b is None else np.broadcast_to(b, x.shape)
    return K.apply_variant(
        kop, _kernel_view(x), _kernel_view(y), seed, offset, p, nt,
        keep=keep, residual=None if r is None else _kernel_view(r),
        bias=None if bias is None else _kernel_view(bias),
        c0=c[0], c1=c[1], c2=c[2], bf16=x.dtype == BF16)


def _layouts(rng, dt):
    """(name, x) pairs: contiguous over several stream blocks, 2-D C and Fortran, a reversed
    strided view, 3-D transposed, 0-d and empty."""
    big = rng.standard_normal(40_000).astype(dt)
    two = rng.standard_normal((33, 517)).astype(dt)
    three = rng.standard_normal((4, 9, 70)).astype(dt)
    return [
        ("contig", big),
        ("c2d", two),
        ("fortran", np.asfortranarray(two)),
        ("reversed", two[::-1, ::-2]),
        ("transposed3d", three.transpose(2, 0, 1)),
        ("0d", np.array(1.5, dt)),
        ("empty", np.empty((0, 5), dt)),
    ]


@pytest.mark.parametrize("dt", DTYPES, ids=str)
@pytest.mark.parametrize("op", OPS)
def test_apply_variant_matches_oracle(path, dt, op):
    rng = np.random.default_rng(abs(hash((str(dt), op))) % 2**32)
    for name, x in _layouts(rng, dt):
        r = rng.standard_normal(x.shape).astype(dt)
        b = rng.standard_normal(x.shape[-1:]).astype(dt) if op == "add_bias" and x.ndim else None
        if op == "add_bias" and x.ndim == 0:
            continue
        for p, seed, offset, nt in [(0.3, 7, 0, 1), (0.5, 8, 12_345, 2), (0.1, 2**64 - 1, 3, 2)]:
            rr = r if op in ("add", "add_bias") else None
            want = oracle(op, x, seed, offset, p, None, rr, b, 1.25, 0.5, -0.75)
            y = np.full_like(x, 7)
            assert run(op, x, y, seed, offset, p, nt, r=rr, b=b)
            np.testing.assert_array_equal(bits(y), bits(want), err_msg=f"{name} p={p} new")
            xi = x.copy(order="K") if name != "reversed" else x.copy()
            assert run(op, xi, xi, seed, offset, p, nt, r=rr, b=b)
            np.testing.assert_array_equal(bits(xi), bits(want), err_msg=f"{name} p={p} in place")
            if rr is not None:  # dropout_add into its residual
                ri = r.copy()
                assert run(op, x, ri, seed, offset, p, nt, r=ri, b=b)
                np.testing.assert_array_equal(bits(ri), bits(want),
                                              err_msg=f"{name} p={p} into residual")


@pytest.mark.parametrize("dt", DTYPES, ids=str)
@pytest.mark.parametrize("op", ["drop", "alpha"])
def test_broadcast_keep_arrays(path, dt, op):
    # noise shapes: one flag per (n, c) of an (N, C, H, W) array, per sample, per last axis
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6, 7, 11)).astype(dt)
    swapped = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    for ns in [(5, 6, 1, 1), (5, 1, 1, 1), (1, 1, 1, 11), (1, 6, 7, 1), x.shape]:
        keep = np.broadcast_to(cdrop.dropout_mask(ns, 0.4, seed=9, offset=5), x.shape)
        for xs in [x, np.asfortranarray(x), x[:, :, ::-1], swapped]:
            want = oracle(op, np.ascontiguousarray(xs), 9, 5, 0.4, keep, None, None,
                          1.25, 0.5, -0.75)
            for nt in (1, 2):
                y = np.empty_like(xs)
                assert run(op, xs, y, 9, 5, 0.4, nt, keep=keep)
                np.testing.assert_array_equal(bits(y), bits(want), err_msg=f"{ns}")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("D", [1, 3, 64, 100, 129, 4096])
def test_fused_add_bias_rows_of_any_length(path, dt, D):
    # the fused kernel repeats a bias row of D elements along a C-contiguous array, steps of 64
    # crossing the row's end; offsets that start mid-block and mid-step; ties (p = 0.3)
    rng = np.random.default_rng(D)
    rows = max(1, 50_000 // D)
    x = rng.standard_normal((rows, D)).astype(dt)
    r = rng.standard_normal((rows, D)).astype(dt)
    b = rng.standard_normal(D).astype(dt)
    for offset, nt in [(0, 1), (16_384 - 5, 2), (77, 2)]:
        want = oracle("add_bias", x, 11, offset, 0.3, None, r, b, 1.25, 0, 0)
        y = np.empty_like(x)
        assert run("add_bias", x, y, 11, offset, 0.3, nt, r=r, b=b)
        np.testing.assert_array_equal(bits(y), bits(want))
        ri = r.copy()
        assert run("add_bias", x, ri, 11, offset, 0.3, nt, r=ri, b=b)
        np.testing.assert_array_equal(bits(ri), bits(want))


@pytest.mark.parametrize("shape", [(7, 100), (3, 5, 64), (50_000, 3)])
def test_a_bias_row_is_broadcast_like_its_broadcast_view(path, shape):
    # OP_ADD takes a 1-D bias of x's last length as a row repeated along the other axes, the
    # same bits as np.broadcast_to(bias, x.shape), fused (C order) and generic (Fortran)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    r = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    for xs in (x, np.asfortranarray(x)):
        want = np.empty_like(xs)
        assert K.apply_variant(K.OP_ADD, xs, want, 3, 9, 0.3, 2, residual=r,
                               bias=np.broadcast_to(b, shape), c0=1.5)
        got = np.empty_like(xs)
        assert K.apply_variant(K.OP_ADD, xs, got, 3, 9, 0.3, 2, residual=r, bias=b, c0=1.5)
        np.testing.assert_array_equal(bits(got), bits(want))
    with pytest.raises(ValueError, match="last length"):
        K.apply_variant(K.OP_ADD, x, np.empty_like(x), 3, 9, 0.3, 1, residual=r, bias=b[:-1],
                        c0=1.5)


def test_dropped_elements_ignore_nan_and_inf():
    x = np.array([np.nan, np.inf, -np.inf, -0.0] * 5000, np.float32)
    r = np.full_like(x, -0.0)
    keep = cdrop.dropout_mask(x.shape, 0.5, seed=1)
    y = np.empty_like(x)
    run("drop", x, y, 1, 0, 0.5, 1)
    assert (y[~keep] == 0).all() and not np.signbit(y[~keep]).any()
    run("alpha", x, y, 1, 0, 0.5, 1)
    assert (y[~keep] == np.float32(-0.75)).all()
    run("add", x, y, 1, 0, 0.5, 1, r=r)
    # -0.0 + +0.0 is +0.0: what residual + dropout(x) gives
    assert (y[~keep] == 0).all() and not np.signbit(y[~keep]).any()


def test_thread_count_never_changes_a_result():
    x = np.random.default_rng(0).standard_normal((300, 1000)).astype(np.float32)
    r = x[::-1].copy()
    for op in OPS:
        b = x[0] if op == "add_bias" else None
        rr = r if op.startswith("add") else None
        outs = []
        for nt in (1, 2, 3, 7):
            y = np.empty_like(x)
            run(op, x, y, 5, 999, 0.2, nt, r=rr, b=b)
            outs.append(y)
        for y in outs[1:]:
            np.testing.assert_array_equal(y, outs[0])


def test_misaligned_operands_are_refused_without_writing():
    buf = np.zeros(4 * 1000 + 1, np.uint8)
    x = buf[1:].view(np.float32)
    y = np.full(1000, 3.0, np.float32)
    assert not np.asarray(x).flags.aligned
    assert K.apply_variant(K.OP_DROP, x, y, 1, 0, 0.5, 1, c0=2.0) is False
    assert (y == 3.0).all()
    assert K.apply_variant(K.OP_ADD, y.copy(), y, 1, 0, 0.5, 1, residual=x, c0=2.0) is False
    assert (y == 3.0).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(op=K.OP_ADD), "residual"),
    (dict(op=K.OP_DROP, residual=np.zeros(8, np.float32)), "residual"),
    (dict(op=K.OP_DROP, bias=np.zeros(8, np.float32)), "residual"),
    (dict(op=K.OP_GMUL, keep=np.ones(8, bool)), "keep"),
    (dict(op=99), "unknown operation"),
    (dict(op=K.OP_DROP, keep=np.ones(7, bool)), "keep and src differ"),
    (dict(op=K.OP_DROP, keep=np.ones(8, np.uint16)), "keep has items of 2 bytes"),
    (dict(op=K.OP_ADD, residual=np.zeros(8, np.float64)), "residual has items"),
    (dict(op=K.OP_ADD, residual=np.zeros((8, 1), np.float32)), "dimensions"),
])
def test_operands_that_disagree_raise_before_writing(kwargs, match):
    x = np.ones(8, np.float32)
    y = np.full(8, 3.0, np.float32)
    op = kwargs.pop("op")
    with pytest.raises(ValueError, match=match):
        K.apply_variant(op, x, y, 1, 0, 0.5, 1, c0=2.0, **kwargs)
    assert (y == 3.0).all()


def test_read_only_destination_raises():
    x = np.ones(8, np.float32)
    y = np.ones(8, np.float32)
    y.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):
        K.apply_variant(K.OP_DROP, x, y, 1, 0, 0.5, 1, c0=2.0)
