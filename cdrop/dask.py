"""cdrop for dask: dropout of chunked (dask) arrays, with the same bits as :func:`cdrop.dropout`.

``import cdrop`` never imports this module (nor dask): ``import cdrop.dask`` does.  Install
dask with the ``dask`` extra (``pip install "cdrop[dask]"``).

Design:

* The mask of an element is a pure function of (seed, p, offset + its C-order index in the
  whole array) (docs/rng.md).  Each chunk is the block ``x[start[0]:..., start[1]:..., ...]``
  of the whole array, and ``cdrop.dropout(block, ..., global_shape=x.shape, start=start)``
  gives exactly that block of the in-memory result; so any chunking, any scheduler and any
  worker give the same bits, and a task gives the same value every time it runs (a worker
  that is lost and its chunks recomputed elsewhere changes nothing).
* The graph is one ``map_blocks`` layer: its tasks read the block's location from
  ``block_info`` and hold only (p, seed, offset, noise shape, thread count), 40 bytes or so:
  no mask, no shared state, nothing but the seed travels to the workers.
* ``seed=None`` (or a Generator) is drawn ONCE, when the graph is built, into an int key that
  the tasks carry: computing the result twice, or recomputing a lost chunk, gives the same
  array.  The output's name is ``tokenize(x, p, key, offset, noise_shape)``: the same inputs
  give the same keys (dask may then share the result), different keys give different names.
* Everything is checked in the call that builds the graph, so errors come from the caller's
  line, not from a worker at compute time.
* Tasks run cdrop with ONE OpenMP thread by default: dask already runs a task per core (the
  threaded scheduler has a thread per core, a LocalCluster's workers one task per worker
  thread), and OpenMP threads inside each would oversubscribe the cores.  ``num_threads=``
  changes it (e.g. a worker with one thread and big chunks may give each task all cores).
* Blocks are computed out of place: dask shares input chunks between tasks and with the
  caller, so a task must never write into its input.
"""
from __future__ import annotations

import math
from typing import Any, SupportsIndex

try:
    import dask.array as da
    from dask.base import tokenize
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cdrop.dask needs dask: install it with the dask extra (pip install \".[dask]\" from a "
        f"source checkout) or pip install \"dask[array]\". Original error: {_exc}"
    ) from _exc

from . import _dropout, _seed
from ._checks import (
    SeedSource,
    as_flag,
    check_dtype,
    check_noise_shape,
    check_num_threads,
    check_offset,
    check_p,
    check_seed,
)
from ._dropout import Flag, Seed
from ._layer import _Layer

__all__ = ["Dropout", "dropout"]

# what a task runs (a name of this module, so that a test can watch the calls)
_cdrop_dropout = _dropout.dropout


def _check_array(x, name):
    """`x` as a dask array of a supported dtype with known chunk sizes (errors name `name`)."""
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{name} must be a dask array (dask.array.Array), got {type(x).__name__}: use "
            "cdrop.dropout for NumPy arrays, or wrap them with dask.array.from_array"
        )
    check_dtype(x.dtype, name)
    if any(math.isnan(n) for n in x.shape):
        raise ValueError(
            f"{name} has unknown chunk sizes (shape {x.shape}); call "
            f"{name}.compute_chunk_sizes() first: each chunk's place in the whole array "
            "decides its mask"
        )
    return x


