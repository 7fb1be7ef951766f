"""Fuzzing the public entry points with arguments of every type and value.

For each argument position of ``dropout``, ``dropout_mask``, ``Dropout(...)``,
``Dropout.forward``, ``Dropout.backward``, the ``Dropout.p`` setter, ``manual_seed``,
``set_num_threads`` and the dropout family's functions (``drop_path``, ``alpha_dropout``,
``gaussian_dropout``, ``gaussian_noise``, ``dropout_add``, ``dropout``'s ``noise_shape``),
one argument is replaced by a value drawn from ``JUNK`` (ints of any size
and sign, floats with NaN/Inf, bools, strings, bytes, None, lists (ragged ones too), tuples,
dicts, numpy scalars and arrays of many dtypes and shapes, Generators, Fractions, Decimals,
types, objects whose ``__index__``/``__float__``/``__bool__``/``__array__``/``__len__`` raise or
return nonsense, ...) while the other arguments stay valid.  ``test_fixed_values`` also tries a
fixed list of such values at every position, so that no kind of value depends on what
Hypothesis happens to draw.  The contract checked:

* A failure is a ``TypeError`` or ``ValueError`` whose message names the argument, as a word
  (``ARG_WORDS`` lists the words, taken from cdrop's own messages; "inplace=True needs a
  numpy.ndarray" counts as naming x, and naming ``manual_seed`` names its only parameter).
  The one other exception allowed is ``Boom``: raised by the test's own objects from their
  dunder methods, it is the caller's own error, and propagating it unchanged is what Python
  itself does (``operator.index``, ``float()``).  Warnings count as failures too (pyproject
  turns them into errors anyway).
* After a failure nothing changed: the arrays and containers passed in (byte for byte, flags
  included), Generators passed in, as the fuzzed value or as the seed of a call whose other
  argument is bad (their state), ``cdrop.get_num_threads()``, the package seed stream (the next
  ``seed=None`` draw equals the one without the failed call), and a ``Dropout`` layer (its
  backward and its next forward are those it would have had).
* A call that succeeds gives a sane result: the right type, shape and dtype, and the same bits
  as the oracle (tests/reference.py) for the canonical form of the argument (``float(p)``,
  ``operator.index(seed)``, ``bool(flag)``, one 64-bit draw from a Generator, ...).  So an
  argument that is silently misread (an ``__index__`` returning 1.5 taken as 1, say) fails.
  Flags (``training``, ``inplace``, ``packed``) may be anything with a truth value.
* Shapes that are valid for the stream (at most 2**64 elements) but beyond what numpy can
  allocate or represent (more than 64 axes, a dimension >= 2**63, petabytes) are not drawn by
  the fuzzer; test_dropout_mask_unallocatable_shapes accepts numpy's own ValueError or a
  MemoryError for them.

Hypothesis runs derandomized with a bounded number of examples per argument position (and
without shrinking, see the profile), so each run tries the same inputs; every call is on at most a
few dozen elements, so the file costs seconds.
"""
import copy
import decimal
import fractions
import math
import numbers
import operator
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cdrop
import reference
from helpers import MODES, assert_bits_equal, mode_kwargs

U64 = 1 << 64
N = 10  # elements of the valid arrays the fuzzed calls get
STREAM_SEED = 0x5EED  # the package stream is reset to this before each call
THREADS = 3  # the default thread count set before each call (not the machine's)

