"""Public functional API: validation, defaults and dispatch to the compiled kernels.

Everything is checked here, before the first write: a call that raises leaves ``x`` and ``out``
untouched.  The compiled module (cdrop._kernels) trusts what it is given.
"""
import math
import numbers
import operator
import reprlib

import numpy as np

from . import _kernels, _seed, _threads
from ._checks import as_flag, as_int

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # native byte order
_U64 = 1 << 64
_TOO_HARD = getattr(np, "exceptions", np).TooHardError  # numpy.exceptions is NumPy >= 1.25


def _check_p(p):
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


def _check_dtype(dtype, name):
    if dtype in _FLOAT_DTYPES:
        return
    if dtype.kind == "f" and dtype.newbyteorder("=") in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} has non-native byte order ({dtype.str}); convert it with "
            f"{name}.astype({dtype.newbyteorder('=').name!r}) first"
        )
    raise TypeError(f"{name} has unsupported dtype {dtype}; cdrop supports float32 and float64")


def _check_writable(a, name):
    if not a.flags.writeable:
        raise ValueError(f"{name} is read-only; cannot write the result into it")
    # A zero stride on a long axis makes several elements one memory location: there is no
    # well-defined in-place result (np.broadcast_to views are read-only and stop above).
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        for n, s in zip(a.shape, a.strides):
            if s == 0 and n > 1:
                raise ValueError(f"{name} has overlapping elements (a zero stride)")


def _as_float_array(x, name):
    """`x` as an ndarray (array-likes converted) of a supported dtype."""
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:  # ragged lists, objects NumPy cannot convert
            kind = ValueError if isinstance(exc, ValueError) else TypeError
            raise kind(f"{name} cannot be converted to an array: {exc}") from None
    _check_dtype(x.dtype, name)
    return x


def _check_offset(offset, n):
    if type(offset) is int and offset == 0 and n <= _U64:
        return 0
    offset = as_int(offset, "offset")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if offset + n > _U64:
        raise ValueError(
            f"offset + size must be <= 2**64 (the stream's index space), got offset={offset} "
            f"with {n} elements"
        )
    # With no elements the offset selects nothing; 0 keeps the kernels' uint64 argument valid
    # when offset == 2**64.
    return offset if n else 0


def _same_view(a, b):
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
    )


def _check_out(out, x):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != x.dtype:
        raise TypeError(f"out has dtype {out.dtype}, but x has dtype {x.dtype}; they must match")
    if out.shape != x.shape:
        raise ValueError(f"out has shape {out.shape}, but x has shape {x.shape}; they must match")
    _check_writable(out, "out")
    if out is x or not np.may_share_memory(x, out):
        return out
    if _same_view(x, out):
        return out  # the same elements through another array object: in-place dropout
    try:
        overlap = np.shares_memory(x, out, max_work=1 << 20)
    except _TOO_HARD:
        overlap = True
    if overlap:
        raise ValueError("out overlaps x only in part; pass out=x for in place, or a separate out")
    return out


def _run_kernel(src, dst, p, seed, offset, n_threads, fresh=False):
    """dst[...] = dropout(src) for 0 < p < 1; src may be dst; fresh: dst was just allocated."""
    if _kernels.apply(src, dst, seed, offset, p, n_threads, fresh):
        return
    # Misaligned data (a view into a byte buffer): the C kernels assume naturally aligned
    # elements, so work on an aligned copy and copy the result back.
    tmp = np.array(src, order="K", copy=True)
    _kernels.apply(tmp, tmp, seed, offset, p, n_threads)
    np.copyto(dst, tmp)


