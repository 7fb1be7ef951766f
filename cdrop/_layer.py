"""The layers: Dropout and the dropout family (issue 11), on one base (_Layer) that holds the
seeding (a call counter, derive(seed, call)), the modes (train/eval, and a per-call
``training=`` override for Monte-Carlo dropout), pickling and the backward bookkeeping.

A training-mode forward call records ``(call seed, parameters, shape, info, forced)`` in
``_last``: backward recomputes the mask or noise from that seed, storing none.  An
evaluation-mode forward records ``(None, None, None, info, forced)``.  Backward follows the
mode of that last call, not the layer's current mode (issue 11: "backward follows the mode of
the forward it belongs to").  `forced` says that the call overrode the layer's mode
(``training=True/False``); it is kept for introspection and pickles.
"""
from __future__ import annotations

import itertools
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _kernels, _variants
from ._checks import (
    FLOAT32,
    FLOAT64,
    SeedSource,
    as_flag,
    as_float_array,
    base,
    check_nonneg_real,
    check_p,
)
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


class _Layer:
    """What every cdrop layer shares: the seed and call counter, the modes, pickling, the
    per-call ``training`` override and the backward bookkeeping (internal)."""

    def _init_layer(self, seed):
        self._seed = resolve_seed(seed)
        self._last = None  # the last forward's record (see the module's docstring)
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
        last = state.get("_last")
        if last == "eval":  # pickled by cdrop 0.1's Dropout
            state["_last"] = (None, None, None, None, False)
        elif type(last) is tuple and len(last) == 3:
            state["_last"] = last + (None, False)
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

    def _mode(self, training):
        """(mode, forced) of a forward call: None follows the layer's mode."""
        if training is None:
            return self.training, False
        return as_flag(training, "training"), True

    def __call__(self, x: ArrayLike, training: Flag | None = None) -> Any:
        """Same as :meth:`forward`: ``self.forward(x)``, looked up on every call, so that a
        subclass's, a mixin's or an instance's ``forward`` is the one that runs (as in
        PyTorch).  (It costs a Python call, about 0.09 us; ``layer.forward(x)`` saves it.)
        ``training`` is passed on only when given, so a ``forward(x)`` of one argument runs."""
        if training is None:
            return self.forward(x)
        return self.forward(x, training)

    def _record(self):
        """The record backward follows, or None where backward is the identity."""
        # Backward belongs to the last forward call and follows its mode, not the layer's
        # current one (as autograd does): a training forward, then eval(), then backward still
        # applies that forward's mask (Monte-Carlo dropout switches modes between calls).
        last = self._last
        if last is None:
            if not self.training:
                return None  # nothing to differentiate yet, and identity is eval's backward
            raise RuntimeError("backward() called before any forward() call")
        return last if last[0] is not None else None

    def _grad(self, grad, shape):
        """`grad` checked against the shape of the last forward output (errors name grad)."""
        g = as_float_array(grad, "grad")
        if g.shape != shape:
            raise ValueError(
                f"grad has shape {g.shape}, but the last forward output had shape {shape}"
            )
        return grad if isinstance(grad, np.ndarray) else g

    def _forward(self, x, training, run, info=None):
        """The forward of the family's layers: run(x, training, seed, params) with the call's
        seed taken only when nothing can fail (a SeedSource), recorded for backward with
        info(y) (what else backward needs)."""
        mode, forced = self._mode(training)
        params = self._params()
        if not mode:
            y = run(x, False, None, params)
            self._last = (None, None, None, info and info(y), forced)
            return y
        source = SeedSource(self._seeds)
        y = run(x, True, source, params)
        self._last = (source.value, params, base(y).shape, info and info(y), forced)
        return y

    def _params(self):
        return self._p


