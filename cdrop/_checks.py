"""Every check of cdrop's arguments, in one module; every message names the argument.

``dropout``, ``dropout_mask``, the ``Dropout`` layer, the seeds and the thread count all check
their arguments with the functions below, before anything is allocated, drawn or written, so a
call that raises leaves its arrays, the package seed stream and any Generator untouched.

* Integers are read with ``operator.index`` (the protocol NumPy uses for indices: Python ints,
  NumPy integer scalars, 0-d integer arrays), never by ``int()``, which would truncate 7.9 to 7.
  Bools are refused where an integer is meant, since ``seed=True`` is almost certainly a mistake.
* Flags are ``bool`` or ``numpy.bool_``: ``dropout(x, 0.5, 1234)`` passes 1234 as `training`,
  and reading it by its truth value would silently ignore a seed meant for the mask.
* Arrays are looked at through the base class, ``numpy.ndarray``: a subclass may override
  ``shape``, ``dtype``, ``strides`` or ``__array_function__``, and the compiled kernels must
  see the buffer that is really there (:func:`base`).
"""
import collections.abc
import math
import numbers
import operator
import reprlib
import sys

import numpy as np

U64 = 1 << 64  # seeds are in [0, U64), and offset + size <= U64 (the stream's index space)
MAX_THREADS = 1 << 16  # larger thread counts are treated as this many (keeps them a C int)

FLOAT32 = np.dtype(np.float32)  # native byte order
FLOAT64 = np.dtype(np.float64)
FLOAT_DTYPES = (FLOAT32, FLOAT64)  # the fast paths' dtypes
FLOAT16 = np.dtype(np.float16)
IEEE_DTYPES = (FLOAT16, FLOAT32, FLOAT64)  # the NumPy float dtypes that cdrop supports
SUPPORTED = "float16, bfloat16 (ml_dtypes), float32 and float64"

