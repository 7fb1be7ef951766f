"""Seeds: validation, numpy Generators, and the package stream behind ``seed=None``.

docs/rng.md, section 7, defines every number made here.
"""
import os
import threading

import numpy as np

from . import _kernels
from ._checks import as_int

_U64 = 1 << 64


class _Stream:
    """``derive(base, 0), derive(base, 1), ...``: the seeds handed out for ``seed=None``."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset(int.from_bytes(os.urandom(8), "little"))

    def reset(self, base):
        with self._lock:
            self._base = base
            self._count = 0

    def next(self):
        with self._lock:
            count = self._count
            self._count = count + 1
            base = self._base
        return _kernels.derive(base, count % _U64)


_stream = _Stream()


def _reset_lock_after_fork():
    # A thread of the parent may have held the lock at fork(); the child has no such thread.
    _stream._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def check_seed(seed, name="seed"):
    """An int in [0, 2**64) from an int-like or a numpy Generator (None not allowed here)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, _U64, dtype=np.uint64))
    seed = as_int(seed, name, "an int in [0, 2**64), a numpy.random.Generator or None")
    if not 0 <= seed < _U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {seed}")
    return seed


def resolve_seed(seed):
    """The 64-bit seed of one call: ``None`` takes the next seed of the package stream."""
    if seed is None:
        return _stream.next()
    if type(seed) is int and 0 <= seed < _U64:
        return seed
    return check_seed(seed)


def manual_seed(seed):
    """Reset the package-level random stream used when ``seed=None``.

    After ``manual_seed(s)``, the calls that take their seed from the package stream
    (``dropout``/``dropout_mask`` with ``seed=None``, and new ``Dropout(seed=None)`` layers)
    draw the seeds ``derive(s, 0), derive(s, 1), ...`` in call order (docs/rng.md). It is
    thread-safe: concurrent callers never receive the same seed, though their order is
    whatever the threads make it.

    Parameters
    ----------
    seed : int
        In [0, 2**64).

    Raises
    ------
    TypeError
        If `seed` is not an int.
    ValueError
        If `seed` is negative or >= 2**64.

    Examples
    --------
    >>> import numpy as np, cdrop
    >>> x = np.ones(8, dtype=np.float32)
    >>> cdrop.manual_seed(0); a = cdrop.dropout(x)
    >>> cdrop.manual_seed(0); b = cdrop.dropout(x)
    >>> bool((a == b).all())
    True
    """
    if isinstance(seed, np.random.Generator):
        raise TypeError("manual_seed takes an int, not a numpy.random.Generator")
    _stream.reset(check_seed(seed))