class Dropout(_Layer):
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
        self._init_layer(seed)

    def forward(self, x: ArrayLike, training: Flag | None = None) -> NDArray[Any]:
        """Apply dropout to `x` (training mode) or return `x` itself (evaluation mode).

        Parameters
        ----------
        x : ndarray or array_like
            float16, bfloat16 (ml_dtypes), float32 or float64 (an ndarray if the layer is in
            place).
        training : bool, optional
            None (the default) follows the layer's mode; True or False overrides it for this
            call (Monte-Carlo dropout: ``layer.eval()`` and ``layer(x, training=True)``), and
            :meth:`backward` then follows this call's mode.

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
        >>> bool((layer.eval()(np.ones(64), training=True) == 0).any())   # Monte-Carlo dropout
        True
        """
        if training is None:
            training, forced = self.training, False
        else:
            training, forced = as_flag(training, "training"), True
        if not training:
            y = dropout(x, self._p, False, inplace=self.inplace)
            self._last = (None, None, None, None, forced)
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
                    self._last = (seed, p, x.shape, None, forced)
                    return dst
        # the general path, with the same seeds
        source = SeedSource(self._seeds)
        y = dropout(x, p, True, inplace=self.inplace, seed=source)
        # the shape of the memory the mask covered, which is what backward's grad is checked
        # against (a subclass may report another shape through Python)
        self._last = (source.value, p, base(y).shape, None, forced)
        return y

    def backward(self, grad: ArrayLike) -> Any:  # an ndarray, or grad itself (see Returns)
        """Gradient of the loss with respect to the last forward call's input.

        Follows the mode of the forward call it belongs to (the last one), whatever the
        layer's mode is now, as autograd does: after a training-mode forward it applies that
        call's mask and scale to `grad`, recomputed from the call's seed and `p`
        (``dropout(grad, p, seed=<that call's seed>)``); after an evaluation-mode forward it is
        the identity (returns `grad` itself).  Before any forward call it is the identity in
        evaluation mode.

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
            After a training-mode forward, if `grad`'s shape differs from that forward's output.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.Dropout(0.25, seed=3)
        >>> y = layer(np.full(6, 2.0))
        >>> bool((layer.backward(np.ones(6)) * 2.0 == y).all())
        True
        """
        last = self._record()
        if last is None:
            return grad
        call_seed, p, shape = last[:3]
        g = self._grad(grad, shape)  # so that errors name grad, not dropout's x
        return dropout(g, p, True, seed=call_seed)

    def __repr__(self) -> str:
        return f"Dropout(p={self._p!r}, inplace={self.inplace!r})"


# ---------------------------------------------------------------------------------------------
# The dropout family (issue 11).
# ---------------------------------------------------------------------------------------------
_LAYER_RAISES = """
    Raises
    ------
    TypeError
        `p` not a real number, a flag not a bool, or `seed` of another type.
    ValueError
        `p` outside [0, 1], or `seed` outside [0, 2**64)."""


def _channel_noise(k, name):
    """The noise shape of PyTorch's Dropout{k}d: one decision per (n, c), or per c unbatched."""
    def noise(shape):
        if len(shape) == k + 2:
            return shape[:2] + (1,) * k
        if len(shape) == k + 1:
            return shape[:1] + (1,) * k
        raise ValueError(
            f"{name} expects x with {k + 1} (unbatched: channels first) or {k + 2} axes "
            f"(batch, channels, {k} spatial), got shape {tuple(shape)}"
        )
    return noise


def _feature_noise(shape):
    # PyTorch's make_feature_noise: one decision per (x.shape[0], x.shape[1]), whatever ndim
    if len(shape) < 2:
        raise ValueError(f"FeatureAlphaDropout needs x with at least 2 axes, got shape "
                         f"{tuple(shape)}")
    return shape[:2] + (1,) * (len(shape) - 2)