_ndarray = np.ndarray
_ndarray_view = np.ndarray.view
_TOO_HARD = getattr(np, "exceptions", np).TooHardError  # numpy.exceptions is NumPy >= 1.25
_TORCH_HINT = "cdrop works on NumPy arrays; for torch tensors use t.detach().numpy()"


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------
def as_int(value, name, what="an int"):
    """``operator.index(value)``; TypeError naming `name` for bools and non-integers."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    try:
        return operator.index(value)
    except TypeError:  # not an integer, or an __index__ that returns a non-int
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}") from None


def as_flag(value, name):
    """`value` as a Python bool; TypeError naming `name` for anything but bool and numpy.bool_.

    An int given as `training` is almost certainly a seed passed by position: the message then
    shows the keyword form.
    """
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    msg = f"{name} must be a bool, got {type(value).__name__}"
    if name == "training" and not isinstance(value, bool):
        try:
            seed = operator.index(value)
        except Exception:  # noqa: BLE001 - any failure just means "not an int-like"
            seed = None
        if seed is not None:
            msg += f" (did you mean seed={seed}? seed is keyword-only)"
        elif isinstance(value, np.random.Generator):
            msg += " (did you mean seed=<Generator>? seed is keyword-only)"
    raise TypeError(msg)


def check_p(p):
    """`p` as a float in [0, 1]: TypeError if it is not a real number, else ValueError."""
    if type(p) is float and 0.0 <= p <= 1.0:  # the common case, without the ABC check
        return p
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a real number, got {type(p).__name__}")
    try:
        value = float(p)
    except OverflowError:  # an int beyond the float range: certainly not in [0, 1]
        raise ValueError(f"p must be a probability in [0, 1], got {reprlib.repr(p)}") from None
    except (TypeError, ValueError):  # a registered numbers.Real whose __float__ fails
        raise TypeError(f"p must be a real number, got {type(p).__name__}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"p must be a probability in [0, 1], got {value!r}")
    return value


def check_offset(offset, n):
    """`offset` as an int with ``0 <= offset`` and ``offset + n <= 2**64`` (0 when n == 0)."""
    if type(offset) is int and offset == 0 and n <= U64:
        return 0
    offset = as_int(offset, "offset")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if offset + n > U64:
        raise ValueError(
            f"offset + size must be <= 2**64 (the stream's index space), got offset={offset} "
            f"with {n} elements"
        )
    # With no elements the offset selects nothing; 0 keeps the kernels' uint64 argument valid
    # when offset == 2**64.
    return offset if n else 0


class SeedSource:
    """An iterator of seeds (a layer's calls), as a seed: a call takes its next value only when
    nothing can fail any more, and keeps it in `value`.  Internal: the Dropout layer passes it."""

    __slots__ = ("seeds", "value")

    def __init__(self, seeds):
        self.seeds = seeds
        self.value = None


def check_seed(seed, name="seed"):
    """A valid seed, nothing drawn: None, a numpy Generator, or an int in [0, 2**64) (or a
    :class:`SeedSource`).

    :func:`cdrop._seed.draw` turns it into the call's 64-bit seed, as the last step before the
    kernel.
    """
    if type(seed) is int and 0 <= seed < U64:  # the common case first: 40 ns, not 170
        return seed
    if seed is None or isinstance(seed, (np.random.Generator, SeedSource)):
        return seed
    seed = as_int(seed, name, "an int in [0, 2**64), a numpy.random.Generator or None")
    if not 0 <= seed < U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {seed}")
    return seed


def check_base_seed(seed):
    """The argument of ``manual_seed``: an int in [0, 2**64) (no None, no Generator)."""
    what = "manual_seed(seed): seed must be an int in [0, 2**64)"
    if isinstance(seed, (bool, np.bool_)) or seed is None:
        raise TypeError(f"{what}, got {type(seed).__name__}")
    if isinstance(seed, np.random.Generator):
        raise TypeError(f"{what}, not a numpy.random.Generator")
    try:
        value = operator.index(seed)
    except TypeError:
        raise TypeError(f"{what}, got {type(seed).__name__}") from None
    if not 0 <= value < U64:
        raise ValueError(f"{what}, got {value}")
    return value


def check_num_threads(n, name="num_threads"):
    """`n` as an int >= 1, capped at MAX_THREADS."""
    if type(n) is int and 1 <= n <= MAX_THREADS:
        return n
    n = as_int(n, name)
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    return min(n, MAX_THREADS)


def check_shape(shape):
    """`shape` (an int or a sequence of ints >= 0) as a tuple of ints."""
    if isinstance(shape, (bool, np.bool_)):
        raise TypeError("shape must be an int or a tuple of ints, got bool")
    try:
        dims = (operator.index(shape),)
    except TypeError:  # not an integer: a sequence of them (tuple, list, 1-d integer array)
        try:
            dims = tuple(shape)
        except TypeError:
            raise TypeError(
                f"shape must be an int or a tuple of ints, got {type(shape).__name__}"
            ) from None
    out = []
    for d in dims:
        d = as_int(d, "shape", "an int or a tuple of ints")
        if d < 0:
            raise ValueError(f"shape must not contain negative dimensions, got {dims}")
        out.append(d)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Arrays
# ---------------------------------------------------------------------------------------------
def base(a):
    """`a` as a plain ``numpy.ndarray`` over the same memory (`a` itself if it is one).

    ``np.ndarray.view`` reads the array's C-level shape, strides and dtype, so what a subclass
    reports through Python (an overridden ``shape``, ``__array_function__``, ``view``) cannot
    make the kernels address memory that is not there.
    """
    return a if type(a) is _ndarray else _ndarray_view(a, _ndarray)


def is_torch_tensor(x):
    """True for torch.Tensor and its subclasses, found without importing torch."""
    return any(c.__name__ == "Tensor" and c.__module__ == "torch" for c in type(x).__mro__)


def _is_ml_bfloat16(dtype):
    """True for ml_dtypes.bfloat16 in either byte order, without importing ml_dtypes (an
    optional dependency: `import cdrop` never imports it).  An array of that dtype exists only
    once ml_dtypes is imported (the import registers the dtype), so its type is looked up in
    sys.modules.  Names prove nothing: NumPy names the dtype of any 2-byte numpy.void subclass
    called ``bfloat`` "bfloat16", structured or not, whatever module it claims to come from."""
    if dtype.kind != "V" or dtype.itemsize != 2:
        return False
    ml_dtypes = sys.modules.get("ml_dtypes")
    return ml_dtypes is not None and dtype.type is getattr(ml_dtypes, "bfloat16", None)


def is_bfloat16(dtype):
    """True for ml_dtypes.bfloat16 in native byte order (see :func:`_is_ml_bfloat16`)."""
    return dtype.isnative and _is_ml_bfloat16(dtype)


def check_dtype(dtype, name, converted_from=None):
    """TypeError naming `name` unless `dtype` is native float16, bfloat16 (ml_dtypes), float32
    or float64.

    converted_from: the type of a non-array argument that NumPy converted to this dtype.
    """
    if dtype in IEEE_DTYPES or is_bfloat16(dtype):
        return
    if (dtype.kind == "f" and dtype.newbyteorder("=") in IEEE_DTYPES
            or _is_ml_bfloat16(dtype)):  # a byte-swapped bfloat16 (its .str is just '>V2')
        what = dtype.str if dtype.kind == "f" else f"{dtype.name} {dtype.str}"
        raise TypeError(
            f"{name} has non-native byte order ({what}); convert it with "
            f"{name}.astype({dtype.newbyteorder('=').name!r}) first"
        )
    if converted_from is not None and dtype.kind not in "biufc":
        # None, strings, dicts, ...: NumPy made an object (or text) array of it, and its dtype
        # would say nothing about what was passed.
        raise TypeError(
            f"{name} must be an array of floating-point numbers ({SUPPORTED}), got "
            f"{converted_from.__name__}"
        )
    msg = f"{name} has unsupported dtype {dtype}"
    if converted_from is not None:
        msg += f" (converted from {converted_from.__name__})"
    msg += f"; cdrop supports {SUPPORTED}"
    if dtype.kind in "biuf":
        # float32 holds bools and small ints exactly; float64 the rest most closely
        target = "float32" if dtype.itemsize <= 2 else "float64"
        how = (f"{name}.astype({target!r})" if converted_from is None
               else f"np.asarray({name}, dtype={target!r})")
        msg += f": convert it with {how}"
    raise TypeError(msg)


def as_float_array(x, name):
    """`x` as a plain ndarray of a supported dtype (array-likes converted; subclasses viewed
    through the base class, see :func:`base`)."""
    if type(x) is _ndarray and x.dtype in FLOAT_DTYPES:  # the common case, without calls
        return x
    if isinstance(x, _ndarray):
        xb = base(x)
        check_dtype(xb.dtype, name)
        return xb
    if is_torch_tensor(x):
        # np.asarray would raise torch's RuntimeError for a tensor that requires grad or lives
        # on a GPU, and would convert the rest: say what works in every case.
        try:
            converted = np.asarray(x)
        except Exception:  # noqa: BLE001 - torch raises RuntimeError/TypeError here
            raise TypeError(f"{name} is a {type(x).__name__}: {_TORCH_HINT}") from None
        check_dtype(converted.dtype, name, type(x))
        return base(converted)
    try:
        converted = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists, objects NumPy cannot convert
        kind = ValueError if isinstance(exc, ValueError) else TypeError
        raise kind(f"{name} cannot be converted to an array: {exc}") from None
    check_dtype(converted.dtype, name, type(x))
    return base(converted)


def inplace_needs_ndarray(x):
    """The TypeError for ``inplace=True`` with an `x` that is not an ndarray."""
    msg = f"inplace=True needs x to be a numpy.ndarray, got {type(x).__name__}"
    if is_torch_tensor(x):
        msg += f"; {_TORCH_HINT}"
    return TypeError(msg)


def check_writable(a, name):
    """ValueError naming `name` if the base-class array `a` cannot take a result in place."""
    flags = a.flags
    if not flags.writeable:
        raise ValueError(f"{name} is read-only; cannot write the result into it")
    # A zero stride on a long axis makes several elements one memory location: there is no
    # well-defined in-place result (np.broadcast_to views are read-only and stop above).
    if not (flags.c_contiguous or flags.f_contiguous):
        for n, s in zip(a.shape, a.strides):
            if s == 0 and n > 1:
                raise ValueError(f"{name} has overlapping elements (a zero stride)")


def _address(a):
    return a.__array_interface__["data"][0]


def same_elements(a, b):
    """True if base-class arrays `a` and `b` of one shape reach the same addresses in the same
    order (the strides of length-1 axes do not matter: they are never used)."""
    if a.shape != b.shape:
        return False
    if a.size == 0:
        return True
    if _address(a) != _address(b):
        return False
    return all(n == 1 or s == t for n, s, t in zip(a.shape, a.strides, b.strides))


def _element_set(a):
    """A key that is equal for two arrays that reach the same set of addresses in some order:
    the lowest address and the (stride, length) of each axis after flipping negative strides,
    dropping length-1 axes, sorting, and merging axes that continue each other."""
    lo = _address(a)
    axes = []
    for n, s in zip(a.shape, a.strides):
        if n == 1:
            continue
        if s < 0:
            lo += s * (n - 1)
            s = -s
        axes.append((s, n))
    axes.sort()
    merged = []
    for s, n in axes:
        if merged and merged[-1][0] * merged[-1][1] == s:
            merged[-1] = (merged[-1][0], merged[-1][1] * n)
        else:
            merged.append((s, n))
    return lo, tuple(merged)


def check_out(out, xb):
    """`out` as a base-class array after checking it against `xb` (the base-class x)."""
    if not isinstance(out, _ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    ob = out if type(out) is _ndarray else base(out)
    if ob.dtype is not xb.dtype and ob.dtype != xb.dtype:  # `is`: the common case, quickly
        raise TypeError(f"out has dtype {ob.dtype}, but x has dtype {xb.dtype}; they must match")
    if ob.shape != xb.shape:
        raise ValueError(f"out has shape {ob.shape}, but x has shape {xb.shape}; they must match")
    check_writable(ob, "out")
    if ob is xb or not np.may_share_memory(xb, ob):
        return ob
    if same_elements(xb, ob):
        return ob  # the same elements through another array object: in-place dropout
    try:
        overlap = np.shares_memory(xb, ob, max_work=1 << 20)
    except _TOO_HARD:
        overlap = True
    if not overlap:
        return ob
    if _element_set(xb) == _element_set(ob):
        raise ValueError(
            "out overlaps all of x, but in a different order (it covers the same memory); "
            "pass out=x for in place, or a separate out"
        )
    raise ValueError("out overlaps x only in part; pass out=x for in place, or a separate out")


def _int_tuple(value, name, ndim):
    """`value` (a sequence of ints, or a 1-d integer array) as a tuple of `ndim` ints >= 0."""
    if (isinstance(value, (str, bytes)) or not (
            isinstance(value, collections.abc.Sequence)
            or isinstance(value, np.ndarray) and value.ndim == 1)):
        raise TypeError(f"{name} must be a tuple of ints, got {type(value).__name__}")
    out = tuple(as_int(v, name, "a tuple of ints") for v in value)
    if len(out) != ndim:
        raise ValueError(f"{name} must have one entry per axis of x ({ndim}), got {out}")
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must not contain negative entries, got {out}")
    return out


def check_block(global_shape, start, shape):
    """`global_shape` and `start` of a block of `shape` (both None: no block) as two tuples of
    ints, or None; the block must lie inside `global_shape`."""
    if global_shape is None and start is None:
        return None
    if global_shape is None or start is None:
        raise TypeError(
            "global_shape and start go together: pass both (x is the block "
            "big[start[0]:start[0]+x.shape[0], ...] of an array of shape global_shape) or neither"
        )
    gshape = _int_tuple(global_shape, "global_shape", len(shape))
    start = _int_tuple(start, "start", len(shape))
    for d, (g, s, n) in enumerate(zip(gshape, start, shape)):
        if s + n > g:
            raise ValueError(
                f"the block lies outside global_shape on axis {d}: start {s} + x's size {n} "
                f"> global_shape[{d}] = {g}"
            )
    return gshape, start


def block_counters(shape, gshape, start, offset):
    """How the kernels count a block's elements: ``(base, istrides)``.  Element i of the block
    has the counter ``base + sum(i[d] * istrides[d])``, its C-order index in `gshape` plus
    `offset`.  istrides is None when those counters are the block's own C-order index plus
    `base` (a block of whole trailing axes, a run of rows): then the ordinary walks serve it."""
    if math.prod(shape) == 0:
        return 0, None  # no element: nothing is counted (and base might be 2**64)
    gstr = [1] * len(gshape)
    for d in range(len(gshape) - 2, -1, -1):
        gstr[d] = gstr[d + 1] * gshape[d + 1]
    base = offset + sum(s * g for s, g in zip(start, gstr))
    own = 1  # the block's own C-order stride of axis d
    run = True
    for d in range(len(shape) - 1, -1, -1):
        if shape[d] > 1 and gstr[d] != own:
            run = False
        own *= shape[d]
    if run:
        return base, None
    return base, tuple(gstr)


def check_noise_shape(noise_shape, shape):
    """`noise_shape` (Keras' argument: one entry per axis of x, each x's size on that axis or 1,
    None meaning x's size) as a tuple of ints, checked against x's `shape`."""
    # a sequence (tuple, list, ...) or a 1-d array; not a str, a dict, a set or an iterator
    if (isinstance(noise_shape, (str, bytes)) or not (
            isinstance(noise_shape, collections.abc.Sequence)
            or isinstance(noise_shape, np.ndarray) and noise_shape.ndim == 1)):
        raise TypeError(
            f"noise_shape must be a tuple of ints or None entries, got {type(noise_shape).__name__}"
        )
    entries = tuple(noise_shape)
    if len(entries) != len(shape):
        raise ValueError(
            f"noise_shape must have one entry per axis of x ({len(shape)}), got {entries}"
        )
    out = []
    for d, n in zip(entries, shape):
        if d is None:
            out.append(n)
            continue
        d = as_int(d, "noise_shape", "a tuple of ints or None entries")
        if d != n and d != 1:
            raise ValueError(
                f"noise_shape {entries} does not fit x's shape {tuple(shape)}: each entry must "
                "be x's size on that axis, 1 (one decision shared along the axis) or None"
            )
        out.append(d)
    return tuple(out)


def check_nonneg_real(value, name):
    """`value` as a finite float >= 0: TypeError if it is not a real number, else ValueError."""
    if type(value) is float and 0.0 <= value < float("inf"):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite and >= 0, got {reprlib.repr(value)}") from None
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None
    if not 0.0 <= v < float("inf"):  # also rejects NaN
        raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
    return v


def check_other_operand(ob, a, name):
    """ValueError unless the target `ob` and the operand `a` (base-class arrays; `a` may be a
    broadcast view) are the same elements in the same order or do not overlap at all."""
    if ob is a or not np.may_share_memory(ob, a):
        return
    if a.shape == ob.shape and same_elements(ob, a):
        return
    try:
        overlap = np.shares_memory(ob, a, max_work=1 << 20)
    except _TOO_HARD:
        overlap = True
    if overlap:
        raise ValueError(
            f"out overlaps {name} other than element for element; pass out={name} or a "
            "separate out"
        )