def dropout(
    x: da.Array,
    p: float = 0.5,
    training: Flag = True,
    *,
    seed: Seed = None,
    offset: SupportsIndex = 0,
    noise_shape: Any = None,
    num_threads: SupportsIndex = 1,
) -> da.Array:
    """Inverted dropout of a dask array: a lazy dask array, chunk for chunk.

    The result equals ``cdrop.dropout(x.compute(), p, seed=seed, offset=offset,
    noise_shape=noise_shape)`` bit for bit, for any chunking of `x` (regular, irregular, after
    ``rechunk``), any scheduler (threads, processes, a ``distributed`` cluster) and any
    worker: each chunk draws the mask of its elements' indices in the whole array.

    Parameters
    ----------
    x : dask.array.Array
        float16, bfloat16 (``ml_dtypes.bfloat16``), float32 or float64, any shape (0-d
        included), with known chunk sizes.
    p : float, default 0.5
        Probability of dropping an element, in [0, 1].
    training : bool, default True
        If False, `x` itself is returned and no seed is drawn.
    seed : int, numpy.random.Generator or None
        An int in [0, 2**64); a Generator is asked for one 64-bit key; None (the default) takes
        the next seed of cdrop's package stream (see :func:`cdrop.manual_seed`).  Drawn once,
        now: every computation of the result, and every recomputation of a lost chunk, uses it.
    offset : int, default 0
        Added to every element's global index, as in :func:`cdrop.dropout`.
    noise_shape : tuple of int or None, optional
        As in :func:`cdrop.dropout`: one entry per axis of `x`, x's size or 1 (one decision
        shared along that axis), None meaning x's size.
    num_threads : int, default 1
        OpenMP threads that each task gives cdrop.  One, because dask already runs one task
        per core (the threaded scheduler's pool, a cluster's worker threads): more threads
        inside each task would oversubscribe the cores.  Raise it when dask runs fewer tasks
        at a time than there are cores (e.g. a worker process with one thread on a machine of
        many cores).  The result does not depend on it.

    Returns
    -------
    dask.array.Array
        Lazy, with `x`'s shape, chunks and dtype; or `x` itself when `training` is False.  Its
        name is ``"cdrop-dropout-" + tokenize(x, p, key, offset, noise_shape)`` (key: the int
        seed drawn), so that the same inputs and seed give the same graph keys.

    Raises
    ------
    TypeError
        `x` not a dask array or of an unsupported dtype; `p` not a real number; `training`
        not a bool; bad type of `seed`, `offset`, `noise_shape` or `num_threads`.
    ValueError
        `p` outside [0, 1]; `seed` outside [0, 2**64); `offset` < 0 or past 2**64 - size;
        `noise_shape` that does not fit x's shape; `num_threads` < 1; `x` with unknown chunk
        sizes.  All are raised here, when the graph is built, never by a task; a call that
        raises draws no seed.

    Notes
    -----
    The backward pass of ``y = dropout(x, p, seed=s, offset=o)`` is ``dropout(grad, p,
    seed=s, offset=o)``, for any chunking of `grad` (see :class:`Dropout`).

    Examples
    --------
    >>> import numpy as np, dask.array as da, cdrop, cdrop.dask
    >>> x = np.arange(1.0, 25.0, dtype=np.float32).reshape(4, 6)
    >>> dx = da.from_array(x, chunks=((1, 3), (4, 2)))        # chunks split along both axes
    >>> y = cdrop.dask.dropout(dx, 0.5, seed=42)              # lazy: nothing computed yet
    >>> bool((y.compute() == cdrop.dropout(x, 0.5, seed=42)).all())
    True
    >>> z = cdrop.dask.dropout(dx, 0.5)                       # seed drawn once, now
    >>> bool((z.compute() == z.compute()).all())
    True
    >>> cdrop.dask.dropout(dx, 0.5, training=False) is dx
    True
    """
    x = _check_array(x, "x")
    p = check_p(p)
    training = as_flag(training, "training")
    ns = None if noise_shape is None else check_noise_shape(noise_shape, x.shape)
    if ns == x.shape:
        ns = None  # one decision per element: plain dropout, the same mask
    offset = check_offset(offset, math.prod(x.shape if ns is None else ns))
    num_threads = check_num_threads(num_threads)
    seed = check_seed(seed)
    if not training:
        return x  # evaluation consumes no seed
    key = seed if type(seed) is int else _seed.draw(seed)  # last: nothing can fail any more
    name = "cdrop-dropout-" + tokenize(x, p, key, offset, ns)
    return da.map_blocks(_block, x, name=name, dtype=x.dtype, meta=x._meta, p=p, seed=key,
                         offset=offset, noise_shape=ns, num_threads=num_threads)


def _block(block, *, p, seed, offset, noise_shape, num_threads, block_info=None):
    """One task: the dropout of the chunk at ``block_info[0]["array-location"]`` of the whole
    array, out of place (dask shares input chunks between tasks)."""
    info = block_info[0]
    start = tuple(a for a, _ in info["array-location"])
    return _cdrop_dropout(block, p, True, seed=seed, offset=offset, noise_shape=noise_shape,
                          num_threads=num_threads, global_shape=tuple(info["shape"]),
                          start=start)