class _ChannelDropout(_Layer):
    _k = 0

    def __init__(self, p: float = 0.5, *, inplace: Flag = False, seed: Seed = None) -> None:
        self.p = p
        self.inplace = as_flag(inplace, "inplace")
        self._init_layer(seed)
        self._noise = _channel_noise(self._k, type(self).__name__)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_noise", None)  # a closure: rebuilt from the class
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._noise = _channel_noise(self._k, type(self).__name__)

    def _run(self, x, training, seed, p):
        return _variants.masked_scale(x, p, training, inplace=self.inplace, seed=seed,
                                      noise=self._noise)

    def forward(self, x: ArrayLike, training: Flag | None = None) -> NDArray[Any]:
        """Channel-wise dropout of `x` (training mode) or `x` itself (evaluation mode).

        Parameters
        ----------
        x : ndarray or array_like
            See the class.
        training : bool, optional
            None follows the layer's mode; True/False overrides it for this call (Monte-Carlo
            dropout), and :meth:`backward` follows this call's mode.

        Returns
        -------
        ndarray
            As :func:`cdrop.dropout` returns.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.Dropout2d(0.5, seed=0).eval()
        >>> x = np.ones((1, 8, 2, 2))
        >>> layer(x) is x, bool((layer(x, training=True) == 0).any())
        (True, True)
        """
        return self._forward(x, training, self._run)

    def backward(self, grad: ArrayLike) -> Any:
        """The gradient with respect to the last forward's input: the mask and scale of that
        call recomputed from its seed (``x`` itself where backward is the identity: evaluation
        mode, as :meth:`cdrop.Dropout.backward`).

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.Dropout1d(0.5, seed=2)
        >>> y = layer(np.ones((2, 3, 4)))
        >>> bool((layer.backward(np.ones((2, 3, 4))) == y).all())
        True
        """
        last = self._record()
        if last is None:
            return grad
        seed, p, shape = last[:3]
        return self._run(self._grad(grad, shape), True, seed, p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self._p!r}, inplace={self.inplace!r})"


_CHANNEL_DOC = """Channel-wise dropout (PyTorch's ``nn.Dropout{k}d``) for {what}.

    One keep decision per (sample, channel) of {batched} input, or per channel of {unbatched}
    input, shared along the spatial axes; kept channels are scaled by 1/(1-p).  The forward of
    a call with seed s is ``cdrop.dropout(x, p, seed=s, noise_shape=(N, C{ones}))`` (unbatched:
    ``(C{ones})``), with the layer's seeds as :class:`cdrop.Dropout` draws them.  Unlike
    PyTorch 2.13's ``Dropout2d``, a 3-D input to Dropout2d is unbatched (C, H, W), as the
    PyTorch docs announce; inputs of other ranks are a ValueError (PyTorch warns for them).

    Parameters
    ----------
    p : float, default 0.5
        Probability of dropping a channel, in [0, 1].
    inplace : bool, default False
        Forward writes into its input and returns it.
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream.
{raises}

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> layer = cdrop.Dropout{k}d(0.5, seed=0)
    >>> y = layer(np.ones({example}, np.float32))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> layer
    Dropout{k}d(p=0.5, inplace=False)
    """


class Dropout1d(_ChannelDropout):
    __doc__ = _CHANNEL_DOC.format(what="(N, C, L) or (C, L) inputs", k=1, batched="(N, C, L)",
                                  unbatched="(C, L)", ones=", 1", raises=_LAYER_RAISES,
                                  example="(2, 4, 5)")
    _k = 1


class Dropout2d(_ChannelDropout):
    __doc__ = _CHANNEL_DOC.format(what="(N, C, H, W) or (C, H, W) inputs", k=2,
                                  batched="(N, C, H, W)", unbatched="(C, H, W)", ones=", 1, 1",
                                  raises=_LAYER_RAISES, example="(2, 4, 3, 3)")
    _k = 2


class Dropout3d(_ChannelDropout):
    __doc__ = _CHANNEL_DOC.format(what="(N, C, D, H, W) or (C, D, H, W) inputs", k=3,
                                  batched="(N, C, D, H, W)", unbatched="(C, D, H, W)",
                                  ones=", 1, 1, 1", raises=_LAYER_RAISES,
                                  example="(2, 4, 2, 2, 2)")
    _k = 3


