"""Thread-count policy: one resolver, used by every call (after scikit-learn's
``_openmp_effective_n_threads``)."""
from __future__ import annotations

import os
import threading
from typing import SupportsIndex

from . import _kernels
from ._checks import MAX_THREADS, check_num_threads

__all__ = ["MAX_THREADS", "MIN_PARALLEL", "get_num_threads", "resolve", "set_num_threads"]

_lock = threading.Lock()
_default = None  # set by set_num_threads; None means "resolve from the environment"
_serial_only = False  # True in a fork()ed child: see _after_fork_in_child


def _cpu_count():
    # Honour CPU affinity and cgroup-restricted CPU sets where the OS tells us.  Read once: it
    # costs microseconds, and every call of dropout() needs it.
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


_CPUS = _cpu_count()
# Below this many elements the kernels use one thread whatever they are asked (the C constant
# CDROP_MIN_PARALLEL), so calls that small need not look up the default.
MIN_PARALLEL = _kernels.build_info()["min_parallel"]
# libgomp reads OMP_NUM_THREADS once, at start-up; so do we.
_OMP_ENV = "OMP_NUM_THREADS" in os.environ


def get_num_threads() -> int:
    """The number of threads cdrop uses when a call does not say.

    ``set_num_threads(n)`` fixes it.  Otherwise it is ``omp_get_max_threads()`` (which honours
    ``OMP_NUM_THREADS`` and ``threadpoolctl``), capped at the CPUs this process may run on
    (its affinity mask; CPU quotas are not read) unless ``OMP_NUM_THREADS`` is set.
    ``threadpoolctl``'s limits, like ``omp_set_num_threads``, are per calling thread (an OpenMP
    rule that libgomp follows): a limit set in one Python thread does not change the default of
    calls made from other threads, whereas ``set_num_threads`` applies to all threads.  1 in a
    build without OpenMP and in a fork()ed child (see :func:`cdrop.show_config`).  Whatever the
    number, arrays smaller than 65,536 elements run on one thread, and results never depend on
    it.

    Returns
    -------
    int
        The default thread count, >= 1.

    Examples
    --------
    >>> import cdrop
    >>> cdrop.get_num_threads() >= 1
    True
    """
    if _serial_only:
        return 1
    if _default is not None:
        return _default
    n = _kernels.max_threads()
    if not _OMP_ENV and n > _CPUS:
        n = _CPUS
    return max(1, n)


def set_num_threads(n: SupportsIndex | None) -> None:
    """Set the default number of threads for all later calls.

    Parameters
    ----------
    n : int or None
        Threads to use, >= 1 (values above 65,536 count as 65,536); ``None`` returns to the
        environment's default (see :func:`get_num_threads`).

    Raises
    ------
    TypeError
        If `n` is not an int or None.
    ValueError
        If `n` < 1.

    Examples
    --------
    >>> import cdrop
    >>> cdrop.set_num_threads(1)
    >>> cdrop.get_num_threads()
    1
    >>> cdrop.set_num_threads(None)
    """
    global _default
    value = None if n is None else check_num_threads(n, "n")
    with _lock:
        _default = value


def resolve(num_threads):
    """Per-call thread count: the argument if given, else the default."""
    if num_threads is None:
        return get_num_threads()
    return check_num_threads(num_threads)


def _after_fork_in_child():
    # libgomp may hang when a fork()ed child enters a parallel region after the parent used
    # OpenMP (GCC bug 60035); PyTorch DataLoader and multiprocessing workers fork.  Serial is
    # slower but safe, and results are the same for any thread count.
    global _serial_only, _lock
    _serial_only = True
    _kernels.set_serial_only(True)
    _lock = threading.Lock()  # another thread of the parent may have held it at fork()


# num_threads=0 in the compiled entry points (the fast paths of cdrop/_dropout.py and
# cdrop/_layer.py) means get_num_threads(), asked only for arrays that can use threads.
_kernels.set_default_threads(get_num_threads)

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
