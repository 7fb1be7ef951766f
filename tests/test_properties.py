"""Property tests: every entry point against the oracle, bit for bit, and no byte written outside
the elements of the target view.

Each example builds the arrays passed to cdrop as views inside a *guarded* ``uint8`` parent
buffer: ``GUARD`` bytes of a random pattern before and after, and random bytes in every gap
between strided elements.  Element values are random bytes too, so they cover NaNs with
payloads, infinities, subnormals and -0.0.  After each call the test checks

* the result against ``tests/reference.py`` (the pure-NumPy oracle of docs/rng.md), bit for bit;
* that every byte of the parent which is not a byte of a target element is unchanged (guard
  bytes and the gaps between strided elements included), and that the source buffer of an
  out-of-place call (out of place, ``out=``, ``training=False``, ``Dropout.backward``) is
  unchanged entirely.

Entry points: ``dropout`` out of place, in place, ``out=`` (a strided view in its own guarded
buffer), ``out=`` over x's own elements, ``training=False`` with ``out=``, ``dropout_mask`` (bool
and packed) and ``Dropout`` forward/backward; and the dropout family (issue 11): ``dropout`` with
a ``noise_shape``, ``drop_path``, ``alpha_dropout``, ``gaussian_dropout``, ``gaussian_noise`` and
``dropout_add`` (a guarded residual, out=, and out=x), out of place, ``out=`` and in place.

The examples range over dtypes (float32, float64); shapes (0-d, empty, 1 element, primes, more
than one RNG block of 2**14 elements, more than one thread chunk: sizes a bit above 2**16 with
two threads); layouts (C, F, basic slicing with steps and negative strides plus transposes,
arbitrary gaps and signs via ``np.ndarray(buffer=, offset=, strides=)``, read-only
``np.broadcast_to`` views and read-only buffers); misalignment (a start 1 or itemsize-1 bytes
past alignment, and byte strides that are not multiples of the item size); p (0, 1, 1e-12,
1 - 1e-12, random); seeds (ints up to 2**64 - 1, ``np.random.Generator``); offsets (0, random,
up to the end of the index space ``2**64 - size``); thread counts and both kernel paths.

Budget: the oracle is plain NumPy (about 10 ms for 10**5 elements), the examples are capped at
about 7 * 10**4 elements, and ``max_examples`` is chosen so that this file runs in well under
40 s on the project's 2-core machine.  Hypothesis runs derandomized, without a database and
without deadlines (run time of one example varies with the machine's load), so every run draws
the same examples.

The second part checks misaligned data and non-native byte order for every entry point, on
fixed cases: a correct (bit-equal to the oracle on an aligned, native copy) result, or a clear
TypeError/ValueError, and nothing written either way.
"""
import dataclasses
import math
import re
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdrop
import reference
from cdrop import _kernels
from helpers import assert_bits_equal

GUARD = 64  # random bytes before and after each array's region of the parent buffer
BLOCK = 1 << 14  # elements per RNG block (docs/rng.md)
THREADED = 1 << 16  # calls with fewer elements run on one thread; each thread gets >= 2**15
U64 = 1 << 64
DTYPES = [np.float32, np.float64]