class DropPath(_Layer):
    """Stochastic depth (timm's ``DropPath``): drop whole samples (residual branches).

    The layer of :func:`cdrop.drop_path`: one decision per sample along axis 0, kept samples
    scaled by 1/(1-p) unless ``scale_by_keep=False``.  Seeds, modes, Monte-Carlo calls and
    backward as :class:`cdrop.Dropout`.

    Parameters
    ----------
    p : float, default 0.0
        Probability of dropping a sample, in [0, 1].
    scale_by_keep : bool, default True
        Scale kept samples by 1/(1-p).
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream.
{raises}

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> layer = cdrop.DropPath(0.5, seed=0)
    >>> y = layer(np.ones((6, 2)))
    >>> bool((y[:, 0] == y[:, 1]).all())      # one decision per sample
    True
    >>> bool((layer.backward(np.ones((6, 2))) == y).all())
    True
    >>> layer
    DropPath(p=0.5, scale_by_keep=True)
    """

    def __init__(self, p: float = 0.0, *, scale_by_keep: Flag = True, seed: Seed = None) -> None:
        self.p = p
        self.scale_by_keep = as_flag(scale_by_keep, "scale_by_keep")
        self._init_layer(seed)

    def _params(self):
        return (self._p, self.scale_by_keep)

    @staticmethod
    def _run(x, training, seed, params):
        p, scale_by_keep = params
        return _variants.drop_path(x, p, training, scale_by_keep=scale_by_keep, seed=seed)

    def forward(self, x: ArrayLike, training: Flag | None = None) -> NDArray[Any]:
        """Drop samples of `x` (training mode) or return `x` itself (evaluation mode);
        `training` overrides the layer's mode for this call, as in :meth:`Dropout.forward`.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> x = np.ones((4, 2))
        >>> cdrop.DropPath(0.5, seed=0)(x, training=False) is x
        True
        """
        return self._forward(x, training, self._run)

    def backward(self, grad: ArrayLike) -> Any:
        """The gradient: the last forward's per-sample mask and scale, recomputed.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.DropPath(0.5, seed=0)
        >>> y = layer(np.ones((4, 2)))
        >>> bool((layer.backward(np.ones((4, 2))) == y).all())
        True
        """
        last = self._record()
        if last is None:
            return grad
        seed, params, shape = last[:3]
        return self._run(self._grad(grad, shape), True, seed, params)

    def __repr__(self) -> str:
        return f"DropPath(p={self._p!r}, scale_by_keep={self.scale_by_keep!r})"


DropPath.__doc__ = DropPath.__doc__.replace("{raises}", _LAYER_RAISES)


class AlphaDropout(_Layer):
    """Alpha dropout (PyTorch's ``nn.AlphaDropout``): the layer of :func:`cdrop.alpha_dropout`.

    Keeps mean 0 and variance 1 of standard-normal inputs (self-normalising networks).
    Backward recomputes the mask: ``grad * a`` where kept, 0 where dropped.  Seeds, modes,
    Monte-Carlo calls as :class:`cdrop.Dropout`.

    Parameters
    ----------
    p : float, default 0.5
        Drop probability, in [0, 1].
    inplace : bool, default False
        Forward writes into its input and returns it.
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream.
{raises}

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> layer = cdrop.AlphaDropout(0.2, seed=0)
    >>> y = layer(np.random.default_rng(0).standard_normal(100_000))
    >>> bool(abs(y.mean()) < 0.02 and abs(y.var() - 1) < 0.02)
    True
    >>> layer
    AlphaDropout(p=0.2, inplace=False)
    """

    _noise = None

    def __init__(self, p: float = 0.5, *, inplace: Flag = False, seed: Seed = None) -> None:
        self.p = p
        self.inplace = as_flag(inplace, "inplace")
        self._init_layer(seed)

    def _run(self, x, training, seed, p):
        return _variants._alpha(x, p, training, self.inplace, None, seed, 0, None,
                                type(self)._noise)

    def forward(self, x: ArrayLike, training: Flag | None = None) -> NDArray[Any]:
        """Alpha dropout of `x` (training mode) or `x` itself (evaluation mode); `training`
        overrides the layer's mode for this call, as in :meth:`Dropout.forward`.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> x = np.ones(4)
        >>> cdrop.AlphaDropout(0.5, seed=0).eval()(x) is x
        True
        """
        return self._forward(x, training, self._run)

    def backward(self, grad: ArrayLike) -> Any:
        """The gradient: ``grad * a`` where the last forward kept an element, 0 elsewhere
        (the mask recomputed from that call's seed).

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.AlphaDropout(0.5, seed=0)
        >>> y = layer(np.zeros(8))
        >>> g = layer.backward(np.ones(8))
        >>> bool(((g != 0) == (y > 0)).all())
        True
        """
        last = self._record()
        if last is None:
            return grad
        seed, p, shape = last[:3]
        g = self._grad(grad, shape)
        if 0.0 < p < 1.0:
            a = _variants.alpha_constants(p)[0]
            return _variants.masked_scale(g, p, True, seed=seed, noise=type(self)._noise,
                                          scale=a)
        return _variants.masked_scale(g, p, True, seed=seed)  # p == 0: grad, p == 1: zeros

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self._p!r}, inplace={self.inplace!r})"


