"""The dropout family (issue 11): channel-wise masks, DropPath, alpha dropout, Gaussian noise
and the fused residual add, as functions with the contract of :func:`cdrop.dropout`.

Each function checks every argument (cdrop/_checks.py) before it allocates, draws a seed or
writes, then runs one pass of ``_kernels.apply_variant`` (through cdrop/_apply.py).  Channel-wise
masks are drawn at the noise shape's size by ``_kernels.keep_mask`` (the counter is the C-order
index in the noise shape, plus `offset`) and broadcast to x's shape as a read-only view.
``p == 0`` and ``p == 1`` (``stddev == 0``) are handled here, as :func:`cdrop.dropout` handles
them: the seed is still drawn (a call consumes one seed whatever its p), no kernel runs.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, SupportsIndex

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _apply, _kernels, _seed, _threads
from ._checks import (
    FLOAT32,
    FLOAT64,
    U64,
    as_flag,
    as_float_array,
    block_counters,
    check_block,
    check_nonneg_real,
    check_offset,
    check_other_operand,
    check_out,
    check_p,
    check_seed,
    check_writable,
    inplace_needs_ndarray,
    same_elements,
)
from ._dropout import Flag, Seed, _masked_result, empty_like

_ndarray = np.ndarray
ALPHA_P = -1.7580993408473766  # PyTorch's alpha: -SELU.scale * SELU.alpha
_ZERO = 0
_INF = float("inf")
_variant = _kernels.apply_variant
_stream = _seed.stream


def _fast(op, x, p, seed, c0, c1=0.0, c2=0.0, residual=None, bias=None):
    """The common call of an element-wise variant, as dropout's fast path (cdrop/_dropout.py):
    `x` a float32/float64 ndarray, `seed` an int in [0, 2**64) or None, the caller having
    checked that every other argument is at its default and `p` (or `stddev`) a float in range.
    Then everything is valid, so it allocates, draws the seed and runs the kernel without the
    general path's function calls (5-10 us of a 1,000-element call, where the kernel takes
    0.4).  Returns (result, seed): result None when the call is not the common one (nothing
    drawn: seed unchanged) or when an operand is not aligned for the kernel (seed is then the
    drawn int, for the general path to use)."""
    if type(x) is not _ndarray:
        return None, seed
    dt = x.dtype
    if (dt is not FLOAT32 and dt is not FLOAT64) or not (
            seed is None or type(seed) is int and 0 <= seed < U64):
        return None, seed
    dst = empty_like(x)
    if seed is None:
        seed = next(_stream.seeds)  # last: nothing can fail any more
    if _variant(op, x, dst, seed, 0, p, 0, None, residual, bias, c0, c1, c2, False):
        return dst, seed
    return None, seed


# ---------------------------------------------------------------------------------------------
# The steps every function shares.
# ---------------------------------------------------------------------------------------------
def _target(x, training, inplace, out):
    """The checks of dropout's general path for x, training, inplace and out, in its order.

    Returns (x, xb, out, ob, training): xb is x as a plain ndarray (what the kernels read), ob
    the target as one (x's own elements in place, out's, or None for a new array)."""
    training = as_flag(training, "training")
    inplace = as_flag(inplace, "inplace")
    if inplace and not isinstance(x, _ndarray):
        raise inplace_needs_ndarray(x)
    xb = as_float_array(x, "x")
    if not isinstance(x, _ndarray):
        x = xb
    ob = None
    if out is not None:
        ob = check_out(out, xb)
    if inplace:
        if out is None:
            out, ob = x, xb
        elif out is not x and not same_elements(ob, xb):
            raise ValueError("pass either inplace=True or out=, not both (or out=x)")
        if training:  # evaluation mode writes nothing, so a read-only x is fine there
            check_writable(xb, "x")
    return x, xb, out, ob, training


def _identity(x, xb, out, ob):
    """training=False: x itself, or a copy into out (no seed consumed)."""
    if out is None or out is x:
        return x
    np.copyto(ob, xb)
    return out


def _result(x, xb, out, ob, fresh):
    """What the call returns: out (or x in place), or the new array `ob` wrapped as NumPy's
    ufuncs wrap results of subclasses (a masked array keeps x's mask)."""
    if not fresh:
        return out
    if x is xb or type(x) is _ndarray:
        return ob
    if isinstance(x, np.ma.MaskedArray):
        return _masked_result(x, ob)
    return x.__array_wrap__(ob)


def _execute(x, xb, out, ob, seed, offset, n_threads, p, *, op, c=(0.0, 0.0, 0.0),
             special=None, noise=None, block=None):
    """Allocate, draw the seed (last), run.  Nothing here can fail but MemoryError, which comes
    before the draw.

    special: None (run the kernel), "copy" (x unchanged) or "zeros"; noise: the noise shape of
    a shared mask (None: element-wise, the kernel draws the mask itself); block: x is a block
    of a larger array, (global_shape, start) as check_block returns them, and `noise` (if any)
    refers to global_shape.  A block's mask is made first, as a keep array (of the noise
    shape's part of the block, broadcast), and then applied."""
    fresh = ob is None
    if fresh:
        ob = empty_like(xb)  # layout of x (order="K"); a plain ndarray: no subclass code runs
    keep = src = dst = None
    if special is None:
        src = _apply.aligned(xb)
        dst = ob if _apply.kernel_aligned(ob) else empty_like(xb)
        if block is not None:
            # the keep array: the block of the (noise-shaped) mask array that x's block sees
            gshape, start = block
            if noise is not None:
                start = tuple(0 if m == 1 else a for m, a in zip(noise, start))
                gshape = noise
            keep = np.zeros([1 if m == 1 else n for m, n in zip(gshape, xb.shape)], dtype=bool)
            block = (gshape, start)
        elif noise is not None:
            keep = np.zeros(noise, dtype=bool)
    if type(seed) is not int:  # an int is its own seed; None, Generator, a layer's: draw
        seed = _seed.draw(seed)  # last: everything that can fail has been done
    if special == "copy":
        if ob is not xb:
            np.copyto(ob, xb)
    elif special == "zeros":
        ob.fill(0)
    else:
        keepb = None
        if keep is not None:
            base, istrides = offset, None
            if block is not None:
                base, istrides = block_counters(keep.shape, block[0], block[1], offset)
            if istrides is None:
                _kernels.keep_mask(keep, keep.size, seed, base, p, n_threads, False)
            else:
                _kernels.keep_mask_block(keep, seed, base, p, n_threads, istrides)
            keepb = _apply.broadcast_view(keep, xb.shape)
        _apply.run(op, src, dst, seed, offset, p, n_threads, keepb, None, None, *c)
        if dst is not ob:
            np.copyto(ob, dst)
    return _result(x, xb, out, ob, fresh)


def _noise_offset(offset, noise, size):
    """The offset checked against the number of random decisions the call makes."""
    return check_offset(offset, size if noise is None else math.prod(noise))


def _block_noise(xb, noise, global_shape, start):
    """(block, shape the counters index, noise shape or None): the block of check_block, and
    the noise shape that `noise` (a function of a shape, or None) gives for the global array
    (x's own shape without a block); None when it is one decision per element."""
    block = check_block(global_shape, start, xb.shape)
    whole = xb.shape if block is None else block[0]
    ns = None if noise is None else noise(whole)
    return block, whole, None if ns == whole else ns


def masked_scale(x, p, training, *, inplace=False, out=None, seed=None, offset=0,
                 num_threads=None, noise=None, scale=None, name="dropout", global_shape=None,
                 start=None):
    """``x * scale`` where kept, +0.0 where dropped (OP_DROP): dropout with a mask shared along
    the axes where `noise` (a function of x's shape, or None) has 1, and a scale other than
    1/(1-p) if given (DropPath's 1.0, alpha dropout's backward).  Internal."""
    p = check_p(p)
    x, xb, out, ob, training = _target(x, training, inplace, out)
    # ns None: one decision per element, the element-wise mask, the same bits
    block, whole, ns = _block_noise(xb, noise, global_shape, start)
    n_threads = _threads.resolve(num_threads)
    offset = _noise_offset(offset, ns, math.prod(whole))
    seed = check_seed(seed)
    if not training:
        return _identity(x, xb, out, ob)
    if p == 0.0 or p == 1.0:  # (every caller's scale is 1 at p == 0)
        return _execute(x, xb, out, ob, seed, offset, n_threads, p, op=None,
                        special="copy" if p == 0.0 else "zeros")
    c0 = 1.0 / (1.0 - p) if scale is None else scale
    return _execute(x, xb, out, ob, seed, offset, n_threads, p, op=_apply.OP_DROP,
                    c=(c0, 0.0, 0.0), noise=ns, block=block)


# ---------------------------------------------------------------------------------------------
# Public functions.
# ---------------------------------------------------------------------------------------------
def _per_sample(shape):
    if len(shape) == 0:
        raise ValueError("drop_path needs x with at least one axis (one decision per sample "
                         "along axis 0), got a 0-d array")
    return (shape[0],) + (1,) * (len(shape) - 1)


def drop_path(
    x: ArrayLike,
    p: float = 0.0,
    training: Flag = True,
    *,
    scale_by_keep: Flag = True,
    inplace: Flag = False,
    seed: Seed = None,
    offset: SupportsIndex = 0,
    num_threads: SupportsIndex | None = None,
    global_shape: Sequence[SupportsIndex] | None = None,
    start: Sequence[SupportsIndex] | None = None,
) -> NDArray[Any]:
    """Stochastic depth (timm's ``drop_path``): drop whole samples along axis 0.

    One keep decision per sample ``x[i]``, shared by all its elements; kept samples are scaled
    by 1/(1-p) (or not at all with ``scale_by_keep=False``).  With seed `s` and offset `o`::

        keep = cdrop.dropout_mask((x.shape[0],) + (1,) * (x.ndim - 1), p, seed=s, offset=o)
        y = np.where(np.broadcast_to(keep, x.shape), x * scale, 0)

    Parameters
    ----------
    x : ndarray or array_like
        float16, bfloat16, float32 or float64, at least 1-d (axis 0 is the batch), any layout.
    p : float, default 0.0
        Probability of dropping a sample, in [0, 1].
    training : bool, default True
        False: the identity (`x` itself, no seed consumed), as in :func:`cdrop.dropout`.
    scale_by_keep : bool, default True
        Scale kept samples by 1/(1-p) (timm's default).
    inplace : bool, default False
        Write the result into `x`.
    seed, offset, num_threads
        As in :func:`cdrop.dropout`; the counter of sample i is ``i + offset``.
    global_shape, start : tuple of int, optional
        `x` is a block of a larger array, as in :func:`cdrop.dropout`: sample i of the block
        is sample ``start[0] + i`` of that array, and gets its decision.

    Returns
    -------
    ndarray
        As :func:`cdrop.dropout` returns.  ``p == 0`` copies `x`, ``p == 1`` gives zeros (a
        seed is consumed in both cases, no random number is drawn).

    Raises
    ------
    TypeError, ValueError, MemoryError
        As :func:`cdrop.dropout`; ValueError also for a 0-d `x`.  A call that raises writes
        nothing and consumes no seed.

    See Also
    --------
    DropPath : the layer.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> y = cdrop.drop_path(np.ones((4, 3), np.float32), 0.5, seed=1)
    >>> y.tolist()
    [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    >>> cdrop.drop_path(np.ones((4, 3)), 0.5, seed=1, scale_by_keep=False)[:, 0].tolist()
    [0.0, 1.0, 1.0, 1.0]
    """
    p = check_p(p)
    scale_by_keep = as_flag(scale_by_keep, "scale_by_keep")
    return masked_scale(x, p, training, inplace=inplace, seed=seed, offset=offset,
                        num_threads=num_threads, noise=_per_sample,
                        scale=None if scale_by_keep else 1.0, global_shape=global_shape,
                        start=start)


def alpha_constants(p):
    """PyTorch's (a, b, dropped value) of alpha dropout for 0 < p < 1, in binary64."""
    a = ((1.0 - p) * (1.0 + p * ALPHA_P**2)) ** -0.5
    b = -a * ALPHA_P * p
    return a, b, a * ALPHA_P + b


def _alpha(x, p, training, inplace, out, seed, offset, num_threads, noise=None,
           global_shape=None, start=None):
    p = check_p(p)
    x, xb, out, ob, training = _target(x, training, inplace, out)
    block, whole, ns = _block_noise(xb, noise, global_shape, start)
    n_threads = _threads.resolve(num_threads)
    offset = _noise_offset(offset, ns, math.prod(whole))
    seed = check_seed(seed)
    if not training:
        return _identity(x, xb, out, ob)
    if p == 0.0 or p == 1.0:  # a = 1, b = 0: x; p == 1: zeros, as PyTorch gives
        return _execute(x, xb, out, ob, seed, offset, n_threads, p, op=None,
                        special="copy" if p == 0.0 else "zeros")
    return _execute(x, xb, out, ob, seed, offset, n_threads, p, op=_apply.OP_ALPHA,
                    c=alpha_constants(p), noise=ns, block=block)


def alpha_dropout(
    x: ArrayLike,
    p: float = 0.5,
    training: Flag = True,
    *,
    inplace: Flag = False,
    out: NDArray[Any] | None = None,
    seed: Seed = None,
    offset: SupportsIndex = 0,
    num_threads: SupportsIndex | None = None,
    global_shape: Sequence[SupportsIndex] | None = None,
    start: Sequence[SupportsIndex] | None = None,
) -> NDArray[Any]:
    """Alpha dropout (PyTorch's ``F.alpha_dropout``), for self-normalising networks.

    Dropped elements are set to SELU's negative saturation value, then everything is scaled
    and shifted so that zero-mean, unit-variance inputs keep mean 0 and variance 1::

        alpha_p = -1.7580993408473766
        a = ((1 - p) * (1 + p * alpha_p**2)) ** -0.5
        b = -a * alpha_p * p
        keep = cdrop.dropout_mask(x.shape, p, seed=s, offset=o)
        y = np.where(keep, x * a + b, a * alpha_p + b)

    (in x's precision: a, b and ``a * alpha_p + b`` computed in binary64 and rounded once to
    float32, or float64 for float64 x; half precision computes in float32 and rounds once).

    Parameters
    ----------
    x : ndarray or array_like
        float16, bfloat16, float32 or float64, any shape and layout.
    p : float, default 0.5
        Drop probability, in [0, 1].
    training : bool, default True
        False: the identity, as in :func:`cdrop.dropout`.
    inplace, out, seed, offset, num_threads
        As in :func:`cdrop.dropout`.
    global_shape, start : tuple of int, optional
        `x` is a block of a larger array, as in :func:`cdrop.dropout`.

    Returns
    -------
    ndarray
        As :func:`cdrop.dropout` returns.  ``p == 0`` copies `x`; ``p == 1`` gives zeros, as
        PyTorch does (a seed is consumed, no random number is drawn).

    Raises
    ------
    TypeError, ValueError, MemoryError
        As :func:`cdrop.dropout`.  A call that raises writes nothing and consumes no seed.

    See Also
    --------
    AlphaDropout, FeatureAlphaDropout : the layers.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> y = cdrop.alpha_dropout(np.zeros(4), 0.5, seed=3)   # kept: b, dropped: a * alpha_p + b
    >>> np.round(y, 4).tolist()
    [0.7792, -0.7792, -0.7792, -0.7792]
    """
    if (training is True and inplace is False and out is None and offset is _ZERO
            and num_threads is None and global_shape is None and start is None
            and type(p) is float and 0.0 < p < 1.0):
        y, seed = _fast(_apply.OP_ALPHA, x, p, seed, *alpha_constants(p))
        if y is not None:
            return y
    return _alpha(x, p, training, inplace, out, seed, offset, num_threads,
                  global_shape=global_shape, start=start)


def _gaussian(x, c0, training, inplace, out, seed, offset, num_threads, op):
    x, xb, out, ob, training = _target(x, training, inplace, out)
    n_threads = _threads.resolve(num_threads)
    offset = check_offset(offset, xb.size)
    seed = check_seed(seed)
    if not training:
        return _identity(x, xb, out, ob)
    return _execute(x, xb, out, ob, seed, offset, n_threads, 0.5, op=op, c=(c0, 0.0, 0.0),
                    special="copy" if c0 == 0.0 else None)


def gaussian_p(p):
    """`p` checked for Gaussian dropout: [0, 1) (the noise variance p/(1-p) is infinite at 1)."""
    p = check_p(p)
    if p == 1.0:
        raise ValueError("p must be in [0, 1) for Gaussian dropout (the noise variance "
                         "p/(1-p) is infinite at p = 1), got 1.0")
    return p


def gaussian_dropout(
    x: ArrayLike,
    p: float = 0.5,
    training: Flag = True,
    *,
    inplace: Flag = False,
    out: NDArray[Any] | None = None,
    seed: Seed = None,
    offset: SupportsIndex = 0,
    num_threads: SupportsIndex | None = None,
) -> NDArray[Any]:
    """Gaussian dropout (Keras' ``GaussianDropout``): multiply by noise from N(1, p/(1-p)).

    ``y = x * (1 + sqrt(p/(1-p)) * z)`` with z the counter-based float32 standard normal of
    each element's C-order index + `offset` for `seed` (docs/rng.md, "Normal numbers"),
    rounded after each operation in x's precision (half precision: in float32, rounded once).

    Parameters
    ----------
    x : ndarray or array_like
        float16, bfloat16, float32 or float64, any shape and layout.
    p : float, default 0.5
        Keras' `rate`, in [0, 1): the noise has variance p/(1-p).
    training : bool, default True
        False: the identity, as in :func:`cdrop.dropout`.
    inplace, out, seed, offset, num_threads
        As in :func:`cdrop.dropout`.

    Returns
    -------
    ndarray
        As :func:`cdrop.dropout` returns.  ``p == 0`` copies `x` (a seed is consumed).

    Raises
    ------
    TypeError, ValueError, MemoryError
        As :func:`cdrop.dropout`; ValueError also for ``p == 1``.  A call that raises writes
        nothing and consumes no seed.

    See Also
    --------
    GaussianDropout : the layer.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> x = np.ones(100_000)
    >>> y = cdrop.gaussian_dropout(x, 0.2, seed=0)
    >>> bool(abs(y.mean() - 1) < 0.01 and abs(y.var() - 0.25) < 0.01)
    True
    """
    if (training is True and inplace is False and out is None and offset is _ZERO
            and num_threads is None and type(p) is float and 0.0 < p < 1.0):
        y, seed = _fast(_apply.OP_GMUL, x, 0.5, seed, math.sqrt(p / (1.0 - p)))
        if y is not None:
            return y
    p = gaussian_p(p)
    return _gaussian(x, math.sqrt(p / (1.0 - p)), training, inplace, out, seed, offset,
                     num_threads, _apply.OP_GMUL)


def gaussian_noise(
    x: ArrayLike,
    stddev: float,
    training: Flag = True,
    *,
    inplace: Flag = False,
    out: NDArray[Any] | None = None,
    seed: Seed = None,
    offset: SupportsIndex = 0,
    num_threads: SupportsIndex | None = None,
) -> NDArray[Any]:
    """Additive Gaussian noise (Keras' ``GaussianNoise``): ``y = x + stddev * z``.

    z is the counter-based float32 standard normal of each element's C-order index + `offset`
    for `seed` (docs/rng.md, "Normal numbers"); ``stddev * z`` and the sum are rounded in x's
    precision (half precision: in float32, rounded once).

    Parameters
    ----------
    x : ndarray or array_like
        float16, bfloat16, float32 or float64, any shape and layout.
    stddev : float
        Standard deviation of the noise, finite and >= 0.
    training : bool, default True
        False: the identity, as in :func:`cdrop.dropout`.
    inplace, out, seed, offset, num_threads
        As in :func:`cdrop.dropout`.

    Returns
    -------
    ndarray
        As :func:`cdrop.dropout` returns.  ``stddev == 0`` copies `x` (a seed is consumed).

    Raises
    ------
    TypeError, ValueError, MemoryError
        As :func:`cdrop.dropout`; TypeError for a `stddev` that is not a real number,
        ValueError for a negative, infinite or NaN one.  A call that raises writes nothing and
        consumes no seed.

    See Also
    --------
    GaussianNoise : the layer.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> y = cdrop.gaussian_noise(np.zeros(100_000), 0.5, seed=0)
    >>> bool(abs(y.mean()) < 0.01 and abs(y.std() - 0.5) < 0.01)
    True
    """
    if (training is True and inplace is False and out is None and offset is _ZERO
            and num_threads is None and type(stddev) is float and 0.0 < stddev < _INF):
        y, seed = _fast(_apply.OP_GADD, x, 0.5, seed, stddev)
        if y is not None:
            return y
    stddev = check_nonneg_real(stddev, "stddev")
    return _gaussian(x, stddev, training, inplace, out, seed, offset, num_threads,
                     _apply.OP_GADD)


def _operand_mask(x, residual, bias, shape):
    """The mask of residual + dropout(x + bias) when residual or bias is a masked array with a
    mask (x's own, too), broadcast to x's shape; None when neither is."""
    if not any(isinstance(a, np.ma.MaskedArray) and np.ma.getmask(a) is not np.ma.nomask
               for a in (residual, bias)):
        return None
    mask = np.zeros(shape, dtype=bool)
    for a in (x, residual, bias):
        if isinstance(a, np.ma.MaskedArray) and np.ma.getmask(a) is not np.ma.nomask:
            mask |= np.ma.getmaskarray(a)  # (broadcasts a bias's mask along x's axes)
    return mask


def _operand(a, xb, name):
    """residual or bias as a plain ndarray of x's dtype (array-likes converted)."""
    ab = as_float_array(a, name)
    if ab.dtype != xb.dtype:
        raise TypeError(f"{name} has dtype {ab.dtype}, but x has dtype {xb.dtype}; they must "
                        "match")
    return ab


def dropout_add(
    x: ArrayLike,
    residual: ArrayLike,
    p: float = 0.5,
    training: Flag = True,
    *,
    bias: ArrayLike | None = None,
    out: NDArray[Any] | None = None,
    seed: Seed = None,
    offset: SupportsIndex = 0,
    num_threads: SupportsIndex | None = None,
    global_shape: Sequence[SupportsIndex] | None = None,
    start: Sequence[SupportsIndex] | None = None,
) -> NDArray[Any]:
    """``residual + dropout(x + bias)`` in one pass (a transformer block's residual branch).

    The mask is that of :func:`cdrop.dropout` on x's shape for the same `seed` and `offset`,
    and the result equals, bit for bit::

        residual + cdrop.dropout(x + bias, p, seed=s, offset=o)

    computed in x's precision: each of the three steps is rounded to x's dtype (also for
    float16 and bfloat16), and the build contracts no multiply-add into an FMA
    (``-ffp-contract=off``), so there is no second rounding to differ by.  (One exception:
    where two NaNs meet in a sum, which NaN payload survives is the hardware's choice.)

    Parameters
    ----------
    x : ndarray or array_like
        float16, bfloat16, float32 or float64, any shape and layout.
    residual : ndarray or array_like
        x's shape and dtype.
    p : float, default 0.5
        Drop probability, in [0, 1].
    training : bool, default True
        False: ``residual + (x + bias)`` (nothing dropped, no seed consumed).
    bias : ndarray or array_like, optional
        x's dtype, broadcast against x (typically shape ``(x.shape[-1],)``: one bias per
        feature along the last axis).
    out : ndarray, optional
        Where to write the result: x's shape and dtype; it may be `residual` or `x` (the same
        elements in the same order), or memory that overlaps none of x, residual and bias.
    seed, offset, num_threads
        As in :func:`cdrop.dropout`.
    global_shape, start : tuple of int, optional
        `x` (and `residual`) are a block of larger arrays, as in :func:`cdrop.dropout`: the
        mask is that block of the larger array's mask.

    Returns
    -------
    ndarray
        `out`, or a new array with x's shape, dtype and layout.  ``p == 0`` gives
        ``residual + (x + bias)``, ``p == 1`` ``residual + 0.0`` (a seed is consumed).

    Raises
    ------
    TypeError
        As :func:`cdrop.dropout`; also `residual` or `bias` not convertible, or of another
        dtype than x.
    ValueError
        As :func:`cdrop.dropout`; also `residual` of another shape, `bias` that does not
        broadcast to x's shape, `out` that overlaps x, residual or bias other than element for
        element.
    MemoryError
        A call that raises writes nothing and consumes no seed.

    See Also
    --------
    DropoutAdd : the layer, whose backward returns (grad_x, grad_residual, grad_bias).

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> x, r, b = np.ones((2, 3)), np.full((2, 3), 10.0), np.array([0.0, 1.0, 2.0])
    >>> y = cdrop.dropout_add(x, r, 0.5, bias=b, seed=4)
    >>> bool((y == r + cdrop.dropout(x + b, 0.5, seed=4)).all())
    True
    >>> cdrop.dropout_add(x, r, 0.5, bias=b, out=r, seed=4) is r   # in place into residual
    True
    """
    if (training is True and out is None and offset is _ZERO and num_threads is None
            and global_shape is None and start is None
            and type(p) is float and 0.0 < p < 1.0 and type(x) is _ndarray
            and type(residual) is _ndarray and residual.dtype is x.dtype
            and residual.shape == x.shape):
        # the common call (see _fast); a bias: one contiguous row along the last axis
        if bias is None:
            y, seed = _fast(_apply.OP_ADD, x, p, seed, 1.0 / (1.0 - p), residual=residual)
            if y is not None:
                return y
        elif (type(bias) is _ndarray and bias.dtype is x.dtype and bias.ndim == 1
              and x.ndim and bias.shape[0] == x.shape[-1] and bias.flags.c_contiguous):
            # (the kernel broadcasts a 1-D row itself: a broadcast view costs 1-2 us)
            y, seed = _fast(_apply.OP_ADD, x, p, seed, 1.0 / (1.0 - p), residual=residual,
                            bias=bias)
            if y is not None:
                return y
    p = check_p(p)
    training = as_flag(training, "training")
    xb = as_float_array(x, "x")
    if not isinstance(x, _ndarray):
        x = xb
    rb = _operand(residual, xb, "residual")
    if rb.shape != xb.shape:
        raise ValueError(f"residual has shape {rb.shape}, but x has shape {xb.shape}; they "
                         "must match")
    bb = None
    if bias is not None:
        bb = _operand(bias, xb, "bias")
        # (by hand: np.broadcast_to costs microseconds, and more again when the kernel takes
        # its buffer)
        if bb.ndim > xb.ndim or any(b != 1 and b != n for b, n in
                                    zip(bb.shape[::-1], xb.shape[::-1])):
            raise ValueError(f"bias of shape {bb.shape} does not broadcast to x's shape "
                             f"{xb.shape}")
    ob = None
    if out is not None:
        ob = check_out(out, xb)
        check_other_operand(ob, rb, "residual")
        if bb is not None:
            check_other_operand(ob, np.broadcast_to(bb, xb.shape), "bias")
    block = check_block(global_shape, start, xb.shape)
    n_threads = _threads.resolve(num_threads)
    offset = check_offset(offset, xb.size if block is None else math.prod(block[0]))
    istrides = None
    if block is not None:
        offset, istrides = block_counters(xb.shape, block[0], block[1], offset)
    seed = check_seed(seed)
    fresh = ob is None
    if fresh:
        ob = empty_like(xb)
        # A masked residual or bias masks the result where it is masked, as NumPy's sum does
        # (a masked x is handled by _result, as in cdrop.dropout); the mask is made now, before
        # the seed is drawn, since it allocates.
        mask = _operand_mask(x, residual, bias, xb.shape)
        if mask is not None:
            x = np.ma.masked_array(xb, mask=mask)  # _result wraps ob with this mask
    # NumPy's adds below: IEEE results without warnings, as the kernel gives them (overflow to
    # inf and inf - inf are legitimate results of the definition)
    if not training or p == 0.0:  # residual + (x + bias): no kernel
        t = xb
        if bb is not None:
            with np.errstate(all="ignore"):
                t = np.add(xb, bb)  # allocated before the seed is drawn
        if training and type(seed) is not int:
            seed = _seed.draw(seed)  # p == 0 consumes a seed, as cdrop.dropout does
        with np.errstate(all="ignore"):
            np.add(rb, t, out=ob)
        return _result(x, xb, out, ob, fresh)
    if p == 1.0:
        if type(seed) is not int:
            seed = _seed.draw(seed)
        with np.errstate(all="ignore"):
            np.add(rb, xb.dtype.type(0), out=ob)  # residual + (+0.0), the sum with zeros
        return _result(x, xb, out, ob, fresh)
    src, ra = _apply.aligned(xb), _apply.aligned(rb)
    bfa = None
    if bb is not None:  # a C-contiguous aligned copy if need be (small), broadcast
        if not (bb.flags.c_contiguous and _apply.kernel_aligned(bb)):
            bb = np.array(bb, order="C")  # a new (so aligned) array
        bfa = _apply.broadcast_view(bb, xb.shape)
    dst = ob if _apply.kernel_aligned(ob) else empty_like(xb)
    # a block whose counters are not one run: its keep bytes first (kernels.keep_mask_block)
    keep = None if istrides is None else np.zeros(xb.shape, dtype=bool)
    if type(seed) is not int:
        seed = _seed.draw(seed)  # last: everything that can fail has been done
    if keep is not None:
        _kernels.keep_mask_block(keep, seed, offset, p, n_threads, istrides)
    _apply.run(_apply.OP_ADD, src, dst, seed, offset, p, n_threads, keep, ra, bfa,
               1.0 / (1.0 - p))
    if dst is not ob:
        np.copyto(ob, dst)
    return _result(x, xb, out, ob, fresh)