settings.register_profile(
    "cdrop-fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    # JUNK builds numpy arrays of arbitrary dtypes; drawing those is sometimes slow, never big
    suppress_health_check=[HealthCheck.too_slow],
    # No "shrink" and "explain" phases: while a bug is open they rerun each failing test
    # hundreds of times (twice this file's CPU time), and test_fixed_values already reports
    # every bad value of its list with a one-line reproduction.  Add Phase.shrink locally to
    # minimise a new failing example.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
PROFILE = settings.get_profile("cdrop-fuzz")

# Which words a message must contain (as words) to name each argument.
ARG_WORDS = {
    # with inplace=True, "inplace=True needs a numpy.ndarray, got list" says what is wrong with x
    "x": r"\bx\b|inplace=True needs a numpy\.ndarray",
    "p": r"\bp\b",
    "training": r"\btraining\b",
    "inplace": r"\binplace\b",
    "out": r"\bout\b",
    "seed": r"\bseed\b",
    "offset": r"\boffset\b",
    "num_threads": r"\bnum_threads\b",
    "shape": r"\bshape\b|\bsize\b",  # "offset + size must be <= 2**64 ..." is about the shape
    "packed": r"\bpacked\b",
    "grad": r"\bgrad\b",
    "n": r"\bn\b",  # set_num_threads(n)
    # manual_seed has one parameter, `seed`; naming the function names it as well
    "manual_seed": r"\bseed\b|\bmanual_seed\b",
    # the dropout family (issue 11)
    "noise_shape": r"\bnoise_shape\b",
    "stddev": r"\bstddev\b",
    "residual": r"\bresidual\b",
    "bias": r"\bbias\b",
    "scale_by_keep": r"\bscale_by_keep\b",
}


# ---------------------------------------------------------------------------------------------
# Junk
# ---------------------------------------------------------------------------------------------
class Boom(Exception):
    """Raised by the dunder methods of the objects below: the caller's own error."""


class _Weird:
    def __init__(self, label):
        self.label = label

    def __repr__(self):
        return f"<{type(self).__name__} {self.label}>"


class RaisingEverything(_Weird):
    """Every conversion raises Boom."""

    def __index__(self):
        raise Boom("__index__")

    def __int__(self):
        raise Boom("__int__")

    def __float__(self):
        raise Boom("__float__")

    def __bool__(self):
        raise Boom("__bool__")

    def __len__(self):
        raise Boom("__len__")

    def __iter__(self):
        raise Boom("__iter__")

    def __array__(self, dtype=None, copy=None):
        raise Boom("__array__")


class IndexReturns(_Weird):
    """``__index__`` returns something that is not an int (Python's operator.index refuses
    that with a TypeError)."""

    def __init__(self, value):
        super().__init__(repr(value))
        self.value = value

    def __index__(self):
        return self.value


class IndexRaises(_Weird):
    def __index__(self):
        raise Boom("__index__")


class FloatRaises(_Weird):
    def __float__(self):
        raise Boom("__float__")


class BoolRaises(_Weird):
    def __bool__(self):
        raise Boom("__bool__")


class ArrayRaises(_Weird):
    def __array__(self, dtype=None, copy=None):
        raise Boom("__array__")


class SequenceRaises(_Weird):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        raise Boom("__getitem__")


class RealWithRaisingFloat(_Weird):
    """Claims to be a numbers.Real, but float() raises."""

    def __float__(self):
        raise Boom("__float__")


class RealWithStrFloat(_Weird):
    """Claims to be a numbers.Real, but __float__ returns a str."""

    def __float__(self):
        return "0.5"


numbers.Real.register(RealWithRaisingFloat)
numbers.Real.register(RealWithStrFloat)


class FloatSubclassRaising(float):
    def __float__(self):
        raise Boom("__float__")


class IntSubclass(int):
    pass


# (label, factory): fresh objects per call, since in-place calls may modify arrays
WEIRD_FACTORIES = [(repr(w), (lambda w=w: w)) for w in [
    RaisingEverything("all"), IndexRaises("i"), FloatRaises("f"), BoolRaises("b"),
    ArrayRaises("a"), SequenceRaises("s"), RealWithRaisingFloat("r"), RealWithStrFloat("rs"),
    FloatSubclassRaising(0.5), IntSubclass(3), IntSubclass(-3),
    IndexReturns(1.5), IndexReturns("3"), IndexReturns(None), IndexReturns(2**70),
    IndexReturns(-1), IndexReturns(np.float64(2.0)), IndexReturns(3),
    object(), Ellipsis, slice(1, 2), range(3), int, float, np.float32, len,
    np.random.RandomState(0), np.ma.masked, memoryview(b"abcdefgh"), frozenset({1}), {1, 2},
    1 + 2j,
]] + [
    ("bytearray(b'ab')", lambda: bytearray(b"ab")),
    ("structured zeros(N)", lambda: np.zeros(N, dtype=[("a", "f8")])),
    ("void zeros(N)", lambda: np.zeros(N, dtype="V8")),
    ("masked_array(ones(N))", lambda: np.ma.masked_array(np.ones(N))),
]
WEIRD = st.sampled_from(WEIRD_FACTORIES).map(lambda labelled: labelled[1]())

INTS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-5, 70),
    st.sampled_from([0, 1, 2, -1, 2**31, 2**32, 2**63 - 1, 2**63, U64 - 1, U64, -(2**63) - 1,
                     10**400, -(10**400)]),
)
FLOATS = st.one_of(st.floats(), st.floats(0, 1), st.sampled_from(
    [-0.0, 0.0, 1.0, 0.5, 5e-324, 1e308, float("nan"), float("inf"), -float("inf"),
     1.0000000000000002, -1e-300]))

NUMPY_SCALAR_DTYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8",
                       "g", "c8", "c16", ">f4", ">f8", ">i8", "M8[s]", "m8[s]", "U3", "S3"]
NUMPY_SCALARS = st.sampled_from(NUMPY_SCALAR_DTYPES).flatmap(
    lambda d: hnp.from_dtype(np.dtype(d)))

ARRAY_DTYPES = st.one_of(hnp.scalar_dtypes(),
                         st.sampled_from([">f4", ">f8", "<f4", "<f8", "f2", "g"]).map(np.dtype))


SMALL_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def arrays(shape=SMALL_SHAPES):
    return st.one_of(
        hnp.arrays(ARRAY_DTYPES, shape),
        hnp.arrays(np.dtype(object), shape, elements=st.one_of(st.none(), st.floats(), INTS)),
    )


SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, st.complex_numbers(),
                    st.text(max_size=4), st.binary(max_size=4), NUMPY_SCALARS, WEIRD,
                    st.fractions(), st.decimals(),
                    # (not list/dict: resolving their element type walks every known type)
                    st.sampled_from([int, float, str, bytes, bool, complex, fractions.Fraction,
                                     decimal.Decimal, range, slice]).flatmap(st.from_type))

JUNK = st.one_of(
    SCALARS,
    arrays(),
    arrays(st.just((N,))),  # the right shape for x, out and grad; any dtype
    st.lists(st.one_of(FLOATS, INTS), max_size=N + 1),
    st.tuples(INTS, INTS),
    st.lists(st.lists(FLOATS, max_size=3), max_size=3),  # often ragged
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=2), INTS), SCALARS, max_size=3),
    st.builds(np.random.default_rng, st.integers(0, 2**32)),
)