AlphaDropout.__doc__ = AlphaDropout.__doc__.replace("{raises}", _LAYER_RAISES)


class FeatureAlphaDropout(AlphaDropout):
    """Channel-wise alpha dropout (PyTorch's ``nn.FeatureAlphaDropout``).

    As :class:`AlphaDropout`, with one decision per ``(x.shape[0], x.shape[1])`` shared along
    the remaining axes: the axes that PyTorch 2.13's ``F.feature_alpha_dropout`` shares (its
    ``make_feature_noise``, also for unbatched inputs), for inputs of at least 2 axes.
    ``p == 1`` gives zeros, as PyTorch does.

    Parameters
    ----------
    p : float, default 0.5
        Probability of dropping a channel, in [0, 1].
    inplace : bool, default False
        Forward writes into its input and returns it.
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream.
{raises}

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> y = cdrop.FeatureAlphaDropout(0.5, seed=0)(np.zeros((2, 3, 4)))
    >>> bool((y == y[..., :1]).all())         # shared along the last axis
    True
    """

    _noise = staticmethod(_feature_noise)


FeatureAlphaDropout.__doc__ = FeatureAlphaDropout.__doc__.replace("{raises}", _LAYER_RAISES)


class GaussianDropout(_Layer):
    """Gaussian dropout (Keras' ``GaussianDropout``): the layer of :func:`cdrop.gaussian_dropout`.

    Multiplies by noise from N(1, p/(1-p)); backward multiplies `grad` by the same noise,
    recomputed from the call's seed.  Seeds, modes, Monte-Carlo calls as :class:`cdrop.Dropout`.

    Parameters
    ----------
    p : float
        Keras' `rate`, in [0, 1).
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream.

    Raises
    ------
    TypeError
        `p` not a real number, or `seed` of another type.
    ValueError
        `p` outside [0, 1), or `seed` outside [0, 2**64).

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> layer = cdrop.GaussianDropout(0.1, seed=0)
    >>> y = layer(np.ones(100_000))
    >>> bool(abs(y.mean() - 1) < 0.01)
    True
    >>> bool((layer.backward(np.ones(100_000)) == y).all())
    True
    >>> layer
    GaussianDropout(p=0.1)
    """

    def __init__(self, p: float, *, seed: Seed = None) -> None:
        self.p = p
        self._init_layer(seed)

    @property
    def p(self) -> float:
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        self._p = _variants.gaussian_p(value)

    @staticmethod
    def _run(x, training, seed, p):
        return _variants.gaussian_dropout(x, p, training, seed=seed)

    def forward(self, x: ArrayLike, training: Flag | None = None) -> NDArray[Any]:
        """Gaussian dropout of `x` (training mode) or `x` itself (evaluation mode);
        `training` overrides the layer's mode for this call.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> x = np.ones(4)
        >>> cdrop.GaussianDropout(0.5, seed=0)(x, training=False) is x
        True
        """
        return self._forward(x, training, self._run)

    def backward(self, grad: ArrayLike) -> Any:
        """The gradient: `grad` times the last forward's noise ``1 + sqrt(p/(1-p)) * z``.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.GaussianDropout(0.5, seed=0)
        >>> y = layer(np.full(4, 2.0))
        >>> bool((2 * layer.backward(np.ones(4)) == y).all())
        True
        """
        last = self._record()
        if last is None:
            return grad
        seed, p, shape = last[:3]
        return self._run(self._grad(grad, shape), True, seed, p)

    def __repr__(self) -> str:
        return f"GaussianDropout(p={self._p!r})"