# The settings profile of this file.  too_slow/data_too_large: some examples deliberately build
# arrays of ~70000 elements (more than one thread chunk), which makes their test body slow,
# not their data generation; the health checks would then refuse a legitimate example mix.
settings.register_profile(
    "cdrop-properties",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("cdrop-properties")


# ---------------------------------------------------------------------------------------------
# Layouts: how a view sits in a guarded parent buffer.
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Layout:
    """A recipe for a view of `shape` and `dtype` inside a guarded uint8 buffer.

    kind: "C" / "F" (contiguous), "sliced" (basic slicing of a C or F parent, then a
    transpose), "strided" (np.ndarray with explicit strides: gaps and signs per axis),
    "broadcast" (np.broadcast_to of a smaller array: read-only, zero strides).
    misalign: bytes added to the start of the region (0 = aligned).
    readonly: the whole parent buffer is read-only.
    """

    kind: str
    shape: tuple
    dtype: str
    misalign: int = 0
    readonly: bool = False
    order: str = "C"
    parent_shape: tuple = ()
    slices: tuple = ()  # (start, stop, step) per axis of the parent
    perm: tuple = ()
    strides: tuple = ()  # "strided": signed byte strides
    start: int = 0  # "strided": byte offset of element [0, ..., 0] from the region start
    span: int = 0  # bytes of the region
    small_shape: tuple = ()  # "broadcast": the array that is broadcast

    @property
    def writeable(self):
        return not self.readonly and self.kind != "broadcast"

    def make_buffer(self, rng):
        buf = rng.integers(0, 256, GUARD + self.misalign + self.span + GUARD, dtype=np.uint8)
        if self.readonly:
            buf.setflags(write=False)
        return buf

    def view(self, buf):
        """The view over `buf` (re-executes the recipe, so it works on a copy of buf too)."""
        at = GUARD + self.misalign
        if self.kind in ("C", "F"):
            return np.ndarray(self.shape, self.dtype, buffer=buf, offset=at, order=self.kind)
        if self.kind == "sliced":
            parent = np.ndarray(self.parent_shape, self.dtype, buffer=buf, offset=at,
                                order=self.order)
            # (the Ellipsis keeps a 0-d result a view rather than a numpy scalar)
            index = tuple(slice(*s) for s in self.slices) + (Ellipsis,)
            return parent[index].transpose(self.perm)
        if self.kind == "strided":
            return np.ndarray(self.shape, self.dtype, buffer=buf, offset=at + self.start,
                              strides=self.strides)
        assert self.kind == "broadcast"
        small = np.ndarray(self.small_shape, self.dtype, buffer=buf, offset=at)
        return np.broadcast_to(small, self.shape)


def element_bytes(view, buf):
    """Boolean mask over `buf`: True on the bytes of `view`'s elements."""
    start = view.__array_interface__["data"][0] - buf.__array_interface__["data"][0]
    offs = np.full((), start, dtype=np.int64)
    for n, s in zip(view.shape, view.strides):
        offs = offs[..., None] + np.arange(n, dtype=np.int64) * s
    idx = (offs.reshape(-1, 1) + np.arange(view.itemsize, dtype=np.int64)).ravel()
    # the test's own sanity: every element lies inside the buffer, away from the guards
    assert idx.size == 0 or (idx.min() >= GUARD and idx.max() < buf.size - GUARD)
    touched = np.zeros(buf.size, dtype=bool)
    touched[idx] = True
    return touched


def assert_only_elements_changed(before, after, touched, what):
    changed = np.flatnonzero((before != after) & ~touched)
    assert changed.size == 0, (
        f"{what}: {changed.size} bytes outside the target's elements changed, first at byte "
        f"{changed[0]} of {after.size} (guards are bytes [0, {GUARD}) and the last {GUARD})")


def assert_unchanged(before, after, what):
    assert_only_elements_changed(before, after, np.zeros(after.size, dtype=bool), what)


def _nbytes(shape, itemsize):
    return math.prod(shape) * itemsize


def sliced_layout(shape, dtype, *, order="C", perm=None, steps=None, pads=None, misalign=0,
                  readonly=False):
    """Basic slicing of a C or F parent (steps per axis of the sliced view, `pads` = (pre, post)
    elements around each axis), then ``.transpose(perm)`` to `shape`."""
    ndim = len(shape)
    perm = tuple(range(ndim)) if perm is None else tuple(perm)
    steps = steps or [1] * ndim
    pads = pads or [(0, 0)] * ndim
    vshape = [0] * ndim  # the sliced view's shape, before the transpose
    for i, n in enumerate(shape):
        vshape[perm[i]] = n
    parent_shape, slices = [], []
    for m, step, (pre, post) in zip(vshape, steps, pads):
        length = abs(step) * (m - 1) + 1 if m else 0
        parent_shape.append(pre + length + post)
        if step > 0:
            slices.append((pre, pre + length, step))
        else:
            first = pre + length - 1 if m else pre
            stop = first + step * m
            slices.append((first, stop if stop >= 0 else None, step))
    itemsize = np.dtype(dtype).itemsize
    return Layout("sliced", tuple(shape), np.dtype(dtype).str, misalign, readonly, order,
                  tuple(parent_shape), tuple(slices), perm,
                  span=_nbytes(parent_shape, itemsize))


def strided_layout(shape, dtype, *, inner_to_outer=None, gaps=None, negative=None, extra=0,
                   misalign=0, readonly=False):
    """np.ndarray(buffer=..., strides=...): axis `inner_to_outer[0]` innermost; each stride is
    (bytes spanned by the inner axes) * gap + `extra` bytes, negated on `negative` axes."""
    ndim = len(shape)
    itemsize = np.dtype(dtype).itemsize
    inner_to_outer = range(ndim) if inner_to_outer is None else inner_to_outer
    gaps = gaps or [1] * ndim
    negative = negative or [False] * ndim
    extent, strides, start = itemsize, [0] * ndim, 0
    for ax, gap, neg in zip(inner_to_outer, gaps, negative):
        stride = extent * gap + extra  # >= extent: no two elements share a byte
        n = max(shape[ax] - 1, 0)
        if neg:
            start += stride * n
            stride = -stride
        strides[ax] = stride
        extent += abs(stride) * n
    return Layout("strided", tuple(shape), np.dtype(dtype).str, misalign, readonly,
                  strides=tuple(strides), start=start, span=extent)


def broadcast_layout(shape, dtype, small_shape, *, misalign=0):
    return Layout("broadcast", tuple(shape), np.dtype(dtype).str, misalign,
                  small_shape=tuple(small_shape),
                  span=_nbytes(small_shape, np.dtype(dtype).itemsize))


def contiguous_layout(shape, dtype, order="C", *, misalign=0, readonly=False):
    return Layout(order, tuple(shape), np.dtype(dtype).str, misalign, readonly,
                  span=_nbytes(shape, np.dtype(dtype).itemsize))


@st.composite
def layouts(draw, shape, dtype, *, writeable=False, big=False):
    """A Layout of `shape`; `writeable=True` excludes read-only ones (for out= targets).

    `big` arrays get smaller gaps, to bound the size of the parent buffer."""
    itemsize = np.dtype(dtype).itemsize
    ndim = len(shape)
    kinds = ["C", "F", "sliced", "sliced", "strided", "strided"]
    if not writeable:
        kinds.append("broadcast")
    kind = draw(st.sampled_from(kinds))
    # aligned 3 times in 5; else 1 byte or itemsize - 1 bytes off
    misalign = draw(st.sampled_from([0, 0, 0, 1, itemsize - 1]))
    readonly = (not writeable) and draw(st.integers(0, 9)) == 0
    if kind in ("C", "F"):
        return contiguous_layout(shape, dtype, kind, misalign=misalign, readonly=readonly)
    if kind == "sliced":
        steps = [1, 2, -1, -2] if big else [1, 2, 3, -1, -2, -3]
        return sliced_layout(
            shape, dtype, order=draw(st.sampled_from("CF")),
            perm=draw(st.permutations(range(ndim))),
            steps=[draw(st.sampled_from(steps)) for _ in range(ndim)],
            pads=[(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(ndim)],
            misalign=misalign, readonly=readonly)
    if kind == "strided":
        return strided_layout(
            shape, dtype, inner_to_outer=draw(st.permutations(range(ndim))),
            gaps=[draw(st.sampled_from([1, 2] if big else [1, 2, 3])) for _ in range(ndim)],
            negative=[draw(st.booleans()) for _ in range(ndim)],
            # byte strides that are not a multiple of the item size only when misaligned
            extra=draw(st.integers(0, itemsize - 1)) if misalign else 0,
            misalign=misalign, readonly=readonly)
    # broadcast: keep or collapse each axis, and maybe drop leading axes
    lead = draw(st.integers(0, ndim))
    small = tuple(n if draw(st.booleans()) else 1 for n in shape[lead:])
    return broadcast_layout(shape, dtype, small, misalign=misalign)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------
SMALL_DIMS = [1, 2, 3, 5, 7, 11, 13]


@st.composite
def shapes(draw):
    cls = draw(st.sampled_from(["0d", "empty", "one", "small", "small", "small", "prime",
                                "block", "threads"]))
    if cls == "0d":
        return cls, ()
    if cls == "empty":
        ndim = draw(st.integers(1, 3))
        dims = [draw(st.sampled_from([0, 1, 3, 5])) for _ in range(ndim)]
        dims[draw(st.integers(0, ndim - 1))] = 0
        return cls, tuple(dims)
    if cls == "one":
        return cls, (1,) * draw(st.integers(1, 3))
    if cls == "small":
        return cls, tuple(draw(st.lists(st.sampled_from(SMALL_DIMS), min_size=1, max_size=3)))
    if cls == "prime":
        return cls, (draw(st.sampled_from([17, 61, 127, 509, 1021, 4093])),)
    if cls == "block":  # more than one RNG block, one thread
        n = draw(st.integers(BLOCK + 1, 2 * BLOCK + 100))
        if draw(st.booleans()):
            return cls, (n,)
        rows = draw(st.sampled_from([2, 3, 7]))
        return cls, (rows, n // rows)
    assert cls == "threads"  # more than one thread chunk (with num_threads >= 2)
    n = draw(st.integers(THREADED + 1, THREADED + 3000))
    if draw(st.booleans()):
        return cls, (n,)
    rows = draw(st.sampled_from([2, 3, 257]))
    return cls, (rows, -(-n // rows))


PS = st.one_of(st.sampled_from([0.0, 1.0, 1e-12, 1.0 - 1e-12, 0.5]),
               st.floats(0.0, 1.0, allow_nan=False))


@dataclasses.dataclass(frozen=True)
class Case:
    dtype: str
    shape: tuple
    p: float
    seed: tuple  # ("int", s) or ("gen", g): np.random.default_rng(g) passed fresh to each call
    offset: int
    num_threads: object  # None or an int
    path: str  # kernel path
    x: Layout
    out: Layout
    grad: Layout
    layer_inplace: bool
    fill: int  # seeds the random bytes of the buffers

    def seed_arg(self):
        kind, s = self.seed
        return np.random.default_rng(s) if kind == "gen" else s

    def seed_int(self):
        kind, s = self.seed
        if kind == "gen":  # what cdrop draws from the Generator (docs: one 64-bit integer)
            return int(np.random.default_rng(s).integers(0, U64, dtype=np.uint64))
        return s


@st.composite
def cases(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES))).str
    cls, shape = draw(shapes())
    big = cls in ("block", "threads")
    n = math.prod(shape)
    p = draw(PS)
    seed = draw(st.one_of(
        st.tuples(st.just("int"), st.one_of(st.integers(0, U64 - 1),
                                            st.sampled_from([0, 1, U64 - 1]))),
        st.tuples(st.just("gen"), st.integers(0, 2**32))))
    offset = draw(st.one_of(st.just(0), st.integers(0, U64 - n),
                            st.integers(0, min(64, U64 - n)).map(lambda k: U64 - n - k)))
    if cls == "threads":
        nt = draw(st.sampled_from([2, 2, 3, None]))  # None: the default (2 on a 2-core box)
    else:
        nt = draw(st.sampled_from([None, 1, 2, 4]))
    return Case(
        dtype=dtype, shape=shape, p=p, seed=seed, offset=offset, num_threads=nt,
        # "avx512-nt", "avx2-nt": every out-of-place contiguous call on the streaming
        # (non-temporal store) kernel; a CPU without AVX-512 runs the avx512 cases on AVX2
        path=draw(st.sampled_from(["avx512", "avx512-nt", "avx2", "avx2-nt", "portable",
                                   "scalar"])),
        x=draw(layouts(shape, dtype, big=big)),
        out=draw(layouts(shape, dtype, writeable=True, big=big)),
        grad=draw(layouts(shape, dtype, big=big)),
        layer_inplace=draw(st.booleans()),
        fill=draw(st.integers(0, 2**32)),
    )


# ---------------------------------------------------------------------------------------------
# The checks of one case
# ---------------------------------------------------------------------------------------------
def check_case(c):
    got = _kernels.set_path(c.path.split("-")[0])
    assert got in ("avx512", "avx2", "portable", "scalar")
    stream = _kernels.set_stream_bytes(0 if c.path.endswith("-nt") else
                                       _kernels.get_stream_bytes())
    try:
        _check_case(c)
    finally:
        _kernels.set_path("auto")
        _kernels.set_stream_bytes(stream)


def _check_case(c):
    rng = np.random.default_rng(c.fill)
    kw = {"offset": c.offset, "num_threads": c.num_threads}
    seed = c.seed_int()

    # -- dropout out of place: result == oracle; the source buffer is unchanged -----------------
    xbuf = c.x.make_buffer(rng)
    xbuf0 = xbuf.copy()
    x = c.x.view(xbuf)
    assert x.shape == c.shape and x.dtype == np.dtype(c.dtype)
    assert x.flags.writeable == c.x.writeable
    if c.x.misalign:
        assert x.size == 0 or not x.flags.aligned  # the test really is misaligned
    expected = reference.dropout_ref(x, c.p, seed, c.offset)
    y = cdrop.dropout(x, c.p, seed=c.seed_arg(), **kw)
    assert type(y) is np.ndarray and y.shape == c.shape and y.dtype == x.dtype
    assert not np.shares_memory(y, xbuf)
    assert_bits_equal(y, expected, "out of place")
    assert_unchanged(xbuf0, xbuf, "out of place")

    # -- out=: a strided (maybe misaligned) view inside its own guarded buffer ---------------
    obuf = c.out.make_buffer(rng)
    obuf0 = obuf.copy()
    out = c.out.view(obuf)
    r = cdrop.dropout(x, c.p, seed=c.seed_arg(), out=out, **kw)
    assert r is out
    assert_bits_equal(out, expected, "out=")
    assert_only_elements_changed(obuf0, obuf, element_bytes(out, obuf), "out=")
    assert_unchanged(xbuf0, xbuf, "out= (source)")

    # -- training=False with out=: a copy of x into out, nothing else --------------------------
    obuf2 = c.out.make_buffer(rng)
    obuf2_0 = obuf2.copy()
    out2 = c.out.view(obuf2)
    assert cdrop.dropout(x, c.p, False, seed=c.seed_arg(), out=out2, **kw) is out2
    assert_bits_equal(out2, np.array(x, copy=True), "training=False, out=")
    assert_only_elements_changed(obuf2_0, obuf2, element_bytes(out2, obuf2),
                                 "training=False, out=")
    assert_unchanged(xbuf0, xbuf, "training=False (source)")

    # -- in place, as inplace=True and as out= over x's own elements ----------------------------
    for how in ("inplace", "out_same_elements"):
        buf = xbuf0.copy()
        buf.setflags(write=not c.x.readonly)
        v = c.x.view(buf)
        args = {"inplace": True} if how == "inplace" else {"out": c.x.view(buf)}
        if not c.x.writeable:  # broadcast view or read-only buffer: refused, nothing written
            with pytest.raises(ValueError, match=r"read-only|overlap"):
                cdrop.dropout(v, c.p, seed=c.seed_arg(), **args, **kw)
            assert_unchanged(xbuf0, buf, f"refused {how}")
            continue
        r = cdrop.dropout(v, c.p, seed=c.seed_arg(), **args, **kw)
        assert r is (v if how == "inplace" else args["out"])
        assert_bits_equal(v, expected, how)
        assert_only_elements_changed(xbuf0, buf, element_bytes(v, buf), how)

    # -- dropout_mask, bool and packed -----------------------------------------------------------
    ref_mask = reference.keep_mask(c.shape, c.p, seed, c.offset)
    m = cdrop.dropout_mask(c.shape, c.p, seed=c.seed_arg(), **kw)
    assert m.dtype == np.bool_ and m.shape == c.shape
    assert np.array_equal(m, ref_mask), "dropout_mask"
    packed = cdrop.dropout_mask(c.shape, c.p, seed=c.seed_arg(), packed=True, **kw)
    assert packed.dtype == np.uint8 and packed.shape == ((ref_mask.size + 7) // 8,)
    assert np.array_equal(packed, np.packbits(ref_mask.ravel(), bitorder="little")), "packed"

    # -- Dropout layer: forward (call 0 uses derive(layer seed, 0), offset 0), backward ----------
    call_seed = reference.derive(seed, 0)
    layer = cdrop.Dropout(c.p, inplace=c.layer_inplace, seed=c.seed_arg())
    buf = xbuf0.copy()
    buf.setflags(write=not c.x.readonly)
    v = c.x.view(buf)
    if c.layer_inplace and not c.x.writeable:
        with pytest.raises(ValueError, match=r"read-only|overlap"):
            layer(v)
        assert_unchanged(xbuf0, buf, "refused in-place forward")
        layer.inplace = False  # the refused call must not have used up call 0
    expected_fwd = reference.dropout_ref(v, c.p, call_seed, 0)
    y = layer(v)
    assert_bits_equal(y, expected_fwd, "Dropout.forward")
    if layer.inplace:
        assert y is v
        assert_only_elements_changed(xbuf0, buf, element_bytes(v, buf), "in-place forward")
    else:
        assert y is not v and not np.shares_memory(y, buf)
        assert_unchanged(xbuf0, buf, "forward")
    gbuf = c.grad.make_buffer(rng)
    gbuf0 = gbuf.copy()
    grad = c.grad.view(gbuf)
    g = layer.backward(grad)
    assert type(g) is np.ndarray and not np.shares_memory(g, gbuf)
    assert_bits_equal(g, reference.dropout_ref(grad, c.p, call_seed, 0), "Dropout.backward")
    assert_unchanged(gbuf0, gbuf, "backward (grad)")


@PROFILE
@given(case=cases())
def test_entry_points_match_oracle_and_stay_inside_their_views(case):
    check_case(case)


# ---------------------------------------------------------------------------------------------
# The dropout family (issue 11): the same cases, every new entry point
# ---------------------------------------------------------------------------------------------
def _family_calls(c, x, shape, rng):
    """(name, call(x, **kw), oracle(x) or None, may run in place) of the family's functions for
    one case; the noise shape is drawn from the case's fill."""
    seed = c.seed_int()
    ns = tuple(1 if rng.integers(2) else None for _ in shape)
    res_buf = c.grad.make_buffer(rng)
    residual = c.grad.view(res_buf)
    bias = residual[(slice(0, 1),) * (len(shape) - 1)] if shape else None
    pg = min(c.p, 0.9)  # Gaussian dropout refuses p == 1
    normals = hasattr(reference, "normals")
    calls = [
        ("noise_shape", lambda a, **kw: cdrop.dropout(a, c.p, seed=c.seed_arg(),
                                                       noise_shape=ns, **kw),
         lambda a: reference.noise_dropout_ref(a, c.p, seed, c.offset, ns), True),
        ("alpha_dropout", lambda a, **kw: cdrop.alpha_dropout(a, c.p, seed=c.seed_arg(), **kw),
         lambda a: reference.alpha_ref(a, c.p, seed, c.offset), True),
        ("gaussian_dropout", lambda a, **kw: cdrop.gaussian_dropout(a, pg, seed=c.seed_arg(),
                                                                    **kw),
         (lambda a: reference.gaussian_dropout_ref(a, pg, seed, c.offset)) if normals else None,
         True),
        ("gaussian_noise", lambda a, **kw: cdrop.gaussian_noise(a, 0.5, seed=c.seed_arg(), **kw),
         (lambda a: reference.gaussian_noise_ref(a, 0.5, seed, c.offset)) if normals else None,
         True),
        ("dropout_add", lambda a, **kw: cdrop.dropout_add(a, residual, c.p, bias=bias,
                                                          seed=c.seed_arg(), **kw),
         lambda a: reference.dropout_add_ref(a, residual, c.p, seed, c.offset, bias), False),
    ]
    if shape:
        calls.append(("drop_path", lambda a, **kw: cdrop.drop_path(
            a, c.p, seed=c.seed_arg(), **{k: v for k, v in kw.items() if k != "out"}),
            lambda a: reference.drop_path_ref(a, c.p, seed, c.offset), True))
    return calls, res_buf


def _assert_family_equal(name, got, expected, what):
    """Bit for bit; for dropout_add, where two NaNs meet (x and bias, or residual and the
    dropped-out term), any NaN: which payload survives a sum of two NaNs is the hardware's
    choice (and the compiler may swap the operands of a sum)."""
    if name == "dropout_add":
        nan = np.isnan(np.asarray(expected, np.float64))
        assert np.array_equal(nan, np.isnan(np.asarray(got, np.float64))), what
        got, expected = np.where(nan, 0, got), np.where(nan, 0, expected)
    assert_bits_equal(got, expected, what)


def check_family_case(c):
    _kernels.set_path(c.path.split("-")[0])
    try:
        _check_family_case(c)
    finally:
        _kernels.set_path("auto")


def _check_family_case(c):
    rng = np.random.default_rng(c.fill)
    kw = {"offset": c.offset, "num_threads": c.num_threads}
    xbuf = c.x.make_buffer(rng)
    xbuf0 = xbuf.copy()
    x = c.x.view(xbuf)
    calls, res_buf = _family_calls(c, x, c.shape, rng)
    res_buf0 = res_buf.copy()
    for name, call, oracle, inplace_ok in calls:
        expected = None if oracle is None else oracle(x)
        y = call(x, **kw)
        assert type(y) is np.ndarray and y.shape == c.shape and y.dtype == x.dtype, name
        assert not np.shares_memory(y, xbuf), name
        if expected is not None:
            _assert_family_equal(name, y, expected, f"{name} out of place")
        assert_unchanged(xbuf0, xbuf, f"{name} out of place")
        assert_unchanged(res_buf0, res_buf, f"{name} (residual)")
        if name != "drop_path":  # drop_path has no out= (timm's signature)
            obuf = c.out.make_buffer(rng)
            obuf0 = obuf.copy()
            out = c.out.view(obuf)
            assert call(x, out=out, **kw) is out, name
            _assert_family_equal(name, out, y, f"{name} out=")
            assert_only_elements_changed(obuf0, obuf, element_bytes(out, obuf), f"{name} out=")
            assert_unchanged(xbuf0, xbuf, f"{name} out= (source)")
        buf = xbuf0.copy()
        buf.setflags(write=not c.x.readonly)
        v = c.x.view(buf)
        args = {"inplace": True} if inplace_ok else {"out": v}
        if not c.x.writeable:  # refused, nothing written
            with pytest.raises(ValueError, match=r"read-only|overlap"):
                call(v, **args, **kw)
            assert_unchanged(xbuf0, buf, f"{name} refused in place")
            continue
        r = call(v, **args, **kw)
        assert r is (v if inplace_ok else args["out"]), name
        _assert_family_equal(name, v, y, f"{name} in place")
        assert_only_elements_changed(xbuf0, buf, element_bytes(v, buf), f"{name} in place")
    assert_unchanged(res_buf0, res_buf, "residual")


@settings(PROFILE, max_examples=150)
@given(case=cases())
def test_family_entry_points_match_oracles_and_stay_inside_their_views(case):
    check_family_case(case)


# A few pinned cases, so that the combinations the issue names are always run whatever
# Hypothesis draws: threaded sizes in strided, misaligned and broadcast layouts, the end of the
# index space, a Generator seed, read-only sources.
def _pinned():
    f4, f8 = np.dtype(np.float32).str, np.dtype(np.float64).str
    n = THREADED + 1001
    big = (3, -(-n // 3))  # > 2**16 elements: two threads with num_threads=2
    tall = big[::-1]
    blocks = (5, BLOCK + 3)
    return {
        # threaded, misaligned by 1 byte with 9-byte strides, rows reversed, at the end of the
        # index space with the largest seed
        "threaded-strided-misaligned": Case(
            f4, big, 0.3, ("int", U64 - 1), U64 - math.prod(big), 2, "avx2",
            strided_layout(big, f4, inner_to_outer=(1, 0), gaps=(2, 1), negative=(True, False),
                           extra=1, misalign=1),
            contiguous_layout(big, f4, "F"),
            contiguous_layout(big, f4, misalign=3),
            True, 1),
        # threaded float64, negative steps and a transpose, misaligned out=, Generator seed
        "threaded-sliced-generator": Case(
            f8, tall, 0.5, ("gen", 7), 12345, 2, "portable",
            sliced_layout(tall, f8, order="F", perm=(1, 0), steps=(1, -2), pads=((1, 2), (0, 1))),
            strided_layout(tall, f8, inner_to_outer=(0, 1), negative=(False, True), extra=3,
                           misalign=1),
            broadcast_layout(tall, f8, (tall[1],)),
            False, 2),
        # read-only broadcast source over more than one block: in-place calls refused
        "broadcast-blocks": Case(
            f4, blocks, 1e-12, ("int", 3), 0, None, "avx2",
            broadcast_layout(blocks, f4, (1, blocks[1]), misalign=1),
            sliced_layout(blocks, f4, perm=(1, 0), steps=(1, -2), pads=((0, 0), (1, 0))),
            contiguous_layout(blocks, f4, readonly=True),
            True, 3),
        # 0-d, misaligned, p near 1, read-only buffer, last index of the stream
        "0d-misaligned": Case(
            f8, (), 1.0 - 1e-12, ("int", 0), U64 - 1, 1, "portable",
            contiguous_layout((), f8, misalign=7, readonly=True),
            contiguous_layout((), f8, misalign=1),
            broadcast_layout((), f8, ()),
            True, 4),
    }


@pytest.mark.parametrize("name", list(_pinned()))
def test_pinned_cases(name):
    check_case(_pinned()[name])


@pytest.mark.parametrize("name", list(_pinned()))
def test_pinned_family_cases(name):
    check_family_case(_pinned()[name])


def test_pinned_layouts_are_what_they_claim():
    # The recipes build what their names say (otherwise the cases above prove less).
    for name, case in _pinned().items():
        rng = np.random.default_rng(0)
        for lay in (case.x, case.out, case.grad):
            v = lay.view(lay.make_buffer(rng))
            assert v.shape == case.shape and v.dtype == np.dtype(case.dtype), name
            assert v.flags.writeable == lay.writeable, name
            assert v.flags.aligned == (lay.misalign == 0), name
            if lay.kind == "broadcast" and v.ndim:
                assert 0 in v.strides, name
            if lay.kind in ("sliced", "strided"):
                assert any(s < 0 for s in v.strides), name
                assert not (v.flags.c_contiguous or v.flags.f_contiguous), name


# ---------------------------------------------------------------------------------------------
# Misaligned data and non-native byte order, entry point by entry point
# ---------------------------------------------------------------------------------------------
ENTRY_POINTS = ["dropout", "dropout_inplace", "dropout_out", "dropout_out_is_x", "eval",
                "eval_out", "layer_forward", "layer_forward_inplace", "layer_backward",
                "layer_eval_forward", "layer_eval_backward"]


def _raw(dtype, shape, misalign, rng):
    """A writeable array of `dtype` (any byte order) starting `misalign` bytes into a guarded
    uint8 buffer, filled with values from `rng`; returns (buffer, array)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    buf = rng.integers(0, 256, GUARD + misalign + n * dtype.itemsize + GUARD, dtype=np.uint8)
    a = np.ndarray(shape, dtype, buffer=buf, offset=GUARD + misalign)
    a[...] = rng.standard_normal(shape)
    return buf, a


def _call(entry, x, out, p, seed):
    """Run one entry point; returns (result, the array that may legitimately change)."""
    if entry == "dropout":
        return cdrop.dropout(x, p, seed=seed), None
    if entry == "dropout_inplace":
        return cdrop.dropout(x, p, seed=seed, inplace=True), x
    if entry == "dropout_out":
        return cdrop.dropout(x, p, seed=seed, out=out), out
    if entry == "dropout_out_is_x":
        return cdrop.dropout(x, p, seed=seed, out=x), x
    if entry == "eval":
        return cdrop.dropout(x, p, False, seed=seed), None
    if entry == "eval_out":
        return cdrop.dropout(x, p, False, seed=seed, out=out), out
    if entry == "layer_forward":
        return cdrop.Dropout(p, seed=seed)(x), None
    if entry == "layer_forward_inplace":
        return cdrop.Dropout(p, seed=seed, inplace=True)(x), x
    if entry == "layer_backward":
        layer = cdrop.Dropout(p, seed=seed)
        layer(np.zeros(x.shape))
        return layer.backward(x), None
    if entry == "layer_eval_forward":
        return cdrop.Dropout(p, seed=seed).eval()(x), None
    assert entry == "layer_eval_backward"
    return cdrop.Dropout(p, seed=seed).eval().backward(x), None


def _expected(entry, x_native, p, seed):
    if entry in ("eval", "eval_out", "layer_eval_forward", "layer_eval_backward"):
        return x_native
    if entry.startswith("layer_"):
        return reference.dropout_ref(x_native, p, reference.derive(seed, 0))
    return reference.dropout_ref(x_native, p, seed)


# test_semantics.test_misaligned_view already runs dropout out of place, in place and with
# out= on 1-d contiguous misaligned arrays (up to 40000 elements, p=0.5): not repeated here.
_COVERED_ELSEWHERE = {"dropout", "dropout_inplace", "dropout_out"}
MISALIGNED_CASES = [
    pytest.param(entry, dtype, shape, id=f"{entry}-{np.dtype(dtype).name}-{shape}")
    for entry in ENTRY_POINTS
    for dtype in DTYPES
    for shape in [(), (13,), (5, 7), (2, THREADED // 2 + 77)]  # the last: two threads
    if not (entry in _COVERED_ELSEWHERE and shape == (13,))
]


@pytest.mark.parametrize("p", [0.0, 0.37, 1.0])
@pytest.mark.parametrize("entry,dtype,shape", MISALIGNED_CASES)
def test_misaligned_every_entry_point(entry, dtype, shape, p):
    # native order, one byte off alignment (x and, for out=, out): correct results, and only
    # the target's bytes written
    rng = np.random.default_rng(zlib.crc32(f"{entry}{dtype}{shape}{p}".encode()))
    xbuf, x = _raw(dtype, shape, 1, rng)
    obuf, out = _raw(dtype, shape, 1, rng)
    assert not x.flags.aligned and not out.flags.aligned
    x_native = np.array(x, copy=True)  # aligned copy
    xbuf0, obuf0 = xbuf.copy(), obuf.copy()
    nt = 2 if x.size > THREADED else None
    cdrop.set_num_threads(nt)  # threaded for the big shape (reset by conftest)
    result, target = _call(entry, x, out, p, 99)
    assert result.shape == shape
    assert_bits_equal(result, _expected(entry, x_native, p, 99), entry)
    for buf, buf0, arr in ((xbuf, xbuf0, x), (obuf, obuf0, out)):
        touched = element_bytes(arr, buf) if arr is target else np.zeros(buf.size, bool)
        assert_only_elements_changed(buf0, buf, touched, entry)


# test_errors.test_non_native_byte_order already covers aligned x out of place and in place.
NON_NATIVE_CASES = [
    pytest.param(entry, dtype, misalign, id=f"{entry}-{dtype}-misalign{misalign}")
    for entry in ENTRY_POINTS
    for dtype in (">f4", ">f8")
    for misalign in (0, 1)
    if not (entry in ("dropout", "dropout_inplace") and misalign == 0)
]


@pytest.mark.skipif(sys.byteorder != "little", reason="'>' is the native order on this host")
@pytest.mark.parametrize("entry,dtype,misalign", NON_NATIVE_CASES)
def test_non_native_byte_order_every_entry_point(entry, dtype, misalign):
    # Either a correct result (values bit-equal to the oracle on a native copy) or a
    # TypeError/ValueError that says what is wrong; nothing written in either case.
    rng = np.random.default_rng(zlib.crc32(f"{entry}{dtype}{misalign}".encode()))
    shape = (4, 9)
    xbuf, x = _raw(dtype, shape, misalign, rng)
    obuf, out = _raw(dtype, shape, misalign, rng)
    x_native = x.astype(np.dtype(dtype).newbyteorder("="))
    xbuf0, obuf0 = xbuf.copy(), obuf.copy()
    try:
        result, target = _call(entry, x, out, 0.37, 5)
    except (TypeError, ValueError) as exc:
        assert re.search(r"byte order|" + re.escape(np.dtype(dtype).str), str(exc)), str(exc)
        assert_unchanged(xbuf0, xbuf, f"{entry} (refused)")
        assert_unchanged(obuf0, obuf, f"{entry} (refused)")
        return
    # accepted: only the identity entry points may get here, and they must be right
    assert_bits_equal(np.asarray(result).astype(x_native.dtype),
                      _expected(entry, x_native, 0.37, 5), entry)
    if target is None:
        assert_unchanged(xbuf0, xbuf, entry)


@pytest.mark.skipif(sys.byteorder != "little", reason="'>' is the native order on this host")
@pytest.mark.parametrize("misalign", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_native_out_for_native_x(dtype, misalign):
    rng = np.random.default_rng(11)
    xbuf, x = _raw(dtype, (3, 5), 0, rng)
    obuf, out = _raw(np.dtype(dtype).newbyteorder(">"), (3, 5), misalign, rng)
    xbuf0, obuf0 = xbuf.copy(), obuf.copy()
    for training in (True, False):
        with pytest.raises(TypeError, match=r"\bout\b.*dtype"):
            cdrop.dropout(x, 0.5, training, seed=1, out=out)
        assert_unchanged(xbuf0, xbuf, "x")
        assert_unchanged(obuf0, obuf, "out")


@pytest.mark.parametrize("dtype", ["<i8", ">i8", ">i4"])
def test_mask_shape_from_misaligned_or_byte_swapped_int_array(dtype):
    # dropout_mask's `shape` may be a 1-d integer array; its byte order and alignment must not
    # matter
    buf = np.zeros(GUARD + 1 + 2 * np.dtype(dtype).itemsize, dtype=np.uint8)
    dims = np.ndarray((2,), dtype, buffer=buf, offset=GUARD + 1)
    dims[...] = (3, 50)
    assert not dims.flags.aligned
    m = cdrop.dropout_mask(dims, 0.5, seed=4)
    assert m.shape == (3, 50)
    assert np.array_equal(m, reference.keep_mask((3, 50), 0.5, 4))
