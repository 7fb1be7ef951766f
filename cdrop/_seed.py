"""Seeds: the package stream behind ``seed=None``, and draws from numpy Generators.

Their checks are in cdrop/_checks.py; docs/rng.md, section 7, defines every number made here.
"""
from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
from typing import SupportsIndex

import numpy as np

from . import _kernels
from ._checks import U64, SeedSource, check_base_seed, check_seed

# Seeds come from iterators, ``map(partial(derive, base), count(start))``: next() on one runs
# in C from end to end, and with the GIL it is atomic (no Python code runs and the GIL is never
# let go), so concurrent callers never get the same seed, without a lock: a lock round trip
# costs as much as the kernel of a 1000-element call.  Free-threaded builds running without the
# GIL take the owner's lock around each draw.  (A count would reach 2**64, the end of derive's
# domain, after 2**64 draws: centuries at a nanosecond each.)
_LOCK_FREE = getattr(sys, "_is_gil_enabled", lambda: True)()


def derived_seeds(base, counter, owner):
    """``derive(base, k)`` for k = next(counter), ...: an iterator that threads may share.

    counter: an ``itertools.count``; owner: an object whose ``_lock`` guards the draws where
    the GIL does not (free-threaded builds).
    """
    seeds = map(functools.partial(_kernels.derive, base), counter)
    return seeds if _LOCK_FREE else _Locked(seeds, owner)


def count_of(counter):
    """The next number an ``itertools.count`` (of step 1) will give, without taking it."""
    text = repr(counter)  # "count(5)": the only public view of a count's position
    return int(text[len("count("):-1])


class _Locked:  # pragma: no cover - free-threaded builds only
    """An iterator whose steps take the owner's lock (replaced in a fork()ed child)."""

    def __init__(self, it, owner):
        self._it = it
        self._owner = owner

    def __iter__(self):
        return self

    def __next__(self):
        with self._owner._lock:
            return next(self._it)


class _Stream:
    """``derive(base, 0), derive(base, 1), ...``: the seeds handed out for ``seed=None``.

    ``next(stream.seeds)`` is the next seed.  :meth:`reset` replaces the iterator whole, so a
    draw never pairs the count of one base with another base.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reseed()

    def reset(self, base):
        self.seeds = derived_seeds(base, itertools.count(), self)
        self.seeded = True  # by manual_seed: reproducible, also in fork()ed children

    def reseed(self):
        """A fresh base from the operating system's entropy (at import, and in a fork()ed child
        of a process that never called manual_seed)."""
        self.seeds = derived_seeds(int.from_bytes(os.urandom(8), "little"), itertools.count(), self)
        self.seeded = False


stream = _Stream()  # one object for the whole process (reset in place by manual_seed)


def _reset_lock_after_fork():
    # A thread of the parent may have held the lock at fork(); the child has no such thread.
    stream._lock = threading.Lock()
    # An unseeded stream is reseeded, as Python's `random` is: otherwise every forked worker
    # (multiprocessing, DataLoader) would draw its parent's next seeds, the same "random" masks
    # in every worker.  After manual_seed the child keeps the sequence: that is reproducibility.
    if not stream.seeded:
        stream.reseed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)


def draw(seed):
    """The 64-bit seed of one call from a seed checked by :func:`cdrop._checks.check_seed`:
    None takes the next seed of the package stream, a Generator is asked for one 64-bit number.

    Callers draw last, after everything that can fail, so that a failing call consumes nothing.
    """
    if seed is None:
        return next(stream.seeds)
    if type(seed) is int:
        return seed
    if type(seed) is SeedSource:
        seed.value = next(seed.seeds)
        return seed.value
    return int(seed.integers(0, U64, dtype=np.uint64))


def resolve_seed(seed):
    """``draw(check_seed(seed))``: the 64-bit seed of a call that has nothing else to check."""
    return draw(check_seed(seed))


def manual_seed(seed: SupportsIndex) -> None:
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
        If `seed` is not an int (None and numpy Generators are refused: the stream needs a
        fixed base).
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
    stream.reset(check_base_seed(seed))