class GaussianNoise(_Layer):
    """Additive Gaussian noise (Keras' ``GaussianNoise``): the layer of
    :func:`cdrop.gaussian_noise`.

    Adds N(0, stddev**2) noise in training mode; its backward is the identity (returns `grad`
    itself once its shape is checked).  Seeds, modes, Monte-Carlo calls as
    :class:`cdrop.Dropout`.

    Parameters
    ----------
    stddev : float
        Standard deviation of the noise, finite and >= 0.
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream.

    Raises
    ------
    TypeError
        `stddev` not a real number, or `seed` of another type.
    ValueError
        `stddev` negative, infinite or NaN, or `seed` outside [0, 2**64).

    Attributes
    ----------
    stddev : float
        Validated when set.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> layer = cdrop.GaussianNoise(0.1, seed=0)
    >>> y = layer(np.zeros(100_000))
    >>> bool(abs(y.std() - 0.1) < 0.001)
    True
    >>> layer
    GaussianNoise(stddev=0.1)
    """

    def __init__(self, stddev: float, *, seed: Seed = None) -> None:
        self.stddev = stddev
        self._init_layer(seed)

    @property
    def stddev(self) -> float:
        return self._stddev

    @stddev.setter
    def stddev(self, value: float) -> None:
        self._stddev = check_nonneg_real(value, "stddev")

    def _params(self):
        return self._stddev

    @staticmethod
    def _run(x, training, seed, stddev):
        return _variants.gaussian_noise(x, stddev, training, seed=seed)

    def forward(self, x: ArrayLike, training: Flag | None = None) -> NDArray[Any]:
        """`x` plus noise (training mode) or `x` itself (evaluation mode); `training`
        overrides the layer's mode for this call.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> x = np.ones(4)
        >>> cdrop.GaussianNoise(1.0, seed=0).eval()(x) is x
        True
        """
        return self._forward(x, training, self._run)

    def backward(self, grad: ArrayLike) -> Any:
        """The gradient of ``x + noise``: `grad` itself (its shape checked in training mode).

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.GaussianNoise(1.0, seed=0)
        >>> g = np.ones(4)
        >>> _ = layer(np.zeros(4))
        >>> layer.backward(g) is g
        True
        """
        last = self._record()
        if last is not None:
            self._grad(grad, last[2])
        return grad

    def __repr__(self) -> str:
        return f"GaussianNoise(stddev={self._stddev!r})"