class Dropout(_Layer):
    """Dropout layer for dask arrays, with a mask-free backward pass.

    As :class:`cdrop.Dropout`: in training mode each forward call draws a fresh key,
    ``derive(layer_seed, call_number)`` (docs/rng.md, section 7), when its graph is built;
    two layers built with the same seed give the same sequence; :meth:`train`, :meth:`eval`,
    the per-call ``training=`` override (Monte-Carlo dropout), pickling and the call counter
    are the same.  Only (key, p) of the last training-mode forward is remembered:
    :meth:`backward` builds a graph that recomputes the mask chunk by chunk (any chunking of
    the gradient), storing none.  Dask arrays are immutable, so there is no `inplace`.

    Parameters
    ----------
    p : float, default 0.5
        Drop probability, in [0, 1].
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream (see
        :func:`cdrop.manual_seed`).
    num_threads : int, default 1
        OpenMP threads per task, as in :func:`dropout` (which says why one is the default).

    Raises
    ------
    TypeError
        `p` not a real number, `seed` or `num_threads` of another type.
    ValueError
        `p` outside [0, 1], `seed` outside [0, 2**64), `num_threads` < 1.

    Attributes
    ----------
    p : float
        The drop probability (validated when set).
    training : bool
        True after construction; set by :meth:`train` and :meth:`eval`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, cdrop.dask
    >>> layer = cdrop.dask.Dropout(0.5, seed=0)
    >>> x = da.ones((4, 6), chunks=(2, 3), dtype=np.float32)
    >>> y = layer(x)                                   # lazy
    >>> g = layer.backward(da.ones((4, 6), chunks=(4, 1), dtype=np.float32))
    >>> bool(((g != 0) == (y != 0)).all().compute())   # the forward's mask, other chunks
    True
    >>> layer.eval()(x) is x
    True
    >>> layer
    Dropout(p=0.5)
    """

    def __init__(self, p: float = 0.5, *, seed: Seed = None,
                 num_threads: SupportsIndex = 1) -> None:
        self.p = p
        self.num_threads = check_num_threads(num_threads)
        self._init_layer(seed)

    def forward(self, x: da.Array, training: Flag | None = None) -> da.Array:
        """Dropout of `x` (training mode) or `x` itself (evaluation mode), lazily.

        Parameters
        ----------
        x : dask.array.Array
            As in :func:`dropout`.
        training : bool, optional
            None (the default) follows the layer's mode; True or False overrides it for this
            call, and :meth:`backward` then follows this call's mode.

        Returns
        -------
        dask.array.Array
            See :func:`dropout`.

        Raises
        ------
        TypeError, ValueError
            As :func:`dropout` does for `x`.  A call that raises takes no call number.

        Examples
        --------
        >>> import dask.array as da, cdrop.dask
        >>> layer = cdrop.dask.Dropout(0.5, seed=1)
        >>> x = da.ones(64, chunks=16)
        >>> a, b = layer(x), layer(x)
        >>> bool((a == b).all().compute())         # a fresh key per call
        False
        """
        mode, forced = self._mode(training)
        if not mode:
            y = dropout(x, self._p, False)  # checks x
            self._last = (None, None, None, None, forced)
            return y
        # the call number is taken only if nothing fails (a SeedSource: internal, not a Seed)
        source = SeedSource(self._seeds)
        y = dropout(x, self._p, True, num_threads=self.num_threads,
                    seed=source)  # type: ignore[arg-type]
        self._last = (source.value, self._p, y.shape, None, forced)
        return y

    def backward(self, grad: da.Array) -> da.Array:
        """Gradient with respect to the last forward call's input, lazily.

        Follows the mode of the forward call it belongs to (the last one), as
        :meth:`cdrop.Dropout.backward` does: after a training-mode forward it is
        ``dropout(grad, p, seed=<that call's key>)``, whose tasks recompute the mask of each
        chunk of `grad` (any chunking); after an evaluation-mode forward it returns `grad`
        itself.

        Parameters
        ----------
        grad : dask.array.Array
            The shape of the last forward's output; any chunks.

        Returns
        -------
        dask.array.Array

        Raises
        ------
        RuntimeError
            In training mode, before any forward call.
        TypeError
            `grad` not a dask array of a supported dtype.
        ValueError
            After a training-mode forward, if `grad`'s shape differs from that forward's output.

        Examples
        --------
        >>> import numpy as np, dask.array as da, cdrop.dask
        >>> layer = cdrop.dask.Dropout(0.25, seed=3)
        >>> y = layer(da.full(6, 2.0, chunks=4))
        >>> bool((layer.backward(da.ones(6, chunks=3)) * 2.0 == y).all().compute())
        True
        """
        last = self._record()
        if last is None:
            return grad
        key, p, shape = last[:3]
        grad = _check_array(grad, "grad")  # so that errors name grad, not dropout's x
        if grad.shape != shape:
            raise ValueError(
                f"grad has shape {grad.shape}, but the last forward output had shape {shape}"
            )
        return dropout(grad, p, True, seed=key, num_threads=self.num_threads)

    def __repr__(self) -> str:
        return f"Dropout(p={self._p!r})"
