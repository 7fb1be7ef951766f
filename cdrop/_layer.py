"""The Dropout layer: train/eval modes and a backward pass that recomputes its mask."""
from __future__ import annotations

import itertools
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _kernels
from ._checks import FLOAT32, FLOAT64, SeedSource, as_flag, as_float_array, base, check_p
from ._dropout import Flag, Seed, apply_misaligned, dropout, empty_like
from ._seed import count_of, derived_seeds, resolve_seed

if TYPE_CHECKING:  # for annotations only, which are never evaluated: no run-time dependency
    from typing_extensions import Self

# Every layer, so that a fork()ed child can replace their locks (taken around each call number
# in free-threaded builds): one held by another thread of the parent at fork time would stay
# held in the child forever (multiprocessing, DataLoader).
_LAYERS = weakref.WeakSet()


def _new_locks_after_fork():
    for layer in list(_LAYERS):
        layer._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_locks_after_fork)

_ndarray = np.ndarray
_apply = _kernels.apply


class Dropout:
    """Dropout layer with a mask-free backward pass.

    In training mode each forward call draws a fresh mask from the seed
    ``derive(layer_seed, call_number)`` (docs/rng.md, section 7): consecutive calls differ,
    and two layers built with the same seed produce the same sequence.  Only that 64-bit seed
    is remembered, so :meth:`backward` recomputes the mask instead of storing it (O(1) memory).
    Threads may share a layer: each training-mode forward call takes its own call number, once
    nothing can fail any more (backward refers to whichever call recorded its mask last).
    float16, bfloat16 (``ml_dtypes.bfloat16``), float32 and float64 arrays, as :func:`dropout`.

    Parameters
    ----------
    p : float, default 0.5
        Drop probability, in [0, 1].
    inplace : bool, default False
        Forward writes into its input and returns it (backward never does).  A bool or
        ``numpy.bool_``.
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream (see :func:`manual_seed`).

    Raises
    ------
    TypeError
        `p` not a real number, `inplace` not a bool, or `seed` of another type.
    ValueError
        `p` outside [0, 1], or `seed` outside [0, 2**64).

    Attributes
    ----------
    p : float
        The drop probability (validated when set).
    inplace : bool
    training : bool
        True after construction; set by :meth:`train` and :meth:`eval`.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> layer = cdrop.Dropout(0.5, seed=0)
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> y = layer(x)
    >>> g = layer.backward(np.ones_like(x))   # same mask and scale as the forward
    >>> bool(((g != 0) == (y != 0)).all())
    True
    >>> layer.eval()(x) is x
    True
    >>> layer
    Dropout(p=0.5, inplace=False)
    """

    def __init__(self, p: float = 0.5, *, inplace: Flag = False, seed: Seed = None) -> None:
        self.p = p
        self.inplace = as_flag(inplace, "inplace")
        self._seed = resolve_seed(seed)
        self._last = None  # (seed, p, shape) of the last training forward; "eval" after an eval one
        self.training = True
        self._lock = threading.Lock()
        self._start(0)
        _LAYERS.add(self)

    def _start(self, calls):
        # The RNG position: training-mode forward calls take the seeds derive(seed, calls),
        # derive(seed, calls + 1), ... from one iterator, atomically (see cdrop/_seed.py), so
        # threads sharing the layer never get the same mask; a call takes its seed only when
        # nothing can fail any more, so a failing call takes no number.
        self._counter = itertools.count(calls)
        self._seeds = derived_seeds(self._seed, self._counter, self)

    @property
    def _calls(self):
        """Training-mode forward calls made so far: the RNG position."""
        return count_of(self._counter)

    def __getstate__(self) -> dict[str, Any]:
        # pickle and copy.deepcopy: the position as a number; a lock is neither picklable nor
        # shared, and the seed iterator is rebuilt from the position
        state = self.__dict__.copy()
        for name in ("_lock", "_counter", "_seeds"):
            state.pop(name, None)
        state["_calls"] = self._calls
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        calls = state.pop("_calls", 0)
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._start(calls)
        _LAYERS.add(self)

    @property
    def p(self) -> float:
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        self._p = check_p(value)

    def train(self, mode: Flag = True) -> Self:
        """Set training mode (``mode=True``) or evaluation mode; returns the layer.

        Raises
        ------
        TypeError
            If `mode` is not a bool or ``numpy.bool_`` (the mode is then unchanged).

        Examples
        --------
        >>> import cdrop
        >>> cdrop.Dropout(0.1).train(False).training
        False
        """
        self.training = as_flag(mode, "mode")
        return self

    def eval(self) -> Self:
        """Set evaluation mode, in which forward and backward are the identity; returns the layer.

        Examples
        --------
        >>> import cdrop
        >>> cdrop.Dropout(0.1).eval().training
        False
        """
        return self.train(False)

    def forward(self, x: ArrayLike) -> NDArray[Any]:
        """Apply dropout to `x` (training mode) or return `x` itself (evaluation mode).

        Parameters
        ----------
        x : ndarray or array_like
            float16, bfloat16 (ml_dtypes), float32 or float64 (an ndarray if the layer is in
            place).

        Returns
        -------
        ndarray
            See :func:`dropout`.

        Raises
        ------
        TypeError, ValueError, MemoryError
            As :func:`dropout` does for `x`.  A call that raises takes no call number: the
            next one draws the mask this one would have drawn.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.Dropout(0.5, seed=1)
        >>> a, b = layer(np.ones(64)), layer(np.ones(64))
        >>> bool((a == b).all())      # a fresh mask per call
        False
        """
        if not self.training:
            y = dropout(x, self._p, False, inplace=self.inplace)
            self._last = "eval"
            return y
        p = self._p
        # The common call, as in dropout (cdrop/_dropout.py), whose block this is: `p` is a
        # float already, and the call number is taken last, when nothing can fail any more.
        if type(x) is _ndarray and 0.0 < p < 1.0:
            dt = x.dtype
            if dt is FLOAT32 or dt is FLOAT64:
                inplace = self.inplace
                dst = None
                if inplace is False:
                    dst = empty_like(x)
                elif inplace is True:
                    flags = x.flags
                    # as in dropout: aligned, so that no temporary is needed after the draw
                    if (flags.writeable and flags.aligned
                            and (flags.c_contiguous or flags.f_contiguous)):
                        dst = x
                if dst is not None:
                    seed = next(self._seeds)
                    # num_threads 0: the default, asked only when the array can use threads
                    if not _apply(x, dst, seed, 0, p, 0, dst is not x):
                        apply_misaligned(x, dst, seed, 0, p, 0)
                    self._last = (seed, p, x.shape)
                    return dst
        # the general path, with the same seeds
        source = SeedSource(self._seeds)
        y = dropout(x, p, True, inplace=self.inplace, seed=source)
        # the shape of the memory the mask covered, which is what backward's grad is checked
        # against (a subclass may report another shape through Python)
        self._last = (source.value, p, base(y).shape)
        return y

    def __call__(self, x: ArrayLike) -> NDArray[Any]:
        """Same as :meth:`forward`: ``self.forward(x)``, looked up on every call, so that a
        subclass's, a mixin's or an instance's ``forward`` is the one that runs (as in
        PyTorch).  (It costs a Python call, about 0.09 us; ``layer.forward(x)`` saves it.)"""
        return self.forward(x)

    def backward(self, grad: ArrayLike) -> Any:  # an ndarray, or grad itself (see Returns)
        """Gradient of the loss with respect to the last forward call's input.

        In training mode, applies the mask and scale of the last forward call to `grad`,
        recomputed from that call's seed and `p`: ``dropout(grad, p, seed=<that call's
        seed>)``.  In evaluation mode it is the identity (returns `grad` itself), as it is when
        the last forward call ran in evaluation mode.

        Parameters
        ----------
        grad : ndarray or array_like
            float16, bfloat16 (ml_dtypes), float32 or float64, the shape of the last
            forward's output.

        Returns
        -------
        ndarray
            A new array, or `grad` itself where backward is the identity.

        Raises
        ------
        RuntimeError
            In training mode, before any forward call.
        ValueError
            In training mode, if `grad`'s shape differs from the last forward's output.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.Dropout(0.25, seed=3)
        >>> y = layer(np.full(6, 2.0))
        >>> bool((layer.backward(np.ones(6)) * 2.0 == y).all())
        True
        """
        if not self.training:
            return grad
        last = self._last
        if last is None:
            raise RuntimeError("backward() called before any forward() call")
        if last == "eval":
            return grad
        call_seed, p, shape = last
        g = as_float_array(grad, "grad")  # so that errors name grad, not dropout's x
        if g.shape != shape:
            raise ValueError(
                f"grad has shape {g.shape}, but the last forward output had shape {shape}"
            )
        return dropout(grad if isinstance(grad, np.ndarray) else g, p, True, seed=call_seed)

    def __repr__(self) -> str:
        return f"Dropout(p={self._p!r}, inplace={self.inplace!r})"