def dropout(x, p=0.5, training=True, *, inplace=False, out=None, seed=None, offset=0,
            num_threads=None):
    """Inverted dropout: zero each element with probability `p`, scale the rest by 1/(1-p).

    One pass over memory, on all cores, with the GIL released.  The mask is a pure function of
    (`seed`, `p`, each element's C-order index + `offset`), so the result does not depend on the
    thread count, on the memory layout, or on how an array is cut into chunks.

    Equivalent NumPy (up to the random numbers)::

        keep = rng.random(x.shape) >= p
        y = np.where(keep, x * x.dtype.type(1 / (1 - p)), 0)

    Parameters
    ----------
    x : ndarray or array_like
        float32 or float64 data, any shape (0-d and empty included) and any layout.
        Array-likes are converted with ``np.asarray`` (out of place only).
    p : float, default 0.5
        Probability of DROPPING an element (PyTorch's `p`, Keras' `rate`), in [0, 1].
    training : bool, default True
        If False, dropout is the identity: `x` itself is returned (no copy), or copied into
        `out` when `out` is given.  No random seed is consumed.
    inplace : bool, default False
        Write the result into `x` (which must be a writeable ndarray) and return `x`.
        On a view, only the view's elements are written.
    out : ndarray, optional
        Write the result here and return it: same shape and dtype as `x`, writeable, and
        either `x` itself or not overlapping it.
    seed : int, numpy.random.Generator or None
        An int in [0, 2**64) gives a reproducible mask; a Generator is asked for a 64-bit
        seed; None (the default) takes the next seed of the package stream
        (see :func:`manual_seed`).
    offset : int, default 0
        Added to every element's index before drawing: ``dropout(x[a:b], p, seed=s,
        offset=a)`` equals ``dropout(x, p, seed=s)[a:b]`` for 1-D `x`.
    num_threads : int, optional
        Threads for this call (default :func:`get_num_threads`).  Small arrays use one.

    Returns
    -------
    ndarray
        `x` (in place, or ``training=False``), `out` if given, else a new array with `x`'s
        shape and dtype.  Kept elements are ``x * scale`` in `x`'s precision, with
        ``scale = 1/(1-p)`` rounded to `x`'s dtype; dropped elements are exactly ``+0.0``,
        also where `x` is NaN or Inf.  ``p == 0`` copies `x` (or leaves it untouched in
        place); ``p == 1`` gives zeros.

    Raises
    ------
    TypeError
        `p` not a real number; unsupported dtype or non-native byte order; `inplace` with a
        non-ndarray; `out` not an ndarray or of another dtype; bad type of `seed`, `offset` or
        `num_threads`.
    ValueError
        `p` NaN or outside [0, 1]; read-only target; `out` of another shape or partly
        overlapping `x`; `seed` outside [0, 2**64); `offset` < 0 or past 2**64 - size;
        `num_threads` < 1; both `inplace=True` and a separate `out`.

    See Also
    --------
    Dropout : the layer, with a backward pass.
    dropout_mask : the keep-mask that this function applies.

    Notes
    -----
    The backward pass of ``y = dropout(x, p, seed=s, offset=o)`` is
    ``dropout(grad, p, seed=s, offset=o)``: the same mask and scale, recomputed.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> x = np.ones(8, dtype=np.float32)
    >>> y = cdrop.dropout(x, p=0.5, seed=42)
    >>> sorted(set(y.tolist())) == [0.0, 2.0]
    True
    >>> bool((cdrop.dropout(x, p=0.5, seed=42) == y).all())   # same seed, same mask
    True
    >>> cdrop.dropout(x, 0.5, training=False) is x
    True
    >>> z = cdrop.dropout(x, 0.5, seed=42, inplace=True)
    >>> z is x and bool((x == y).all())
    True
    """
    p = _check_p(p)
    training = as_flag(training, "training")
    inplace = as_flag(inplace, "inplace")
    if inplace and not isinstance(x, np.ndarray):
        raise TypeError(f"inplace=True needs x to be a numpy.ndarray, got {type(x).__name__}")
    x = _as_float_array(x, "x")
    if out is not None:
        out = _check_out(out, x)
    if inplace:
        if out is None:
            out = x
        elif out is not x and not _same_view(out, x):
            raise ValueError("pass either inplace=True or out=, not both (or out=x)")
        if training:  # evaluation mode writes nothing, so a read-only x is fine there
            _check_writable(x, "x")
    n_threads = _threads.resolve(num_threads)
    offset = _check_offset(offset, x.size)
    if not training:
        # validated, but evaluation consumes no seed: a Generator is not asked for a number
        if seed is not None and not isinstance(seed, np.random.Generator):
            _seed.check_seed(seed)
        if out is None or out is x:
            return x
        np.copyto(out, x)
        return out
    seed = _seed.resolve_seed(seed)

    # `out` is now the target: x itself (in place), an array over x's elements, a separate
    # array, or None (a new array).  The kernels read x and write out element by element, so an
    # `out` over x's own elements is in-place dropout even when x is a read-only view.
    if p == 0.0:
        if out is None:
            return x.copy(order="K")
        if out is not x:
            np.copyto(out, x)
        return out
    fresh = out is None
    if fresh:
        out = np.empty_like(x, order="K")
    if p == 1.0:
        out.fill(0)
        return out
    _run_kernel(x, out, p, seed, offset, n_threads, fresh)
    return out


def _check_shape(shape):
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


def dropout_mask(shape, p=0.5, *, seed, offset=0, packed=False, num_threads=None):
    """The keep-mask that :func:`dropout` applies for the same `seed`, `offset` and `p`.

    Parameters
    ----------
    shape : int or tuple of ints
        Shape of the array the mask is for.
    p : float, default 0.5
        Drop probability, in [0, 1].
    seed : int, numpy.random.Generator or None
        Keyword-only and required, so that a mask is never drawn from an unintended stream;
        None takes the next seed of the package stream.
    offset : int, default 0
        As in :func:`dropout`.
    packed : bool, default False
        Return one bit per element: ``np.packbits(mask.ravel(), bitorder="little")``.
    num_threads : int, optional
        Threads for this call.

    Returns
    -------
    ndarray
        ``bool`` array of `shape` (True = kept), or, with ``packed=True``, a 1-D ``uint8``
        array of ``ceil(size / 8)`` bytes whose unused high bits in the last byte are 0.

    Raises
    ------
    TypeError, ValueError
        For bad `shape`, `p`, `seed`, `offset` or `num_threads`, as in :func:`dropout`.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> m = cdrop.dropout_mask((2, 3), 0.5, seed=7)
    >>> m.dtype, m.shape
    (dtype('bool'), (2, 3))
    >>> y = cdrop.dropout(np.ones((2, 3)), 0.5, seed=7)
    >>> bool(((y != 0) == m).all())
    True
    >>> bits = cdrop.dropout_mask((2, 3), 0.5, seed=7, packed=True)
    >>> bool((np.unpackbits(bits, count=6, bitorder="little") == m.ravel()).all())
    True
    """
    shape = _check_shape(shape)
    p = _check_p(p)
    packed = as_flag(packed, "packed")
    n = math.prod(shape)
    n_threads = _threads.resolve(num_threads)
    offset = _check_offset(offset, n)
    seed = _seed.resolve_seed(seed)
    if packed:
        nbytes = (n + 7) // 8
        if p == 0.0:
            mask = np.full(nbytes, 0xFF, dtype=np.uint8)
            if n % 8:
                mask[-1] = (1 << (n % 8)) - 1
            return mask
        mask = np.zeros(nbytes, dtype=np.uint8)
    else:
        if p == 0.0:
            return np.ones(shape, dtype=bool)
        mask = np.zeros(shape, dtype=bool)
    if p < 1.0:
        _kernels.keep_mask(mask, n, seed, offset, p, n_threads, packed)
    return mask