class DropoutAdd(_Layer):
    """``residual + dropout(x + bias)`` in one pass: the layer of :func:`cdrop.dropout_add`.

    Its backward returns ``(grad_x, grad_residual, grad_bias)``: grad_x is `grad` through the
    forward's mask and scale (recomputed from the call's seed); grad_residual is `grad` itself
    (the identity; not a copy); grad_bias is grad_x summed over the axes along which the bias
    was broadcast, in bias's shape and dtype (float16/bfloat16 summed in float32), or None
    when the forward had no bias.  Seeds, modes, Monte-Carlo calls as :class:`cdrop.Dropout`.

    Parameters
    ----------
    p : float, default 0.5
        Drop probability, in [0, 1].
    seed : int, numpy.random.Generator or None
        The layer's seed; None draws it from the package stream.

    Raises
    ------
    TypeError
        `p` not a real number, or `seed` of another type.
    ValueError
        `p` outside [0, 1], or `seed` outside [0, 2**64).

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> layer = cdrop.DropoutAdd(0.5, seed=0)
    >>> x, r, b = np.ones((4, 3)), np.zeros((4, 3)), np.zeros(3)
    >>> y = layer(x, r, bias=b)
    >>> gx, gr, gb = layer.backward(np.ones((4, 3)))
    >>> bool((gx == y).all()), gb.shape
    (True, (3,))
    >>> layer
    DropoutAdd(p=0.5)
    """

    def __init__(self, p: float = 0.5, *, seed: Seed = None) -> None:
        self.p = p
        self._init_layer(seed)

    def forward(self, x: ArrayLike, residual: ArrayLike, training: Flag | None = None, *,
                bias: ArrayLike | None = None) -> NDArray[Any]:
        """``residual + dropout(x + bias)`` (training mode) or ``residual + (x + bias)``
        (evaluation mode); `training` overrides the layer's mode for this call.

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.DropoutAdd(0.5, seed=0)
        >>> layer(np.ones(3), np.ones(3), training=False).tolist()
        [2.0, 2.0, 2.0]
        """
        def run(x, training, seed, p):
            return _variants.dropout_add(x, residual, p, training, bias=bias, seed=seed)

        # for grad_bias: the shape of the bias the forward read (through the base class, as
        # dropout_add reads it: a subclass's `shape` can claim anything), x's dtype, and the
        # output's shape (grad's shape is checked against it also where grad_x is grad)
        info = None if bias is None else (
            lambda y: (base(bias).shape if isinstance(bias, _ndarray) else np.shape(bias),
                       base(y).dtype, base(y).shape))
        return self._forward(x, training, run, info)

    def __call__(self, x: ArrayLike, residual: ArrayLike, training: Flag | None = None, *,
                 bias: ArrayLike | None = None) -> Any:
        """Same as :meth:`forward`, looked up on every call."""
        if training is None and bias is None:
            return self.forward(x, residual)
        return self.forward(x, residual, training, bias=bias)

    def backward(self, grad: ArrayLike) -> tuple[Any, Any, Any]:
        """``(grad_x, grad_residual, grad_bias)`` of the last forward call (see the class).

        Examples
        --------
        >>> import numpy as np, cdrop
        >>> layer = cdrop.DropoutAdd(0.5, seed=0)
        >>> _ = layer(np.ones((2, 3)), np.ones((2, 3)), bias=np.zeros(3))
        >>> g = np.ones((2, 3))
        >>> gx, gr, gb = layer.backward(g)
        >>> gr is g, bool((gb == gx.sum(axis=0)).all())
        (True, True)
        """
        last = self._record()
        if last is None:
            info = self._last[3] if self._last is not None else None
            gx = grad
        else:
            seed, p, shape, info = last[:4]
            gx = dropout(self._grad(grad, shape), p, True, seed=seed)
        return gx, grad, None if info is None else _bias_grad(gx, *info)

    def __repr__(self) -> str:
        return f"DropoutAdd(p={self._p!r})"


def _bias_grad(gx, bshape, dtype, shape=None):
    """grad_x summed over the axes along which a bias of shape `bshape` was broadcast; `shape`:
    the forward output's (None in records made before it was kept)."""
    g = base(as_float_array(gx, "grad"))
    if shape is not None and g.shape != shape:  # evaluation mode: grad_x is grad, unchecked
        raise ValueError(
            f"grad has shape {g.shape}, but the last forward output had shape {shape}"
        )
    lead = g.ndim - len(bshape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(bshape)
                                      if d == 1 and g.shape[lead + i] != 1)
    acc = np.float64 if dtype == np.float64 else np.float32
    # IEEE sums without warnings (overflow to inf, inf - inf), as the family's kernels give
    # their results
    with np.errstate(all="ignore"):
        return g.astype(acc).sum(axis=axes).reshape(bshape).astype(dtype)