# ---------------------------------------------------------------------------------------------
# Snapshots of everything a failing call must leave alone
# ---------------------------------------------------------------------------------------------
def snap(v, depth=0):
    """A comparable picture of `v`: arrays byte for byte, containers recursively,
    Generators by their state."""
    if isinstance(v, np.ndarray):
        # np.ndarray.tobytes: the raw data also of subclasses (a masked array's own tobytes
        # fills masked elements first)
        data = (np.ndarray.tobytes(v) if v.dtype != object
                else tuple(id(e) for e in np.asarray(v).ravel()))
        return ("ndarray", v.dtype.str, v.shape, v.strides, v.flags.writeable, data)
    if isinstance(v, np.random.Generator):
        return ("Generator", repr(v.bit_generator.state))
    if depth < 4 and isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(snap(e, depth + 1) for e in v))
    if depth < 4 and isinstance(v, dict):
        return ("dict", tuple((repr(k), snap(e, depth + 1)) for k, e in v.items()))
    if isinstance(v, (bytearray, set)):
        return (type(v).__name__, repr(v))
    return ("id", id(v))


def _stream_mask(k):
    """The package stream's draw number `k` after manual_seed(STREAM_SEED): its mask."""
    return reference.keep_mask(128, 0.5, reference.derive(STREAM_SEED, k))


class Env:
    """Global state set before a call, and the checks after it."""

    def __init__(self, *watched):
        self.watched = watched
        self.before = [snap(w) for w in watched]
        cdrop.set_num_threads(THREADS)
        cdrop.manual_seed(STREAM_SEED)
        cdrop.dropout_mask(8, 0.5, seed=None)  # draw number 0: the stream is at number 1

    def check_stream(self, advanced=0, what="package seed stream"):
        m = cdrop.dropout_mask(128, 0.5, seed=None)
        assert np.array_equal(m, _stream_mask(1 + advanced)), what

    def check_unchanged(self, what):
        for w, b in zip(self.watched, self.before):
            assert snap(w) == b, f"{what}: an argument was modified: {w!r}"[:500]
        assert cdrop.get_num_threads() == THREADS, f"{what}: get_num_threads() changed"
        self.check_stream(0, f"{what}: the package seed stream moved")


def attempt(call, arg, env, what):
    """Run `call`; on an allowed failure check the invariants and return (False, exc);
    on success return (True, result).  Any other exception fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning is not an acceptable answer either
            result = call()
    except Boom as exc:
        env.check_unchanged(what)
        return False, exc
    except (TypeError, ValueError) as exc:
        assert re.search(ARG_WORDS[arg], str(exc)), (
            f"{what}: {type(exc).__name__}({str(exc)!r}) does not name the argument "
            f"{arg!r} (pattern {ARG_WORDS[arg]!r})")
        env.check_unchanged(what)
        return False, exc
    return True, result


def index_or_none(v):
    """operator.index(v) for a non-bool int-like, else None (how cdrop should read ints)."""
    if isinstance(v, (bool, np.bool_)):
        return None
    try:
        return operator.index(v)
    except Exception:
        return None


def real_or_none(v):
    """float(v) for a non-bool numbers.Real, else None."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return None
    try:
        return float(v)
    except Exception:
        return None


def twin_of(seed):
    """A copy, taken before the call, of a Generator passed as the seed (else None)."""
    return copy.deepcopy(seed) if isinstance(seed, np.random.Generator) else None


def expected_seed(seed, twin, what):
    """The 64-bit seed a successful call must have used."""
    if seed is None:  # the package stream: its draw number 1 (Env drew number 0)
        return reference.derive(STREAM_SEED, 1)
    if twin is not None:  # one 64-bit draw from the Generator (the docstrings)
        return int(twin.integers(0, U64, dtype=np.uint64))
    s = index_or_none(seed)
    assert s is not None and 0 <= s < U64, f"{what}: accepted seed {seed!r}"
    return s


GEN_SEED = 99  # Generators passed as the (valid) seed are np.random.default_rng(GEN_SEED)


def _valid_x(dtype=np.float64):
    """N valid elements as a view into a larger parent (the parent is watched too)."""
    parent = np.random.default_rng(3).standard_normal(N + 4).astype(dtype)
    return parent, parent[2:2 + N]


class XView:
    """For out=: an array over (part of) x's own memory, resolved once x exists."""

    def __init__(self, how):
        self.how = how

    def __repr__(self):
        return f"XView({self.how!r})"

    def resolve(self, parent, x):
        if self.how == "x":
            return x
        if self.how == "same":
            return x[:]
        if self.how == "reversed":
            return x[::-1]
        if self.how == "shift-left":
            return parent[1:1 + N]
        if self.how == "shift-right":
            return parent[3:3 + N]
        if self.how == "zero-stride":
            return np.lib.stride_tricks.as_strided(x, shape=(N,), strides=(0,))
        if self.how == "read-only":
            v = x[:]
            v.setflags(write=False)
            return v
        assert self.how == "as-float32"
        return parent.view(np.float32)[4:4 + N]


X_VIEWS = st.sampled_from([XView(h) for h in ("x", "same", "reversed", "shift-left",
                                               "shift-right", "zero-stride", "read-only",
                                               "as-float32")])


