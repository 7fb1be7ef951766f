"""Public functional API: defaults, dispatch to the compiled kernels, and a fast path.

Every argument is checked (cdrop/_checks.py) before the first write: a call that raises leaves
``x`` and ``out`` untouched and consumes no seed.  The compiled module (cdrop._kernels) checks
only that the buffers it receives agree with each other.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, SupportsIndex, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _apply as _apply_mod
from . import _kernels, _seed, _threads
from ._checks import (
    FLOAT32,
    FLOAT64,
    U64,
    as_flag,
    as_float_array,
    block_counters,
    check_block,
    check_noise_shape,
    check_offset,
    check_out,
    check_p,
    check_seed,
    check_shape,
    check_writable,
    inplace_needs_ndarray,
    same_elements,
)

_ndarray = np.ndarray
# np.empty_like without the __array_function__ dispatch (NEP 18's _implementation; 140 ns of
# a 1000-element call): only ever called with plain ndarrays, which override nothing.
empty_like = getattr(np.empty_like, "_implementation", np.empty_like)
_apply = _kernels.apply
_stream = _seed.stream  # next(_stream.seeds): the next seed of the package stream
_ZERO = 0
_U16 = np.dtype(np.uint16)

Flag = Union[bool, np.bool_]  # flags: bool or numpy.bool_, nothing else
Seed = Union[SupportsIndex, np.random.Generator, None]  # an int in [0, 2**64), a Generator, None


def _run_kernel(src, dst, seed, offset, p, n_threads, fresh=False, tmp=None, istrides=None):
    """dst[...] = dropout(src) for 0 < p < 1 (src may be dst); fresh: dst was just allocated;
    tmp: see apply_misaligned; istrides: src is a block (_kernels.apply)."""
    bf16 = False
    if src.dtype.kind == "V":  # bfloat16, the one such dtype that gets here (check_dtype)
        # ml_dtypes arrays cannot export a buffer ("cannot include dtype 'E'"): the kernels
        # take their bits through zero-copy uint16 views
        src, dst, bf16 = src.view(_U16), dst.view(_U16), True
        tmp = None if tmp is None else tmp.view(_U16)
    if not _apply(src, dst, seed, offset, p, n_threads, fresh, bf16, istrides):
        apply_misaligned(src, dst, seed, offset, p, n_threads, tmp, bf16, istrides)


def apply_misaligned(src, dst, seed, offset, p, n_threads, tmp=None, bf16=False, istrides=None):
    """dst[...] = dropout(src) when _kernels.apply refused src or dst as misaligned.

    The C kernels assume naturally aligned elements (a float32 view one byte into a uint8
    buffer is not).  It allocates nothing, because the seed is already drawn and a failing call
    must not consume one: with an aligned dst, dropout runs in place on a copy of src in dst;
    a caller whose dst is misaligned passes `tmp`, an aligned array of src's shape allocated
    before drawing the seed, and the result is copied back from it.
    """
    if tmp is None:
        np.copyto(dst, src)
        _apply(dst, dst, seed, offset, p, n_threads, False, bf16, istrides)
        return
    np.copyto(tmp, src)
    _apply(tmp, tmp, seed, offset, p, n_threads, False, bf16, istrides)
    np.copyto(dst, tmp)


def _masked_result(x, ob):
    """The result `ob` of a numpy.ma.MaskedArray `x` as a masked array with x's mask (a copy),
    as a ufunc gives it: MaskedArray.__array_wrap__ without a ufunc's context would drop the
    mask, and masked elements would silently become ordinary values."""
    res = ob.view(type(x))
    mask = np.ma.getmask(x)
    if mask is not np.ma.nomask:
        res.mask = mask  # the setter copies the values
    return res


def dropout(
    x: ArrayLike,
    p: float = 0.5,
    training: Flag = True,
    *,
    inplace: Flag = False,
    out: NDArray[Any] | None = None,
    seed: Seed = None,
    offset: SupportsIndex = 0,
    num_threads: SupportsIndex | None = None,
    noise_shape: Sequence[SupportsIndex | None] | None = None,
    global_shape: Sequence[SupportsIndex] | None = None,
    start: Sequence[SupportsIndex] | None = None,
) -> NDArray[Any]:
    """Inverted dropout: zero each element with probability `p`, scale the rest by 1/(1-p).

    One pass over memory, on all cores, with the GIL released.  The mask is a pure function of
    (`seed`, `p`, each element's C-order index + `offset`), so the result does not depend on the
    thread count, on the memory layout, or on how an array is cut into chunks.

    Equivalent NumPy for float32 and float64 (up to the random numbers; half precision: Returns)::

        keep = rng.random(x.shape) >= p
        y = np.where(keep, x * x.dtype.type(1 / (1 - p)), 0)

    Parameters
    ----------
    x : ndarray or array_like
        float16, bfloat16 (``ml_dtypes.bfloat16``), float32 or float64 data, any shape (0-d
        and empty included) and any layout.
        Array-likes are converted with ``np.asarray`` (out of place only).  For an ndarray
        subclass, the kernels see the base-class array, and a new result is wrapped with
        ``x.__array_wrap__``, as NumPy's ufuncs do.
    p : float, default 0.5
        Probability of DROPPING an element (PyTorch's `p`, Keras' `rate`), in [0, 1].
    training : bool, default True
        If False, dropout is the identity: `x` itself is returned (no copy), or copied into
        `out` when `out` is given.  No random seed is consumed.  A bool or ``numpy.bool_``:
        ``dropout(x, 0.5, 1234)`` is refused, since 1234 would be taken as `training`
        (`seed` is keyword-only).
    inplace : bool, default False
        Write the result into `x` (which must be a writeable ndarray) and return `x`.
        On a view, only the view's elements are written.
    out : ndarray, optional
        Write the result here and return it: same shape and dtype as `x`, writeable, and
        either over the same elements as `x` in the same order (``out=x``: in place) or not
        overlapping it.
    seed : int, numpy.random.Generator or None
        An int in [0, 2**64) gives a reproducible mask; a Generator is asked for a 64-bit
        seed; None (the default) takes the next seed of the package stream
        (see :func:`manual_seed`).
    offset : int, default 0
        Added to every element's index before drawing: ``dropout(x[a:b], p, seed=s,
        offset=a)`` equals ``dropout(x, p, seed=s)[a:b]`` for 1-D `x`.
    num_threads : int, optional
        Threads for this call (default :func:`get_num_threads`).  Small arrays use one.
    noise_shape : tuple of int or None, optional
        Keras' `noise_shape`: one entry per axis of `x`, each x's size on that axis or 1 (one
        decision shared along that axis); None entries mean x's size.  The mask is drawn at
        the noise shape's size, the counter being the C-order index in the noise shape plus
        `offset`, so that with the full noise shape ``ns``::

            keep = np.broadcast_to(cdrop.dropout_mask(ns, p, seed=s, offset=o), x.shape)
            y = np.where(keep, x * scale, 0)

        ``offset + prod(ns)`` must be at most 2**64.  None (the default) or x's own shape:
        one decision per element.  With `global_shape`, the entries refer to the global shape.
    global_shape, start : tuple of int, optional
        Both or neither.  `x` is the block ``big[start[0]:start[0]+x.shape[0], ...]`` of a
        C-ordered array ``big`` of shape `global_shape` that need not exist (a dask chunk, one
        rank's part of a decomposition): each element's counter is its C-order index in
        ``big`` plus `offset`, so that::

            dropout(big[block], p, seed=s, global_shape=big.shape, start=block_start)
            == dropout(big, p, seed=s)[block]

        bit for bit, for any layout of the block.  ``offset + prod(global_shape)`` must be at
        most 2**64.  See docs/rng.md, "Blocks of a larger array".

    Returns
    -------
    ndarray
        `x` (in place, or ``training=False``), `out` if given, else a new array with `x`'s
        shape and dtype.  Kept elements are ``x * scale`` in `x`'s precision, with
        ``scale = 1/(1-p)`` rounded to `x`'s dtype; for float16 and bfloat16 they are
        ``(x.astype(float32) * float32(scale)).astype(x.dtype)``, rounded to nearest even
        (docs/rng.md), with float32's mask.  Dropped elements are exactly ``+0.0``, also
        where `x` is NaN or Inf.  ``p == 0`` copies `x` (or leaves it untouched in place);
        ``p == 1`` gives zeros.

    Raises
    ------
    TypeError
        `p` not a real number; `training` or `inplace` not a bool; `x` not convertible to an
        array of numbers (a torch tensor: use ``t.detach().numpy()``), of an unsupported dtype
        or of non-native byte order; `inplace` with a non-ndarray; `out` not an ndarray or of
        another dtype; bad type of `seed`, `offset`, `num_threads` or `noise_shape`.
    ValueError
        `p` NaN or outside [0, 1]; read-only target; `out` of another shape, or overlapping
        `x` other than element for element (in part, or in another order); `noise_shape` of
        another length than ``x.ndim`` or with an entry other than 1, None or x's size; a
        block outside `global_shape` (or either of them with another length than ``x.ndim``,
        or a negative entry); `seed` outside
        [0, 2**64); `offset` < 0 or past 2**64 - size; `num_threads` < 1; both `inplace=True`
        and a separate `out`.
    MemoryError
        No memory for the result.  A call that raises writes nothing and consumes no seed:
        the package stream and a Generator passed as `seed` are left as they were.

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
    >>> h = cdrop.dropout(np.ones(8, dtype=np.float16), p=0.5, seed=42)   # float32's mask
    >>> h.dtype, bool((h == y).all())
    (dtype('float16'), True)
    >>> c = cdrop.dropout(np.ones((2, 3, 2)), 0.5, seed=1, noise_shape=(None, None, 1))
    >>> bool((c[..., 0] == c[..., 1]).all())    # one decision per (n, c), shared along axis 2
    True
    """
    # The common call: `x` a float32/float64 ndarray (in place: writeable and contiguous), `p` a
    # float in (0, 1), `seed` an int in [0, 2**64) or None, the other arguments at their
    # defaults.  Everything is then valid, so this does what the general path (_dropout) does,
    # in the same order (allocate, draw the seed, run the kernel), without its function calls:
    # for 1000 elements they cost more than the kernel.  Dropout.forward has the same block;
    # tests/test_fast_path.py holds both to the general path.
    # `offset is _ZERO`: the default 0 (CPython has one object for small ints); any other zero
    # takes the general path, which reads it the same way.
    if (training is True and out is None and offset is _ZERO and num_threads is None
            and noise_shape is None and global_shape is None and start is None
            and type(x) is _ndarray and type(p) is float and 0.0 < p < 1.0):
        dt = x.dtype
        if (dt is FLOAT32 or dt is FLOAT64) and (  # equal but distinct dtypes: general path
                seed is None or type(seed) is int and 0 <= seed < U64):
            dst = None
            if inplace is False:
                dst = empty_like(x)  # order="K", the default: the layout of x
            elif inplace is True:
                flags = x.flags
                # contiguous: no zero strides, so no element is another's memory; aligned: the
                # misaligned fallback would need a temporary, allocated before the seed is drawn
                if flags.writeable and flags.aligned and (flags.c_contiguous or flags.f_contiguous):
                    dst = x
            if dst is not None:
                if seed is None:
                    seed = next(_stream.seeds)  # last: nothing can fail any more
                # num_threads 0: the default, which the kernels ask for only when the array is
                # big enough to use threads
                if not _apply(x, dst, seed, 0, p, 0, dst is not x):
                    apply_misaligned(x, dst, seed, 0, p, 0)
                return dst

    # The general path: every check, in the order the messages have always come.  (Inline, not
    # a function of its own: a call with 8 arguments costs 80 ns.)
    p = check_p(p)
    training = as_flag(training, "training")
    inplace = as_flag(inplace, "inplace")
    if inplace and not isinstance(x, _ndarray):
        raise inplace_needs_ndarray(x)
    # xb: x as a plain ndarray (converted, or a base-class view of a subclass), which is what
    # the kernels read; x itself is what "return x" returns.
    xb = as_float_array(x, "x")
    if not isinstance(x, _ndarray):
        x = xb
    ob = None  # out as a plain ndarray
    if out is not None:
        ob = check_out(out, xb)
    if inplace:
        if out is None:
            out, ob = x, xb
        elif out is not x and not same_elements(ob, xb):
            raise ValueError("pass either inplace=True or out=, not both (or out=x)")
        if training:  # evaluation mode writes nothing, so a read-only x is fine there
            check_writable(xb, "x")
    # a block of a larger array: the counters are its elements' indices in that array
    block = check_block(global_shape, start, xb.shape)
    whole = xb.shape if block is None else block[0]  # the shape that counters index
    ns = None  # the noise shape of a mask shared along some axes
    if noise_shape is not None:
        ns = check_noise_shape(noise_shape, whole)
        if ns == whole:
            ns = None  # one decision per element: the element-wise kernel, the same mask
    n_threads = _threads.resolve(num_threads)
    offset = check_offset(offset, math.prod(whole) if ns is None else math.prod(ns))
    istrides = None
    if block is not None and ns is None:
        offset, istrides = block_counters(xb.shape, block[0], block[1], offset)
    seed = check_seed(seed)  # checked now, drawn last
    if not training:
        # evaluation consumes no seed: a Generator is not asked for a number
        if out is None or out is x:
            return x
        np.copyto(ob, xb)
        return out
    if ns is not None and 0.0 < p < 1.0:
        # the mask at noise-shape size, broadcast (cdrop/_variants.py, imported at the end of
        # this module: an import statement here cost 5-15 us per call)
        return _variants._execute(x, xb, out, ob, seed, offset, n_threads, p,
                                  op=_apply_mod.OP_DROP, c=(1.0 / (1.0 - p), 0.0, 0.0),
                                  noise=ns, block=block)

    # `ob` is now the target: x itself (in place), an array over x's elements, a separate
    # array, or None (a new array).  The kernels read x and write out element by element, so an
    # `out` over x's own elements is in-place dropout even when x is a read-only view.
    fresh = ob is None
    tmp = None
    if fresh:
        ob = empty_like(xb)  # layout of x (order="K"); a plain ndarray: no subclass code runs
    elif 0.0 < p < 1.0 and not ob.flags.aligned:
        tmp = empty_like(xb)  # for apply_misaligned, allocated before the seed is drawn
    if type(seed) is not int:  # an int is its own seed; None, Generator, a layer's: draw
        seed = _seed.draw(seed)  # last: everything that can fail has been done
    if p == 0.0:
        if ob is not xb:
            np.copyto(ob, xb)
    elif p == 1.0:
        ob.fill(0)
    else:
        _run_kernel(xb, ob, seed, offset, p, n_threads, fresh, tmp, istrides)
    if not fresh:
        return out
    if x is xb or type(x) is _ndarray:
        return ob
    if isinstance(x, np.ma.MaskedArray):
        return _masked_result(x, ob)
    return x.__array_wrap__(ob)  # a subclass gets its result the way a ufunc would give it


def dropout_mask(
    shape: SupportsIndex | Sequence[SupportsIndex],
    p: float = 0.5,
    *,
    seed: Seed,
    offset: SupportsIndex = 0,
    packed: Flag = False,
    num_threads: SupportsIndex | None = None,
    global_shape: Sequence[SupportsIndex] | None = None,
    start: Sequence[SupportsIndex] | None = None,
) -> NDArray[Any]:
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
    packed : bool or numpy.bool_, default False
        Return one bit per element: ``np.packbits(mask.ravel(), bitorder="little")``.
    num_threads : int, optional
        Threads for this call.
    global_shape, start : tuple of int, optional
        Both or neither: the mask of the block ``big[start[0]:start[0]+shape[0], ...]`` of an
        array of shape `global_shape`, as in :func:`dropout`:
        ``dropout_mask(shape, p, seed=s, global_shape=G, start=S)`` equals
        ``dropout_mask(G, p, seed=s)[block]``; `packed` packs the block's own C order.

    Returns
    -------
    ndarray
        ``bool`` array of `shape` (True = kept), or, with ``packed=True``, a 1-D ``uint8``
        array of ``ceil(size / 8)`` bytes whose unused high bits in the last byte are 0.

    Raises
    ------
    TypeError, ValueError
        For bad `shape`, `p`, `seed`, `offset`, `packed` or `num_threads`, as in
        :func:`dropout`; ValueError also for a shape NumPy cannot allocate (a dimension of
        2**63 or more, more than 64 axes).
    MemoryError
        No memory for the mask.  A call that raises consumes no seed.

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
    shape = check_shape(shape)
    p = check_p(p)
    packed = as_flag(packed, "packed")
    n = math.prod(shape)
    block = check_block(global_shape, start, shape)
    n_threads = _threads.resolve(num_threads)
    offset = check_offset(offset, n if block is None else math.prod(block[0]))
    istrides = None
    if block is not None:
        offset, istrides = block_counters(shape, block[0], block[1], offset)
    seed = check_seed(seed)  # checked now, drawn last
    try:
        if istrides is not None:
            # a block whose counters are not one run: its bytes first (any p: the walk of
            # _kernels.keep_mask_block needs 0 < p < 1, the ends are filled below), packed after
            mask = np.zeros(shape, dtype=bool) if 0.0 < p else np.ones(shape, dtype=bool)
            if packed:
                bits = np.zeros((n + 7) // 8, dtype=np.uint8)
        elif packed:
            nbytes = (n + 7) // 8
            mask = np.zeros(nbytes, dtype=np.uint8) if 0.0 < p else np.full(nbytes, 0xFF, np.uint8)
        else:
            mask = np.zeros(shape, dtype=bool) if 0.0 < p else np.ones(shape, dtype=bool)
    except (ValueError, OverflowError) as exc:  # beyond what NumPy can represent
        raise ValueError(f"shape {shape} cannot be allocated by NumPy: {exc}") from None
    if type(seed) is not int:  # an int is its own seed; None, Generator, a layer's: draw
        seed = _seed.draw(seed)  # last: everything that can fail has been done
    if istrides is not None:
        if 0.0 < p < 1.0:
            _kernels.keep_mask_block(mask, seed, offset, p, n_threads, istrides)
        if packed:
            bits[...] = np.packbits(mask.ravel(), bitorder="little")
            return bits
        return mask
    if p == 0.0:
        if packed and n % 8:
            mask[-1] = (1 << (n % 8)) - 1
    elif p < 1.0:
        _kernels.keep_mask(mask, n, seed, offset, p, n_threads, packed)
    return mask


# Last, since cdrop/_variants.py imports names from this module (all defined by now).
from . import _variants  # noqa: E402
