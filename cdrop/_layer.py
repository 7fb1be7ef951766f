"""The Dropout layer: train/eval modes and a backward pass that recomputes its mask."""
import os
import threading
import weakref

from . import _kernels, _seed
from ._checks import as_flag
from ._dropout import _as_float_array, _check_p, dropout


# Every layer, so that a fork()ed child can replace their locks: one held by another thread of
# the parent at fork time would stay held in the child forever (multiprocessing, DataLoader).
_LAYERS = weakref.WeakSet()


def _new_locks_after_fork():
    for layer in list(_LAYERS):
        layer._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_locks_after_fork)


class Dropout:
    """Dropout layer with a mask-free backward pass.

    In training mode each forward call draws a fresh mask from the seed
    ``derive(layer_seed, call_number)`` (docs/rng.md, section 7): consecutive calls differ,
    and two layers built with the same seed produce the same sequence.  Only that 64-bit seed
    is remembered, so :meth:`backward` recomputes the mask instead of storing it (O(1) memory).
    Threads may share a layer: its training-mode forward calls then run one at a time, each
    with its own call number (backward refers to whichever call was last).

    Parameters
    ----------
    p : float, default 0.5
        Drop probability, in [0, 1].
    inplace : bool, default False
        Forward writes into its input and returns it (backward never does).
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream (see :func:`manual_seed`).

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

    def __init__(self, p=0.5, *, inplace=False, seed=None):
        self.p = p
        self.inplace = as_flag(inplace, "inplace")
        self._seed = _seed.resolve_seed(seed)
        self._calls = 0  # forward calls made in training mode: the RNG position
        self._last = None  # (seed, p, shape) of the last training forward; "eval" after an eval one
        self.training = True
        # Taking a call number, running the call and recording it are one step, so that threads
        # sharing a layer never get the same mask (calls of one layer run one at a time).
        self._lock = threading.Lock()
        _LAYERS.add(self)

    def __getstate__(self):  # pickle and copy.deepcopy: a lock is neither picklable nor shared
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()
        _LAYERS.add(self)

    @property
    def p(self):
        return self._p

    @p.setter
    def p(self, value):
        self._p = _check_p(value)

    def train(self, mode=True):
        """Set training mode (``mode=True``) or evaluation mode; returns the layer.

        Examples
        --------
        >>> import cdrop
        >>> cdrop.Dropout(0.1).train(False).training
        False
        """
        self.training = as_flag(mode, "mode")
        return self

    def eval(self):
        """Set evaluation mode, in which forward and backward are the identity; returns the layer.

        Examples
        --------
        >>> import cdrop
        >>> cdrop.Dropout(0.1).eval().training
        False
        """
        return self.train(False)

    def forward(self, x):
        """Apply dropout to `x` (training mode) or return `x` itself (evaluation mode).

        Parameters
        ----------
        x : ndarray or array_like
            float32 or float64 (an ndarray if the layer is in place).

        Returns
        -------
        ndarray
            See :func:`dropout`.

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
        with self._lock:
            call_seed = _kernels.derive(self._seed, self._calls)
            y = dropout(x, self._p, True, inplace=self.inplace, seed=call_seed)
            self._calls += 1  # only after a successful call: a failing one takes no number
            self._last = (call_seed, self._p, y.shape)
        return y

    def __call__(self, x):
        """Same as :meth:`forward` (which subclasses may override)."""
        return self.forward(x)

    def backward(self, grad):
        """Gradient of the loss with respect to the last forward call's input.

        In training mode, applies the mask and scale of the last forward call to `grad`,
        recomputed from that call's seed and `p`: ``dropout(grad, p, seed=<that call's
        seed>)``.  In evaluation mode it is the identity (returns `grad` itself), as it is when
        the last forward call ran in evaluation mode.

        Parameters
        ----------
        grad : ndarray or array_like
            float32 or float64, the shape of the last forward's output.

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
        grad = _as_float_array(grad, "grad")  # so that errors name grad, not dropout's x
        if grad.shape != shape:
            raise ValueError(
                f"grad has shape {grad.shape}, but the last forward output had shape {shape}"
            )
        return dropout(grad, p, True, seed=call_seed)

    def __repr__(self):
        return f"Dropout(p={self._p!r}, inplace={self.inplace!r})"