# ---------------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------------
DROPOUT_ARGS = ["x", "p", "training", "inplace", "out", "seed", "offset", "num_threads"]
def _array_copy(v):
    """np.array(v) copied before a call (None if v is no array-like)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.array(v, copy=True)
    except Exception:
        return None


def _fuzz_dropout(arg, mode, v, gen=False):
    parent, x = _valid_x()
    kwargs = {"p": 0.5, "seed": np.random.default_rng(GEN_SEED) if gen else 12345}
    kwargs.update(mode_kwargs(mode, x))
    if arg == "x":
        x = v
        if mode == "out":
            kwargs["out"] = np.full(np.shape(v) if _has_plain_shape(v) else (N,), 9.0)
    elif isinstance(v, XView):
        kwargs[arg] = v.resolve(parent, x)
    else:
        kwargs[arg] = v
    x_before = _array_copy(x)
    twin = twin_of(kwargs["seed"])
    env = Env(parent, v, *kwargs.values(), x)
    what = f"dropout({arg}={v!r}, mode={mode}{', Generator seed' if gen else ''})"
    ok, r = attempt(lambda: cdrop.dropout(x, **kwargs), arg, env, what)
    if not ok:
        return
    # success: the result is what the canonical arguments give
    training = bool(kwargs.get("training", True))
    inplace = bool(kwargs.get("inplace", False))
    out = kwargs.get("out")
    p = real_or_none(kwargs["p"])
    assert p is not None and 0.0 <= p <= 1.0, f"{what}: accepted a p that is no probability"
    seed = kwargs["seed"]
    seed_int = expected_seed(seed, twin, what)
    offset = index_or_none(kwargs.get("offset", 0))
    assert offset is not None and 0 <= offset <= U64 - np.size(x_before), \
        f"{what}: accepted offset {kwargs.get('offset')!r}"
    if kwargs.get("num_threads") is not None:
        nt = index_or_none(kwargs["num_threads"])
        assert nt is not None and nt >= 1, f"{what}: accepted num_threads {kwargs['num_threads']!r}"
    assert isinstance(r, np.ndarray) and r.shape == x_before.shape, what
    assert r.dtype in (np.float16, np.float32, np.float64) and r.dtype == x_before.dtype, what
    if out is not None:
        assert r is out, f"{what}: out= given but not returned"
    elif isinstance(x, np.ndarray) and (inplace or not training):
        assert r is x, f"{what}: x itself not returned"
    if not training:
        assert_bits_equal(r, x_before, f"{what}: training=False is the identity")
    else:
        assert_bits_equal(r, reference.dropout_ref(x_before, p, seed_int, offset), what)
    x_is_target = inplace or (out is not None and np.may_share_memory(out, x))
    if not x_is_target:
        assert_bits_equal(x, x_before, f"{what}: an out-of-place call changed x")
    assert cdrop.get_num_threads() == THREADS
    env.check_stream(1 if (seed is None and training) else 0, f"{what}: stream")


def _has_plain_shape(v):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.shape(v)
        return True
    except Exception:
        return False


def check_dropout(arg, v, mode="out_of_place", gen=False):
    if arg == "inplace" and mode == "inplace" or arg == "training" and mode == "eval":
        mode = "out_of_place"  # the fuzzed value replaces the mode's own setting
    _fuzz_dropout(arg, mode, v, gen and arg != "seed")


@PROFILE
@given(v=JUNK, mode=st.sampled_from(MODES), gen=st.booleans())
@pytest.mark.parametrize("arg", DROPOUT_ARGS)
def test_dropout(arg, v, mode, gen):
    check_dropout(arg, v, mode, gen)


@PROFILE
@given(v=X_VIEWS, mode=st.sampled_from(["out_of_place", "inplace", "eval"]))
def test_dropout_out_over_x(v, mode):
    # out= over x's own memory: the same elements (in place), reversed, shifted by one
    # element, a zero stride, read-only, reinterpreted: works correctly or refused cleanly
    _fuzz_dropout("out", mode, v)


# ---------------------------------------------------------------------------------------------
# dropout_mask
# ---------------------------------------------------------------------------------------------
SHAPE_JUNK = st.one_of(
    JUNK,
    st.lists(st.one_of(st.integers(-3, 12), INTS), max_size=4),
    st.lists(st.one_of(st.integers(0, 12), SCALARS), max_size=3).map(tuple),
    st.integers(0, 70).map(lambda k: (1,) * k),  # up to 70 axes
    hnp.arrays(hnp.integer_dtypes(endianness="?"), hnp.array_shapes(min_dims=0, max_dims=2,
                                                                    max_side=3),
               elements=st.integers(0, 5)),
)


def _shape_of(v):
    """The shape cdrop should read from `v`, or None if `v` is no shape."""
    n = index_or_none(v)
    if n is not None:
        return (n,) if n >= 0 else None
    if isinstance(v, (bool, np.bool_)):
        return None
    try:
        dims = tuple(operator.index(d) for d in v if not isinstance(d, (bool, np.bool_)))
        if len(dims) != len(tuple(v)):
            return None
    except Exception:
        return None
    return dims if all(d >= 0 for d in dims) else None


def check_mask_shape(v, packed=False):
    shape = _shape_of(v)
    if shape is not None and math.prod(shape) > U64:
        shape = None  # more elements than the stream has indices
    if shape is not None:
        # Valid shapes of more than 10**6 elements (up to the stream's 2**64) would allocate
        # gigabytes or hit numpy's own limits (dimensions >= 2**63, more than 64 axes):
        # test_dropout_mask_unallocatable_shapes has those.
        size = math.prod(shape)
        if not (size > U64 or (size <= 10**6 and all(d < 2**63 for d in shape)
                               and (packed or len(shape) <= 64))):
            return "skip"
    env = Env(v)
    what = f"dropout_mask({v!r}, packed={packed})"
    ok, m = attempt(lambda: cdrop.dropout_mask(v, 0.5, seed=77, packed=packed), "shape", env,
                    what)
    if not ok:
        return
    assert shape is not None, f"{what}: accepted a shape that is not a shape"
    ref = reference.keep_mask(shape, 0.5, 77)
    if packed:
        assert m.dtype == np.uint8 and m.shape == ((ref.size + 7) // 8,)
        assert np.array_equal(m, np.packbits(ref.ravel(), bitorder="little")), what
    else:
        assert m.dtype == np.bool_ and m.shape == shape, what
        assert np.array_equal(m, ref), what
    env.check_stream(0, what)


MASK_ARGS = ["p", "seed", "offset", "packed", "num_threads"]


def check_mask_argument(arg, v, gen=False):
    seed = np.random.default_rng(GEN_SEED) if gen else 77
    kwargs = {"p": 0.5, "seed": seed, "offset": 0, "packed": False, "num_threads": None}
    kwargs[arg] = v
    twin = twin_of(kwargs["seed"])
    env = Env(v, kwargs["seed"])
    what = f"dropout_mask({N}, {arg}={v!r})"
    ok, m = attempt(lambda: cdrop.dropout_mask(N, **kwargs), arg, env, what)
    if not ok:
        return
    p = real_or_none(kwargs["p"])
    assert p is not None and 0 <= p <= 1, f"{what}: accepted p"
    offset = index_or_none(kwargs["offset"])
    assert offset is not None and 0 <= offset <= U64 - N, f"{what}: accepted offset"
    if kwargs["num_threads"] is not None:
        nt = index_or_none(kwargs["num_threads"])
        assert nt is not None and nt >= 1, f"{what}: accepted num_threads"
    seed = kwargs["seed"]
    seed_int = expected_seed(seed, twin, what)
    packed = bool(kwargs["packed"])
    assert m.dtype == (np.uint8 if packed else np.bool_)
    assert m.shape == (((N + 7) // 8,) if packed else (N,))
    ref = reference.keep_mask(N, p, seed_int, offset)
    expected = np.packbits(ref, bitorder="little") if packed else ref
    assert np.array_equal(m, expected), what
    env.check_stream(1 if seed is None else 0, what)


def test_dropout_mask_unallocatable_shapes():
    # Valid shapes (size <= 2**64) that numpy cannot allocate, or with more axes than numpy
    # has: an error (ValueError, or MemoryError for what is simply too big), nothing else
    # changed, and no crash.
    for shape, packed in [(2**63, False), (2**62, False), (2**62, True), ((2**32, 2**31), False),
                          ((0, 2**70), False), ((0, 2**63), False), ((1,) * 65, False)]:
        env = Env()
        with pytest.raises((ValueError, MemoryError)):
            cdrop.dropout_mask(shape, 0.5, seed=1, packed=packed)
        env.check_unchanged(f"dropout_mask({shape}, packed={packed})")


# ---------------------------------------------------------------------------------------------
# Dropout: constructor, p setter, forward, backward
# ---------------------------------------------------------------------------------------------
LAYER_SEED = 4242


def _layer_probe():
    return np.linspace(-1.0, 1.0, N)


def _check_layer_intact(layer, what, *, p=0.5, calls=1, inplace=False, training=True):
    """The layer's state after `calls` training forwards of _layer_probe(): its settings, its
    backward (the last forward's mask) and its next forward (call number `calls`)."""
    assert layer.p == p and layer.inplace is inplace and layer.training is training, what
    probe = _layer_probe()
    back = reference.dropout_ref(probe, p, reference.derive(LAYER_SEED, calls - 1))
    fwd = reference.dropout_ref(probe, p, reference.derive(LAYER_SEED, calls))
    assert_bits_equal(layer.backward(probe), back, f"{what}: backward after the failed call")
    assert_bits_equal(layer(probe), fwd, f"{what}: next forward after the failed call")


def check_layer_constructor(arg, v, gen=False):
    seed = np.random.default_rng(GEN_SEED) if gen else LAYER_SEED
    kwargs = {"p": 0.5, "inplace": False, "seed": seed}
    kwargs[arg] = v
    twin = twin_of(kwargs["seed"])
    env = Env(v, kwargs["seed"])
    what = f"Dropout({arg}={v!r})"
    ok, layer = attempt(lambda: cdrop.Dropout(**kwargs), arg, env, what)
    if not ok:
        return
    assert isinstance(layer, cdrop.Dropout)
    p = real_or_none(kwargs["p"])
    assert p is not None and 0 <= p <= 1 and type(layer.p) is float and layer.p == p, what
    assert layer.inplace is bool(kwargs["inplace"])
    seed = kwargs["seed"]
    seed_int = expected_seed(seed, twin, what)
    env.check_stream(1 if seed is None else 0, what)
    probe = _layer_probe()
    assert_bits_equal(layer(probe.copy()),
                      reference.dropout_ref(probe, p, reference.derive(seed_int, 0)), what)


def check_layer_p_setter(v):
    layer = cdrop.Dropout(0.5, seed=LAYER_SEED)
    layer(_layer_probe())
    env = Env(v)
    what = f"layer.p = {v!r}"

    def set_p():
        layer.p = v

    ok, _ = attempt(set_p, "p", env, what)
    if not ok:
        _check_layer_intact(layer, what)
        return
    p = real_or_none(v)
    assert p is not None and 0 <= p <= 1, f"{what}: accepted"
    assert type(layer.p) is float and layer.p == p, what


def check_layer_forward(v, inplace=False, training=True):
    layer = cdrop.Dropout(0.5, seed=LAYER_SEED, inplace=inplace)
    layer(_layer_probe())
    layer.train(training)
    v_before = snap(v)
    x_before = _array_copy(v)
    env = Env(v)
    what = f"Dropout(inplace={inplace}).train({training}).forward({v!r})"
    ok, y = attempt(lambda: layer(v), "x", env, what)
    if not ok:
        layer.train(True)
        _check_layer_intact(layer, what, inplace=inplace)
        return
    xa = x_before
    assert isinstance(y, np.ndarray) and y.shape == xa.shape and y.dtype == xa.dtype, what
    assert y.dtype in (np.float16, np.float32, np.float64), what
    if isinstance(v, np.ndarray) and (inplace or not training):
        assert y is v, f"{what}: x itself not returned"
    if not training:
        assert_bits_equal(y, xa, f"{what}: evaluation is the identity")
    else:
        assert_bits_equal(y, reference.dropout_ref(xa, 0.5, reference.derive(LAYER_SEED, 1)),
                          what)
    if not (training and inplace):
        assert snap(v) == v_before, f"{what}: changed x"


def check_layer_backward(v, training=True):
    layer = cdrop.Dropout(0.5, seed=LAYER_SEED)
    layer(_layer_probe())
    layer.train(training)
    v_before = snap(v)
    env = Env(v)
    what = f"Dropout().train({training}).backward({v!r})"
    ok, g = attempt(lambda: layer.backward(v), "grad", env, what)
    if not ok:
        layer.train(True)
        _check_layer_intact(layer, what)
        return
    assert snap(v) == v_before, f"{what}: backward changed grad"
    if not training:
        assert g is v, f"{what}: evaluation-mode backward is the identity"
        return
    ga = np.asarray(v)
    assert isinstance(g, np.ndarray) and g.shape == (N,) and g.dtype == ga.dtype, what
    assert_bits_equal(g, reference.dropout_ref(ga, 0.5, reference.derive(LAYER_SEED, 0)), what)


# ---------------------------------------------------------------------------------------------
# manual_seed, set_num_threads
# ---------------------------------------------------------------------------------------------
def check_manual_seed(v):
    env = Env(v)
    what = f"manual_seed({v!r})"
    ok, _ = attempt(lambda: cdrop.manual_seed(v), "manual_seed", env, what)
    if not ok:
        return
    s = index_or_none(v)
    assert s is not None and 0 <= s < U64, f"{what}: accepted"
    m = cdrop.dropout_mask(128, 0.5, seed=None)
    assert np.array_equal(m, reference.keep_mask(128, 0.5, reference.derive(s, 0))), what


def check_set_num_threads(v):
    env = Env(v)
    what = f"set_num_threads({v!r})"
    ok, _ = attempt(lambda: cdrop.set_num_threads(v), "n", env, what)
    if not ok:
        return
    got = cdrop.get_num_threads()
    assert type(got) is int and got >= 1, f"{what}: get_num_threads() == {got!r}"
    if v is not None:
        n = index_or_none(v)
        assert n is not None and n >= 1, f"{what}: accepted"
        assert got == min(n, 1 << 16), what
    # and the setting works
    x = _layer_probe()
    assert_bits_equal(cdrop.dropout(x, 0.5, seed=1), reference.dropout_ref(x, 0.5, 1), what)


# ---------------------------------------------------------------------------------------------
# The Hypothesis fuzz tests
# ---------------------------------------------------------------------------------------------
@PROFILE
@given(v=SHAPE_JUNK, packed=st.booleans())
def test_dropout_mask_shape(v, packed):
    assume(check_mask_shape(v, packed) != "skip")


@PROFILE
@given(v=JUNK, gen=st.booleans())
@pytest.mark.parametrize("arg", MASK_ARGS)
def test_dropout_mask_arguments(arg, v, gen):
    check_mask_argument(arg, v, gen and arg != "seed")


@PROFILE
@given(v=JUNK, gen=st.booleans())
@pytest.mark.parametrize("arg", ["p", "inplace", "seed"])
def test_dropout_layer_constructor(arg, v, gen):
    check_layer_constructor(arg, v, gen and arg != "seed")


@PROFILE
@given(v=JUNK)
def test_dropout_layer_p_setter(v):
    check_layer_p_setter(v)


@PROFILE
@given(v=JUNK, inplace=st.booleans(), training=st.booleans())
def test_dropout_layer_forward(v, inplace, training):
    check_layer_forward(v, inplace, training)


@PROFILE
@given(v=JUNK, training=st.booleans())
def test_dropout_layer_backward(v, training):
    check_layer_backward(v, training)


@PROFILE
@given(v=JUNK)
def test_manual_seed(v):
    check_manual_seed(v)


@PROFILE
@given(v=JUNK)
def test_set_num_threads(v):
    check_set_num_threads(v)


# ---------------------------------------------------------------------------------------------
# The dropout family (issue 11): every argument of every new function
# ---------------------------------------------------------------------------------------------
# function -> (its arguments, valid keyword arguments besides x)
FAMILY = {
    "drop_path": (["x", "p", "training", "scale_by_keep", "inplace", "seed", "offset",
                   "num_threads"], {"p": 0.5}),
    "alpha_dropout": (["x", "p", "training", "inplace", "out", "seed", "offset", "num_threads"],
                      {"p": 0.5}),
    "gaussian_dropout": (["x", "p", "training", "inplace", "out", "seed", "offset",
                          "num_threads"], {"p": 0.5}),
    "gaussian_noise": (["x", "stddev", "training", "inplace", "out", "seed", "offset",
                        "num_threads"], {"stddev": 0.5}),
    "dropout_add": (["x", "residual", "p", "training", "bias", "out", "seed", "offset",
                     "num_threads"], {"residual": None, "p": 0.5}),
    "dropout": (["noise_shape"], {"p": 0.5, "noise_shape": (None,)}),
}
FAMILY_CASES = [(fn, a) for fn, (args, _) in FAMILY.items() for a in args]


def _canonical(arg, v, twin):
    """How cdrop must have read an accepted value of `arg` (None: refuse it in the test)."""
    if arg in ("p", "stddev"):
        return real_or_none(v)
    if arg in ("offset", "num_threads"):
        return index_or_none(v)
    if arg in ("training", "inplace", "scale_by_keep"):
        return bool(v)
    if arg == "seed":
        return expected_seed(v, twin, "seed")
    if arg == "noise_shape":
        return tuple(None if d is None else index_or_none(d) for d in v)
    return v


def check_family(fn, arg, v):
    parent, x = _valid_x()
    rparent, residual = _valid_x()
    residual = residual * 0 + 1.0
    _, defaults = FAMILY[fn]
    kwargs = {k: (residual if k == "residual" else val) for k, val in defaults.items()}
    kwargs["seed"] = 12345
    if arg == "x":
        x = v
    else:
        kwargs[arg] = v
    x_before = _array_copy(x)
    twin = twin_of(kwargs["seed"])
    env = Env(parent, rparent, v, *kwargs.values(), x)
    what = f"{fn}({arg}={v!r})"
    ok, r = attempt(lambda: getattr(cdrop, fn)(x, **kwargs), arg, env, what)
    if not ok:
        return
    assert isinstance(r, np.ndarray) and r.shape == x_before.shape, what
    assert r.dtype == x_before.dtype, what
    # the same call with the canonical reading of the accepted value, on copies
    canon = dict(kwargs)
    if arg not in ("x", "out", "residual", "bias") and (v is not None or arg == "seed"):
        canon[arg] = _canonical(arg, v, twin)
        assert canon[arg] is not None, f"{what}: accepted a value it cannot have read"
    canon.pop("out", None)
    canon.pop("inplace", None)
    if "residual" in canon and arg != "residual":
        canon["residual"] = residual
    again = getattr(cdrop, fn)(np.array(x_before, copy=True), **canon)
    assert_bits_equal(r, again, f"{what}: differs from the canonical call")


@PROFILE
@given(v=JUNK)
@pytest.mark.parametrize("fn,arg", FAMILY_CASES, ids=[f"{f}-{a}" for f, a in FAMILY_CASES])
def test_family(fn, arg, v):
    check_family(fn, arg, v)


# ---------------------------------------------------------------------------------------------
# Every argument position against a fixed list of values
# ---------------------------------------------------------------------------------------------
# Hypothesis draws a few hundred values per position; these are tried at every position,
# always, so that no kind of value depends on what Hypothesis happens to draw.  Factories,
# because calls may legitimately modify (in place) or consume (Generators) their arguments.
FIXED_VALUES = [
    ("None", lambda: None), ("True", lambda: True), ("False", lambda: False),
    ("0", lambda: 0), ("1", lambda: 1), ("-1", lambda: -1), ("2**64", lambda: U64),
    ("2**64-1", lambda: U64 - 1), ("10**400", lambda: 10**400), ("-10**400", lambda: -(10**400)),
    ("0.5", lambda: 0.5), ("1.5", lambda: 1.5), ("nan", lambda: float("nan")),
    ("inf", lambda: float("inf")), ("-0.0", lambda: -0.0), ("1+2j", lambda: 1 + 2j),
    ("'1'", lambda: "1"), ("b'1'", lambda: b"1"), ("[0.5]*N", lambda: [0.5] * N),
    ("[1]*N", lambda: [1] * N), ("ragged", lambda: [[1.0], [1.0, 2.0]]), ("(1, 2)", lambda: (1, 2)),
    ("{}", lambda: {}), ("{3: 1}", lambda: {3: 1}),
    ("np.array(1)", lambda: np.array(1)), ("np.array(0.5)", lambda: np.array(0.5)),
    ("np.array([1, 2])", lambda: np.array([1, 2])), ("np.array([])", lambda: np.array([])),
    ("np.zeros(N)", lambda: np.zeros(N)), ("np.zeros(N, f4)", lambda: np.zeros(N, np.float32)),
    ("np.arange(N)", lambda: np.arange(N)), ("np.zeros(N, >f8)", lambda: np.zeros(N, ">f8")),
    ("np.zeros(N, f2)", lambda: np.zeros(N, np.float16)),
    ("np.zeros(N, object)", lambda: np.zeros(N, object)),
    ("np.zeros((N, 1))", lambda: np.zeros((N, 1))),
    ("read-only np.zeros(N)", lambda: _read_only(np.zeros(N))),
    ("np.int64(3)", lambda: np.int64(3)), ("np.uint64(2**64-1)", lambda: np.uint64(U64 - 1)),
    ("np.int8(-1)", lambda: np.int8(-1)), ("np.float64(0.5)", lambda: np.float64(0.5)),
    ("np.float32(0.5)", lambda: np.float32(0.5)), ("np.float16(0.5)", lambda: np.float16(0.5)),
    ("np.bool_(True)", lambda: np.bool_(True)), ("np.complex128(1)", lambda: np.complex128(1)),
    ("np.datetime64(1, 's')", lambda: np.datetime64(1, "s")),
    ("np.timedelta64(1, 's')", lambda: np.timedelta64(1, "s")),
    ("np.str_('1')", lambda: np.str_("1")), ("Fraction(1, 3)", lambda: fractions.Fraction(1, 3)),
    ("Decimal('0.5')", lambda: decimal.Decimal("0.5")),
    ("Decimal('NaN')", lambda: decimal.Decimal("NaN")),
    ("default_rng(1)", lambda: np.random.default_rng(1)),
    ("RandomState(1)", lambda: np.random.RandomState(1)),
] + WEIRD_FACTORIES


def _read_only(a):
    a.setflags(write=False)
    return a


FIXED_TARGETS = {
    **{f"dropout-{a}": (lambda v, a=a: check_dropout(a, v)) for a in DROPOUT_ARGS},
    "dropout-x-inplace": lambda v: check_dropout("x", v, "inplace"),
    "dropout-x-eval": lambda v: check_dropout("x", v, "eval"),
    "dropout-seed-eval": lambda v: check_dropout("seed", v, "eval"),
    "dropout-x-Generator-seed": lambda v: check_dropout("x", v, gen=True),
    "dropout-offset-Generator-seed": lambda v: check_dropout("offset", v, gen=True),
    "dropout_mask-shape": check_mask_shape,
    "dropout_mask-shape-packed": lambda v: check_mask_shape(v, True),
    **{f"dropout_mask-{a}": (lambda v, a=a: check_mask_argument(a, v)) for a in MASK_ARGS},
    **{f"Dropout-{a}": (lambda v, a=a: check_layer_constructor(a, v))
       for a in ("p", "inplace", "seed")},
    "dropout_mask-p-Generator-seed": lambda v: check_mask_argument("p", v, gen=True),
    "Dropout-p-Generator-seed": lambda v: check_layer_constructor("p", v, gen=True),
    "Dropout.p-setter": check_layer_p_setter,
    "Dropout.forward": check_layer_forward,
    "Dropout.forward-inplace": lambda v: check_layer_forward(v, inplace=True),
    "Dropout.forward-eval": lambda v: check_layer_forward(v, training=False),
    "Dropout.backward": check_layer_backward,
    "manual_seed": check_manual_seed,
    "set_num_threads": check_set_num_threads,
    **{f"{fn}-{a}": (lambda v, fn=fn, a=a: check_family(fn, a, v)) for fn, a in FAMILY_CASES},
}


@pytest.mark.parametrize("target", list(FIXED_TARGETS))
def test_fixed_values(target):
    check = FIXED_TARGETS[target]
    problems = []
    for label, make in FIXED_VALUES:
        try:
            check(make())
        except AssertionError as exc:
            problems.append(f"{label}: {str(exc).splitlines()[0]}")
        except Exception as exc:  # an exception type the contract does not allow
            problems.append(f"{label}: {type(exc).__name__}: {exc}")
    assert not problems, f"{len(problems)} bad answers at {target}:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Generators as seeds
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ["dropout", "dropout_mask", "Dropout"])
def test_generator_seed_draw(entry):
    # A Generator seed is asked for one 64-bit integer (the docstrings), once per call.
    g, twin = np.random.default_rng(5), np.random.default_rng(5)
    s = int(twin.integers(0, U64, dtype=np.uint64))
    x = _layer_probe()
    if entry == "dropout":
        assert_bits_equal(cdrop.dropout(x, 0.5, seed=g), reference.dropout_ref(x, 0.5, s))
    elif entry == "dropout_mask":
        assert np.array_equal(cdrop.dropout_mask(N, 0.5, seed=g), reference.keep_mask(N, 0.5, s))
    else:
        assert_bits_equal(cdrop.Dropout(0.5, seed=g)(x),
                          reference.dropout_ref(x, 0.5, reference.derive(s, 0)))
    assert g.bit_generator.state == twin.bit_generator.state


def test_training_false_draws_nothing_from_a_generator_seed():
    # dropout's docstring: with training=False "No random seed is consumed".  A Generator
    # passed as the seed is the caller's random source: evaluation must not advance it, or an
    # evaluation pass in between would shift every later training mask drawn from it.
    g, twin = np.random.default_rng(6), np.random.default_rng(6)
    x = _layer_probe()
    assert cdrop.dropout(x, 0.5, training=False, seed=g) is x
    out = np.empty_like(x)
    assert cdrop.dropout(x, 0.5, training=False, seed=g, out=out) is out
    assert g.bit_generator.state == twin.bit_generator.state, \
        "dropout(training=False, seed=Generator) drew from the Generator"
